"""Report of `inspect explain`: the log's settings, each logged term set against ours, and the log's own checks.

Sections: the log (file, version, engine, model, GPU total), the settings used and where each came
from, the terms (logged, ours, difference in GiB and in % of the GPU's total, our status, why they
differ), the checks of the logged values against one another, and the sources of our terms. The
JSON holds the same under stable keys: log, version, engine, model, gpu_total_bytes, settings, terms,
checks, needs, notes.
"""

from __future__ import annotations

from typing import Any

from inspector.memory.explain import LABELS, Explanation, Row
from inspector.memory.vllm import GIB
from inspector.reports.render import Report, Section


def _num(value: Any, unit: str) -> str:
    if value is None:
        return ""
    if unit == "GiB":
        return f"{value:g} GiB" if isinstance(value, float) and len(f"{value:g}") <= 7 else f"{value:.2f} GiB"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{int(value):,}"


def _ours(row: Row) -> str:
    if row.ours is None:
        return ""
    return f"{row.ours:.2f} GiB" if row.unit == "GiB" else _num(row.ours, row.unit)


def _signed(value: float, unit: str) -> str:
    """+1.23 / -1.23, and 0.00 for what rounds to zero (no "-0.00")."""
    return f"0.00{unit}" if abs(value) < 0.005 else f"{value:+.2f}{unit}"


def _difference(row: Row, total: int | None) -> tuple[str, str]:
    diff = row.difference
    if diff is None:
        return "", ""
    if row.unit == "GiB":
        pct = _signed(diff * GIB / total * 100, "%") if total else ""
        return _signed(diff, " GiB"), pct
    if row.unit == "x":
        return _signed(diff, "x"), ""
    pct = f"{diff / row.logged * 100:+.2f}% of logged" if row.logged else ""
    return f"{int(diff):+,}", pct


def _term(row: Row) -> str:
    label = LABELS[row.term]
    return f"{label}, {row.rank}" if row.rank else label


def _logged(row: Row) -> str:
    text = _num(row.logged, row.unit) if not (row.implied and row.unit == "GiB") else f"{row.logged:.2f} GiB"
    if row.logged is None:
        return "not logged"
    return f"{text} (line {row.line})" + (f" = {row.implied}" if row.implied else "")


def term_rows(e: Explanation) -> list[list[str]]:
    out = []
    for row in e.rows:
        diff, pct = _difference(row, e.gpu_total_bytes)
        out.append([_term(row), _logged(row), _ours(row), diff, pct, row.status, row.why])
    return out


def _agrees(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "NO")


def summary_rows(e: Explanation) -> list[list[str]]:
    m = e.model
    if m.used is not None:
        model = m.used + (f" ({m.kind})" if m.kind else "")
        if m.named is not None and m.named != m.used:
            model += f"; the log names {m.named} (line {m.named_line})"
    else:
        model = (f"{m.named} (line {m.named_line}): " if m.named else "") + m.problem
    total = f"{e.gpu_total_bytes / GIB:.2f} GiB" if e.gpu_total_bytes else "not known"
    return [["Log", f"{e.path} ({e.lines:,} lines{', truncated' if e.truncated else ''})"],
            ["vLLM", f"{e.version or 'version not logged'}, engine {e.engine}"],
            ["Model", model], ["GPU total (torch)", total]]


def explain_json(e: Explanation) -> dict[str, Any]:
    return {
        "log": e.path, "version": e.version, "engine": e.engine,
        "model": {"named": e.model.named, "named_line": e.model.named_line, "used": e.model.used,
                  "kind": e.model.kind, "problem": e.model.problem or None},
        "gpu_total_bytes": e.gpu_total_bytes,
        "settings": [{"name": s.name, "value": s.value, "from": s.source} for s in e.settings],
        "terms": [{"term": r.term, "rank": r.rank or None, "unit": r.unit, "logged": r.logged, "line": r.line,
                   "implied": r.implied or None, "ours": None if r.ours is None else round(r.ours, 4),
                   "ours_bytes": r.ours_bytes,
                   "difference": None if r.difference is None else round(r.difference, 4),
                   "difference_bytes": None if r.difference is None or r.unit != "GiB" else round(r.difference * GIB),
                   "status": r.status, "source": r.source or None, "why": r.why or None} for r in e.rows],
        "checks": [{"check": c.name, "formula": c.formula, "implied": c.implied, "logged": c.logged,
                    "agrees": c.agrees} for c in e.checks],
        "needs": list(e.needs), "notes": list(e.notes),
    }


def explain_report(e: Explanation) -> Report:
    settings = [[s.name, "" if s.value is None else str(s.value), s.source] for s in e.settings]
    sections = [Section("vLLM log explained", ["", ""], summary_rows(e)),
                Section("Settings", ["Setting", "Value", "From"], settings),
                Section("Terms", ["Term", "Logged", "Ours", "Difference", "% of GPU", "Status", "Why we differ"],
                        term_rows(e))]
    if e.checks:
        sections.append(Section("The log's figures against each other",
                                ["Check", "Formula", "Implied", "Logged", "Agrees"],
                                [[c.name, c.formula, c.implied, c.logged, _agrees(c.agrees)] for c in e.checks]))
    sources = {(LABELS[r.term], r.status, r.source) for r in e.rows
               if r.source and r.status in ("calibrated", "assumed")}
    if sources:
        sections.append(Section("Sources of our calibrated and assumed terms", ["Term", "Status", "Source"],
                                [list(s) for s in sorted(sources)]))
    return Report(sections, explain_json(e), notes=list(e.needs) + list(e.notes))
