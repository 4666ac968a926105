"""Reports of `inspect memory --engine llama.cpp` (llama.cpp's buffers in its words) and `inspect quant` (tensor types).

The buffers are shown as llama.cpp prints them (function, device, kind, MiB with two decimals) beside the
exact bytes; the JSON payload is :func:`inspector.memory.llamacpp.to_json` with the model, what it was read
as, and the printout lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspector.reports.render import Report, Section
from inspector.units import n

if TYPE_CHECKING:
    from inspector.memory.llamacpp_model import LlamaCppEstimate
    from inspector.memory.llamacpp_quant import QuantPlan

KIND_WORDS = {"model": "model", "repack": "model (repacked)", "kv": "KV", "output": "output", "compute": "compute"}


def _not_modelled(warnings) -> list[dict]:
    """A compute buffer llama.cpp would print but whose graph is not modelled here: stated, with no size."""
    return [{"func": "sched_reserve", "device": "CPU", "kind": "compute", "mib": None, "bytes": None,
             "status": "not modelled", "source": w} for w in warnings if w.startswith("compute buffer:")]


def llamacpp_report(est: LlamaCppEstimate) -> Report:
    """One table of buffers, one of the KV caches, and llama.cpp's own lines."""
    from inspector.memory.llamacpp import printout, to_json

    pred, lines = est.prediction, printout(est.prediction)
    data = {"model": est.model, "engine": "llama.cpp", "read_as": est.origin, **to_json(pred)}
    data["buffers"] += _not_modelled(pred.warnings)
    data["printout"], data["notes"] = lines, list(est.notes)
    rows = [[b.func, b.device, KIND_WORDS[b.kind], b.mib, n(b.nbytes),
             b.status] for b in pred.buffers]
    rows += [[b["func"], b["device"], "compute", "not modelled", "-", b["source"]] for b in _not_modelled(pred.warnings)]
    total = sum(b.nbytes for b in pred.buffers)
    rows.append(["total", "", "", f"{total / 2**20:.2f}", n(total), ""])
    c = pred.context
    kv = [[x.swa or "KV", x.cells, x.layers, f"{x.n_seq_max}/{x.n_stream}", x.type_k, x.mib("k"), x.type_v,
           x.mib("v"), x.mib()] for x in pred.kv_caches]
    notes = [f"read as: {est.origin}; n_ctx {c.n_ctx}, n_ctx_seq {c.n_ctx_seq}, n_batch {c.n_batch}, "
             f"n_ubatch {c.n_ubatch}, flash_attn {'on' if c.flash_attn else 'off'}; CPU build (GPU offload: --gpu with -ngl)"]
    sections = [Section("llama.cpp buffers (CPU)", ["function", "device", "buffer", "MiB (as printed)", "bytes",
                                                    "status"], rows, notes + list(est.notes)),
                Section("KV caches", ["cache", "cells", "layers", "seqs", "K type", "K MiB", "V type", "V MiB",
                                      "MiB"], kv),
                Section("llama.cpp prints", ["line"], [[line] for line in lines])]
    return Report(sections, data, notes=list(pred.warnings))


def quant_report(model: str, plan: QuantPlan) -> Report:
    """Per tensor the ggml type and bytes, the counts by type, the file's bytes and bits per weight."""
    rows = [[t.name, "x".join(map(str, t.ne)), t.ggml_type, n(t.nbytes), "yes" if t.fell_back else ""]
            for t in plan.tensors]
    counts = [[typ, k] for typ, k in plan.counts().items()]
    summary = [["tensors", n(len(plan.tensors))], ["tensor bytes", f"{n(plan.tensor_bytes)} "
                                                   f"({plan.tensor_bytes / 2**20:.2f} MiB)"],
               ["file bytes", f"{n(plan.file_bytes)} ({plan.file_bytes / 2**20:.2f} MiB)"],
               ["bits per weight", f"{plan.bpw:.2f}"]]
    data = {"model": model, "type": plan.target,
            "tensors": [{"name": t.name, "ne": list(t.ne), "ggml_type": t.ggml_type, "bytes": t.nbytes,
                         "fell_back": t.fell_back} for t in plan.tensors],
            "counts": plan.counts(), "tensor_bytes": plan.tensor_bytes, "file_bytes": plan.file_bytes,
            "bpw": plan.bpw, "warnings": list(plan.warnings)}
    return Report([Section(f"llama-quantize {plan.target} on paper: {model}", ["", ""], summary,
                           ["src/llama-quant.cpp of ggml-org/llama.cpp@0c1e57098 (llama-cpp-python 0.3.36)"]),
                   Section("tensors by type", ["ggml type", "tensors"], counts),
                   Section("per tensor", ["tensor", "ne", "ggml type", "bytes", "fell back"], rows)],
                  data, notes=list(plan.warnings))


