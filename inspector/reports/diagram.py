"""Drawing flows (inspector.reports.arch) as SVG in the style of the book's figures.

Boxes top to bottom joined by arrows, residual adds on a lane at the left, containers for attention and the
feed-forward part, routed experts fanned out from the router.

Every box is a <g class="part"> with data-params / data-repeat (and data-counted when it adds to
the model's total), so tests can check the drawing's numbers against `params --format json`.
Sizes come from the text each box holds; nothing depends on the model's name.
"""

from __future__ import annotations

from inspector.reports.arch import Fan, Flow, Group, Note, Parallel, Part, Sum
from inspector.reports.markup import esc, tag
from inspector.reports.svg import LINE_PX, Canvas, clip, text_width
from inspector.units import n

PAD, GAP, LANE, MIN_W = 8, 24, 22, 260
CARD_SMALL = 130


def _params_text(p: Part) -> str:
    text = f"{n(p.params)} params" + (f" × {p.repeat}" if p.repeat > 1 and p.kind == "layer" else "")
    return text if p.counted else text + ", not counted"


def _part_lines(p: Part) -> list[tuple[str, str]]:
    out = [("title", p.title)]
    if p.note:
        out.append(("small", p.note))
    out += [("mono", line) for line in p.lines]
    out.append(("small", _params_text(p)))
    return out


def part_need(p: Part) -> float:
    return max(text_width(t, s) for s, t in _part_lines(p)) + 2 * PAD + 4


def part_height(p: Part) -> float:
    return sum(LINE_PX[s] for s, _ in _part_lines(p)) + 2 * PAD


def _fan_need(f: Fan) -> float:
    first = max(text_width(line, "mono") for line in f.lines) + 2 * PAD + 4 if f.lines else CARD_SMALL
    return first + (len(f.shown) - 1) * (CARD_SMALL + 10) + (70 if f.count > len(f.shown) else 0)


def need(step) -> float:
    if isinstance(step, Part):
        return part_need(step)
    if isinstance(step, Group):
        widths = [text_width(step.title, "title") + text_width(f"{n(step.params)} params", "small") + 40]
        for item in step.items:
            if isinstance(item, str):
                widths.append(text_width(item, "text"))
            elif isinstance(item, Fan):
                widths.append(_fan_need(item))
            else:
                widths.append(sum(part_need(p) for p in item) + 10 * (len(item) - 1))
        return max(widths) + 2 * PAD + 4
    if isinstance(step, Parallel):
        return sum(max(need(s) for s in b) for b in step.branches) + GAP
    if isinstance(step, Note):
        return text_width(step.text, "text")
    return 0


def flow_width(flow: Flow) -> float:
    return max(MIN_W, *(need(s) for s in flow.steps))


def draw_part(c: Canvas, p: Part, x: float, y: float, w: float, h: float | None = None, mark: bool = True) -> float:
    """A box; `mark` False leaves data-counted off (a card standing for a share of a counted fan)."""
    h = h or part_height(p)
    start = len(c.items)
    c.rect(x, y, w, h, f"box {p.kind}", dashed=not p.counted)
    ty = y + PAD
    for style, text in _part_lines(p):
        ty += LINE_PX[style]
        c.text(x + PAD, ty - 4, clip(text, w - 2 * PAD, style), {"title": "bt", "mono": "mono", "small": "sm"}[style])
    body = [tag("title", esc(f"{p.title}: " + "; ".join(p.lines) + f"; {_params_text(p)}"))] + c.take(start)
    data = dict(class_="part", data_key=p.key, data_params=p.params, data_repeat=p.repeat,
                data_counted="1" if p.counted and mark else None)
    markup = tag("g", "".join(body), **data)
    c.add(tag("a", markup, href=p.href) if p.href else markup)
    if p.out:
        c.text(x + w / 2 + 8, y + h + 15, p.out, "sm")
    return h


def _draw_fan(c: Canvas, f: Fan, x: float, y: float, w: float) -> float:
    small = CARD_SMALL
    first = max(w - (len(f.shown) - 1) * (small + 10) - (70 if f.count > len(f.shown) else 0), small)
    first_part = Part(f"{f.key}.0", f"Expert {f.shown[0]}", f.lines, f.per_expert, "expert")
    h = part_height(first_part)
    cx, top = x + w / 2, y + 26
    start = len(c.items)
    c.text(x + PAD, y + 12, f"{f.count} routed experts (one card each; all have the same shapes)", "sm")
    positions = [(x, first)]
    cursor = x + first + 10
    for i in f.shown[1:]:
        if i == f.shown[-1] and f.count > len(f.shown):
            c.text(cursor + 30, top + h / 2, f"… {f.count - len(f.shown)} more", "sm", anchor="middle")
            cursor += 70
        positions.append((cursor, small))
        cursor += small + 10
    bottom = top + h + 22
    for i, (px, pw) in zip(f.shown, positions):
        part = first_part if i == f.shown[0] else Part(f"{f.key}.{i}", f"Expert {i}", ("same shapes",),
                                                         f.per_expert, "expert")
        c.path([(cx, y + 16), (px + pw / 2, top)])
        draw_part(c, part, px, top, pw, h, mark=False)
        c.path([(px + pw / 2, top + h), (cx, bottom - 9)], arrow=False)
    c.plus(cx, bottom, label="weighted sum of the chosen experts' outputs")
    body = c.take(start)
    c.add(tag("g", tag("title", esc(f"{f.count} routed experts, {n(f.per_expert)} parameters each")) + "".join(body),
              class_="fan", data_key=f.key, data_params=f.per_expert, data_repeat=f.repeat, data_counted="1"))
    return bottom + 10 - y


