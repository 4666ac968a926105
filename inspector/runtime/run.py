"""`inspect run`: a timed, layer-by-layer prefill of the reference model, then generation.

`run_models` runs a `RunPlan` (inspector.generations) model by model and returns one `ModelRun`
each. Prompts are encoded and checked against the model (`generate.encode_prompt`) before any
forward pass, and before the weights are even loaded. `time_prefill` runs the first prompt once
under a timing Recorder (CUDA events on a GPU, wall clock on the CPU). `generate_all` runs every
temperature x trial with Appendix C sampling, the prompts as left-padded batches of at most
PROMPT_BATCH rows (inspector.runtime.batch, inspector.limits), judges outputs against expected answers (inspector.runtime.experiment),
and calls `on_token` with each new piece of the first prompt's text, so the CLI can stream it.
`roofline_beside` puts the first batch's prefill and decode step beside this machine's roofline of them
(inspector.compute.predict, the machine measured once per process). No printing here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import torch

from inspector.errors import InspectError
from inspector.generations import Generation, ModelRun, RunPlan
from inspector.limits import PROMPT_BATCH
from inspector.runtime.generate import encode_prompt
from inspector.runtime.prepare import DEFAULT_MODEL, ModelChoice
from inspector.runtime.sampling import SamplingSettings
from inspector.runtime.trace import Recorder
from inspector.steps import Record
from inspector.units import plural


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


def run_models(plan: RunPlan, choice: ModelChoice, on_token: Callable[[str], None] | None = None,
               predict: bool = True) -> list[ModelRun]:
    """What `inspect run` does without beams: every model of the plan in turn (one in memory at a time),
    its prompts checked before its weights load, the first prompt's prefill timed (one model, no prompt
    set: a sweep's report is its table), then `generate_all`, then (with `predict`) the first batch's
    timings beside this machine's roofline (`roofline_beside`). With `on_token`, the prompt and then each
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
        timed: list[tuple[int, int, Any]] = []
        with RoutingCounter(rt.model) as routing:  # MoE models: how often each expert was chosen
            run.generations = generate_all(rt, plan, on_token, encoded=encoded, batches=timed)
        run.routing = routing.layers()
        if predict:
            run.roofline = roofline_beside(rt, name or DEFAULT_MODEL, timed)
        runs.append(run)
        del rt  # one model in memory at a time
    return runs


