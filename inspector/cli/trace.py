"""`inspect trace`: the reference forward pass, step by step (`run` and `chat` live beside it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli.options import (ChatOpt, DeviceOpt, DtypeOpt, FormatOpt, MinPOpt, ModelOpt, OutOpt, SeedOpt,
                                   TempOpt, ThreadsOpt, TokOpt, TopKOpt, TopPOpt, WeightsOpt, command,
                                   given_options, output_format)
from inspector.runtime.prepare import DEFAULT_MODEL


def parse_layers(text: str | None):
    """'0,5,10-12' -> layers 0, 5, 10, 11, 12; 'all' -> every layer (None means the default: layer 0);
    a LayerSet of inspector.runtime.tracing."""
    from inspector.errors import InspectError, printable
    from inspector.runtime.tracing import LayerSet

    if text is None:
        return None
    if text.strip() == "all":
        return LayerSet([(0, 2**63)])
    ranges = []
    for part in text.split(",")[:1000]:
        lo, dash, hi = part.strip().partition("-")
        if not (lo.isascii() and lo.isdigit()) or (dash and not (hi.isascii() and hi.isdigit())) or len(lo) > 18 \
                or len(hi) > 18:  # ASCII digits only: "²".isdigit() is true, int("²") fails
            raise InspectError(f"--layers {printable(repr(text))}: expected numbers and ranges like 0,5,10-12 or 'all'")
        if int(hi or lo) < int(lo):
            raise InspectError(f"--layers: range {printable(part.strip())} ends before it starts")
        ranges.append((int(lo), int(hi or lo)))
    return LayerSet(ranges)


def parse_temperatures(text: str) -> list[float]:
    """'0,0.6,1' -> [0.0, 0.6, 1.0]; each 0 (greedy) or a finite number of at least MIN_TEMPERATURE."""
    from inspector.errors import InspectError, printable

    try:
        temps = [float(t) for t in text.split(",")]
    except ValueError:
        raise InspectError(f"--temperatures {printable(repr(text))}: expected numbers like 0,0.6,1,1.5") from None
    from inspector.runtime.sampling import temperature_problem

    problem = next((p for p in map(temperature_problem, temps) if p), None)
    if problem:
        raise InspectError(f"--temperatures: each temperature {problem}")
    return temps


PromptsArg = Annotated[Optional[list[str]], typer.Argument(help="The text to run through the model; several prompts "
                                                          "make one left-padded batch.",
                                                          show_default=False, metavar="[PROMPT]...")]
DecodeStepsOpt = Annotated[int, typer.Option("--decode-steps", help="Cached decode steps after the prompt.", min=0)]
LayersOpt = Annotated[Optional[str], typer.Option("--layers", help="Layers to show in full, e.g. 0,5,10-12 or all "
                                                  "(others collapse when their shapes equal an earlier layer's).")]
SeqLenOpt = Annotated[Optional[int], typer.Option("--seq-len", help="Trace N stand-in ids instead of a prompt "
                                                  "(shapes depend only on N).", min=1)]
ImageOpt = Annotated[Optional[Path], typer.Option("--image", help="VLMs: an image file (any format PIL reads); "
                                                  "the image goes before the prompt.", dir_okay=False)]
ImageSizeOpt = Annotated[Optional[str], typer.Option("--image-size", help="VLMs: a synthetic HEIGHTxWIDTH image "
                                                     "instead of a file.")]


@command
def trace(
    ctx: typer.Context,
    prompts: PromptsArg = None,
    model: ModelOpt = DEFAULT_MODEL,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    tokenizer: TokOpt = None,
    chat: ChatOpt = False,
    decode_steps: DecodeStepsOpt = 0,
    layers: LayersOpt = None,
    temperature: TempOpt = 0.0,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    min_p: MinPOpt = None,
    seed: SeedOpt = 0,
    seq_len: SeqLenOpt = None,
    threads: ThreadsOpt = None,
    image: ImageOpt = None,
    image_size: ImageSizeOpt = None,
    format: FormatOpt = None,
    output: OutOpt = None,
) -> None:
    """The forward pass layer by layer: every step's module, output shape and dtype.

    Steps 1-11 of *Implementations of Large Language Models*. Without weights (a preset or bare config) it
    runs on the meta device: shapes only. Several prompts make one batch: left padding, the padding mask and
    position ids that skip it. Without a tokenizer offline (Phi-3, Mistral), meta traces stand-in ids.
    No native family (the `hf` extra): transformers' forward on meta, every module's shapes (--seq-len N only).

    Examples:
      inspect trace "The capital of Singapore is"
      inspect trace "Hi" "The capital of Singapore is" -m meta-llama/Llama-3.2-1B --chat
      inspect trace "Hi" -m meta-llama/Llama-3.1-405B --device meta --decode-steps 2
      inspect trace --seq-len 4096 -m mistralai/Mistral-7B-v0.1
      inspect trace "Describe the image." -m Qwen/Qwen2-VL-2B-Instruct --image photo.jpg --device meta
      inspect trace "Describe the image." -m google/gemma-3-4b-it --image-size 800x1300 --device meta
    """
    format = output_format(format, output)
    if _no_native_family(model, weights):  # transformers' forward on meta (the `hf` extra)
        return _transformers_trace(ctx, dict(locals()), format)
    from inspector.reports.render import emit
    from inspector.runtime.prepare import ModelChoice
    from inspector.runtime.sampling import SamplingSettings
    from inspector.runtime.tracing import TraceOptions, trace_model

    options = TraceOptions(  # parsed and checked before any work
        prompts=tuple(prompts or ()), seq_len=seq_len, chat=chat, decode_steps=decode_steps,
        layers=parse_layers(layers), sampling=SamplingSettings(temperature, top_k, top_p, seed, min_p),
        image=str(image) if image is not None else None, image_size=image_size, given=given_options(ctx))
    choice = ModelChoice(model=model, weights=weights, device=device, dtype=dtype, tokenizer=tokenizer, threads=threads)
    result = trace_model(choice, options)
    if options.is_image:
        from inspector.reports.vision_trace import image_trace_report

        emit(image_trace_report(result.spec, result.log.steps, result.device), format.value, output)
    else:
        from inspector.reports.trace import trace_report

        emit(trace_report(result, options.layers), format.value, output)


# What applies to a model traced through transformers on meta (inspector.runtime.hf_trace); others are refused.
TRANSFORMERS_PATH = ("model", "device", "dtype", "seq_len", "layers", "format", "output")


def _no_native_family(model: str, weights: str | None) -> bool:
    """Whether MODEL (without --weights) has no native family: then transformers traces it on meta."""
    from inspector.inventory.load import is_native
    from inspector.source import resolve

    return weights is None and not is_native(resolve(model).config)


def _transformers_trace(ctx, o: dict, format) -> None:
    """`trace` through transformers on the meta device: --seq-len N stand-in ids, module shapes only."""
    from inspector.errors import InspectError
    from inspector.inventory.load import check_fallback_config
    from inspector.reports.hf_trace import hf_trace_report
    from inspector.reports.render import emit
    from inspector.limits import MAX_SEQ_LEN
    from inspector.runtime.hf_trace import DTYPES, hf_trace
    from inspector.source import resolve

    model = o["model"]
    other = [opt for name, opt in given_options(ctx).items() if name not in TRANSFORMERS_PATH]
    if o["prompts"]:
        other.insert(0, "PROMPT")
    if other:
        raise InspectError(f"{', '.join(other)}: {model} has no native family; traced through transformers on "
                           "the meta device, only --seq-len N, --layers, --dtype and --device meta apply")
    if o["device"] not in ("auto", "meta"):
        raise InspectError(f"--device {o['device']}: {model} has no native family; transformers traces it on the "
                           "meta device only (--device meta)")
    if o["dtype"] not in DTYPES:
        raise InspectError(f"--dtype {o['dtype']!r}: expected one of auto, float32, bfloat16, float16")
    if o["seq_len"] is None:
        raise InspectError(f"{model} has no native family: give --seq-len N (transformers traces N stand-in ids)")
    if not 1 <= o["seq_len"] <= MAX_SEQ_LEN:  # inspector.runtime.batch.check_seq_len's rule (that module needs torch)
        raise InspectError(f"--seq-len must be between 1 and {MAX_SEQ_LEN:,}, got {o['seq_len']:,}")
    layers = parse_layers(o["layers"]) if o["layers"] is not None else None  # (LayerSet's module needs torch)
    src = resolve(model)
    check_fallback_config(src.config, src.where)
    result = hf_trace(src.config, src.name, src.where, o["seq_len"], o["dtype"])
    if layers is not None:
        layers.check(1 + max((r.layer for r in result.rows if r.layer is not None), default=-1), model)
    emit(hf_trace_report(result, layers), format.value, o["output"])
