"""Image loading and preprocessing.

Independent reference: transformers' PIL-backend Qwen2VLImageProcessorPil (the "slow" processor)
on real photographs that ship with scikit-image (skimage.data), including a grayscale one, an
RGBA one and non-square ones; max_pixels lowered so that some sizes pass it. InternVL2's tiling
is checked on hand-worked cases.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inspector.errors import InspectError
from inspector.source import load_spec
from inspector.image.preprocess import (StepLog, internvl_pixels, internvl_tiles, load_image,
                                        qwen2_vl_pixels, synthetic_image, to_rgb)

skdata = pytest.importorskip("skimage.data")

# (skimage sample, max_pixels or None for the published 12845056); sizes are (H, W) of the photo
CASES = [
    ("chelsea", None),  # 300 x 451 RGB, non-square
    ("coffee", None),  # 400 x 600 RGB
    ("rocket", 200_000),  # 427 x 640 RGB, past max_pixels -> scaled down
    ("camera", None),  # 512 x 512 grayscale (mode L)
    ("logo", None),  # 500 x 500 RGBA: alpha composited onto white
    ("page", 50_000),  # 191 x 384 grayscale, past max_pixels
    ("astronaut", 100_000),  # 512 x 512 RGB, past max_pixels
]


@pytest.fixture(scope="module")
def qwen_vision():
    return load_spec("Qwen/Qwen2-VL-2B-Instruct").vision


def _photo(name):
    from PIL import Image

    return Image.fromarray(getattr(skdata, name)())


def _saved(tmp_path, image, name="photo.png"):
    path = tmp_path / name
    image.save(path)
    return path


@pytest.mark.parametrize("name,max_pixels", CASES, ids=[c[0] for c in CASES])
def test_qwen2_vl_pixels_match_transformers_processor(tmp_path, qwen_vision, name, max_pixels):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    v = qwen_vision if max_pixels is None else dataclasses.replace(qwen_vision, image=dataclasses.replace(qwen_vision.image, max_pixels=max_pixels))
    photo = _photo(name)
    proc = Qwen2VLImageProcessorPil(size={"shortest_edge": v.image.min_pixels, "longest_edge": v.image.max_pixels},
                                    image_mean=list(v.image_mean), image_std=list(v.image_std))
    want = proc(images=photo, return_tensors="pt")
    pv, grid = qwen2_vl_pixels(load_image(_saved(tmp_path, photo)), v)
    assert grid.tolist() == want["image_grid_thw"].tolist()
    assert pv.shape == want["pixel_values"].shape
    assert (pv - want["pixel_values"]).abs().max() < 1e-5
    if max_pixels is not None:
        t, h, w = grid[0].tolist()
        assert h * w * 14 * 14 <= max_pixels < photo.size[0] * photo.size[1]


def test_qwen2_vl_small_image_is_scaled_up_to_min_pixels(qwen_vision):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    photo = _photo("chelsea").crop((100, 100, 130, 120))  # 20 x 30
    proc = Qwen2VLImageProcessorPil(size={"shortest_edge": qwen_vision.image.min_pixels, "longest_edge": qwen_vision.image.max_pixels})
    want = proc(images=photo, return_tensors="pt")
    pv, grid = qwen2_vl_pixels(photo, qwen_vision)
    assert grid.tolist() == want["image_grid_thw"].tolist()
    assert (pv - want["pixel_values"]).abs().max() < 1e-5


def test_qwen2_vl_steps_recorded(qwen_vision):
    log = StepLog()
    qwen2_vl_pixels(synthetic_image(300, 451), qwen_vision, log)
    assert log.names() == ["image.rgb", "image.resize", "image.normalize", "image.temporal",
                           "image.reshape", "image.transpose", "image.patches"]
    assert log.shape("image.resize") == (308, 448, 3)  # 11 x 16 patches of 28
    assert log.shape("image.reshape") == (1, 2, 3, 11, 2, 14, 16, 2, 14)
    assert log.shape("image.patches") == (22 * 32, 1176)


def test_qwen2_vl_patch_rows_follow_merge_windows(qwen_vision):
    """Row k of pixel_values is the patch at (row, col) of the merge-window order; check two by hand."""
    image = synthetic_image(56, 56)  # 4 x 4 patches, 2 x 2 windows
    pv, _ = qwen2_vl_pixels(image, qwen_vision)
    from inspector.image.preprocess import normalize

    x = normalize(image, qwen_vision.image_mean, qwen_vision.image_std)  # (3, 56, 56)
    # row 2 = first window, its second row, first column -> patch (1, 0); row 4 = second window's first patch (0, 2)
    for row, (pr, pc) in ((2, (1, 0)), (4, (0, 2))):
        patch = x[:, pr * 14:(pr + 1) * 14, pc * 14:(pc + 1) * 14]  # (C, 14, 14)
        want = torch.stack([patch, patch], dim=1).reshape(-1)  # (C, t_patch, 14, 14) flattened
        assert torch.equal(pv[row], want)


# --------------------------------------------------------------------------- InternVL2


@pytest.fixture(scope="module")
def internvl_vision():
    return load_spec("OpenGVLab/InternVL2-2B").vision


@pytest.mark.parametrize("size,grid,tiles", [
    ((448, 448), (1, 1), 1),  # square: one tile, no thumbnail
    ((500, 1000), (2, 1), 3),  # aspect 2 -> 2 x 1 + thumbnail
    ((1000, 500), (1, 2), 3),  # portrait
    ((300, 451), (3, 2), 7),  # chelsea's size: aspect 1.503 -> 3 x 2 (1.5) + thumbnail
    ((100, 1300), (12, 1), 13),  # very wide: the widest grid allowed, 12 x 1
])
def test_internvl_tiling(internvl_vision, size, grid, tiles):
    log = StepLog()
    pv = internvl_pixels(synthetic_image(*size), internvl_vision, log)
    assert pv.shape == (tiles, 3, 448, 448)
    assert log.shape("tiling.resize") == (grid[1] * 448, grid[0] * 448, 3)


def test_internvl_tiles_are_crops_row_by_row(internvl_vision):
    image = synthetic_image(448, 896)  # exactly 2 x 1 tiles, no resize needed
    tiles = internvl_tiles(image, internvl_vision)
    assert len(tiles) == 3
    import numpy as np

    assert np.array_equal(np.asarray(tiles[1]), np.asarray(image.crop((448, 0, 896, 448))))


def test_internvl_normalization_imagenet(internvl_vision):
    from PIL import Image

    pv = internvl_pixels(Image.new("RGB", (448, 448), (255, 0, 128)), internvl_vision)
    want = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    assert torch.allclose(pv[0, :, 0, 0], torch.tensor(want), atol=1e-6)


def test_internvl_real_photo(internvl_vision):
    pv = internvl_pixels(to_rgb(_photo("chelsea")), internvl_vision)
    assert pv.shape == (7, 3, 448, 448) and pv.dtype == torch.float32


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(InspectError, match=r"nope\.jpg: image file not found"):
        load_image(tmp_path / "nope.jpg")


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"this is not a jpeg")
    with pytest.raises(InspectError, match=r"bad\.jpg: not a readable image"):
        load_image(path)


def test_truncated_file(tmp_path):
    path = _saved(tmp_path, _photo("chelsea"), "cut.png")
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InspectError, match=r"cut\.png: not a readable image") as err:
        load_image(path)
    assert "\n" not in str(err.value)


def test_sixteen_bit_refused(tmp_path):
    from PIL import Image

    path = tmp_path / "deep.png"
    Image.new("I;16", (8, 8)).save(path)
    with pytest.raises(InspectError, match=r"deep\.png: image mode 'I;16?' is not supported"):
        load_image(path)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "1"])
def test_modes_become_rgb(tmp_path, mode):
    image = _photo("astronaut").resize((32, 32)).convert(mode)
    path = _saved(tmp_path, image, f"m.{'jpg' if mode == 'CMYK' else 'png'}")
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (32, 32)


def test_alpha_composited_on_white():
    from PIL import Image

    clear = Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    assert to_rgb(clear).getpixel((0, 0)) == (255, 255, 255)


def test_synthetic_image_size():
    img = synthetic_image(37, 91)
    assert img.size == (91, 37) and img.mode == "RGB"
    with pytest.raises(InspectError):
        synthetic_image(0, 5)
