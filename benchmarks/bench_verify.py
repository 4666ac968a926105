"""`inspect verify` on a 141 GB sparse 30-shard checkpoint, against what a user does today.

The checkpoint is the Llama-3.1-70B-shaped one of bench_headers.py (sparse files: real headers,
data never written), plus a config.json with the same shape. Each contender is a fresh process
(cold start, imports included), median of N runs:

  - `inspect verify DIR --format json`: index + 30 headers + the expected inventory compared;
  - the nearest do-it-yourself equivalent: build the model with transformers on the meta device
    (to know the expected names and shapes), read every shard with `safe_open` in a loop, compare;
  - `safe_open` in a loop alone (lists the tensors, checks nothing against the config).

Loading the checkpoint with transformers `from_pretrained` and reading its missing/unexpected-key
warnings would read 141 GB of weights (and need that much memory in bf16); it is not run here.
Usage: python benchmarks/bench_verify.py [runs]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_headers import FFN, HIDDEN, LAYERS, VOCAB, write_sparse_checkpoint  # noqa: E402

CONFIG = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": VOCAB, "hidden_size": HIDDEN,
    "intermediate_size": FFN, "num_hidden_layers": LAYERS, "num_attention_heads": 64, "num_key_value_heads": 8,
    "tie_word_embeddings": False, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 131072,
    "torch_dtype": "bfloat16",
}

DIY = """
import json, sys, torch, transformers
from pathlib import Path
from safetensors import safe_open
d = Path(sys.argv[1]); cfg = json.loads((d / "config.json").read_text()); cfg.pop("architectures")
config = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
with torch.device("meta"):
    expected = {k: tuple(v.shape) for k, v in transformers.AutoModelForCausalLM.from_config(config).state_dict().items()}
found = {}
for path in sorted(d.glob("*.safetensors")):
    with safe_open(str(path), framework="np") as f:
        for k in f.keys():
            found[k] = tuple(f.get_slice(k).get_shape())
bad = [k for k in expected if found.get(k) != expected[k]] + [k for k in found if k not in expected]
print(json.dumps({"ok": not bad, "n": len(found)}))
"""

LOOP = """
import sys
from pathlib import Path
from safetensors import safe_open
n = 0
for path in sorted(Path(sys.argv[1]).glob("*.safetensors")):
    with safe_open(str(path), framework="np") as f:
        for k in f.keys():
            f.get_slice(k).get_shape(); n += 1
print(n)
"""


def cold(cmd: list[str], runs: int) -> tuple[float, str]:
    subprocess.run(cmd, capture_output=True, check=False)  # warm the page cache
    times, out = [], ""
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main(runs: int = 5) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        total = write_sparse_checkpoint(d, 30)
        (d / "config.json").write_text(json.dumps(CONFIG))
        ours, out = cold([sys.executable, "-m", "inspector", "verify", str(d), "--format", "json"], runs)
        report = json.loads(out)
        assert report["ok"] and report["matched"] == 723, report["missing"][:3]
        diy, out = cold([sys.executable, "-c", DIY, str(d)], runs)
        assert json.loads(out)["ok"]
        loop, out = cold([sys.executable, "-c", LOOP, str(d)], runs)
        assert int(out) == 723
        print(f"Sparse checkpoint: 30 shards, 723 tensors, {total / 1e9:.1f} GB logical. "
              f"{runs} cold runs each, median seconds:\n")
        print("| contender | median (s) | vs `inspect verify` |")
        print("|---|---:|---:|")
        print(f"| `inspect verify DIR` (config + index + 30 headers + comparison) | {ours:.3f} | 1.0x |")
        print(f"| transformers meta model + `safe_open` loop + comparison | {diy:.3f} | {diy / ours:.1f}x slower |")
        print(f"| `safe_open` loop alone (no comparison) | {loop:.3f} | {loop / ours:.2f}x |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
