"""Reading a Llama-3.1-405B-shaped repo's safetensors headers over HTTP at 50 ms a request:
`huggingface_hub.get_safetensors_metadata` against `inspect verify`, side by side in one run.

The repo is tests/hub_repos.py's: 191 sparse shards (real-shaped headers, 812 GB logical, under
1 MB on disk) and its index, served by tests/hubserver.py (the Hub's protocol: resolve -> 302 to a
CDN on another port -> 206 range answers) with `--latency` seconds slept before every answer.
Each contender runs as a fresh process with a fresh HF_HOME (a cold cache), interleaved, `--runs`
times; the server's log gives the requests and body bytes each run cost:

  - `get_safetensors_metadata(repo)`, called the way a user would (python -c, default arguments);
  - `inspect verify REPO --format json` (resolves the preset config, reads index + 191 headers,
    compares 1,137 tensors with the inventory);
  - `inspect verify DIR --format json` on the same files on local disk: what the command costs
    without any network (Python start-up, imports, the comparison);
  - the same two header reads timed inside one warm process (imports excluded), cold cache each time:
    `get_safetensors_metadata` and `inspector.checkpoint.hub.fetch_hub_headers`.

    python benchmarks/bench_hub.py [--runs 7] [--latency 0.05] [--bandwidth BYTES_PER_S]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from hub_repos import llama405b_repo  # noqa: E402
from hubserver import HubServer  # noqa: E402

REPO = "meta-llama/Llama-3.1-405B"
USER = f"from huggingface_hub import get_safetensors_metadata; m = get_safetensors_metadata({REPO!r}); " \
       "print(len(m.weight_map))"
IN_PROCESS = """
import json, shutil, sys, time
import huggingface_hub.constants as C
from huggingface_hub import get_safetensors_metadata
from inspector.checkpoint.hub import fetch_hub_headers
which, runs = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(runs):
    shutil.rmtree(C.HF_HUB_CACHE, ignore_errors=True)
    t = time.perf_counter()
    n = len(get_safetensors_metadata(%r).weight_map) if which == "hf" else len(fetch_hub_headers(%r)[0].tensors)
    times.append(time.perf_counter() - t)
    assert n == 1137, n
print(json.dumps(times))
""" % (REPO, REPO)


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--bandwidth", type=float, default=None, help="bytes/s per answer body (default: unlimited)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        total = llama405b_repo(Path(tmp) / "repos" / REPO)
        with HubServer(Path(tmp) / "repos", latency_s=args.latency, bandwidth=args.bandwidth) as server:
            contenders = {
                "hf": [sys.executable, "-c", USER],
                "ours": [sys.executable, "-m", "inspector", "verify", REPO, "--format", "json"],
                "local": [sys.executable, "-m", "inspector", "verify", str(Path(tmp) / "repos" / REPO), "--format", "json"],
            }
            wall: dict[str, list[float]] = {k: [] for k in contenders}
            cost: dict[str, list[tuple[int, int]]] = {k: [] for k in contenders}
            for i in range(args.runs + 1):  # run 0 warms the page cache and is not counted
                for name, cmd in contenders.items():
                    server.reset_log()
                    env = server.env(Path(tmp) / f"home-{name}-{i}", PYTHONPATH=str(ROOT))
                    start = time.perf_counter()
                    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
                    seconds = time.perf_counter() - start
                    assert p.returncode == 0, p.stderr[-2000:]
                    if name != "hf":
                        assert json.loads(p.stdout)["ok"]
                    if i:
                        wall[name].append(seconds)
                        cost[name].append((len(server.log), sum(e.sent for e in server.log)))
            inner = {}
            for which in ("hf", "ours"):
                env = server.env(Path(tmp) / f"home-inner-{which}", PYTHONPATH=str(ROOT))
                p = subprocess.run([sys.executable, "-c", IN_PROCESS, which, str(args.runs)], env=env, cwd=ROOT,
                                   capture_output=True, text=True)
                assert p.returncode == 0, p.stderr[-2000:]
                inner[which] = json.loads(p.stdout)
    hf, ours = statistics.median(wall["hf"]), statistics.median(wall["ours"])
    print(f"{REPO}-shaped repo: 191 shards, 1,137 tensors, {total / 1e9:.1f} GB logical; {args.latency * 1000:g} ms "
          f"per request{'' if not args.bandwidth else f', {args.bandwidth / 1e6:g} MB/s per answer'}; "
          f"{args.runs} interleaved runs, {os.cpu_count()} CPUs. Seconds: median (min-max).\n")
    print("| contender | fresh process, s | in one process, s | requests | body bytes |")
    print("|---|---:|---:|---:|---:|")
    for name, label in (("hf", "`huggingface_hub.get_safetensors_metadata(repo)`"),
                        ("ours", "`inspect verify REPO` (index + 191 headers + inventory check)"),
                        ("local", "`inspect verify DIR`, the same files on local disk (no network)")):
        reqs = statistics.median(c[0] for c in cost[name])
        body = statistics.median(c[1] for c in cost[name])
        inside = spread(inner[name]) if name in inner else ""
        print(f"| {label} | {spread(wall[name])} | {inside} | {reqs:.0f} | {body:,.0f} |")
    inner_ratio = statistics.median(inner["ours"]) / statistics.median(inner["hf"])
    print(f"\nRatio ours / get_safetensors_metadata: {ours / hf:.2f} (fresh processes), "
          f"{inner_ratio:.2f} (header reads alone).")


if __name__ == "__main__":
    main()
