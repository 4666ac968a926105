"""The reference model against transformers: tiny random models of every family, logits within 1e-4."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from conftest import tiny_config
from hf_reference import hf_tiny
from inspector.source import load_spec
from inspector.reference.load import load_model
from inspector.reference.text import TextModel
from inspector.reference.layers import causal_mask, inv_frequencies
from inspector.spec.model import from_hf_config

LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}

# id -> (config, sequence length)
CASES = {
    "llama": (tiny_config("llama"), 9),
    "llama-bias": (tiny_config("llama", attention_bias=True, mlp_bias=True), 9),
    "llama-tied": (tiny_config("llama", tie_word_embeddings=True), 9),
    "llama-rope-llama3": (tiny_config("llama", rope_scaling=LLAMA3_ROPE), 20),
    "llama-rope-linear": (tiny_config("llama", rope_scaling={"rope_type": "linear", "factor": 4.0}), 9),
    # dynamic NTK only changes the base past max_position_embeddings: run 12 tokens over 8
    "llama-rope-dynamic": (tiny_config("llama", max_position_embeddings=8,
                                       rope_scaling={"rope_type": "dynamic", "factor": 2.0}), 12),
    "llama-rope-yarn": (tiny_config("llama", rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                                           "original_max_position_embeddings": 16}), 20),
    "mistral-sliding-window": (tiny_config("mistral", sliding_window=4), 10),
    "qwen2": (tiny_config("qwen2"), 9),
    "qwen3": (tiny_config("qwen3", head_dim=16), 9),
    "phi3": (tiny_config("phi3", pad_token_id=0, bos_token_id=1, eos_token_id=2), 9),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_logits_match_transformers(case, tmp_path):
    cfg, n = CASES[case]
    hf = hf_tiny(cfg)
    hf.save_pretrained(tmp_path, safe_serialization=True)
    ours = load_model(tmp_path)  # spec from the config.json transformers wrote
    expected_spec = from_hf_config(cfg, case).text
    no_ids = dict(bos_token_id=None, eos_token_ids=())
    assert replace(ours.spec, **no_ids) == replace(expected_spec, **no_ids)
    assert torch.equal(inv_frequencies(ours.spec, n)[0], inv_frequencies(expected_spec, n)[0])
    ids = torch.randint(0, cfg["vocab_size"], (2, n), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = hf(ids).logits, ours(ids)
    assert got.shape == (2, n, cfg["vocab_size"])
    assert (expected - got).abs().max().item() < 1e-4


def _to_internlm2(state: dict, spec) -> dict:
    """A llama state dict rewritten in InternLM2's names, wqkv grouped per kv head [q x groups, k, v]."""
    out, d_h, g = {}, spec.head_dim, spec.kv_groups
    out["model.tok_embeddings.weight"] = state["model.embed_tokens.weight"]
    out["model.norm.weight"] = state["model.norm.weight"]
    out["output.weight"] = state["lm_head.weight"]
    for i in range(spec.num_layers):
        p = f"model.layers.{i}."
        q = state[p + "self_attn.q_proj.weight"].view(spec.num_kv_heads, g, d_h, -1)  # (n_kv, g, d_h, d)
        k = state[p + "self_attn.k_proj.weight"].view(spec.num_kv_heads, 1, d_h, -1)  # (n_kv, 1, d_h, d)
        v = state[p + "self_attn.v_proj.weight"].view(spec.num_kv_heads, 1, d_h, -1)  # (n_kv, 1, d_h, d)
        out[p + "attention.wqkv.weight"] = torch.cat((q, k, v), dim=1).reshape(-1, spec.hidden_size)
        out[p + "attention.wo.weight"] = state[p + "self_attn.o_proj.weight"]
        out[p + "attention_norm.weight"] = state[p + "input_layernorm.weight"]
        out[p + "ffn_norm.weight"] = state[p + "post_attention_layernorm.weight"]
        for ours, theirs in (("w1", "gate_proj"), ("w3", "up_proj"), ("w2", "down_proj")):
            out[p + f"feed_forward.{ours}.weight"] = state[p + f"mlp.{theirs}.weight"]
    return {k: v.contiguous() for k, v in out.items()}


