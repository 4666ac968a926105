"""Hybrid linear-attention families (Qwen3-Next): names, shapes and totals against transformers on the
meta device, the public config's totals against the model card, and the KV and state bytes against the
tensors transformers' own cache holds after a forward.

Oracles: transformers 5.25 (meta-device models, a real bf16 forward of a tiny model on CPU), the model
card's published totals and transformers' default-config cache figures (fixtures/hybrid/qwen3_next.json,
with their sources)."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, tiny_config
from inspector.inventory.accounting import account, kv_line, linear_state
from inspector.inventory.entry import MTP
from inspector.spec.model import from_hf_config
from inspector.spec.presets import get_preset

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

FIGURES = json.loads((ROOT / "fixtures" / "hybrid" / "qwen3_next.json").read_text())
TINY_GDN = dict(head_dim=8, linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8,
                linear_value_head_dim=8, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                shared_expert_intermediate_size=16)


def real_config() -> dict:
    return dict(get_preset("qwen3-next-80b-a3b").config)


def rounds_to(value: int, published: str) -> bool:
    """The card's figure in billions, rounded or cut to its digits (as tests/test_moe.py reads cards)."""
    shown = float(published.rstrip("B"))
    return round(value / 1e9) == shown or shown <= value / 1e9 < shown + 1


def test_public_config_totals_equal_transformers_and_the_card():
    """(Names and shapes of the whole public config against transformers on meta: the preset's case of
    tests/test_weights.py::test_presets_equal_transformers_on_meta; of a tiny one: tests/test_families.py.)"""
    acc = account(from_hf_config(real_config(), "qwen3-next"))
    t = acc.totals
    assert t.total_params == FIGURES["transformers_meta_total"]
    card = FIGURES["model_card"]
    assert rounds_to(t.total_params, card["total"])
    assert rounds_to(t.non_embedding_params, card["non_embedding"])
    # the card's "3B activated": active without the embedding and the LM head is 3.25B
    assert rounds_to(t.moe.active_params - t.embedding_params, card["active"])


def test_default_config_kv_and_state_equal_transformers_cache_figures():
    spec = from_hf_config(transformers.AutoConfig.for_model("qwen3_next").to_dict(), "default")
    fig = FIGURES["transformers_default_cache"]
    assert account(spec).totals.kv_cache_bytes_per_token == fig["kv_bytes_per_token_bf16"]
    assert linear_state(spec.text).bytes_per_sequence == fig["state_bytes_per_sequence"]
    assert kv_line(spec.text) == f"{fig['kv_layers']} of {fig['layers']} layers keep a KV cache"


@pytest.mark.parametrize("layer_types", [None, ["linear_attention", "full_attention", "full_attention",
                                                "linear_attention", "linear_attention"]], ids=["interval", "listed"])
def test_kv_and_state_bytes_equal_transformers_cache_tensors(layer_types):
    cfg = tiny_config("qwen3_next", num_hidden_layers=5, **TINY_GDN,
                      **({"layer_types": layer_types} if layer_types else {}))
    tokens = 3
    from hf_reference import bf16_cache

    cache = bf16_cache(cfg, tokens)
    kv = conv = recurrent = 0
    kv_layers = []
    for i, layer in enumerate(cache.layers):
        if hasattr(layer, "recurrent_states"):
            conv += sum(v.numel() * v.element_size() for v in layer.conv_states.values())
            recurrent += sum(v.numel() * v.element_size() for v in layer.recurrent_states.values())
        else:
            kv_layers.append(i)
            kv += (layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size())
    spec = from_hf_config(cfg, "tiny")
    state = linear_state(spec.text)
    assert list(spec.text.kv_layers) == kv_layers
    assert account(spec).totals.kv_cache_bytes_per_token * tokens == kv
    assert account(spec).kv_cache_bytes(tokens) == kv
    assert state.layers * state.conv_bytes == conv and state.layers * state.recurrent_bytes == recurrent


def test_bad_layer_types_one_line(tmp_path):
    from inspector.errors import InspectError

    cfg = tiny_config("qwen3_next", num_hidden_layers=2, layer_types=["linear_attention", "sliding_attention"])
    with pytest.raises(InspectError, match="layer_types.*must list 2 of full_attention, linear_attention"):
        from_hf_config(cfg, "bad")


GDN = {k: TINY_GDN[k] for k in ("head_dim", "linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
                                 "linear_value_head_dim")}
