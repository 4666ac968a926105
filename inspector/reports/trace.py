"""Reports of `trace` and `run`: the step table (repeated layers collapsed), the cached decode
steps, the per-layer timing dump, the generation figures, the temperature sweep table, and for
mixture-of-experts models the routing table (tokens each expert received, one row per MoE layer)."""

from __future__ import annotations

from typing import Any, Container

from inspector.reports.render import Report, Section
from inspector.runtime.trace import Record, TraceResult, collapse


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


def trace_rows(result: TraceResult, show_layers: Container[int] | None) -> list[list[str]]:
    n = len(result.tokens)
    rows = [["Step 3", "tokenize", "tokenizer", f"(1, {n})", "int64",
             "ids: " + _token_note(result.tokens, result.token_strings)]]
    for item in collapse(result.rows, show_layers):
        if isinstance(item, tuple):
            (first, last), shown = item, item.shown
            label = f"layers {first}-{last}" if last > first else f"layer {first}"
            like = " or ".join(str(i) for i in shown)
            rows.append(["Step 7", label, "Block", "", "", f"same shapes as layer {like} (collapsed; --layers shows "
                                                          "them)"])
            continue
        rows.append([item.step, item.name, item.module, shape_text(item.shapes), item.dtype, item.text])
    token, text = result.next_tokens[0], result.next_strings[0]
    note = f"next token {token} {text!r}" if token is not None else "meta device: shapes only, no values to sample"
    rows.append(["Step 10", "sample", "argmax / sampling", "(1,)", "int64", note])
    return rows


def decode_rows(result: TraceResult) -> list[list[str]]:
    rows = []
    n = len(result.tokens)
    for t, records in enumerate(result.decode, start=1):
        fed = result.next_tokens[t - 1]
        for r in records:
            rows.append([f"decode {t}", r.name, shape_text(r.shapes), r.text])
        token = result.next_tokens[t]
        rows.append([f"decode {t}", "sample", "(1,)",
                     f"fed {fed}, cache now {n + t} positions; next token {token} {result.next_strings[t]!r}"
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


def trace_report(result: TraceResult, show_layers: Container[int] | None = None) -> Report:
    sections = [Section(
        f"Forward pass of {result.model} on {result.device} ({result.dtype}), {len(result.tokens)} tokens",
        ["Step", "Name", "Module", "Output shape", "Dtype", "What happens"],
        trace_rows(result, show_layers),
    )]
    routing = routing_layers(result.rows)
    if routing:
        sections.append(routing_section(routing, "Routing of the prompt: tokens each expert received, per MoE layer "
                                                  "(Step 6 with a router and experts)"))
    if result.decode:
        sections.append(Section("Cached decode steps (Step 11 with the KV cache of 1.2.5.1)",
                                ["Step", "Name", "Output shape", "What happens"], decode_rows(result)))
    data = {
        "model": result.model,
        "device": result.device,
        "dtype": result.dtype,
        "prompt": result.prompt_text,
        "tokens": result.tokens,
        "token_strings": result.token_strings,
        "steps": [step_json(r) for r in result.rows],
        "next_token": result.next_tokens[0],
        **({"routing": routing_data(routing)} if routing else {}),
        "decode_steps": [
            {"step": t, "fed": result.next_tokens[t - 1], "next_token": result.next_tokens[t],
             "steps": [step_json(r) for r in recs]}
            for t, recs in enumerate(result.decode, start=1)
        ],
    }
    return Report(sections, data)


# --------------------------------------------------------------------------- run


def layer_timing_rows(records: list[Record]) -> list[list[str]]:
    """Top-level modules (embedding, each layer, final norm, head) with shapes and times."""
    rows = []
    for r in records:
        if r.name in ("embed", "norm", "lm_head", "rope") or (r.layer is not None and r.name == f"layers.{r.layer}"):
            rows.append([r.name, r.module, shape_text(r.shapes), r.dtype, f"{(r.seconds or 0) * 1000:.3f}"])
    return rows


def dominant(records: list[Record], top: int = 5) -> list[tuple[str, float]]:
    """Where the time goes, by kind of module summed over layers (attention, MLP, head, ...)."""
    kinds: dict[str, float] = {}
    for r in records:
        if r.seconds is None:
            continue
        rel = r.name.split(".", 2)[2] if r.layer is not None and r.name.count(".") >= 2 else r.name
        if rel in ("attn", "mlp", "attn_norm", "mlp_norm", "embed", "norm", "lm_head"):
            kinds[rel] = kinds.get(rel, 0.0) + r.seconds
    return sorted(kinds.items(), key=lambda kv: -kv[1])[:top]


def run_report(model: str, device: str, dtype: str, prompt_ids: list[int], records: list[Record],
               generations: list[dict[str, Any]], timing_method: str,
               routing: list[tuple[int, int, list[int] | None]] | None = None) -> Report:
    """The timed prefill, the generations and, for MoE models, the experts chosen while generating."""
    total = sum(r.seconds or 0 for r in records if r.layer is None or r.name == f"layers.{r.layer}")
    sections = [Section(f"Prefill of {len(prompt_ids)} tokens, layer by layer ({timing_method})",
                        ["Module", "Type", "Output shape", "Dtype", "Time (ms)"], layer_timing_rows(records))]
    dom = dominant(records)
    if dom:
        sections.append(Section("Where the prefill time goes (summed over layers)", ["Part", "Time (ms)", "Share"],
                                [[k, f"{v * 1000:.2f}", f"{100 * v / total:.0f}%" if total else ""] for k, v in dom]))
    rows = [[g["prompt"], g["temperature"], g["trial"] + 1, g["text"], g["tokens"], f"{g['prefill_tokens_per_s']:.1f}",
             f"{g['decode_tokens_per_s']:.1f}", g["stop"]] for g in generations]
    sections.append(Section("Generations", ["Prompt", "Temperature", "Trial", "Output", "New tokens",
                                            "Prefill tok/s", "Decode tok/s", "Stop"], rows))
    data = {
        "model": model, "device": device, "dtype": dtype, "tokens": prompt_ids, "timing": timing_method,
        "layers": [step_json(r) for r in records
                   if r.name in ("embed", "norm", "lm_head") or r.name == f"layers.{r.layer}"],
        "dominant": [{"part": k, "seconds": v} for k, v in dom],
        "generations": generations,
    }
    if routing:
        sections.append(routing_section(routing, "Expert choices during generation, per MoE layer (the prompt "
                                                  "and every new token)"))
        data["routing"] = routing_data(routing)
    return Report(sections, data)


def sweep_report(generations: list[dict[str, Any]]) -> Report:
    """Seed 000's experiment: one row per prompt and temperature, one column per trial."""
    prompts = list(dict.fromkeys(g["prompt"] for g in generations))
    temps = list(dict.fromkeys(g["temperature"] for g in generations))
    trials = sorted({g["trial"] for g in generations})
    rows = []
    for p in prompts:
        for t in temps:
            outs = {g["trial"]: g["text"] for g in generations if g["prompt"] == p and g["temperature"] == t}
            rows.append([p, t, *[outs.get(i, "") for i in trials]])
    return Report([Section("Outputs by temperature", ["Prompt", "Temperature", *[f"Trial {i + 1}" for i in trials]],
                           rows)], {"generations": generations})