UNVERIFIED = ("GPU placement, CUDA buffer sizes and the GPU compute buffer are read from llama.cpp's source "
              "(ggml-org/llama.cpp@0c1e57098), not checked on a GPU (status source / assumed); CPU figures are exact "
              "against llama.cpp's CPU build")


def _head(d: dict) -> list[list[str]]:
    """The placement in a few rows: flags to paste, layers on GPUs, RAM checked, fit."""
    ngl = d.get("n_gpu_layers")
    rows = [["mode", "offload plan (largest -ngl that fits)" if d["mode"] == "plan" else "the placement given"],
            ["GPUs", ", ".join(f"{g['device']} {g['card']} ({g['bytes'] / 2**30:.2f} GiB)" for g in d["gpus"])
             or "none (llama.cpp's CPU build: -ngl has no effect)"],
            ["flags", " ".join(d["flags"]) if d.get("flags") else "-"],
            ["-ngl", "all (-1)" if ngl == -1 else str(ngl if ngl is not None else "-")],
            ["RAM", f"checked against {d['ram_bytes'] / 2**30:.2f} GiB" if d["ram_checked"] else "not checked "
             "(--ram-gib)"],
            ["fits", "yes" if d.get("fits") else "no" + (f" ({d['reason']})" if d.get("reason") else "")]]
    if d["mode"] == "plan" and d.get("moe"):
        rows.insert(4, ["--n-cpu-moe", str(d.get("n_cpu_moe", 0))])
    return rows


def _decode_section(dec: dict) -> Section:
    """The decode tokens/s bound: per device bytes read per token, bandwidth (status), time per token."""
    rows = [[r["device"], n(r["weights_bytes"]), n(r["kv_bytes"]),
             "?" if r["gb_s"] is None else f"{r['gb_s']:g}", r["bandwidth_status"],
             "-" if r["seconds_per_token"] is None else f"{r['seconds_per_token'] * 1e3:.3f}"] for r in dec["devices"]]
    tps = dec["tokens_per_s"]
    rows.append(["tokens/s", "", "", "", dec["status"], "-" if tps is None else f"at most {tps:.1f}"])
    notes = [f"{dec['what']}; MBU {dec['mbu']:g}; KV read at n_ctx_seq {dec['n_ctx_seq']}"]
    notes += [f"{r['device']}: {r['bandwidth_source']}" for r in dec["devices"]]
    notes += [f"no bound: {dec['reason']}"] if dec.get("reason") else []
    return Section("decode tokens/s bound (batch 1)", ["device", "weight bytes/token", "KV bytes/token", "GB/s",
                                                       "status", "ms/token"], rows, notes)


def offload_report(d: dict) -> Report:
    """llama.cpp with GPUs (or offload flags): the placement, buffers per device in llama.cpp's words with their
    status, per-device totals against each device's memory, the decode bound, the lines llama.cpp would print."""
    rows = [[b["func"], b["device"], KIND_WORDS[b["kind"]], b["mib"] or "not modelled",
             "-" if b["bytes"] is None else n(b["bytes"]), b["status"]] for b in d.get("buffers", [])]
    totals = [[x["device"], x["mib"], n(x["bytes"]),
               "-" if x.get("limit_bytes") is None else f"{x['limit_bytes'] / 2**20:.2f}",
               {True: "yes", False: "NO", None: "-"}[x.get("fits")]] for x in d["devices"]]
    sections = [Section(f"llama.cpp offload: {d['model']}", ["", ""], _head(d), [UNVERIFIED]),
                Section("llama.cpp buffers per device", ["function", "device", "buffer", "MiB (as printed)", "bytes",
                                                         "status"], rows),
                Section("per device", ["device", "MiB", "bytes", "limit MiB", "fits"], totals)]
    if d.get("decode"):
        sections.append(_decode_section(d["decode"]))
    sections.append(Section("llama.cpp would print", ["line"], [[line] for line in d.get("printout", [])]))
    return Report(sections, d, notes=list(d.get("warnings", [])))
