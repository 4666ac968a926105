"""Reports of adapters: `verify --adapter` (findings, ranks, JSON), `params --adapter` and `memory --adapter` rows.

The JSON contract: {ok, adapter, format, base, matched, missing, unexpected, mismatched,
absent_targets, trainable, stored_trainable, peft_line, modules_to_save, ranks, tensors, notes}.
"""

from __future__ import annotations

from typing import Any

from inspector.limits import MAX_DATA_ROWS
from inspector.memory.adapter_verify import AdapterResult
from inspector.memory.lora import peft_line
from inspector.reports.render import Report, Section
from inspector.reports.verify import STATUS_TEXT
from inspector.units import human_bytes, n


def _shape(s) -> str:
    return "" if s is None else str(tuple(s))


def _names(r: AdapterResult, status: str) -> list[str]:
    return [f.name for f in r.findings if f.status == status]


def adapter_json(r: AdapterResult) -> dict[str, Any]:
    return {
        "ok": r.ok, "adapter": r.adapter, "format": r.format, "base": r.base, "architecture": r.architecture,
        "matched": r.count("ok"), "missing": _names(r, "missing"), "unexpected": _names(r, "unexpected"),
        "mismatched": [{"name": f.name, "expected": list(f.expected), "actual": list(f.actual), "note": f.note}
                       for f in r.findings if f.status == "shape"],
        "absent_targets": r.absent_targets, "trainable": r.trainable, "stored_trainable": r.stored_trainable,
        "base_params": r.base_params, "peft_line": peft_line(r.trainable, r.base_params + r.trainable),
        "stored_bytes": r.stored_bytes,
        "modules_to_save": [{"module": m, "params": p, "bytes": b} for m, p, b in r.copies],
        "ranks": {k: len(v) for k, v in r.ranks.items()},
        "tensors": [{"name": f.name, "status": f.status, "expected": _list(f.expected), "actual": _list(f.actual),
                     "dtype": f.dtype, **({"stored_name": f.stored_name} if f.stored_name else {}),
                     **({"note": f.note} if f.note else {}), "params": f.params, "bytes": f.nbytes}
                    for f in r.findings[:MAX_DATA_ROWS]],
        **({"tensors_not_listed": len(r.findings) - MAX_DATA_ROWS} if len(r.findings) > MAX_DATA_ROWS else {}),
        "notes": r.notes,
    }


def _list(shape):
    return list(shape) if shape is not None else None


def _summary(r: AdapterResult) -> list[list[str]]:
    copies = ", ".join(f"{m} ({n(p)} params, {human_bytes(b)})" for m, p, b in r.copies)
    return [
        ["Adapter", f"{r.adapter} ({r.format})"],
        ["Base", f"{r.base} ({r.architecture})"],
        ["Matched", n(r.count("ok"))],
        ["Missing", n(r.count("missing"))],
        ["Unexpected", n(r.count("unexpected"))],
        ["Shape mismatches", n(r.count("shape"))],
        ["Config names the base lacks", ", ".join(r.absent_targets) or "none"],
        ["Rank and alpha", "; ".join(f"{k} × {len(v)}" for k, v in r.ranks.items()) or "none"],
        ["modules_to_save copies", copies or "none"],
        ["Trainable parameters", f"{n(r.trainable)} (file: {n(r.stored_trainable)})"],
        ["peft", peft_line(r.trainable, r.base_params + r.trainable)],
        ["Stored bytes", f"{n(r.stored_bytes)} ({human_bytes(r.stored_bytes)})"],
        ["Result", "OK" if r.ok else "MISMATCH"],
    ]