def draw_group(c: Canvas, g: Group, x: float, y: float, w: float) -> float:
    start = len(c.items)
    inner_x, inner_w, cy = x + PAD, w - 2 * PAD, y + 22
    c.text(x + PAD, y + 17, clip(g.title, w - 140, "title"), "bt")
    c.text(x + w - PAD, y + 17, f"{n(g.params)} params", "sm", anchor="end")
    for item in g.items:
        cy += 8
        if isinstance(item, str):
            c.text(x + w / 2, cy + 11, clip(item, inner_w, "text"), "op", anchor="middle")
            cy += 14
        elif isinstance(item, Fan):
            cy += _draw_fan(c, item, inner_x, cy, inner_w)
        else:
            each = (inner_w - 10 * (len(item) - 1)) / len(item)
            h = max(part_height(p) for p in item)
            for i, p in enumerate(item):
                draw_part(c, p, inner_x + i * (each + 10), cy, each, h)
            cy += h
    height = cy + PAD + 4 - y
    body = c.take(start)
    c.rect(x, y, w, height, f"group {g.kind}", rx=10)
    c.add(tag("g", tag("title", esc(f"{g.title}: {n(g.params)} parameters")) + "".join(body),
              class_="grp", data_key=g.key, data_params=g.params))
    return height


def _draw_box(c: Canvas, step, x: float, y: float, w: float, fill: bool) -> tuple[float, float, float]:
    """(x, width, height) of a Part or Group drawn centered in [x, x + w]."""
    if isinstance(step, Group):
        return x, w, draw_group(c, step, x, y, w)
    bw = w if fill else min(w, max(MIN_W, part_need(step)))
    bx = x + (w - bw) / 2
    return bx, bw, draw_part(c, step, bx, y, bw)


def draw_flow(c: Canvas, flow: Flow, x: float, y: float, w: float, fill: bool = False) -> dict[str, tuple]:
    """Draw the steps top to bottom in [x, x + w]; returns each box's (x, y, w, h) by key, and 'end'."""
    cx, tops, boxes = x + w / 2, [], {}
    prev_bottom = None
    for i, step in enumerate(flow.steps):
        detached = isinstance(step, Part) and step.kind == "extra"
        if prev_bottom is not None and not detached:
            c.arrow(cx, prev_bottom, cx, y - 2)
        tops.append(y)
        if isinstance(step, Note):
            c.text(cx, y + 12, step.text, "note", anchor="middle")
            y += 16
        elif isinstance(step, Sum):
            lane_y = tops[step.start] - GAP / 2
            c.path([(cx, lane_y), (x - LANE + 8, lane_y), (x - LANE + 8, y + 9), (cx - 11, y + 9)], cls="res")
            c.plus(cx, y + 9, label=step.label)
            y += 18
        elif isinstance(step, Parallel):
            y = _draw_parallel(c, step, x, y, w, prev_bottom)
        else:
            bx, bw, h = _draw_box(c, step, x, y, w, fill)
            boxes[step.key] = (bx, y, bw, h)
            y += h + (12 if isinstance(step, Part) and step.out else 0)
        prev_bottom = y
        y += GAP
    boxes["end"] = (x, prev_bottom, w, 0)
    return boxes


def _draw_parallel(c: Canvas, step: Parallel, x: float, y: float, w: float, prev_bottom) -> float:
    widths = [max(need(s) for s in b) for b in step.branches]
    scale = (w - GAP * (len(widths) - 1)) / sum(widths)
    bottoms, bx = [], x
    for branch, bw in zip(step.branches, widths):
        bw *= scale
        by = y
        c.path([(x + w / 2, y - 10), (bx + bw / 2, y - 10), (bx + bw / 2, by - 2)])
        for i, s in enumerate(branch):
            if i:
                c.arrow(bx + bw / 2, by - GAP, bx + bw / 2, by - 2)
            _, _, h = _draw_box(c, s, bx, by, bw, True)
            by += h + GAP
        bottoms.append((bx + bw / 2, by - GAP))
        bx += bw + GAP
    end = max(b for _, b in bottoms) + 14
    for mx, b in bottoms:
        c.path([(mx, b), (mx, end), (x + w / 2, end)], arrow=False)
    return end


def flow_svg(flow: Flow, desc: str, ident: str) -> str:
    """One expanded layer as a figure."""
    c = Canvas()
    draw_flow(c, flow, LANE + 8, 8, flow_width(flow))  # the title is the <details> summary above it
    return c.svg(flow.title, desc, ident)


def overview_svg(columns: tuple[Flow, ...], title: str, desc: str, ident: str) -> str:
    """The model overview: one column per flow (vision, then LLM), the projector feeding the LLM."""
    c = Canvas()
    c.text(LANE + 8, 18, title, "ft")
    x, placed = LANE + 8, []
    for flow in columns:
        w = max(flow_width(flow), 330)
        c.text(x + w / 2, 42, flow.title, "ct", anchor="middle")
        placed.append((flow, draw_flow(c, flow, x, 56, w, fill=True), x, w))
        x += w + 3 * GAP
    if len(placed) == 2:
        (_, vboxes, vx, vw), (_, lboxes, _, _) = placed
        end = vboxes["end"]
        embed = next(k for k in lboxes if k.endswith(".embed"))
        ex, ey, ew, eh = lboxes[embed]
        target_y = ey + eh + GAP + 2  # below the embedding's output shape, above the first layer
        lane = vx + vw + GAP * 1.5
        c.path([(vx + vw / 2, end[1]), (vx + vw / 2, end[1] + 14), (lane, end[1] + 14), (lane, target_y),
                (ex + ew / 2 - 4, target_y)], cls="join")
        c.text(vx + vw / 2 + 8, end[1] + 28, "image tokens join the text tokens' sequence", "sm")
    return c.svg(title, desc, ident)
