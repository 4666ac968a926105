"""Output formats: a `Report` as a rich table, GitHub markdown, JSON or CSV, to stdout or a file.

A `Report` is titled sections of rows plus a JSON payload; markdown is tabulate's GitHub format; a file is
written atomically.

Report builders (inspector.reports.*) decide what goes in the cells; this module only lays them
out. A cell may be a list of lines: rich shows them on separate lines, markdown joins them with
<br>, CSV with "; ".

Every piece of text a report holds may come from input (a tensor name, a config value, a prompt),
so every format shows it through `visible` (control characters escaped: no escape sequence reaches
a terminal), and rich gets it as `Text`, never as markup: `[/b]` or `[red]x[/red]` is shown as written.

A table lists at most MAX_ROWS rows in the formats people read (table, md) and MAX_DATA_ROWS in
those scripts read (json, csv) (inspector.limits), so a hostile count (a config of 100,000 layers, a
checkpoint of 200,000 unexpected tensors) cannot make the output grow without bound: `capped` cuts
each section's rows, the CSV rows and every list in the JSON payload, and says how many were left
out (a section note; `<key>_not_listed` beside a JSON list; a warning line on stderr). Totals are the
builders' and are computed over everything before the cut. A builder may stop at MAX_DATA_ROWS
itself and say how many it left out (`Section.not_listed`, a `<key>_not_listed` key).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspector.errors import InspectError, visible, warn
from inspector.files import write_atomic
from inspector.limits import MAX_DATA_ROWS, MAX_ROWS
from inspector.units import Count

FORMATS = ("table", "md", "json", "csv")


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)
    not_listed: int = 0  # rows a builder left out already (it built at most MAX_ROWS)


@dataclass
class Report:
    sections: list[Section]
    data: Any  # the JSON payload
    csv_headers: list[str] = field(default_factory=list)
    csv_rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def row_limit(fmt: str) -> int:
    """Rows a table lists in `fmt`: MAX_ROWS for table and md, MAX_DATA_ROWS for json and csv."""
    return MAX_ROWS if fmt in ("table", "md") else MAX_DATA_ROWS


def _not_listed(n: int, limit: int) -> str:
    return f"{n:,} more rows not listed (at most {limit:,} are; the totals count every row)"


def _cap_data(data: Any, cut: list[int], limit: int = MAX_DATA_ROWS) -> Any:
    """The JSON payload with every list over `limit` cut, and `<key>_not_listed` beside it."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key.endswith("_not_listed") and isinstance(value, int) and value > 0:
                cut.append(value)  # a builder that listed at most MAX_ROWS itself
            out[key] = _cap_data(value, cut, limit)
            if isinstance(value, list) and len(value) > limit:
                out[f"{key}_not_listed"] = len(value) - limit + data.get(f"{key}_not_listed", 0)
        return out
    if isinstance(data, list):
        if len(data) > limit:
            cut.append(len(data) - limit)
        return [_cap_data(v, cut, limit) for v in data[:limit]]
    return data


def capped(report: Report, fmt: str) -> Report:
    """The report with at most row_limit(fmt) rows per table (see the module docstring); only the
    parts `fmt` shows are looked at."""
    limit, cut = row_limit(fmt), []
    sections = []
    shows_sections = fmt in ("table", "md") or (fmt == "csv" and not report.csv_headers)
    for s in report.sections if shows_sections else ():
        left = max(0, len(s.rows) - limit) + s.not_listed
        if left:
            cut.append(left)
            s = Section(s.title, s.headers, s.rows[:limit], [*s.notes, _not_listed(left, limit)])
        sections.append(s)
    csv_rows = report.csv_rows if fmt == "csv" else []
    if len(csv_rows) > limit:
        cut.append(len(csv_rows) - limit)
        csv_rows = csv_rows[:limit]
    data = _cap_data(report.data, cut, limit) if fmt == "json" else report.data
    if cut:
        warn(f"{max(cut):,} rows not listed: {fmt} output lists at most {limit:,} rows of a table "
             "(the totals count every row)")
    return Report(sections if shows_sections else report.sections, data, report.csv_headers, csv_rows,
                  report.notes)


def _cell(value: Any, sep: str, plain: bool = False) -> str:
    """A cell as text; a Count gets thousands separators unless `plain` (CSV, for scripts)."""
    if isinstance(value, (list, tuple)):
        return sep.join(_cell(v, sep, plain) for v in value)
    if isinstance(value, Count):
        return str(int(value)) if plain else f"{value:,}"
    return "" if value is None else visible(value)


