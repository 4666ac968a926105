"""The tensors Gemma 3n / Gemma 4 add to a decoder: per-layer inputs, AltUp, LAuReL, the layer scalar.

Names are those of transformers 5.25's Gemma3nForCausalLM / Gemma4ForCausalLM state dicts (models/gemma3n,
models/gemma4), through the family's templates (spec.families GEMMA_PLE_NAMES); sizes from the spec's
`PerLayerSpec` (inspector.spec.per_layer). Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Iterator

from inspector.inventory.entry import (
    ALTUP, ALTUP_PROJ, ATTN, DENSE_MLP, EXPERTS, LAUREL, LAYER_SCALAR, LM, MLP, PLE, PLE_TABLE, ROUTER, WeightEntry,
)

MOE_NORMS = "RMS norm (MoE branch)"  # Gemma 4: after the dense MLP, before and after the experts
from inspector.spec.text import TextSpec

Entries = Iterator[WeightEntry]
RAW_ROLES = frozenset({"ple_embed", "layer_scalar", "altup_scale", "g4_router_scale", "g4_expert_scale", "g4_gate_up",
                       "g4_down"})  # templates that already end in the parameter's name


def _entry(t: TextSpec, role: str, shape: tuple[int, ...], group: str, layer: int | None = None,
           stream: int | None = None, parameter: bool = True) -> WeightEntry:
    """One tensor; a linear's or norm's role gets ".weight" (the name template lacks it)."""
    suffix = "" if role in RAW_ROLES else ".weight"
    return WeightEntry(t.name(role, layer, suffix, stream), shape, LM, group, role + suffix, layer,
                       expert=stream, parameter=parameter)


def attention_row(t: TextSpec, i: int) -> str:
    """The row of layer i's attention: layers of one shape share a row (Gemma 4's global layers, with their
    own head_dim / kv heads / keys as values, and the KV-shared layers, without K/V, have their own)."""
    p = t.per_layer
    kinds = []
    if (p.head_dims[i], p.kv_heads[i], p.k_eq_v[i]) != (t.head_dim, t.num_kv_heads, False):
        kinds.append(f"global, d_h {p.head_dims[i]}")
    if p.is_shared(i):
        kinds.append("KV-shared")
    return f"{ATTN} ({', '.join(kinds)})" if kinds else ATTN


def mlp_row(t: TextSpec, i: int) -> str:
    """The row of layer i's MLP: one row per width when the widths differ (Gemma 3n's list, Gemma 4's
    double-wide KV-shared layers)."""
    base = DENSE_MLP if t.moe is not None else MLP
    widths = t.per_layer.widths
    return base if len(set(widths)) == 1 else f"{base} (d_ff {widths[i]:,})"


def gemma_experts(t: TextSpec, i: int) -> Entries:
    """Gemma 4's experts beside the dense MLP: the router (a weightless norm, a (d,) scale, d -> E, a scale per
    expert), the fused experts (E, 2 d_e, d) gate rows first and (E, d, d_e), and the norms after the dense
    MLP, before the experts and after them (transformers Gemma4TextRouter, Gemma4TextExperts)."""
    m, d = t.moe, t.hidden_size
    yield _entry(t, "g4_router", (m.num_experts, d), ROUTER, i)
    yield _entry(t, "g4_router_scale", (d,), ROUTER, i)
    yield _entry(t, "g4_expert_scale", (m.num_experts,), ROUTER, i)
    yield _entry(t, "g4_gate_up", (m.num_experts, 2 * m.expert_intermediate, d), EXPERTS, i)
    yield _entry(t, "g4_down", (m.num_experts, d, m.expert_intermediate), EXPERTS, i)
    for role in ("g4_norm_mlp", "g4_norm_pre", "g4_norm_experts"):
        yield _entry(t, role, (d,), MOE_NORMS, i)


def gemma_layer_extras(t: TextSpec, i: int) -> Entries:
    """Layer i's AltUp (router, its norm, prediction and correction coefficients, output scale) and
    LAuReL (d -> rank -> d and a norm), its per-layer-input gate (d -> p), projection (p -> d) and norm,
    and Gemma 4's layer scalar (a stored (1,) buffer)."""
    p, d = t.per_layer, t.hidden_size
    if p.altup_inputs:
        k = p.altup_inputs
        yield _entry(t, "altup_scale", (d,), ALTUP, i)
        yield _entry(t, "altup_correct", (k, k), ALTUP, i)
        yield _entry(t, "altup_predict", (k * k, k), ALTUP, i)
        yield _entry(t, "altup_router", (k, d), ALTUP, i)
        yield _entry(t, "altup_router_norm", (d,), ALTUP, i)
        yield _entry(t, "laurel_left", (p.laurel_rank, d), LAUREL, i)
        yield _entry(t, "laurel_right", (d, p.laurel_rank), LAUREL, i)
        yield _entry(t, "laurel_norm", (d,), LAUREL, i)
    if p.ple_dim:
        yield _entry(t, "ple_gate", (p.ple_dim, d), PLE, i)
        yield _entry(t, "ple_out", (d, p.ple_dim), PLE, i)
        yield _entry(t, "ple_out_norm", (d,), PLE, i)
    if p.layer_scalar:
        yield _entry(t, "layer_scalar", (1,), LAYER_SCALAR, i, parameter=False)


def gemma_model_extras(t: TextSpec) -> Entries:
    """The per-layer input embedding (looked up by token id), the projection of the token embedding to
    every layer's input and its norm; Gemma 3n's AltUp stream projections in (d -> d, streams 1..k-1)
    and out (the same, before the streams are averaged)."""
    p, d, n = t.per_layer, t.hidden_size, t.num_layers
    if p.ple_dim:
        yield _entry(t, "ple_embed", (p.ple_vocab, n * p.ple_dim), PLE_TABLE)
        yield _entry(t, "ple_proj", (n * p.ple_dim, d), PLE_TABLE)
        yield _entry(t, "ple_norm", (p.ple_dim,), PLE_TABLE)
    for role in ("altup_in", "altup_out") if p.altup_inputs else ():
        for j in range(p.altup_inputs - 1):
            yield _entry(t, role, (d, d), ALTUP_PROJ, stream=j)


DROPPED_KV = "K/V of KV-shared layers (stored by checkpoints, dropped on load)"


def dropped_kv_entries(t: TextSpec) -> list[WeightEntry]:
    """The k_proj / v_proj / k_norm that published Gemma 3n / 4 checkpoints still store for their KV-shared layers,
    which transformers drops on load (`_keys_to_ignore_on_load_unexpected` of Gemma4TextModel / Gemma3nTextModel
    in 5.25) and which the model never reads: optional (a checkpoint saved by transformers lacks them) and not
    parameters of the loaded model. Evidence: google/gemma-4-E2B's safetensors header holds 2011 tensors, 60 of
    them these (20 shared layers x 3). For `verify` only; the inventory follows transformers' state dict."""
    p = t.per_layer
    if p is None:
        return []
    out = []
    for i in (i for i in range(t.num_layers) if p.is_shared(i)):
        s = t.at_layer(i)
        roles = [("k", (s.kv_dim, s.hidden_size))] + ([] if p.k_eq_v[i] else [("v", (s.kv_dim, s.hidden_size))])
        if s.qk_norm_kind is not None:
            roles.append(("k_norm", (s.head_dim if s.qk_norm_kind.per_head else s.kv_dim,)))
        out.extend(WeightEntry(t.name(role, i, ".weight"), shape, LM, DROPPED_KV, role + ".weight", i,
                               parameter=False, optional=True) for role, shape in roles)
    return out
