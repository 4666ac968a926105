"""DeepSeek-V3.2 (MLA + the lightning indexer of DeepSeek Sparse Attention) against transformers 5.25: the
reference forward's logits with every weight perturbed, with an index_topk that keeps every key and one that
drops keys (prefill, then cached decode), and the KV bytes against the tensors of transformers' own cache
(the MLA latent, its RoPE key and the indexer's keys)."""

from __future__ import annotations

import pytest

from conftest import tiny_config
from inspector.inventory.accounting import account
from inspector.spec.model import from_hf_config

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

DSA = dict(num_hidden_layers=3, first_k_dense_replace=1, n_routed_experts=8, num_experts_per_tok=3, n_group=4,
           topk_group=2, moe_intermediate_size=16, n_shared_experts=1, kv_lora_rank=16, q_lora_rank=24,
           qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=6, num_key_value_heads=4, index_n_heads=4,
           index_head_dim=8, pad_token_id=0)
FORWARD = {
    "dense-topk": tiny_config("deepseek_v32", index_topk=64, **DSA),  # top-k >= every length: all keys kept
    "sparse-topk": tiny_config("deepseek_v32", index_topk=3, **DSA),  # 3 of up to 11 keys kept per query
}


@pytest.mark.parametrize("case", list(FORWARD), ids=list(FORWARD))
def test_reference_forward_equals_transformers(case, tmp_path):
    from hf_reference import perturbed_pair, prefill_and_decode_match

    cfg = FORWARD[case]
    hf, ours = perturbed_pair(cfg, tmp_path, scale=0.2)
    assert prefill_and_decode_match(hf, ours, cfg["vocab_size"]).cache.index_k[0].shape == (2, 11, 8)


def test_kv_bytes_equal_transformers_cache_tensors():
    """bf16 forward of 3 tokens: the latent, the RoPE key and the indexer keys transformers' DynamicIndexedLayer
    holds, in bytes, equal our KV bytes per token times 3."""
    cfg, tokens = FORWARD["sparse-topk"], 3
    from hf_reference import bf16_cache

    cache = bf16_cache(cfg, tokens)
    held = sum(t.numel() * t.element_size() for layer in cache.layers
               for t in (layer.keys, layer.values, layer.indexer_keys))
    acc = account(from_hf_config(cfg, "tiny"))
    assert acc.totals.kv_cache_bytes_per_token * tokens == held == acc.kv_cache_bytes(tokens)


@pytest.mark.parametrize("cached, new, cap", [(0, 11, 3), (0, 2, 3), (9, 1, 3), (5, 7, 4), (2, 3, 64)])
def test_capped_keys_brute_force(cached, new, cap):
    """As needed, a DSA query attends to min(keys it may see, index_topk) keys."""
    from inspector.compute.flops import Pass, capped_keys

    assert capped_keys(Pass(new, cached), cap) == sum(min(p + 1, cap) for p in range(cached, cached + new))


def test_flops_equal_flop_counter_over_transformers_indexer():
    """transformers' own DeepSeek-V3.2 forward on meta (MLA, the indexer's two matmuls, dense MLPs: no routed
    experts, whose dispatch needs values): prefills and a cached decode step == the ledger."""
    from test_flops import hf_counts, hf_meta, ledger_counts

    cfg = tiny_config("deepseek_v32", **{**DSA, "num_hidden_layers": 2, "mlp_layer_types": ["dense", "dense"]},
                      index_topk=3)
    model = hf_meta(cfg)
    assert hf_counts(model) == ledger_counts(account(from_hf_config(model.config.to_dict(), "tiny")))


FIGURES = __import__("json").loads((__import__("conftest").ROOT / "fixtures" / "dsa" / "deepseek_v32.json").read_text())


def test_published_checkpoint_tensors_and_elements():
    """The preset's stored checkpoint (fp8 blocks of 128 x 128 with their weight_scale_inv; the MTP layer 61;
    indexer.weights_proj left in bf16) against the published file listing: every tensor, every element."""
    import math

    from inspector.inventory.load import account_config
    from inspector.memory.stored import stored_weights
    from inspector.spec.presets import get_preset

    cfg = dict(get_preset("deepseek-v3.2").config)
    parts = {p.name: p for t in stored_weights(account_config(cfg, "m", "config.json"), cfg).tensors for p in t.parts}
    assert len(parts) == FIGURES["checkpoint_tensors"]
    assert sum(math.prod(p.shape) for p in parts.values()) == FIGURES["checkpoint_elements"]
    for name, (shape, dtype) in FIGURES["checkpoint_rows"].items():
        assert list(parts[name].shape) == shape and (dtype is None or parts[name].dtype == dtype), name


