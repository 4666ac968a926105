"""The `--adapter DIR` option of verify, params and memory: the adapter read, its base resolved and counted.

The base is `-m BASE` (a preset, a path or a Hub id), else the `base_model_name_or_path` of the
adapter's adapter_config.json; a GGUF LoRA names no base, so it needs `-m`. Every failure is one
line (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from inspector.errors import InspectError

if TYPE_CHECKING:
    from inspector.memory.adapter_verify import AdapterResult

AdapterOpt = Annotated[Optional[str], typer.Option(
    "--adapter", help="A LoRA adapter: a peft directory (adapter_config.json + adapter_model.safetensors) or a GGUF "
                      "LoRA file; checked against its base (verify), its rows beside the base's (params), served or "
                      "trained with the base (memory).", show_default=False)]
BaseOpt = Annotated[Optional[str], typer.Option(
    "--base", "-m", help="The adapter's base model (a preset, a path or a Hub id); default: the "
                         "base_model_name_or_path of adapter_config.json.", show_default=False)]


@dataclass(frozen=True)
class AdapterRequest:
    """What the command line asks of an adapter: where it is, and the base it was given (or None)."""

    adapter: str
    base: str | None = None


def check(request: AdapterRequest) -> AdapterResult:
    """The adapter read (headers only) and checked against its base's inventory."""
    from inspector.checkpoint.adapter import read_adapter
    from inspector.memory.adapter_verify import check_adapter
    from inspector.source import account_model

    files = read_adapter(request.adapter)
    base = request.base or files.base
    if base is None:
        what = "a GGUF LoRA names no base model" if files.format == "gguf" else \
            "adapter_config.json has no base_model_name_or_path"
        raise InspectError(f"--adapter {request.adapter}: {what}; give the base with -m BASE")
    try:
        acc = account_model(base)
    except InspectError as e:
        source = "-m" if request.base else "base_model_name_or_path"
        raise InspectError(f"the adapter's base ({source} {base!r}) cannot be resolved: {e}") from None
    return check_adapter(files, acc, base)


__all__ = ["AdapterOpt", "AdapterRequest", "BaseOpt", "check"]
