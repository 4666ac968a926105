"""How an image of a given size becomes LLM tokens, step by step.

*Implementations of Large Language Models* section 2.1, Steps 2-11.

Pure arithmetic on a VisionSpec; no image is read. The records (`Step`, `ImageTokens`) and the token
counts of the first two rules (their `ImageRule`s are in inspector.image.rules):

- `qwen2_vl_resize`: resize both sides to multiples of d_patch * n_merge, keeping the pixel count
  within [min_pixels, max_pixels] (the Qwen2-VL image processor's `smart_resize` rule); the grid is
  t x h x w patches and the LLM sees t*h*w / n_merge^2 tokens.
- `internvl_tiles`: InternVL2's dynamic tiling: pick the tile grid (cols x rows, between
  min_dynamic_patch and max_dynamic_patch tiles) whose aspect ratio is closest to the image's,
  add a thumbnail tile when there is more than one tile, and give each tile
  (image_size / patch)^2 * downsample_ratio^2 tokens.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from inspector.errors import InspectError, printable
from inspector.spec.vision import VisionSpec

MAX_ASPECT = 200  # the Qwen2-VL processor refuses more extreme aspect ratios


@dataclass(frozen=True)
class Step:
    step: str
    quantity: str
    formula: str
    value: str


@dataclass(frozen=True)
class ImageTokens:
    height: int
    width: int
    rule: str
    resized: tuple[int, int]  # (height, width) fed to the encoder (InternVL: the tiled canvas)
    tiles: int  # images/tiles the vision encoder runs on (Qwen2-VL: 1)
    thumbnail: bool
    tile_grid: tuple[int, int] | None  # InternVL: (cols, rows)
    grid: tuple[int, int, int]  # (t, h, w) patches of one tile / image
    patches: int  # patches through the encoder, all tiles
    tokens: int  # image tokens in the LLM sequence
    steps: list[Step] = field(default_factory=list)
    specials: tuple[tuple[str, int], ...] = ()  # marker tokens the processor puts around them: (token, count)
    cross_states: int = 0  # Mllama: rows the LLM cross-attends to (the image is not in its sequence)


MAX_SIDE = 1_000_000  # pixels on one side of an --image-size (images themselves: MAX_IMAGE_PIXELS)


def parse_size(text: str) -> tuple[int, int]:
    """'224x224' -> (224, 224) as (height, width)."""
    m = re.fullmatch(r"\s*(\d{1,12})\s*[xX×]\s*(\d{1,12})\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise InspectError(f"--image-size: expected HEIGHTxWIDTH in pixels (e.g. 224x224), got {printable(repr(text))}")
    height, width = int(m.group(1)), int(m.group(2))
    if max(height, width) > MAX_SIDE:
        raise InspectError(f"--image-size: {height}x{width} has a side over {MAX_SIDE:,} pixels")
    return height, width


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int, str]:
    """Qwen2-VL's resize rule: sides divisible by `factor`, pixel count in [min_pixels, max_pixels]."""
    if max(height, width) / min(height, width) > MAX_ASPECT:
        raise InspectError(
            f"image {height}x{width}: aspect ratio {max(height, width) / min(height, width):.1f} exceeds "
            f"{MAX_ASPECT}, which the Qwen2-VL processor refuses"
        )
    h = round(height / factor) * factor
    w = round(width / factor) * factor
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
        how = f"rounded size exceeds max_pixels: both sides scaled by 1/{beta:.4f} and floored to multiples of {factor}"
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
        how = f"rounded size is below min_pixels: both sides scaled by {beta:.4f} and ceiled to multiples of {factor}"
    else:
        how = f"each side rounded to the nearest multiple of {factor}; pixel count within [min_pixels, max_pixels]"
    return h, w, how


