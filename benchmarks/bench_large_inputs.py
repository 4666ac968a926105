"""Legal but large inputs: seconds and peak memory (max RSS of the process), each in a fresh process.

  - `inspect params` on a 100,000-layer llama config (tiny layers: the cost is the layer count);
  - `inspect trace --image` of a 4,000 x 4,000 PNG on the meta device, Qwen2-VL-2B (resized to its
    12.8 M-pixel max_pixels) and InternVL2-2B (12 tiles + thumbnail);
  - `inspect tokens` for InternVL2-2B with max_dynamic_patch 10,000 (the tiling enumeration);
  - `inspect verify` of a GGUF whose block_count claims 10**9 layers (refused at once).
Each command is given `--limit` seconds; one that does not finish is reported as such, not waited for.
Needs GNU time at /usr/bin/time for the peak memory.

Usage: python benchmarks/bench_large_inputs.py [--runs 3] [--limit 120]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
GNU_TIME = "/usr/bin/time"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "tests"))


def kill_tree(pid: int) -> None:
    """Kill `pid`'s children (the python under GNU time), then `pid`."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        children = []
    for child in [*children, pid]:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run(args: list[str], limit: float) -> tuple[float | None, int, int]:
    """(seconds or None when over the limit, peak RSS in MiB, exit code) of `inspect ARGS`.

    The peak RSS comes from GNU time (`/usr/bin/time -f %M`): a process forked from this one would
    inherit this process's high-water mark (Linux keeps it across fork and exec)."""
    env = {**os.environ, "PYTHONPATH": str(HERE), "HF_HUB_OFFLINE": "1"}
    with tempfile.NamedTemporaryFile("r") as rss_file:
        start = time.perf_counter()
        proc = subprocess.Popen([GNU_TIME, "-f", "%M", "-o", rss_file.name, sys.executable, "-m", "inspector", *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=HERE)
        try:
            code = proc.wait(limit)
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid)
            proc.wait()
            return None, -1, -9
        elapsed = time.perf_counter() - start
        lines = rss_file.read().split()
    return elapsed, int(lines[-1]) // 1024 if lines else -1, code


def inputs(tmp: Path) -> dict[str, list[str]]:
    import numpy as np
    from PIL import Image

    from conftest import tiny_config
    from gguf_bytes import replace_meta, tiny_llama
    from inspector.spec.presets import find_preset

    deep = tmp / "deep"
    deep.mkdir()
    (deep / "config.json").write_text(json.dumps(tiny_config("llama", num_hidden_layers=100_000)))
    side = 4000
    y = np.linspace(0, 255, side, dtype=np.float32).astype(np.uint8)
    rgb = np.empty((side, side, 3), np.uint8)
    rgb[..., 0], rgb[..., 1] = y[:, None], y[None, :]
    rgb[..., 2] = ((np.arange(side)[:, None] // 16 + np.arange(side)[None, :] // 16) % 2 * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp / "big.png")
    tiles = tmp / "tiles"
    tiles.mkdir()
    cfg = copy.deepcopy(dict(find_preset("internvl2-2b").config))
    cfg["max_dynamic_patch"] = 10_000
    (tiles / "config.json").write_text(json.dumps(cfg))
    (tmp / "layers.gguf").write_bytes(tiny_llama(replace_meta("llama.block_count", "UINT32", 10**9)))
    return {
        "params, 100,000-layer config": ["params", str(deep), "--format", "json"],
        "trace --image 4000x4000, Qwen2-VL-2B, meta": ["trace", "Describe.", "-m", "qwen2-vl-2b", "--image",
                                                       str(tmp / "big.png"), "--device", "meta", "-f", "json"],
        "trace --image 4000x4000, InternVL2-2B, meta": ["trace", "Describe.", "-m", "internvl2-2b", "--image",
                                                        str(tmp / "big.png"), "--device", "meta", "-f", "json"],
        "tokens, InternVL2 max_dynamic_patch 10,000": ["tokens", str(tiles), "--image-size", "800x1300",
                                                       "-f", "json"],
        "verify, GGUF block_count 10**9": ["verify", str(tmp / "layers.gguf")],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=float, default=120.0)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        commands = inputs(Path(d))
        results: dict[str, list[tuple[float | None, int, int]]] = {name: [] for name in commands}
        for _ in range(opts.runs):  # interleaved
            for name, args in commands.items():
                results[name].append(run(args, opts.limit))
    print(f"{opts.runs} runs each, interleaved; median seconds (min-max), peak RSS of the process:\n")
    print("| input | exit | seconds | peak RSS (MiB) |")
    print("|---|---:|---:|---:|")
    for name, rows in results.items():
        done = [r[0] for r in rows if r[0] is not None]
        seconds = (f"{statistics.median(done):.2f} ({min(done):.2f}-{max(done):.2f})" if len(done) == len(rows)
                   else f"over {opts.limit:g} s in {len(rows) - len(done)} of {len(rows)} runs")
        rss = max(r[1] for r in rows)
        print(f"| {name} | {rows[-1][2]} | {seconds} | {rss if rss >= 0 else 'n/a (killed)'} |")


if __name__ == "__main__":
    main()
