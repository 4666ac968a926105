"""The inventory of a decoder LLM: every tensor its checkpoint holds, in checkpoint order.

A layer is composed of parts picked by the spec: the norms its placement puts where, the attention
kind (separate, fused, grouped or per-head q/k/v, or multi-head latent attention), and the feed-
forward kind (a gated or plain MLP, or a router plus experts). Names are those of the published
Hugging Face checkpoints, from the family's name templates. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Iterator

from inspector.inventory.entry import (
    ATTN, DENSE_MLP, EMBED, EXPERTS, HEAD, LM, MLP, MTP, MTP_HEAD, MTP_PROJ, POS_EMBED, ROUTER, ROUTER_BIAS,
    SHARED_EXPERT, WeightEntry, norm_row,
)
from inspector.spec.text import TextSpec

Entries = Iterator[WeightEntry]


def _linear(t: TextSpec, role: str, layer: int | None, group: str, out_f: int, in_f: int, bias: bool,
            component: str = LM, expert: int | None = None) -> Entries:
    shape = (in_f, out_f) if t.transposed_linears else (out_f, in_f)
    yield WeightEntry(t.name(role, layer, ".weight", expert), shape, component, group, role + ".weight", layer,
                      expert=expert)
    if bias:
        yield WeightEntry(t.name(role, layer, ".bias", expert), (out_f,), component, group, role + ".bias", layer,
                          expert=expert)


def _norm(t: TextSpec, role: str, layer: int | None, group: str, dim: int, component: str = LM) -> Entries:
    yield WeightEntry(t.name(role, layer, ".weight"), (dim,), component, group, role + ".weight", layer)
    if t.norm == "layer":
        yield WeightEntry(t.name(role, layer, ".bias"), (dim,), component, group, role + ".bias", layer)


def _raw(t: TextSpec, role: str, layer: int, group: str, shape: tuple[int, ...], component: str = LM,
         parameter: bool = True) -> WeightEntry:
    """A tensor whose template is its full name (fused experts, sinks, buffers)."""
    return WeightEntry(t.name(role, layer), shape, component, group, role, layer, parameter=parameter)


# --------------------------------------------------------------------------- attention


def _attention(t: TextSpec, i: int, c: str) -> Entries:
    d, bias = t.hidden_size, t.qkv_bias
    if t.mla is not None:
        yield from _mla(t, i, c)
    elif t.fused_qkv:
        yield from _linear(t, "qkv", i, ATTN, t.q_dim + 2 * t.kv_dim, d, bias, c)
    else:
        yield from _linear(t, "q", i, ATTN, t.q_dim, d, bias, c)
        yield from _linear(t, "k", i, ATTN, t.kv_dim, d, bias, c)
        yield from _linear(t, "v", i, ATTN, t.kv_dim, d, bias, c)
    yield from _linear(t, "o", i, ATTN, d, t.attn_out_dim, t.o_bias, c)
    if t.qk_norm_kind:
        full = t.qk_norm_kind == "full"
        yield from _norm(t, "q_norm", i, ATTN, t.q_dim if full else t.head_dim, c)
        yield from _norm(t, "k_norm", i, ATTN, t.kv_dim if full else t.head_dim, c)
    if t.attention_sinks:
        yield _raw(t, "sinks", i, ATTN, (t.num_heads,), c)


def _mla(t: TextSpec, i: int, c: str) -> Entries:
    """q through a low-rank latent (or directly), kv through one shared latent plus a RoPE key."""
    m, d, h = t.mla, t.hidden_size, t.num_heads
    if m.q_lora_rank:
        yield from _linear(t, "q_a", i, ATTN, m.q_lora_rank, d, t.qkv_bias, c)
        yield from _norm(t, "q_a_norm", i, ATTN, m.q_lora_rank, c)
        yield from _linear(t, "q_b", i, ATTN, h * m.qk_head_dim, m.q_lora_rank, False, c)
    else:
        yield from _linear(t, "q", i, ATTN, h * m.qk_head_dim, d, False, c)
    yield from _linear(t, "kv_a", i, ATTN, m.kv_lora_rank + m.qk_rope_head_dim, d, t.qkv_bias, c)
    yield from _norm(t, "kv_a_norm", i, ATTN, m.kv_lora_rank, c)
    yield from _linear(t, "kv_b", i, ATTN, h * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank, False, c)


# --------------------------------------------------------------------------- feed-forward


def _mlp(t: TextSpec, i: int, group: str, width: int, c: str, prefix: str = "", bias: bool | None = None) -> Entries:
    d = t.hidden_size
    bias = t.mlp_bias if bias is None else bias
    if t.mlp == "plain":
        yield from _linear(t, "fc1", i, group, width, d, bias, c)
        yield from _linear(t, "fc2", i, group, d, width, bias, c)
        return
    if t.mlp == "gated_fused" and not prefix:
        yield from _linear(t, "gate_up", i, group, 2 * width, d, bias, c)
    else:
        yield from _linear(t, prefix + "gate", i, group, width, d, bias, c)
        yield from _linear(t, prefix + "up", i, group, width, d, bias, c)
    yield from _linear(t, prefix + "down", i, group, d, width, bias, c)


def _experts(t: TextSpec, i: int, c: str) -> Entries:
    """Router, routed experts (one by one, or fused as stored), shared expert(s)."""
    m, d = t.moe, t.hidden_size
    yield from _linear(t, "router", i, ROUTER, m.num_experts, d, m.router_bias, c)
    if m.score_bias:
        yield _raw(t, "router_score_bias", i, ROUTER_BIAS, (m.num_experts,), c, parameter=False)
    if m.fused:
        e, w = m.num_experts, m.expert_intermediate
        yield _raw(t, "experts_gate_up", i, EXPERTS, (e, d, 2 * w), c)
        if m.expert_bias:
            yield _raw(t, "experts_gate_up_bias", i, EXPERTS, (e, 2 * w), c)
        yield _raw(t, "experts_down", i, EXPERTS, (e, w, d), c)
        if m.expert_bias:
            yield _raw(t, "experts_down_bias", i, EXPERTS, (e, d), c)
    else:
        for e in range(m.num_experts):
            yield from _linear(t, "expert_gate", i, EXPERTS, m.expert_intermediate, d, m.expert_bias, c, e)
            yield from _linear(t, "expert_up", i, EXPERTS, m.expert_intermediate, d, m.expert_bias, c, e)
            yield from _linear(t, "expert_down", i, EXPERTS, d, m.expert_intermediate, m.expert_bias, c, e)
    if m.shared_intermediate:
        yield from _mlp(t, i, SHARED_EXPERT, m.shared_intermediate, c, prefix="shared_", bias=False)
        if m.shared_expert_gate:
            yield from _linear(t, "shared_expert_gate", i, SHARED_EXPERT, 1, d, False, c)


def _feed_forward(t: TextSpec, i: int, c: str) -> Entries:
    if t.is_moe_layer(i) or (c == MTP and t.moe is not None):
        yield from _experts(t, i, c)
    else:
        yield from _mlp(t, i, DENSE_MLP if t.moe is not None else MLP, t.intermediate_size, c)


# --------------------------------------------------------------------------- layers and model

# The norms each placement puts in a layer, in checkpoint order around attention and feed-forward.
_BEFORE_ATTN = {"pre": ("attn_norm",), "sandwich": ("attn_norm",), "post": (), "parallel": ("attn_norm",)}
_AFTER_ATTN = {"pre": (), "sandwich": ("post_attn_norm",), "post": ("post_attn_norm",), "parallel": ()}
_BEFORE_MLP = {"pre": ("mlp_norm",), "sandwich": ("mlp_norm",), "post": (), "parallel": ("mlp_norm",)}
_AFTER_MLP = {"pre": (), "sandwich": ("post_mlp_norm",), "post": ("post_mlp_norm",), "parallel": ()}


def _layer(t: TextSpec, i: int, c: str = LM) -> Entries:
    d, p = t.hidden_size, t.placement
    before_mlp = _BEFORE_MLP[p] if p != "parallel" or t.parallel_norms == 2 else ()
    for role in _BEFORE_ATTN[p]:
        yield from _norm(t, role, i, norm_row(t, role), d, c)
    yield from _attention(t, i, c)
    for role in _AFTER_ATTN[p] + before_mlp:
        yield from _norm(t, role, i, norm_row(t, role), d, c)
    yield from _feed_forward(t, i, c)
    for role in _AFTER_MLP[p]:
        yield from _norm(t, role, i, norm_row(t, role), d, c)


def _mtp(t: TextSpec, i: int) -> Entries:
    """DeepSeek-V3's multi-token-prediction module, stored as layer `i` after the model's layers:
    its own embedding, two norms and a projection, one decoder layer, and its own head."""
    d, v = t.hidden_size, t.vocab_size
    shapes = {"mtp_embed": (v, d), "mtp_enorm": (d,), "mtp_hnorm": (d,), "mtp_eh_proj": (d, 2 * d)}
    for role, shape in shapes.items():
        yield WeightEntry(t.name(role, i), shape, MTP, MTP_PROJ, role, i, optional=True)
    for e in _layer(t, i, MTP):
        yield WeightEntry(e.name, e.shape, MTP, e.group, e.role, e.layer, expert=e.expert, parameter=e.parameter,
                          optional=True)
    for role, shape in (("mtp_head_norm", (d,)), ("mtp_head", (v, d))):
        yield WeightEntry(t.name(role, i), shape, MTP, MTP_HEAD, role, i, optional=True)


def text_inventory(t: TextSpec) -> list[WeightEntry]:
    """Every tensor of a decoder LLM, tied LM head included (with stored=False)."""
    embed = t.name("embed")
    out = [WeightEntry(embed, (t.vocab_size, t.hidden_size), LM, EMBED, "embed")]
    if t.learned_positions:
        out.append(WeightEntry(t.name("pos_embed"), (t.max_position_embeddings, t.hidden_size), LM, POS_EMBED,
                               "pos_embed"))
    for i in range(t.num_layers):
        out.extend(_layer(t, i))
    out.extend(_norm(t, "final_norm", None, norm_row(t, "final_norm"), t.hidden_size))
    tied = embed if t.tie_embeddings else None
    out.append(WeightEntry(t.name("lm_head", suffix=".weight"), (t.vocab_size, t.hidden_size), LM, HEAD,
                           "lm_head", stored=not tied, tied_to=tied))
    if t.lm_head_bias:
        out.append(WeightEntry(t.name("lm_head", suffix=".bias"), (t.vocab_size,), LM, HEAD, "lm_head.bias"))
    for i in range(t.num_layers, t.num_layers + t.mtp_layers):
        out.extend(_mtp(t, i))
    return out
