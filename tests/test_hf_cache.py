"""KV and state bytes read from transformers' own cache after a meta forward (inspector.runtime.hf_cache).

The oracle is transformers 5.25's cache object itself (its layers' tensor shapes on the meta
device). For native families, our own accounting (Accounting.kv_cache_bytes and
kv_bytes_per_token_layer, which `memory` uses) must equal it. For architectures with no native
family (hybrids with Gated DeltaNet or Mamba2 layers), the measure must give a KV or state figure
and the count of layers that keep a KV cache. Configs are transformers' own defaults
(`AutoConfig.for_model(model_type)`), shrunk to a few layers so a test takes well under a second.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from inspector.inventory.accounting import kv_bytes_per_token_layer  # noqa: E402
from inspector.inventory.load import account_config  # noqa: E402
from inspector.runtime.hf_cache import describe, measure_cache  # noqa: E402

CONTEXT = 8192  # longer than the windows below, so the sliding layers' cap matters


def _default(model_type: str, **overrides) -> dict:
    """transformers' default config of `model_type` as config.json would hold it, with overrides."""
    cfg = transformers.AutoConfig.for_model(model_type, **overrides).to_dict()
    cfg["model_type"] = model_type
    return cfg


NATIVE = [
    pytest.param(_default("llama", num_hidden_layers=2), id="llama"),
    pytest.param(_default("qwen3", num_hidden_layers=2), id="qwen3"),
    # gemma3: five sliding layers of 512 tokens to one full layer (its default pattern)
    pytest.param(_default("gemma3_text", num_hidden_layers=6, sliding_window=512), id="gemma3_text-sliding"),
    # MLA: transformers caches the latent (kv_lora_rank) as keys and the RoPE key as values
    pytest.param(_default("deepseek_v3", num_hidden_layers=2, first_k_dense_replace=1), id="deepseek_v3-mla"),
]


@pytest.mark.parametrize("cfg", NATIVE)
def test_native_kv_bytes_equal_transformers_cache(cfg):
    acc = account_config(cfg, cfg["model_type"], "config.json")
    m = measure_cache(cfg)
    t = acc.spec.text
    assert m.kv_layers == len(m.layers) == t.num_layers
    assert m.kv_bytes_per_token() == t.num_layers * kv_bytes_per_token_layer(t, 2)
    assert m.kv_bytes_per_sequence(CONTEXT) == acc.kv_cache_bytes(CONTEXT, dtype_bytes=2)
    assert [layer.window for layer in m.layers] == [t.window(i) for i in range(t.num_layers)]
    assert m.state_bytes_per_sequence() == 0


def test_gemma3_sliding_layers_are_capped():
    m = measure_cache(_default("gemma3_text", num_hidden_layers=6, sliding_window=512))
    kinds = {k.kind: k for k in m.by_kind()}
    assert kinds["sliding"].layers == (0, 1, 2, 3, 4) and kinds["full"].layers == (5,)
    assert kinds["sliding"].cache_class == "DynamicSlidingWindowLayer"
    per_layer = kinds["full"].kv_bytes_per_token
    assert m.kv_bytes_per_sequence(CONTEXT) == per_layer * (5 * 512 + CONTEXT)


HYBRID = [
    # Qwen3-Next: three Gated DeltaNet layers to one gated full-attention layer
    pytest.param(_default("qwen3_next", num_hidden_layers=4), 1, "LinearAttentionLayer", id="qwen3_next"),
    # Falcon-H1: every layer runs attention and Mamba2 side by side
    pytest.param(_default("falcon_h1", num_hidden_layers=2), 2, "LinearAttentionAndFullAttentionLayer",
                 id="falcon_h1"),
    # Nemotron-H: Mamba2 ("M"), MLP ("-") and attention ("*") layers from its pattern (transformers
    # writes them as layers_block_type; the MLP layers are DummyLayer: no cache)
    pytest.param(_default("nemotron_h", num_hidden_layers=4, hybrid_override_pattern="M-*-"), 1,
                 "LinearAttentionLayer", id="nemotron_h"),
]


@pytest.mark.parametrize(("cfg", "kv_layers", "state_class"), HYBRID)
def test_hybrid_state_and_kv_layers(cfg, kv_layers, state_class):
    m = measure_cache(cfg)
    layers = len(m.layers)
    assert layers == cfg.get("num_hidden_layers", len(cfg.get("layers_block_type") or ()))
    assert m.kv_layers == kv_layers
    assert m.kv_line() == (f"all {layers} layers keep a KV cache" if kv_layers == layers
                           else f"{kv_layers} of {layers} layers keep a KV cache")
    assert m.kv_bytes_per_token() > 0 and m.state_bytes_per_sequence() > 0
    state = [layer for layer in m.layers if layer.state_bytes]
    assert state and all(layer.cache_class == state_class for layer in state)
    assert all(any(n.startswith("recurrent_states") for n, _, _ in layer.state_shapes) for layer in state)


def test_qwen3_next_state_shapes():
    """Gated DeltaNet state from the config: conv over q, k, v channels (kernel wide), and a
    float32 recurrent state of value heads x key dim x value dim (transformers keeps it in float32)."""
    cfg = _default("qwen3_next", num_hidden_layers=4)
    m = measure_cache(cfg)
    conv_channels = 2 * cfg["linear_num_key_heads"] * cfg["linear_key_head_dim"] + \
        cfg["linear_num_value_heads"] * cfg["linear_value_head_dim"]
    recurrent = (1, cfg["linear_num_value_heads"], cfg["linear_key_head_dim"], cfg["linear_value_head_dim"])
    shapes = dict((n, (s, d)) for n, s, d in m.layers[0].state_shapes)
    assert shapes["conv_states[0]"] == ((1, conv_channels, cfg["linear_conv_kernel_dim"]), "bfloat16")
    assert shapes["recurrent_states[0]"] == (recurrent, "float32")
    full = m.layers[3]
    assert full.kv_elements_per_token == 2 * cfg["num_key_value_heads"] * cfg["head_dim"]


def test_minimax_linear_state_kept_beside_the_layers():
    """MiniMax keeps each lightning-attention layer's K^T V state in MiniMaxCache.linear_cache, a
    list beside the cache's layers: heads x head_dim x head_dim per sequence, one per linear layer."""
    cfg = _default("minimax", num_hidden_layers=4,
                   layer_types=["linear_attention", "full_attention", "linear_attention", "full_attention"])
    m = measure_cache(cfg)
    assert m.kv_line() == "2 of 4 layers keep a KV cache"
    head_dim = cfg["head_dim"] or cfg["hidden_size"] // cfg["num_attention_heads"]
    linear = [layer for layer in m.layers if layer.kind == "linear"]
    assert [layer.index for layer in linear] == [0, 2]
    assert all(layer.state_elements == cfg["num_attention_heads"] * head_dim * head_dim for layer in linear)
    assert describe(m, 1024)[0].endswith("(MiniMaxForCausalLM): 2 of 4 layers keep a KV cache")


def test_shared_key_value_tensor_counted_once():
    """DeepSeek-V4's compressed-attention layers keep values as the keys (one tensor): one copy
    of head_dim per token, in a sliding window."""
    cfg = _default("deepseek_v4", num_hidden_layers=2, layer_types=["heavily_compressed_attention",
                                                                    "compressed_sparse_attention"],
                   mlp_layer_types=["hash_moe", "moe"])
    m = measure_cache(cfg)
    assert [layer.kv_elements_per_token for layer in m.layers] == [cfg["head_dim"]] * 2
    assert all(layer.kind == "sliding" and layer.window == cfg["sliding_window"] for layer in m.layers)
