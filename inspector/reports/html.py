"""`inspect report`: one self-contained HTML page for one model, or several side by side.

Styles are inline, there is no script and nothing is fetched: the page works offline and from a
file. The architecture figures (inspector.reports.diagram), the charts (inspector.reports.charts and
.charts_flops) and the tables (`params` and `config`, from inspector.reports.params' own builders) are
built from the accounting; the trace and verify parts (inspector.reports.html_runs) only when asked for. The
same input gives the same bytes: no timestamps, no random ids, fixed orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

from inspector.inventory.accounting import Accounting
from inspector.reports.charts import bar_chart, memory_scenarios, param_shares, stacked_chart
from inspector.reports.charts_flops import flops_charts
from inspector.reports.diagram import flow_svg, overview_svg
from inspector.reports.overview import describe, model_figures
from inspector.reports.params import ParamsOptions, config_report, params_json, params_report
from inspector.reports.render import Section
from inspector.reports.hf_trace import module_tree_html
from inspector.reports.html_runs import trace_html, verify_html
from inspector.reports.markup import esc, notes_list, prose, table, tag, void
from inspector.reports.svg import DEFS
from inspector.units import human_bytes, n

try:
    VERSION = metadata.version("llm-inspector")
except metadata.PackageNotFoundError:  # running from a checkout that is not installed
    VERSION = "unreleased"


@dataclass
class ModelPage:
    acc: Accounting
    trace: Any = None  # inspector.steps.TraceResult
    verify: Any = None  # inspector.checkpoint.verify.VerifyResult
    adapter: Any = None  # inspector.memory.adapter_verify.AdapterResult (report --adapter)
    modules: Any = None  # inspector.runtime.hf_trace.HfTrace: a model with no native family (no spec to draw)


CSS = """
:root{--ink:#1b1f24;--muted:#57606a;--line:#d0d7de}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:var(--ink)}
header,section,footer{padding:8px 24px}header{border-bottom:1px solid var(--line)}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:18px 0 8px}h3{font-size:15px;margin:10px 0 6px}
nav a{margin-right:14px}p.sub,footer{color:var(--muted)}
.cols{display:grid;grid-template-columns:repeat(var(--n),minmax(0,1fr));gap:24px;align-items:start}
.cols>div{min-width:0;overflow-x:auto}
svg.fig{max-width:100%;height:auto;display:block;margin:6px 0}svg.defs{position:absolute}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid var(--line);padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
details{margin:6px 0}.arch{display:flex;flex-wrap:wrap;gap:8px 28px;align-items:flex-start}
.arch>*{min-width:0;max-width:100%}summary{cursor:pointer;font-weight:600}
.ok{color:#116329}.bad{color:#a40e26;font-weight:600}ul.notes{color:var(--muted);font-size:13px}
.fig text{fill:var(--ink);font-family:system-ui,"DejaVu Sans",sans-serif;font-size:12px}
.fig .bt{font-weight:700}.fig .ft{font-size:14px;font-weight:700}.fig .ct{font-size:13px;font-weight:700}
.fig .mono{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:11px}
.fig .sm{font-size:10.5px;fill:var(--muted)}.fig .op{font-style:italic}.fig .note{fill:var(--muted)}
.fig .num{font-variant-numeric:tabular-nums}.fig .sumt{font-size:15px;font-weight:700}
.box{fill:#fff;stroke:#57606a;stroke-width:1.2}.group{fill:#fbfbfc;stroke:#8c959f;stroke-width:1.2}
.dashed{stroke-dasharray:5 3}.sum{fill:#fff;stroke:#1b1f24;stroke-width:1.3}
.embed{fill:#e7f0fd}.layer{fill:#eef6ee}.norm{fill:#f4f4f5}.head{fill:#fdf0e4}.attn{fill:#eaf2fb}
.mlp{fill:#eef7ee}.moe{fill:#f5f0fb}.router{fill:#fbf3e3}.expert{fill:#f1ebfa}.vision{fill:#e6f6f6}
.proj{fill:#fbeef3}.extra{fill:#f6f6f6}
.edge{stroke:#1b1f24;stroke-width:1.2;fill:none}.res{stroke:#8c959f;stroke-width:1.2;stroke-dasharray:4 3;fill:none}
.join{stroke:#bf3989;stroke-width:1.6;fill:none}marker path.head{fill:#1b1f24}
.bar{stroke:#1b1f24;stroke-width:.6}.overlay{stroke:none}.pat{stroke:#000;stroke-opacity:.4;stroke-width:1.1}
.patf{fill:#000;fill-opacity:.35}
.c0{fill:#4e79a7}.c1{fill:#f28e2b}.c2{fill:#59a14f}.c3{fill:#e15759}.c4{fill:#76b7b2}.c5{fill:#edc948}
.c6{fill:#b07aa1}.c7{fill:#ff9da7}.c8{fill:#9c755f}
a .part:hover rect{stroke-width:2.4}
@media print{nav{display:none}}
"""

FIGURE_LABELS = {
    "total_params": "Total parameters (stored; a tied LM head counted once)",
    "total_params_untied": "Total with the LM head counted separately",
    "embedding_params": "Embedding parameters (token embedding + stored LM head)",
    "non_embedding_params": "Non-embedding parameters",
    "kv_cache_bytes_per_token": "KV cache per token, bf16 (bytes)",
    "kv_cache.bytes": "KV cache for the context and batch below, bf16 (bytes)",
    "kv_cache.context": "Context (tokens) of the KV-cache estimate",
    "kv_cache.batch": "Batch of the KV-cache estimate",
    "moe.active_params": "Active parameters per token",
    "moe.active_params_without_embedding": "Active parameters per token without the input embedding",
    "moe.routed_expert_params": "Routed expert parameters",
    "moe.experts": "Routed experts per MoE layer", "moe.top_k": "Experts per token (top-k)",
    "moe.moe_layers": "MoE layers",
}


def key_figures(data: dict[str, Any], prefix: str = "") -> list[tuple[str, int]]:
    """Every integer of `params --format json` outside its rows, as (dotted key, value)."""
    out: list[tuple[str, int]] = []
    for key, value in data.items():
        if key == "rows":
            continue
        if isinstance(value, dict):
            out += key_figures(value, f"{prefix}{key}.")
        elif isinstance(value, int) and not isinstance(value, bool):
            out.append((prefix + key, value))
    return out


def _label(key: str) -> str:
    if key in FIGURE_LABELS:
        return FIGURE_LABELS[key]
    head, _, tail = key.partition(".")
    return {"components": f"Parameters: {tail}", "weight_bytes": f"Weight memory, {tail} (bytes)",
            "stored_beside_model": f"Stored beside the model, not counted: {tail}"}.get(head, key)


def figures_table(accs: list[Accounting], context: int, batch: int) -> str:
    payloads = [params_json(a, context, batch) for a in accs]
    per_model = [dict(key_figures(p)) for p in payloads]
    keys = list(dict.fromkeys(k for figures in per_model for k in figures))
    head = tag("tr", tag("th", "Figure") + "".join(tag("th", esc(a.spec.name)) for a in accs))
    rows = []
    for key in keys:
        cells = [tag("td", esc(n(f[key])), class_="num", data_model=i, data_value=f[key]) if key in f
                 else tag("td", "", data_model=i) for i, f in enumerate(per_model)]
        rows.append(tag("tr", tag("th", esc(_label(key))) + "".join(cells), data_key=key))
    return tag("table", tag("thead", head) + tag("tbody", "".join(rows)), data_section="figures")


def _cols(parts: list[str], names: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return tag("div", "".join(tag("div", tag("h3", esc(name)) + p) for name, p in zip(names, parts)),
               class_="cols", style=f"--n:{len(parts)}")


def architecture(acc: Accounting, i: int) -> str:
    anchor = f"m{i}"
    figs = model_figures(acc, anchor)
    title = f"{acc.spec.architecture}: overview"
    out = [overview_svg(figs.columns, title, describe(acc), f"{anchor}-overview")]
    for flow in figs.expanded:
        body = flow_svg(flow, f"{flow.title} of {acc.spec.name}, expanded: every box with its tensor shapes "
                              f"and parameter count.", flow.key)
        out.append(tag("details", tag("summary", esc(flow.title)) + body, open="open"))
    return tag("div", "".join(out), class_="arch")


def charts(acc: Accounting, i: int, context: int, batch: int) -> str:
    shares = param_shares(acc)
    total = acc.totals.total_params
    bars = bar_chart(shares, total, f"Where the {n(total)} parameters go",
                     "Parameters by part of the model: " + "; ".join(f"{k} {n(v)}" for k, v in shares), f"m{i}-params")
    scenarios = memory_scenarios(acc, context, batch)
    what = f"a KV cache of {n(context)} tokens × batch {batch}"
    stack = stacked_chart(scenarios, f"Memory per GPU (H100-80GB) with {what}",
                          f"Serving and fine-tuning memory per GPU with {what}: "
                          + "; ".join(f"{s} {human_bytes(sum(b for _, b in rows))}" for s, rows in scenarios),
                          f"m{i}-memory")
    rows = [[s, name, n(size), human_bytes(size)] for s, rs in scenarios for name, size in rs]
    plan = table(Section("", ["Scenario", "Component", "Bytes", "Size"], rows), f"memory-{i}")
    note = tag("p", prose(f"The KV cache here holds {n(context)} tokens × batch {batch}; `inspect memory` "
                          "instead gives the KV cache all the memory the GPU has left and says how many "
                          "tokens that holds."), class_="sub")
    return bars + stack + note + plan + flops_charts(acc, i, context, batch)


def _adapter_html(result) -> str:
    from inspector.reports.adapter import adapter_sections

    return "".join(table(s) for s in adapter_sections(result)) + notes_list(result.notes)


def _optional_sections(models: list[ModelPage], names: list[str], diff: str | None) -> list[tuple[str, str, str]]:
    """The sections that only some pages have: trace, verify, adapter, diff."""
    sections = []
    if any(m.trace is not None for m in models):
        sections.append(("trace", "Traced forward pass (as `inspect trace`)",
                         _cols([trace_html(m.trace) if m.trace else "" for m in models], names)))
    if any(m.verify is not None for m in models):
        sections.append(("verify", "Checkpoint verified (as `inspect verify`)",
                         _cols([verify_html(m.verify) if m.verify else "" for m in models], names)))
    if any(m.adapter is not None for m in models):
        sections.append(("adapter", "LoRA adapter (as `inspect params --adapter`)",
                         _cols([_adapter_html(m.adapter) if m.adapter else "" for m in models], names)))
    if diff is not None:
        sections.append(("diff", "Differences (as `inspect diff`)", diff))
    return sections


NO_CHARTS = ("No native family: the charts need one. Through transformers, `inspect memory` and `inspect flops` "
             "give its cache and FLOPs.")


def _native_parts(models: list[ModelPage], context: int, batch: int) -> tuple[list[str], list[str], str]:
    """Architecture and charts per model (a model with no native family: its module tree with shapes,
    and no charts), and the config table of the native ones."""
    arch = [module_tree_html(m.modules) if m.modules is not None else architecture(m.acc, i)
            for i, m in enumerate(models)]
    drawn = [tag("p", prose(NO_CHARTS), class_="sub") if m.modules is not None else charts(m.acc, i, context, batch)
             for i, m in enumerate(models)]
    specs = [m.acc.spec for m in models if m.modules is None]
    return arch, drawn, _report_html(config_report(specs)) if specs else ""


def page(models: list[ModelPage], context: int = 4096, batch: int = 1, diff: str | None = None) -> str:
    """The page; `diff` (inspector.reports.diff.diff_section_html of the two models) adds a differences
    section (as HTML, so that this module needs not import reports.diff, which takes its CSS from here)."""
    accs = [m.acc for m in models]
    names = [a.spec.name for a in accs]
    arch, drawn, config = _native_parts(models, context, batch)
    sections = [
        ("architecture", "Architecture", _cols(arch, names)),
        ("figures", "Key figures (as `inspect params --format json`)", figures_table(accs, context, batch)),
        ("charts", "Where the parameters, the memory and the FLOPs go", _cols(drawn, names)),
        ("params", "Parameters, layer by layer (as `inspect params`)",
         _report_html(params_report(accs, ParamsOptions(context, batch)))),
    ]
    if config:
        sections.append(("config", "Configuration (as `inspect config`)", config))
    sections += _optional_sections(models, names, diff)
    nav = tag("nav", "".join(tag("a", esc(title.split(" (")[0]), href=f"#{key}") for key, title, _ in sections))
    body = "".join(tag("section", tag("h2", prose(title)) + html, id=key) for key, title, html in sections)
    title = " vs ".join(names)
    sub = " · ".join((f"{a.spec.name}: " if len(accs) > 1 else "") + f"{a.spec.architecture} ({a.spec.model_type}), "
                     f"{n(a.totals.total_params)} parameters" for a in accs)
    header = tag("header", tag("h1", esc(title)) + tag("p", esc(sub), class_="sub") + nav)
    footer = tag("footer", prose(f"Made by llm-inspector {VERSION} (`inspect report`). The figures are drawn from "
                               "each model's configuration, in the style of Figures 1.1, 2.1 and 2.2 of "
                               "Implementations of Large Language Models. No script, no network."))
    head = (void("meta", charset="utf-8") + void("meta", name="viewport", content="width=device-width")
            + tag("title", esc(f"{title}: llm-inspector report")) + tag("style", CSS))
    return "<!DOCTYPE html>\n" + tag("html", tag("head", head) + tag("body", DEFS + header + tag("main", body) + footer),
                                     lang="en") + "\n"


def _report_html(report) -> str:
    return "".join(table(s) for s in report.sections) + notes_list(report.notes)
