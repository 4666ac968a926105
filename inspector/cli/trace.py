"""`inspect trace` and `inspect run`: the reference forward pass, traced or timed and generating."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli.options import Format, FormatOpt, OutOpt
from inspector.runtime.prepare import DEFAULT_MODEL

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Preset, checkpoint directory, .gguf file or Hub id.")]
WeightsOpt = Annotated[Optional[str], typer.Option("--weights", "-w", help="Safetensors file/directory or .gguf "
                                                   "holding the weights (default: beside MODEL's config).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (cuda, else cpu; meta without weights), cpu, cuda, meta.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="auto (bfloat16 on cuda, float32 on cpu), float32, bfloat16, float16.")]
TokOpt = Annotated[Optional[str], typer.Option("--tokenizer", help="Directory / tokenizer.json / .gguf / Hub id to tokenize with.")]
ChatOpt = Annotated[bool, typer.Option("--chat", help="Wrap the prompt in the model's chat template.")]
TempOpt = Annotated[float, typer.Option("--temperature", "-t", help="0 = greedy (argmax).", min=0.0)]
TopKOpt = Annotated[Optional[int], typer.Option("--top-k", help="Keep the k most likely tokens.", min=1)]
TopPOpt = Annotated[Optional[float], typer.Option("--top-p", help="Keep the smallest set reaching probability p.", min=0.0, max=1.0)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the sampling generator.", min=0, max=2**63 - 1)]


class LayerSet:
    """Layer numbers given as ranges: membership without a set as large as the ranges."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.ranges = ranges

    def __contains__(self, layer: object) -> bool:
        return isinstance(layer, int) and any(lo <= layer <= hi for lo, hi in self.ranges)


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
        if not lo.isdigit() or (dash and not hi.isdigit()) or len(lo) > 18 or len(hi) > 18:
            raise InspectError(f"--layers {printable(repr(text))}: expected numbers and ranges like 0,5,10-12 or 'all'")
        if int(hi or lo) < int(lo):
            raise InspectError(f"--layers: range {printable(part.strip())} ends before it starts")
        ranges.append((int(lo), int(hi or lo)))
    return LayerSet(ranges)


def parse_temperatures(text: str) -> list[float]:
    """'0,0.6,1' -> [0.0, 0.6, 1.0]; each a finite number >= 0."""
    import math

    from inspector.errors import InspectError, printable

    try:
        temps = [float(t) for t in text.split(",")]
    except ValueError:
        raise InspectError(f"--temperatures {printable(repr(text))}: expected numbers like 0,0.6,1,1.5") from None
    bad = [t for t in temps if not (math.isfinite(t) and t >= 0)]
    if bad:
        raise InspectError(f"--temperatures: each temperature must be a finite number >= 0, got {bad[0]}")
    return temps


def trace(
    prompt: Annotated[str, typer.Argument(help="The text to run through the model.")],
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
    seed: SeedOpt = 0,
    image: Annotated[Optional[Path], typer.Option("--image", help="VLMs: an image file (any format PIL reads); "
                                                  "the image goes before the prompt.", dir_okay=False)] = None,
    image_size: Annotated[Optional[str], typer.Option("--image-size", help="VLMs: a synthetic HEIGHTxWIDTH image "
                                                      "instead of a file.")] = None,
    format: FormatOpt = Format.table,
    output: OutOpt = None,
) -> None:
    """The forward pass layer by layer: every step's module, output shape and dtype (seed 003, Steps 3-11).

    Without weights (a preset or bare config) it runs on the meta device: shapes only, no memory.

    Examples:
      inspect trace "The capital of Singapore is"
      inspect trace "Hi" -m meta-llama/Llama-3.1-405B --device meta --decode-steps 2
      inspect trace "The capital of France is" -m SmolLM2-135M-Instruct.Q4_1.gguf --layers all -f json
      inspect trace "Describe the image." -m Qwen/Qwen2-VL-2B-Instruct --image photo.jpg --device meta
      inspect trace "Describe the image." -m google/gemma-3-4b-it --image-size 800x1300 --device meta
    """
    from inspector.reports.render import emit

    if image is not None or image_size is not None:
        from inspector.reports.vision_trace import image_trace_report
        from inspector.runtime.prepare import locate
        from inspector.runtime.vlm_trace import image_trace

        if device == "auto":
            device = "cpu" if locate(model, weights)[1] else "meta"
        spec, _logits, log = image_trace(model, prompt, str(image) if image else None, image_size, device)
        emit(image_trace_report(spec, log.steps, device), format.value, output)
        return

    from inspector.reports.trace import trace_report
    from inspector.runtime.prepare import prepare
    from inspector.runtime.sampling import SamplingSettings
    from inspector.runtime.trace import trace_prompt

    show = parse_layers(layers)  # before any work
    settings = SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    rt = prepare(model, weights, device, dtype, tokenizer)
    result = trace_prompt(rt, prompt, chat, decode_steps, settings)
    emit(trace_report(result, show), format.value, output)


