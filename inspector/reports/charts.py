"""Charts in hand-written SVG: where the parameters go, and the memory plan (the FLOPs: charts_flops).

`param_shares(acc)` sorts every counted parameter into a category (embedding, attention, MLP,
routed experts, router and shared experts, norms, LM head, vision encoder, projector); the shares
sum to the accounting's total. `memory_scenarios(acc, context, batch)` gives the memory plan as
plain rows: scenarios, each a list of (component, bytes). The stacked chart draws any such rows,
so a memory model's rows (weights, KV cache, activations, gradients, optimizer states per ZeRO
stage) are more scenarios, not a new chart. Every bar is labelled in text and every memory
component has its own fill pattern: colour is never the only carrier of meaning.
"""

from __future__ import annotations

from inspector.inventory.accounting import Accounting
from inspector.inventory.entry import (
    ALTUP, ALTUP_PROJ, ATTN, DENSE_MLP, EMBED, EXPERTS, HEAD, MLP, MTP, PLE, PLE_TABLE, POS_EMBED, ROUTER, ROUTER_BIAS,
    SHARED_EXPERT,
)
from inspector.reports.markup import esc, tag
from inspector.spec.norms import NORM_ROWS
from inspector.reports.svg import PATTERNS, Canvas, text_width
from inspector.units import human_bytes, n

CATEGORY = {EMBED: "Embedding", POS_EMBED: "Embedding", ATTN: "Attention", MLP: "MLP", DENSE_MLP: "MLP",
            EXPERTS: "Routed experts", ROUTER: "Router and shared experts",
            SHARED_EXPERT: "Router and shared experts", ROUTER_BIAS: "Router and shared experts", HEAD: "LM head"}
CATEGORY.update({PLE_TABLE: PLE, ALTUP_PROJ: ALTUP})  # Gemma 3n / 4: model-level and per-layer parts together
COMPONENT_CATEGORY = {"vision_encoder": "Vision encoder", "projector": "Projector", "audio_encoder": "Audio encoder"}
ORDER = ("Vision encoder", "Projector", "Embedding", "Attention", "MLP", "Routed experts",
         "Router and shared experts", "Norms", "LM head")

BAR_W, ROW_H = 360, 24


def category(component: str, group: str) -> str:
    if component in COMPONENT_CATEGORY:
        return COMPONENT_CATEGORY[component]
    if group in CATEGORY:
        return CATEGORY[group]
    for row, name in ((ATTN, "Attention"), (MLP, "MLP")):  # Gemma 3n / 4 rows per layer shape: "Attention layer (...)"
        if group.startswith(row + " ("):
            return name
    return "Norms" if group.startswith(NORM_ROWS) else group  # "RMS norm (input)", "Layer norm (final)"


def param_shares(acc: Accounting) -> list[tuple[str, int]]:
    """(category, parameters) of every stored parameter, in a fixed order; sums to total_params."""
    sums: dict[str, int] = {}
    for e in acc.entries:
        if e.stored and e.parameter and e.component != MTP:
            key = category(e.component, e.group)
            sums[key] = sums.get(key, 0) + e.numel
    known = [(k, sums[k]) for k in ORDER if k in sums]
    return known + sorted((k, v) for k, v in sums.items() if k not in ORDER)


def memory_scenarios(acc: Accounting, context: int, batch: int) -> list[tuple[str, list[tuple[str, int]]]]:
    """The memory plan of `inspect memory`, per GPU, as (scenario, [(component, bytes)]) rows: serving
    at bf16 and int4 (weights, prefill activations, the bf16 KV cache of context x batch), then
    fine-tuning on one GPU: full with mixed-precision AdamW, LoRA r=16 and QLoRA (peft's default
    targets; a family peft has no default for shows the serving rows only), each the rows of its peak
    phase (inspector.memory.training: the start of backward, the recompute or the optimizer step)."""
    from inspector.errors import InspectError
    from inspector.memory.gpus import gpu
    from inspector.memory.modules import runtime_modules
    from inspector.memory.serving import ServeOptions, plan as serve_plan
    from inspector.memory.training import TrainOptions, plan as train_plan

    device = gpu("H100-80GB")
    kv = acc.kv_cache_bytes(context, batch) or 0
    kv_label = f"KV cache (bf16, {n(context)} tokens × batch {batch})"
    out, modules = [], runtime_modules(acc)  # once for the three training plans (100,000 layers: seconds)
    for dtype in ("bf16", "int4"):
        served = serve_plan(acc, device, ServeOptions(dtype=dtype, max_model_len=context))
        out.append((f"Serve, {dtype} weights", [("Weights", served.weights.bytes),
                                                ("Activations (vLLM profile-run peak)", served.activations),
                                                (kv_label, kv)]))
    for label, options in (("Full fine-tune, mixed-precision AdamW", TrainOptions(seq_len=context)),
                           ("LoRA r=16", TrainOptions(mode="lora", seq_len=context)),
                           ("QLoRA r=16 (NF4 base)", TrainOptions(mode="qlora", seq_len=context))):
        try:
            trained = train_plan(acc, device, options, modules)
        except InspectError:  # e.g. no default LoRA targets for this family
            continue
        phase = trained.peak_phase  # the peak is the largest phase, not the sum of every row
        out.append((f"{label} (peak: {phase})", [(row.name, row.gpu) for row in trained.rows
                                                  if row.gpu and phase in row.phases]))
    return out


