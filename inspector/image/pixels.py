"""From an RGB image to the pixel tensor a vision tower reads, for every image-token rule (Steps 2-4).

One function per rule (each rule's `ImageRule.pixels` in inspector.image.rules): it resizes / tiles /
pads the image the way its processor does (the geometry comes from inspector.image.tiling, the same
functions the token counts use); inspector.image.preprocess rescales by 1/255, normalizes with the
spec's mean/std and stacks the tiles, and holds Qwen2-VL's patchify and InternVL's tiles. Each
returns (pixel_values, grid_thw or None, ImageLayout) and reports each step to an optional
`record(name, tensor_or_shape, note)` callable. torch is imported when an image is read, not here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.image import tiling
from inspector.image.layout import ImageLayout, Recorder
from inspector.spec.vision import VisionSpec

if TYPE_CHECKING:
    import torch

Result = tuple["torch.Tensor", "torch.Tensor | None", ImageLayout]


def _resize(image: Any, height: int, width: int, resample: str) -> Any:
    from PIL import Image

    if image.size == (width, height):
        return image
    return image.resize((width, height), resample=getattr(Image.Resampling, resample))


def _pad(image: Any, height: int, width: int, center: bool = False) -> Any:
    """The image on a black canvas of height x width (top-left, or centred)."""
    from PIL import Image

    canvas = Image.new("RGB", (width, height))
    w, h = image.size
    canvas.paste(image, ((width - w) // 2, (height - h) // 2) if center else (0, 0))
    return canvas


def _crops(image: Any, rows: int, cols: int, tile: int) -> list[Any]:
    return [image.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile)) for r in range(rows) for c in range(cols)]


def _stack(tiles: list[Any], v: VisionSpec, record: Recorder | None, note: str, pad_to: int = 0) -> torch.Tensor:
    from inspector.image.preprocess import stack_tiles

    return stack_tiles(tiles, v, record, note, pad_to)


def _size(image: Any, record: Recorder | None) -> tuple[int, int]:
    width, height = image.size
    if record:
        record("image.rgb", (height, width, 3), "image converted to RGB, (H, W, C)")
    return height, width


# --------------------------------------------------------------------------- one function per rule


def qwen(image: Any, v: VisionSpec, record: Recorder | None = None) -> Result:
    from inspector.image.preprocess import qwen2_vl_pixels

    size = (image.size[1], image.size[0])
    pixel_values, grid_thw = qwen2_vl_pixels(image, v, record)
    return pixel_values, grid_thw, ImageLayout(size)


def internvl(image: Any, v: VisionSpec, record: Recorder | None = None) -> Result:
    from inspector.image.preprocess import internvl_pixels

    size = (image.size[1], image.size[0])
    pixel_values = internvl_pixels(image, v, record)
    return pixel_values, None, ImageLayout(size, tile_count=pixel_values.shape[0])


def gemma3(image: Any, v: VisionSpec, record: Recorder | None = None) -> Result:
    f = v.image
    h, w = _size(image, record)
    tiles = [image]
    if f.pan_and_scan:
        n_h, n_w, ch, cw = tiling.pan_and_scan(h, w, f.min_crop, f.max_crops, f.min_ratio)
        tiles += [image.crop((c * cw, r * ch, (c + 1) * cw, (r + 1) * ch)) for r in range(n_h) for c in range(n_w)]
    tiles = [_resize(t, f.tile, f.tile, "BILINEAR") for t in tiles]
    if record:
        record("image.resize", (len(tiles), f.tile, f.tile, 3),
               f"the image{' and its pan-and-scan crops' if len(tiles) > 1 else ''}, bilinear to {f.tile}x{f.tile}")
    return _stack(tiles, v, record, "(images, C, S, S)"), None, ImageLayout((h, w), tile_count=len(tiles))


def llava(image: Any, v: VisionSpec, record: Recorder | None = None) -> Result:
    f, tile = v.image, v.image.tile
    h, w = _size(image, record)
    best_h, best_w = tiling.best_resolution(h, w, f.pinpoints)
    scale = min(best_w / w, best_h / h)
    fit_h, fit_w = min(best_h, max(1, int(h * scale + 0.5))), min(best_w, max(1, int(w * scale + 0.5)))
    canvas = _pad(_resize(image, fit_h, fit_w, "BICUBIC"), best_h, best_w, center=True)
    rows, cols = best_h // tile, best_w // tile
    tiles = [_resize(image, tile, tile, "BICUBIC")] + _crops(canvas, rows, cols, tile)
    if record:
        record("tiling.resize", (best_h, best_w, 3), f"anyres grid {rows}x{cols}: fitted, padded to {best_h}x{best_w}")
        record("tiling.tiles", (len(tiles), tile, tile, 3), "the whole image resized + the grid tiles")
    return _stack(tiles, v, record, "(1 + rows*cols, C, S, S)"), None, ImageLayout((h, w), tiles=(rows, cols),
                                                                                  tile_count=len(tiles))


def idefics3(image: Any, v: VisionSpec, record: Recorder | None = None) -> Result:
    f, tile = v.image, v.image.tile
    h, w = _size(image, record)
    rh, rw = tiling.idefics3_resize(h, w, f.longest)
    rows = cols = 0
    if f.split:
        rh, rw = tiling.idefics3_split_size(rh, rw, tile)
        if rh > tile or rw > tile:
            rows, cols = rh // tile, rw // tile
    resized = _resize(image, rh, rw, "LANCZOS")
    tiles = _crops(resized, rows, cols, tile) + [_resize(resized, tile, tile, "LANCZOS")]
    if record:
        record("tiling.tiles", (len(tiles), tile, tile, 3), f"{rows}x{cols} tiles of {rh}x{rw} + one global image")
    return _stack(tiles, v, record, "(tiles, C, S, S)"), None, ImageLayout((h, w), tiles=(rows, cols),
                                                                          tile_count=len(tiles))


def mllama(image: Any, v: VisionSpec, record: Recorder | None = None) -> Result:
    f, tile = v.image, v.image.tile
    h, w = _size(image, record)
    canvas_h, canvas_w = tiling.mllama_canvas(h, w, f.max_tiles, tile)
    fit_h, fit_w = tiling.fit_to_canvas(h, w, canvas_h, canvas_w, tile)
    rows, cols = canvas_h // tile, canvas_w // tile
    tiles = _crops(_pad(_resize(image, fit_h, fit_w, "BILINEAR"), canvas_h, canvas_w), rows, cols, tile)
    pixel_values = _stack(tiles, v, record, "(tiles, C, S, S)", pad_to=f.max_tiles)
    if record:
        record("tiling.tiles", pixel_values, f"{rows}x{cols} tiles of a {canvas_h}x{canvas_w} canvas, padded to "
               f"max_image_tiles {f.max_tiles}")
    aspect = 1 + tiling_arrangements(f.max_tiles).index((rows, cols))
    return pixel_values, None, ImageLayout((h, w), tiles=(rows, cols), aspect_id=aspect, tile_count=len(tiles))


def tiling_arrangements(max_tiles: int) -> list[tuple[int, int]]:
    """Mllama's supported (rows, cols) tile arrangements in the processor's order (id = index + 1)."""
    return [(a, b) for a in range(1, max_tiles + 1) for b in range(1, max_tiles + 1) if a * b <= max_tiles]


def pixtral(image: Any, v: VisionSpec, record: Recorder | None = None) -> Result:
    h, w = _size(image, record)
    rh, rw = tiling.pixtral_size(h, w, v.image.longest, v.encoder.embed.patch_size * v.projector.merge_size)
    pixel_values = _stack([_resize(image, rh, rw, "BICUBIC")], v, record, "(1, C, H', W')")
    return pixel_values, None, ImageLayout((h, w), grid=(rh // v.encoder.embed.patch_size, rw // v.encoder.embed.patch_size))


def llama4(image: Any, v: VisionSpec, record: Recorder | None = None) -> Result:
    f, tile = v.image, v.image.tile
    h, w = _size(image, record)
    canvas_h, canvas_w = tiling.llama4_canvas(h, w, f.max_chunks, tile, f.to_max_canvas)
    fit_h, fit_w = tiling.fit_without_distortion(h, w, canvas_h, canvas_w)
    rows, cols = canvas_h // tile, canvas_w // tile
    tiles = _crops(_pad(_resize(image, fit_h, fit_w, "BILINEAR"), canvas_h, canvas_w), rows, cols, tile)
    if len(tiles) > 1:
        tiles.append(_resize(image, tile, tile, "BILINEAR"))
    if record:
        record("tiling.tiles", (len(tiles), tile, tile, 3), f"{rows}x{cols} tiles" + (" + a global tile"
               if len(tiles) > 1 else ""))
    return _stack(tiles, v, record, "(tiles, C, S, S)"), None, ImageLayout((h, w), tiles=(rows, cols),
                                                                          tile_count=len(tiles))
