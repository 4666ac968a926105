"""This machine's roofline, measured once per process: a memory copy for bandwidth and a matmul for FLOP/s.

The figures are achieved ones (best of up to five runs after a warm-up, all within a budget of 0.25 s), so a
roofline built on them takes MFU = MBU = 1 (inspector.compute.roofline.BARE). The copy moves 32 MiB
(read once, written once: 2 × 32 MiB counted per copy; a write-allocate cache reads the destination too,
so the true traffic may be higher and this figure is a lower bound on the bus). The matmul is float32
n × n by n × n, 2n³ FLOPs; `measure_device` runs the same with torch on cpu or cuda and the matmul in
the dtype a model runs in (bf16, fp16). numpy or torch is imported inside the function, never at module import.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, NamedTuple

from inspector.compute.hardware import Hardware
from inspector.errors import InspectError

COPY_BYTES = 32 * 2**20  # 64 MiB touched (source and destination): past the last-level cache of most CPUs
MATMUL_N = 1024
DEFAULT_BUDGET_S = 0.25  # the whole measurement, allocation and warm-ups included, stays under 0.5 s


class MachineRoof(NamedTuple):
    """Measured peaks of this machine: copy bandwidth (GB/s, 10^9 B/s) and float32 matmul GFLOP/s,
    the library that ran them, how (`how`) and the seconds the measurement took."""

    copy_gb_s: float
    matmul_gflops: float
    backend: str
    how: str
    seconds: float
    device: str = "cpu"
    dtype: str = "fp32"


_CACHE: dict[str, MachineRoof] = {}


def _best(run: Callable[[], Any], deadline: float, at_most: int = 5, sync: Callable[[], Any] = lambda: None) -> float:
    """The shortest of up to `at_most` runs after one warm-up, stopping at `deadline` (perf_counter)
    once one run is timed; `sync` waits for an asynchronous device (cuda) before each clock read."""
    run()
    sync()
    best = float("inf")
    for _ in range(at_most):
        t0 = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return best


TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def _torch_kernels(device: str, dtype: str, scale: int = 1) -> tuple[Callable[[], Any], Callable[[], Any],
                                                                     Callable[[], Any]]:
    """torch's copy (float32, COPY_BYTES·scale²) and `dtype` matmul (MATMUL_N·scale) on `device`, and the
    device's sync."""
    import torch

    count, kind, n = COPY_BYTES * scale**2 // 4, getattr(torch, TORCH_DTYPES[dtype]), MATMUL_N * scale
    src = torch.ones(count, dtype=torch.float32, device=device)
    dst = torch.empty(count, dtype=torch.float32, device=device)
    a = torch.rand(n, n, device=device).to(kind)
    b = torch.rand(n, n, device=device).to(kind)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return (lambda: dst.copy_(src)), (lambda: torch.mm(a, b)), sync


def _kernels(backend: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The copy and the matmul of one library, on arrays allocated here."""
    count = COPY_BYTES // 4
    if backend == "torch":
        copy, matmul, _ = _torch_kernels("cpu", "fp32")
        return copy, matmul
    import numpy as np

    src_np, dst_np = np.ones(count, dtype=np.float32), np.empty(count, dtype=np.float32)
    rng = np.random.default_rng(0)
    a_np = rng.random((MATMUL_N, MATMUL_N), dtype=np.float32)
    b_np = rng.random((MATMUL_N, MATMUL_N), dtype=np.float32)
    return (lambda: np.copyto(dst_np, src_np)), (lambda: a_np @ b_np)


def measure_machine(budget_s: float = DEFAULT_BUDGET_S, backend: str | None = None) -> MachineRoof:
    """This machine's copy bandwidth and matmul FLOP/s, measured on the first call and kept for the
    process. `backend`: "torch" or "numpy"; None takes torch when it is already imported (what
    `inspect run` computes with), else numpy (no torch import for a pure-arithmetic command)."""
    backend = backend or ("torch" if "torch" in sys.modules else "numpy")
    if backend not in ("torch", "numpy"):
        raise InspectError(f"backend {backend!r}: expected 'torch' or 'numpy'")
    if backend in _CACHE:
        return _CACHE[backend]
    start = time.perf_counter()
    copy, matmul = _kernels(backend)
    copy_s = _best(copy, start + budget_s / 3)
    matmul_s = _best(matmul, start + budget_s)
    how = (f"{backend}: best of up to 5 runs after a warm-up, within {budget_s:g} s; "
           f"copy of {COPY_BYTES // 2**20} MiB float32 "
           f"(2 × {COPY_BYTES // 2**20} MiB moved), matmul float32 {MATMUL_N}×{MATMUL_N} @ {MATMUL_N}×{MATMUL_N} "
           f"(2·{MATMUL_N}³ FLOPs)")
    roof = MachineRoof(2 * COPY_BYTES / copy_s / 1e9, 2 * MATMUL_N**3 / matmul_s / 1e9, backend, how,
                       time.perf_counter() - start)
    _CACHE[backend] = roof
    return roof


def measure_device(device: str = "cpu", dtype: str = "fp32", budget_s: float = DEFAULT_BUDGET_S) -> MachineRoof:
    """What `measure_machine` measures, with torch on `device` (cpu or cuda) and the matmul in `dtype`
    (fp32, bf16, fp16: the dtype the model runs in), once per process and (device, dtype). On cuda the
    copy moves 16× the bytes and a 4× larger matmul (a 1024² matmul is launch-bound
    there), with a synchronize before each clock read."""
    key = f"torch:{device}:{dtype}"
    if key in _CACHE:
        return _CACHE[key]
    if dtype not in TORCH_DTYPES:
        raise InspectError(f"dtype {dtype!r}: expected one of {', '.join(TORCH_DTYPES)}")
    scale = 4 if device.startswith("cuda") else 1
    start = time.perf_counter()
    copy, matmul, sync = _torch_kernels(device, dtype, scale)
    copy_s = _best(copy, start + budget_s / 3, sync=sync)
    matmul_s = _best(matmul, start + budget_s, sync=sync)
    moved, n = COPY_BYTES * scale**2, MATMUL_N * scale
    how = (f"torch on {device}: best of up to 5 runs after a warm-up, within {budget_s:g} s; copy of "
           f"{moved // 2**20} MiB float32 (2 × {moved // 2**20} MiB moved), matmul {dtype} {n}×{n} @ {n}×{n} "
           f"(2·{n}³ FLOPs)")
    roof = MachineRoof(2 * moved / copy_s / 1e9, 2 * n**3 / matmul_s / 1e9, "torch", how,
                       time.perf_counter() - start, device, dtype)
    _CACHE[key] = roof
    return roof


def as_hardware(roof: MachineRoof) -> Hardware:
    """The measured machine as a Hardware record (its matmul dtype only; no interconnect), for the roofline."""
    return Hardware("this machine (measured)", {roof.dtype: roof.matmul_gflops / 1000}, roof.copy_gb_s, (),
                    "measured in this process", roof.how)
