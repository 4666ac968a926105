"""Cold start of `inspect memory` against `inspect params`, interleaved, medians with spread.

Each run is a fresh Python process (imports included), timed from outside, the commands taking
turns so that load on the shared machine hits both alike:
  - params:        python -m inspector params MODEL --format json
  - memory serve:  python -m inspector memory MODEL --format json
  - memory lora:   python -m inspector memory MODEL --train qlora --lora-targets all-linear --format json
  - memory zero-3: python -m inspector memory MODEL --train full --zero 3 --gpus 8 --format json
Usage: python benchmarks/bench_memory.py [runs] [MODEL]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMANDS = {
    "params": ["params", "{model}"],
    "memory (serve)": ["memory", "{model}"],
    "memory --train qlora": ["memory", "{model}", "--train", "qlora", "--lora-targets", "all-linear"],
    "memory --train full --zero 3": ["memory", "{model}", "--train", "full", "--zero", "3", "--gpus", "8"],
}


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return time.perf_counter() - start


def main(runs: int = 15, model: str = "Qwen/Qwen2.5-7B-Instruct") -> None:
    cmds = {k: [sys.executable, "-m", "inspector", *[a.format(model=model) for a in v], "--format", "json"]
            for k, v in COMMANDS.items()}
    for cmd in cmds.values():
        timed(cmd)  # warm the OS file cache
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(timed(cmd))
    base = statistics.median(times["params"])
    print(f"| {model}, {runs} cold runs each, interleaved | median (s) | min-max (s) | vs params |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| `inspect {name}` | {m:.3f} | {min(ts):.3f}-{max(ts):.3f} | {m / base:.2f}x |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15, *(sys.argv[2:3]))