def test_vllm_indexer_cache_bytes():
    from inspector.memory.serving import vllm_indexer_bytes
    from inspector.spec.presets import get_preset

    spec = from_hf_config(dict(get_preset("deepseek-v3.2").config), "v3.2").text
    assert vllm_indexer_bytes(spec) == FIGURES["vllm_indexer_cache_bytes_per_token_layer"]


KIMI = __import__("json").loads((__import__("conftest").ROOT / "fixtures" / "dsa" / "kimi_linear.json").read_text())


def test_kimi_linear_checkpoint_and_card():
    """The preset's inventory against the published listing (every tensor and element) and the model card's
    "48B total, 3B activated": 48B is the count without the embedding and LM head (49.12B with them), 3B the
    active count without the input embedding (3.11B; 3.48B with it)."""
    import math

    from inspector.inventory.load import account_config
    from inspector.memory.stored import stored_weights
    from inspector.spec.presets import get_preset

    cfg = dict(get_preset("kimi-linear-48b-a3b").config)
    acc = account_config(cfg, "m", "config.json")
    parts = {p.name: p for t in stored_weights(acc, cfg).tensors for p in t.parts}
    assert len(parts) == KIMI["checkpoint_tensors"]
    assert sum(math.prod(p.shape) for p in parts.values()) == KIMI["checkpoint_elements"]
    for name, shape in KIMI["checkpoint_rows"].items():
        assert list(parts[name].shape) == shape, name
    t, card = acc.totals, KIMI["model_card"]
    assert int(t.non_embedding_params / 1e9) == int(card["total"].rstrip("B"))
    assert round((t.moe.active_params - t.embedding_params // 2) / 1e9) == int(card["active"].rstrip("B"))


KIMI_TINY = tiny_config("kimi_linear", num_hidden_layers=4, q_lora_rank=None, kv_lora_rank=16, qk_nope_head_dim=8,
                        qk_rope_head_dim=4, v_head_dim=8, num_key_value_heads=4, num_experts=8,
                        num_experts_per_token=3, num_expert_group=4, topk_group=2, moe_intermediate_size=16,
                        num_shared_experts=1, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                        linear_attn_config={"kda_layers": [1, 2, 4], "full_attn_layers": [3], "head_dim": 8,
                                            "num_heads": 2, "short_conv_kernel_size": 4})


def _dense_mlp_as_published(path) -> None:
    """transformers 5.25 saves kimi_linear by reversing its load-time renames, block_sparse_moe. -> mlp. included,
    so a dense layer's MLP comes out as block_sparse_moe.gate_proj; the published checkpoint stores it under
    mlp. (as the listing of fixtures/dsa/kimi_linear.json shows): the saved file is put back in that layout."""
    import re

    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    dense = re.compile(r"block_sparse_moe\.(gate_proj|up_proj|down_proj)\.")
    save_file({dense.sub(r"mlp.\1.", k): v for k, v in tensors.items()}, str(path), metadata={"format": "pt"})


def test_kimi_linear_forward_equals_transformers(tmp_path):
    """Logits of the reference against transformers (fp32, eager; its chunked KDA prefill and its one-token
    recurrent decode), every weight perturbed: prefill of 11 tokens, then a prefill of 7 and 4 decode steps
    carrying the conv and recurrent states and the MLA latent."""
    from hf_reference import perturbed_pair, prefill_and_decode_match

    hf, ours = perturbed_pair(KIMI_TINY, tmp_path,
                              edit=lambda folder: _dense_mlp_as_published(folder / "model.safetensors"))
    run = prefill_and_decode_match(hf, ours, KIMI_TINY["vocab_size"])
    with torch.no_grad():
        split = ours.new_cache()  # a prefill continued from a state: chunked form with an initial state, padded conv
        ours(run.ids[:, :7], split)
        assert (ours(run.ids[:, 7:], split) - run.got[:, 7:]).abs().max().item() < run.tol
    assert run.cache.state[0].shape == (2, 2, 8, 8) and run.cache.conv[0].shape == (2, 48, 4)


def test_kimi_linear_kv_and_state_equal_transformers_cache_tensors():
    """bf16 forward of 3 tokens: the MLA latent and RoPE key of the full layers, the conv and float32 recurrent
    states of the KDA layers, as transformers' cache holds them, equal our KV bytes and linear state."""
    from inspector.inventory.accounting import kv_line, linear_state

    tokens = 3
    from hf_reference import bf16_cache

    cache = bf16_cache(KIMI_TINY, tokens)
    kv = conv = recurrent = 0
    for layer in cache.layers:
        if hasattr(layer, "recurrent_states"):
            conv += sum(v.numel() * v.element_size() for v in layer.conv_states.values())
            recurrent += sum(v.numel() * v.element_size() for v in layer.recurrent_states.values())
        else:
            kv += layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
    spec = from_hf_config(KIMI_TINY, "tiny")
    state = linear_state(spec.text)
    assert account(spec).totals.kv_cache_bytes_per_token * tokens == kv > 0
    assert (state.layers * state.conv_bytes, state.layers * state.recurrent_bytes) == (conv, recurrent)
    assert kv_line(spec.text) == "1 of 4 layers keep a KV cache"


@pytest.mark.parametrize("preset", ["deepseek-v3.2", "kimi-linear-48b-a3b"])
def test_presets_answer_natively(preset, tmp_path):
    """memory (the preset cut to its first 4 layers, for time) and flops answer from the native families (exit 0,
    no transformers path); vLLM's page for DeepSeek-V3.2 holds the bf16 latent and the fp8 indexer keys (1,152 +
    132 B a token and layer) in blocks of 64 tokens. `trace -m PRESET --device meta` is tests/test_offline_presets.py's (every preset)."""
    import json

    from typer.testing import CliRunner

    from inspector.cli.app import app
    from inspector.spec.presets import get_preset

    cfg = json.loads(json.dumps(get_preset(preset).config))
    cfg["num_hidden_layers"] = 4
    if "linear_attn_config" in cfg:
        cfg["linear_attn_config"].update(kda_layers=[1, 2, 3], full_attn_layers=[4])
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    runner = CliRunner()
    result = runner.invoke(app, ["memory", str(tmp_path), "--gpu", "H100-80GB", "-f", "json"])
    assert result.exit_code == 0, result.output[-400:]
    data = json.loads(result.stdout)
    assert data.get("path", "native") == "native"
    if preset == "deepseek-v3.2":
        assert data["kv_bytes_per_token_layer"] == 1152 + FIGURES["vllm_indexer_cache_bytes_per_token_layer"]
        assert data["block_size"] == FIGURES["vllm_sparse_mla_block_size"]
    result = runner.invoke(app, ["flops", preset, "--seq-len", "128", "-f", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout).get("path", "native") == "native", result.output[-400:]


def test_vllm_dsa_latent_bytes():
    """vLLM's DeepSeek-V3.2 cache: bf16 latent (512 + 64) x 2; with an fp8 cache its fp8_ds_mla layout, 656 B."""
    from inspector.memory.serving import vllm_dsa_latent_bytes
    from inspector.spec.presets import get_preset

    spec = from_hf_config(dict(get_preset("deepseek-v3.2").config), "v3.2").text
    assert (vllm_dsa_latent_bytes(spec, 2), vllm_dsa_latent_bytes(spec, 1)) == (1152, FIGURES["vllm_fp8_ds_mla_bytes"])


def test_kimi_flops_equal_flop_counter_over_transformers():
    """transformers' own Kimi Linear forward (its chunked KDA prefill, recurrent decode, a prefill after a cached one;
    NoPE MLA; dense MLPs: no routed experts), counted by FlopCounterMode on CPU (its KDA reads values: .item()
    refuses meta) == the ledger."""
    from test_flops import hf_counts, hf_meta, ledger_counts

    cfg = {**KIMI_TINY, "num_hidden_layers": 2, "mlp_layer_types": ["dense", "dense"],
           "linear_attn_config": {**KIMI_TINY["linear_attn_config"], "kda_layers": [1], "full_attn_layers": [2]}}
    model = hf_meta(cfg, device="cpu")
    acc = account(from_hf_config(model.config.to_dict(), "tiny"))
    assert hf_counts(model) == ledger_counts(acc)
    from torch.utils.flop_counter import FlopCounterMode

    from inspector.compute.flops import Pass, ledger

    def run(n, start, cache=None):  # 5 tokens after 7 in the cache: the conv pads both sides, the chunked form
        ids, mask = torch.zeros(2, n, dtype=torch.long), torch.ones(2, start + n, dtype=torch.long)
        positions = torch.arange(start, start + n)[None].expand(2, n)
        return model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                     **({"cache": cache} if cache is not None else {}))

    with torch.no_grad():
        cache = run(7, 0).cache
        with FlopCounterMode(display=False) as counter:
            run(5, 7, cache)
    assert counter.get_total_flops() == ledger(acc, Pass(5, 7, 2)).computed


@pytest.mark.parametrize("cfg", [FORWARD["sparse-topk"], KIMI_TINY], ids=["deepseek_v32", "kimi_linear"])
def test_left_padded_row_equals_its_unpadded_self(cfg):
    """Pads are masked out of the indexer's scores (so never among a query's top-k) and zeroed before a KDA layer
    (so they leave its states at zero): a left-padded row gives its unpadded logits."""
    from hf_reference import left_padding_difference

    assert left_padding_difference(from_hf_config(cfg, "tiny").text, low=3) < 1e-4
