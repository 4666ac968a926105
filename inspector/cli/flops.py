"""`inspect flops`: how fast: the FLOPs ledger, bytes per decode step, a GPU's roofline and training time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli.options import OutOpt, command, output_format

ROOF = "Roofline (--gpu)"
TRAIN = "Training (--train-tokens)"


class FlopsFormat(str, Enum):
    table = "table"
    md = "md"
    json = "json"


class Recompute(str, Enum):
    none = "none"
    full = "full"


def _opt(kind, text: str, *names: str, panel: str | None = None, **kw):
    return Annotated[kind, typer.Option(*names, help=text, rich_help_panel=panel, **kw)]


ModelArg = Annotated[str, typer.Argument(help="Preset, local directory / config.json, or Hub id.", show_default=False,
                                              metavar="MODEL")]
SeqOpt = _opt(int, "Prompt tokens N of the prefill (and the training sequence length).", "--seq-len", min=1,
              max=2**31)
BatchOpt = _opt(int, "Sequences B per step.", "--batch", min=1, max=2**20)
ContextOpt = _opt(int, "Cached tokens T before the decoded token.", "--context", min=1, max=2**31)
GpuOpt = _opt(Optional[str], "A GPU preset for the roofline: H100-80GB, H200-141GB, A100-80GB, A100-40GB, L4-24GB, "
              "RTX4090-24GB, RTX3090-24GB, A10-24GB, L40-48GB, MI300X-192GB.", "--gpu", panel=ROOF,
              show_default=False)
TpOpt = _opt(int, "Tensor parallel GPUs (adds the all-reduces over the interconnect).", "--tp", min=1, max=4096,
             panel=ROOF)
DtypeOpt = _opt(str, "The peak to use: bf16, fp16, fp8, int8, tf32, fp32.", "--dtype", panel=ROOF)
MfuOpt = _opt(Optional[float], "Model FLOPs utilization (default: Megatron-LM's 141/312, calibrated).", "--mfu",
              panel=ROOF, show_default=False)
MbuOpt = _opt(Optional[float], "Memory bandwidth utilization (default: gpt-fast's 1,397/2,039, calibrated).",
              "--mbu", panel=ROOF, show_default=False)
TokensOpt = _opt(Optional[str], "Training tokens D (300e9, 780000000000).", "--train-tokens", panel=TRAIN,
                 show_default=False)
GpusOpt = _opt(Optional[int], "GPUs of the training run.", "--gpus", min=1, max=2**24, panel=TRAIN,
               show_default=False)
TflopsOpt = _opt(Optional[float], "Achieved TFLOP/s per GPU (else --gpu's peak × MFU).", "--tflops", panel=TRAIN,
                 show_default=False)
RecomputeOpt = _opt(Recompute, "full: one more forward of the decoder layers (Megatron-LM's 8TP).", "--recompute",
                    panel=TRAIN)
FormatOpt = Annotated[Optional[FlopsFormat], typer.Option(
    "--format", "-f", help="table, md or json (default: from -o's extension, else table).", show_default=False)]


@dataclass(frozen=True)
class FlopsQuery:
    """What `inspect flops` was asked, as typed (checked in `flops_answer`)."""

    model: str
    seq_len: int = 2048
    batch: int = 1
    context: int = 2048
    gpu: str | None = None
    tp: int = 1
    dtype: str = "bf16"
    mfu: float | None = None
    mbu: float | None = None
    train_tokens: str | None = None
    gpus: int | None = None
    tflops: float | None = None
    recompute: bool = False


@command
def flops(model: ModelArg, seq_len: SeqOpt = 2048, batch: BatchOpt = 1, context: ContextOpt = 2048,
          gpu: GpuOpt = None, tp: TpOpt = 1, dtype: DtypeOpt = "bf16", mfu: MfuOpt = None, mbu: MbuOpt = None,
          train_tokens: TokensOpt = None, gpus: GpusOpt = None, tflops: TflopsOpt = None,
          recompute: RecomputeOpt = Recompute.none, format: FormatOpt = None, output: OutOpt = None) -> None:
    """How fast: FLOPs per params row for a prefill and a decode step, bytes per decode step, a GPU's roofline.

    FLOPs "as computed" equal torch's FlopCounterMode (the full score matrix; logits at every position or
    the last); "as needed" counts the causal half, windows capped, MoE at top_k. Beside them the usual
    conventions (2N, Kaplan et al., 6ND, PaLM, Megatron's 8TP), each with its source. --gpu adds the
    roofline (time to first token, time per output token, tokens/s, the bound, the batch where decode
    turns compute-bound) at calibrated efficiencies (--mfu/--mbu override them); --train-tokens the
    training FLOPs, and with --gpus and --tflops (or --gpu and --mfu) the days. No torch is imported.
    A model with no native family (the `hf` extra): torch's FlopCounterMode around transformers' forward
    on the meta device, a prefill and one decode step (no roofline or training options).

    Examples:
      inspect flops llama-3.1-8b --seq-len 128
      inspect flops llama-3.1-8b --batch 8 --context 4096 --gpu H100-80GB
      inspect flops llama-3.1-8b --seq-len 8192 --train-tokens 15e12 --gpus 1024 --gpu H100-80GB --mfu 0.4
    """
    fmt = output_format(format, output, FlopsFormat)
    query = FlopsQuery(model=model, seq_len=seq_len, batch=batch, context=context, gpu=gpu, tp=tp, dtype=dtype,
                       mfu=mfu, mbu=mbu, train_tokens=train_tokens, gpus=gpus, tflops=tflops,
                       recompute=recompute == Recompute.full)
    _emit(query, fmt, output)


def _emit(query: FlopsQuery, fmt: FlopsFormat, output: Path | None) -> None:
    from inspector.reports.render import emit

    acc, checked = _checked(query)
    if acc.origin.native:
        from inspector.compute.answer import answer
        from inspector.reports.flops import flops_report

        return emit(flops_report(answer(acc, *checked)), fmt.value, output)
    emit(_transformers_report(query, acc), fmt.value, output)


def _transformers_report(query: FlopsQuery, acc):
    """No native family: FLOPs from FlopCounterMode around transformers' forward on meta; the roofline and
    training options need a native family's ledger and are refused in one line."""
    from inspector.errors import InspectError
    from inspector.runtime.hf_answer import flops_report
    from inspector.runtime.hf_flops import measure_flops
    from inspector.source import resolve

    asked = [flag for flag, value in (("--gpu", query.gpu), ("--train-tokens", query.train_tokens),
                                      ("--gpus", query.gpus), ("--tflops", query.tflops), ("--mfu", query.mfu))
             if value is not None]
    if asked:
        raise InspectError(f"{', '.join(asked)}: {query.model} has no native family; through transformers "
                           "`flops` gives the FLOPs of a prefill and a decode step only")
    src = resolve(query.model)
    return flops_report(measure_flops(src.config, src.where, query.seq_len, query.context, query.batch), acc)


def _tokens(text: str | None) -> int | None:
    """--train-tokens as a whole number: 300e9, 3e11 or 300000000000."""
    from inspector.errors import InspectError

    if text is None:
        return None
    try:
        value = float(text.replace("_", "").replace(",", ""))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 1 or value != int(value) or value > 2**62:
        raise InspectError(f"--train-tokens {text!r}: give a whole number of tokens, such as 300e9")
    return int(text) if text.isdigit() else int(value)


def _fraction(value: float | None, flag: str) -> None:
    from inspector.errors import InspectError

    if value is not None and not 0 < value <= 1:
        raise InspectError(f"{flag} {value:g}: a utilization is a fraction in (0, 1]")


def flops_answer(query: FlopsQuery) -> dict:
    """The figures of `query` (inspector.compute.answer), after checking the options that typer cannot."""
    from inspector.compute.answer import answer

    acc, checked = _checked(query)
    return answer(acc, *checked)


def _checked(query: FlopsQuery):
    """The model's accounting and (FlopsRequest, Roof, Run) of `query`, its options checked before the model."""
    from inspector.compute.answer import Roof, Run
    from inspector.compute.figures import FlopsRequest
    from inspector.compute.hardware import hardware, peak_tflops
    from inspector.errors import InspectError
    from inspector.source import account_model

    _fraction(query.mfu, "--mfu")
    _fraction(query.mbu, "--mbu")
    if query.tflops is not None and not (0 < query.tflops < 1e6):
        raise InspectError(f"--tflops {query.tflops:g}: give the achieved TFLOP/s per GPU, such as 141")
    if query.gpu is not None:
        peak_tflops(hardware(query.gpu), query.dtype)  # an unknown GPU or dtype, in one line, before the model
    elif query.tp > 1 or query.mbu is not None:
        raise InspectError("--tp and --mbu apply to the roofline: give --gpu G with them")
    tokens = _tokens(query.train_tokens)
    if query.recompute and tokens is None:
        raise InspectError("--recompute full applies to training: give --train-tokens D with it")
    req = FlopsRequest(seq_len=query.seq_len, batch=query.batch, context=query.context, train_tokens=tokens,
                       recompute=query.recompute)
    roof = Roof(gpu=query.gpu, dtype=query.dtype, mfu=query.mfu, mbu=query.mbu, tp=query.tp)
    return account_model(query.model), (req, roof, Run(gpus=query.gpus, tflops=query.tflops))
