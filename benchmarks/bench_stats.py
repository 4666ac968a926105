"""Small statistics shared by the benchmarks: a median with its spread, a ratio that is refused
when the spread says the machine was busy, interleaved timing, and the load average."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

BUSY_SPREAD = 0.10  # an IQR above 10% of the median: the machine changed under the runs


@dataclass
class Stat:
    values: Sequence[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        """Interquartile range as a share of the median (0 for fewer than 4 values' worth of spread)."""
        if len(self.values) < 2 or self.median == 0:
            return 0.0
        q = statistics.quantiles(self.values, n=4, method="inclusive")
        return (q[2] - q[0]) / self.median

    @property
    def steady(self) -> bool:
        return self.spread <= BUSY_SPREAD

    def text(self, scale: float = 1.0, digits: int = 1) -> str:
        return f"{self.median * scale:.{digits}f} (±{self.spread:.0%})"


def ratio(num: Stat, den: Stat) -> str:
    """num/den as '1.23x', or why not: a ratio of two noisy medians says nothing."""
    if not (num.steady and den.steady):
        worst = max(num.spread, den.spread)
        return f"not reported: spread {worst:.0%} > {BUSY_SPREAD:.0%}, the machine was busy"
    return f"{num.median / den.median:.2f}x"


def interleaved(fns: Sequence[Callable[[], object]], runs: int, sync: Callable[[], None] = lambda: None,
                warmup: int = 1) -> list[Stat]:
    """Wall times of several functions timed in turn, run after run, so they share the machine's state."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - start)
    return [Stat(t) for t in times]


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"
