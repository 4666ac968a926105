"""The Mamba2 / short-convolution hybrids (nemotron_h, granitemoehybrid, falcon_h1, lfm2) against transformers 5.25:
KV and state bytes equal transformers' cache tensors, the reference forward's logits equal transformers' (its torch
path: no Mamba kernels here), the presets' totals equal the published ones. Names, shapes and totals on meta are in
tests/test_families.py (TINY_SSM), the FLOPs ledger against FlopCounterMode in tests/test_flops.py."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, tiny_config
from inspector.errors import InspectError
from inspector.inventory.accounting import account, kv_line, linear_state
from inspector.spec.model import from_hf_config
from inspector.spec.presets import get_preset
from ssm_configs import SSM_FORWARD, TINY_SSM

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

FIGURES = json.loads((ROOT / "fixtures" / "hybrid" / "ssm.json").read_text())


@pytest.mark.parametrize(("preset", "hub_id"), [("nemotron-nano-9b-v2", "nvidia/NVIDIA-Nemotron-Nano-9B-v2"),
                                                 ("lfm2-1.2b", "LiquidAI/LFM2-1.2B"),
                                                 ("granite-4.0-h-tiny", "ibm-granite/granite-4.0-h-tiny"),
                                                 ("falcon-h1-7b-base", "tiiuae/Falcon-H1-7B-Base"),
                                                 ("nemotron-3-nano-30b-a3b", "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")])
def test_presets_equal_published_totals(preset, hub_id):
    fig = FIGURES[hub_id]
    spec = from_hf_config(dict(get_preset(preset).config), preset)
    total = account(spec).totals.total_params
    assert total == fig["published_total"] == fig.get("transformers_meta_total", total)
    t = spec.text
    attention = fig["layers"]["attention"]
    some = f"{attention} of {t.num_layers}" if attention < t.num_layers else f"all {t.num_layers}"
    assert kv_line(t) == f"{some} layers keep a KV cache"  # Falcon-H1: every layer
    assert len(t.linear.layers) == fig["layers"].get("mamba2", fig["layers"].get("conv"))


def _nbytes(tensors) -> int:
    return sum(v.numel() * v.element_size() for v in tensors if v is not None)


@pytest.mark.parametrize("case", ["nemotron_h", "granitemoehybrid", "falcon_h1", "lfm2"])
def test_kv_and_state_bytes_equal_transformers_cache_tensors(case):
    """A bf16 forward of 3 tokens: K/V bytes of the attention layers, conv (bf16) and SSM (fp32) state bytes."""
    cfg, tokens = TINY_SSM[case], 3
    from hf_reference import bf16_cache

    cache = bf16_cache(cfg, tokens)
    kv = conv = recurrent = 0
    kv_layers = []
    for i, layer in enumerate(cache.layers):
        if hasattr(layer, "conv_states"):
            conv += _nbytes(layer.conv_states.values())
            recurrent += _nbytes(getattr(layer, "recurrent_states", {}).values())
        if getattr(layer, "keys", None) is not None and layer.keys.numel():
            kv_layers.append(i)
            kv += _nbytes((layer.keys, layer.values))
    spec = from_hf_config(cfg, "tiny")
    state = linear_state(spec.text)
    assert list(spec.text.kv_layers) == kv_layers
    assert account(spec).totals.kv_cache_bytes_per_token * tokens == kv == account(spec).kv_cache_bytes(tokens)
    assert state.layers * state.conv_bytes == conv and state.layers * state.recurrent_bytes == recurrent


@pytest.mark.parametrize("case", list(SSM_FORWARD), ids=list(SSM_FORWARD))
def test_reference_forward_equals_transformers_prefill_and_cached_decode(case, tmp_path):
    """fp32 logits of the reference model against transformers (eager attention; its Mamba2 torch fallback: the
    chunked scan for a prefill, selective_state_update for a cached token), every weight perturbed: a prefill of
    11 tokens, then a prefill of 7 and 4 decode steps carrying the conv and SSM states."""
    from hf_reference import perturbed_pair, prefill_and_decode_match

    cfg = SSM_FORWARD[case]
    hf, ours = perturbed_pair(cfg, tmp_path)
    cache = prefill_and_decode_match(hf, ours, cfg["vocab_size"]).cache  # fp32 sums: seen <= 1e-5 on logits ~7
    assert cache.length == 11 and cache.conv[0].shape[0] == 2


def test_bad_pattern_and_layer_types_one_line():
    with pytest.raises(InspectError, match="hybrid_override_pattern.*must be a string of M E"):
        from_hf_config(tiny_config("nemotron_h", hybrid_override_pattern="M*X"), "bad")
    with pytest.raises(InspectError, match="layer_types.*must list 2 of"):
        from_hf_config(tiny_config("lfm2", layer_types=["conv", "sliding_attention"]), "bad")


def _nemotron_gguf_meta(arch: str) -> tuple[dict, int]:
    """A Nemotron-Nano-9B-v2-shaped GGUF header as llama.cpp's converter writes it: per-layer head_count_kv (8 on the
    attention blocks) and feed_forward_length (the MLP blocks' width), 0 elsewhere."""
    pattern = get_preset("nemotron-nano-9b-v2").config["hybrid_override_pattern"]
    meta = {f"{arch}.attention.head_count_kv": [8 if c == "*" else 0 for c in pattern],
            f"{arch}.feed_forward_length": [15680 if c == "-" else 0 for c in pattern],
            f"{arch}.ssm.conv_kernel": 4, f"{arch}.ssm.inner_size": 10240, f"{arch}.ssm.state_size": 128,
            f"{arch}.ssm.group_count": 8, f"{arch}.ssm.time_step_rank": 128}
    return meta, len(pattern)


def test_llamacpp_recurrent_state_of_nemotron_h_and_falcon_h1():
    """llama.cpp's rules from its source (src/models/nemotron-h.cpp: recurrent iff head_count_kv and
    feed_forward_length are 0; create_memory's filter_attn keeps the other layers with feed_forward_length 0, the
    attention blocks; src/models/falcon-h1.cpp: every layer recurrent and attention): per cell, f32, R = (d_conv - 1)
    (d_inner + 2 n_group d_state), S = d_state d_inner (llama_hparams::n_embd_r / n_embd_s). Not yet checked against
    a llama.cpp run."""
    from inspector.memory.llamacpp_recurrent import recurrent, rs_cache

    for arch in ("nemotron_h", "nemotron_h_moe"):
        meta, n_layer = _nemotron_gguf_meta(arch)
        rec = recurrent(meta, arch, n_layer, 4480)
        assert (len(rec.layers), rec.kv_layers) == (27, 4)
        assert (rec.n_embd_r, rec.n_embd_s) == (3 * (10240 + 2 * 8 * 128), 128 * 10240)
        assert rs_cache(rec, n_layer, 1).nbytes == 27 * (36864 + 1310720) * 4
    meta = {"falcon-h1.ssm.conv_kernel": 4, "falcon-h1.ssm.inner_size": 3072, "falcon-h1.ssm.state_size": 256,
            "falcon-h1.ssm.group_count": 1, "falcon-h1.ssm.time_step_rank": 48,
            "falcon-h1.attention.head_count_kv": 2}
    rec = recurrent(meta, "falcon-h1", 24, 2048)
    assert (rec.layers, rec.kv_layers) == (tuple(range(24)), 24)


@pytest.mark.parametrize(("case", "tp"), [("falcon_h1", 1), ("falcon_h1", 2), ("falcon_h1-bias", 2)])
def test_vllm_state_page_of_a_mamba2_layer(case, tp):
    """vLLM's mamba2_state_shape (vllm/model_executor/layers/mamba/mamba_utils.py), dtype auto (bf16): conv
    (kernel - 1, (inner + 2 G' N) / tp) with G' = n_groups, or tp when tp does not divide it
    (extra_groups_for_head_shards), temporal (heads / tp, head_dim, N)."""
    from inspector.memory.native_hybrid import hybrid_input
    from inspector.memory.vllm_hybrid import state_bytes

    t = from_hf_config(TINY_SSM[case], "tiny").text
    g = t.linear
    inp = hybrid_input(t, (0, t.num_layers), 64, 2, tp, 4096, 2048, 16)
    groups = g.key_heads if g.key_heads % tp == 0 else tp
    conv = (g.conv_kernel - 1) * ((g.value_dim + 2 * groups * g.key_head_dim) // tp) * 2
    assert state_bytes(inp.states[0], inp) == conv + g.value_heads // tp * g.value_head_dim * g.key_head_dim * 2
    assert len(inp.attention) == len(inp.states) == t.num_layers  # Falcon-H1: every layer both


def test_memory_of_a_model_whose_layers_all_keep_a_state():
    """granitemoehybrid's class-default config has only Mamba2 layers: no KV group at all, the budget goes to state
    pages alone (vLLM's hybrid allocator: one group of every layer, one page each per request)."""
    from inspector.inventory.accounting import account
    from inspector.memory.gpus import gpu
    from inspector.memory.serving import ServeOptions, plan

    cfg = {**TINY_SSM["granitemoehybrid"], "layer_types": ["mamba"] * 3}
    s = plan(account(from_hf_config(cfg, "all-mamba")), gpu("H100-80GB"), ServeOptions())
    assert s.groups == () and s.hybrid is not None and s.hybrid.num_blocks > 0
    assert s.num_blocks == s.hybrid.num_blocks and s.concurrency == s.hybrid.concurrency
    from inspector.memory.fit import serving_verdict
    from inspector.memory.gpus import gpu_memory_gib

    acc = account(from_hf_config(cfg, "all-mamba"))
    short = plan(acc, gpu_memory_gib(0.5), ServeOptions())  # the fixed terms alone exceed 0.45 GiB
    assert short.num_blocks == 0 and "cannot hold even the state of one sequence" in serving_verdict(acc, short).text
