"""`inspect bench`: prefill and decode timed on this device beside the FLOPs ledger's roofline of it.

The model loads through `load_runtime` (as `inspect run` loads it). For each batch B and context T: a
prefill of B × T seeded random token ids (logits at the last position only, as generation asks), then
`new_tokens` decode steps one token each; wall clock with a cuda synchronize around each. The
prediction (inspector.compute.predict, shared with `inspect run`) is the ledger's FLOPs and bytes (weights
and KV cache in the dtype the model runs in) through the roofline of this device measured once per process
(inspector.compute.machine.measure_device: achieved copy GB/s and matmul FLOP/s in that dtype, so the
efficiencies are 1: roofline.BARE). A decode step is predicted at the mean context of the steps timed.
Peak memory: torch.cuda.max_memory_allocated on cuda (reset per point), else the process's peak RSS
(resource.getrusage: the whole process so far, loading included). No printing here.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import torch

from inspector.compute.hardware import dtype_key
from inspector.compute.machine import measure_device
from inspector.compute.predict import STATUS, StepShape, implied, machine_json, predict
from inspector.runtime.prepare import ModelChoice


@dataclass(frozen=True)
class BenchPlan:
    """What to time: batch sizes, contexts (prompt tokens of the prefill) and decode steps after each."""

    batches: tuple[int, ...] = (1, 4)
    contexts: tuple[int, ...] = (128, 512)
    new_tokens: int = 16
    seed: int = 0


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_bytes(device) -> tuple[int, str]:
    """The peak memory and how it was read: cuda's allocator peak, or this process's peak RSS."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "torch.cuda.max_memory_allocated (reset per point)"
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return int(rss if sys.platform == "darwin" else rss * 1024), "peak RSS of the process (getrusage), so far"


def time_point(model, device, ids: torch.Tensor, new_tokens: int) -> tuple[float, float]:
    """Seconds of the prefill of `ids` (b, n) and seconds per decode step after it (`new_tokens` steps)."""
    with torch.inference_mode():
        cache = model.new_cache()
        _sync(device)
        t0 = time.perf_counter()
        logits = model(ids, cache, last_only=True)
        _sync(device)
        prefill_s = time.perf_counter() - t0
        nxt = logits[:, -1].argmax(-1, keepdim=True)  # (b, 1)
        t0 = time.perf_counter()
        for _ in range(new_tokens):
            nxt = model(nxt, cache, last_only=True)[:, -1].argmax(-1, keepdim=True)
        _sync(device)
    return prefill_s, (time.perf_counter() - t0) / max(1, new_tokens)


def device_name(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def bench(choice: ModelChoice, plan: BenchPlan) -> dict[str, Any]:
    """The calibration row of this device: the measured roofline and, per (batch, context), measured
    beside predicted and the MFU/MBU implied."""
    from inspector.runtime.prepare import load_runtime
    from inspector.runtime.threads import use_threads
    from inspector.source import account_model

    use_threads(choice.threads)
    rt = load_runtime(choice, need_weights=True)
    acc = account_model(choice.model or rt.spec.name)
    dkey = dtype_key(rt.dtype_name)
    roof = measure_device(rt.device.type, dkey)
    gen = torch.Generator().manual_seed(plan.seed)
    vocab = rt.spec.text.vocab_size
    time_point(rt.model, rt.device, torch.randint(0, vocab, (1, 4), generator=gen).to(rt.device), 1)  # warm-up
    points = []
    for b in plan.batches:
        for n in plan.contexts:
            ids = torch.randint(0, vocab, (b, n), generator=gen).to(rt.device)
            if rt.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(rt.device)
            pre_s, dec_s = time_point(rt.model, rt.device, ids, plan.new_tokens)
            peak, how = peak_bytes(rt.device)
            point = {"batch": b, "context": n, "new_tokens": plan.new_tokens}
            measured = {"prefill_ms": pre_s * 1e3, "decode_ms_per_token": dec_s * 1e3, "peak_memory_bytes": peak}
            pred = predict(acc, StepShape(b, n, plan.new_tokens), roof)
            points.append({**point, "measured": measured, "predicted": pred, "implied": implied(pred, measured, roof)})
    return {"model": rt.spec.name, "device": str(rt.device), "device_name": device_name(rt.device),
            "dtype": dkey, "weights": rt.weights, "peak_memory_how": how if points else None,
            "roofline": {**machine_json(roof), "status": STATUS},
            "points": points, "timing": "wall clock, perf_counter" + (" with cuda synchronize"
                                                                       if rt.device.type == "cuda" else "")}

