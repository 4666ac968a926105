"""The inventory of a decoder LLM: every tensor its checkpoint holds, in checkpoint order.

Names are those of the published Hugging Face checkpoints, from the family's name templates.
Pure functions, no I/O.
"""

from __future__ import annotations

from inspector.inventory.entry import ATTN, EMBED, FINAL_NORM, HEAD, IN_NORM, LM, MLP, POST_NORM, WeightEntry
from inspector.spec.text import TextSpec


def _linear(t: TextSpec, role: str, layer: int, group: str, out_f: int, in_f: int, bias: bool):
    yield WeightEntry(t.name(role, layer, ".weight"), (out_f, in_f), LM, group, role + ".weight", layer)
    if bias:
        yield WeightEntry(t.name(role, layer, ".bias"), (out_f,), LM, group, role + ".bias", layer)


def _layer(t: TextSpec, i: int):
    d = t.hidden_size
    yield WeightEntry(t.name("attn_norm", i), (d,), LM, IN_NORM, "attn_norm", i)
    if t.fused_qkv:
        yield from _linear(t, "qkv", i, ATTN, t.q_dim + 2 * t.kv_dim, d, t.qkv_bias)
    else:
        yield from _linear(t, "q", i, ATTN, t.q_dim, d, t.qkv_bias)
        yield from _linear(t, "k", i, ATTN, t.kv_dim, d, t.qkv_bias)
        yield from _linear(t, "v", i, ATTN, t.kv_dim, d, t.qkv_bias)
    yield from _linear(t, "o", i, ATTN, d, t.q_dim, t.o_bias)
    if t.qk_norm:
        yield WeightEntry(t.name("q_norm", i), (t.head_dim,), LM, ATTN, "q_norm", i)
        yield WeightEntry(t.name("k_norm", i), (t.head_dim,), LM, ATTN, "k_norm", i)
    yield WeightEntry(t.name("mlp_norm", i), (d,), LM, POST_NORM, "mlp_norm", i)
    inter = t.intermediate_size
    if t.fused_gate_up:
        yield from _linear(t, "gate_up", i, MLP, 2 * inter, d, t.mlp_bias)
    else:
        yield from _linear(t, "gate", i, MLP, inter, d, t.mlp_bias)
        yield from _linear(t, "up", i, MLP, inter, d, t.mlp_bias)
    yield from _linear(t, "down", i, MLP, d, inter, t.mlp_bias)


def text_inventory(t: TextSpec) -> list[WeightEntry]:
    """Every tensor of a decoder LLM, tied LM head included (with stored=False)."""
    embed = t.name("embed")
    out = [WeightEntry(embed, (t.vocab_size, t.hidden_size), LM, EMBED, "embed")]
    for i in range(t.num_layers):
        out.extend(_layer(t, i))
    out.append(WeightEntry(t.name("final_norm"), (t.hidden_size,), LM, FINAL_NORM, "final_norm"))
    out.append(
        WeightEntry(
            t.name("lm_head"), (t.vocab_size, t.hidden_size), LM, HEAD, "lm_head",
            stored=not t.tie_embeddings, tied_to=embed if t.tie_embeddings else None,
        )
    )
    return out


