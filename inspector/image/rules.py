"""How an image becomes LLM tokens, for every VLM: one `ImageRule` record per image-token rule, pure arithmetic.

`RULES` holds one `ImageRule` per rule (its typed facts, token count, pixel function, Table 2.1 line and
marker tokens), looked up by the name its facts record carries (`spec.vision.image.rule`). Pure arithmetic
on a VisionSpec, torch-free (*Implementations of Large Language Models* section 2.1, Steps 2-11); the
pixel functions (inspector.image.pixels) import torch when called.

Qwen2-VL's resize and InternVL's tiles are counted in inspector.image.tokens; the counts here add Gemma 3
(896x896 + optional pan-and-scan crops, average pooling to 256 tokens), LLaVA-NeXT/OneVision (anyres
tiles, unpadding, image_newline, OneVision's cap), Idefics3/SmolVLM (longest-edge resize, split into
tiles + a global image, pixel shuffle), Mllama (a tile canvas; the image is cross-attended, one
placeholder token), Pixtral/Mistral 3 (variable size, 2x2 patch merger, [IMG_BREAK] per row) and
Llama 4 (a tile canvas + global tile, pixel shuffle, tile separators).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Callable, Mapping

from inspector.errors import InspectError
from inspector.image import pixels as pix
from inspector.image import tiling
from inspector.image.layout import Recorder
from inspector.image.pixels import Result
from inspector.image.tokens import ImageTokens, Step, internvl_tiles, qwen2_vl_resize, tile_tokens
from inspector.spec.image_facts import (
    Gemma3PanAndScan, Gemma4Resize, Idefics3Split, InternVLTiles, Llama4Tiles, LlavaAnyres, MllamaTiles, PixtralRows, QwenResize,
    RuleFacts,
)
from inspector.spec.vision import VisionSpec


def _n(x: int) -> str:
    return f"{x:,}"


def _input(height: int, width: int) -> Step:
    return Step("Step 2", "input image (H x W)", "", f"{height} x {width} ({_n(height * width)} pixels)")


def _encoder(v: VisionSpec, per_tile: int, tiles: int, seq: int) -> list[Step]:
    enc = v.encoder
    return [
        Step("Step 3", "patches per tile", f"(side / {enc.embed.patch_size})^2", _n(per_tile)),
        Step("Step 6", "encoder input per tile", "patches" + (" + class token" if enc.embed.class_token else ""), _n(seq)),
        Step("Step 10", "after the encoder blocks", f"{enc.depth} blocks" + (f" + {enc.global_depth} gated global"
             if enc.global_depth else "") + ", shape kept", f"({tiles}, {_n(seq)}, {enc.hidden_size})"),
    ]


# --------------------------------------------------------------------------- Gemma 3


def gemma3(v: VisionSpec, height: int, width: int, text_d: int) -> ImageTokens:
    proj = v.projector
    f = v.image
    tile, per_image = f.tile, f.tokens_per_image
    n_h = n_w = 0
    if f.pan_and_scan:
        n_h, n_w, crop_h, crop_w = tiling.pan_and_scan(height, width, f.min_crop, f.max_crops, f.min_ratio)
    crops = n_h * n_w
    side = tile // v.encoder.embed.patch_size
    tokens = per_image * (1 + crops)
    steps = [_input(height, width),
             Step("Step 2", "pan-and-scan crops", "do_pan_and_scan" + (f": min ratio {f.min_ratio}, crops >= "
                  f"{f.min_crop} px, at most {f.max_crops}" if f.pan_and_scan else " is off"),
                  f"{n_h} x {n_w} crops of {crop_h} x {crop_w}" if crops else "none"),
             Step("Step 2", "resized (H' x W')", "each image and crop to the square tile, aspect not kept",
                  f"{1 + crops} x ({tile} x {tile})"),
             *_encoder(v, side * side, 1 + crops, side * side),
             Step("Step 11", "average pooling", f"{proj.merge_size} x {proj.merge_size} windows of the {side} x {side} grid",
                  f"{side // proj.merge_size} x {side // proj.merge_size} = {_n(per_image)} per image"),
             Step("Step 11", "projector output", "RMSNorm, then x W", f"({_n(tokens)}, {text_d})"),
             Step("Tokens", "image tokens", f"{per_image} per image or crop, each between <start_of_image> and "
                  "<end_of_image>", f"{1 + crops} * {per_image} = {_n(tokens)}")]
    return ImageTokens(height, width, v.image.rule, (tile, tile), 1 + crops, False, (n_w, n_h) if crops else None,
                       (1, side, side), (1 + crops) * side * side, tokens, steps,
                       (("<start_of_image>", 1 + crops), ("<end_of_image>", 1 + crops)))


# --------------------------------------------------------------------------- LLaVA-NeXT / OneVision


def llava_anyres(v: VisionSpec, height: int, width: int, text_d: int) -> ImageTokens:
    f = v.image
    tile = f.tile
    side = tile // v.encoder.embed.patch_size
    best_h, best_w = tiling.best_resolution(height, width, f.pinpoints)
    grid_rows, grid_cols = best_h // tile, best_w // tile
    rows, cols = tiling.unpad(height, width, side * grid_rows, side * grid_cols)
    max_tiles = int(f.aspect.removeprefix("anyres_max_")) if f.aspect.startswith("anyres_max_") else None
    rows2, cols2, ratio = tiling.capped(rows, cols, max_tiles, side)
    base = side * side + (1 if v.encoder.embed.class_token else 0)
    drop = 1 if f.strategy == "default" else 0
    tokens = base + rows2 * cols2 + rows2 - drop
    tiles = grid_rows * grid_cols + 1
    steps = [_input(height, width),
             Step("Step 2", "anyres grid", "image_grid_pinpoints: most pixels kept, then least padding",
                  f"{best_h} x {best_w} = {grid_rows} x {grid_cols} tiles of {tile}"),
             Step("Step 2", "tiles", "grid tiles + the whole image resized to one tile", f"{tiles}"),
             *_encoder(v, side * side, tiles, base),
             Step("Step 11", "base image features", "one tile's features" + (" minus the class token" if drop else ""),
                  _n(base - drop)),
             Step("Step 11", "grid features, padding removed", f"{side * grid_rows} x {side * grid_cols} -> rows x cols",
                  f"{rows} x {cols}"),
             Step("Step 11", "capped" if max_tiles else "no cap", f"{f.aspect}: shrink by sqrt(ratio) when ratio > 1.1"
                  if max_tiles else "LLaVA-NeXT keeps every feature", f"ratio {ratio:.3f} -> {rows2} x {cols2}"),
             Step("Step 11", "image_newline", "one learned vector after each row of grid features", _n(rows2)),
             Step("Tokens", "image tokens", "base + rows*cols + rows", f"({text_d}-wide) {_n(tokens)}")]
    return ImageTokens(height, width, v.image.rule, (best_h, best_w), tiles, False, (grid_cols, grid_rows),
                       (1, side, side), tiles * side * side, tokens, steps)


# --------------------------------------------------------------------------- Idefics3 / SmolVLM


def idefics3(v: VisionSpec, height: int, width: int, text_d: int) -> ImageTokens:
    f = v.image
    tile, m = f.tile, v.projector.merge_size
    side = v.encoder.embed.image_size // v.encoder.embed.patch_size
    per_tile = side * side // (m * m)
    h, w = tiling.idefics3_resize(height, width, f.longest)
    rows = cols = 0
    if f.split:
        h2, w2 = tiling.idefics3_split_size(h, w, tile)
        if h2 > tile or w2 > tile:
            rows, cols = h2 // tile, w2 // tile
        h, w = h2, w2
    tiles = rows * cols + 1
    tokens = tiles * per_tile
    steps = [_input(height, width),
             Step("Step 2", "resized (longest edge)", f"longest edge to {f.longest}, aspect kept", f"{h} x {w}"
                  if not f.split else f"{tiling.idefics3_resize(height, width, f.longest)}"),
             Step("Step 2", "split", f"sides up to multiples of {tile}; {tile} x {tile} tiles + one global image"
                  if f.split else "do_image_splitting is off: one image", f"{h} x {w}: {rows} x {cols} tiles + 1 global"
                  if rows else "no split: one global image"),
             *_encoder(v, side * side, tiles, side * side),
             Step("Step 11", "pixel shuffle", f"{m} x {m} neighbours concatenated: {side}^2 / {m * m}",
                  f"{_n(per_tile)} per tile, width {v.projector.in_size}"),
             Step("Step 11", "connector output", "Linear (no bias)", f"({_n(tokens)}, {text_d})"),
             Step("Tokens", "image tokens", "tiles * per tile; <fake_token_around_image>, <row_r_col_c> and "
                  "<global-img> mark them", f"{tiles} * {per_tile} = {_n(tokens)}")]
    specials = (("<fake_token_around_image>", rows * cols + 2), ("<row_r_col_c>", rows * cols), ("<global-img>", 1),
                ("\\n", rows + 1 if rows else 0))
    return ImageTokens(height, width, v.image.rule, (h, w), tiles, False, (cols, rows) if rows else None,
                       (1, side, side), tiles * side * side, tokens, steps, specials)


# --------------------------------------------------------------------------- Mllama


def mllama(v: VisionSpec, height: int, width: int, text_d: int) -> ImageTokens:
    f = v.image
    tile, max_tiles = f.tile, f.max_tiles
    canvas_h, canvas_w = tiling.mllama_canvas(height, width, max_tiles, tile)
    h, w = tiling.fit_to_canvas(height, width, canvas_h, canvas_w, tile)
    tiles = (canvas_h // tile) * (canvas_w // tile)
    side = tile // v.encoder.embed.patch_size
    seq = side * side + 1
    states = max_tiles * seq
    steps = [_input(height, width),
             Step("Step 2", "canvas", f"tile arrangements of at most {max_tiles} tiles: least upscaling, then smallest",
                  f"{canvas_h} x {canvas_w} ({canvas_h // tile} x {canvas_w // tile} tiles)"),
             Step("Step 2", "resized, then padded", "aspect kept, each side at least one tile", f"{h} x {w}"),
             Step("Step 2", "tiles", f"padded to max_image_tiles ({max_tiles}) per image", f"{tiles} used of {max_tiles}"),
             *_encoder(v, side * side, max_tiles, seq),
             Step("Step 11", "features", f"last layer + {len(v.encoder.feature_layers)} intermediate layers concatenated",
                  f"({max_tiles}, {_n(seq)}, {v.projector.dims.get('feat', 0)})"),
             Step("Step 11", "projector output: cross-attention states", "Linear -> (tiles * (patches + 1), d)",
                  f"({_n(states)}, {text_d})"),
             Step("Tokens", "image tokens in the sequence", "one <|image|>: the LLM reads the image through its "
                  "cross-attention layers", "1")]
    return ImageTokens(height, width, v.image.rule, (canvas_h, canvas_w), tiles, False,
                       (canvas_w // tile, canvas_h // tile), (1, side, side), tiles * side * side, 1, steps,
                       cross_states=states)


# --------------------------------------------------------------------------- Pixtral / Mistral 3


def pixtral(v: VisionSpec, height: int, width: int, text_d: int) -> ImageTokens:
    p, m = v.encoder.embed.patch_size, v.projector.merge_size
    h, w = tiling.pixtral_size(height, width, v.image.longest, p * m)
    gh, gw = h // p, w // p
    rows, cols = gh // m, gw // m
    if rows == 0 or cols == 0:
        raise InspectError(f"image {height}x{width}: its {gh}x{gw} patch grid is smaller than the {m}x{m} patch merger, "
                           "so it gives no image tokens")
    tokens = rows * cols
    steps = [_input(height, width),
             Step("Step 2", "resized (H' x W')", f"longest edge at most {v.image.longest}, then sides up to "
                  f"multiples of d_patch x n_merge = {p * m}", f"{h} x {w}"),
             Step("Step 3", "patch grid", f"H'/{p} x W'/{p}", f"{gh} x {gw} = {_n(gh * gw)} patches"),
             Step("Step 7", "positions", "2D RoPE over (row, column): any size, nothing stored", ""),
             Step("Step 10", "after the encoder blocks", f"{v.encoder.depth} blocks, shape kept", f"({_n(gh * gw)}, {v.encoder.hidden_size})"),
             Step("Step 11", "patch merger", f"{m} x {m} patches concatenated -> Linear to d_img", f"{rows} x {cols}"),
             Step("Step 11", "projector output", "Linear, GELU, Linear", f"({_n(tokens)}, {text_d})"),
             Step("Tokens", "image tokens", "[IMG] per merged patch; [IMG_BREAK] after each row, [IMG_END] after the "
                  "last", f"{rows} * {cols} = {_n(tokens)} + {rows - 1} + 1")]
    return ImageTokens(height, width, v.image.rule, (h, w), 1, False, None, (1, gh, gw), gh * gw, tokens, steps,
                       (("[IMG_BREAK]", rows - 1), ("[IMG_END]", 1)))


# --------------------------------------------------------------------------- Llama 4


def llama4(v: VisionSpec, height: int, width: int, text_d: int) -> ImageTokens:
    proj = v.projector
    f = v.image
    tile = f.tile
    canvas_h, canvas_w = tiling.llama4_canvas(height, width, f.max_chunks, tile, f.to_max_canvas)
    h, w = tiling.fit_without_distortion(height, width, canvas_h, canvas_w)
    r_h, r_w = canvas_h // tile, canvas_w // tile
    chunks = r_h * r_w
    tiles = chunks + (1 if chunks > 1 else 0)
    side = tile // v.encoder.embed.patch_size
    per_tile = side * side // (proj.merge_size ** 2)
    tokens = tiles * per_tile
    steps = [_input(height, width),
             Step("Step 2", "canvas", f"at most {f.max_chunks} tiles of {tile}: least upscaling, then smallest",
                  f"{canvas_h} x {canvas_w} ({r_h} x {r_w} tiles)"),
             Step("Step 2", "resized, then padded", "aspect kept inside the canvas", f"{h} x {w}"),
             Step("Step 2", "tiles", "canvas tiles + a global tile (the whole image) when more than one",
                  f"{chunks} + {tiles - chunks}"),
             *_encoder(v, side * side, tiles, side * side + 1),
             Step("Step 11", "pixel shuffle", f"class token dropped; {proj.merge_size} x {proj.merge_size} -> one token",
                  f"{_n(per_tile)} per tile, width {proj.in_size}"),
             Step("Step 11", "projector output", "adapter MLP, then Linear", f"({_n(tokens)}, {text_d})"),
             Step("Tokens", "image tokens", "<|patch|> per token; <|tile_x_separator|> between tiles of a row, "
                  "<|tile_y_separator|> after each row, <|image|> before the global tile", f"{tiles} * {per_tile} = "
                  f"{_n(tokens)}")]
    seps = chunks > 1
    specials = (("<|image_start|>", 1), ("<|tile_x_separator|>", r_h * (r_w - 1) if seps else 0),
                ("<|tile_y_separator|>", r_h if seps else 0), ("<|image|>", 1), ("<|image_end|>", 1))
    return ImageTokens(height, width, v.image.rule, (canvas_h, canvas_w), tiles, seps, (r_w, r_h),
                       (1, side, side), tiles * side * side, tokens, steps, specials)


# --------------------------------------------------------------------------- Gemma 4


def gemma4_size(height: int, width: int, patch: int, kernel: int, max_tokens: int) -> tuple[int, int]:
    """The resized (H', W'): the largest sides, multiples of patch x kernel, keeping the aspect within
    max_tokens x kernel^2 patches (transformers 5.25 image_processing_gemma4.get_aspect_ratio_preserving_size)."""
    target = max_tokens * kernel * kernel * patch * patch
    side = patch * kernel
    factor = math.sqrt(target / (height * width))
    h, w = int(math.floor(factor * height / side)) * side, int(math.floor(factor * width / side)) * side
    longest = max_tokens * side  # (max_patches // kernel^2) * side
    if h == 0 and w == 0:
        raise InspectError(f"image {height}x{width}: resizes to 0 x 0 (sides must be multiples of {side})")
    if h == 0:
        h, w = side, min(width // height * side, longest)
    elif w == 0:
        h, w = min(height // width * side, longest), side
    if h * w > target:
        raise InspectError(f"image {height}x{width}: {h} x {w} exceeds {max_tokens * kernel * kernel} patches")
    return h, w


def gemma4(v: VisionSpec, height: int, width: int, text_d: int) -> ImageTokens:
    p, k = v.encoder.embed.patch_size, v.projector.merge_size
    h, w = gemma4_size(height, width, p, k, v.image.max_soft_tokens)
    gh, gw = h // p, w // p
    tokens = gh * gw // (k * k)
    steps = [_input(height, width),
             Step("Step 2", "resized (H' x W')", f"aspect kept, at most {v.image.max_soft_tokens} x {k}^2 patches, "
                  f"sides multiples of d_patch x kernel = {p * k}", f"{h} x {w}"),
             Step("Step 3", "patch grid", f"H'/{p} x W'/{p}", f"{gh} x {gw} = {_n(gh * gw)} patches"),
             Step("Step 10", "after the encoder blocks", f"{v.encoder.depth} blocks, shape kept",
                  f"({_n(gh * gw)}, {v.encoder.hidden_size})"),
             Step("Step 11", "average pool", f"{k} x {k} patches -> one soft token", _n(tokens)),
             Step("Step 11", "projector output", "RMSNorm (no weight), Linear", f"({_n(tokens)}, {text_d})")]
    return ImageTokens(height, width, v.image.rule, (h, w), 1, False, None, (1, gh, gw), gh * gw, tokens, steps)


def _no_native_pixels(image: Any, v: VisionSpec, record: Recorder | None = None) -> Result:
    raise InspectError(f"{v.image.rule}: this vision tower has no native forward; its images go through "
                       "transformers (inspect trace --seq-len N)")


# --------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class ImageRule:
    """One image-token rule: its facts (the typed record a wrapper names, read with the spec), the token
    count, the pixel function (resize / tiles; torch when called), the "image input" line of Table 2.1,
    the unit of its "image tokens" line, and the marker tokens around the image tokens where they do
    not depend on the image (the other counts give their own)."""

    facts: type[RuleFacts]
    count: Callable[[VisionSpec, int, int, int], ImageTokens]
    pixels: Callable[..., Result]
    describe: Callable[[VisionSpec], str]
    unit: Callable[[VisionSpec, ImageTokens], str] = lambda v, it: ""
    markers: tuple[tuple[str, int], ...] = ()

    @property
    def name(self) -> str:
        return self.facts.rule


def _resize_text(v: VisionSpec) -> str:
    return f"resize to multiples of {v.encoder.embed.patch_size * v.projector.merge_size} within " \
           f"[{v.image.min_pixels:,}, {v.image.max_pixels:,}] pixels ({v.image.pixels_source})"


def _tiles_text(v: VisionSpec) -> str:
    side = v.encoder.embed.image_size
    if not v.image.dynamic_tiles:
        return f"one {side}x{side} tile"
    thumb = " + thumbnail when > 1 tile" if v.image.use_thumbnail else ""
    return f"{v.image.min_tiles}..{v.image.max_tiles} tiles of {side}x{side}{thumb}"


RULES: Mapping[str, ImageRule] = MappingProxyType({r.name: r for r in (
    ImageRule(QwenResize, qwen2_vl_resize, pix.qwen, _resize_text,
              lambda v, it: f"t*h*w / {v.projector.merge_size ** 2}",
              (("<|vision_start|>", 1), ("<|vision_end|>", 1))),
    ImageRule(InternVLTiles, internvl_tiles, pix.internvl, _tiles_text,
              lambda v, it: f"{tile_tokens(v)} per tile", (("<img>", 1), ("</img>", 1))),
    ImageRule(Gemma3PanAndScan, gemma3, pix.gemma3,
              lambda v: f"{v.image.tile}x{v.image.tile}, aspect not kept; pan-and-scan crops "
                        f"{'on' if v.image.pan_and_scan else 'off'}"),
    ImageRule(LlavaAnyres, llava_anyres, pix.llava,
              lambda v: f"anyres: {len(v.image.pinpoints)} grids of {v.image.tile}x{v.image.tile} tiles "
                        f"+ the whole image" + (f", {v.image.aspect}" if v.image.aspect else "")),
    ImageRule(Idefics3Split, idefics3, pix.idefics3,
              lambda v: f"longest edge {v.image.longest}, split into {v.image.tile}x{v.image.tile} "
                        f"tiles + a global image" if v.image.split else f"one {v.image.tile} image"),
    ImageRule(MllamaTiles, mllama, pix.mllama,
              lambda v: f"canvas of up to {v.image.max_tiles} tiles of {v.image.tile}x{v.image.tile}",
              lambda v, it: f"1 placeholder; {it.cross_states:,} cross-attention states"),
    ImageRule(PixtralRows, pixtral, pix.pixtral,
              lambda v: f"any size, longest edge at most {v.image.longest}, sides multiples of "
                        f"{v.encoder.embed.patch_size * v.projector.merge_size}"),
    ImageRule(Llama4Tiles, llama4, pix.llama4,
              lambda v: f"canvas of up to {v.image.max_chunks} tiles of {v.image.tile}x{v.image.tile} + a global tile"),
    ImageRule(Gemma4Resize, gemma4, _no_native_pixels,
              lambda v: f"aspect kept, at most {v.image.max_soft_tokens} soft tokens of "
                        f"{v.projector.merge_size}x{v.projector.merge_size} patches"),
)})


def image_tokens(v: VisionSpec, height: int, width: int, text_hidden: int) -> ImageTokens:
    """The walkthrough for one image of height x width pixels, by the spec's rule."""
    if height < 1 or width < 1:
        raise InspectError(f"image size must be positive, got {height}x{width}")
    rule = RULES[v.image.rule]
    it = rule.count(v, height, width, text_hidden)
    return replace(it, specials=rule.markers) if rule.markers else it


