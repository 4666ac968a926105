"""Report of `inspect verify`: a summary, the findings that need attention (all with --all), the
checkpoint's dtype mix, and the JSON contract {ok, matched, missing, unexpected, mismatched,
checkpoint_params, expected_params, ...}."""

from __future__ import annotations

from typing import Any

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
        "problems": r.problems,
        "checkpoint_params": r.checkpoint_params,
        "expected_params": r.expected_params,
        "stored_bytes": r.stored_bytes,
        "config_dtype": r.config_dtype,
        "dtypes": {k: {"tensors": v.tensors, "params": v.params, "bytes": v.nbytes} for k, v in r.dtypes.items()},
        "tensors": [
            {"name": f.name, "status": f.status, "expected": _list(f.expected), "actual": _list(f.actual),
             "dtype": f.dtype, **({"stored_name": f.stored_name} if f.stored_name else {}),
             **({"stored_shape": list(f.stored_shape)} if f.stored_shape else {})}
            for f in r.findings
        ],
        "notes": r.notes,
    }


def _list(shape):
    return list(shape) if shape is not None else None


def verify_report(r: VerifyResult, show_all: bool = False) -> Report:
    dtype_mix = ", ".join(f"{k} × {v.tensors}" for k, v in r.dtypes.items())
    summary = [
        ["Checkpoint", f"{r.checkpoint} ({r.format}, {len(r.files)} file{'s' if len(r.files) != 1 else ''})"],
        ["Expected from", f"{r.model} ({r.architecture})" if r.has_inventory else "no inventory for this architecture"],
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
    summary += [
        ["Buffers (not parameters)", n(r.count("buffer"))],
        ["Index / shard problems", n(len(r.problems))],
        ["Dtypes", dtype_mix],
        ["Parameters", f"checkpoint {n(r.checkpoint_params)}"
         + (f" / expected {n(r.expected_params)}" if r.expected_params is not None else "")],
        ["Stored bytes", f"{n(r.stored_bytes)} ({human_bytes(r.stored_bytes)})"],
        ["Result", ("OK" if r.ok else "MISMATCH") if r.has_inventory else ("listed" if r.ok else "PROBLEMS")],
    ]
    sections = [Section("Verify", ["Check", "Result"], summary)]

    gguf = r.format == "gguf"
    shown = [f for f in r.findings
             if show_all or not r.has_inventory or f.status not in ("ok", "buffer", "listed")]
    if shown:
        headers = ["Tensor", "Status", "Expected", "Found", "Dtype"]
        if gguf:
            headers += ["GGUF name", "GGUF shape (ne[0] first)"]
        rows = []
        for f in shown:
            row = [f.name, STATUS_TEXT[f.status], _shape(f.expected), _shape(f.actual), f.dtype or ""]
            if gguf:
                row += [f.stored_name or (f.name if f.actual else ""), _shape(f.stored_shape)]
            rows.append(row)
        sections.append(Section("Tensors" if show_all or not r.has_inventory else "Findings", headers, rows))
    if r.problems:
        sections.append(Section("Index / shard problems", ["Problem"], [[p] for p in r.problems]))
    sections.append(Section("Dtype mix", ["Dtype", "Tensors", "Parameters", "Bytes"],
                            [[k, n(v.tensors), n(v.params), n(v.nbytes)] for k, v in r.dtypes.items()]))
    notes = list(r.notes)
    if gguf:
        notes.append("GGUF stores dimensions fastest-first (ne[0] first); shapes are compared in PyTorch "
                     "order (reversed). Quantization types are shown as stored; parameters are logical "
                     "element counts, bytes are what the file stores.")
    if r.config_dtype and not gguf:
        float_dtypes = {k for k in r.dtypes if k in ("F32", "F16", "BF16", "F64", "F8_E4M3", "F8_E5M2")}
        want = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}.get(r.config_dtype)
        if want and float_dtypes and float_dtypes != {want}:
            notes.append(f"config.json says torch_dtype {r.config_dtype}; the checkpoint stores "
                         f"{', '.join(sorted(float_dtypes))} (not an error: loaders convert)")
    return Report(sections, verify_json(r), notes=notes)
