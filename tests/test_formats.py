"""The FORMATS table of inspector.checkpoint.open: each suffix to its row, the pickle row refusing,
an unknown file refused, and the order in which a directory is scanned. Header reading
(open_checkpoint) and tensor loading (open_source) both dispatch through it."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from gguf_bytes import tiny_llama

from inspector.checkpoint.open import FORMATS, GGUF, INDEX, PICKLE, SAFETENSORS, format_of, open_checkpoint
from inspector.errors import InspectError


def _safetensors(path: Path, name: str = "a") -> Path:
    raw = json.dumps({name: {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)
    return path


@pytest.mark.parametrize("name, row", [
    ("model.safetensors", SAFETENSORS), ("MODEL.SafeTensors", SAFETENSORS),
    ("model.safetensors.index.json", INDEX), ("pytorch_model.bin.index.json", INDEX),
    ("SmolLM2.Q4_1.gguf", GGUF), ("x.GGUF", GGUF),
    *[(f"weights{s}", PICKLE) for s in PICKLE.suffixes],
    ("config.json", None), ("README.md", None), ("model", None), ("gguf", None),
])
def test_each_suffix_to_its_row(name, row):
    assert format_of(name) is row
    assert format_of(Path("some/dir") / name) is row


def test_the_rows():
    assert [f.name for f in FORMATS] == ["safetensors", "safetensors index", "gguf", "pickle"]
    assert [f for f in FORMATS if f.carries_config] == [GGUF]
    assert PICKLE.read is None and PICKLE.tensors is None and PICKLE.refuse is not None
    assert {f.tensors for f in FORMATS} == {"SafetensorsSource", "GGUFSource", None}


@pytest.mark.parametrize("name", ["model.bin", "model.pt", "model.pth", "model.ckpt", "model.pkl",
                                  "pytorch_model.bin.index.json"])
def test_pickle_refused(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"\x80\x04K\x01.")  # a pickle; it must never be loaded
    with pytest.raises(InspectError, match="never unpickled") as exc:
        open_checkpoint(p)
    assert "\n" not in str(exc.value) and name in str(exc.value)


def test_unknown_refused(tmp_path):
    p = tmp_path / "weights.npz"
    p.write_bytes(b"PK")
    with pytest.raises(InspectError, match=r"weights.npz: unknown checkpoint type; expected \.safetensors, \.gguf, "
                                           r"an index.json or a directory$"):
        open_checkpoint(p)


def test_directory_scan_order(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "weights.bin").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(InspectError, match="weights.bin: is a pickle checkpoint"):
        open_checkpoint(d)  # a pickle only when nothing else is there
    (d / "a.gguf").write_bytes(tiny_llama())
    assert open_checkpoint(d).format == "gguf"  # the one GGUF file
    (d / "b.gguf").write_bytes(tiny_llama())
    with pytest.raises(InspectError, match=r"holds 2 GGUF files \(a.gguf, b.gguf\); name the one to read"):
        open_checkpoint(d)
    _safetensors(d / "z.safetensors", "z")
    _safetensors(d / "y.safetensors", "y")
    _safetensors(d / ".hidden.safetensors", "hidden")  # not listed, as a shell glob would not
    assert open_checkpoint(d).files == ["y.safetensors", "z.safetensors"]  # every safetensors file, sorted
    _safetensors(d / "model.safetensors", "m")
    assert open_checkpoint(d).files == ["model.safetensors"]
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"z": "z.safetensors"}}))
    assert open_checkpoint(d).files == ["z.safetensors"]  # the index wins


def test_empty_directory(tmp_path):
    with pytest.raises(InspectError, match="no safetensors or GGUF checkpoint in this directory"):
        open_checkpoint(tmp_path)


def test_tensor_loading_dispatches_through_the_table(tmp_path):
    pytest.importorskip("torch")
    from inspector.checkpoint.tensors import GGUFSource, SafetensorsSource, open_source

    gguf = tmp_path / "g" / "tiny.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(tiny_llama())
    st = _safetensors(tmp_path / "w.safetensors")
    assert isinstance(open_source(gguf), GGUFSource) and isinstance(open_source(gguf.parent), GGUFSource)
    assert isinstance(open_source(st), SafetensorsSource) and open_source(st).names() == {"a"}
    (tmp_path / "m.pt").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(InspectError, match="never unpickled"):
        open_source(tmp_path / "m.pt")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InspectError, match=r"notes.txt: not a \.safetensors or \.gguf file, nor a directory of them"):
        open_source(tmp_path / "notes.txt")
