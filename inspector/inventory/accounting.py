"""Accounting: the inventory grouped into table rows, and the totals block. Pure, no formatting.

Rows follow seed 003's tables: one row per (component, group), counted once per repetition.
Totals distinguish what a checkpoint stores (a tied LM head once) from the convention of seed
003's Table 1.4 (the LM head counted separately), and embedding from non-embedding parameters
(non-embedding = without the token embedding and without the LM head, the model cards' definition).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from inspector.inventory.entry import WeightEntry
from inspector.inventory.model import inventory
from inspector.spec.model import ModelSpec
from inspector.units import WEIGHT_BYTES_PER_PARAM

KV_BYTES = 2  # the KV cache is counted in bf16

COMPONENT_ORDER = ("vision_encoder", "projector", "language_model")


@dataclass(frozen=True)
class Row:
    """One table row: a group of tensors repeated `repeat` times (once per layer)."""

    component: str
    name: str
    repeat: int
    weights: tuple[tuple[str, tuple[int, ...]], ...]  # (name template, shape) of one repetition
    params: int  # per repetition
    stored: bool = True  # False: a tied LM head, not stored in the checkpoint
    note: str = ""

    @property
    def total(self) -> int:
        return self.params * self.repeat


@dataclass(frozen=True)
class Totals:
    total_params: int
    total_params_untied: int
    embedding_params: int
    non_embedding_params: int
    components: dict[str, int]
    weight_bytes: dict[str, float]
    kv_cache_bytes_per_token: int
    tied_embeddings: bool


@dataclass(frozen=True)
class Accounting:
    spec: ModelSpec
    rows: list[Row]
    totals: Totals
    entries: list[WeightEntry] = field(repr=False)

    def kv_cache_bytes(self, context: int, batch: int = 1) -> int:
        return self.totals.kv_cache_bytes_per_token * context * batch


def _template(e: WeightEntry) -> str:
    """The entry's name with its layer index as N ('visual.merger.mlp.0' keeps its 0)."""
    if e.layer is None:
        return e.name
    return re.sub(rf"\.{e.layer}\.", ".N.", e.name, count=1)


def rows_of(entries: list[WeightEntry]) -> list[Row]:
    """Group entries into rows; a row's weights are those of its first repetition."""
    order: list[tuple[str, str]] = []
    first: dict[tuple[str, str], list[WeightEntry]] = {}
    layers: dict[tuple[str, str], set] = {}
    for e in entries:
        key = (e.component, e.group)
        if key not in first:
            order.append(key)
            first[key] = []
            layers[key] = set()
        layers[key].add(e.layer)
        if e.layer is None or e.layer == min(x for x in layers[key] if x is not None):
            first[key].append(e)
    rows = []
    for key in order:
        group = first[key]
        repeat = len(layers[key])
        stored = all(e.stored for e in group)
        tied = next((e.tied_to for e in group if e.tied_to), None)
        rows.append(
            Row(
                component=key[0],
                name=key[1],
                repeat=repeat,
                weights=tuple((_template(e), e.shape) for e in group),
                params=sum(e.numel for e in group),
                stored=stored,
                note=f"tied to {tied}: counted once, not stored" if tied else "",
            )
        )
    return rows


def account(spec: ModelSpec) -> Accounting:
    entries = inventory(spec)
    rows = rows_of(entries)
    t = spec.text
    stored = sum(e.numel for e in entries if e.stored)
    untied = sum(e.numel for e in entries)
    embedding = sum(e.numel for e in entries if e.stored and e.role in ("embed", "lm_head"))
    components: dict[str, int] = {}
    for name in COMPONENT_ORDER:
        n = sum(e.numel for e in entries if e.stored and e.component == name)
        if n or name == "language_model":
            components[name] = n
    totals = Totals(
        total_params=stored,
        total_params_untied=untied,
        embedding_params=embedding,
        non_embedding_params=stored - embedding,
        components=components,
        weight_bytes={k: stored * v for k, v in WEIGHT_BYTES_PER_PARAM.items()},
        kv_cache_bytes_per_token=2 * t.num_layers * t.num_kv_heads * t.head_dim * KV_BYTES,
        tied_embeddings=t.tie_embeddings,
    )
    return Accounting(spec, rows, totals, entries)
