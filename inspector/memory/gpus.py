"""The GPUs a verdict is for: named presets with their memory, or a size in GiB.

A preset's memory is the total that `nvidia-smi` reports (and `torch.cuda.mem_get_info()` returns
in bytes), which is what vLLM multiplies by `--gpu-memory-utilization`; it is a little less than the
marketing size.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from inspector.errors import InspectError, printable

GIB = 2**30
MIB = 2**20
MAX_GIB = 100_000  # no GPU (and no allowance) reaches 100,000 GiB; past it a size cannot be meant


def gib_bytes(value: float, option: str) -> int:
    """A size in GiB given on the command line, as bytes: a finite number in [0, MAX_GIB]."""
    if not isinstance(value, (int, float)) or not (math.isfinite(value) and 0 <= value <= MAX_GIB):
        raise InspectError(f"{option}: expected a size in GiB from 0 to {MAX_GIB:,}, got {printable(value, 40)}")
    return int(value * GIB)


@dataclass(frozen=True)
class Gpu:
    name: str
    bytes: int
    source: str = ""


# name -> (MiB nvidia-smi reports as total, what the figure is)
_PRESETS: dict[str, tuple[int, str]] = {
    "H100-80GB": (81559, "H100 80GB HBM3 (SXM): 81,559 MiB"),
    "H200-141GB": (143771, "H200 141GB HBM3e: 143,771 MiB"),
    "A100-80GB": (81920, "A100 80GB: 81,920 MiB"),
    "A100-40GB": (40960, "A100 40GB: 40,960 MiB"),
    "L4-24GB": (23034, "L4: 23,034 MiB"),
    "RTX4090-24GB": (24564, "GeForce RTX 4090: 24,564 MiB"),
}
GPU_PRESETS = tuple(_PRESETS)
_SIZE = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,12})?)\s*(?:gib|gb|g)?\s*$", re.IGNORECASE)


def gpu(name: str) -> Gpu:
    """A preset (case-insensitive) or a size in GiB such as "24" or "24GiB"."""
    for key, (mib, source) in _PRESETS.items():
        if key.lower() == name.strip().lower():
            return Gpu(key, mib * MIB, source)
    m = _SIZE.match(name)
    if m and float(m.group(1)) > 0:
        size = float(m.group(1))
        return Gpu(f"{size:g} GiB", gib_bytes(size, f"--gpu {printable(repr(name), 40)}"), "a size given in GiB")
    raise InspectError(f"--gpu {printable(repr(name), 60)} is neither a preset ({', '.join(GPU_PRESETS)}) "
                       "nor a size in GiB")


def gpu_presets() -> list[Gpu]:
    return [gpu(name) for name in GPU_PRESETS]
