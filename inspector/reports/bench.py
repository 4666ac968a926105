"""Report of `inspect bench`: measured prefill and decode beside the roofline of the device they ran on.

Numbers come from inspector.runtime.bench; this module only lays them out. Predicted times are
"calibrated (this process's measured roofline)": the ledger's FLOPs and bytes are exact, the peaks they
run through were measured once in the same process (fp32 on a CPU unless --dtype says otherwise).
"""

from __future__ import annotations

from typing import Any

from inspector.reports.render import Report, Section
from inspector.units import n

HEADERS = ["B", "N", "Prefill ms", "predicted", "Decode ms/tok", "predicted", "MFU", "MBU", "Peak MiB"]


def _row(p: dict[str, Any]) -> list[Any]:
    m, r, i = p["measured"], p["predicted"], p["implied"]
    return [p["batch"], n(p["context"]), f"{m['prefill_ms']:.1f}", f"{r['prefill_ms']:.1f} {r['prefill_bound'][0]}",
            f"{m['decode_ms_per_token']:.1f}", f"{r['decode_ms_per_token']:.1f} {r['decode_bound'][0]}",
            f"{i['prefill_mfu']:.2f}", f"{i['decode_mbu']:.2f}", f"{m['peak_memory_bytes'] / 2**20:,.1f}"]


def bench_report(d: dict[str, Any]) -> Report:
    """The calibration row `d` (inspector.runtime.bench.bench) as a table: one line per batch × context."""
    roof = d["roofline"]
    new = d["points"][0]["new_tokens"] if d["points"] else 0
    notes = [f"device: {d['device_name']} ({d['device']}, {d['dtype']}); timing: {d['timing']}",
             f"roofline measured here: copy {roof['copy_gb_s']:.1f} GB/s, matmul {roof['matmul_gflops']:.1f} "
             f"GFLOP/s ({roof['dtype']}); {roof['how']}",
             "B: batch; N: prompt tokens (context); predicted: c compute-bound, m memory-bound; MFU of the prefill, "
             "MBU of the decode",
             "predicted: the FLOPs ledger's prefill (logits at the last position) and decode step (at the mean "
             f"context of the {new} steps timed) through that roofline, efficiencies 1; MFU/MBU: the ledger's "
             "FLOPs and bytes over the measured time, against the measured peaks",
             f"peak memory: {d['peak_memory_how']}"]
    title = f"inspect bench {d['model']} on {d['device']}: measured beside predicted"
    return Report([Section(title, HEADERS, [_row(p) for p in d["points"]], notes)], d)
