"""Cold-start benchmark of `inspect params` against what a user writes today.

Each run is a fresh Python process (cold start, imports included), timed from outside:
  - ours:         python -m inspector params Qwen/Qwen2.5-1.5B --format json
  - transformers: build Qwen2ForCausalLM on the meta device from the same config and count
                  its parameters (the usual one-liner; needs torch + transformers imported).
Prints the medians and the ratio as a markdown table. Usage: python benchmarks/bench_params.py [runs]
With `RUNS --fallback`: the native path against the transformers-on-meta fallback on a model that has
both (Qwen3-30B-A3B), interleaved fresh processes.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

from inspector.spec.presets import get_preset

MODEL = "Qwen/Qwen2.5-1.5B"

TRANSFORMERS_SNIPPET = """
import json, sys, torch, transformers
cfg = json.loads(sys.argv[1])
config = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
with torch.device("meta"):
    model = transformers.AutoModelForCausalLM.from_config(config)
print(sum(p.numel() for p in model.parameters()))
"""


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, out


def main(runs: int = 7) -> None:
    cfg = dict(get_preset(MODEL).config)
    cfg.pop("architectures", None)
    ours_cmd = [sys.executable, "-m", "inspector", "params", MODEL, "--format", "json"]
    theirs_cmd = [sys.executable, "-c", TRANSFORMERS_SNIPPET, json.dumps(cfg)]
    timed(ours_cmd), timed(theirs_cmd)  # warm the OS file cache
    ours, theirs = [], []
    for _ in range(runs):
        t, out = timed(ours_cmd)
        ours.append(t)
        ours_count = json.loads(out)["total_params"]
        t, out = timed(theirs_cmd)
        theirs.append(t)
        theirs_count = int(out.strip())
    assert ours_count == theirs_count, (ours_count, theirs_count)
    mo, mt = statistics.median(ours), statistics.median(theirs)
    print(f"| {MODEL}, {runs} cold runs each | median (s) |")
    print("|---|---|")
    print(f"| `inspect params` (no torch) | {mo:.3f} |")
    print(f"| transformers on meta + count | {mt:.3f} |")
    print(f"| ratio | {mt / mo:.1f}x faster |")
    print(f"\nBoth count {ours_count:,} parameters.")


if __name__ == "__main__" and "--fallback" not in sys.argv:
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)


# --------------------------------------------------------------------------- native vs transformers fallback

FALLBACK_SNIPPET = """
import sys, time
start = time.perf_counter()
from inspector.inventory.transformers_meta import meta_account
from inspector.spec.presets import get_preset
acc = meta_account(dict(get_preset(sys.argv[1]).config), sys.argv[1], "preset")
print(acc.totals.total_params, time.perf_counter() - start, acc.spec.seconds)
"""
NATIVE_SNIPPET = """
import sys, time
start = time.perf_counter()
from inspector.source import account_model
acc = account_model(sys.argv[1])
print(acc.totals.total_params, time.perf_counter() - start)
"""


def fallback_vs_native(model: str = "Qwen/Qwen3-30B-A3B", runs: int = 5) -> None:
    """The same model counted natively and through transformers on the meta device, each run a
    fresh process, interleaved; in-process times (imports included) and the fallback's own build."""
    native, fallback, build = [], [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", NATIVE_SNIPPET, model], capture_output=True, text=True,
                             check=True).stdout.split()
        native.append(float(out[1]))
        n_native = int(out[0])
        out = subprocess.run([sys.executable, "-c", FALLBACK_SNIPPET, model], capture_output=True, text=True,
                             check=True).stdout.split()
        fallback.append(float(out[1]))
        build.append(float(out[2]))
        assert int(out[0]) == n_native, (out[0], n_native)

    def fmt(xs: list[float]) -> str:
        return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"

    print(f"\n| {model}, {runs} interleaved processes | median s (min-max) |")
    print("|---|---|")
    print(f"| native family, no torch (import + count) | {fmt(native)} |")
    print(f"| transformers on meta (import torch/transformers + build + names) | {fmt(fallback)} |")
    print(f"| of which build + reverse conversion | {fmt(build)} |")
    print(f"| ratio | {statistics.median(fallback) / statistics.median(native):.0f}x |")
    print(f"\nBoth count {n_native:,} parameters.")


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[2] == "--fallback":
    fallback_vs_native(runs=int(sys.argv[1]))
