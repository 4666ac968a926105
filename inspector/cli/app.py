"""The `inspect` command line: the command group, which imports a command's module only when that command runs.

Examples:
    inspect params Qwen/Qwen2.5-1.5B
    inspect params meta-llama/Llama-3.2-1B Qwen/Qwen2.5-1.5B --format md
    inspect config qwen3-0.6b --format json
    inspect memory Qwen/Qwen2.5-7B-Instruct --gpu L4-24GB
    inspect flops llama-3.1-8b --seq-len 128 --gpu H100-80GB
    inspect report Qwen/Qwen2.5-1.5B -o qwen.html
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, MutableMapping
from typing import Annotated, Optional

import typer
import typer.main
from typer.models import CommandInfo, Default

from inspector.cli.adapters import AdapterOpt
from inspector.cli.coercion import plain_coercion
from inspector.cli.options import (BatchOpt, ContextOpt, FormatOpt, InspectGroup, ModelsArg, OutOpt,
                                   command, finite_numbers, help_metavars, output_format, plain_help)
from inspector.errors import InspectError

# Every command, in the order `inspect --help` lists them: name -> (module, function). A command's
# module is imported when the command runs or a help page shows it, so `inspect params` imports
# neither the trace nor the memory commands (nor what they import).
COMMANDS = {
    "params": ("inspector.cli.app", "params"),
    "config": ("inspector.cli.app", "config"),
    "presets": ("inspector.cli.app", "presets"),
    "tokens": ("inspector.cli.tokens", "tokens"),
    "verify": ("inspector.cli.verify", "verify"),
    "diff": ("inspector.cli.diff", "diff"),
    "trace": ("inspector.cli.trace", "trace"),
    "run": ("inspector.cli.run", "run"),
    "memory": ("inspector.cli.memory", "memory"),
    "flops": ("inspector.cli.flops", "flops"),
    "bench": ("inspector.cli.bench", "bench"),
    "quant": ("inspector.cli.quant", "quant"),
    "explain": ("inspector.cli.explain", "explain"),
    "report": ("inspector.cli.report", "report"),
    "chat": ("inspector.cli.chat", "chat"),
}


@command
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
    flops: Annotated[bool, typer.Option("--flops", help="A FLOPs column: each row's FLOPs for a prefill of --seq-len "
                                                        "tokens × --batch, as computed (as `inspect flops`).")] = False,
    seq_len: Annotated[Optional[int], typer.Option("--seq-len", help="Prompt tokens N of the --flops prefill "
                                                   "[default: 2048, as inspect flops].", min=1, max=2**31,
                                                   show_default=False)] = None,
    adapter: AdapterOpt = None,
) -> None:
    """Per-layer weight shapes and parameter totals (Tables 1.2 and 1.4 of Implementations of Large Language Models; 2.2 for VLMs).

    Several models are shown side by side. Totals: stored parameters (a tied LM head once),
    the LM head counted separately, embedding / non-embedding, active parameters per token of
    mixture-of-experts models, weight memory per dtype and the KV cache. --flops adds each row's
    FLOPs for a prefill of --seq-len tokens (as computed: what torch's FlopCounterMode counts). A
    model_type without a native family is built by transformers on the meta device
    (pip install "llm-inspector[hf]").

    Examples:
      inspect params meta-llama/Llama-3.2-1B Qwen/Qwen2.5-1.5B --format md
      inspect params llama-3.1-8b --flops --seq-len 128
      inspect params HuggingFaceTB/SmolLM2-135M-Instruct --adapter ./my-lora
    """
    from inspector.source import account_model
    from inspector.reports.params import ParamsOptions, params_report
    from inspector.reports.render import emit
    from inspector.units import KV_DTYPE_BYTES

    format = output_format(format, output)
    if seq_len is not None and not flops:
        raise InspectError(f"--seq-len {seq_len}: it sets the prefill of the FLOPs column; add --flops")
    accs = [account_model(m) for m in models]
    if kv_dtype not in KV_DTYPE_BYTES:
        raise InspectError(f"--kv-dtype {kv_dtype!r}: choose from {', '.join(KV_DTYPE_BYTES)}")
    column = None
    if flops:
        from inspector.reports.params_flops import FlopsColumn

        column = FlopsColumn(batch=batch, **({"seq_len": seq_len} if seq_len else {}))
    options = ParamsOptions(context=context, batch=batch, totals_only=totals, kv_dtype=kv_dtype, flops=column)
    report = params_report(accs, options)
    if adapter is not None:
        report = _with_adapter(report, adapter, models)
    emit(report, format.value, output)


def _with_adapter(report, adapter: str, models: list[str]):
    """`params BASE --adapter DIR`: the adapter's rows and totals beside the base's."""
    from inspector.cli.adapters import AdapterRequest, check
    from inspector.reports.adapter import with_adapter

    if len(models) != 1:
        raise InspectError(f"--adapter: give one MODEL, the adapter's base (got {len(models)})")
    return with_adapter(report, check(AdapterRequest(adapter, models[0])))


@command
def config(models: ModelsArg, format: FormatOpt = None, output: OutOpt = None) -> None:
    """The configuration table (Table 1.3 of Implementations of Large Language Models; Table 2.1 for VLMs).

    Example: inspect config meta-llama/Llama-3.2-1B Qwen/Qwen2.5-1.5B
    """
    from inspector.source import load_spec
    from inspector.reports.render import emit
    from inspector.reports.params import config_report

    emit(config_report([load_spec(m) for m in models]), output_format(format, output).value, output)


@command
def presets(format: FormatOpt = None, output: OutOpt = None) -> None:
    """List the embedded presets (usable offline) with their aliases, parameter counts and sources."""
    from inspector.inventory.load import preset_params
    from inspector.reports.params import presets_report
    from inspector.reports.render import emit
    from inspector.spec.presets import all_presets

    format = output_format(format, output)
    found = all_presets()
    emit(presets_report(found, [preset_params(p.hub_id) for p in found]), format.value, output)


class LazyCommands(MutableMapping):
    """The group's commands by name (COMMANDS' order), each imported and built on first use."""

    def __init__(self, build: Callable[[Callable], object]) -> None:
        self._build = build
        self._built: dict[str, object] = {}
        self._names = list(COMMANDS)

    def __getitem__(self, name: str):
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            module, function = COMMANDS[name]
            self._built[name] = self._build(getattr(importlib.import_module(module), function))
        return self._built[name]

    def __setitem__(self, name: str, command) -> None:
        if name not in self._names:
            self._names.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


class LazyGroup(InspectGroup):
    """InspectGroup whose commands are built from COMMANDS when first asked for, as `app.command()`
    would build them, with help shown as written (inspector.cli.options)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        plain_coercion(self)
        self.commands = LazyCommands(_build_command)

    def list_commands(self, ctx) -> list[str]:
        return list(self.commands)


def _build_command(function: Callable):
    if not getattr(function, "typer_command", False):
        raise TypeError(f"{function.__module__}.{function.__name__} is in COMMANDS but not marked @command")
    info = CommandInfo(callback=function, options_metavar="[OPTIONS]", rich_help_panel=Default(None))
    command = typer.main.get_command_from_info(info, pretty_exceptions_short=app.pretty_exceptions_short,
                                               rich_markup_mode=app.rich_markup_mode)
    plain_help(command)
    help_metavars(command)
    finite_numbers(command)
    plain_coercion(command)
    return command


app = typer.Typer(
    cls=LazyGroup,
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


def main() -> None:
    from inspector.runtime.threads import sanitize_thread_env

    sanitize_thread_env()
    app()


__all__ = ["app", "main", "InspectError"]
