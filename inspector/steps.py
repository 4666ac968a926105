"""The records of a trace: one per step, a text trace's result, and the folding of repeated layers.

A step is one of a forward pass or of an image's preprocessing.

Shared by the text trace (inspector.runtime.trace), the image trace (inspector.runtime.vlm_trace)
and the reports that render them (inspector.reports.trace, .vision_trace, .run). Plain data, no torch.

A record's name locates it: `layers.3.attn.q` (a text model), `vision.blocks.5`, `text.layers.0.mlp`
(a VLM). Its `stack` is the part before the repeated index (`layers`, `vision.blocks`,
`text.layers`) and `layer` the index; `collapse` folds, stack by stack, the layers whose records
have the same shapes as an earlier layer of the same kind printed in full (layer 0, and the first
layer of each other kind: DeepSeek-V3's first MoE layer, Gemma's first global layer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

_LAYER = re.compile(r"^((?:\w+\.)*?\w*(?:layers|blocks))\.(\d{1,9})(?:\.|$)")


@dataclass(frozen=True)
class Record:
    name: str
    module: str
    shapes: tuple[tuple[int, ...], ...]
    dtype: str
    step: str = ""
    text: str = ""
    note: str = ""
    seconds: float | None = None
    data: tuple | None = None  # the values of a Tap marked record_values (None on meta)

    @property
    def layer(self) -> int | None:
        m = _LAYER.match(self.name)
        return int(m.group(2)) if m else None

    @property
    def stack(self) -> str:
        m = _LAYER.match(self.name)
        return m.group(1) if m else ""

    @property
    def shape(self) -> tuple[int, ...]:
        return self.shapes[0] if self.shapes else ()


class Folded(tuple):
    """(first, last): the layers of `stack` folded into one row; `shown` are the layers printed in full
    whose shapes they repeat."""

    stack: str
    shown: tuple[int, ...]

    def __new__(cls, first: int, last: int, stack: str = "layers", shown: tuple[int, ...] = (0,)) -> "Folded":
        obj = super().__new__(cls, (first, last))
        obj.stack, obj.shown = stack, shown
        return obj


_EXPERT = re.compile(r"\.experts\.\d+$")


def _signature(records: Iterable[Record]) -> tuple:
    """What must match for a layer to fold: names, shapes and dtypes, leaving out the routed experts
    (which of them run, on how many tokens, is data that differs from layer to layer)."""
    return tuple((_LAYER.sub("", r.name), r.shapes, r.dtype) for r in records if not _EXPERT.search(r.name))


def collapse(rows: list[Record], show_layers: set[int] | None = None) -> list[Record | Folded]:
    """Rows with repeated layers folded, stack by stack: a Folded (first, last) range stands for
    consecutive layers whose shapes each equal those of an earlier layer printed in full. Layers in
    `show_layers` (default {0}) and the first layer of each kind are printed in full."""
    show = {0} if show_layers is None else show_layers
    by_layer: dict[tuple[str, int], list[Record]] = {}
    for r in rows:
        if r.layer is not None:
            by_layer.setdefault((r.stack, r.layer), []).append(r)
    first_of_kind: dict[tuple, int] = {}
    folded: dict[tuple[str, int], int] = {}  # (stack, layer) -> the layer shown in full that it repeats
    for stack, i in sorted(by_layer, key=lambda k: (k[0], k[1])):
        signature = (stack, _signature(by_layer[(stack, i)]))
        if i not in show and signature in first_of_kind:
            folded[(stack, i)] = first_of_kind[signature]
        else:
            first_of_kind.setdefault(signature, i)
    out: list[Record | Folded] = []
    for r in rows:
        key = (r.stack, r.layer)
        last = out[-1] if out and isinstance(out[-1], Folded) and out[-1].stack == r.stack else None
        if r.layer is None or key not in folded:
            out.append(r)
        elif last is not None and last[0] <= r.layer <= last[1]:
            continue
        elif last is not None and last[1] == r.layer - 1:
            out[-1] = Folded(last[0], r.layer, r.stack, tuple(sorted({*last.shown, folded[key]})))
        else:
            out.append(Folded(r.layer, r.layer, r.stack, (folded[key],)))
    return out


def collapse_steps(steps: list[Record]) -> list[Record]:
    """The steps with every stack's layers 1..N folded into one row when their shapes equal layer 0's
    (`vision.blocks.1-31`, `text.layers.1-27`); Records in, Records out."""
    out: list[Record] = []
    by_name = {r.name: r for r in steps}
    for item in collapse(steps):
        if isinstance(item, Folded):
            first, last = item
            kind = "block" if item.stack.endswith("blocks") else "layer"
            note = f"{last - first + 1} x the same shapes as {kind} {' or '.join(map(str, item.shown))}"
            top = by_name.get(f"{item.stack}.{first}")
            shapes = top.shapes if top is not None else ()
            span = f"{first}-{last}" if last > first else f"{first}"
            out.append(Record(f"{item.stack}.{span}", "", shapes, top.dtype if top else "", "", note))
        else:
            out.append(item)
    return out


@dataclass
class TraceResult:
    """What `trace_prompt` (inspector.runtime.trace) returns: the prompts' ids, the prefill's records,
    the decode steps' records and the chosen tokens."""

    model: str
    device: str
    dtype: str
    tokens: list[int]  # the first row's ids (the only row of a single prompt)
    token_strings: list[str]
    prompt_text: str
    rows: list[Record] = field(default_factory=list)  # the prefill's records, in execution order
    decode: list[list[Record]] = field(default_factory=list)
    next_tokens: list[int | None] = field(default_factory=list)  # the first row's chosen tokens
    next_strings: list[str] = field(default_factory=list)
    batch_tokens: list[list[int]] = field(default_factory=list)  # every row's ids, unpadded
    batch_strings: list[list[str]] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)  # every row's text as run (after --chat)
    input_ids: list[list[int]] = field(default_factory=list)  # (b, n), left-padded
    pad_id: int | None = None
    batch_next: list[list[int | None]] = field(default_factory=list)  # per step, every row's token
    stand_in: str = ""  # the one-line note when the ids are stand-ins (no tokenizer offline, or --seq-len)

    @property
    def batch_size(self) -> int:
        return max(len(self.batch_tokens), 1)