def adapter_report(r: AdapterResult, show_all: bool = False) -> Report:
    sections = [Section("Verify adapter", ["Check", "Result"], _summary(r))]
    shown = [f for f in r.findings if show_all or f.status != "ok" or f.note.startswith("modules_to_save")]
    if shown:
        gguf = r.format == "gguf"
        headers = ["Tensor", "Status", "Expected", "Found", "Dtype", "Note"] + (["GGUF name"] if gguf else [])
        rows = [[f.name, STATUS_TEXT[f.status], _shape(f.expected), _shape(f.actual), f.dtype or "", f.note]
                + ([f.stored_name or ""] if gguf else []) for f in shown[:MAX_DATA_ROWS]]
        sections.append(Section("Tensors" if show_all else "Findings", headers, rows,
                                not_listed=max(0, len(shown) - MAX_DATA_ROWS)))
    if r.absent_targets:
        sections.append(Section("Config names the base lacks", ["Name"], [[t] for t in r.absent_targets]))
    return Report(sections, adapter_json(r), notes=list(r.notes))


def _groups(r: AdapterResult) -> dict[tuple[str, int, float], list]:
    """The predicted tensors grouped by target name (the module's last name), rank and alpha."""
    groups: dict[tuple[str, int, float], list] = {}
    for p in r.planned:
        if p.trainable:
            leaf = p.module.rsplit(".", 1)[-1]
            groups.setdefault((leaf if p.kind != "copy" else f"{leaf} (modules_to_save)", p.rank, p.alpha),
                              []).append(p)
    return groups


def adapter_rows(r: AdapterResult) -> Section:
    """The adapter's rows, to sit beside the base's in `params`: per target, its modules, shapes and count."""
    rows = []
    for (target, rank, alpha), ps in _groups(r).items():
        modules = len({p.module for p in ps})
        shapes = {p.kind: _shape(p.shape) for p in ps}
        extra = ", ".join(k for k in ("magnitude", "bias") if k in shapes)
        rows.append([target, n(modules), str(rank) if rank else "", f"{alpha:g}" if rank else "",
                     shapes.get("lora_A", ""), shapes.get("lora_B", shapes.get("copy", "")), extra,
                     n(sum(p.params for p in ps))])
    rows.append(["Total (trainable)", "", "", "", "", "", "", n(r.trainable)])
    return Section("Adapter", ["Target", "Modules", "r", "alpha", "lora_A", "lora_B / copy", "Also", "Parameters"],
                   rows)


def adapter_totals(r: AdapterResult) -> list[list[str]]:
    return [["Adapter parameters", n(r.trainable)],
            ["Base + adapter, unmerged (peft's all params)", n(r.base_params + r.trainable)],
            ["Merged into the base", n(r.merged_params)],
            ["Adapter file", f"{n(r.stored_bytes)} bytes ({human_bytes(r.stored_bytes)})"],
            ["Adapter check", "OK" if r.ok else "MISMATCH (see inspect verify --adapter)"]]


def adapter_payload(r: AdapterResult) -> dict[str, Any]:
    return {"adapter": r.adapter, "ok": r.ok, "trainable": r.trainable, "unmerged_params": r.base_params + r.trainable,
            "merged_params": r.merged_params, "stored_bytes": r.stored_bytes,
            "rows": [{"target": t, "rank": k, "alpha": a, "modules": len({p.module for p in ps}),
                      "params": sum(p.params for p in ps)} for (t, k, a), ps in _groups(r).items()]}


def adapter_sections(r: AdapterResult, bytes_per_param: float = 2.0) -> list[Section]:
    """`report MODEL --adapter DIR`: the adapter's rows and totals (as `params --adapter`), plus the merged
    size at `bytes_per_param` (2: bf16/fp16, the dtype peft's merge_and_unload keeps for a bf16 base)."""
    merged = ["Merged size (bf16/fp16, 2 B a parameter)" if bytes_per_param == 2.0
              else f"Merged size ({bytes_per_param:g} B a parameter)",
              human_bytes(r.merged_params * bytes_per_param)]
    return [adapter_rows(r), Section("Adapter totals", ["Figure", "Value"], adapter_totals(r) + [merged])]


