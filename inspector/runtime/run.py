"""`inspect run`: a timed, layer-by-layer prefill of the reference model, then generation.

`run_models` runs a `RunPlan` (inspector.generations) model by model and returns one `ModelRun`
each. Prompts are encoded and checked against the model (`generate.encode_prompt`) before any
forward pass, and before the weights are even loaded. `time_prefill` runs the first prompt once
under a timing Recorder (CUDA events on a GPU, wall clock on the CPU). `generate_all` runs every
temperature x trial with Appendix C sampling, the prompts as left-padded batches of at most
PROMPT_BATCH rows (inspector.runtime.batch, inspector.limits), judges outputs against expected answers (inspector.runtime.experiment),
and calls `on_token` with each new piece of the first prompt's text, so the CLI can stream it. No
printing here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping

import torch

from inspector.errors import InspectError
from inspector.generations import Generation, ModelRun, RunPlan
from inspector.limits import PROMPT_BATCH
from inspector.runtime.generate import encode_prompt
from inspector.runtime.prepare import ModelChoice
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


def run_models(plan: RunPlan, choice: ModelChoice, on_token: Callable[[str], None] | None = None) -> list[ModelRun]:
    """What `inspect run` does without beams: every model of the plan in turn (one in memory at a time),
    its prompts checked before its weights load, the first prompt's prefill timed (one model, no prompt
    set: a sweep's report is its table), then `generate_all`. With `on_token`, the prompt and then each
    new piece of text go to it as they come (one generation only)."""
    from inspector.runtime.batch import encode_prompts
    from inspector.runtime.prepare import load_runtime
    from inspector.runtime.threads import use_threads
    from inspector.runtime.routing import RoutingCounter

    threads = use_threads(choice.threads)
    if choice.weights is not None and len(plan.models) > 1:
        raise InspectError("--weights goes with one model; give each model as a checkpoint directory or GGUF file")
    runs = []
    for name in plan.models:
        encoded: list[list[int]] = []

        def check(spec, tok) -> None:  # before the weights load: every prompt fits the model
            encoded[:] = encode_prompts(tok, spec.text, plan.prompts, plan.chat, plan.max_new_tokens)[1]

        rt = load_runtime(replace(choice, model=name), need_weights=True, before_model=check)
        run = ModelRun(rt.spec.name, str(rt.device), rt.dtype_name, threads if rt.device.type == "cpu" else None,
                       rt.tokenizer.eos_token or "")
        if len(plan.models) == 1 and not plan.prompt_set:
            run.prompt_ids = encoded[0]
            run.records, run.timing_method = time_prefill(rt, run.prompt_ids)
        if on_token is not None:
            on_token(plan.prompts[0])
        with RoutingCounter(rt.model) as routing:  # MoE models: how often each expert was chosen
            run.generations = generate_all(rt, plan, on_token, encoded=encoded)
        run.routing = routing.layers()
        runs.append(run)
        del rt  # one model in memory at a time
    return runs


def generate_all(runtime, plan: RunPlan, on_token: Callable[[str], None] | None = None,
                 encoded: list[list[int]] | None = None, batch_size: int = PROMPT_BATCH) -> list[Generation]:
    """Every temperature x trial (seed + trial - 1) of the plan with its prompts as left-padded batches
    of at most `batch_size` rows (PROMPT_BATCH: a prompt file of 20,000 lines is not one 10 GB batch).
    Greedy results do not depend on the batching; a sampled batch draws from its own generator of the
    seed. `on_token` gets each new piece of the first prompt's text.

    Generations are ordered by prompt, temperature, trial. Timings are the batch's: the prefill rate
    counts every row's real tokens, the decode rate every row's new tokens after the first. `encoded`
    are the prompts' ids when already encoded and checked.
    """
    from inspector.runtime.batch import Batch, encode_prompts, generate_batch

    tok, model, prompts = runtime.tokenizer, runtime.model, list(plan.prompts)
    eos = tuple(tok.eos_ids) or runtime.spec.text.eos_token_ids
    rows = encoded or encode_prompts(tok, runtime.spec.text, prompts, plan.chat, plan.max_new_tokens)[1]
    size = max(1, batch_size)
    chunks = [(prompts[i:i + size], rows[i:i + size]) for i in range(0, len(rows), size)]
    out = []
    for temperature in plan.temperatures:
        for trial in range(1, plan.trials + 1):
            seed = plan.seed + trial - 1
            settings = SamplingSettings(temperature=temperature, top_k=plan.top_k, top_p=plan.top_p, seed=seed,
                                        min_p=plan.min_p)
            meta = _Meta(runtime.spec.name, temperature, trial, seed)
            for n, (texts, chunk) in enumerate(chunks):
                stream = _streamer(tok, on_token) if on_token and n == 0 else None
                res = generate_batch(model, Batch(chunk, eos[0] if eos else 0), plan.max_new_tokens, eos, settings,
                                     stream)
                out += _generations(tok, meta, texts, chunk, res, plan.expect)
    order = {p: i for i, p in enumerate(prompts)}
    return sorted(out, key=lambda g: (order[g.prompt], plan.temperatures.index(g.temperature), g.trial))


@dataclass(frozen=True)
class _Meta:
    """What every generation of one temperature and trial shares."""

    model: str
    temperature: float
    trial: int
    seed: int


def _generations(tok, meta: _Meta, prompts: list[str], chunk: list[list[int]], res,
                 expect: Mapping[str, tuple[str, ...] | None]) -> list[Generation]:
    """One generation per row of a batch (`chunk`, the id rows of `prompts`) and its result `res`."""
    from inspector.runtime.experiment import is_correct

    out = []
    for prompt, ids, tokens, stop in zip(prompts, chunk, res.tokens, res.stops):
        text = tok.decode(tokens, skip_special_tokens=True)
        out.append(Generation(
            meta.model, meta.temperature, meta.trial, meta.seed, prompt=prompt, text=text, token_ids=tuple(tokens),
            tokens=len(tokens), stop=stop, stopped_at_once=stop == "eos" and len(tokens) == 1, batch=len(chunk),
            prompt_tokens=len(ids), prefill_s=res.prefill_s, decode_s=res.decode_s,
            prefill_tokens_per_s=sum(map(len, chunk)) / res.prefill_s if res.prefill_s else 0.0,
            decode_tokens_per_s=res.decode_tokens_per_s, correct=is_correct(text, expect.get(prompt), prompt)))
    return out


def _streamer(tok, on_token: Callable[[str], None]):
    """An on_step callback that passes the first row's new text to on_token as it grows."""
    tokens: list[int] = []
    shown = [""]

    def on_step(chosen: list[int | None]) -> None:
        if chosen[0] is None:
            return
        tokens.append(chosen[0])
        now = tok.decode(tokens, skip_special_tokens=True)
        if now.startswith(shown[0]):
            on_token(now[len(shown[0]):])
        shown[0] = now

    return on_step
