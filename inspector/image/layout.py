"""`ImageLayout`: what the preprocessing decided for one image, as the projector and the LLM need it.

A plain record (no torch): the original size, the patch grid of one encoder input, the tile grid of
anyres/canvas tiling, Mllama's aspect-ratio id and how many tiles are real. `Recorder` is the
callable each preprocessing step reports to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

Recorder = Callable[..., None]  # record(name, tensor_or_shape, note="")


@dataclass(frozen=True)
class ImageLayout:
    size: tuple[int, int]  # the original (height, width)
    grid: tuple[int, int] = (0, 0)  # patch rows x columns of one encoder input (Pixtral: the whole image)
    tiles: tuple[int, int] = (0, 0)  # anyres / canvas tile rows x columns (0: none)
    aspect_id: int = 0  # Mllama: 1-based index of the tile arrangement
    tile_count: int = 1  # real tiles through the encoder
