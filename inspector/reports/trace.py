"""The report of `trace`: the step table, the cached decode steps, and the routing table of MoE models.

The step table shows left padding, the padding mask and position ids for a batch, with repeated layers
collapsed; the stand-in note says when the ids are not real; the routing table (tokens each expert received,
one row per MoE layer) is shown by `run`'s report (inspector.reports.run) too.
"""

from __future__ import annotations

from typing import Any, Container

from inspector.reports.render import Report, Section
from inspector.steps import Record, TraceResult, collapse
from inspector.units import plural


def shape_text(shapes: tuple[tuple[int, ...], ...]) -> str:
    return ", ".join(str(s) for s in shapes)


def step_json(r: Record) -> dict[str, Any]:
    """The one JSON schema of a traced step, text or image trace: name, module, shape (a list, or a
    list of lists for several outputs), dtype, step (of the document), description."""
    out = {"name": r.name, "module": r.module, "shape": list(r.shapes[0]) if len(r.shapes) == 1 else
           [list(s) for s in r.shapes], "dtype": r.dtype, "step": r.step, "description": r.text}
    if r.seconds is not None:
        out["seconds"] = r.seconds
    if r.data is not None:
        out["values"] = list(r.data)
    return out


def _token_note(tokens: list[int], strings: list[str], limit: int = 24) -> str:
    pairs = [f"{t}:{s!r}" for t, s in zip(tokens[:limit], strings[:limit])]
    more = f" … (+{len(tokens) - limit})" if len(tokens) > limit else ""
    return " ".join(pairs) + more


def _positions(pads: int, n: int, limit: int = 12) -> str:
    """A left-padded row's position ids: 0 under the padding, then 0, 1, 2, ... from its first token."""
    ids = [0] * pads + list(range(n - pads))
    shown = " ".join(str(i) for i in ids[:limit])
    return shown + (f" … {ids[-1]}" if len(ids) > limit else "")


def _batch_rows(result: TraceResult) -> list[list]:
    """Steps 1 and 3 for the input: the ids of each row, the left padding and its mask."""
    b, n = len(result.input_ids), len(result.input_ids[0])
    pads = [n - len(r) for r in result.batch_tokens]
    if result.stand_in:
        shown = [" ".join(str(t) for t in ids[:24]) + (f" … (+{len(ids) - 24})" if len(ids) > 24 else "")
                 for ids in result.batch_tokens]
        return [["Step 3", "stand-in ids", "no tokenizer" if "offline" in result.stand_in else "--seq-len",
                 f"({b}, {n})", "int64", shown if b > 1 else shown[0]]]
    if b == 1:
        return [["Step 3", "tokenize", "tokenizer", f"(1, {n})", "int64",
                 "ids: " + _token_note(result.tokens, result.token_strings)]]
    lines = [f"row {i}: " + (f"{p} pad + " if p else "") + _token_note(ids, strings, 8)
             for i, (p, ids, strings) in enumerate(zip(pads, result.batch_tokens, result.batch_strings))]
    rows = [["Step 3", "tokenize", "tokenizer", f"({b}, {n})", "int64", lines]]
    if result.pad_id is not None:
        lengths = ", ".join(str(len(r)) for r in result.batch_tokens)
        rows.insert(0, ["Step 1", "left padding", "batch", f"({b}, {n})", "int64",
                        f"rows of {lengths} tokens padded on the left to n = {n} with id {result.pad_id}, "
                        "so every row's last token is in the last column"])
        rows.append(["Step 3", "padding mask", "batch", f"({b}, {n})", "int64",
                     [f"row {i}: " + "0" * p + "1" * (n - p) for i, p in enumerate(pads)]])
        rows.append(["Step 3", "position ids", "batch", f"({b}, {n})", "int64",
                     [f"row {i}: " + _positions(p, n) for i, p in enumerate(pads)]])
    return rows


def trace_rows(result: TraceResult, show_layers: Container[int] | None) -> list[list]:
    rows = _batch_rows(result)
    for item in collapse(result.rows, show_layers):
        if isinstance(item, tuple):
            (first, last), shown = item, item.shown
            label = f"layers {first}-{last}" if last > first else f"layer {first}"
            like = " or ".join(str(i) for i in shown)
            rows.append(["Step 7", label, "Block", "", "", f"same shapes as layer {like} (collapsed; --layers shows "
                                                          "them)"])
            continue
        rows.append([item.step, item.name, item.module, shape_text(item.shapes), item.dtype, item.text])
    b = result.batch_size
    chosen = result.batch_next[0] if result.batch_next else [None]
    if chosen[0] is None:
        note = "meta device: shapes only, no values to sample"
    elif b == 1:
        note = f"next token {chosen[0]} {result.next_strings[0]!r}"
    else:
        note = "next token per row: " + ", ".join(str(t) for t in chosen)
    rows.append(["Step 10", "sample", "argmax / sampling", f"({b},)", "int64", note])
    return rows