FORWARD = {
    "qwen3_next": tiny_config("qwen3_next", num_hidden_layers=4, partial_rotary_factor=0.5, **TINY_GDN),
    "qwen3_5_text": tiny_config("qwen3_5_text", num_hidden_layers=4, partial_rotary_factor=0.5, **GDN),
    "qwen3_5_moe_text": tiny_config("qwen3_5_moe_text", num_hidden_layers=4, partial_rotary_factor=0.5, **TINY_GDN),
}


@pytest.mark.parametrize("case", list(FORWARD), ids=list(FORWARD))
def test_reference_forward_equals_transformers_prefill_and_cached_decode(case, tmp_path):
    """Logits of the reference model against transformers (fp32, eager, its chunked prefill and its one-token
    recurrent decode), every weight perturbed so the decay, the conv and the gates all matter (logits ~7):
    prefill of 11 tokens, then a prefill of 7 and 4 decode steps carrying the conv and recurrent states."""
    from hf_reference import perturbed_pair, prefill_and_decode_match

    cfg = FORWARD[case]
    hf, ours = perturbed_pair(cfg, tmp_path)
    run = prefill_and_decode_match(hf, ours, cfg["vocab_size"])  # logits up to ~9, so a tolerance of ~2e-4
    assert (run.steps - run.got[:, 6:]).abs().max().item() < run.tol
    cache = run.cache
    assert cache.length == 11 and cache.state[0].shape == (2, 4, 8, 8) and cache.conv[0].shape == (2, 64, 4)


@pytest.mark.filterwarnings("ignore::inspector.errors.InspectWarning")  # default merger wider than the LLM
@pytest.mark.parametrize("model_type", ["qwen3_5", "qwen3_5_moe"])
def test_qwen3_5_wrappers_names_and_shapes_equal_transformers(model_type):
    """The Qwen3.5 VLMs' default configs (4 of their text layers) against transformers' state dict on meta.
    Routed experts are compared in total: transformers holds them fused (E, 2I, d), checkpoints one by one.
    (transformers' conversion mapping of qwen3_5 renames model.language_model. to model., for its text-only
    class: names are compared directly here, not through it.)"""
    from inspector.inventory.model import inventory

    cfg = transformers.AutoConfig.for_model(model_type).to_dict()
    cfg["text_config"]["num_hidden_layers"] = 4
    cfg["text_config"]["layer_types"] = cfg["text_config"]["layer_types"][:4]
    config = type(transformers.AutoConfig.for_model(model_type)).from_dict(cfg)
    with torch.device("meta"):
        model = transformers.AutoModelForImageTextToText.from_config(config)
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    spec = from_hf_config(cfg, model_type)
    ours = {e.name: e.shape for e in inventory(spec) if e.stored and e.component != MTP}
    routed = {k for k in ours if ".experts." in k}
    assert {k: v for k, v in ours.items() if k not in routed} == {k: v for k, v in theirs.items() if ".experts." not in k}
    assert account(spec).totals.total_params == sum(p.numel() for p in model.parameters())


def test_left_padded_row_equals_its_unpadded_self():
    """Pads are zeroed before a Gated DeltaNet layer (as transformers' apply_mask_to_padding_states does), so
    they leave its conv and recurrent states at zero: a left-padded row gives its unpadded logits."""
    from hf_reference import left_padding_difference

    assert left_padding_difference(from_hf_config(FORWARD["qwen3_next"], "tiny").text) < 1e-4


def test_mtp_module_stored_beside_the_model():
    """Qwen3-Next's checkpoint keeps a multi-token-prediction module under mtp.* (names as vLLM's
    qwen3_next_mtp.py loads them): listed as optional, outside the model's total (transformers drops it on load)."""
    acc = account(from_hf_config(real_config(), "qwen3-next"))
    mtp = [e for e in acc.entries if e.component == MTP]
    names = {e.name for e in mtp}
    assert {"mtp.fc.weight", "mtp.norm.weight", "mtp.pre_fc_norm_hidden.weight", "mtp.pre_fc_norm_embedding.weight",
            "mtp.layers.0.self_attn.q_proj.weight", "mtp.layers.0.mlp.experts.511.down_proj.weight",
            "mtp.layers.0.mlp.shared_expert_gate.weight"} <= names
    assert all(e.optional for e in mtp) and not any(".linear_attn." in n for n in names)
    assert acc.totals.total_params == FIGURES["transformers_meta_total"]
    assert acc.totals.extra[MTP] == sum(e.numel for e in mtp)
