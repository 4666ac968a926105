"""Benchmark: reading the headers of a 30-shard, ~141 GB Llama-3.1-70B-shaped checkpoint.

The shards are sparse files: each gets a real safetensors header whose offsets describe the full
data size, then is truncated (extended) to its full length without writing the data. Times
``inspector.checkpoint.open_checkpoint`` on the directory (index + every shard header, with the
index cross-check) against the way users do it today: ``safetensors.safe_open`` on every shard in
a loop, asking each tensor for its shape and dtype. Prints a markdown table of medians.

    python benchmarks/bench_headers.py [--shards 30] [--runs 9] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inspector.checkpoint.open import open_checkpoint  # noqa: E402

# Llama-3.1-70B: hidden 8192, 80 layers, 64 heads / 8 KV heads of 128, MLP 28672, vocab 128256,
# untied lm_head, bfloat16.
HIDDEN, LAYERS, KV_DIM, FFN, VOCAB = 8192, 80, 8 * 128, 28672, 128256


def llama70b_tensors() -> list[tuple[str, list[int]]]:
    out = [("model.embed_tokens.weight", [VOCAB, HIDDEN])]
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", [HIDDEN]),
            (p + "self_attn.q_proj.weight", [HIDDEN, HIDDEN]),
            (p + "self_attn.k_proj.weight", [KV_DIM, HIDDEN]),
            (p + "self_attn.v_proj.weight", [KV_DIM, HIDDEN]),
            (p + "self_attn.o_proj.weight", [HIDDEN, HIDDEN]),
            (p + "post_attention_layernorm.weight", [HIDDEN]),
            (p + "mlp.gate_proj.weight", [FFN, HIDDEN]),
            (p + "mlp.up_proj.weight", [FFN, HIDDEN]),
            (p + "mlp.down_proj.weight", [HIDDEN, FFN]),
        ]
    out += [("model.norm.weight", [HIDDEN]), ("lm_head.weight", [VOCAB, HIDDEN])]
    return out


def nbytes(shape: list[int]) -> int:
    n = 2  # BF16
    for d in shape:
        n *= d
    return n


def write_sparse_checkpoint(d: Path, n_shards: int) -> int:
    tensors = llama70b_tensors()
    total = sum(nbytes(s) for _, s in tensors)
    target = total / n_shards
    groups: list[list[tuple[str, list[int]]]] = [[]]
    acc = 0
    for name, shape in tensors:
        if acc >= target * len(groups) and len(groups) < n_shards:
            groups.append([])
        groups[-1].append((name, shape))
        acc += nbytes(shape)
    weight_map = {}
    for i, group in enumerate(groups):
        fname = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        header: dict = {"__metadata__": {"format": "pt"}}
        pos = 0
        for name, shape in group:
            header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [pos, pos + nbytes(shape)]}
            pos += nbytes(shape)
            weight_map[name] = fname
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        path = d / fname
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
        os.truncate(path, 8 + len(raw) + pos)  # sparse: the data is never written
    (d / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    return total


def with_safe_open(d: Path) -> dict:
    from safetensors import safe_open

    out = {}
    for path in sorted(d.glob("*.safetensors")):
        with safe_open(str(path), framework="np") as f:
            for k in f.keys():
                sl = f.get_slice(k)
                out[k] = (tuple(sl.get_shape()), sl.get_dtype())
    return out


def median_time(fn, runs: int) -> float:
    fn()  # warm-up (imports, page cache)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=30)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--keep", type=Path, help="write the checkpoint here and keep it")
    args = ap.parse_args()
    d = args.keep or Path(tempfile.mkdtemp(prefix="bench-headers-"))
    d.mkdir(parents=True, exist_ok=True)
    try:
        total = write_sparse_checkpoint(d, args.shards)
        on_disk = sum(os.stat(p).st_blocks * 512 for p in d.iterdir())
        h = open_checkpoint(d)
        assert not h.problems and h.total_bytes == total
        assert {k: (v.shape, v.dtype) for k, v in h.tensors.items()} == with_safe_open(d)
        ours = median_time(lambda: open_checkpoint(d), args.runs)
        theirs = median_time(lambda: with_safe_open(d), args.runs)
        print(
            f"{len(h.files)} shards, {len(h.tensors)} tensors, {total / 1e9:.1f} GB logical "
            f"({on_disk / 1e6:.1f} MB on disk), median of {args.runs} runs, {os.cpu_count()} CPUs\n"
        )
        print("| reader | median s | ratio |")
        print("|---|---:|---:|")
        print(f"| `open_checkpoint(dir)` (index + all headers + cross-check) | {ours:.4f} | 1.00 |")
        print(f"| `safe_open` loop over shards, shape+dtype per tensor | {theirs:.4f} | {theirs / ours:.2f} |")
    finally:
        if args.keep is None:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