def run(
    prompts: Annotated[list[str], typer.Argument(help="One or more prompts.", show_default=False)],
    model: ModelOpt = DEFAULT_MODEL,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    tokenizer: TokOpt = None,
    chat: ChatOpt = False,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", help="Tokens to generate.", min=1)] = 32,
    temperature: TempOpt = 0.0,
    temperatures: Annotated[Optional[str], typer.Option("--temperatures", help="Comma-separated sweep, e.g. 0,0.6,1,1.5 "
                                                        "(seed 000's experiment); overrides --temperature.")] = None,
    trials: Annotated[int, typer.Option("--trials", help="Generations per prompt and temperature (seed + trial).", min=1)] = 1,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    seed: SeedOpt = 0,
    format: FormatOpt = Format.table,
    output: OutOpt = None,
) -> None:
    """Run the reference model (cuda when available): a timed layer-by-layer prefill, then generation.

    Streams the text, reports prefill and decode tokens/s and which layers dominate the time.

    Examples:
      inspect run "The capital of France is" -m SmolLM2-135M-Instruct.Q4_1.gguf
      inspect run "Who are you?" "The capital of Singapore is" -m ./Qwen2.5-0.5B --temperatures 0,0.6,1,1.5 --trials 3
    """
    import sys

    from inspector.reports.render import emit
    from inspector.reports.trace import run_report, sweep_report
    from inspector.runtime.generate import encode_prompt
    from inspector.runtime.routing import RoutingCounter
    from inspector.runtime.prepare import prepare
    from inspector.runtime.run import generate_all, time_prefill

    temps = parse_temperatures(temperatures) if temperatures else [temperature]
    encoded: list[list[int]] = []

    def check_prompts(spec, tok) -> None:  # before the weights load: every prompt fits the model
        encoded.extend(encode_prompt(tok, spec.text, p, chat, max_new_tokens)[1] for p in prompts)

    rt = prepare(model, weights, device, dtype, tokenizer, need_weights=True, before_model=check_prompts)
    records, method = time_prefill(rt, encoded[0])
    streaming = format == Format.table and output is None and len(prompts) * len(temps) * trials == 1

    def on_token(record, piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    if streaming:
        sys.stdout.write(prompts[0])
    with RoutingCounter(rt.model) as routing:  # MoE models: how often each expert was chosen
        gens = generate_all(rt, prompts, temps, trials, max_new_tokens, top_k, top_p, seed, chat,
                            on_token if streaming else None, encoded)
    if streaming:
        sys.stdout.write("\n\n")
    report = run_report(rt.spec.name, str(rt.device), rt.dtype_name, encoded[0], records, gens, method,
                        routing.layers())
    if len(gens) > 1:
        report.sections.append(sweep_report(gens).sections[0])
    emit(report, format.value, output)
