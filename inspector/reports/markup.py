"""HTML and SVG markup: escaped elements, and report Sections as HTML tables.

Every text and attribute value goes through `esc`, so nothing a config or a prompt holds can
become markup (or a terminal escape sequence). Attributes keep the order they are given in: the same call gives the same bytes.
"""

from __future__ import annotations

from html import escape
from typing import Any

from inspector.errors import visible
from inspector.reports.render import Section
from inspector.units import Count


def esc(value: object) -> str:
    """Text or an attribute value as HTML: markup escaped, control characters written out (a page
    printed to a terminal carries no escape sequence)."""
    return escape(visible(value, tabs=True), quote=True)


def fmt(value: object) -> str:
    """Numbers as short, stable text (1 decimal at most); everything else as str."""
    if isinstance(value, float):
        text = f"{value:.1f}"
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def attrs(**kw: object) -> str:
    """' a="1" b="x"': `class_` -> class, `data_params` -> data-params; None and False are left out."""
    out = []
    for key, value in kw.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        out.append(f' {name}="{esc(fmt(value))}"')
    return "".join(out)


def tag(element: str, body: str = "", **kw: object) -> str:
    return f"<{element}{attrs(**kw)}>{body}</{element}>"


def void(element: str, **kw: object) -> str:
    """An element without a closing tag (<meta>, <br>)."""
    return f"<{element}{attrs(**kw)}>"


def cell(value: Any) -> str:
    """A table cell's content: lists become lines; a Count gets thousands separators, as in the
    terminal and markdown tables (render's rule)."""
    if isinstance(value, (list, tuple)):
        return "<br>".join(cell(v) for v in value)
    if isinstance(value, Count):
        return esc(f"{value:,}")
    return esc("" if value is None else value)


def prose(text: str) -> str:
    """A heading or a line of text: escaped, with `code` spans as <code> (no literal backticks)."""
    parts = esc(text).split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick stays as written
        return esc(text)
    return "".join(tag("code", p) if i % 2 else p for i, p in enumerate(parts))


def table(section: Section, ident: str = "") -> str:
    """A report Section (inspector.reports.render) as an HTML table with its title and notes."""
    head = "".join(tag("th", esc(h)) for h in section.headers)
    body = "".join(tag("tr", "".join(tag("td", cell(v)) for v in row)) for row in section.rows)
    notes = notes_list(section.notes)
    title = tag("h3", esc(section.title)) if section.title else ""
    return title + tag("table", tag("thead", tag("tr", head)) + tag("tbody", body),
                       data_section=ident or section.title or None) + notes


def notes_list(notes: list[str]) -> str:
    return tag("ul", "".join(tag("li", esc(x)) for x in notes), class_="notes") if notes else ""
