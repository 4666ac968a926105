"""Mixture-of-experts accounting against the published figures, and bad MoE/MLA configs.

Published figures (model cards and announcements; the preset sources name each config.json):
Mixtral-8x7B 46.7B total / 12.9B active (Mistral AI's announcement); Qwen3-30B-A3B 30.5B / 3.3B;
gpt-oss-120b 117B / 5.1B and gpt-oss-20b 21B / 3.6B (the gpt-oss card counts active parameters
without the input embedding: our report prints both lines); DeepSeek-V3 671B / 37B (the card's
37B; our plain count is 37.55B, see docs/params.md); Qwen1.5-MoE-A2.7B 14.3B / 2.7B; OLMoE-1B-7B
6.9B / 1.3B (its paper); Phi-3.5-MoE 41.9B / 6.6B. Cards print either a rounded or a truncated
figure (Mixtral's 12.88B is "12.9B", Qwen3's 3.35B is "3.3B"), so a figure matches when it is
ours rounded or truncated to the printed digits, nothing looser.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import tiny_config
from inspector.cli.app import app
from inspector.inventory.accounting import account
from inspector.source import load_spec

runner = CliRunner()


def rounds_to(value: int, published: str) -> bool:
    digits = len(published.rstrip("B").split(".")[1]) if "." in published else 0
    shown, unit = float(published.rstrip("B")), 10.0**-digits
    billions = value / 1e9
    return round(billions, digits) == shown or shown <= billions < shown + unit


# model: (total, active, which active line the publisher uses)
PUBLISHED_MOE = {
    "mistralai/Mixtral-8x7B-v0.1": ("46.7B", "12.9B", "active_params"),
    "Qwen/Qwen3-30B-A3B": ("30.5B", "3.3B", "active_params"),
    "openai/gpt-oss-120b": ("117B", "5.1B", "active_params_without_embedding"),
    "openai/gpt-oss-20b": ("21B", "3.6B", "active_params_without_embedding"),
    "deepseek-ai/DeepSeek-V3": ("671B", "37B", "active_params"),
    "Qwen/Qwen1.5-MoE-A2.7B": ("14.3B", "2.7B", "active_params"),
    "allenai/OLMoE-1B-7B-0924": ("6.9B", "1.3B", "active_params"),
    "microsoft/Phi-3.5-MoE-instruct": ("41.9B", "6.6B", "active_params"),
}


def params_json(model: str) -> dict:
    result = runner.invoke(app, ["params", model, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("model,figures", PUBLISHED_MOE.items(), ids=list(PUBLISHED_MOE))
def test_published_moe_figures(model, figures):
    total, active, line = figures
    data = params_json(model)
    assert rounds_to(data["total_params"], total), (data["total_params"], total)
    assert rounds_to(data["moe"][line], active), (data["moe"][line], active)


def test_moe_exact_counts_and_definitions():
    """Exact counts (transformers on the meta device gives the same totals: test_weights.py)."""
    exact = {  # total (transformers on meta), active, routed experts = layers x experts x 3 x d x width
        "mistralai/Mixtral-8x7B-v0.1": (46_702_792_704, 12_879_925_248, 32 * 8 * 3 * 4096 * 14336),
        "Qwen/Qwen3-30B-A3B": (30_532_122_624, 3_353_032_704, 48 * 128 * 3 * 2048 * 768),
        "deepseek-ai/DeepSeek-V3": (671_026_404_352, 37_552_282_624, 58 * 256 * 3 * 7168 * 2048),
    }
    for model, (total, active, routed) in exact.items():
        m = account(load_spec(model)).totals
        assert (m.total_params, m.moe.active_params, m.moe.routed_expert_params) == (total, active, routed)


def test_deepseek_v3_mtp_stored_beside_the_model():
    """The Hub checkpoint holds 671B + the multi-token-prediction layer; the model is 671B."""
    data = params_json("deepseek-ai/DeepSeek-V3")
    assert data["total_params"] == 671_026_404_352
    assert data["stored_beside_model"] == {"mtp": 13_463_426_048}
    assert data["kv_cache_bytes_per_token"] == 61 * (512 + 64) * 2  # the compressed latent, not K and V


def test_moe_report_shows_expert_rows_and_definition():
    result = runner.invoke(app, ["params", "Qwen/Qwen3-30B-A3B", "--format", "md"])
    assert result.exit_code == 0
    out = result.stdout
    experts = next(line for line in out.splitlines() if line.startswith("| Experts (routed)"))
    assert "| 6144 " in experts and "mlp.experts.E.gate_proj.weight: (768, 2048)" in experts  # 128 x 48
    assert "Active parameters per token" in out and "top-k of the routed experts" in out


# --------------------------------------------------------------------------- bad input: one line, exit 2

MLA = dict(kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, n_routed_experts=4,
           n_shared_experts=1, num_experts_per_tok=2, moe_intermediate_size=24, q_lora_rank=12)

BAD = [
    ("top-k-exceeds-experts", tiny_config("qwen3_moe", num_experts=4, num_experts_per_tok=6, moe_intermediate_size=8),
     "field 'num_experts_per_tok' (6) exceeds the number of experts (4)"),
    ("mla-kv-rank-zero", tiny_config("deepseek_v3", **{**MLA, "kv_lora_rank": 0}),
     "field 'kv_lora_rank' must be >= 1, got 0"),
    ("mla-q-rank-zero", tiny_config("deepseek_v3", **{**MLA, "q_lora_rank": 0}),
     "field 'q_lora_rank' must be >= 1, got 0"),
    ("mla-rope-dim-zero", tiny_config("deepseek_v2", **{**MLA, "qk_rope_head_dim": 0}),
     "field 'qk_rope_head_dim' must be >= 1, got 0"),
    ("moe-layer-past-the-end", tiny_config("llama4_text", num_local_experts=4, num_experts_per_tok=1,
                                            intermediate_size_mlp=64, moe_layers=[1, 2]),
     "field 'moe_layers' names layer 2, but there are 2 layers"),
    ("mlp-only-layer-past-the-end", tiny_config("qwen3_moe", num_experts=4, num_experts_per_tok=2,
                                                 moe_intermediate_size=8, mlp_only_layers=[5]),
     "field 'mlp_only_layers' names layer 5, but there are 2 layers"),
]


@pytest.mark.parametrize("cfg,message", [(c, m) for _, c, m in BAD], ids=[b[0] for b in BAD])
def test_bad_moe_config_one_line(tmp_path, cfg, message):
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    result = runner.invoke(app, ["params", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr and "config.json" in result.stderr
