"""The `inspect` command line: one thin function per command, no logic beyond wiring.

Examples:
    inspect params Qwen/Qwen2.5-1.5B
    inspect params meta-llama/Llama-3.2-1B Qwen/Qwen2.5-1.5B --format md
    inspect config qwen3-0.6b --format json
    inspect memory Qwen/Qwen2.5-7B-Instruct --gpu L4-24GB
    inspect report Qwen/Qwen2.5-1.5B -o qwen.html
"""

from __future__ import annotations

from typing import Annotated

import typer

from inspector.cli.chat import chat
from inspector.cli.memory import memory
from inspector.cli.options import (BatchOpt, ContextOpt, FormatOpt, InspectGroup, ModelsArg, OutOpt,
                                   output_format)
from inspector.cli.report import report
from inspector.cli.run import run
from inspector.cli.tokens import tokens
from inspector.cli.trace import trace
from inspector.cli.verify import verify
from inspector.errors import InspectError


def params(
    models: ModelsArg,
    format: FormatOpt = None,
    output: OutOpt = None,
    context: ContextOpt = 4096,
    batch: BatchOpt = 1,
    totals: Annotated[bool, typer.Option("--totals", help="Only the totals block (one table, several models side by "
                                                         "side).")] = False,
    kv_dtype: Annotated[str, typer.Option("--kv-dtype", metavar="[bf16|fp16|fp32|fp8|int8]",
                                          help="The dtype of the KV-cache estimate.")] = "bf16",
) -> None:
    """Per-layer weight shapes and parameter totals (Tables 1.2 and 1.4 of Implementations of Large Language Models; 2.2 for VLMs).

    Several models are shown side by side. Totals: stored parameters (a tied LM head once),
    the LM head counted separately, embedding / non-embedding, active parameters per token of
    mixture-of-experts models, weight memory per dtype and the KV cache. A model_type without a
    native family is built by transformers on the meta device (pip install "llm-inspector[hf]").

    Example: inspect params meta-llama/Llama-3.2-1B Qwen/Qwen2.5-1.5B --format md
    """
    from inspector.source import account_model
    from inspector.reports.params import params_report
    from inspector.reports.render import emit
    from inspector.units import KV_DTYPE_BYTES

    format = output_format(format, output)
    accs = [account_model(m) for m in models]
    if kv_dtype not in KV_DTYPE_BYTES:
        raise InspectError(f"--kv-dtype {kv_dtype!r}: choose from {', '.join(KV_DTYPE_BYTES)}")
    emit(params_report(accs, context, batch, totals_only=totals, kv_dtype=kv_dtype), format.value, output)


def config(models: ModelsArg, format: FormatOpt = None, output: OutOpt = None) -> None:
    """The configuration table (Table 1.3 of Implementations of Large Language Models; Table 2.1 for VLMs).

    Example: inspect config meta-llama/Llama-3.2-1B Qwen/Qwen2.5-1.5B
    """
    from inspector.source import load_spec
    from inspector.reports.render import emit
    from inspector.reports.params import config_report

    emit(config_report([load_spec(m) for m in models]), output_format(format, output).value, output)


def presets(format: FormatOpt = None, output: OutOpt = None) -> None:
    """List the embedded presets (usable offline) with their aliases, parameter counts and sources."""
    from inspector.inventory.accounting import account
    from inspector.inventory.load import is_native
    from inspector.reports.params import presets_report
    from inspector.reports.render import emit
    from inspector.spec.model import from_hf_config
    from inspector.spec.presets import all_presets

    format = output_format(format, output)
    found = all_presets()
    counts = [account(from_hf_config(dict(p.config), p.hub_id, preprocessor=p.preprocessor)).totals.total_params
              if is_native(p.config) else None for p in found]
    emit(presets_report(found, counts), format.value, output)


app = typer.Typer(
    cls=InspectGroup,
    help="What is inside a transformer LLM or VLM: weights, parameter counts, checkpoints, memory, forward "
         "passes. Also installed as `llm-inspect`; `python -m inspector` runs it too.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"llm-inspector {version('llm-inspector')}")
        except PackageNotFoundError:  # run from a source tree that was not installed
            typer.echo("llm-inspector (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """The options before any command."""


app.command()(params)
app.command()(config)
app.command()(presets)
app.command()(tokens)
app.command()(verify)
app.command()(trace)
app.command()(run)
app.command()(memory)
app.command()(report)
app.command()(chat)


def main() -> None:
    from inspector.runtime.prepare import sanitize_thread_env

    sanitize_thread_env()
    app()


__all__ = ["app", "main", "InspectError"]
