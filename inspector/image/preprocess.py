"""From an image file to the pixel tensor a vision tower reads.

*Implementations of Large Language Models* section 2.1, Steps 2-4.

- `load_image(path)`: open with PIL and convert to RGB; anything unreadable or of an unsupported
  mode is one `InspectError` line naming the file. `synthetic_image(h, w)` stands in for
  `--image-size`.
- `qwen2_vl_pixels(image, v)`: resize to multiples of d_patch * n_merge within the pixel bounds
  (`image_tokens.smart_resize`, bicubic like the Qwen2-VL processor), rescale 1/255, normalize with
  the processor mean/std, then the patchify of Steps 3-4: temporal duplication, the 9-axis reshape,
  its transpose and the flatten to (t*h*w, C*d_t_patch*d_patch^2), plus grid_thw (1, 3).
- `internvl_pixels(image, v)`: InternVL2's dynamic tiling into image_size tiles (+ thumbnail),
  ImageNet normalization, giving (tiles, 3, S, S).

Each function takes an optional `record(name, tensor_or_shape, note="")` callable and calls it
once per step; with `record=None` nothing is recorded. `StepLog` is a ready-made recorder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inspector.errors import InspectError, one_line, printable
from inspector.steps import Record
from inspector.image.layout import Recorder
from inspector.image.tokens import closest_grid, smart_resize
from inspector.spec.image_facts import MAX_IMAGE_PIXELS
from inspector.spec.vision import VisionSpec


# PIL modes we turn into RGB (as transformers' convert_to_rgb does: alpha composited onto white).
RGB_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "La")


@dataclass
class StepLog:
    """A recorder: `log(name, tensor_or_shape, note=...)` appends a Record to `log.steps`."""

    steps: list[Record] = field(default_factory=list)

    def __call__(self, name: str, value: Any, note: str = "") -> None:
        shape = tuple(value.shape) if hasattr(value, "shape") else tuple(value)
        dtype = str(value.dtype).replace("torch.", "") if hasattr(value, "dtype") else ""
        self.steps.append(Record(name, "", (tuple(int(d) for d in shape),), dtype, "Step 2", note))

    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def shape(self, name: str) -> tuple[int, ...]:
        return next(s.shape for s in self.steps if s.name == name)


# --------------------------------------------------------------------------- loading


def to_rgb(image: Any, where: str = "image") -> Any:
    """A PIL image in RGB; alpha (or palette transparency) is composited onto white."""
    from PIL import Image

    mode = image.mode
    if mode not in RGB_MODES:
        raise InspectError(
            f"{where}: image mode {mode!r} is not supported (16-bit and float images are refused; "
            f"convert to 8-bit RGB first)"
        )
    if mode == "RGB":
        return image
    if "A" in image.getbands() or "a" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | Path) -> Any:
    """Open an image file and return it as an RGB PIL image (Step 2, first bullet).

    Only a regular file of at most LIMITS["image"] bytes is opened, and an image of more than
    MAX_IMAGE_PIXELS pixels is refused before it is decoded."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    from inspector import files

    path = Path(path)
    if not os.path.lexists(path):
        raise InspectError(f"{path}: image file not found")
    with files.open_regular(path, "an image file") as f:
        size = os.fstat(f.fileno()).st_size
        if size > files.LIMITS["image"]:
            raise InspectError(f"{path}: {size:,} bytes, over the {files.LIMITS['image']:,}-byte limit for an image")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(f) as img:
                    check_pixels(img.height, img.width, str(path))
                    img.load()  # decode now: truncated files fail here, not later
                    image = img.copy()
        except InspectError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InspectError(f"{path}: image too large ({one_line(exc)})") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, MemoryError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InspectError(f"{path}: not a readable image ({printable(reason)})") from None
    return to_rgb(image, str(path))