def _md_cell(value: Any) -> str:
    """A markdown table cell: lines joined with <br>, pipes escaped, so text cannot break the table."""
    text = _cell(value, "\n").replace("|", "\\|")
    return "<br>".join(text.splitlines()) if "\n" in text or "\r" in text else text


def to_markdown(report: Report) -> str:
    from tabulate import tabulate

    parts: list[str] = []
    for s in report.sections:
        if s.title:
            parts.append(f"### {_cell(s.title, ' ')}\n")
        rows = [[_md_cell(c) for c in r] for r in s.rows]
        headers = [_md_cell(h) for h in s.headers]
        parts.append(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
        parts.extend(["", *[f"- {_cell(n, ' ')}" for n in s.notes]] if s.notes else [])
        parts.append("")
    if report.notes:
        parts.extend([f"- {_cell(n, ' ')}" for n in report.notes] + [""])
    return "\n".join(parts).rstrip() + "\n"


def to_json(report: Report) -> str:
    return json.dumps(report.data, indent=2) + "\n"


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if report.csv_headers:
        writer.writerow([_cell(h, "; ", plain=True) for h in report.csv_headers])
        writer.writerows([[_cell(c, "; ", plain=True) for c in r] for r in report.csv_rows])
    else:
        for s in report.sections:
            writer.writerow(["section", *[_cell(h, "; ", plain=True) for h in s.headers]])
            writer.writerows([[_cell(s.title, "; "), *[_cell(c, "; ", plain=True) for c in r]] for r in s.rows])
    return buf.getvalue()


_NUMBER = re.compile(r"[\d,.()×x+%-]+")


def _column_widths(headers: list[str], cells: list[list[str]], width: int, layout: tuple[int, bool] = (1, True)
                   ) -> tuple[list[int] | None, bool]:
    """Content widths for a table `width` columns wide: None when every cell fits on its lines.
    Otherwise the widest wrappable column shrinks first, never below its longest word, so cells
    break between words and never inside a tensor name or a number; only when the words cannot all
    fit do names give up width (cut after a '.', '/' or ':' by `_wrap`; hyphenated words after a
    hyphen), never numbers. `layout`: (spaces of padding each side of a cell, padding at the table's edges)."""
    pad, pad_edge = layout
    columns = [[h, *(row[i] for row in cells if i < len(row))] for i, h in enumerate(headers)]
    natural = [max(len(line) for cell in col for line in cell.splitlines() or [""]) for col in columns]
    floor = [max((len(w) for cell in col[1:] for w in cell.split()), default=0) for col in columns]
    floor = [max([f, *(len(w) for w in h.split())]) for f, h in zip(floor, headers)]
    room = width - (len(headers) + 1) - 2 * pad * len(headers) + (0 if pad_edge else 2 * pad)  # borders, padding
    widths = list(natural)
    while sum(widths) > room:
        shrinkable = [i for i in range(len(widths)) if widths[i] > floor[i]]
        if not shrinkable:
            break
        i = max(shrinkable, key=lambda j: widths[j])
        others = [widths[j] for j in range(len(widths)) if j != i]
        target = max(floor[i], min(max(others, default=0), widths[i] - 1), widths[i] - (sum(widths) - room))
        widths[i] = target if target < widths[i] else widths[i] - 1
    keep = [max([8, *(len(w) for cell in col[1:] for w in cell.split() if _NUMBER.fullmatch(w))])
            for col in columns]  # numbers are never cut, whatever else shares their column
    pieces = [max([0, *(len(p) for cell in col for w in cell.split() for p in _breaks(w).split(w))])
              for col in columns]  # the longest run a name can be cut into at its boundaries
    whole = [max(k, p) for k, p in zip(keep, pieces)]
    soft = [max([k, *(len(p) for cell in col for w in cell.split() for p in _SOFT_PIECES.split(w))])
            for k, col in zip(keep, columns)]  # the pieces of a last resort: cut after '_' or '-' as well
    for floors in (whole, soft, keep):
        while sum(widths) > room and any(widths[i] > floors[i] for i in range(len(widths))):
            i = max((i for i in range(len(widths)) if widths[i] > floors[i]), key=lambda j: widths[j])
            widths[i] -= 1
    names_whole = all(w >= min(f, nat) for w, f, nat in zip(widths, whole, natural))
    return (None if widths == natural else widths), names_whole


_NAME_BREAK = re.compile(r"(?<=[./:])")  # never after '_' or '-' in a name: they sit inside an identifier (q_a_proj)
_PROSE_BREAK = re.compile(r"(?<=[./:])|(?<=[A-Za-z]-)")  # a word without '_' may also break after a hyphen


_LAST_RESORT = re.compile(r"(?<=[_-])")  # a table too narrow for a name's longest piece: between its words
_SOFT_PIECES = re.compile(r"(?<=[./:_-])")


def _breaks(word: str) -> re.Pattern:
    """Where a word may be cut: a name (it has a '_') only after '.', '/' or ':'; a hyphenated word
    ("(post-attention)") after its hyphen too."""
    return _NAME_BREAK if "_" in word else _PROSE_BREAK


def _break_word(word: str, width: int) -> list[str]:
    """A word longer than `width` in pieces that end after a '.', '/' or ':' where one fits (a
    hyphenated word also after its hyphen; inside an identifier, after '_', only where the table has
    no room for its longest piece: `_column_widths` gives up the outer padding first)
    (`model.layers.0.` / `mlp.down_proj.weight`), cut at `width` only where none does."""
    pieces, rest = [], word
    while len(rest) > width:
        cut = width
        for pattern in (_breaks(word), _LAST_RESORT):  # inside an identifier only when no boundary fits
            cuts = [m.start() for m in pattern.finditer(rest, 1, width)] + ([width] if pattern.match(rest, width) else [])
            if cuts:
                cut = cuts[-1]
                break
        pieces.append(rest[:cut])
        rest = rest[cut:]
    return [*pieces, rest]


def _wrap(cell: str, width: int) -> str:
    """A cell's lines wrapped at spaces to `width`, long words broken at name boundaries."""
    out = []
    for line in cell.splitlines() or [""]:
        current = ""
        for word in line.split(" "):
            for piece in _break_word(word, width):
                joined = f"{current} {piece}" if current else piece
                if len(joined) <= width or not current:
                    current = joined
                else:
                    out.append(current)
                    current = piece
        out.append(current)
    return "\n".join(out)


# (padding each side of a cell, padding at the table's edges), tried in order until every name keeps its pieces whole.
LAYOUTS = ((1, True), (1, False), (0, False))


def to_rich(report: Report, console) -> None:
    """The report as rich tables on `console`. Every string goes in as `Text` (no markup, no emoji
    codes), after `visible`: what a cell holds is shown as it is, whatever brackets it has."""
    from rich.table import Table
    from rich.text import Text

    for s in report.sections:
        cells = [[_cell(c, "\n") for c in r] for r in s.rows]
        headers = [_cell(h, " ") for h in s.headers]
        # The table's outer padding gives way before a name is cut inside a piece, then the padding inside.
        for layout in LAYOUTS:
            widths, whole = _column_widths(headers, cells, console.width, layout)
            if whole:
                break
        table = Table(title=Text(_cell(s.title, " ")) if s.title else None, title_justify="left", show_lines=True,
                      padding=(0, layout[0]), pad_edge=layout[1])
        if widths:
            cells = [[_wrap(c, w) for c, w in zip(r, widths)] for r in cells]
        for h, width in zip(headers, widths or [None] * len(headers)):
            table.add_column(Text(_wrap(h, width) if width else h), overflow="fold", width=width)
        for r in cells:
            table.add_row(*[Text(c) for c in r])
        console.print(table)
        for n in s.notes:
            console.print(Text(f"  • {_cell(n, ' ')}"))
    for n in report.notes:
        console.print(Text(f"• {_cell(n, ' ')}"))


def render(report: Report, fmt: str, width: int | None = None) -> str:
    """The report as text in `fmt` (rich tables rendered without colour), at most MAX_ROWS rows a table."""
    report = capped(report, fmt)
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
        text = render(report, fmt)
        write_atomic(output, text)
        import sys

        sys.stderr.write(f"wrote {output} ({len(text.encode()):,} bytes, {fmt})\n")
        return
    if fmt == "table":
        from rich.console import Console

        to_rich(capped(report, fmt), Console())
    else:
        import sys

        sys.stdout.write(render(report, fmt))
