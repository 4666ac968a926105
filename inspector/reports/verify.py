"""Report of `inspect verify`: a summary, the findings that need attention, the dtype mix, the JSON contract.

The findings that need attention (all with --all), the checkpoint's dtype mix, and the JSON contract {ok,
matched, missing, unexpected, mismatched, checkpoint_params, expected_params, ...}.
"""

from __future__ import annotations

from typing import Any

from inspector.limits import MAX_DATA_ROWS
from inspector.reports.render import Report, Section
from inspector.units import human_bytes, n
from inspector.checkpoint.verify import VerifyResult

STATUS_TEXT = {
    "ok": "ok",
    "missing": "MISSING",
    "unexpected": "UNEXPECTED",
    "shape": "SHAPE MISMATCH",
    "buffer": "buffer (not a parameter)",
    "tied": "absent: tied to the embedding (fine)",
    "tied-stored": "STORED although tie_word_embeddings is true",
    "quantization": "quantization tensor (not a parameter)",
    "optional-absent": "absent: optional (fine)",
    "listed": "",
}


def _shape(s) -> str:
    return "" if s is None else str(tuple(s))


def verify_json(r: VerifyResult) -> dict[str, Any]:
    return {
        "ok": r.ok,
        "checkpoint": r.checkpoint,
        "format": r.format,
        "files": r.files,
        "model": r.model,
        "architecture": r.architecture,
        "has_inventory": r.has_inventory,
        "matched": r.count("ok"),
        "missing": r.names("missing"),
        "unexpected": r.names("unexpected"),
        "mismatched": [{"name": f.name, "expected": list(f.expected), "actual": list(f.actual)}
                       for f in r.findings if f.status == "shape"],
        "tied_lm_head": next((f.status for f in r.findings if f.status in ("tied", "tied-stored")), None),
        "tied_but_stored": r.names("tied-stored"),
        "buffers": r.names("buffer"),
        "quantization": r.quantization,
        "quantization_tensors": r.names("quantization"),
        "optional_absent": r.names("optional-absent"),
        "expected_from": str(r.origin) if r.origin is not None else None,
        "problems": r.problems,
        "checkpoint_params": r.checkpoint_params,
        "expected_params": r.expected_params,
        "stored_bytes": r.stored_bytes,
        "config_dtype": r.config_dtype,
        "dtypes": {k: {"tensors": v.tensors, "params": v.params, "bytes": v.nbytes} for k, v in r.dtypes.items()},
        "tensors": [
            {"name": f.name, "status": f.status, "expected": _list(f.expected), "actual": _list(f.actual),
             "dtype": f.dtype, **({"stored_name": f.stored_name} if f.stored_name else {}),
             **({"stored_shape": list(f.stored_shape)} if f.stored_shape else {}),
             **({"stored_as": f.note} if f.note else {}), "params": f.params, "bytes": f.nbytes}
            for f in r.findings[:MAX_DATA_ROWS]  # the render lists no more (inspector.limits)
        ],
        **({"tensors_not_listed": len(r.findings) - MAX_DATA_ROWS} if len(r.findings) > MAX_DATA_ROWS
           else {}),
        "notes": r.notes,
    }


def _list(shape):
    return list(shape) if shape is not None else None


def verify_report(r: VerifyResult, show_all: bool = False) -> Report:
    dtype_mix = ", ".join(f"{k} × {v.tensors}" for k, v in r.dtypes.items())
    summary = [
        ["Checkpoint", f"{r.checkpoint} ({r.format}, {len(r.files)} file{'s' if len(r.files) != 1 else ''})"],
        ["Expected from", f"{r.model} ({r.architecture}; {r.origin})" if r.has_inventory
         else "no inventory for this architecture"],
    ]
    if r.has_inventory:
        summary += [
            ["Matched", n(r.count("ok"))],
            ["Missing", n(r.count("missing"))],
            ["Unexpected", n(r.count("unexpected"))],
            ["Shape mismatches", n(r.count("shape"))],
        ]
        tied = next((f for f in r.findings if f.status in ("tied", "tied-stored")), None)
        if tied:
            summary.append(["Tied LM head", STATUS_TEXT[tied.status]])
    else:
        summary.append(["Tensors", n(len(r.findings))])
    if r.count("optional-absent"):
        summary.append(["Optional tensors absent (fine)", n(r.count("optional-absent"))])
    if r.quantization:
        side = [f for f in r.findings if f.status == "quantization"]
        summary += [["Quantization", r.quantization],
                    ["Quantization tensors (not parameters)",
                     f"{n(len(side))} ({human_bytes(sum(f.nbytes for f in side))})"]]
    summary += [
        ["Buffers (not parameters)", n(r.count("buffer"))],
        ["Index / shard problems", n(len(r.problems))],
        ["Dtypes", dtype_mix],
        ["Parameters (logical)", f"checkpoint {n(r.checkpoint_params)}"
         + (f" / expected {n(r.expected_params)}" if r.expected_params is not None else "")],
        ["Stored bytes", f"{n(r.stored_bytes)} ({human_bytes(r.stored_bytes)})"],
        ["Result", ("OK" if r.ok else "MISMATCH") if r.has_inventory else ("listed" if r.ok else "PROBLEMS")],
    ]
    sections = [Section("Verify", ["Check", "Result"], summary)]

    gguf = r.format == "gguf"
    quiet = ("ok", "buffer", "listed", "quantization", "optional-absent")
    shown = [f for f in r.findings if show_all or not r.has_inventory or f.status not in quiet]
    if shown:
        headers = ["Tensor", "Status", "Expected", "Found", "Dtype", "Stored as"]
        if gguf:
            headers += ["GGUF name", "GGUF shape (ne[0] first)"]
        rows = []
        for f in shown[:MAX_DATA_ROWS]:  # the render lists no more (inspector.limits)
            row = [f.name, STATUS_TEXT[f.status], _shape(f.expected), _shape(f.actual), f.dtype or "",
                   f.note or (f.stored_name if f.stored_name and not gguf else "")]
            if gguf:
                row += [f.stored_name or (f.name if f.actual else ""), _shape(f.stored_shape)]
            rows.append(row)
        sections.append(Section("Tensors" if show_all or not r.has_inventory else "Findings", headers, rows,
                                not_listed=max(0, len(shown) - MAX_DATA_ROWS)))
    if r.problems:
        sections.append(Section("Index / shard problems", ["Problem"], [[p] for p in r.problems]))
    sections.append(Section("Dtype mix", ["Dtype", "Tensors", "Logical parameters", "Bytes"],
                            [[k, n(v.tensors), n(v.params), n(v.nbytes)] for k, v in r.dtypes.items()]))
    return Report(sections, verify_json(r), notes=list(r.notes))
