"""Per-tensor table of a GGUF file, for the llama.cpp quantization fixtures (issue 23).

Runs in the project's python (it needs the ``gguf`` package); never imported by the package.

    python tools/gguf_tensor_table.py FILE.gguf OUT.json [--source NAME] [--type TYPE] [--log LOG]

Writes: file name and size, the data offset and alignment, general.file_type, every tensor in file order
(name, ggml type, shape as GGUF stores it (ne0 first), elements, bytes, offset), the type counts, the
tensor bytes (sum of nbytes, what llama.cpp calls "quant size"), n_elements and the bits per weight both
ways (tensor bytes and file bytes); with --log, the "model size"/"quant size" lines of llama_model_quantize's
printout and each tensor's printed conversion.
"""

from __future__ import annotations

import collections
import json
import os
import re
import sys

import gguf


def table(path: str) -> dict:
    r = gguf.GGUFReader(path)
    tensors = []
    for t in r.tensors:
        tensors.append({
            "name": t.name,
            "ggml_type": t.tensor_type.name.lower(),
            "shape": [int(x) for x in t.shape],
            "n_elements": int(t.n_elements),
            "bytes": int(t.n_bytes),
            "offset": int(t.data_offset),
        })
    counts = collections.Counter(t["ggml_type"] for t in tensors)
    n_el = sum(t["n_elements"] for t in tensors)
    tbytes = sum(t["bytes"] for t in tensors)
    fsize = os.path.getsize(path)
    ft = r.fields.get("general.file_type")
    file_type = int(ft.parts[ft.data[0]][0]) if ft is not None else None
    align_f = r.fields.get("general.alignment")
    return {
        "file": os.path.basename(path),
        "file_bytes": fsize,
        "data_offset": int(r.data_offset),
        "alignment": int(align_f.parts[align_f.data[0]][0]) if align_f is not None else 32,
        "general.file_type": file_type,
        "n_tensors": len(tensors),
        "type_counts": dict(sorted(counts.items())),
        "tensor_bytes": tbytes,
        "tensor_mib": round(tbytes / 1048576, 4),
        "n_elements": n_el,
        "bpw_tensor_bytes": tbytes * 8 / n_el,
        "bpw_file_bytes": fsize * 8 / n_el,
        "tensors": tensors,
    }


LINE_RE = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]\s+(\S+)\s+- \[([^\]]*)\], type =\s+(\w+), (.*)$")


def parse_log(text: str) -> dict:
    out: dict = {"lines": []}
    for line in text.splitlines():
        m = LINE_RE.match(line)
        if m:
            rest = m.group(6)
            conv = re.search(r"converting to (\w+)", rest)
            out["lines"].append({"name": m.group(3), "from": m.group(5),
                                 "to": conv.group(1) if conv else m.group(5)})
        for key in ("model size", "quant size"):
            if key in line and "MiB" in line:
                out[key.replace(" ", "_")] = line.split(":", 1)[1].strip() if ":" in line else line
        if "required fallback quantization" in line:
            out["fallback"] = line.strip()
    out["warnings"] = [l.strip() for l in text.splitlines() if l.startswith("warning:") or "falling back" in l]
    return out


def dumps(d: dict) -> str:
    """JSON with one line per tensor (and per printout line), to keep the fixtures small."""
    parts = []
    for k, v in d.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            body = ",\n".join("  " + json.dumps(x) for x in v)
            parts.append(f" {json.dumps(k)}: [\n{body}\n ]")
        elif k == "printout":
            inner = []
            for k2, v2 in v.items():
                if isinstance(v2, list) and v2 and isinstance(v2[0], dict):
                    body = ",\n".join("   " + json.dumps(x) for x in v2)
                    inner.append(f"  {json.dumps(k2)}: [\n{body}\n  ]")
                else:
                    inner.append(f"  {json.dumps(k2)}: {json.dumps(v2)}")
            parts.append(f" {json.dumps(k)}: {{\n" + ",\n".join(inner) + "\n }")
        else:
            parts.append(f" {json.dumps(k)}: {json.dumps(v)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main() -> None:
    a = sys.argv[1:]
    path, out = a[0], a[1]
    d = table(path)
    if "--source" in a:
        d["source"] = a[a.index("--source") + 1]
    if "--type" in a:
        d["requested_type"] = a[a.index("--type") + 1]
    if "--log" in a:
        lp = a[a.index("--log") + 1]
        d["quantize_log"] = os.path.basename(lp)
        d["printout"] = parse_log(open(lp, errors="replace").read())
    with open(out, "w") as f:
        f.write(dumps(d))
    print(f"{os.path.basename(path)}: {d['n_tensors']} tensors {d['type_counts']} "
          f"{d['tensor_mib']:.2f} MiB file {d['file_bytes']} bpw {d['bpw_tensor_bytes']:.4f}")


if __name__ == "__main__":
    main()