def bar_chart(rows: list[tuple[str, int]], total: int, title: str, desc: str, ident: str,
              palette: dict[str, int] | None = None) -> str:
    """Horizontal bars, one per row, each labelled with its name, count and share (colour is extra:
    a category's colour is its place in ORDER, or in `palette` when given)."""
    palette = palette if palette is not None else {k: i for i, k in enumerate(ORDER)}
    c = Canvas()
    label_w = max(text_width(label, "text") for label, _ in rows) + 16
    top = max(v for _, v in rows) or 1
    c.text(8, 18, title, "ft")
    for i, (label, value) in enumerate(rows):
        y = 34 + i * ROW_H
        w = max(BAR_W * value / top, 1.5)
        share = f"{n(value)} ({value / total:.1%})" if total else n(value)
        colour = palette.get(label, i)  # one colour per category on every page
        c.group([tag("title", esc(f"{label}: {share}")),
                 tag("text", esc(label), x=label_w, y=y + 15, class_="t", text_anchor="end"),
                 tag("rect", x=label_w + 8, y=y + 3, width=w, height=ROW_H - 8, class_=f"bar c{colour % 9}"),
                 tag("text", esc(share), x=label_w + 16 + w, y=y + 15, class_="t num")],
                class_="barrow", data_label=label, data_value=value)
        c.grow(label_w + 16 + w + text_width(share, "text"), y + ROW_H)
    return c.svg(title, desc, ident)


def stacked_chart(scenarios: list[tuple[str, list[tuple[str, int]]]], title: str, desc: str, ident: str) -> str:
    """One stacked bar per scenario; segments by component, each with its own pattern; a legend."""
    c = Canvas()
    components = list(dict.fromkeys(name for _, rows in scenarios for name, _ in rows))
    label_w = max(text_width(s, "text") for s, _ in scenarios) + 16
    top = max(sum(b for _, b in rows) for _, rows in scenarios) or 1
    c.text(8, 18, title, "ft")
    y = 34
    for scenario, rows in scenarios:
        body = [tag("text", esc(scenario), x=label_w, y=y + 15, class_="t", text_anchor="end")]
        x = label_w + 8
        for name, size in rows:
            w = BAR_W * 1.4 * size / top
            k = components.index(name)
            body.append(tag("g", tag("title", esc(f"{name}: {human_bytes(size)} ({n(size)} B)"))
                            + tag("rect", x=x, y=y + 3, width=w, height=ROW_H - 8, class_=f"bar c{k % 9}")
                            + tag("rect", x=x, y=y + 3, width=w, height=ROW_H - 8, class_="overlay",
                                  fill=f"url(#p-{PATTERNS[k % len(PATTERNS)]})"),
                            class_="seg", data_label=name, data_value=size))
            x += w
        total = sum(b for _, b in rows)
        body.append(tag("text", esc(human_bytes(total)), x=x + 8, y=y + 15, class_="t num"))
        c.group(body, class_="stack", data_label=scenario, data_value=total)
        c.grow(x + 8 + text_width(human_bytes(total), "text"), y + ROW_H)
        y += ROW_H + 4
    y += 8
    for k, name in enumerate(components):
        c.group([tag("rect", x=label_w + 8, y=y, width=22, height=14, class_=f"bar c{k % 9}"),
                 tag("rect", x=label_w + 8, y=y, width=22, height=14, class_="overlay",
                     fill=f"url(#p-{PATTERNS[k % len(PATTERNS)]})"),
                 tag("text", esc(name), x=label_w + 38, y=y + 12, class_="t")], class_="legend")
        c.grow(label_w + 38 + text_width(name, "text"), y + 18)
        y += 20
    return c.svg(title, desc, ident)


__all__ = ["param_shares", "memory_scenarios", "bar_chart", "stacked_chart"]
