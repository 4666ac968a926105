"""The report of a transformers forward on the meta device: every module's input and output shapes.

What `inspect trace` and `inspect report` show for a model with no native family (the records of
inspector.runtime.hf_trace: qualified name, module class, input shapes, output shapes, dtype).
Repeated layers fold as in a native trace (inspector.steps.collapse): a run of layers whose modules
have the same shapes as an earlier layer shown in full is one row. The trace lists modules in the
order they finished; the report's module tree lists them parents first, indented by depth.
"""

from __future__ import annotations

from typing import Any, Container

from inspector.reports.markup import cell, esc, notes_list, tag
from inspector.reports.render import Report, Section
from inspector.reports.trace import shape_text, step_json
from inspector.steps import collapse

HEADERS = ["Name", "Module", "Input shape", "Output shape", "Dtype"]


def _ordered(trace: Any, tree: bool) -> tuple[list, dict[int, tuple]]:
    """The Records (execution order, or parents first for the tree) and each one's input shapes by id."""
    inputs = {id(r.record): r.inputs for r in trace.records}
    rows = trace.rows
    if tree:
        place = {name: i for i, name in enumerate(trace.tree)}
        first: dict[str, Any] = {}
        for r in rows:
            first.setdefault(r.name, r)
        rows = sorted(first.values(), key=lambda r: place.get(r.name, len(place)))
    return rows, inputs


def _short(name: str) -> str:
    """A module tree's label: indented by depth, the last part of the name (a layer: `layers.3`)."""
    parts = name.split(".")
    tail = ".".join(parts[-2:]) if len(parts) > 1 and parts[-1][:1].isdigit() else parts[-1]
    above = parts[:len(parts) - len(tail.split("."))]  # a numbered layer is one level with its list's name
    return "  " * sum(1 for p in above if not p[:1].isdigit()) + tail


def module_rows(trace: Any, show_layers: Container[int] | None = None, tree: bool = False) -> list[list[str]]:
    """One row per module call (per module in a tree), repeated layers folded."""
    rows, inputs = _ordered(trace, tree)
    out = []
    for item in collapse(rows, show_layers):
        if isinstance(item, tuple):
            first, last = item
            label = f"{item.stack}.{first}-{last}" if last > first else f"{item.stack}.{first}"
            like = " or ".join(str(i) for i in item.shown)
            more = "" if tree else " (collapsed; --layers shows them)"
            out.append([_short(label) if tree else label, "", "", f"same shapes as layer {like}{more}", ""])
            continue
        name = _short(item.name) if tree else item.name
        out.append([name, item.module, shape_text(inputs.get(id(item), ())), shape_text(item.shapes), item.dtype])
    return out


def title(trace: Any) -> str:
    version = ".".join(trace.transformers_version.split(".")[:2])
    return (f"Forward pass of {trace.model} through transformers {version} on meta "
            f"({trace.dtype}), {trace.seq_len:,} tokens")


def hf_trace_report(trace: Any, show_layers: Container[int] | None = None) -> Report:
    """`inspect trace` for a model with no native family: a table, markdown or JSON."""
    section = Section(title(trace), HEADERS, module_rows(trace, show_layers))
    steps = []
    for r in trace.records:
        step = step_json(r.record)
        step["input_shape"] = [list(s) for s in r.inputs]
        steps.append(step)
    data = {"path": "transformers", "transformers_version": trace.transformers_version, "class": trace.class_name,
            "model": trace.model, "model_type": trace.model_type, "device": "meta", "dtype": trace.dtype,
            "seq_len": trace.seq_len, "stand_in": trace.stand_in, "notes": list(trace.notes), "steps": steps}
    return Report([section], data, notes=[trace.path_line(), trace.stand_in, *trace.notes])


def module_tree_html(trace: Any) -> str:
    """The report page's architecture for a model with no native family: the module tree with shapes."""
    head = tag("tr", "".join(tag("th", h) for h in ["Module", "Class", "Input shape", "Output shape", "Dtype"]))
    body = "".join(tag("tr", "".join(tag("td", cell(v), style="white-space:pre" if i == 0 else None)
                                     for i, v in enumerate(row)))
                   for row in module_rows(trace, tree=True))
    return (tag("h3", esc(title(trace))) + tag("table", tag("thead", head) + tag("tbody", body),
                                              data_section="module-tree")
            + notes_list([trace.path_line(), trace.stand_in, *trace.notes]))
