"""Report of `inspect flops`: the FLOPs ledger per params row, the conventions, decode bytes, roofline, training.

Every figure's row says its status: exact (counted; what torch's FlopCounterMode counts), calibrated
(a published measurement, named) or assumed (the option that changes it). Numbers come from
inspector.compute.answer; this module only lays them out.
"""

from __future__ import annotations

from typing import Any

from inspector.compute.conventions import KAPLAN, MEGATRON, PALM, RULE_2N, RULE_6N
from inspector.reports.render import Report, Section
from inspector.units import Count, n

EXACT = "exact"
LEDGER_NOTE = ("as computed: what the kernels do (eager/SDPA: the full score matrix over every cached and new key; "
               "MoE at the given expert load); as needed: the causal half, windows capped, MoE at top_k. Not "
               "counted (nor by torch's FlopCounterMode): embedding lookup, norms, RoPE, softmax, activations, "
               "biases.")
BYTES_NOTE = ("bytes per decode step: every language-model weight once except the input embedding table, of which "
              "only the batch's rows are read (a tied LM head reads the table whole), plus the KV cache at the "
              "context; the roofline uses the same bytes")
SOURCES = {"2N": RULE_2N, "Kaplan": KAPLAN, "6ND": RULE_6N, "PaLM": PALM, "8TP": MEGATRON}
SHORT = {"2N": "Kaplan et al. 2020 (2N)", "Kaplan": "Kaplan et al. 2020, §2.1", "6ND": "Kaplan et al. 2020; PaLM",
         "PaLM": "PaLM, Appendix B", "8TP": "Megatron-LM, eq. 4"}


def _g(x: float) -> str:
    """A FLOP count: exact with separators, and in scientific notation."""
    return f"{n(x)} ({x:.3e})" if x >= 1e6 else n(x)


def _ledger_section(d: dict) -> Section:
    rows = [[r["component"], r["name"], Count(r["prefill"]), Count(r["prefill_needed"]), Count(r["decode"]),
             Count(r["decode_needed"])] for r in d["rows"]]
    rows.append(["Total", "", Count(d["prefill_flops"]), Count(d["prefill_flops_needed"]), Count(d["decode_flops"]),
                 Count(d["decode_flops_needed"])])
    notes = [LEDGER_NOTE] + [f"not counted: {x}" for x in d["not_counted"]]
    title = (f"FLOPs per params row: prefill of {n(d['seq_len'])} tokens × batch {d['batch']} (logits at every "
             f"position), decode of one token at context {n(d['context'])}")
    return Section(title, ["Component", "Row", "Prefill (as computed)", "Prefill (as needed)",
                           "Decode (as computed)", "Decode (as needed)"], rows, notes)


def _totals_section(d: dict) -> Section:
    rows = [["prefill_flops", _g(d["prefill_flops"]), EXACT, "logits at every position"],
            ["prefill_flops_last_logits", _g(d["prefill_flops_last_logits"]), EXACT, "logits at the last position"],
            ["decode_flops", _g(d["decode_flops"]), EXACT, f"one token at context {n(d['context'])}"],
            ["decode_bytes", _g(d["decode_bytes"]), _bytes_status(d), "weights once + KV cache (bf16)"],
            ["decode_kv_bytes", _g(d["decode_kv_bytes"]), EXACT, "KV cache at the context"],
            ["decode_intensity", f"{d['decode_intensity']:.2f} FLOP/B", _bytes_status(d), "FLOPs as needed / bytes"]]
    return Section("Totals", ["Figure", "Value", "Status", "What"], rows, [BYTES_NOTE])


def _bytes_status(d: dict) -> str:
    return d["decode_bytes_status"]


def _conventions_section(d: dict) -> Section:
    named = [(name, v) for name, v in d["conventions"].items()]
    named += [(f"training: {name}", v) for name, v in d.get("train_conventions", {}).items()]
    keys = [name.removeprefix("training: ").split(",")[0] for name, _ in named]
    rows = [[name, _g(v), SHORT[k]] for (name, v), k in zip(named, keys)]
    notes = [SOURCES[k] for k in dict.fromkeys(keys)]
    return Section("Conventions (prefill; training over --train-tokens)", ["Convention", "FLOPs", "Source"], rows,
                   notes)


def _roofline_section(d: dict) -> Section:
    r = d["roofline"]
    status = r["status"]
    ridge = "never (the KV reads outgrow the FLOPs)" if r["ridge_batch"] is None else f"{r['ridge_batch']:.1f}"
    rows = [["ttft_s", f"{r['ttft_s']:.6g} s", status, f"prefill, {r['prefill_bound']}-bound"],
            ["tpot_s", f"{r['tpot_s']:.6g} s", status, f"decode step, {r['decode_bound']}-bound"],
            ["tokens_per_s", f"{r['tokens_per_s']:.1f}", status, f"batch {d['batch']} / tpot"],
            ["ridge_batch", ridge, status, "decode turns compute-bound from this batch (same context)"],
            ["ridge_intensity", f"{r['ridge_intensity']:.1f} FLOP/B", status, "peak·MFU / (bandwidth·MBU)"]]
    notes = [f"efficiencies: {r['efficiency']}", "datasheet peaks: inspector/compute/hardware.py (sources there)"]
    if r["tp"] > 1:
        notes.append(f"tensor parallel {r['tp']}: 2 ring all-reduces per layer over the interconnect added, "
                     "not overlapped; latency left out (assumed)")
    return Section(f"Roofline on {r['gpu']}", ["Figure", "Value", "Status", "What"], rows, notes)


def _training_section(d: dict) -> Section:
    rows = [["train_flops_6nd", _g(d["train_flops_6nd"]), EXACT, "6·N·D (Kaplan et al. 2020; PaLM App. B)"],
            ["train_flops", _g(d["train_flops"]), EXACT,
             "3 forwards" + (" + 1 forward of the decoder layers (full recomputation)" if d["recompute"] else "")]]
    notes = []
    if "train_days" in d:
        rows += [["train_days", f"{d['train_days']:.2f}", d["train_days_status"], d["train_rate_source"]],
                 ["train_gpu_hours", f"{d['train_gpu_hours']:,.0f}", d["train_days_status"], f"{n(d['gpus'])} GPUs"]]
        notes = [f"days by {k}: {v:.2f}" for k, v in d["train_days_conventions"].items()]
    return Section(f"Training over {n(d['train_tokens'])} tokens (sequences of {n(d['seq_len'])})",
                   ["Figure", "Value", "Status", "What"], rows, notes)


def flops_report(d: dict[str, Any]) -> Report:
    """The sections of `inspect flops` for the figures `d` (inspector.compute.answer.answer)."""
    sections = [_ledger_section(d), _totals_section(d), _conventions_section(d)]
    if "roofline" in d:
        sections.append(_roofline_section(d))
    if "train_flops" in d:
        sections.append(_training_section(d))
    return Report(sections, d)
