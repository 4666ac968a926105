"""Cold start of `inspect params` and `inspect tokens` for vision-language models (no torch).

Each run is a fresh Python process timed from outside, commands interleaved round by round so that
load on the shared machine hits them alike. `python -c pass` is the interpreter's own start, the
floor under every command. With `--baseline DIR`, the same Qwen2-VL commands also run from another
checkout (e.g. /work/main) for comparison. Prints medians with the min-max spread as markdown.

    python benchmarks/bench_vlm_cold.py [--runs 11] [--baseline /work/main]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "params Qwen/Qwen2-VL-2B-Instruct": ["-m", "inspector", "params", "Qwen/Qwen2-VL-2B-Instruct", "-f", "json"],
    "tokens Qwen/Qwen2-VL-2B-Instruct 800x1300": ["-m", "inspector", "tokens", "Qwen/Qwen2-VL-2B-Instruct",
                                                  "-s", "800x1300", "-f", "json"],
    "params google/gemma-3-4b-it": ["-m", "inspector", "params", "google/gemma-3-4b-it", "-f", "json"],
    "params meta-llama/Llama-4-Scout-17B-16E-Instruct": ["-m", "inspector", "params", "llama-4-scout", "-f", "json"],
    "tokens llava-onevision 800x1300": ["-m", "inspector", "tokens", "llava-onevision-7b", "-s", "800x1300",
                                        "-f", "json"],
    "tokens Llama-4-Scout 800x1300": ["-m", "inspector", "tokens", "llama-4-scout", "-s", "800x1300", "-f", "json"],
}
BASELINE = ("params Qwen/Qwen2-VL-2B-Instruct", "tokens Qwen/Qwen2-VL-2B-Instruct 800x1300")


def timed(args: list[str], tree: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree), HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--baseline", type=Path)
    a = parser.parse_args()
    jobs = [(name, args, ROOT, "this branch") for name, args in COMMANDS.items()]
    if a.baseline:
        jobs += [(name, COMMANDS[name], a.baseline, str(a.baseline)) for name in BASELINE]
    times: dict[tuple[str, str], list[float]] = {}
    for name, args, tree, _ in jobs:  # one warm-up round for the OS file cache
        timed(args, tree)
    for _ in range(a.runs):
        for name, args, tree, label in jobs:
            times.setdefault((name, label), []).append(timed(args, tree))
    print(f"| command ({a.runs} cold runs, interleaved) | tree | median (s) | min-max (s) |")
    print("|---|---|---:|---:|")
    for (name, label), ts in times.items():
        print(f"| `{name}` | {label} | {statistics.median(ts):.3f} | {min(ts):.3f}-{max(ts):.3f} |")


if __name__ == "__main__":
    main()