def test_internlm2_grouped_wqkv_equals_llama(tmp_path):
    """transformers has no InternLM2: a llama's weights in the grouped wqkv layout must give its logits."""
    cfg = tiny_config("llama", num_attention_heads=8, num_key_value_heads=2, hidden_size=64)
    hf = hf_tiny(cfg)
    spec = from_hf_config({**cfg, "model_type": "internlm2", "bias": False}, "internlm2").text
    save_file(_to_internlm2(hf.state_dict(), spec), tmp_path / "model.safetensors")
    ours = load_model(tmp_path / "model.safetensors", spec)
    ids = torch.randint(0, cfg["vocab_size"], (1, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (hf(ids).logits - ours(ids)).abs().max().item() < 1e-4


KV_CASES = ["llama", "mistral-sliding-window", "qwen3", "phi3", "llama-rope-yarn"]


@pytest.mark.parametrize("case", KV_CASES, ids=KV_CASES)
def test_kv_cache_decoding_equals_full_forward(case):
    cfg, n = CASES[case]
    torch.manual_seed(0)
    model = TextModel(from_hf_config(cfg, case).text).eval()
    ids = torch.randint(0, cfg["vocab_size"], (2, n))
    with torch.no_grad():
        full = model(ids)  # (2, n, n_v)
        cache = model.new_cache()
        steps = [model(ids[:, :4], cache)]
        steps += [model(ids[:, t : t + 1], cache) for t in range(4, n)]
    assert cache.length == n and cache.k[0].shape == (2, model.spec.num_kv_heads, n, model.spec.head_dim)
    assert (torch.cat(steps, dim=1) - full).abs().max().item() < 1e-5


def test_causal_mask_with_window_and_offset():
    mask = causal_mask(start=2, n=2, window=2, dtype=torch.float32, device="cpu")[0, 0]  # (2, 4)
    allowed = (mask == 0).int().tolist()
    assert allowed == [[0, 1, 1, 0], [0, 0, 1, 1]]


def test_dynamic_rope_is_default_within_context():
    spec = from_hf_config(tiny_config("llama", rope_scaling={"type": "dynamic", "factor": 2.0}), "x").text
    plain = from_hf_config(tiny_config("llama"), "x").text
    assert torch.equal(inv_frequencies(spec, 10)[0], inv_frequencies(plain)[0])
    assert not torch.equal(inv_frequencies(spec, 100)[0], inv_frequencies(plain)[0])


def test_taps_are_hookable_modules():
    model = TextModel(from_hf_config(tiny_config("qwen3", head_dim=16), "x").text)
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = tuple(output.shape)
        return hook

    hooks = [m.register_forward_hook(record(name))
             for name, m in model.named_modules() if name.startswith("layers.1.")]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 5, dtype=torch.long))
    finally:
        for h in hooks:
            h.remove()
    assert seen["layers.1.attn.q_norm"] == (1, 5, 4, 16)
    assert seen["layers.1.attn.q_rope"] == (1, 4, 5, 16)
    assert seen["layers.1.attn.probs"] == (1, 4, 5, 5)
    assert seen["layers.1.mlp.gated"] == (1, 5, 48)


def test_405b_forward_on_meta():
    spec = load_spec("meta-llama/Llama-3.1-405B").text
    start = time.perf_counter()
    model = TextModel(spec, device="meta", dtype=torch.bfloat16)
    with torch.no_grad():
        logits = model(torch.zeros(1, 8, dtype=torch.long, device="meta"))
    assert logits.shape == (1, 8, 128256) and logits.is_meta
    assert sum(p.numel() for p in model.parameters()) == 405_853_388_800
    assert time.perf_counter() - start < 30


@pytest.mark.parametrize("family", ["llama", "qwen3_next"])
@pytest.mark.parametrize("device, dtype", [("meta", torch.bfloat16), ("cpu", torch.float16), ("cpu", torch.float32)])
def test_built_in_its_dtype_with_the_default_dtype_restored(family, device, dtype):
    """TextModel builds its blocks with `dtype` as the default dtype (no conversion pass): every floating
    parameter and buffer comes out in `dtype`, as `.to(dtype)` gave, and the default dtype is restored."""
    from test_families import TINY

    cfg = TINY[family] if family in TINY else tiny_config(family)
    spec = from_hf_config(dict(cfg), family).text
    model = TextModel(spec, device=device, dtype=dtype)
    floating = {t.dtype for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()
                and not any(t is b for b in model.rope.buffers())}
    assert floating == {dtype} and torch.get_default_dtype() == torch.float32
    assert {t.device.type for t in model.parameters()} == {device}
