"""Shared pieces of the CLI: option aliases, the error-handling command group, output helpers."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from inspector.errors import InspectError


class Format(str, Enum):
    table = "table"
    md = "md"
    json = "json"
    csv = "csv"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format: table (rich), md, json or csv.")]
OutOpt = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", help="Write to this file (atomically) instead of stdout.", dir_okay=False),
]
ContextOpt = Annotated[int, typer.Option("--context", help="Context length for the KV-cache estimate.", min=1)]
BatchOpt = Annotated[int, typer.Option("--batch", help="Batch size for the KV-cache estimate.", min=1)]
ModelsArg = Annotated[
    list[str],
    typer.Argument(help="Preset name or alias, local directory / config.json, or Hub id (owner/name).",
                   show_default=False),
]


def debug() -> bool:
    return os.environ.get("INSPECT_DEBUG", "") not in ("", "0")


class InspectGroup(TyperGroup):
    """Turns library errors into one line on stderr and exit code 2 (tracebacks only with INSPECT_DEBUG=1)."""

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
            sys.stderr.close()
            ctx.exit(1)
        except Exception as exc:
            # click's own exits and usage errors (typer vendors click) keep their behaviour.
            if debug() or type(exc).__module__.split(".")[0] in ("click", "typer"):
                raise
            typer.echo(f"error: internal error: {type(exc).__name__}: {exc} (set INSPECT_DEBUG=1 for a traceback)",
                       err=True)
            ctx.exit(3)
