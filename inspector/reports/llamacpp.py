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
             f"n_ubatch {c.n_ubatch}, flash_attn {'on' if c.flash_attn else 'off'}; CPU only (no offload modelled)"]
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


def plan_report(model: str, plan: dict) -> Report:
    """The offload plan: the flags to paste, the layers on the GPUs, per device the bytes by kind and status."""
    head = [["flags", " ".join(plan["flags"]) if plan["fits"] else "(nothing fits)"],
            ["GPU layers", f"{plan.get('n_gpu_layers', 0)} of {plan.get('n_layer', '?')} + output"],
            ["--n-cpu-moe", str(plan.get("n_cpu_moe", 0)) if plan.get("moe") else "(not an MoE model)"],
            ["RAM", "checked" if plan["ram_checked"] else "not checked"]]
    rows = [[d["device"], kind, f"{b / 2**20:.2f}", n(b), d["status"][kind]]
            for d in plan["devices"] for kind, b in d["parts"].items()]
    rows += [[d["device"], "total", d["mib"], n(d["bytes"]), ""] for d in plan["devices"]]
    notes = ["from llama.cpp's source (ggml-org/llama.cpp@0c1e57098), not measured on a GPU; a GPU's compute "
             "buffer is assumed equal to the CPU one of the same settings"]
    return Report([Section(f"llama.cpp offload plan: {model}", ["", ""], head, notes),
                   Section("per device", ["device", "buffer", "MiB", "bytes", "status"], rows)],
                  plan, notes=list(plan.get("warnings", [])))
