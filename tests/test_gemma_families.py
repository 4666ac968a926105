"""Gemma 3n and Gemma 4 text families (per-layer inputs, shared KV, AltUp / LAuReL, global heads) against
transformers 5.25: totals of the class-default configs built on meta (fixtures/gemma, with sources), the
KV bytes transformers' own cache holds after a forward, and the reference forward's logits (prefill and
cached decode, every weight and buffer perturbed). Names and shapes of tiny and default configs:
tests/test_families.py; FLOPs: tests/test_flops.py."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, tiny_config
from inspector.errors import InspectError
from inspector.inventory.accounting import account
from inspector.spec.model import from_hf_config

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

FIGURES = json.loads((ROOT / "fixtures" / "gemma" / "gemma_per_layer.json").read_text())
LAYER_TYPES = ["sliding_attention", "sliding_attention", "full_attention"] * 2
TINY = {
    # Gemma 4: 2 KV-shared layers (one of each type), keys as values in the global layers (global_head_dim 16,
    # one kv head), double-wide MLPs in the shared layers, per-layer inputs, soft-capped logits
    "gemma4_text": tiny_config("gemma4_text", head_dim=8, num_hidden_layers=6, sliding_window=4,
                               layer_types=LAYER_TYPES, num_kv_shared_layers=2, use_double_wide_mlp=True,
                               attention_k_eq_v=True, num_global_key_value_heads=1, global_head_dim=16,
                               hidden_size_per_layer_input=4, vocab_size_per_layer_input=101,
                               hidden_activation="gelu_pytorch_tanh", final_logit_softcapping=30.0),
    # Gemma 4 26B-A4B's layout: 4 experts, top 2, beside the dense MLP (no per-layer inputs there)
    "gemma4_text-moe": tiny_config("gemma4_text", head_dim=8, num_hidden_layers=6, sliding_window=4,
                                   layer_types=LAYER_TYPES, num_kv_shared_layers=2, attention_k_eq_v=True,
                                   num_global_key_value_heads=1, global_head_dim=16, enable_moe_block=True,
                                   num_experts=4, top_k_experts=2, moe_intermediate_size=16,
                                   hidden_size_per_layer_input=0, hidden_activation="gelu_pytorch_tanh"),
    # Gemma 3n: 3 AltUp streams, LAuReL rank 4, a width per layer, sparsity in 2 layers, ids past the
    # per-layer table (50 of 101) mapped to row 0
    "gemma3n_text": tiny_config("gemma3n_text", head_dim=8, num_hidden_layers=6, sliding_window=4,
                                layer_types=LAYER_TYPES, num_kv_shared_layers=2,
                                intermediate_size=[48, 40, 48, 40, 48, 64], laurel_rank=4,
                                hidden_size_per_layer_input=4, vocab_size_per_layer_input=50,
                                activation_sparsity_pattern=[0.95, 0.5, 0.0, 0.0, 0.0, 0.0], altup_num_inputs=3,
                                hidden_activation="gelu_pytorch_tanh"),
}


@pytest.mark.parametrize("model_type", list(FIGURES))
def test_default_config_totals_and_kv_equal_transformers(model_type):
    acc = account(from_hf_config(transformers.AutoConfig.for_model(model_type).to_dict(), model_type))
    fig = FIGURES[model_type]
    assert acc.totals.total_params == fig["transformers_meta_total"]
    assert sum(e.numel for e in acc.entries if e.role == "ple_embed") == fig["ple_table"]
    assert (len(acc.spec.text.kv_layers), acc.spec.text.num_layers) == (fig["kv_layers"], fig["layers"])
    assert acc.totals.kv_cache_bytes_per_token == fig["kv_bytes_per_token_bf16"]
    if "card" in fig:  # Gemma 3n E4B: "effective 4B" is the text model without its per-layer input table
        from inspector.reports.per_layer import per_layer_totals_json

        effective = per_layer_totals_json(acc)["effective_params"]
        assert effective == acc.totals.total_params - fig["ple_table"]
        assert round(effective / 1e9) == int(fig["card"]["effective"][:-1])


@pytest.mark.parametrize("model_type", list(TINY))
def test_kv_bytes_equal_transformers_cache_tensors(model_type):
    """A bf16 forward of 3 tokens (inside the window): transformers' DynamicCache fills only the layers that
    compute K/V (KV-shared layers hold a DummyLayer); ours lists the same layers and the same bytes."""
    cfg = TINY[model_type]
    from hf_reference import bf16_cache

    cache = bf16_cache(cfg, 3)
    filled = [(i, layer) for i, layer in enumerate(cache.layers) if getattr(layer, "keys", None) is not None]
    kv = sum(layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
             for _, layer in filled)
    acc = account(from_hf_config(cfg, "tiny"))
    assert list(acc.spec.text.kv_layers) == [i for i, _ in filled] == [0, 1, 2, 3]
    assert acc.totals.kv_cache_bytes_per_token * 3 == kv == acc.kv_cache_bytes(3)


@pytest.mark.parametrize("model_type", list(TINY))
def test_reference_forward_equals_transformers_prefill_and_cached_decode(model_type, tmp_path):
    """Logits of the reference model against transformers (fp32, eager), every parameter and Gemma 4's
    layer scalars perturbed (logits ~6): a prefill of 11 tokens (past the window of 4), then a prefill of 7
    and 4 cached decode steps (KV-shared layers reading their source layer's cache)."""
    from hf_reference import perturbed_pair, prefill_and_decode_match

    cfg = TINY[model_type]
    hf, ours = perturbed_pair(cfg, tmp_path, buffers=lambda name: name.endswith("layer_scalar"))
    cache = prefill_and_decode_match(hf, ours, cfg["vocab_size"]).cache
    assert cache.length == 11 and cache.k[4] is None and cache.k[3].shape[2] == 11


@pytest.mark.parametrize("change, message", [
    ({"num_kv_shared_layers": 6}, "num_kv_shared_layers' must be below num_hidden_layers"),
    ({"num_kv_shared_layers": 4}, "leaves no earlier full layer"),
    ({"activation_sparsity_pattern": [0.5] * 5}, "activation_sparsity_pattern' must list 6 numbers"),
    ({"intermediate_size": [48] * 5}, "intermediate_size' must be one number or 6"),
    ({"altup_active_idx": 3}, "altup_active_idx' must be below altup_num_inputs"),
    ({"model_type": "gemma4_text", "global_head_dim": 15}, "layer 2: head_dim 15 must be even"),
    ({"model_type": "gemma4_text", "enable_moe_block": True}, "enable_moe_block' needs num_experts"),
], ids=["all-shared", "no-source", "sparsity-length", "widths-length", "altup-active", "odd-global-head",
        "moe-without-experts"])
def test_bad_gemma_config_one_line(change, message):
    with pytest.raises(InspectError, match=message):
        from_hf_config({**TINY["gemma3n_text"], **change}, "bad")


def test_gemma4_experts_only_with_enable_moe_block():
    """Gemma4TextConfig builds experts only when enable_moe_block is set, whatever num_experts says."""
    cfg = {**TINY["gemma4_text-moe"], "enable_moe_block": False}
    assert from_hf_config(cfg, "dense").text.moe is None
    moe = account(from_hf_config(TINY["gemma4_text-moe"], "moe")).totals.moe
    assert (moe.experts, moe.top_k, moe.moe_layers) == (4, 2, 6)


def test_native_commands_on_a_gemma3n_config(tmp_path):
    """memory, flops, trace (meta) and config run natively (no transformers fallback) on a Gemma 3n config."""
    from typer.testing import CliRunner

    from inspector.cli.app import app

    (tmp_path / "config.json").write_text(json.dumps({**TINY["gemma3n_text"], "architectures": ["Gemma3nForCausalLM"]}))
    runner, model = CliRunner(), str(tmp_path)
    for args in (["memory", model, "--gpu", "H100-80GB"], ["flops", model, "--seq-len", "128"],
                 ["trace", "-m", model, "--device", "meta", "--seq-len", "16"], ["config", model, "-f", "json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output[-2000:])
    per_layer = json.loads(result.stdout)["text"]["per_layer"]
    assert per_layer["kv_source"] == [0, 1, 2, 3, 3, 2] and per_layer["kv_layers"] == [0, 1, 2, 3]


def test_gemma_4_31b_text_model_and_published_checkpoint_total():
    """google/gemma-4-31B-it's text_config (fixtures/gemma, with its source): our language model's stored
    tensors plus its vision tower as the same report prints it equal the checkpoint's published 1,188 tensors
    and 31,273,088,876 elements (50 sliding layers with 16 kv heads of 256, 10 global ones with 4 kv heads of
    512 whose keys double as values, a stored layer scalar per layer)."""
    fig = json.loads((ROOT / "fixtures" / "gemma" / "gemma-4-31B-it.json").read_text())
    acc = account(from_hf_config(fig["text_config"], "gemma-4-31B-it"))
    stored = [e for e in acc.entries if e.stored]
    v = fig["vision_tower"]
    d, hd, w = v["hidden_size"], v["head_dim"], v["intermediate_size"]
    per_layer = 4 * d * d + 2 * hd + 4 * d + 3 * d * w  # 13 tensors
    tower = v["layers"] * per_layer + d * 3 * v["patch_size"] ** 2 + 2 * v["position_embedding_size"] * d + 2 * d
    tower += v["embed_vision"][0] * v["embed_vision"][1]
    assert len(stored) + 13 * v["layers"] + 4 + 1 == fig["checkpoint_tensors"]
    assert sum(e.numel for e in stored) + tower == fig["checkpoint_elements"]
    assert acc.totals.total_params == sum(e.numel for e in stored) - 60  # the 60 layer scalars are buffers
    assert acc.totals.kv_cache_bytes_per_token == 50 * 2 * 16 * 256 * 2 + 10 * 2 * 4 * 512 * 2
    assert not acc.spec.ignored_keys


@pytest.mark.parametrize("model_type", ["gemma3n_text", "gemma4_text"])
def test_sparse_config_takes_the_class_defaults(model_type):
    """Keys a sparse config.json leaves out (window, soft-cap, RoPE bases, layer types) are what the config class
    assumes: compared with transformers' own config object built from the same dict."""
    sparse = dict(model_type=model_type, vocab_size=101, hidden_size=32, intermediate_size=48, num_hidden_layers=10,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=8, num_kv_shared_layers=0)
    theirs = transformers.AutoConfig.for_model(**sparse)
    t = from_hf_config(sparse, "sparse").text
    assert t.sliding_window == theirs.sliding_window and t.final_softcap == theirs.final_logit_softcapping
    assert [t.window(i) is None for i in range(10)] == [k == "full_attention" for k in theirs.layer_types]
    rope = theirs.rope_parameters
    assert (t.rope_theta, t.rope_local_theta) == (rope["full_attention"]["rope_theta"],
                                                  rope["sliding_attention"]["rope_theta"])
    assert (t.max_position_embeddings, t.per_layer.ple_dim) == (theirs.max_position_embeddings,
                                                                theirs.hidden_size_per_layer_input)
