"""Images and image sizes: special files, decompression bombs, sizes that allocated without bound,
and tilings that took cubic time.

Root causes of issue 17 covered here: 5 (a FIFO or a device as --image), 9 (image pixel counts and
InternVL tile canvases bounded before anything is allocated), 10 (InternVL's tile enumeration,
cubic in max_dynamic_patch, now O(n log n) with InternVL's own order kept). CLI cases run in one
memory-capped subprocess; a legal 2,000 x 2,000 image must pass within the same cap.
"""

from __future__ import annotations

import copy
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from harden import assert_refused, fifo, run_cases

from inspector.image.tokens import closest_grid, tile_candidates
from inspector.spec.presets import find_preset


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with one tiny data chunk (a bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _internvl(**changes) -> dict:
    cfg = copy.deepcopy(dict(find_preset("internvl2-2b").config))
    for key, value in changes.items():
        if key == "image_size":
            cfg["vision_config"]["image_size"] = cfg["force_image_size"] = value
        else:
            cfg[key] = value
    return cfg


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("harden-image")
    fifo(root / "fifo.png")
    (root / "zero.png").symlink_to("/dev/zero")
    (root / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    from PIL import Image

    y = np.linspace(0, 255, 2000, dtype=np.float32).astype(np.uint8)
    rgb = np.empty((2000, 2000, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = y[:, None], y[None, :], 128
    Image.fromarray(rgb).save(root / "legal.png")
    for name, cfg in {"big-tiles": _internvl(image_size=4088), "many-tiles": _internvl(max_dynamic_patch=2000)}.items():
        (root / name).mkdir()
        (root / name / "config.json").write_text(json.dumps(cfg))
    meta = ["--device", "meta"]
    cases = [
        {"id": "fifo", "args": ["trace", "hi", "-m", "qwen2-vl-2b", "--image", str(root / "fifo.png"), *meta]},
        {"id": "dev-zero", "args": ["trace", "hi", "-m", "qwen2-vl-2b", "--image", str(root / "zero.png"), *meta]},
        {"id": "bomb", "args": ["trace", "hi", "-m", "qwen2-vl-2b", "--image", str(root / "bomb.png"), *meta]},
        {"id": "canvas", "args": ["trace", "hi", "-m", str(root / "big-tiles"), "--image-size", "448x5000", *meta]},
        {"id": "many-tiles", "args": ["tokens", str(root / "many-tiles"), "--image-size", "800x1300", "-f", "json"]},
        {"id": "legal-qwen", "args": ["trace", "hi", "-m", "qwen2-vl-2b", "--image", str(root / "legal.png"), *meta,
                                      "-f", "json"]},
    ]
    return run_cases(cases, budget_mb=1536, timeout=60), root


@pytest.mark.parametrize("case_id,words", [("fifo", "FIFO"), ("dev-zero", "character device"),
                                           ("bomb", "pixels"), ("canvas", "tiling")])
def test_bad_images_refused_before_allocating(batch, case_id, words):
    results, _ = batch
    assert_refused(results[case_id], words)
    assert results[case_id].seconds < 10


def test_many_tiles_answer_at_once(batch):
    results, _ = batch
    result = results["many-tiles"]
    assert result.rc == 0, result.stderr
    assert result.seconds < 10
    assert "grids" in result.stdout


def test_legal_large_image_passes_within_the_memory_cap(batch):
    results, _ = batch
    assert results["legal-qwen"].rc == 0, results["legal-qwen"].stderr


def _internvl_reference(lo: int, hi: int) -> list[tuple[int, int]]:
    """InternVL2's own enumeration (its dynamic_preprocess), cubic: the independent reference."""
    ratios = set((i, j) for n in range(lo, hi + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                 if lo <= i * j <= hi)
    return sorted(ratios, key=lambda x: x[0] * x[1])


def test_tile_candidates_keep_internvl_order():
    """Same grids in the same order (ties in area keep the order of InternVL's set, which its
    tie rule depends on), for every (min, max) up to 30."""
    for lo in range(1, 31):
        for hi in range(lo, 31):
            assert tile_candidates(lo, hi) == _internvl_reference(lo, hi), (lo, hi)


def test_closest_grid_ties_follow_internvl():
    """An aspect exactly between two grids of the same area: the choice depends on the order."""
    for lo, hi in ((1, 12), (1, 40), (3, 24)):
        for width, height in ((2125, 1000), (1000, 2125), (448, 448), (800, 1300), (5000, 100)):
            aspect = width / height
            best, best_diff = (1, 1), float("inf")
            for cols, rows in _internvl_reference(lo, hi):
                diff = abs(aspect - cols / rows)
                if diff < best_diff:
                    best, best_diff = (cols, rows), diff
                elif diff == best_diff and width * height > 0.5 * 448 * 448 * cols * rows:
                    best = (cols, rows)
            assert closest_grid(width, height, 448, lo, hi) == best


def test_the_suites_bomb_is_a_valid_png_header(tmp_path):
    """(The bomb case is refused for its size, not because PIL cannot read it.)"""
    from PIL import Image

    path: Path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(300, 200))
    with Image.open(path) as img:
        assert img.size == (300, 200)
