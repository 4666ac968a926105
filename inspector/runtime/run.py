"""`inspect run`: a timed, layer-by-layer prefill of the reference model, then generation.

Prompts are encoded and checked against the model by `generate.encode_prompt` before any forward
pass (the CLI does it before the weights are even loaded). `time_prefill` runs the first prompt once under a timing
Recorder (CUDA events on a GPU, wall clock on the CPU). `generate_all` runs every prompt x
temperature x trial with Appendix C sampling and calls `on_token` with each new piece of text, so
the CLI can stream it. No printing here.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from inspector.runtime.generate import encode_prompt, generate
from inspector.runtime.sampling import SamplingSettings
from inspector.runtime.trace import Record, Recorder


def prompt_ids(runtime, prompt: str, chat: bool, new_tokens: int = 0) -> list[int]:
    return encode_prompt(runtime.tokenizer, runtime.spec.text, prompt, chat, new_tokens)[1]


def time_prefill(runtime, ids: list[int], warmup: bool = True) -> tuple[list[Record], str]:
    model = runtime.model
    x = torch.tensor([ids], device=runtime.device)  # (b, n)
    with torch.inference_mode():
        if warmup:
            model(x, model.new_cache())
        with Recorder(model, timed=True) as rec:
            model(x, model.new_cache())
    method = "CUDA events" if runtime.device.type == "cuda" else "wall clock, perf_counter"
    return rec.records, method


def generate_all(runtime, prompts: list[str], temperatures: list[float], trials: int, max_new_tokens: int,
                 top_k: int | None, top_p: float | None, seed: int, chat: bool,
                 on_token: Callable[[dict[str, Any], str], None] | None = None,
                 encoded: list[list[int]] | None = None) -> list[dict[str, Any]]:
    """Every prompt x temperature x trial; `encoded` are the prompts' ids when already encoded."""
    tok = runtime.tokenizer
    eos = tuple(tok.eos_ids) or runtime.spec.text.eos_token_ids
    out = []
    for k, prompt in enumerate(prompts):
        ids = encoded[k] if encoded is not None else prompt_ids(runtime, prompt, chat, max_new_tokens)
        for temperature in temperatures:
            for trial in range(trials):
                settings = SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed + trial)
                gen = generate(runtime.model, ids, max_new_tokens, eos, settings)
                record = {"prompt": prompt, "temperature": temperature, "trial": trial, "seed": seed + trial}
                text = ""
                for _ in gen:
                    new = tok.decode(gen.tokens, skip_special_tokens=True)
                    if on_token is not None and new.startswith(text):
                        on_token(record, new[len(text):])
                    text = new
                record.update({
                    "text": text, "token_ids": list(gen.tokens), "tokens": len(gen.tokens), "stop": gen.stop_reason,
                    "prefill_s": gen.prefill_s, "decode_s": gen.decode_s,
                    "prefill_tokens_per_s": len(ids) / gen.prefill_s if gen.prefill_s else 0.0,
                    "decode_tokens_per_s": gen.decode_tokens_per_s,
                })
                out.append(record)
    return out
