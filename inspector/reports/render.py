"""Output formats: a `Report` (titled sections of rows, plus a JSON payload) as a rich table,
GitHub markdown (tabulate), JSON or CSV, written to stdout or atomically to a file.

Report builders (inspector.reports.*) decide what goes in the cells; this module only lays them
out. A cell may be a list of lines: rich shows them on separate lines, markdown joins them with
<br>, CSV with "; ".
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspector.errors import InspectError
from inspector.files import write_atomic
from inspector.units import Count

FORMATS = ("table", "md", "json", "csv")


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    sections: list[Section]
    data: Any  # the JSON payload
    csv_headers: list[str] = field(default_factory=list)
    csv_rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _cell(value: Any, sep: str, plain: bool = False) -> str:
    """A cell as text; a Count gets thousands separators unless `plain` (CSV, for scripts)."""
    if isinstance(value, (list, tuple)):
        return sep.join(_cell(v, sep, plain) for v in value)
    if isinstance(value, Count):
        return str(int(value)) if plain else f"{value:,}"
    return "" if value is None else str(value)


def _md_cell(value: Any) -> str:
    """A markdown table cell: lines joined with <br>, pipes escaped, so text cannot break the table."""
    text = _cell(value, "\n").replace("|", "\\|")
    return "<br>".join(text.splitlines()) if "\n" in text or "\r" in text else text


def to_markdown(report: Report) -> str:
    from tabulate import tabulate

    parts: list[str] = []
    for s in report.sections:
        if s.title:
            parts.append(f"### {s.title}\n")
        rows = [[_md_cell(c) for c in r] for r in s.rows]
        parts.append(tabulate(rows, headers=s.headers, tablefmt="github", disable_numparse=True))
        parts.extend(["", *[f"- {n}" for n in s.notes]] if s.notes else [])
        parts.append("")
    if report.notes:
        parts.extend([f"- {n}" for n in report.notes] + [""])
    return "\n".join(parts).rstrip() + "\n"


def to_json(report: Report) -> str:
    return json.dumps(report.data, indent=2) + "\n"


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if report.csv_headers:
        writer.writerow(report.csv_headers)
        writer.writerows([[_cell(c, "; ", plain=True) for c in r] for r in report.csv_rows])
    else:
        for s in report.sections:
            writer.writerow(["section", *s.headers])
            writer.writerows([[s.title, *[_cell(c, "; ", plain=True) for c in r]] for r in s.rows])
    return buf.getvalue()


_NUMBER = re.compile(r"[\d,.()×x+%-]+")


def _min_widths(headers: list[str], cells: list[list[str]]) -> list[int]:
    """Columns of numbers are at least as wide as their longest number, so that none is split
    (rich folds other columns where the console is narrow)."""
    words = [[w for row in cells if i < len(row) for w in row[i].split()] for i in range(len(headers))]
    return [max((len(w) for w in ws), default=0) if ws and all(_NUMBER.fullmatch(w) for w in ws) else 0
            for ws in words]


def to_rich(report: Report, console) -> None:
    from rich.table import Table

    for s in report.sections:
        table = Table(title=s.title or None, title_justify="left", show_lines=True)
        cells = [[_cell(c, "\n") for c in r] for r in s.rows]
        for h, width in zip(s.headers, _min_widths(s.headers, cells)):
            table.add_column(h, overflow="fold", min_width=width)
        for r in cells:
            table.add_row(*r)
        console.print(table)
        for n in s.notes:
            console.print(f"  • {n}", highlight=False, markup=False)
    for n in report.notes:
        console.print(f"• {n}", highlight=False, markup=False)


def render(report: Report, fmt: str, width: int | None = None) -> str:
    """The report as text in `fmt` (rich tables rendered without colour)."""
    if fmt == "md":
        return to_markdown(report)
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "table":
        from rich.console import Console

        buf = io.StringIO()
        to_rich(report, Console(file=buf, width=width or 140, no_color=True, highlight=False))
        return buf.getvalue()
    raise InspectError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")


def emit(report: Report, fmt: str, output: Path | None = None) -> None:
    """Print the report to stdout (rich when fmt is table) or write it to `output` atomically."""
    if output is not None:
        write_atomic(output, render(report, fmt))
        return
    if fmt == "table":
        from rich.console import Console

        to_rich(report, Console())
    else:
        import sys

        sys.stdout.write(render(report, fmt))
