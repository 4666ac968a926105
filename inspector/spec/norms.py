"""Norms as data: the kinds of norm a decoder uses, where a layer puts them, and the q/k norms.

`NORMS`: one frozen `NormKind` per kind (RMS or layer norm, a bias or not, Gemma's weight stored
as an offset from 1). `PLACEMENTS`: one `Placement` per way a layer arranges its norms around
attention and the feed-forward part (pre-norm, Gemma's sandwich, OLMo 2's post-norm, parallel
attention and MLP after one shared norm or after a norm each). `QK_NORMS`: where a q/k norm
normalises (each head, or all heads at once). A family names its entries (`Family.norm`,
`Family.placement`, `Family.qk_norm`); the inventory, the reference model and the reports read
the records a spec holds, so a new kind is one row here and nothing else branches on its name.
A name missing from a table is refused when the spec is read (`norm_kind`, `placement`, `qk_norm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from inspector.errors import InspectError


@dataclass(frozen=True)
class NormKind:
    """One kind of norm: y = norm(x) * w (+ b) over the last dimension.

    `rms`: x / sqrt(mean(x^2) + eps) (RMSNorm), else (x - mean) / sqrt(var + eps) (LayerNorm).
    `bias`: a bias vector beside the weight. `offset`: the weight is stored as an offset from 1,
    the norm multiplies by (1 + w) (Gemma; the reference computes it in float32). `label`: how
    a trace names the norm.
    """

    name: str
    rms: bool
    bias: bool
    label: str
    offset: bool = False
    float_weight: bool = False  # the weight multiplies the float32 normalised x, then the dtype (Gemma 3n/4)

    @property
    def row(self) -> str:
        """The row of the parameter tables its tensors go to ("RMS norm (input)", ...)."""
        return "RMS norm" if self.rms else "Layer norm"


NORMS: Mapping[str, NormKind] = MappingProxyType({k.name: k for k in (
    NormKind("rms", rms=True, bias=False, label="RMS norm"),
    NormKind("rms_offset", rms=True, bias=False, offset=True, label="RMS norm (1 + w)"),
    NormKind("rms_f32", rms=True, bias=False, float_weight=True, label="RMS norm (w in float32)"),
    NormKind("layer", rms=False, bias=True, label="layer norm"),
    NormKind("layer_no_bias", rms=False, bias=False, label="layer norm (no bias)"),
)})

# Every row name a norm's tensors can be listed under (the charts count them as "Norms").
NORM_ROWS = tuple(dict.fromkeys(k.row for k in NORMS.values()))


@dataclass(frozen=True)
class Placement:
    """Where a decoder layer's norms sit: the norm roles (checkpoint order) before and after
    attention and the feed-forward part, and each role's place in its table row.

    `parallel`: attention and the feed-forward part both read (norms of) the same x and one
    residual add follows them (GPT-J, GPT-NeoX, Phi-2, Cohere); the feed-forward part reads the
    attention's norm when it has none of its own. A family's `use_parallel_residual: false` turns
    a parallel placement into "pre" (spec.text).
    """

    name: str
    before_attn: tuple[str, ...]
    after_attn: tuple[str, ...]
    before_mlp: tuple[str, ...]
    after_mlp: tuple[str, ...]
    places: Mapping[str, str]  # norm role -> where it sits, as its row says ("input", "pre-MLP", ...)
    parallel: bool = False

    @property
    def roles(self) -> tuple[str, ...]:
        return self.before_attn + self.after_attn + self.before_mlp + self.after_mlp


FINAL_PLACE = "final"  # the row place of the norm after the last layer

_AROUND = MappingProxyType({"post_attn_norm": "after attention", "post_mlp_norm": "after MLP"})

PLACEMENTS: Mapping[str, Placement] = MappingProxyType({p.name: p for p in (
    Placement("pre", ("attn_norm",), (), ("mlp_norm",), (),
              MappingProxyType({"attn_norm": "input", "mlp_norm": "post-attention"})),
    Placement("sandwich", ("attn_norm",), ("post_attn_norm",), ("mlp_norm",), ("post_mlp_norm",),
              MappingProxyType({"attn_norm": "input", "mlp_norm": "pre-MLP", **_AROUND})),
    Placement("post", (), ("post_attn_norm",), (), ("post_mlp_norm",), _AROUND),
    Placement("parallel", ("attn_norm",), (), (), (), MappingProxyType({"attn_norm": "input"}), parallel=True),
    # Nemotron-H: a layer is one block (a mixer or a feed-forward part) behind one norm
    Placement("single", ("attn_norm",), (), (), (), MappingProxyType({"attn_norm": "input"})),
    Placement("parallel_two_norms", ("attn_norm",), (), ("mlp_norm",), (),
              MappingProxyType({"attn_norm": "input, attention", "mlp_norm": "input, MLP"}), parallel=True),
)})


@dataclass(frozen=True)
class QKNorm:
    """A norm of the queries and keys before RoPE, in the family's norm kind.

    `per_head`: over d_h of each head (Qwen3, Gemma 3), else over all heads at once (OLMo 2).
    `scope`: what a trace says it normalises over; `label`: the architecture page's note.
    """

    name: str
    per_head: bool
    scope: str
    label: str


QK_NORMS: Mapping[str, QKNorm] = MappingProxyType({q.name: q for q in (
    QKNorm("head", per_head=True, scope="over d_h", label="per head"),
    QKNorm("full", per_head=False, scope="over all heads (n_h d_h)", label="over the full width"),
)})


def _pick(table: Mapping, name: str, where: str, field: str, what: str):
    if name not in table:
        raise InspectError(f"{where}: field '{field}' names {what} {name!r}, not one of {', '.join(table)}")
    return table[name]


def norm_kind(name: str, where: str) -> NormKind:
    """The norm kind a family names (`where`: the family, for the one-line refusal)."""
    return _pick(NORMS, name, where, "norm", "norm kind")


def placement(name: str, where: str) -> Placement:
    return _pick(PLACEMENTS, name, where, "placement", "norm placement")


def qk_norm(name: str, where: str) -> QKNorm | None:
    """None for a family without q/k norms (an empty name)."""
    return _pick(QK_NORMS, name, where, "qk_norm", "q/k norm") if name else None
