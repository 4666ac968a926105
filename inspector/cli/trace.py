"""`inspect trace`: the reference forward pass, step by step (`run` and `chat` live beside it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli.model_options import (ChatOpt, DeviceOpt, DtypeOpt, MinPOpt, ModelOpt, SeedOpt, TempOpt,
                                         ThreadsOpt, TokOpt, TopKOpt, TopPOpt, WeightsOpt)
from inspector.cli.options import Format, FormatOpt, OutOpt, command, output_format, refuse_options
from inspector.runtime.prepare import DEFAULT_MODEL


class LayerSet:
    """Layer numbers given as ranges: membership without a set as large as the ranges."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.ranges = ranges

    def __contains__(self, layer: object) -> bool:
        return isinstance(layer, int) and any(lo <= layer <= hi for lo, hi in self.ranges)

    def check(self, layers: int, model: str) -> None:
        """Refuse a layer the model does not have ('all' never does)."""
        from inspector.errors import InspectError

        beyond = [hi for lo, hi in self.ranges if layers <= hi < 2**63]
        if beyond:
            raise InspectError(f"--layers: {model} has layers 0-{layers - 1}; there is no layer {max(beyond)}")


def parse_layers(text: str | None) -> LayerSet | None:
    """'0,5,10-12' -> layers 0, 5, 10, 11, 12; 'all' -> every layer (None means the default: layer 0)."""
    from inspector.errors import InspectError, printable

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
    decode_steps: Annotated[int, typer.Option("--decode-steps", help="Cached decode steps after the prompt.", min=0)] = 0,
    layers: Annotated[Optional[str], typer.Option("--layers", help="Layers to show in full, e.g. 0,5,10-12 or all "
                                                  "(others collapse when their shapes equal an earlier layer's).")] = None,
    temperature: TempOpt = 0.0,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    min_p: MinPOpt = None,
    seed: SeedOpt = 0,
    seq_len: Annotated[Optional[int], typer.Option("--seq-len", help="Trace N stand-in ids instead of a prompt "
                                                   "(shapes depend only on N).", min=1)] = None,
    threads: ThreadsOpt = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="VLMs: an image file (any format PIL reads); "
                                                  "the image goes before the prompt.", dir_okay=False)] = None,
    image_size: Annotated[Optional[str], typer.Option("--image-size", help="VLMs: a synthetic HEIGHTxWIDTH image "
                                                      "instead of a file.")] = None,
    format: FormatOpt = None,
    output: OutOpt = None,
) -> None:
    """The forward pass layer by layer: every step's module, output shape and dtype.

    Steps 1-11 of *Implementations of Large Language Models*. Without weights (a preset or bare config) it
    runs on the meta device: shapes only. Several prompts make one batch: left padding, the padding mask and
    position ids that skip it. Without a tokenizer offline (Phi-3, Mistral), meta traces stand-in ids.

    Examples:
      inspect trace "The capital of Singapore is"
      inspect trace "Hi" "The capital of Singapore is" -m meta-llama/Llama-3.2-1B --chat
      inspect trace "Hi" -m meta-llama/Llama-3.1-405B --device meta --decode-steps 2
      inspect trace --seq-len 4096 -m mistralai/Mistral-7B-v0.1
      inspect trace "Describe the image." -m Qwen/Qwen2-VL-2B-Instruct --image photo.jpg --device meta
      inspect trace "Describe the image." -m google/gemma-3-4b-it --image-size 800x1300 --device meta
    """
    format = output_format(format, output)
    if image is not None or image_size is not None:
        refuse_options(ctx, TEXT_ONLY, "to an image trace (--image, --image-size)")
        _image_trace(model, weights, device, _check_inputs(prompts, seq_len), image, image_size, format, output)
        return
    prompts = _check_inputs(prompts, seq_len)

    from inspector.reports.render import emit
    from inspector.reports.trace import trace_report
    from inspector.runtime.prepare import prepare, use_threads
    from inspector.runtime.sampling import SamplingSettings
    from inspector.runtime.trace import trace_prompt

    show, sampling = parse_layers(layers), SamplingSettings(temperature, top_k, top_p, seed, min_p)  # before any work
    use_threads(threads)
    rt = prepare(model, weights, device, dtype, tokenizer,
                 before_model=lambda spec, tok: show.check(spec.text.num_layers, spec.name) if show else None)
    emit(trace_report(trace_prompt(rt, prompts, chat, decode_steps, sampling, seq_len=seq_len), show),
         format.value, output)


# What an image trace (--image, --image-size) does not use: it runs one prefill in its own dtype.
TEXT_ONLY = ("dtype", "tokenizer", "chat", "decode_steps", "layers", "temperature", "top_k", "top_p", "min_p", "seed",
             "seq_len", "threads")


def _check_inputs(prompts: list[str] | None, seq_len: int | None) -> list[str]:
    from inspector.errors import InspectError
    from inspector.runtime.batch import check_prompts, check_seq_len

    check_seq_len(seq_len)
    prompts = list(prompts or [])
    if not prompts and seq_len is None:
        raise InspectError("give a prompt (or --seq-len N to trace N stand-in ids)")
    if prompts and seq_len is not None:
        raise InspectError("give prompts or --seq-len, not both")
    if prompts:
        check_prompts(prompts)
    from inspector.limits import PROMPT_BATCH

    if len(prompts) > PROMPT_BATCH:
        raise InspectError(f"trace runs its prompts as one batch, at most {PROMPT_BATCH}; got {len(prompts):,} "
                           "(`inspect run --prompts FILE` runs a longer list in batches)")
    return prompts


def _image_trace(model, weights, device, prompts, image, image_size, format, output) -> None:
    from inspector.errors import InspectError
    from inspector.reports.render import emit
    from inspector.reports.vision_trace import image_trace_report
    from inspector.runtime.prepare import locate
    from inspector.runtime.vlm_trace import image_trace

    if len(prompts) != 1:
        raise InspectError("--image traces one prompt")
    if device == "auto":
        device = "cpu" if locate(model, weights)[1] else "meta"
    spec, _logits, log = image_trace(model, prompts[0], str(image) if image else None, image_size, device)
    emit(image_trace_report(spec, log.steps, device), format.value, output)
