"""The resize and tiling choices of today's image processors, as pure arithmetic (no image is read).

Each function answers one question a processor asks about an image of height x width pixels, the
way transformers' own processor answers it: which anyres grid LLaVA picks, how LLaVA-OneVision
unpads and caps its features, how Idefics3 resizes and splits, which canvas Mllama and Llama 4
choose, how Pixtral fits the longest edge, how Gemma 3's pan-and-scan crops. inspector.image.rules
turns the answers into the step tables of `inspect tokens`.
"""

from __future__ import annotations

import math
from fractions import Fraction

IDEFICS3_MAX_SIDE = 4096  # the Idefics3 processor's upper bound on either side


# --------------------------------------------------------------------------- LLaVA-NeXT / OneVision


def best_resolution(height: int, width: int, pinpoints: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """LLaVA's anyres choice: the (h, w) grid resolution keeping the most of the image's pixels, then
    the least padding."""
    best, most, least = pinpoints[0], 0, math.inf
    for h, w in pinpoints:
        scale = min(w / width, h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        wasted = w * h - effective
        if effective > most or (effective == most and wasted < least):
            best, most, least = (h, w), effective, wasted
    return best


def unpad(height: int, width: int, rows: int, cols: int) -> tuple[int, int]:
    """(rows, cols) of a feature grid after removing the rows or columns that cover only the padding
    of an image of height x width fitted into it."""
    if width / height > cols / rows:
        new_height = int(round(height * (cols / width), 7))
        rows -= (rows - new_height) // 2 * 2
    else:
        new_width = int(round(width * (rows / height), 7))
        cols -= (cols - new_width) // 2 * 2
    return rows, cols


def capped(rows: int, cols: int, max_tiles: int | None, side: int) -> tuple[int, int, float]:
    """OneVision: features above max_tiles tiles' worth are interpolated down by sqrt(ratio)."""
    if not max_tiles:
        return rows, cols, 1.0
    ratio = math.sqrt(rows * cols / (max_tiles * side * side))
    if ratio > 1.1:
        return int(rows // ratio), int(cols // ratio), ratio
    return rows, cols, ratio


# --------------------------------------------------------------------------- Idefics3 / SmolVLM


def idefics3_resize(height: int, width: int, longest: int) -> tuple[int, int]:
    """Longest edge to `longest` keeping the aspect ratio (the other side rounded up to even), then
    both sides capped at 4096."""
    aspect = width / height
    if width >= height:
        width, height = longest, int(longest / aspect)
        height += height % 2
    else:
        height, width = longest, int(longest * aspect)
        width += width % 2
    height, width = max(height, 1), max(width, 1)
    if width >= height and width > IDEFICS3_MAX_SIDE:
        width, height = IDEFICS3_MAX_SIDE, int(IDEFICS3_MAX_SIDE / (width / height))
    elif height > width and height > IDEFICS3_MAX_SIDE:
        height, width = IDEFICS3_MAX_SIDE, int(IDEFICS3_MAX_SIDE * (width / height))
    return max(height, 1), max(width, 1)


def idefics3_split_size(height: int, width: int, tile: int) -> tuple[int, int]:
    """Resize for the encoder: the longer side up to a multiple of the tile, the other side scaled
    with it, then up to a multiple of the tile too."""
    aspect = width / height
    if width >= height:
        width = math.ceil(width / tile) * tile
        height = math.ceil(int(width / aspect) / tile) * tile
    else:
        height = math.ceil(height / tile) * tile
        width = math.ceil(int(height * aspect) / tile) * tile
    return height, width


# --------------------------------------------------------------------------- Mllama / Llama 4


def mllama_canvas(height: int, width: int, max_tiles: int, tile: int) -> tuple[int, int]:
    """The canvas (h, w) of whole tiles that needs the least upscaling (else the least downscaling),
    the smallest on a tie; arrangements are those with at most max_tiles tiles."""
    canvases = [(a * tile, b * tile) for a in range(1, max_tiles + 1) for b in range(1, max_tiles + 1)
                if a * b <= max_tiles]
    scales = [min(Fraction(ch, height), Fraction(cw, width)) for ch, cw in canvases]
    up = [s for s in scales if s >= 1]
    chosen = min(up) if up else max(scales)
    picks = [c for c, s in zip(canvases, scales) if s == chosen]
    return min(picks, key=lambda c: c[0] * c[1])


def fit_to_canvas(height: int, width: int, canvas_h: int, canvas_w: int, tile: int) -> tuple[int, int]:
    """Mllama: resize keeping the aspect ratio to fit the canvas, each side at least one tile."""
    target_w, target_h = min(max(width, tile), canvas_w), min(max(height, tile), canvas_h)
    scale_h, scale_w = target_h / height, target_w / width
    if scale_w < scale_h:
        return min(math.floor(height * scale_w) or 1, target_h), target_w
    return target_h, min(math.floor(width * scale_h) or 1, target_w)


def llama4_resolutions(max_chunks: int, tile: int) -> list[tuple[int, int]]:
    """Every (h, w) canvas of at most max_chunks tiles, grouped by aspect ratio in the processor's order."""
    by_ratio: dict[float, list[tuple[int, int]]] = {}
    for chunks in range(max_chunks, 0, -1):
        factors = sorted({f for i in range(1, int(chunks ** 0.5) + 1) if chunks % i == 0 for f in (i, chunks // i)})
        for f in factors:
            by_ratio.setdefault(f / (chunks // f), []).append((f, chunks // f))
    return [(h * tile, w * tile) for group in by_ratio.values() for h, w in group]


def llama4_canvas(height: int, width: int, max_chunks: int, tile: int, to_max: bool) -> tuple[int, int]:
    """Llama 4's best fit: the smallest upscale (the largest with resize_to_max_canvas), else the
    least downscale; the smallest area (first listed) on a tie."""
    canvases = llama4_resolutions(max_chunks, tile)
    scales = [min(Fraction(ch, height), Fraction(cw, width)) for ch, cw in canvases]
    up = [s for s in scales if s >= 1]
    chosen = (max(up) if to_max else min(up)) if up else max(scales)
    picks = [c for c, s in zip(canvases, scales) if s == chosen]
    return min(picks, key=lambda c: c[0] * c[1])


def fit_without_distortion(height: int, width: int, target_h: int, target_w: int) -> tuple[int, int]:
    """Llama 4: the largest size of the image's aspect ratio inside the canvas."""
    scale_w, scale_h = target_w / width, target_h / height
    if scale_w < scale_h:
        return min(math.floor(height * scale_w), target_h), target_w
    return target_h, min(math.floor(width * scale_h), target_w)


# --------------------------------------------------------------------------- Pixtral, Gemma 3


def pixtral_size(height: int, width: int, longest: int, patch: int) -> tuple[int, int]:
    """Longest edge down to `longest` (floored), then each side up to a whole number of patches."""
    ratio = max(height / longest, width / longest)
    if ratio > 1:
        height, width = int(math.floor(height / ratio)), int(math.floor(width / ratio))
    return ((height - 1) // patch + 1) * patch, ((width - 1) // patch + 1) * patch


def pan_and_scan(height: int, width: int, min_crop: int, max_crops: int, min_ratio: float) -> tuple[int, int, int, int]:
    """Gemma 3's crops of a long image: (crops along h, crops along w, crop height, crop width);
    (0, 0, 0, 0) when the image is not elongated enough or the crops would be too small."""
    if width >= height:
        if width / height < min_ratio:
            return 0, 0, 0, 0
        n_w = max(2, min(int(math.floor(width / min_crop)), int(math.floor(width / height + 0.5))))
        n_w, n_h = min(max_crops, n_w), 1
    else:
        if height / width < min_ratio:
            return 0, 0, 0, 0
        n_h = max(2, min(int(math.floor(height / min_crop)), int(math.floor(height / width + 0.5))))
        n_h, n_w = min(max_crops, n_h), 1
    crop_w, crop_h = int(math.ceil(width / n_w)), int(math.ceil(height / n_h))
    if min(crop_w, crop_h) < min_crop:
        return 0, 0, 0, 0
    return n_h, n_w, crop_h, crop_w
