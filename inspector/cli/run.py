"""`inspect run`: the reference model generating, timed, with batches, sweeps and beam search.

Several prompts run as one batch; sweeps go over models, temperatures and trials with expected answers.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from inspector.cli.model_options import (ChatOpt, DeviceOpt, DtypeOpt, MinPOpt, SeedOpt, TempOpt, ThreadsOpt,
                                         TokOpt, TopKOpt, TopPOpt, WeightsOpt)
from inspector.cli.options import (Format, FormatOpt, OutOpt, command, given_options, output_format,
                                   refuse_options)
from inspector.cli.trace import parse_temperatures
from inspector.errors import InspectError, visible, warn

ModelsOpt = Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Preset, checkpoint directory, .gguf "
                                                        "file or Hub id; repeat for a sweep over several models.",
                                                        show_default=False)]


def parse_early_stopping(text: str) -> bool | str:
    value = {"true": True, "false": False, "never": "never"}.get(text.strip().lower())
    if value is None:
        raise InspectError(f"--early-stopping {text!r}: expected true, false or never")
    return value


PromptsArg = Annotated[Optional[list[str]], typer.Argument(help="One or more prompts (one batch).",
                                                          show_default=False, metavar="[PROMPT]...")]


@command
def run(
    ctx: typer.Context,
    prompts: PromptsArg = None,
    model: ModelsOpt = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    tokenizer: TokOpt = None,
    chat: ChatOpt = False,
    prompt_set: Annotated[Optional[str], typer.Option("--prompts", help="A named prompt set (qwen-temperature-report: "
                                                      "the Week 7 Report's experiment) or a file, one prompt per line.")] = None,
    expect: Annotated[Optional[str], typer.Option("--expect", help="JSON file: prompt -> list of accepted answers "
                                                  "(or null); marks each output correct or not.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", "-n", help="Tokens to generate "
                                                          "(default 32, or the prompt set's).", min=1)] = None,
    temperature: TempOpt = 0.0,
    temperatures: Annotated[Optional[str], typer.Option("--temperatures", help="Comma-separated sweep, e.g. "
                                                        "0,0.6,1,1.5; overrides --temperature.")] = None,
    trials: Annotated[Optional[int], typer.Option("--trials", help="Generations per temperature (seed + trial - 1); "
                                                  "default 1, or the prompt set's.", min=1)] = None,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    min_p: MinPOpt = None,
    seed: SeedOpt = 0,
    num_beams: Annotated[Optional[int], typer.Option("--num-beams", help="Beam search with K beams (one prompt) "
                                                     "instead of sampling.")] = None,
    length_penalty: Annotated[float, typer.Option("--length-penalty", help="Beam score = sum log p / "
                                                  "length ** this.")] = 1.0,
    early_stopping: Annotated[str, typer.Option("--early-stopping", help="Beam search stops: true (K finished), "
                                                "false (no live beam can win) or never.")] = "false",
    threads: ThreadsOpt = None,
    format: FormatOpt = None,
    output: OutOpt = None,
) -> None:
    """Run the reference model (cuda when available): a timed layer-by-layer prefill, then generation.

    Streams the text, reports prefill and decode tokens/s and which layers dominate the time.
    Several prompts run as one left-padded batch. Sampling follows Appendix C: temperature, then
    top-k, then top-p, then min-p.

    Examples:
      inspect run "The capital of France is" -m SmolLM2-135M-Instruct.Q4_1.gguf
      inspect run --prompts qwen-temperature-report -m ./Qwen2.5-0.5B -m ./Qwen3-0.6B -f md
      inspect run "The capital of France is" -m SmolLM2-135M-Instruct.Q4_1.gguf --num-beams 4
    """
    from inspector.runtime.prepare import use_threads

    format = output_format(format, output)
    stopping = parse_early_stopping(early_stopping)
    _check_mode(ctx, num_beams is not None, temperatures, temperature)
    plan = _plan(prompts, model, prompt_set, expect, max_new_tokens, temperature, temperatures, trials)
    n_threads = use_threads(threads)
    if num_beams is not None:
        if len(plan["texts"]) != 1 or len(plan["models"]) != 1:
            raise InspectError("--num-beams runs one prompt on one model")
        _beams(plan["models"][0], plan["texts"][0], weights, device, dtype, tokenizer, chat, plan["n"], num_beams,
               length_penalty, stopping, format, output)
        return
    _generate(plan["models"], plan["texts"], weights, device, dtype, tokenizer, chat, plan["n"], plan["temps"],
              plan["trials"], top_k, top_p, min_p, seed, plan["answers"], n_threads, plan["set"], format, output)


def _check_mode(ctx: typer.Context, beams: bool, temperatures: str | None, temperature: float) -> None:
    """The options of the mode not chosen (sampling or beam search) refused; a sweep over a single
    temperature said once."""
    if beams:
        refuse_options(ctx, SAMPLING_ONLY, "to beam search (--num-beams)")
    else:
        refuse_options(ctx, BEAMS_ONLY, "without --num-beams")
    if temperatures is not None and "temperature" in given_options(ctx):
        warn(f"--temperatures {temperatures} overrides --temperature {temperature}")


# Options of one mode: sampling (the default) or beam search (--num-beams); the other mode's are refused.
SAMPLING_ONLY = ("temperature", "temperatures", "trials", "top_k", "top_p", "min_p", "seed", "expect")
BEAMS_ONLY = ("length_penalty", "early_stopping")


def _plan(prompts, model, prompt_set, expect, max_new_tokens, temperature, temperatures, trials) -> dict:
    """Prompts, models, temperatures, trials, length and expected answers: the options, else the
    prompt set's, else one of each."""
    from inspector.runtime.batch import check_prompts
    from inspector.runtime.experiment import PromptSet, load_expect, load_prompts

    chosen = load_prompts(prompt_set) if prompt_set else PromptSet("", "", (), {})
    texts = [*chosen.prompts, *(prompts or [])]
    if not texts:
        raise InspectError("give a prompt, or --prompts NAME|FILE")
    check_prompts(texts)
    return {
        "texts": texts, "set": chosen.name,
        "models": list(model or chosen.models or [None]),
        "temps": parse_temperatures(temperatures if temperatures is not None  # each checked before any work
                                    else ",".join(map(repr, chosen.temperatures if prompt_set else (temperature,)))),
        "n": max_new_tokens or (chosen.max_new_tokens if prompt_set else 32),
        "trials": trials or (chosen.trials if prompt_set else 1),
        "answers": {**chosen.expect, **(load_expect(expect, texts) if expect else {})},
    }


