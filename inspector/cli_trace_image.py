"""The image path of `inspect trace`: PROMPT --model M --image FILE | --image-size HxW [--device meta].

`trace_image` is a typer command function; the `trace` command can delegate to it when --image or
--image-size is given (or register it on its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli_common import Format, FormatOpt, OutOpt

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Preset, local directory or Hub id of a VLM.")]
ImageOpt = Annotated[Optional[Path], typer.Option("--image", help="Image file (any format PIL reads).", dir_okay=False)]
ImageSizeOpt = Annotated[Optional[str], typer.Option("--image-size", help="Synthetic image HEIGHTxWIDTH instead of a file.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu (needs local weights) or meta (shapes only).")]


def trace_image(
    prompt: Annotated[str, typer.Argument(help="The user message; the image goes before it.")],
    model: ModelOpt,
    image: ImageOpt = None,
    image_size: ImageSizeOpt = None,
    device: DeviceOpt = "cpu",
    format: FormatOpt = Format.table,
    output: OutOpt = None,
) -> None:
    """Every step of an image through a VLM, with real shapes: preprocessing, patches, vision
    encoder, projector, placeholder expansion, scatter into the text, M-RoPE ids, the LLM.

    Example: inspect trace "Describe the image." --model Qwen/Qwen2-VL-2B-Instruct --image-size 224x224 --device meta
    """
    from inspector.render import emit
    from inspector.report_vision_trace import image_trace_report
    from inspector.vlm_reference import image_trace

    spec, _logits, log = image_trace(model, prompt, str(image) if image is not None else None, image_size, device)
    emit(image_trace_report(spec, log.steps, device), format.value, output)
