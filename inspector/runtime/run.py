"""`inspect run`: a timed, layer-by-layer prefill of the reference model, then generation.

Prompts are encoded and checked against the model (`generate.encode_prompt`) before any forward
pass; the CLI does it before the weights are even loaded. `time_prefill` runs the first prompt once
under a timing Recorder (CUDA events on a GPU, wall clock on the CPU). `generate_all` runs every
temperature x trial with Appendix C sampling, the prompts as left-padded batches of at most
PROMPT_BATCH rows (inspector.runtime.batch, inspector.limits), judges outputs against expected answers (inspector.runtime.experiment),
and calls `on_token` with each new piece of the first prompt's text, so the CLI can stream it. No
printing here.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from inspector.limits import PROMPT_BATCH
from inspector.runtime.generate import encode_prompt
from inspector.runtime.sampling import SamplingSettings
from inspector.runtime.trace import Recorder
from inspector.steps import Record


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
                 on_token: Callable[[dict[str, Any], str], None] | None = None, min_p: float | None = None,
                 expect: Mapping[str, tuple[str, ...] | None] | None = None,
                 encoded: list[list[int]] | None = None, batch_size: int = PROMPT_BATCH) -> list[dict[str, Any]]:
    """Every temperature x trial (seed + trial - 1) with the prompts as left-padded batches of at most
    `batch_size` rows (PROMPT_BATCH: a prompt file of 20,000 lines is not one 10 GB batch). Greedy
    results do not depend on the batching; a sampled batch draws from its own generator of the seed.

    Records are ordered by prompt, temperature, trial. Timings are the batch's: `prefill_tokens_per_s`
    counts every row's real tokens, `decode_tokens_per_s` every row's new tokens after the first.
    `expect` (prompt -> accepted answers) adds `correct` (True, False, or None when not judged);
    `encoded` are the prompts' ids when already encoded and checked.
    """
    from inspector.runtime.batch import Batch, encode_prompts, generate_batch

    tok, model = runtime.tokenizer, runtime.model
    eos = tuple(tok.eos_ids) or runtime.spec.text.eos_token_ids
    rows = encoded or encode_prompts(tok, runtime.spec.text, prompts, chat, max_new_tokens)[1]
    size = max(1, batch_size)
    chunks = [(prompts[i:i + size], rows[i:i + size]) for i in range(0, len(rows), size)]
    out = []
    for temperature in temperatures:
        for trial in range(1, trials + 1):
            settings = SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed + trial - 1,
                                        min_p=min_p)
            meta = {"model": runtime.spec.name, "temperature": temperature, "trial": trial, "seed": seed + trial - 1}
            for n, (texts, chunk) in enumerate(chunks):
                stream = _streamer(tok, {**meta, "prompt": prompts[0]}, on_token) if on_token and n == 0 else None
                res = generate_batch(model, Batch(chunk, eos[0] if eos else 0), max_new_tokens, eos, settings, stream)
                out += _records(tok, meta, texts, chunk, res, expect)
    order = {p: i for i, p in enumerate(prompts)}
    return sorted(out, key=lambda g: (order[g["prompt"]], temperatures.index(g["temperature"]), g["trial"]))


def _records(tok, meta: dict[str, Any], prompts: list[str], chunk: list[list[int]], res,
             expect) -> list[dict[str, Any]]:
    """One record per row of a batch (`chunk`, the id rows of `prompts`) and its result `res`."""
    from inspector.runtime.experiment import is_correct

    out = []
    for prompt, ids, tokens, stop in zip(prompts, chunk, res.tokens, res.stops):
        text = tok.decode(tokens, skip_special_tokens=True)
        out.append({
            **meta, "prompt": prompt, "text": text, "token_ids": list(tokens), "tokens": len(tokens),
            "stop": stop, "stopped_at_once": stop == "eos" and len(tokens) == 1, "batch": len(chunk),
            "prompt_tokens": len(ids), "prefill_s": res.prefill_s, "decode_s": res.decode_s,
            "prefill_tokens_per_s": sum(map(len, chunk)) / res.prefill_s if res.prefill_s else 0.0,
            "decode_tokens_per_s": res.decode_tokens_per_s,
            "correct": is_correct(text, (expect or {}).get(prompt), prompt),
        })
    return out


def _streamer(tok, record: dict[str, Any], on_token: Callable[[dict[str, Any], str], None]):
    """An on_step callback that passes the first row's new text to on_token as it grows."""
    tokens: list[int] = []
    state = {"text": ""}

    def on_step(chosen: list[int | None]) -> None:
        if chosen[0] is None:
            return
        tokens.append(chosen[0])
        now = tok.decode(tokens, skip_special_tokens=True)
        if now.startswith(state["text"]):
            on_token(record, now[len(state["text"]):])
        state["text"] = now

    return on_step
