"""Reading an `inspect report` page back (as written, or as a browser's DOM) with the standard
library's HTML parser: the key-figures cells, the drawn boxes' numbers, tables, SVG titles."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser


@dataclass
class Box:
    svg: str
    key: str
    params: int
    repeat: int
    counted: bool


class Page(HTMLParser):
    """What the tests read from a page: figures by (key, model) -> (data-value, cell text), the
    drawn boxes, tables by data-section, the SVGs and their titles, <text> count, tags and links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: dict[tuple[str, int], tuple[int, str]] = {}
        self.boxes: list[Box] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.svgs: list[str] = []
        self.svg_titles: dict[str, str] = {}
        self.texts = 0
        self.tags: set[str] = set()
        self.hrefs: list[str] = []
        self._svg: list[str] = []
        self._row_key: str | None = None
        self._cell: tuple | None = None
        self._cell_text: list[str] = []
        self._tables: list[str] = []
        self._title_of: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "href" in a:
            self.hrefs.append(a["href"])
        if tag == "svg":
            self._svg.append(a.get("id", ""))
            self.svgs.append(a.get("id", ""))
        elif tag == "title" and self._svg and self._svg[-1] not in self.svg_titles:
            self._title_of, self._cell_text = self._svg[-1], []
        elif tag == "text":
            self.texts += 1
        elif tag == "table":
            self._tables.append(a.get("data-section", ""))
            self.tables.setdefault(self._tables[-1], [])
        elif tag == "tr" and self._tables:
            self._row_key = a.get("data-key")
            self.tables[self._tables[-1]].append([])
        elif tag in ("td", "th") and self._tables:
            self._cell, self._cell_text = (self._row_key, a.get("data-model"), a.get("data-value")), []
        if "data-params" in a and "data-repeat" in a:
            self.boxes.append(Box(self._svg[-1] if self._svg else "", a["data-key"], int(a["data-params"]),
                                  int(a["data-repeat"]), a.get("data-counted") == "1"))

    def handle_endtag(self, tag):
        if tag == "svg" and self._svg:
            self._svg.pop()
        elif tag == "title" and self._title_of is not None:
            self.svg_titles[self._title_of] = "".join(self._cell_text).strip()
            self._title_of = None
        elif tag == "table" and self._tables:
            self._tables.pop()
        elif tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell_text).split())
            key, model, value = self._cell
            if self._tables:
                self.tables[self._tables[-1]][-1].append(text)
            if key is not None and model is not None and value is not None:
                self.figures[(key, int(model))] = (int(value), text)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None or self._title_of is not None:
            self._cell_text.append(data)

    def counted_sum(self, svg_prefix: str) -> int:
        return sum(b.params * b.repeat for b in self.boxes if b.counted and b.svg.startswith(svg_prefix))


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def flat_numbers(data: dict, prefix: str = "") -> dict[str, int]:
    """Every integer of a `params --format json` payload outside its rows, by dotted key."""
    out: dict[str, int] = {}
    for key, value in data.items():
        if key == "rows":
            continue
        if isinstance(value, dict):
            out.update(flat_numbers(value, f"{prefix}{key}."))
        elif isinstance(value, int) and not isinstance(value, bool):
            out[prefix + key] = value
    return out


def check_against_params_json(page: Page, payloads: list[dict]) -> int:
    """Assert every number of each model's params JSON is in the page, as data and as text; and that
    the drawn boxes of each model's overview, and of its expansions, sum to its total. Returns the
    number of values compared."""
    compared = 0
    for i, data in enumerate(payloads):
        for key, value in flat_numbers(data).items():
            assert (key, i) in page.figures, f"model {i}: figure {key!r} is not on the page"
            shown, text = page.figures[(key, i)]
            assert shown == value, f"model {i}: figure {key!r}: page {shown}, params JSON {value}"
            assert int(text.replace(",", "")) == value, f"model {i}: figure {key!r} reads {text!r}, JSON {value}"
            compared += 1
        total = data["total_params"]
        overview = page.counted_sum(f"m{i}-overview")
        assert overview == total, f"model {i}: overview boxes sum to {overview}, total is {total}"
        outside = sum(b.params * b.repeat for b in page.boxes if b.counted and b.svg == f"m{i}-overview"
                      and ".layers" not in b.key and ".vlayers" not in b.key)
        expanded = sum(page.counted_sum(s) for s in set(page.svgs) if s.startswith(f"m{i}-") and "overview" not in s
                       and ("layer" in s or "vblock" in s))
        assert outside + expanded == total, f"model {i}: expanded layers + other boxes = {outside + expanded}, total {total}"
        compared += 2
    return compared