def image_pixels(image: Any, v: VisionSpec, record: Recorder | None = None) -> Result:
    """(pixel_values, grid_thw or None, layout) for any vision tower, by the spec's rule (torch)."""
    return RULES[v.image.rule].pixels(image, v, record)


def input_text(v: VisionSpec) -> str:
    """Table 2.1's "image input" line: what the processor does to an image."""
    return RULES[v.image.rule].describe(v)


def tokens_text(v: VisionSpec, text_hidden: int) -> str:
    """Tokens of a 224x224 image, with the rule's unit."""
    it = image_tokens(v, 224, 224, text_hidden)
    unit = RULES[v.image.rule].unit(v, it)
    return f"{unit} (224x224 -> {it.tokens:,})" if unit else f"224x224 -> {it.tokens:,}"


# Side lengths tried for the largest image: they cover every rule's cap (Qwen's max_pixels squares, tile
# canvases up to 12 tiles of 448, Pixtral's longest edge 1540); the rule itself caps what it accepts.
_SIDES = (224, 336, 384, 448, 560, 672, 896, 1024, 1120, 1344, 1540, 1792, 2048, 2240, 2688, 3584, 4096, 5376, 8192)


def largest_image(v: VisionSpec, text_hidden: int) -> ImageTokens:
    """The image with the most encoder positions (then tokens) the processor accepts, among sizes up to
    8192 x 8192: what vLLM's dummy data uses (the processors' get_image_size_with_most_features)."""
    best: tuple[tuple[int, int, int], ImageTokens] | None = None
    for h in _SIDES:
        for w in _SIDES:
            try:
                it = image_tokens(v, h, w, text_hidden)
            except InspectError:
                continue
            key = (it.patches, it.tokens + it.cross_states, -h * w)
            if best is None or key > best[0]:
                best = (key, it)
    if best is None:
        raise InspectError(f"{v.image.rule}: no image size between 224 and 8192 pixels a side is accepted")
    return best[1]