def generate_all(runtime, plan: RunPlan, on_token: Callable[[str], None] | None = None,
                 encoded: list[list[int]] | None = None, batch_size: int = PROMPT_BATCH,
                 batches: list[tuple[int, int, Any]] | None = None) -> list[Generation]:
    """Every temperature x trial (seed + trial - 1) of the plan with its prompts as left-padded batches
    of at most `batch_size` rows (PROMPT_BATCH: a prompt file of 20,000 lines is not one 10 GB batch).
    The prompts go in chunks of at most `batch_size`; as many (temperature, trial) runs of a chunk as
    fit in `batch_size` rows share one batch, each run's rows sampled with its own generator of its
    seed (batch.RowGroup): the weights are read once per step for all of them, and every run draws
    what it would draw in a batch of its own. Greedy results do not depend on the batching.

    Generations are ordered by prompt, temperature, trial. Timings are the batch's: the prefill rate
    counts every row's real tokens, the decode rate every row's new tokens after the first. `encoded`
    are the prompts' ids when already encoded and checked. `batches`, when given, gets (chunk index,
    padded width, BatchResult) of every batch run. `on_token` gets each new piece of the first
    prompt's text in the first run.
    """
    from inspector.runtime.batch import Batch, RowGroup, encode_prompts, generate_batch

    tok, model, prompts = runtime.tokenizer, runtime.model, list(plan.prompts)
    eos = tuple(tok.eos_ids) or runtime.spec.text.eos_token_ids
    rows = encoded or encode_prompts(tok, runtime.spec.text, prompts, plan.chat, plan.max_new_tokens)[1]
    size = max(1, batch_size)
    chunks = [(prompts[i:i + size], rows[i:i + size]) for i in range(0, len(rows), size)]
    runs = [_Meta(runtime.spec.name, temperature, trial, plan.seed + trial - 1)
            for temperature in plan.temperatures for trial in range(1, plan.trials + 1)]
    out = []
    for n, (texts, chunk) in enumerate(chunks):
        together = max(1, size // len(chunk))  # runs of this chunk in one batch
        for first in range(0, len(runs), together):
            metas = runs[first:first + together]
            groups = [RowGroup(SamplingSettings(temperature=m.temperature, top_k=plan.top_k, top_p=plan.top_p,
                                                seed=m.seed, min_p=plan.min_p), len(chunk)) for m in metas]
            stream = _streamer(tok, on_token) if on_token and n == 0 and first == 0 else None
            batch = Batch(chunk * len(metas), eos[0] if eos else 0)
            res = generate_batch(model, batch, plan.max_new_tokens, eos, on_step=stream, groups=groups)
            if batches is not None:
                batches.append((n, batch.width, res))
            for i, meta in enumerate(metas):
                out += _generations(tok, meta, texts, batch.rows, res, plan.expect, i * len(chunk))
    order = {p: i for i, p in enumerate(prompts)}
    return sorted(out, key=lambda g: (order[g.prompt], plan.temperatures.index(g.temperature), g.trial))


def first_batch(batches: list[tuple[int, int, Any]]) -> tuple[tuple[int, int, int], float, float | None, int]:
    """The first batch's timings over its temperatures and trials: ((rows, padded width, decode steps),
    the fastest prefill in seconds, the fastest decode step in seconds (None: no decode step ran) and how
    many runs of it there were. The decode steps are those of the run with the fastest step."""
    runs = [(width, res) for n, width, res in batches if n == 0]
    width, first = runs[0]
    prefill_s = min(res.prefill_s for _, res in runs)
    stepped = [res for _, res in runs if res.steps > 0]
    best = min(stepped, key=lambda res: res.decode_s / res.steps, default=None)
    step_s = best.decode_s / best.steps if best is not None else None
    return (len(first.tokens), width, best.steps if best is not None else 0), prefill_s, step_s, len(runs)


def roofline_beside(runtime, model: str, batches: list[tuple[int, int, Any]]) -> dict[str, Any]:
    """The first batch's prefill and decode step, measured beside their roofline on this machine (measured
    once per process in the dtype the model runs in; inspector.compute.predict). A model the FLOPs ledger
    cannot count, or a dtype with no matmul measurement, gives {"status": "no prediction: why"}."""
    from inspector.compute.hardware import dtype_key
    from inspector.compute.machine import measure_device
    from inspector.compute.predict import STATUS, StepShape, machine_json, predict
    from inspector.source import account_model

    (rows, width, steps), prefill_s, step_s, count = first_batch(batches)
    shape = StepShape(rows, width, steps)
    try:
        acc = account_model(model)
        roof = measure_device(runtime.device.type, dtype_key(runtime.dtype_name))
        pred = predict(acc, shape, roof)
    except InspectError as exc:
        return {"status": f"no prediction: {exc}"}
    sync = (" with a cuda synchronize" if runtime.device.type == "cuda"
            else f"; {plural(torch.get_num_threads(), 'CPU thread')} (the machine's copy and matmul ran on as many)")
    return {"status": STATUS, "machine": machine_json(roof),
            "measured": f"the first batch ({rows} × {width} tokens), "
                        f"{'one run' if count == 1 else f'the fastest of its {count} runs (temperatures × trials)'}"
                        f"; wall clock, perf_counter{sync}",
            "prefill": _beside(pred, "prefill", "prefill_ms", prefill_s, rows * width,
                               {"batch": rows, "tokens": width}),
            "decode": _beside(pred, "decode", "decode_ms_per_token", step_s, rows,
                              {"batch": rows, "context": pred["decode_context"], "steps": steps})}


def _beside(pred: dict[str, Any], step: str, key: str, seconds: float | None, tokens: int,
            shape: dict[str, int]) -> dict[str, Any]:
    """One step's measured and predicted figures: ms, tokens/s, the bound, measured/predicted and its
    inverse, the share of the roofline achieved (None where nothing was measured)."""
    predicted_ms = pred[key]
    measured_ms = seconds * 1e3 if seconds is not None else None
    return {**shape, "flops": pred[f"{step}_flops"], "bytes": pred[f"{step}_bytes"],
            "measured_ms": measured_ms, "predicted_ms": predicted_ms, "bound": pred[f"{step}_bound"],
            "measured_tokens_per_s": tokens / seconds if seconds else None,
            "predicted_tokens_per_s": tokens / (predicted_ms / 1e3) if predicted_ms else None,
            "measured_over_predicted": measured_ms / predicted_ms if measured_ms and predicted_ms else None,
            "of_roofline": predicted_ms / measured_ms if measured_ms and predicted_ms else None}


@dataclass(frozen=True)
class _Meta:
    """What every generation of one temperature and trial (one run) shares."""

    model: str
    temperature: float
    trial: int
    seed: int


def _generations(tok, meta: _Meta, prompts: list[str], batch_rows: list[list[int]], res,
                 expect: Mapping[str, tuple[str, ...] | None], offset: int = 0) -> list[Generation]:
    """One generation per prompt of one run (`meta`) whose rows start at `offset` in a batch (`batch_rows`,
    its id rows) and its result `res`; timings and the batch size are the whole batch's."""
    from inspector.runtime.experiment import is_correct

    out = []
    for i, prompt in enumerate(prompts):
        ids, tokens, stop = batch_rows[offset + i], res.tokens[offset + i], res.stops[offset + i]
        text = tok.decode(tokens, skip_special_tokens=True)
        out.append(Generation(
            meta.model, meta.temperature, meta.trial, meta.seed, prompt=prompt, text=text, token_ids=tuple(tokens),
            tokens=len(tokens), stop=stop, stopped_at_once=stop == "eos" and len(tokens) == 1,
            batch=len(batch_rows), prompt_tokens=len(ids), prefill_s=res.prefill_s, decode_s=res.decode_s,
            prefill_tokens_per_s=sum(map(len, batch_rows)) / res.prefill_s if res.prefill_s else 0.0,
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
