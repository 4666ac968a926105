"""`inspect config` for MoE and latent-attention models: the experts, MLA ranks and per-layer attention
rows and JSON, checked against the published config.json values (read here with json, not our reader)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app

REF = Path(__file__).resolve().parent.parent / "fixtures" / "reference" / "configs"
MODELS = ["Qwen__Qwen3-30B-A3B", "deepseek-ai__DeepSeek-V3", "mistralai__Mixtral-8x7B-v0.1", "openai__gpt-oss-20b"]


def _published(name: str) -> dict:
    return json.loads((REF / name / "config.json").read_text())


def _expected(c: dict) -> dict:
    """Experts and widths as the published config states them (each family's own key names)."""
    experts = c.get("num_experts") or c.get("n_routed_experts") or c.get("num_local_experts")
    width = c.get("moe_intermediate_size") or c["intermediate_size"]  # Mixtral, gpt-oss: intermediate_size
    first_dense = c.get("first_k_dense_replace", 0)
    return {"num_experts": experts, "top_k": c["num_experts_per_tok"], "expert_intermediate_size": width,
            "shared_intermediate_size": c.get("n_shared_experts", 0) * width,
            "layers": list(range(first_dense, c["num_hidden_layers"])),
            "dense": list(range(first_dense))}


def _config(*args: str):
    result = CliRunner().invoke(app, ["config", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("name", MODELS)
def test_config_json_moe_against_published(name):
    c = _published(name)
    got = json.loads(_config(str(REF / name), "--format", "json"))["text"]
    want = _expected(c)
    assert got["dense_mlp_layers"] == want.pop("dense")
    assert got["moe"] == want
    if "kv_lora_rank" in c:
        assert got["mla"]["q_lora_rank"] == c["q_lora_rank"] and got["mla"]["kv_lora_rank"] == c["kv_lora_rank"]
    else:
        assert "mla" not in got
    if "layer_types" in c:
        assert got["layer_types"] == [t.split("_")[0] for t in c["layer_types"]]


def test_config_table_rows_say_what_each_layer_has():
    out = _config(*[str(REF / m) for m in MODELS], "--format", "md")
    rows = {line.split("|")[1].strip(): [x.strip() for x in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| ")}
    qwen, ds, mixtral, oss = (_published(m) for m in MODELS)
    assert rows["experts (routed, per MoE layer)"] == ["128", "256", "8", "32"]
    assert rows["top-k (experts per token)"] == [str(c["num_experts_per_tok"]) for c in (qwen, ds, mixtral, oss)]
    assert rows["expert width (d_inter per expert)"] == ["768", "2048", "14336", "2880"]
    assert rows["shared experts (total width)"] == ["none", "2048", "none", "none"]
    assert rows["dense MLP layers"] == ["none", "3: layers 0–2", "none", "none"]
    # Qwen3-30B-A3B's intermediate_size (6144) is no layer's width: every layer has experts
    assert qwen["intermediate_size"] == 6144 and "6144" not in rows["d_inter (MLP size)"][0]
    assert rows["d_inter (MLP size)"][1] == f"{ds['intermediate_size']} (layers 0–2)"
    assert rows["q_lora_rank (q latent)"][1] == str(ds["q_lora_rank"])
    assert rows["kv_lora_rank (kv latent, cached)"][1] == str(ds["kv_lora_rank"])
    assert rows["attention per layer"][3] == (
        "sliding window 128 on layers 0, 2, …, 22 (every 2); full on layers 1, 3, …, 23 (every 2)")


def test_config_dense_model_keeps_its_rows():
    out = _config(str(REF / "meta-llama__Llama-3.2-1B"), "--format", "md")
    assert "experts" not in out and "kv_lora_rank" not in out and "| d_inter (MLP size) " in out
