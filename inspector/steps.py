"""One record per step of a traced forward pass or of an image's preprocessing, and the folding of
repeated layers: shared by the text trace (inspector.runtime.trace) and the image trace
(inspector.runtime.vlm_trace). Plain data, no torch.

A record's name locates it: `layers.3.attn.q` (a text model), `vision.blocks.5`, `text.layers.0.mlp`
(a VLM). Its `stack` is the part before the repeated index (`layers`, `vision.blocks`,
`text.layers`) and `layer` the index; `collapse` folds, stack by stack, the layers whose records
have the same shapes as that stack's layer 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

_LAYER = re.compile(r"^((?:\w+\.)*?\w*(?:layers|blocks))\.(\d+)(?:\.|$)")


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
    """(first, last): the layers of `stack` folded into one row."""

    stack: str

    def __new__(cls, first: int, last: int, stack: str = "layers") -> "Folded":
        obj = super().__new__(cls, (first, last))
        obj.stack = stack
        return obj


def _signature(records: Iterable[Record]) -> tuple:
    return tuple((_LAYER.sub("", r.name), r.shapes, r.dtype) for r in records)


def collapse(rows: list[Record], show_layers: set[int] | None = None) -> list[Record | Folded]:
    """Rows with repeated layers folded: a Folded (first, last) range stands for layers of one stack
    whose records have the shapes of that stack's layer 0 and are not in `show_layers` (default {0})."""
    show = {0} if show_layers is None else show_layers
    by_layer: dict[tuple[str, int], list[Record]] = {}
    for r in rows:
        if r.layer is not None:
            by_layer.setdefault((r.stack, r.layer), []).append(r)
    folded = set()
    for (stack, i), recs in by_layer.items():
        base = _signature(by_layer.get((stack, 0), []))
        if i not in show and (i == 0 or _signature(recs) == base):
            folded.add((stack, i))
    out: list[Record | Folded] = []
    for r in rows:
        key = (r.stack, r.layer)
        last = out[-1] if out and isinstance(out[-1], Folded) and out[-1].stack == r.stack else None
        if r.layer is None or key not in folded:
            out.append(r)
        elif last is not None and last[1] in (r.layer, r.layer - 1):
            out[-1] = Folded(last[0], r.layer, r.stack)
        elif not (last is not None and last[0] <= r.layer <= last[1]):
            out.append(Folded(r.layer, r.layer, r.stack))
    return out