def check_pixels(height: int, width: int, what: str) -> None:
    """Refuse an image (or a canvas) of more than MAX_IMAGE_PIXELS pixels, before allocating it."""
    if height * width > MAX_IMAGE_PIXELS:
        raise InspectError(f"{what}: {height}x{width} is {height * width:,} pixels, more than the "
                           f"{MAX_IMAGE_PIXELS:,} (8192 x 8192) an image may have here")


def synthetic_image(height: int, width: int) -> Any:
    """A deterministic RGB test card of height x width: gradients in R and G, a checkerboard in B.

    Built in uint8 by broadcasting (3 bytes a pixel, no float planes)."""
    from PIL import Image

    if height < 1 or width < 1:
        raise InspectError(f"--image-size: sides must be positive, got {height}x{width}")
    check_pixels(height, width, "--image-size")
    rgb = np.empty((height, width, 3), dtype=np.uint8)  # (H, W, 3)
    rgb[..., 0] = np.linspace(0, 255, height, dtype=np.float32).astype(np.uint8)[:, None]  # rows
    rgb[..., 1] = np.linspace(0, 255, width, dtype=np.float32).astype(np.uint8)[None, :]  # columns
    rgb[..., 2] = ((np.arange(height)[:, None] // 16 + np.arange(width)[None, :] // 16) % 2).astype(np.uint8) * 255
    return Image.fromarray(rgb, "RGB")


def normalize(image: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (H, W, C) -> rescaled by 1/255 and normalized, as a float32 (C, H, W) tensor."""
    pixels = np.asarray(image, dtype=np.uint8)  # (H, W, C)
    rescaled = np.empty(pixels.shape, dtype=np.float32)  # (H, W, C)
    for top in range(0, pixels.shape[0], 512):  # in float64 like the processors, 512 rows at a time
        rescaled[top:top + 512] = pixels[top:top + 512].astype(np.float64) * (1 / 255)
    x = torch.from_numpy(rescaled).permute(2, 0, 1)  # (C, H, W) in [0, 1]
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]  # (C, 1, 1)
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]  # (C, 1, 1)
    return x.sub_(m).div_(s)  # (C, H, W), in place: (x - m) / s without two more copies


# --------------------------------------------------------------------------- Qwen2-VL


def qwen2_vl_pixels(image: Any, v: VisionSpec, record: Recorder | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB PIL image -> pixel_values (t*h*w, C*d_t_patch*d_patch^2) and grid_thw (1, 3)."""
    from PIL import Image

    p, m, tp = v.encoder.embed.patch_size, v.projector.merge_size, v.encoder.embed.temporal_patch_size
    width, height = image.size
    if record:
        record("image.rgb", (height, width, 3), "image converted to RGB, (H, W, C)")
    h, w, how = smart_resize(height, width, p * m, v.image.min_pixels, v.image.max_pixels)
    check_pixels(h, w, "resized image")
    if (h, w) != (height, width):
        image = image.resize((w, h), resample=Image.Resampling.BICUBIC)
    if record:
        record("image.resize", (h, w, 3), f"bicubic to multiples of {p}x{m}={p * m}: {how}")
    x = normalize(image, v.image_mean, v.image_std)  # (C, H, W)
    if record:
        record("image.normalize", x, "x/255, then (x - mean) / std per channel, (C, H, W)")

    C = x.shape[0]
    gh, gw = h // p, w // p
    x = x[None].expand(tp, C, h, w)  # (t_patch, C, H, W): Step 3, temporal duplication
    if record:
        record("image.temporal", x, f"the image repeated {tp} times along time: t_grid = 1, d_t_patch = {tp}")
    t = x.shape[0] // tp  # t_grid
    x = x.reshape(t, tp, C, gh // m, m, p, gw // m, m, p)  # (t, tp, C, h/m, m, p, w/m, m, p)
    if record:
        record("image.reshape", x, "(t_grid, d_t_patch, C, h_grid/n_merge, n_merge, d_patch, w_grid/n_merge, n_merge, d_patch)")
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)  # (t, h/m, w/m, m, m, C, tp, p, p)
    if record:
        record("image.transpose", x, "Step 4: (t_grid, h_grid/n_merge, w_grid/n_merge, n_merge, n_merge, C, d_t_patch, d_patch, d_patch)")
    pixel_values = x.reshape(t * gh * gw, C * tp * p * p)  # (t*h*w, C*tp*p*p)
    if record:
        record("image.patches", pixel_values, "flattened patches (t_grid*h_grid*w_grid, C*d_t_patch*d_patch^2)")
    grid_thw = torch.tensor([[t, gh, gw]], dtype=torch.long)  # (1, 3)
    return pixel_values, grid_thw


# --------------------------------------------------------------------------- InternVL2


def internvl_tiles(image: Any, v: VisionSpec, record: Recorder | None = None) -> list[Any]:
    """InternVL2's dynamic tiling: the closest-aspect grid of S x S tiles, row by row, then a
    thumbnail of the whole image when there is more than one tile (use_thumbnail)."""
    from PIL import Image

    S = v.encoder.embed.image_size
    assert S is not None, "an internvl_tiles spec"
    width, height = image.size
    if record:
        record("image.rgb", (height, width, 3), "image converted to RGB, (H, W, C)")
    if v.image.dynamic_tiles:
        cols, rows = closest_grid(width, height, S, v.image.min_tiles, v.image.max_tiles)
    else:
        cols, rows = 1, 1
    check_pixels(rows * S, cols * S, f"tiling {cols}x{rows} tiles of {S}")
    canvas = image.resize((cols * S, rows * S), resample=Image.Resampling.BICUBIC)
    if record:
        record("tiling.resize", (rows * S, cols * S, 3),
               f"grid {cols}x{rows} (cols x rows) of {v.image.min_tiles}..{v.image.max_tiles} tiles, closest to aspect "
               f"{width / height:.3f}; bicubic to (rows*{S}, cols*{S})")
    tiles = [canvas.crop((c * S, r * S, (c + 1) * S, (r + 1) * S)) for r in range(rows) for c in range(cols)]
    thumb = v.image.use_thumbnail and len(tiles) > 1
    if thumb:
        tiles.append(image.resize((S, S), resample=Image.Resampling.BICUBIC))
    if record:
        record("tiling.tiles", (len(tiles), S, S, 3),
               f"{cols * rows} tile(s) row by row" + (" + 1 thumbnail of the whole image" if thumb else ""))
    return tiles


def internvl_pixels(image: Any, v: VisionSpec, record: Recorder | None = None) -> torch.Tensor:
    """RGB PIL image -> pixel_values (tiles, 3, S, S), ImageNet-normalized."""
    tiles = internvl_tiles(image, v, record)
    pixel_values = torch.stack([normalize(t, v.image_mean, v.image_std) for t in tiles])  # (tiles, C, S, S)
    if record:
        record("image.normalize", pixel_values, "x/255, then (x - mean) / std with ImageNet mean/std, (tiles, C, S, S)")
    return pixel_values




# --------------------------------------------------------------------------- tiles of the other rules


def stack_tiles(tiles: list[Any], v: VisionSpec, record: Recorder | None, note: str, pad_to: int = 0) -> torch.Tensor:
    """The tiles (PIL images) normalized and stacked (tiles, C, S, S); zero tiles added up to `pad_to`."""
    pixel_values = torch.stack([normalize(t, v.image_mean, v.image_std) for t in tiles])  # (tiles, C, S, S)
    if record:
        record("image.normalize", pixel_values, f"x/255, then (x - mean) / std: {note}")
    if pad_to > len(tiles):
        pixel_values = torch.cat([pixel_values, pixel_values.new_zeros(pad_to - len(tiles), *pixel_values.shape[1:])])
    return pixel_values
