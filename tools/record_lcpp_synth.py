"""Record llama.cpp's printouts and exact bytes for the synthetic GGUFs of tools/lcpp_synth.py (issue 23).

    python tools/lcpp_synth.py /tmp/lcpp-synth
    /work/venv-lcpp/bin/python tools/record_lcpp_synth.py runs [NAME]      # printouts + exact bytes
    /work/venv-lcpp/bin/python tools/record_lcpp_synth.py heldback SEED N  # exact bytes of random settings
    /work/venv-lcpp/bin/python tools/record_lcpp_synth.py graph NAME SETTING_TAG  # dump one reserve graph
    /work/venv-lcpp/bin/python tools/record_lcpp_synth.py reparse          # re-parse the saved logs
    /work/venv-lcpp/bin/python tools/record_lcpp_synth.py graphs           # graphs/: node lists at n_ctx 512

Each printout is a subprocess of tools/record_llamacpp.py (``--one load``: the C API, llama.cpp's log at every
level but DEBUG); the exact bytes come from /tmp/lcpp_bytes (tools/lcpp_bytes.cpp, built as
fixtures/llamacpp/README.md says): ``llama_get_memory_breakdown`` per buffer type. Output:
fixtures/llamacpp/synth/ (README there). A research aid, not imported by the package.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import record_llamacpp as rl  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "llamacpp" / "synth"
SYNTH = Path("/tmp/lcpp-synth")
# the synthetic files by held-back seed: each group's held-back settings were drawn (and recorded) before its
# graph template was written
GROUPS = {23: ("qwen2-tiny", "qwen3-tiny", "gemma2-tiny", "phi3-tiny", "lfm2-tiny", "qwen3moe-tiny"),
          24: ("mistral3-tiny", "olmo2-tiny"), 25: ("granitehybrid-tiny",), 26: ("gpt-oss-tiny",),
          27: ("llama-moe-tiny",), 28: ("granitehybrid-scaled-tiny",), 29: ("granite-tiny",),
          30: ("qwen2moe-tiny",), 31: ("smollm3-tiny",), 32: ("olmoe-tiny",), 33: ("starcoder2-tiny",),
          34: ("glm4-tiny",), 35: ("cohere2-tiny",),
          36: ("qwen3-wide", "gemma2-wide", "gpt-oss-wide", "lfm2-wide"),
          37: ("qwen3moe-wide", "glm4-wide", "granite-wide", "smollm3-wide", "mistral3-wide", "llama-moe-wide",
               "granitehybrid-wide", "phi3-wide", "olmo2-wide", "qwen2-wide", "qwen2moe-wide", "starcoder2-wide",
               "cohere2-wide", "olmoe-wide"),
          38: ("lfm2moe-tiny",), 39: ("mamba2-tiny",), 40: ("nemotron_h-tiny", "falcon-h1-tiny")}
NAMES = tuple(n for g in GROUPS.values() for n in g)
BASE = dict(rl.BASE)
# llama_memory_recurrent's size line (src/llama-memory-recurrent.cpp, this version: rs_seq and P added)
RS_RE = re.compile(r"^(\w+): size =\s+([\d.]+) MiB \(\s*(\d+) cells,\s+(\d+) layers,\s+(\d+) seqs\s+(\d+) rs_seq\), "
                   r"R \((\w+)\):\s+([\d.]+) MiB, S \((\w+)\):\s+([\d.]+) MiB, P \((\w+)\):\s+([\d.]+) MiB")


def parse(text: str) -> dict:
    """record_llamacpp.parse, plus the recurrent-state lines (rs_caches)."""
    rec = rl.parse(text)
    rs = []
    for line in text.splitlines():
        m = RS_RE.match(line)
        if m:
            g = m.groups()
            rs.append({"func": g[0], "mib": g[1], "cells": int(g[2]), "layers": int(g[3]), "seqs": int(g[4]),
                       "rs_seq": int(g[5]), "type_r": g[6], "r_mib": g[7], "type_s": g[8], "s_mib": g[9],
                       "type_p": g[10], "p_mib": g[11], "line": line})
    rec["rs_caches"] = rs
    return rec


def grid() -> list[dict]:
    runs = []

    def add(**kw):
        s = dict(BASE, **kw)
        if s not in runs:
            runs.append(s)

    for n_ctx in (512, 4096):
        for fa in ("off", "on"):
            add(n_ctx=n_ctx, fa=fa)
    add(n_ctx=1000, n_batch=2048, n_ubatch=256, fa="on")
    add(n_ctx=4096, n_batch=64, n_ubatch=64, fa="off")
    add(n_ctx=300, fa="off")
    add(type_k="q8_0", type_v="f16", fa="off")
    add(type_k="q8_0", type_v="q8_0", fa="on")
    add(type_k="f32", type_v="f32", fa="on")
    add(n_seq_max=4, kv_unified=False, fa="on", n_ctx=2048)
    add(n_seq_max=2, kv_unified=True, fa="off", n_ctx=2048)
    add(swa_full=True, fa="off")
    add(use_mmap=False, fa="on")
    return runs


def exact(path: str, s: dict, dump: bool = False) -> tuple[int, dict, str, str]:
    cmd = ["/tmp/lcpp_bytes", path, str(s["n_ctx"]), str(s["n_batch"]), str(s["n_ubatch"]),
           str(int(s["fa"] == "on")), s["type_k"], s["type_v"], str(s["n_seq_max"]), str(int(s["kv_unified"])),
           str(int(s["swa_full"])), str(int(s["use_mmap"]))] + (["1"] if dump else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    by = {}
    for line in p.stdout.splitlines():
        m = re.match(r"BYTES (\S+) model=(\d+) context=(\d+) compute=(\d+)", line)
        if m:
            by[m.group(1)] = dict(zip(("model", "context", "compute"), map(int, m.groups()[1:])))
    return p.returncode, by, " ".join(cmd), p.stdout


def cmd_runs(only: str | None) -> None:
    for name in NAMES:
        path = SYNTH / f"{name}.gguf"
        if (only and only != name) or not path.exists():
            continue
        for s in grid():
            t = rl.tag(name, s)
            log = OUT / "logs" / f"{t}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            s2 = dict(s, path=str(path))
            rc, _, _ = rl.run_child("load", s2, log)
            rec = {"model": name, "file": path.name, "settings": s, "rc": rc, "log": f"logs/{t}.log",
                   "command": f"/work/venv-lcpp/bin/python tools/record_llamacpp.py --one load "
                              f"'{json.dumps(s2)}' 2> fixtures/llamacpp/synth/logs/{t}.log"}
            rec.update(parse(log.read_text(errors="replace")))
            erc, by, cmd, _ = exact(str(path), s)
            rec["exact_bytes"] = {"command": cmd, "rc": erc, "by_buffer_type": by}
            (OUT / "runs").mkdir(parents=True, exist_ok=True)
            (OUT / "runs" / f"{t}.json").write_text(json.dumps(rec, indent=1) + "\n")
            print(t, rc, erc, " ".join(f"{b['device']}/{b['kind']}={b['mib']}" for b in rec["buffers"]), flush=True)


def draw(rng: random.Random, names: tuple) -> dict:
    fa = rng.choice(["on", "off"])
    return dict(model=rng.choice(names), n_ctx=rng.choice([64, 200, 700, 1234, 2048, 2500, 6000]),
                n_batch=rng.choice([100, 128, 300, 512, 1024, 4096]),
                n_ubatch=rng.choice([1, 7, 32, 96, 100, 256, 512, 1000]), n_seq_max=rng.choice([1, 1, 2, 3, 5]),
                kv_unified=rng.choice([False, True]), fa=fa,
                type_k=rng.choice(["f16", "q8_0", "q4_0", "bf16", "f32", "q5_1", "iq4_nl"]),
                type_v=rng.choice(["f16", "q8_0", "q5_1", "f32"]) if fa == "on" else rng.choice(["f16", "bf16", "f32"]),
                swa_full=rng.choice([False, True]), use_mmap=rng.choice([True, True, False]))


def cmd_heldback(seed: int, count: int) -> None:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        s = draw(rng, GROUPS[seed])
        path = SYNTH / f"{s['model']}.gguf"
        if not path.exists():
            continue
        rc, by, cmd, _ = exact(str(path), s)
        out.append({"settings": s, "command": cmd, "rc": rc, "by_buffer_type": by})
    (OUT / "heldback").mkdir(parents=True, exist_ok=True)
    (OUT / "heldback" / f"exact_bytes-{seed}.json").write_text(json.dumps({"seed": seed, "runs": out}, indent=1) + "\n")
    print(len(out), "settings")


LINE_RE = re.compile(r"(LEAF|NODE) (\d+) op=(\S+) name=(.*?) type=(\S+) ne=(\S+) .*flags=(\d+) ext=(\d)")


def cmd_graphs() -> None:
    """graphs/<name>-fa<off|on>.json.gz: the reserve graph at n_ctx 512, n_ubatch 512, one sequence, f16 KV: each
    node's op, type, ne and flags (1 input, 2 output, 16 compute) in graph order, and the input leafs (op, type,
    ne) in leaf order."""
    import gzip

    (OUT / "graphs").mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        for fa in ("off", "on"):
            s = dict(BASE, n_ctx=512, n_batch=512, n_ubatch=512, fa=fa)
            _, _, cmd, text = exact(str(SYNTH / f"{name}.gguf"), s, dump=True)
            nodes, leafs = [], []
            for m in map(LINE_RE.match, text.splitlines()):
                if m and m.group(1) == "NODE":
                    nodes.append([m.group(3), m.group(5), [int(x) for x in m.group(6).split(",")], int(m.group(7))])
                elif m and m.group(8) == "0":
                    leafs.append([m.group(3), m.group(5), [int(x) for x in m.group(6).split(",")]])
            rec = {"model": name, "settings": s, "command": cmd + " 1", "input_leafs": leafs, "nodes": nodes}
            (OUT / "graphs" / f"{name}-fa{fa}.json.gz").write_bytes(
                gzip.compress(json.dumps(rec).encode(), mtime=0))
            print(name, fa, len(nodes), "nodes")


def cmd_graph(name: str, t: str) -> None:
    s = next(s for s in grid() if rl.tag(name, s) == t)
    _, _, _, text = exact(str(SYNTH / f"{name}.gguf"), s, dump=True)
    sys.stdout.write(text)


def cmd_reparse() -> None:
    for p in sorted((OUT / "runs").glob("*.json")):
        rec = json.loads(p.read_text())
        rec.update(parse((OUT / rec["log"]).read_text(errors="replace")))
        p.write_text(json.dumps(rec, indent=1) + "\n")


def main() -> None:
    a = sys.argv[1:]
    if a[0] == "reparse":
        cmd_reparse()
    if a[0] == "runs":
        cmd_runs(a[1] if len(a) > 1 else None)
    elif a[0] == "heldback":
        cmd_heldback(int(a[1]), int(a[2]))
    elif a[0] == "graphs":
        cmd_graphs()
    elif a[0] == "graph":
        cmd_graph(a[1], a[2])


if __name__ == "__main__":
    main()
