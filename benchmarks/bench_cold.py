"""Cold start of the CLI: `inspect params` and a few other commands, this tree against another checkout.

Every run is a fresh `python -m inspector ...` process (interpreter start and imports included), all
contenders interleaved round by round so that load on a shared machine hits both trees alike. For
each: the median wall time with its spread (IQR as a share of the median, and min-max), the median
CPU time (user + system of the process, less sensitive to other jobs), and how many modules the
command imports (of them, how many are inspector's), from one `-X importtime` run. The load average
is printed before and after. The goal of issue 29: `params` under 0.2 s (0.1 s ideally); of issue 27:
`memory` (serving) as fast as `params` of the same model.

    python benchmarks/bench_cold.py [--runs 21] [--baseline /work/main]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stats import Stat, loadavg, ratio  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Bytecode as an installed package has it: written once (the warm-up round), outside both trees. With
# PYTHONDONTWRITEBYTECODE set, as on some machines here, every run would compile every module again.
PYCACHE = tempfile.mkdtemp(prefix="bench-cold-pycache-")

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "params smollm2-135m": ["-m", "inspector", "params", "smollm2-135m"],
    "params smollm2-135m -f json": ["-m", "inspector", "params", "smollm2-135m", "-f", "json"],
    "config qwen3-0.6b": ["-m", "inspector", "config", "qwen3-0.6b"],
    "params qwen2.5-0.5b": ["-m", "inspector", "params", "qwen2.5-0.5b"],  # issue 27: memory's cold start = params'
    "memory qwen2.5-0.5b": ["-m", "inspector", "memory", "qwen2.5-0.5b"],
    "--help": ["-m", "inspector", "--help"],
}


def environment(tree: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "PYTHONPYCACHEPREFIX": PYCACHE}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed(tree: Path, args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + system) of one fresh process run with `tree` first on the path."""
    env = environment(tree)
    start = time.perf_counter()
    # cwd=tree: `python -m` puts the working directory first on sys.path, before PYTHONPATH
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=tree)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{tree}: {' '.join(args)} failed: {stderr.decode()[-500:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def modules(tree: Path, args: list[str]) -> tuple[int, int]:
    """(modules imported, of which inspector's) by one run under `-X importtime`."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, env=environment(tree),
                          cwd=tree)
    names = [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:") and not line.endswith("imported package")]
    return len(names), sum(1 for n in names if n == "inspector" or n.startswith("inspector."))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--baseline", type=Path, default=Path("/work/main"))
    a = parser.parse_args()
    trees = [(ROOT, "this tree"), *([(a.baseline, str(a.baseline))] if a.baseline.is_dir() else [])]
    jobs = [(name, args, tree, label) for name, args in COMMANDS.items() for tree, label in trees
            if not (name == "python -c pass" and tree != ROOT)]
    load_before = loadavg()
    for _, args, tree, _ in jobs:  # one warm-up round: the OS file cache and the .pyc files
        timed(tree, args)
    walls: dict[int, list[float]] = {i: [] for i in range(len(jobs))}
    cpus: dict[int, list[float]] = {i: [] for i in range(len(jobs))}
    for _ in range(a.runs):
        for i, (_, args, tree, _) in enumerate(jobs):
            wall, cpu = timed(tree, args)
            walls[i].append(wall)
            cpus[i].append(cpu)
    load_after = loadavg()
    report(a.runs, trees, jobs, walls, cpus, (load_before, load_after))
    shutil.rmtree(PYCACHE, ignore_errors=True)


def report(runs: int, trees, jobs, walls, cpus, load: tuple[str, str]) -> None:
    load_before, load_after = load
    print(f"{runs} cold runs each, interleaved; load average {load_before} before, {load_after} after; "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print()
    print("| command | tree | wall median (s) | spread (IQR) | min-max (s) | CPU median (s) | modules (inspector) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    stats = {}
    for i, (name, args, tree, label) in enumerate(jobs):
        wall, cpu = Stat(walls[i]), Stat(cpus[i])
        stats[(name, label)] = wall, cpu
        total, ours = modules(tree, args)
        print(f"| `{name}` | {label} | {wall.median:.3f} | ±{wall.spread:.0%} | {min(walls[i]):.3f}-{max(walls[i]):.3f} "
              f"| {cpu.median:.3f} | {total} ({ours}) |")
    if len(trees) > 1:
        print()
        for name in COMMANDS:
            if name != "python -c pass":
                (wall, cpu), (base_wall, base_cpu) = stats[(name, "this tree")], stats[(name, trees[1][1])]
                print(f"- `{name}`, this tree / {trees[1][1]}: wall {ratio(wall, base_wall)}; CPU {ratio(cpu, base_cpu)} "
                      f"(CPU medians {cpu.median:.3f} / {base_cpu.median:.3f} s, spread ±{cpu.spread:.0%} / "
                      f"±{base_cpu.spread:.0%})")


if __name__ == "__main__":
    main()