def with_adapter(report: Report, r: AdapterResult) -> Report:
    """`params BASE --adapter DIR`: the base's report with the adapter's rows and totals beside."""
    sections = list(report.sections) + [adapter_rows(r), Section("Adapter totals", ["Figure", "Value"],
                                                                 adapter_totals(r))]
    data = {**report.data, "adapter": adapter_payload(r)} if isinstance(report.data, dict) else report.data
    notes = list(report.notes) + list(r.notes)
    if r.merged_params != r.base_params:
        notes.append("merged: the saved copy of a tied LM head becomes a head of its own, so the merged model "
                     "is larger than the base")
    return Report(sections, data, report.csv_headers, report.csv_rows + _csv_rows(report, r), notes)


def _csv_rows(report: Report, r: AdapterResult) -> list[list[Any]]:
    """The adapter's rows in params' CSV columns (model, section, component, name, repeat, weights, params,
    params_total, stored, value): one per target, then the totals as values."""
    if not report.csv_rows or len(report.csv_headers) != 10:
        return []
    model = report.csv_rows[0][0]
    rows: list[list[Any]] = []
    for (target, _, _), ps in _groups(r).items():
        modules = len({p.module for p in ps})
        total = sum(p.params for p in ps)
        shapes = "; ".join(f"{p.kind}: {_shape(p.shape)}" for p in ps if p.module == ps[0].module)
        rows.append([model, "adapter", "adapter", target, modules, shapes, total // modules, total, True, ""])
    for key, value in (("trainable", r.trainable), ("unmerged_params", r.base_params + r.trainable),
                       ("merged_params", r.merged_params), ("stored_bytes", r.stored_bytes)):
        rows.append([model, "adapter_totals", "", f"adapter.{key}", "", "", "", "", "", value])
    return rows


def with_vllm_lora(report: Report, r: AdapterResult, lora) -> Report:
    """`memory MODEL --adapter DIR`: the serving report (whose weights term counts the stacks, as a load
    extra) with vLLM's LoRA stacks per module and the CPU adapter cache."""
    o = lora.options
    rows = [[row.target, n(row.modules), f"{row.in_features} + {row.out_features}",
             f"{row.modules} × {o.max_loras} × {o.max_lora_rank} × ({row.in_features} + {row.out_features}) × "
             f"{o.dtype_bytes} B", human_bytes(row.nbytes)] for row in lora.rows]
    rows.append(["Total (per GPU)" + (f", tp {o.tp}: column-parallel B and row-parallel A split" if o.tp > 1 else ""),
                 "", "", "",
                 human_bytes(lora.gpu_bytes)])
    figures = [
        ["Adapter", f"{r.adapter} (rank {lora.adapter_rank}; check: {'OK' if r.ok else 'MISMATCH'})"],
        ["--max-loras / --max-lora-rank / --max-cpu-loras",
         f"{o.max_loras} / {o.max_lora_rank} / {o.max_cpu_loras if o.max_cpu_loras is not None else o.max_loras}"],
        ["LoRA stacks on the GPU (in the weights term above)", human_bytes(lora.gpu_bytes)],
        ["CPU adapter cache (assumed: --max-cpu-loras adapters of this size)", human_bytes(lora.cpu_bytes)],
    ]
    sections = list(report.sections) + [
        Section("LoRA stacks (vLLM --enable-lora)", ["Module", "Modules", "in + out", "Bytes", "Size"], rows),
        Section("Serving the adapter", ["Figure", "Value"], figures)]
    data = report.data
    if isinstance(data, dict):
        data = {**data, "lora": {"adapter": r.adapter, "ok": r.ok, "rank": lora.adapter_rank, "max_loras": o.max_loras,
                                 "max_lora_rank": o.max_lora_rank, "gpu_bytes": lora.gpu_bytes,
                                 "cpu_bytes": lora.cpu_bytes, "modules": {row.target: row.modules for row in lora.rows}}}
    notes = list(report.notes) + [
        "vLLM wraps every linear layer of the language model whichever modules the adapter targets, and allocates "
        "each one's A and B stacks for --max-loras adapters of --max-lora-rank when the model loads, before the KV "
        "cache is sized (counted in the weights, as a load extra); the embedding/LM-head and fused-MoE LoRA stacks "
        "are not counted"]
    return Report(sections, data, report.csv_headers, report.csv_rows, notes)
