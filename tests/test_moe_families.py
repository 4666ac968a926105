"""The 2025-26 MoE families of issue 24 (GLM-4.5, MiniMax-M2, ERNIE 4.5 MoE, Hunyuan-A13B, OLMo 3): each public
config's total against transformers' meta-device total and the model card's figures, and the KV bytes per token
against the tensors transformers' own cache holds after a forward.

Oracles: transformers 5.25 (meta-device totals recorded in fixtures/moe2026/, with their sources; a real bf16
forward of a tiny model on CPU), the model cards' published totals. Names and shapes: tests/test_families.py
(default and tiny configs) and tests/test_weights.py (the presets, built on meta); logits:
tests/test_reference_families.py; FLOPs: tests/test_flops.py."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, tiny_config
from inspector.inventory.accounting import account
from inspector.spec.model import from_hf_config
from inspector.spec.presets import get_preset

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def figures(family: str) -> dict:
    return json.loads((ROOT / "fixtures" / "moe2026" / f"{family}.json").read_text())


def rounds_to(value: int, published: str, step: float = 1) -> bool:
    """The card's figure in billions, rounded or cut to its digits (as tests/test_moe.py reads cards); `step`:
    the card's rounding in billions (MiniMax's "230 billion" is rounded to tens)."""
    shown, billions = float(published.rstrip("B")), value / 1e9
    return round(billions / step) * step == shown or shown <= billions < shown + step


# family -> its preset. The card's "active" is read as active without the embedding and the LM head (as Qwen3-Next's
# card; tests/test_hybrid_families.py) unless the fixture names the other reading (Hunyuan: with them)
CARDS = {"glm4_moe": "glm-4.5-air", "minimax_m2": "minimax-m2", "ernie4_5_moe": "ernie-4.5-21b-a3b",
         "hunyuan_v1_moe": "hunyuan-a13b", "olmo3": "olmo-3-7b"}


@pytest.mark.parametrize("family", list(CARDS), ids=list(CARDS))
def test_public_config_totals_equal_transformers_and_the_card(family):
    fig = figures(family)
    t = account(from_hf_config(dict(get_preset(CARDS[family]).config), family)).totals
    assert t.total_params == fig["transformers_meta_total"] == fig.get("hub_total", t.total_params)
    card = fig["model_card"]
    assert rounds_to(t.total_params, card["total"], card.get("total_step_billions", 1))
    if t.moe is None:  # OLMo 3: dense
        return
    if card.get("active_reading") == "with_embeddings":  # the embedding and LM head counted in (Hunyuan's card)
        assert rounds_to(t.moe.active_params, card["active"])
    else:
        assert rounds_to(t.moe.active_params - t.embedding_params, card["active"])


def test_minimax_checkpoint_listing_is_parameters_biases_and_fp8_block_scales():
    """The published tensor list of MiniMax-M2.7's FP8 checkpoint (same architecture): its numel sum is our
    parameters + the selection-bias buffers + one scale per 128 x 128 block of each quantized Linear weight."""
    from inspector.inventory.model import inventory

    listing = figures("minimax_m2")["checkpoint_listing"]
    cfg = {**get_preset("minimax-m2").config, "max_position_embeddings": 204800}
    spec = from_hf_config(cfg, "minimax-m2.7")
    entries = [e for e in inventory(spec) if e.stored]
    buffers = sum(e.numel for e in entries if not e.parameter)
    kept = ("router.weight", "lm_head", "embed")  # modules_to_not_convert (gate, lm_head); the embedding is no Linear
    scales = sum(-(-e.shape[0] // 128) * -(-e.shape[1] // 128) for e in entries
                 if len(e.shape) == 2 and e.role not in kept)
    assert account(spec).totals.total_params + buffers + scales == listing["stored_numel"]


KV_CASES = {
    "glm4_moe": tiny_config("glm4_moe", head_dim=8, num_hidden_layers=3, first_k_dense_replace=1, n_routed_experts=4,
                            num_experts_per_tok=2, moe_intermediate_size=16, n_shared_experts=1, pad_token_id=0),
    "minimax_m2": tiny_config("minimax_m2", head_dim=8, num_local_experts=4, num_experts_per_tok=2, rotary_dim=4,
                              intermediate_size=16, bos_token_id=1, eos_token_id=2),
    "ernie4_5_moe": tiny_config("ernie4_5_moe", num_hidden_layers=3, moe_num_experts=4, moe_k=2, moe_intermediate_size=16,
                                moe_num_shared_experts=1),
    "hunyuan_v1_moe": tiny_config("hunyuan_v1_moe", head_dim=8, num_experts=4, moe_topk=2, intermediate_size=16),
    # transformers' sliding layers keep their last sliding_window - 1 tokens; ours price up to the window: 5 tokens
    # inside a window of 8 are the same in both (the convention at the cap is open, for every sliding family)
    "olmo3": tiny_config("olmo3", num_hidden_layers=4, sliding_window=8),
}


@pytest.mark.parametrize("case", list(KV_CASES), ids=list(KV_CASES))
def test_kv_bytes_equal_transformers_cache_tensors(case):
    cfg, tokens = KV_CASES[case], 5
    from hf_reference import bf16_cache

    cache = bf16_cache(cfg, tokens, first=1)
    kv = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    acc = account(from_hf_config(cfg, case))
    assert acc.totals.kv_cache_bytes_per_token * tokens == kv
    assert acc.kv_cache_bytes(tokens) == kv


FORWARD = ("glm4_moe", "minimax_m2", "ernie4_5_moe", "hunyuan_v1_moe", "olmo3")  # tiny configs of tests/test_reference_families.py


@pytest.mark.parametrize("case", FORWARD, ids=FORWARD)
def test_reference_forward_every_weight_perturbed_equals_transformers(case, tmp_path):
    """Logits of the reference model against transformers (fp32, eager) with every weight and selection bias
    perturbed (logits of a few units, routers that really choose): prefill of 11 tokens, then a prefill of 7 and
    4 decode steps against transformers' own cached decode."""
    from hf_reference import perturbed_pair, prefill_and_decode_match
    from test_reference_families import CASES

    cfg = CASES[case]
    hf, ours = perturbed_pair(cfg, tmp_path, buffers=lambda name: "rotary_emb" not in name)  # RoPE tables: not weights
    assert prefill_and_decode_match(hf, ours, cfg["vocab_size"]).expected.abs().max().item() > 1