def _generate(models, texts, weights, device, dtype, tokenizer, chat, n, temps, trials, top_k, top_p, min_p, seed,
              answers, n_threads, set_name, format, output) -> None:
    from inspector.reports.render import emit
    from inspector.reports.run import ModelRun, run_report
    from inspector.runtime.prepare import prepare
    from inspector.runtime.routing import RoutingCounter
    from inspector.runtime.batch import encode_prompts
    from inspector.runtime.run import generate_all, time_prefill

    if weights is not None and len(models) > 1:
        raise InspectError("--weights goes with one model; give each model as a checkpoint directory or .gguf")
    streaming = (format == Format.table and output is None and len(texts) * len(temps) * trials * len(models) == 1)

    def on_token(record, piece: str) -> None:
        sys.stdout.write(visible(piece, tabs=True))  # no escape sequence reaches the terminal
        sys.stdout.flush()

    runs, eos_text = [], {}
    for name in models:
        encoded: list[list[int]] = []

        def check(spec, tok) -> None:  # before the weights load: every prompt fits the model
            encoded[:] = encode_prompts(tok, spec.text, texts, chat, n)[1]

        rt = prepare(name, weights, device, dtype, tokenizer, need_weights=True, before_model=check)
        run = ModelRun(rt.spec.name, str(rt.device), rt.dtype_name, n_threads if rt.device.type == "cpu" else None)
        if len(models) == 1 and not set_name:  # a sweep's report is its table, not one prefill's timing
            run.prompt_ids = encoded[0]
            run.records, run.timing_method = time_prefill(rt, run.prompt_ids)
        if streaming:
            sys.stdout.write(visible(texts[0], tabs=True))
        with RoutingCounter(rt.model) as routing:  # MoE models: how often each expert was chosen
            run.generations = generate_all(rt, texts, temps, trials, n, top_k, top_p, seed, chat,
                                           on_token if streaming else None, min_p=min_p, expect=answers,
                                           encoded=encoded)
        run.routing = routing.layers()
        if streaming:
            sys.stdout.write("\n\n")
        eos_text[rt.spec.name] = rt.tokenizer.eos_token or ""
        runs.append(run)
        del rt  # one model in memory at a time
    emit(run_report(runs, eos_text, set_name), format.value, output)


def _beams(name, text, weights, device, dtype, tokenizer, chat, n, num_beams, length_penalty, early_stopping,
           format, output) -> None:
    from inspector.reports.render import emit
    from inspector.reports.run import beam_report
    from inspector.runtime.batch import encode_prompts
    from inspector.runtime.beam import beam_search, check_beams
    from inspector.runtime.prepare import prepare

    check_beams(num_beams)
    encoded: list[list[int]] = []

    def check(spec, tok) -> None:  # before the weights load
        encoded[:] = encode_prompts(tok, spec.text, [text], chat, n)[1]

    rt = prepare(name, weights, device, dtype, tokenizer, need_weights=True, before_model=check)
    ids = encoded[0]
    eos = tuple(rt.tokenizer.eos_ids) or rt.spec.text.eos_token_ids
    result = beam_search(rt.model, ids, num_beams, n, eos, length_penalty, early_stopping)
    emit(beam_report(rt.spec.name, text, result, rt.tokenizer, num_beams, length_penalty, early_stopping),
         format.value, output)