def _first_seen(lo: int, hi: int):
    """The (cols, rows) grids with lo <= cols*rows <= hi, in the order InternVL2's loop
    `for n in lo..hi: for i in 1..n: for j in 1..n` first meets them, without its cubic work:
    at n = lo every pair with both sides <= lo, then at each n > lo the pairs whose larger side is n."""
    for i in range(1, lo + 1):
        yield from ((i, j) for j in range(max(1, -(-lo // i)), min(lo, hi // i) + 1))
    for n in range(lo + 1, hi + 1):
        first = max(1, -(-lo // n))
        yield from ((i, n) for i in range(first, min(n - 1, hi // n) + 1))
        yield from ((n, j) for j in range(first, min(n, hi // n) + 1))


def tile_candidates(lo: int, hi: int) -> list[tuple[int, int]]:
    """All (cols, rows) grids with lo <= cols*rows <= hi, fewest tiles first.

    Grids with the same number of tiles keep the order of InternVL2's own set (built here from the
    same insertion sequence), which its tie rule depends on. Work: O(hi log hi)."""
    return sorted(set(_first_seen(lo, hi)), key=lambda g: g[0] * g[1])


def closest_grid(width: int, height: int, tile: int, lo: int, hi: int) -> tuple[int, int]:
    """InternVL2's choice of tile grid: the closest aspect ratio; on a tie, the larger grid when the
    image has more than half the pixels of that grid."""
    aspect = width / height
    best, best_diff = (1, 1), math.inf
    for cols, rows in tile_candidates(lo, hi):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and width * height > 0.5 * tile * tile * cols * rows:
            best = (cols, rows)
    return best


def _n(x: int) -> str:
    return f"{x:,}"


def tile_tokens(v: VisionSpec) -> int:
    """InternVL: image tokens of one tile, (image_size / patch)^2 / n_merge^2."""
    side = (v.encoder.embed.image_size or 0) // v.encoder.embed.patch_size
    return side * side // (v.projector.merge_size * v.projector.merge_size)


def qwen2_vl_resize(v: VisionSpec, height: int, width: int, text_d: int) -> ImageTokens:
    proj = v.projector
    enc = v.encoder
    emb = enc.embed
    factor = emb.patch_size * proj.merge_size
    h, w, how = smart_resize(height, width, factor, v.image.min_pixels, v.image.max_pixels)
    t = 1  # one image; it is repeated d_t_patch times along time to fill one temporal patch
    gh, gw = h // emb.patch_size, w // emb.patch_size
    patches = t * gh * gw
    m2 = proj.merge_size ** 2
    tokens = patches // m2
    vec = emb.in_channels * emb.temporal_patch_size * emb.patch_size ** 2
    steps = [
        Step("Step 2", "input image (H x W)", "", f"{height} x {width} ({_n(height * width)} pixels)"),
        Step("Step 2", "resize factor", "d_patch x n_merge", f"{emb.patch_size} x {proj.merge_size} = {factor}"),
        Step("Step 2", "pixel bounds", f"[min_pixels, max_pixels] ({v.image.pixels_source})",
             f"[{_n(v.image.min_pixels)}, {_n(v.image.max_pixels)}]"),
        Step("Step 2", "resized image (H' x W')", how, f"{h} x {w} ({_n(h * w)} pixels)"),
        Step("Step 3", "temporal duplication", "image tiled d_t_patch times; t_grid = 1",
             f"(2, C, H', W') -> t_grid = {t}" if emb.temporal_patch_size == 2 else f"t_grid = {t}"),
        Step("Step 3", "grid (t_grid x h_grid x w_grid)", f"H'/{emb.patch_size} x W'/{emb.patch_size}",
             f"{t} x {gh} x {gw}"),
        Step("Step 3", "patches n_img", "t_grid * h_grid * w_grid", _n(patches)),
        Step("Step 4", "patch vector length", "C * d_t_patch * d_patch^2",
             f"{emb.in_channels} * {emb.temporal_patch_size} * {emb.patch_size}^2 = {_n(vec)}"),
        Step("Step 5", "image tokens", "t_grid * h_grid * w_grid / n_merge^2", f"{_n(patches)} / {m2} = {_n(tokens)}"),
        Step("Step 6", "after the 3D convolution", "(n_img, d_img)", f"({_n(patches)}, {enc.hidden_size})"),
        Step("Step 10", "after the encoder blocks", f"{enc.depth} blocks, shape kept", f"({_n(patches)}, {enc.hidden_size})"),
        Step("Step 11", "merged groups", "(n_img / n_merge^2, n_merge^2 * d_img)", f"({_n(tokens)}, {proj.in_size})"),
        Step("Step 11", "merger output (LLM input)", "(n_img / n_merge^2, d)", f"({_n(tokens)}, {text_d})"),
    ]
    return ImageTokens(height, width, v.image.rule, (h, w), 1, False, None, (t, gh, gw), patches, tokens, steps)


def internvl_tiles(v: VisionSpec, height: int, width: int, text_d: int) -> ImageTokens:
    enc = v.encoder
    emb = enc.embed
    tile = emb.image_size
    assert tile is not None
    side = tile // emb.patch_size
    per_tile = tile_tokens(v)
    steps = [Step("Input", "input image (H x W)", "", f"{height} x {width}, aspect W/H = {width / height:.4f}")]
    if v.image.dynamic_tiles:
        cands = tile_candidates(v.image.min_tiles, v.image.max_tiles)
        cols, rows = closest_grid(width, height, tile, v.image.min_tiles, v.image.max_tiles)
        steps += [
            Step("Tiling", "candidate grids (cols x rows)",
                 f"min_dynamic_patch <= cols*rows <= max_dynamic_patch ({v.image.min_tiles}..{v.image.max_tiles})",
                 f"{len(cands)} grids"),
            Step("Tiling", "chosen grid", "closest aspect ratio cols/rows (ties: larger grid if the image "
                 "covers > half of it)", f"{cols} x {rows} (ratio {cols / rows:.4f})"),
        ]
    else:
        cols, rows = 1, 1
        steps.append(Step("Tiling", "dynamic tiling", "dynamic_image_size is false", "one tile"))
    n_tiles = cols * rows
    thumb = v.image.use_thumbnail and n_tiles > 1
    total = n_tiles + (1 if thumb else 0)
    resized = (rows * tile, cols * tile)
    patches = total * side * side
    tokens = total * per_tile
    m = v.projector.merge_size
    steps += [
        Step("Tiling", "resized canvas (H' x W')", f"rows*{tile} x cols*{tile}", f"{resized[0]} x {resized[1]}"),
        Step("Tiling", "tiles", f"cols*rows{' + thumbnail (use_thumbnail, only when tiles > 1)' if v.image.use_thumbnail else ''}",
             f"{n_tiles} + 1 = {total}" if thumb else f"{total}"),
        Step("Encoder", "patches per tile", f"({tile}/{emb.patch_size})^2", f"{side} x {side} = {_n(side * side)}"),
        Step("Encoder", "sequence per tile", "patches + class token" if emb.class_token else "patches",
             _n(side * side + (1 if emb.class_token else 0))),
        Step("Encoder", "patches, all tiles", "tiles * patches per tile", _n(patches)),
        Step("Projector", "tokens per tile",
             f"pixel shuffle {v.projector.downsample_ratio}: patches * downsample_ratio^2 (class token dropped)",
             f"{_n(side * side)} / {m * m} = {_n(per_tile)}, width {v.projector.in_size}"),
        Step("Projector", "mlp1 output per tile", "(tokens per tile, d)", f"({_n(per_tile)}, {text_d})"),
        Step("Total", "image tokens", "tiles * tokens per tile", f"{total} * {_n(per_tile)} = {_n(tokens)}"),
    ]
    return ImageTokens(height, width, v.image.rule, resized, total, thumb, (cols, rows),
                       (1, side, side), patches, tokens, steps)