@pytest.mark.parametrize("case", FORWARD, ids=FORWARD)
def test_rope_frequencies_of_the_legacy_config_equal_transformers(case):
    """The config as a release writes it (legacy rope_scaling / rotary_dim / NTK alpha, not transformers 5's
    per-layer-type rope_parameters) read into the same RoPE tables transformers builds: OLMo 3's YaRN on the
    full layers and plain RoPE on the sliding ones, MiniMax-M2's rotary_dim, Hunyuan's NTK alpha, GLM's half."""
    from dataclasses import replace

    from hf_reference import hf_tiny
    from inspector.reference.layers import inv_frequencies
    from test_reference_families import CASES

    cfg = CASES[case]
    theirs = {name.rpartition(".")[2]: buf for name, buf in hf_tiny(cfg).model.rotary_emb.named_buffers()
              if name.endswith("inv_freq") and "original" not in name}
    t = from_hf_config(cfg, case).text
    ours = {"inv_freq": inv_frequencies(t)[0]}
    if t.rope_local_theta is not None:
        local = replace(t, rope_theta=t.rope_local_theta, rope_scaling=None)
        ours = {"full_attention_inv_freq": ours["inv_freq"], "sliding_attention_inv_freq": inv_frequencies(local)[0]}
    assert set(ours) == set(theirs)
    for name, freq in ours.items():
        assert torch.allclose(freq, theirs[name].float(), rtol=1e-6, atol=0), name
