"""Hand-written SVG: escaped markup, and a `Canvas` that places boxes, arrows, text and sums.

No charting bundle: every label is a real <text> element (selectable, searchable, read by screen
readers), every figure carries a <title> and a <desc>, and coordinates are rounded to one decimal
so that the same input gives the same bytes. Text widths are estimated from character counts
(the page's fonts are the browser's sans-serif and monospace at fixed sizes), generously, so that
labels stay inside their boxes. Arrow heads and fill patterns live once per page (`DEFS`).
"""

from __future__ import annotations

from inspector.reports.markup import esc, fmt, tag

# Estimated advance widths (px per character) of the three text styles the figures use.
CHAR_PX = {"title": 7.4, "mono": 6.7, "text": 6.6, "small": 6.0}
LINE_PX = {"title": 16, "mono": 14, "text": 15, "small": 13}

STYLE_OF_CLASS = {"bt": "title", "ft": "title", "ct": "title", "mono": "mono", "sm": "small"}

PATTERNS = ("solid", "hatch", "dots", "cross", "vlines", "checker")


def text_width(text: str, style: str = "text") -> float:
    return len(text) * CHAR_PX[style]


def clip(text: str, width: float, style: str = "text") -> str:
    """`text` cut with an ellipsis to fit `width` px (the full text stays in the box's tooltip)."""
    room = int(width / CHAR_PX[style])
    return text if len(text) <= room else text[: max(room - 1, 1)] + "…"


class Canvas:
    """Collects SVG elements; grows its size to what was drawn."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.width = 0.0
        self.height = 0.0

    def grow(self, x: float, y: float) -> None:
        self.width, self.height = max(self.width, x), max(self.height, y)

    def add(self, markup: str) -> None:
        self.items.append(markup)

    def rect(self, x: float, y: float, w: float, h: float, cls: str, dashed: bool = False, rx: float = 6) -> None:
        self.grow(x + w, y + h)
        self.add(tag("rect", x=x, y=y, width=w, height=h, rx=rx, class_=cls + (" dashed" if dashed else "")))

    def text(self, x: float, y: float, text: str, cls: str = "t", anchor: str = "start") -> None:
        w = text_width(text, STYLE_OF_CLASS.get(cls, "text"))
        self.grow(x + {"start": w, "middle": w / 2}.get(anchor, 0), y)
        self.add(tag("text", esc(text), x=x, y=y, class_=cls, text_anchor=None if anchor == "start" else anchor))

    def arrow(self, x1: float, y1: float, x2: float, y2: float, cls: str = "edge") -> None:
        self.grow(max(x1, x2), max(y1, y2))
        self.add(tag("line", x1=x1, y1=y1, x2=x2, y2=y2, class_=cls, marker_end="url(#arrow)"))

    def path(self, d: list[tuple[float, float]], cls: str = "edge", arrow: bool = True) -> None:
        points = " ".join(f"{'M' if i == 0 else 'L'}{fmt(float(x))},{fmt(float(y))}" for i, (x, y) in enumerate(d))
        for x, y in d:
            self.grow(x, y)
        self.add(tag("path", d=points, class_=cls, fill="none", marker_end="url(#arrow)" if arrow else None))

    def plus(self, cx: float, cy: float, r: float = 9, label: str = "residual add") -> None:
        self.grow(cx + r, cy + r)
        self.add(tag("g", tag("title", esc(label)) + tag("circle", cx=cx, cy=cy, r=r, class_="sum")
                     + tag("text", "+", x=cx, y=cy + 4.5, class_="sumt", text_anchor="middle"), class_="plus"))

    def group(self, body: list[str], **kw: object) -> None:
        self.add(tag("g", "".join(body), **kw))

    def take(self, since: int) -> list[str]:
        """Remove and return the items drawn since `since` (to wrap them in a group)."""
        taken = self.items[since:]
        del self.items[since:]
        return taken

    def svg(self, title: str, desc: str, ident: str, margin: float = 10) -> str:
        w, h = self.width + margin, self.height + margin
        return tag("svg", tag("title", esc(title), id=f"{ident}-t") + tag("desc", esc(desc), id=f"{ident}-d")
                   + "".join(self.items),
                   id=ident, role="img", aria_labelledby=f"{ident}-t {ident}-d", class_="fig",
                   viewBox=f"0 0 {fmt(float(w))} {fmt(float(h))}", width=w, height=h)


def _pattern(name: str, body: str) -> str:
    return tag("pattern", body, id=f"p-{name}", width=8, height=8, patternUnits="userSpaceOnUse")


# One hidden SVG per page: the arrow head and the fill patterns that tell chart segments apart
# without colour (hatching, dots, crosses, stripes, checks on top of each segment's tint).
DEFS = tag(
    "svg",
    tag("title", "Shared arrow heads and fill patterns of the figures")
    + tag("defs",
          tag("marker", tag("path", d="M0,0 L8,4 L0,8 z", class_="head"), id="arrow", viewBox="0 0 8 8",
              refX=7, refY=4, markerWidth=7, markerHeight=7, orient="auto-start-reverse")
          + _pattern("solid", "")
          + _pattern("hatch", tag("path", d="M-2,2 L2,-2 M0,8 L8,0 M6,10 L10,6", class_="pat"))
          + _pattern("dots", tag("circle", cx=4, cy=4, r=1.6, class_="patf"))
          + _pattern("cross", tag("path", d="M0,0 L8,8 M8,0 L0,8", class_="pat"))
          + _pattern("vlines", tag("path", d="M2,0 L2,8 M6,0 L6,8", class_="pat"))
          + _pattern("checker", tag("rect", x=0, y=0, width=4, height=4, class_="patf")
                     + tag("rect", x=4, y=4, width=4, height=4, class_="patf"))),
    width=0, height=0, class_="defs", aria_hidden="true",
)
