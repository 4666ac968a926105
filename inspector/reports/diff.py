"""`inspect diff A B`: what differs between two models, as a report (table, md, json) or an HTML page.

`compare(a, b)` takes two inspector.reports.diff_facts.ModelFacts and keeps only what differs:
config keys (dotted, values as compact JSON), tensors added (in B only), removed (in A only) or
changed in shape or dtype, the quantization, the parameter totals, the tokenizer (vocabulary
size, special tokens, added tokens) and the chat template as a unified diff. `--weights` adds the
per-layer relative change (inspector.checkpoint.weight_diff's rows, only the changed ones listed).
A diff of a model against itself is empty: no section, one note saying so.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from inspector.reports.diff_facts import ModelFacts, TokenizerFacts
from inspector.reports.render import Report, Section
from inspector.units import Count

ABSENT = "(absent)"
_LAYER_INDEX = re.compile(r"\.(?:layers|h|blocks)\.(\d+)\.")


@dataclass
class ModelDiff:
    """Every difference between A and B, by kind; empty lists where they agree."""

    a: str
    b: str
    config: list[tuple[str, str, str]] = field(default_factory=list)  # key, A's value, B's value
    tensors: list[tuple[str, str, str, str]] = field(default_factory=list)  # name, change, A, B
    quantization: tuple[str, str] | None = None
    params: list[tuple[str, Any, Any]] = field(default_factory=list)
    tokenizer: list[tuple[str, Any, Any]] = field(default_factory=list)
    template: list[str] = field(default_factory=list)  # unified diff lines
    notes: list[str] = field(default_factory=list)
    weights: list | None = None  # inspector.checkpoint.weight_diff.LayerChange rows, with --weights

    @property
    def same(self) -> bool:
        changed_layers = [r for r in self.weights or [] if r.changed]
        return not (self.config or self.tensors or self.quantization or self.params or self.tokenizer
                    or self.template or changed_layers)


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"))


def _config(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for key in sorted(a.keys() | b.keys()):
        if key in a and key in b and a[key] == b[key] and type(a[key]) is type(b[key]):
            continue
        rows.append((key, _value(a[key]) if key in a else ABSENT, _value(b[key]) if key in b else ABSENT))
    return rows


def _shape(shape: tuple[int, ...], dtype: str) -> str:
    return f"{tuple(shape)} {dtype}"


def _tensor_rows(a: ModelFacts, b: ModelFacts) -> list[tuple[str, str, str, str]]:
    ta, tb = a.tensors or {}, b.tensors or {}
    rows = []
    for name in sorted(ta.keys() | tb.keys()):
        if name not in tb:
            rows.append((name, "removed", _shape(*ta[name]), ABSENT))
        elif name not in ta:
            rows.append((name, "added", ABSENT, _shape(*tb[name])))
        elif ta[name] != tb[name]:
            what = " and ".join(w for w, i in (("shape", 0), ("dtype", 1)) if ta[name][i] != tb[name][i])
            rows.append((name, what, _shape(*ta[name]), _shape(*tb[name])))
    return rows


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> "0–2,5"."""
    runs: list[list[int]] = []
    for i in sorted(indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(f"{lo}–{hi}" if hi > lo else str(lo) for lo, hi in runs)


def _tensors(a: ModelFacts, b: ModelFacts) -> list[tuple[str, str, str, str]]:
    """Tensor rows, the layers that change alike folded into one row (`model.layers.{0–29}.mlp...`)."""
    groups: dict[tuple[str, str, str, str], list[int]] = {}
    order: list[tuple[str, str, str, str]] = []
    for name, change, va, vb in _tensor_rows(a, b):
        m = _LAYER_INDEX.search(name)
        key = (name[:m.start(1)] + "{}" + name[m.end(1):], change, va, vb) if m else (name, change, va, vb)
        if key not in groups:
            groups[key] = []
            order.append(key)
        if m:
            groups[key].append(int(m.group(1)))
    rows = []
    for key in order:
        template, change, va, vb = key
        layers = groups[key]
        if layers:
            template = template.replace("{}", "{" + _ranges(layers) + "}" if len(layers) > 1 else str(layers[0]), 1)
        rows.append((template, change, va, vb))
    return rows


def _params(a: ModelFacts, b: ModelFacts) -> list[tuple[str, Any, Any]]:
    rows = []
    for label, attr in (("parameters (config)", "params_config"), ("parameters (checkpoint)", "params_checkpoint")):
        va, vb = getattr(a, attr), getattr(b, attr)
        if va != vb and va is not None and vb is not None:
            rows.append((label, Count(va), Count(vb)))
    return rows


def _added(tok: TokenizerFacts, content: str) -> str:
    if content not in tok.added:
        return ABSENT
    i, special = tok.added[content]
    return f"id {i}" + (", special" if special else "")


def _tokenizer(a: TokenizerFacts, b: TokenizerFacts) -> list[tuple[str, Any, Any]]:
    rows: list[tuple[str, Any, Any]] = []
    if a.vocab_size != b.vocab_size:
        rows.append(("vocab size (added tokens included)", Count(a.vocab_size), Count(b.vocab_size)))
    for role in sorted(a.special.keys() | b.special.keys()):
        if a.special.get(role) != b.special.get(role):
            rows.append((f"special token: {role}", a.special.get(role, ABSENT), b.special.get(role, ABSENT)))
    for content in sorted(a.added.keys() | b.added.keys(), key=lambda c: (a.added.get(c) or b.added[c])[0]):
        if a.added.get(content) != b.added.get(content):
            rows.append((f"added token {content!r}", _added(a, content), _added(b, content)))
    return rows


def _template(a: TokenizerFacts, b: TokenizerFacts, names: tuple[str, str]) -> list[str]:
    ta, tb = a.chat_template or "", b.chat_template or ""
    if ta == tb:
        return []
    return [line.rstrip("\n") for line in difflib.unified_diff(
        ta.splitlines(keepends=True), tb.splitlines(keepends=True),
        fromfile=f"{names[0]} chat template" + ("" if ta else " (none)"),
        tofile=f"{names[1]} chat template" + ("" if tb else " (none)"), lineterm="\n")]


def _label(model: str) -> str:
    """A column heading: a path's file or directory name, a preset or Hub id as given."""
    import os

    return os.path.basename(model.rstrip("/\\")) or model if os.sep in model else model


def compare(a: ModelFacts, b: ModelFacts) -> ModelDiff:
    """What differs between A and B (headers, configs and tokenizers only; weights: see `with_weights`)."""
    d = ModelDiff(a.name, b.name, notes=[*a.notes, *b.notes])
    d.config = _config(a.config, b.config)
    if a.tensors is not None and b.tensors is not None:
        d.tensors = _tensors(a, b)
        d.notes.append(f"tensors: {_label(a.name)} from {a.tensors_from}; {_label(b.name)} from {b.tensors_from}")
    if a.quantization != b.quantization:
        d.quantization = (a.quantization, b.quantization)
    d.params = _params(a, b)
    if a.tokenizer is not None and b.tokenizer is not None:
        d.tokenizer = _tokenizer(a.tokenizer, b.tokenizer)
        d.template = _template(a.tokenizer, b.tokenizer, (a.name, b.name))
    return d


# --------------------------------------------------------------------------- the report


def _relative(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.3g}"


def _weights_section(d: ModelDiff) -> Section:
    changed = [r for r in d.weights if r.changed]
    rows = [[r.layer, Count(r.tensors), Count(r.changed), _relative(r.relative)] for r in changed]
    notes = [f"{len(d.weights) - len(changed)} of {len(d.weights)} layers and other tensors identical; "
             f"tensors compared one pair at a time, GGUF dequantized to float32"]
    return Section("Weights: relative change ‖A−B‖/‖A‖ per layer", ["Layer", "Tensors", "Changed", "Relative change"],
                   rows, notes)


def _sections(d: ModelDiff) -> list[Section]:
    ab = [_label(d.a), _label(d.b)]
    if ab[0] == ab[1]:
        ab = [f"A: {ab[0]}", f"B: {ab[1]}"]
    parts = [("Config keys that differ", ["Key", *ab], d.config),
             ("Tensors added, removed or changed", ["Tensor", "Change", *ab], d.tensors),
             ("Quantization", ["", *ab], [("quantization", *d.quantization)] if d.quantization else []),
             ("Parameter totals", ["", *ab], d.params),
             ("Tokenizer", ["", *ab], d.tokenizer),
             ("Chat template (unified diff)", [f"{ab[0]} → {ab[1]}"], [[line] for line in d.template])]
    sections = [Section(title, headers, [list(r) for r in rows]) for title, headers, rows in parts if rows]
    if d.weights is not None and any(r.changed for r in d.weights):
        sections.append(_weights_section(d))
    return sections


def _data(d: ModelDiff) -> dict[str, Any]:
    data: dict[str, Any] = {
        "a": d.a, "b": d.b, "same": d.same,
        "config": [{"key": k, "a": va, "b": vb} for k, va, vb in d.config],
        "tensors": [{"name": n, "change": c, "a": va, "b": vb} for n, c, va, vb in d.tensors],
        "quantization": {"a": d.quantization[0], "b": d.quantization[1]} if d.quantization else None,
        "params": [{"what": w, "a": int(va), "b": int(vb)} for w, va, vb in d.params],
        "tokenizer": [{"what": w, "a": va if isinstance(va, str) else int(va), "b": vb if isinstance(vb, str) else int(vb)}
                      for w, va, vb in d.tokenizer],
        "chat_template_diff": d.template,
        "notes": d.notes,
    }
    if d.weights is not None:
        data["weights"] = [{"layer": r.layer, "tensors": r.tensors, "changed": r.changed,
                            "relative_change": None if math.isinf(r.relative) or math.isnan(r.relative) else r.relative,
                            "changed_tensors": list(r.changed_names)} for r in d.weights]
    return data


def diff_report(d: ModelDiff) -> Report:
    """The diff as a Report: one section per kind that differs."""
    notes = list(d.notes)
    if d.same:
        notes.insert(0, f"{_label(d.a)} and {_label(d.b)}: no differences" + (" (weights included)" if d.weights is not None else ""))
    return Report(_sections(d), _data(d), notes=notes)


def diff_section_html(d: ModelDiff) -> str:
    """The diff as HTML sections (tables, the template diff in <pre>, the notes): what `diff_html` wraps in a
    page, and what an `inspect report` page could hold as its diff section."""
    from inspector.reports.markup import esc, notes_list, table, tag

    report = diff_report(d)
    body = "".join(tag("section", table(s)) for s in report.sections if not s.title.startswith("Chat template"))
    if d.template:
        body += tag("section", tag("h3", "Chat template (unified diff)") + tag("pre", esc("\n".join(d.template))))
    return body + tag("section", notes_list(report.notes))


def diff_html(d: ModelDiff) -> str:
    """The diff as one self-contained HTML page (the report's styles; no script, no network)."""
    from inspector.reports.html import CSS
    from inspector.reports.markup import esc, tag, void

    title = f"{_label(d.a)} vs {_label(d.b)}: differences"
    head = void("meta", charset="utf-8") + tag("title", esc(f"{title}: llm-inspector diff")) + tag("style", CSS)
    header = tag("header", tag("h1", esc(title)))
    return ("<!DOCTYPE html>\n" + tag("html", tag("head", head) + tag("body", header + tag("main", diff_section_html(d))),
                                      lang="en") + "\n")


# --------------------------------------------------------------------------- --weights


def _tensor_source(facts: ModelFacts):
    """The tensor data of MODEL's checkpoint (torch): a GGUF parsed once, a safetensors file or directory,
    a Hub repo's safetensors (range reads, one tensor at a time)."""
    from inspector.checkpoint.open import format_of
    from inspector.checkpoint.tensors import open_source
    from inspector.errors import InspectError

    src = facts.source
    if src.opened is not None:
        return format_of(src.checkpoint).opened_source(src.opened)
    if src.kind == "local" and (src.checkpoint is not None or facts.params_checkpoint is not None):
        return open_source(src.checkpoint or src.directory)
    if src.kind == "hub" and facts.params_checkpoint is not None:
        from inspector.checkpoint.hub_tensors import HubSafetensorsSource

        return HubSafetensorsSource(src.hub_id or src.name)
    what = {"preset": "a preset (a config, no weights)", "hub": "a Hub id whose safetensors headers cannot be read"}
    raise InspectError(f"--weights: {facts.name} is {what.get(src.kind, 'without weights')}; --weights compares "
                       "two checkpoints (local safetensors or GGUF, or a Hub repo's safetensors by range reads)")


def with_weights(d: ModelDiff, a: ModelFacts, b: ModelFacts) -> ModelDiff:
    """`d` with the per-layer relative change of the tensors both checkpoints hold at the same shape."""
    from inspector.checkpoint.weight_diff import compare_weights

    sa, sb = _tensor_source(a), _tensor_source(b)
    names_b = sb.names()
    common = [n for n in sorted(sa.names()) if n in names_b and tuple(sa.shape(n)) == tuple(sb.shape(n))]
    d.weights = compare_weights(sa, sb, sorted(common, key=_layer_order))
    skipped = len(sa.names() | names_b) - len(common)
    if skipped:
        d.notes.append(f"--weights: {skipped} tensors not compared (in one model only, or of another shape: "
                       "see the tensor rows)")
    return d


def _layer_order(name: str) -> tuple:
    """Layers in numeric order (layers.2 before layers.10), other tensors by name around them."""
    import re

    m = re.search(r"\.(\d+)\.", name)
    return (1, int(m.group(1)), name) if m else (0 if "embed" in name else 2, 0, name)
