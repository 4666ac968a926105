"""Check the buffer rules written in notes23-lcpp.md against the recorded llama.cpp fixtures.

    python tools/check_lcpp_rules.py            # summary per rule
    python tools/check_lcpp_rules.py --verbose  # every mismatch

Standard library only; reads fixtures/llamacpp/runs/*.json and quantize/*-ORIGINAL.json.
A research aid for issue 23 (the predictor proper belongs in the package), not imported by it.
"""

from __future__ import annotations

import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FX = os.path.join(ROOT, "fixtures", "llamacpp")
MIB = 1048576

HP = {  # from the GGUF headers (print_info in the logs)
    "smollm2-135m-instruct-q4_1": dict(n_vocab=49152, n_layer=30, n_embd_k_gqa=192, n_embd_v_gqa=192,
                                       n_swa=0, swa_layers=0, n_ctx_train=8192),
    "gemma-3-270m-q4_k_m": dict(n_vocab=262144, n_layer=18, n_embd_k_gqa=256, n_embd_v_gqa=256,
                                n_swa=512, swa_layers=15, n_ctx_train=32768),
}
# bytes per block and elements per block of the KV cache types
TYPE = {"f32": (4, 1), "f16": (2, 1), "bf16": (2, 1), "q8_0": (34, 32), "q4_0": (18, 32), "q4_1": (20, 32),
        "q5_0": (22, 32), "q5_1": (24, 32), "iq4_nl": (18, 32)}
REPACK_TYPES_X86 = {"q4_0", "q4_k", "iq4_nl", "mxfp4"}  # AVX2; q2_k as well with AVX512 (ne1 % 8 == 0)


def pad(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def row(t: str, n: int) -> int:
    b, k = TYPE[t]
    return n // k * b


def fmt(x: float) -> str:
    return f"{x / MIB:.2f}"


def model_buffers(model: str, mmap: bool) -> dict:
    tab = json.load(open(os.path.join(FX, "quantize", f"{model}-ORIGINAL.json")))
    repacked, rest = [], []
    for t in tab["tensors"]:
        is_w = len(t["shape"]) == 2 and t["name"] != "token_embd.weight"  # used by MUL_MAT
        if is_w and t["ggml_type"] in REPACK_TYPES_X86 | {"q2_k"} and t["shape"][1] % 8 == 0:
            repacked.append(t)
        else:
            rest.append(t)
    out = {}
    if mmap:
        first = min(t["offset"] for t in rest)
        last = max(t["offset"] + t["bytes"] for t in rest)
        out["CPU_Mapped"] = last - first
    else:
        out["CPU"] = sum(pad(t["bytes"], 32) for t in rest)
    if repacked:
        out["CPU_REPACK"] = sum(pad(t["bytes"], 32) for t in repacked)
    return out


def context(model: str, s: dict) -> dict:
    hp = HP[model]
    n_ctx = pad(s["n_ctx"], 256)
    n_batch = min(s["n_ctx"], s["n_batch"])  # before the padding (causal attention)
    n_ubatch = min(n_batch, s["n_ubatch"])
    n_seq = s["n_seq_max"]
    if s["kv_unified"]:
        n_ctx_seq, n_stream = n_ctx, 1
    else:
        n_ctx_seq, n_stream = pad(n_ctx // n_seq, 256), n_seq
        n_ctx = n_ctx_seq * n_seq
    caches = []
    fa = s["fa"] in ("on", "auto")

    def cache(cells, layers):
        k = row(s["type_k"], hp["n_embd_k_gqa"]) * cells * n_stream * layers
        v = row(s["type_v"], hp["n_embd_v_gqa"]) * cells * n_stream * layers
        return {"cells": cells, "layers": layers, "k": k, "v": v, "total": k + v}

    if hp["n_swa"]:
        base = n_ctx_seq
        swa = base if s["swa_full"] else pad(min(base, hp["n_swa"] * (n_seq if s["kv_unified"] else 1) + n_ubatch), 256)
        caches.append(cache(base, hp["n_layer"] - hp["swa_layers"]))
        caches.append(cache(swa, hp["swa_layers"]))
    else:
        caches.append(cache(n_ctx_seq, hp["n_layer"]))
    return {"n_ctx": n_ctx, "n_ubatch": n_ubatch, "output": hp["n_vocab"] * n_seq * 4, "caches": caches, "fa": fa}


def main() -> None:
    verbose = "--verbose" in sys.argv
    stats: dict = {}

    def check(rule, pred, got, name):
        ok = pred == got
        st = stats.setdefault(rule, [0, 0])
        st[0 if ok else 1] += 1
        if not ok and verbose:
            print(f"  {rule}: {name}: predicted {pred} recorded {got}")

    for path in sorted(glob.glob(os.path.join(FX, "runs", "*.json"))):
        rec = json.load(open(path))
        if rec.get("rc") != 0:
            continue
        model, s, name = rec["model"], rec["settings"], os.path.basename(path)[:-5]
        mb = model_buffers(model, s["use_mmap"])
        ctx = context(model, s)
        printed = {(b["device"], b["kind"]): b["mib"] for b in rec["buffers"]}
        for dev, size in mb.items():
            kind = "repack" if dev.endswith("REPACK") else "model"
            check(f"model buffer {dev}", fmt(size), printed.get((dev, kind)), name)
        check("output buffer", fmt(ctx["output"]), printed.get(("CPU", "output")), name)
        kvs = rec["kv_caches"]
        check("number of KV caches", len(ctx["caches"]), len(kvs), name)
        for c, k in zip(ctx["caches"], kvs):
            check("KV cells", c["cells"], k["cells"], name)
            check("KV layers", c["layers"], k["layers"], name)
            check("KV size", fmt(c["total"]), k["mib"], name)
            check("KV K size", fmt(c["k"]), k["k_mib"], name)
            check("KV V size", fmt(c["v"]), k["v_mib"], name)
        kvbufs = [b["mib"] for b in rec["buffers"] if b["kind"] == "kv"]
        check("KV buffer lines", [fmt(c["total"]) for c in ctx["caches"]], kvbufs, name)
        eb = rec.get("exact_bytes")
        if eb and eb.get("by_buffer_type"):
            cpu = eb["by_buffer_type"].get("CPU", {})
            if "compute" in cpu:
                check("compute: printed = exact bytes / MiB", fmt(cpu["compute"]), printed.get(("CPU", "compute")), name)
                check("compute: gallocr replay of the reserve graph = exact bytes", eb.get("sim_compute"), cpu["compute"], name)
                check("compute: replay with the view source's address (not llama.cpp's)", eb.get("sim_compute_view_addr"), cpu["compute"], name)
            check("context bytes = sum of KV caches", sum(c["total"] for c in ctx["caches"]), cpu.get("context"), name)
            for dev, size in mb.items():
                check(f"model bytes {dev}", size, eb["by_buffer_type"].get(dev, {}).get("model"), name)
    for rule, (ok, bad) in stats.items():
        print(f"{rule:70s} {ok:4d} equal {bad:4d} differ")


if __name__ == "__main__":
    main()