def decode_rows(result: TraceResult) -> list[list[str]]:
    rows = []
    n = len(result.input_ids[0]) if result.input_ids else len(result.tokens)
    for t, records in enumerate(result.decode, start=1):
        fed = result.batch_next[t - 1]
        for r in records:
            rows.append([f"decode {t}", r.name, shape_text(r.shapes), r.text])
        token = result.next_tokens[t]
        fed_text = str(fed[0]) if len(fed) == 1 else "[" + ", ".join(str(f) for f in fed) + "]"
        rows.append([f"decode {t}", "sample", f"({len(fed)},)",
                     f"fed {fed_text}, cache now {n + t} positions; next token {token} {result.next_strings[t]!r}"
                     if token is not None else f"cache now {n + t} positions (meta: no values)"])
    return rows


# --------------------------------------------------------------------------- routing

_BARS = "▁▂▃▄▅▆▇█"


def histogram(counts: list[int]) -> str:
    """One character per expert, its height the expert's count relative to the busiest ('·' = none)."""
    top = max(counts) if counts else 0
    return "".join("·" if c == 0 else _BARS[min(len(_BARS) - 1, (c * len(_BARS) - 1) // top)] for c in counts)


def routing_layers(records: list[Record]) -> list[tuple[int, int, list[int] | None]]:
    """(layer, experts, counts or None on meta) of each MoE layer's tokens-per-expert step."""
    return [(r.layer, r.shapes[0][0], list(r.data) if r.data is not None else None)
            for r in records if r.name.endswith(".tokens_per_expert") and r.layer is not None]


def routing_section(layers: list[tuple[int, int, list[int] | None]], title: str) -> Section:
    rows: list[list[str]] = []
    for layer, experts, counts in layers:
        if counts is None:  # meta: one row for a run of layers
            if rows and rows[-1][-1].startswith("meta") and rows[-1][1] == f"({experts},)":
                rows[-1][0] = rows[-1][0].split("-")[0] + f"-{layer}"
            else:
                rows.append([str(layer), f"({experts},)", "", "", "meta device: shapes only, no routing decisions"])
            continue
        used = sum(1 for c in counts if c)
        best = sorted(range(experts), key=lambda e: (-counts[e], e))[:5]
        rows.append([str(layer), f"{used}/{experts}", str(sum(counts)),
                     " ".join(f"{e}:{counts[e]}" for e in best if counts[e]), histogram(counts)])
    return Section(title, ["Layer", "Experts used", "Choices", "Most chosen (expert:count)",
                           "Tokens per expert (one bar per expert, by id)"], rows)


def routing_data(layers: list[tuple[int, int, list[int] | None]]) -> list[dict[str, Any]]:
    return [{"layer": layer, "experts": experts, "tokens_per_expert": counts} for layer, experts, counts in layers]


def _trace_json(result: TraceResult, routing) -> dict[str, Any]:
    data = {
        "model": result.model,
        "device": result.device,
        "dtype": result.dtype,
        "prompt": result.prompt_text,
        "tokens": result.tokens,
        "token_strings": result.token_strings,
        "stand_in": result.stand_in or None,
        "steps": [step_json(r) for r in result.rows],
        "next_token": result.next_tokens[0],
        **({"routing": routing_data(routing)} if routing else {}),
        "decode_steps": [
            {"step": t, "fed": result.batch_next[t - 1] if result.batch_size > 1 else result.next_tokens[t - 1],
             "next_token": result.next_tokens[t], "steps": [step_json(r) for r in recs]}
            for t, recs in enumerate(result.decode, start=1)
        ],
    }
    if result.batch_size > 1:
        n = len(result.input_ids[0])
        data["batch"] = [{"prompt": p, "tokens": ids, "token_strings": strings, "pads": n - len(ids)}
                         for p, ids, strings in zip(result.prompts, result.batch_tokens, result.batch_strings)]
        data["input_ids"] = result.input_ids
        data["pad_id"] = result.pad_id
        data["next_tokens"] = result.batch_next[0]
    return data


def trace_report(result: TraceResult, show_layers: Container[int] | None = None) -> Report:
    b, n = result.batch_size, len(result.input_ids[0]) if result.input_ids else len(result.tokens)
    shape = plural(n, "token") if b == 1 else f"a batch of {b} rows x {n} positions"
    sections = [Section(
        f"Forward pass of {result.model} on {result.device} ({result.dtype}), {shape}",
        ["Step", "Name", "Module", "Output shape", "Dtype", "What happens"],
        trace_rows(result, show_layers),
    )]
    routing = routing_layers(result.rows)
    if routing:
        sections.append(routing_section(routing, "Routing of the prompt: tokens each expert received, per MoE layer "
                                                  "(Step 6 with a router and experts)"))
    if result.decode:
        sections.append(Section("Cached decode steps (Step 11, each one new token through the KV cache)",
                                ["Step", "Name", "Output shape", "What happens"], decode_rows(result)))
    return Report(sections, _trace_json(result, routing), notes=[result.stand_in] if result.stand_in else [])
