"""`inspect tokens`: how an image of a given size becomes LLM tokens.

Section 2.1 of *Implementations of Large Language Models*.
"""

from __future__ import annotations

from typing import Annotated

import typer

from inspector.cli.options import FormatOpt, ModelsArg, OutOpt, command, output_format

ImageSizeOpt = Annotated[
    list[str],
    typer.Option("--image-size", "-s", help="Image size as HEIGHTxWIDTH in pixels; repeat for several."),
]


@command
def tokens(
    models: ModelsArg,
    image_size: ImageSizeOpt = ["224x224"],  # noqa: B006 (typer needs a literal default)
    format: FormatOpt = None,
    output: OutOpt = None,
) -> None:
    """Image tokens of a vision-language model, step by step: resize or tiling, patch grid, merge or
    pooling, and the marker tokens around them; the counts transformers' processors insert.

    Qwen2-VL/2.5-VL/3-VL: resize within min/max pixels, tokens = t*h*w / n_merge^2.
    InternVL2/3: dynamic 448x448 tiles (+ thumbnail), 256 tokens per tile.
    Gemma 3: 896x896 (+ pan-and-scan crops), 256 per image. LLaVA-OneVision: anyres tiles, image_newline.
    SmolVLM/Idefics3: tiles + a global image. Llama 3.2 Vision: a tile canvas, read by cross-attention.
    Mistral 3 (Pixtral): any size, [IMG_BREAK] per row. Llama 4: a tile canvas + a global tile.

    Example: inspect tokens Qwen/Qwen2.5-VL-7B-Instruct google/gemma-3-4b-it --image-size 800x1300
    """
    from inspector.source import load_spec
    from inspector.image.tokens import parse_size
    from inspector.reports.render import emit
    from inspector.reports.vision import tokens_report

    format = output_format(format, output)
    sizes = [parse_size(s) for s in image_size]
    emit(tokens_report([load_spec(m) for m in models], sizes), format.value, output)
