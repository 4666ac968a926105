"""The tensor inventory: every tensor a checkpoint of a spec should hold, with its name and shape.

One list of `WeightEntry` records, in checkpoint order, drives `params` (grouped into rows by
inventory.accounting), `verify` (compared with checkpoint headers) and the reference model's
weight loading (looked up by role and layer). Names are those of the published Hugging Face
checkpoints. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.spec import ModelSpec, TextSpec

LM = "language_model"


@dataclass(frozen=True)
class WeightEntry:
    """One expected tensor.

    `group` is the row of seed 003's tables it belongs to; `role` is the family-independent
    part it plays ("q.weight", "embed", ...); `stored` is False for a tied LM head, which the
    checkpoint does not hold (`tied_to` names the tensor it shares).
    """

    name: str
    shape: tuple[int, ...]
    component: str
    group: str
    role: str
    layer: int | None = None
    stored: bool = True
    tied_to: str | None = None

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


# Row names, in the order of seed 003's Table 1.2.
EMBED, IN_NORM, ATTN, POST_NORM, MLP, FINAL_NORM, HEAD = (
    "Embedding", "RMS norm (input)", "Attention layer", "RMS norm (post-attention)",
    "MLP layer", "RMS norm (final)", "LM head",
)


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


def inventory(spec: ModelSpec) -> list[WeightEntry]:
    """The whole model's inventory: vision tower and projector first, then the LLM."""
    if spec.vision is None:
        return text_inventory(spec.text)
    from inspector.vision_weights import vision_inventory

    return vision_inventory(spec.vision) + text_inventory(spec.text)
