"""Check the llama-quantize type rules written in notes23-lcpp.md against the recorded outputs.

    python tools/check_quant_rules.py [--verbose]

Predicts, from the ORIGINAL per-tensor table (names, shapes) and a few hyperparameters, the ggml type
and bytes of every tensor that llama_model_quantize writes for each recorded type, and the file size
(same data offset as the input + every tensor padded to 32 bytes), then compares with
fixtures/llamacpp/quantize/<file>-<TYPE>.json. Only the rules these two dense, non-Falcon, no-imatrix
files reach are written out here (n_expert 0, not 70B). Needs the gguf package (block sizes).
A research aid for issue 23, not imported by the package.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys

import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QD = os.path.join(ROOT, "fixtures", "llamacpp", "quantize")
HP = {"smollm2-135m-instruct-q4_1": {"n_layer": 30, "n_gqa": 3},
      "gemma-3-270m-q4_k_m": {"n_layer": 18, "n_gqa": 4}}
DEFAULT = {"Q4_0": "q4_0", "Q4_1": "q4_1", "Q5_0": "q5_0", "Q5_1": "q5_1", "Q8_0": "q8_0", "F16": "f16",
           "BF16": "bf16", "Q2_K": "q2_k", "Q2_K_S": "q2_k", "Q3_K_S": "q3_k", "Q3_K_M": "q3_k",
           "Q3_K_L": "q3_k", "Q4_K_S": "q4_k", "Q4_K_M": "q4_k", "Q5_K_S": "q5_k", "Q5_K_M": "q5_k",
           "Q6_K": "q6_k", "IQ4_NL": "iq4_nl", "IQ4_XS": "iq4_xs", "IQ3_S": "iq3_s", "IQ3_M": "iq3_s",
           "IQ3_XS": "iq3_s", "TQ1_0": "tq1_0", "TQ2_0": "tq2_0"}
FALLBACK = {"iq1_s": "iq4_nl", "iq1_m": "iq4_nl", "iq2_xxs": "iq4_nl", "iq2_xs": "iq4_nl", "iq2_s": "iq4_nl",
            "iq3_xxs": "iq4_nl", "iq3_s": "iq4_nl", "iq4_xs": "iq4_nl", "q2_k": "q4_0", "q3_k": "q4_0",
            "tq1_0": "q4_0", "tq2_0": "q4_0", "q4_k": "q5_0", "q5_k": "q5_1", "q6_k": "q8_0"}


def qsize(t: str):
    return gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[t.upper()]]  # (block, type size)


def quantized(t: str) -> bool:
    return t not in ("f32", "f16", "bf16")


def use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def allows(name: str, shape) -> bool:
    return len(shape) >= 2 and name.endswith("weight") and "_norm.weight" not in name


def predict(model: str, ftype: str, tensors: list[dict]) -> dict:
    hp = HP[model]
    n_layer, n_gqa = hp["n_layer"], hp["n_gqa"]
    names = [t["name"] for t in tensors]
    tied = "output.weight" not in names

    def key(t):
        m = re.match(r"blk\.(\d+)\.", t["name"])
        return (int(m.group(1)) if m else -1, t["name"])

    order = sorted(tensors, key=key)
    n_wv = sum(1 for t in order if "attn_v.weight" in t["name"] or "attn_qkv.weight" in t["name"])
    i_wv = i_down = 0
    out = {}
    default = DEFAULT[ftype]
    for t in order:
        name, shape = t["name"], t["shape"]
        if not allows(name, shape):
            out[name] = t["ggml_type"]
            continue
        new = default
        if quantized(default):
            nx = shape[0]
            if name == "output.weight" or (tied and name == "token_embd.weight"):
                if nx % qsize(new)[0] != 0:
                    new = "q8_0"
                elif new != "q8_0":
                    new = "q6_k"
            elif name == "token_embd.weight":
                if ftype in ("TQ1_0", "TQ2_0"):
                    new = "q4_k"
            elif "attn_v.weight" in name:
                if ftype == "Q2_K":
                    new = "q4_k" if n_gqa >= 4 else "q3_k"
                elif ftype == "Q2_K_S" and n_gqa >= 4:
                    new = "q4_k"
                elif ftype in ("IQ3_XS", "IQ3_S") and n_gqa >= 4:
                    new = "q4_k"
                elif ftype == "IQ3_M":
                    new = "q4_k"
                elif ftype == "Q3_K_M":
                    new = "q5_k" if i_wv < 2 else "q4_k"
                elif ftype == "Q3_K_L":
                    new = "q5_k"
                elif ftype in ("IQ4_NL", "IQ4_XS") and n_gqa >= 4:
                    new = "q5_k"
                elif ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(i_wv, n_wv):
                    new = "q6_k"
                elif ftype == "Q4_K_S" and i_wv < 4:
                    new = "q5_k"
                i_wv += 1
            elif "ffn_down" in name:
                i, n = i_down, n_layer
                if ftype == "Q2_K":
                    new = "q3_k"
                elif ftype == "Q2_K_S":
                    if i < n // 8:
                        new = "q4_k"
                elif ftype == "Q3_K_M":
                    new = "q5_k" if i < n // 16 else "q4_k"
                elif ftype == "IQ3_M" and i < n // 8:
                    new = "q4_k"
                elif ftype == "Q3_K_L":
                    new = "q5_k"
                elif ftype == "Q4_K_M":
                    if use_more_bits(i, n):
                        new = "q6_k"
                elif i < n // 8 and ftype in ("IQ4_NL", "IQ4_XS"):
                    new = "q5_k"
                elif ftype == "Q5_K_M" and use_more_bits(i, n):
                    new = "q6_k"
                elif ftype == "Q4_K_S" and i < n // 8:
                    new = "q5_k"
                i_down += 1
            elif "attn_output.weight" in name:
                if ftype == "Q2_K":
                    new = "q3_k"
                elif ftype in ("Q3_K_M", "IQ3_M"):
                    new = "q4_k"
                elif ftype == "Q3_K_L":
                    new = "q5_k"
            # fallback
            if nx % qsize(new)[0] != 0:
                fb = FALLBACK.get(new, new)
                new = fb if nx % qsize(fb)[0] == 0 else "f16"
        out[name] = new
    return out


def main() -> None:
    verbose = "--verbose" in sys.argv
    for path in sorted(glob.glob(os.path.join(QD, "*.json"))):
        if path.endswith("-ORIGINAL.json"):
            continue
        rec = json.load(open(path))
        model, ftype = rec["source"], rec["requested_type"]
        orig = json.load(open(os.path.join(QD, f"{model}-ORIGINAL.json")))
        pred = predict(model, ftype, orig["tensors"])
        bad_t = bad_b = 0
        total = 0
        by = {t["name"]: t for t in orig["tensors"]}
        for t in rec["tensors"]:
            pt = pred[t["name"]]
            blk, ts = qsize(pt)
            nbytes = ts * (t["n_elements"] // blk)
            total += (nbytes + 31) // 32 * 32
            if pt != t["ggml_type"]:
                bad_t += 1
                if verbose:
                    print(f"  {ftype} {t['name']}: predicted {pt} recorded {t['ggml_type']}")
            if nbytes != t["bytes"]:
                bad_b += 1
        fsize = orig["data_offset"] + total
        fb = rec["file_bytes"]
        fstat = "equal" if fsize == fb else f"predicted {fsize}"
        print(f"{model:28s} {ftype:7s} types {len(rec['tensors']) - bad_t:3d}/{len(rec['tensors'])} "
              f"bytes {len(rec['tensors']) - bad_b:3d}/{len(rec['tensors'])} file {fstat} "
              f"({fb} B, {rec['bpw_tensor_bytes']:.4f} bpw)")


if __name__ == "__main__":
    main()
