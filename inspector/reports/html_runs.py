"""The parts of the HTML report that need a run: the traced forward pass and the verified checkpoint.

The trace is the step table of `inspect trace`, with every run of layers whose steps and shapes
equal layer 0's folded into a <details> that opens on the steps they share. The verify part is the
summary of `inspect verify` (its own report builder) and every tensor matched or not: failures one
by one, matches grouped by name template (layer and expert indices as N), so a 100,000-tensor
checkpoint stays a short page.
"""

from __future__ import annotations

import re
from typing import Any

from inspector.limits import MAX_ROWS
from inspector.reports.markup import cell, esc, notes_list, prose, table, tag
from inspector.steps import collapse
from inspector.units import plural

_INDEX = re.compile(r"\.\d+(?=\.)")
_LAYER = re.compile(r"^layers\.\d+")
HEADERS = ["Step", "Name", "Module", "Output shape", "Dtype", "What happens"]
MAX_FINDINGS = MAX_ROWS  # the page lists as many findings as a table or md report (inspector.limits)


def _shape(shapes) -> str:
    return ", ".join(str(tuple(s)) for s in shapes)


def _step_row(r, name: str | None = None) -> str:
    return tag("tr", "".join(tag("td", cell(v)) for v in
                             (r.step, name or r.name, r.module, _shape(r.shapes), r.dtype, r.text)))


def trace_html(result: Any) -> str:
    """`result` is an inspector.steps.TraceResult."""
    by_layer: dict[int, list] = {}
    for r in result.rows:
        if r.layer is not None:
            by_layer.setdefault(r.layer, []).append(r)
    tokens = ", ".join(f"{t}:{s!r}" for t, s in zip(result.tokens[:48], result.token_strings[:48]))
    more = f" … (+{len(result.tokens) - 48})" if len(result.tokens) > 48 else ""
    rows = [tag("tr", "".join(tag("td", cell(v)) for v in ("Step 3", "tokenize", "tokenizer",
                                                           f"(1, {len(result.tokens)})", "int64", f"ids {tokens}{more}")))]
    for item in collapse(result.rows):
        if not isinstance(item, tuple):
            rows.append(_step_row(item))
            continue
        first, last = item
        steps = by_layer.get(first, [])
        inner = "".join(_step_row(r, _LAYER.sub("layers.N", r.name)) for r in steps)
        label = f"layers {first}–{last}" if last > first else f"layer {first}"
        summary = tag("summary", esc(f"{label} ({last - first + 1} layers): the same {len(steps)} steps and "
                                     f"shapes as layer 0 (N = {first}…{last}); open to see them"))
        nested = tag("table", tag("thead", tag("tr", "".join(tag("th", h) for h in HEADERS))) + tag("tbody", inner),
                     data_section=f"trace-layers-{first}-{last}")
        rows.append(tag("tr", tag("td", tag("details", summary + nested), colspan=6), class_="folded",
                        data_layers=f"{first}-{last}"))
    token, text = result.next_tokens[0], result.next_strings[0]
    note = f"next token {token} {text!r}" if token is not None else "meta device: shapes only, no values to sample"
    rows.append(tag("tr", "".join(tag("td", cell(v)) for v in ("Step 10", "sample", "argmax", "(1,)", "int64", note))))
    caption = (f"Forward pass of {result.model} on {result.device} ({result.dtype}), "
               f"{plural(len(result.tokens), 'token')} of {result.prompt_text!r}")
    head = tag("thead", tag("tr", "".join(tag("th", h) for h in HEADERS)))
    return tag("p", esc(caption)) + tag("table", head + tag("tbody", "".join(rows)), data_section="trace")


STATUS = {"ok": ("ok ✓", "ok"), "missing": ("MISSING ✗", "bad"), "unexpected": ("UNEXPECTED ✗", "bad"),
          "shape": ("SHAPE MISMATCH ✗", "bad"), "tied-stored": ("STORED although tied ✗", "bad"),
          "tied": ("absent: tied to the embedding (fine)", "ok"), "buffer": ("buffer (not a parameter)", "ok"),
          "listed": ("listed (no inventory)", "ok")}


def _shape_text(shape) -> str:
    return "" if shape is None else str(tuple(shape))


def verify_html(result: Any) -> str:
    """`result` is an inspector.checkpoint.verify.VerifyResult."""
    from inspector.checkpoint.verify import FAILING
    from inspector.reports.verify import verify_report

    report = verify_report(result)
    parts = [table(s) for s in report.sections if s.title != "Findings"]
    failing = [f for f in result.findings if f.status in FAILING]
    groups: dict[tuple, int] = {}
    for f in result.findings:
        if f.status not in FAILING:
            key = (_INDEX.sub(".N", f.name), f.status, _shape_text(f.expected), _shape_text(f.actual), f.dtype or "")
            groups[key] = groups.get(key, 0) + 1
    rows = [_finding_row(f.name, f.status, _shape_text(f.expected), _shape_text(f.actual), f.dtype or "", 1)
            for f in failing[:MAX_FINDINGS]]
    rows += [_finding_row(*key, count) for key, count in groups.items()]
    headers = ["Tensor (N: any layer or expert)", "Status", "Expected", "Found", "Dtype", "Tensors"]
    body = tag("table", tag("thead", tag("tr", "".join(tag("th", h) for h in headers))) + tag("tbody", "".join(rows)),
               data_section="tensors")
    dropped = len(failing) - MAX_FINDINGS
    note = tag("p", prose(f"… and {dropped} more failing tensors (see `inspect verify --format json`)")) if dropped > 0 else ""
    return "".join(parts) + tag("h3", "Every tensor, matched or not") + body + note + notes_list(report.notes)


def _finding_row(name: str, status: str, expected: str, found: str, dtype: str, count: int) -> str:
    text, cls = STATUS.get(status, (status, ""))
    cells = [tag("td", esc(name)), tag("td", esc(text), class_=cls), tag("td", esc(expected)),
             tag("td", esc(found)), tag("td", esc(dtype)), tag("td", str(count), class_="num")]
    return tag("tr", "".join(cells), data_status=status, data_count=count)


__all__ = ["trace_html", "verify_html"]
