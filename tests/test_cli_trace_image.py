"""The image trace command: output on meta for both VLM presets, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app


def _run(*args):
    return CliRunner().invoke(app, ["trace", *args])


def test_qwen2_vl_meta_md():
    r = _run("Describe.", "--model", "Qwen/Qwen2-VL-2B-Instruct", "--image-size", "224x224", "--device", "meta",
             "--format", "md")
    assert r.exit_code == 0, r.output
    rows = {cells[3]: cells[4] for cells in (re.split(r"\s*\|\s*", line) for line in r.output.splitlines())
            if len(cells) > 4}
    assert rows["image.patches"] == "(256, 1176)" and rows["vision.embedded"] == "(256, 1280)"
    assert rows["vision.blocks.1-31"] == "(1, 256, 1280)" and rows["vision.merger.out"] == "(64, 1536)"
    assert rows["vision.blocks.0.attn.probs"] == "(1, 16, 256, 256)"  # block 0 in full, like the text trace
    n = int(rows["tokens.expanded"].split(", ")[1].rstrip(")"))
    assert rows["positions"] == f"(3, 1, {n})" and rows["text.layers.1-27"] == f"(1, {n}, 1536)"


def test_internvl2_meta_json():
    r = _run("What is it?", "--model", "OpenGVLab/InternVL2-2B", "--image-size", "448x448", "--device", "meta",
             "--format", "json")
    assert r.exit_code == 0, r.output
    shapes = {s["name"]: s["shape"] for s in json.loads(r.output)["steps"]}
    assert shapes["image.normalize"] == [1, 3, 448, 448]
    assert shapes["vision.patches"] == [1, 1024, 1024] and shapes["vision.embedded"] == [1, 1025, 1024]
    assert shapes["vision.blocks.1-23"] == [1, 1025, 1024]
    assert shapes["vision.merger.grouped"] == [1, 256, 4096] and shapes["vision.merger.out"] == [1, 256, 2048]


@pytest.mark.parametrize("make,args,needle", [
    (None, ["--model", "Qwen/Qwen2.5-0.5B-Instruct", "--image-size", "224x224"], "text-only model"),
    (None, ["--model", "Qwen/Qwen2-VL-2B-Instruct", "--image", "missing.jpg"], "missing.jpg: image file not found"),
    (b"garbage", ["--model", "Qwen/Qwen2-VL-2B-Instruct", "--image", "{f}"], "not a readable image"),
    ("I;16", ["--model", "Qwen/Qwen2-VL-2B-Instruct", "--image", "{f}"], "is not supported"),
])
def test_bad_images_one_line_exit_2(tmp_path, monkeypatch, make, args, needle):
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "img.png"
    if isinstance(make, bytes):
        f.write_bytes(make)
    elif make:
        from PIL import Image

        Image.new(make, (8, 8)).save(f)
    r = _run("hi", *[a.replace("{f}", str(f)) for a in args], "--device", "meta")
    assert r.exit_code == 2
    assert needle in r.output and r.output.count("\n") == 1
