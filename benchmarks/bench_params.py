"""Cold-start benchmark of `inspect params` against what a user writes today.

Each run is a fresh Python process (cold start, imports included), timed from outside:
  - ours:         python -m inspector params Qwen/Qwen2.5-1.5B --format json
  - transformers: build Qwen2ForCausalLM on the meta device from the same config and count
                  its parameters (the usual one-liner; needs torch + transformers imported).
Prints the medians and the ratio as a markdown table. Usage: python benchmarks/bench_params.py [runs]
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


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
