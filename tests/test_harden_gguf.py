"""Crafted GGUF files: one line naming the file and the problem, exit 2, bounded time and memory.

Root causes of issue 17 covered here: 2 (counts that made the gguf library loop forever), 4 (a huge
block_count), 5 (special files), 13 (head_count 0/NaN, tokenizer fields of the wrong type, ids past
the vocabulary), 15 (`verify X.gguf --weights DIR` misreported), 16 (overlapping, unaligned or
retyped tensors accepted). Every case runs through the CLI in one capped subprocess (tests/harden.py).
"""

from __future__ import annotations

import json
import math
import struct

import pytest
from conftest import tiny_config
from gguf_bytes import LLAMA_META, gguf_file, llama_tensors, replace_meta, tiny_llama
from harden import assert_refused, fifo, run_cases

Q8_0 = 8


def _retyped(name: str, ggml_type: int) -> bytes:
    return tiny_llama(tensors=[(n, d, ggml_type if n == name else t) for n, d, t in llama_tensors()])


def _with_offsets(change) -> bytes:
    """tiny_llama with its tensor offsets changed by change(list of (name, dims, type, offset))."""
    infos, offset = [], 0
    for name, dims, t in llama_tensors():
        infos.append((name, dims, t, offset))
        offset += 4 * math.prod(dims) + (-4 * math.prod(dims) % 32)
    return gguf_file(LLAMA_META, change(infos), b"\0" * offset)


HUGE_ARRAY = struct.pack("<Q", 1) + b"a" + struct.pack("<IIQ", 9, 0, 2**62)  # key "a": ARRAY of UINT8, 2**62 items
FILES = {  # name -> (bytes, words the message must contain)
    "uint8-array-2-62": (gguf_file([], [], raw_kv=HUGE_ARRAY), "runs past the end"),
    "string-array-2-40": (gguf_file([], [], raw_kv=struct.pack("<Q", 1) + b"a" + struct.pack("<IIQ", 9, 8, 2**40)),
                          "runs past the end"),
    "array-of-arrays-2-50": (gguf_file([], [], raw_kv=struct.pack("<Q", 1) + b"a" + struct.pack("<IIQ", 9, 9, 2**50)),
                             "runs past the end"),
    "string-length-2-63": (gguf_file([], [], raw_kv=struct.pack("<Q", 2**63) + bytes(32)), "runs past the end"),
    "kv-count-2-60": (gguf_file(LLAMA_META, [], counts=(0, 2**60)), "counts do not fit"),
    "tensor-count-2-60": (gguf_file(LLAMA_META, [], counts=(2**60, len(LLAMA_META))), "counts do not fit"),
    "unknown-value-type": (gguf_file([], [], raw_kv=struct.pack("<Q", 1) + b"a" + struct.pack("<I", 77)),
                           "unknown value type"),
    "block-count-1e9": (tiny_llama(replace_meta("llama.block_count", "UINT32", 10**9)), "block_count"),
    "head-count-0": (tiny_llama(replace_meta("llama.attention.head_count", "UINT32", 0)), "head_count"),
    "head-count-nan": (tiny_llama(replace_meta("llama.attention.head_count", "FLOAT32", float("nan"))), "head_count"),
    "head-count-per-layer": (tiny_llama(replace_meta("llama.attention.head_count", ("ARRAY", "UINT32"), [2])),
                             "per-layer"),
    "rms-eps-negative": (tiny_llama(replace_meta("llama.attention.layer_norm_rms_epsilon", "FLOAT32", -1.0)),
                         "layer_norm_rms_epsilon"),
    "bos-past-vocabulary": (tiny_llama(replace_meta("tokenizer.ggml.bos_token_id", "UINT32", 10**6)),
                            "bos_token_id"),
    "architecture-number": (tiny_llama(replace_meta("general.architecture", "UINT32", 7)), "architecture"),
    "overlapping-tensors": (_with_offsets(lambda infos: [(*i[:3], 0) for i in infos]), "overlaps"),
    "unaligned-offset": (_with_offsets(lambda infos: infos[:-1] + [(*infos[-1][:3], infos[-1][3] + 4)]), "alignment"),
    "quant-type-changed": (_retyped("blk.0.ffn_down.weight", 28), "runs past the end"),  # F32 -> F64 (8 bytes)
    "unknown-quant-type": (_retyped("output_norm.weight", 99), "unknown ggml type"),
    "partial-block": (_retyped("output_norm.weight", Q8_0), "blocks"),  # 8 elements, blocks of 32
    "too-many-dimensions": (gguf_file(LLAMA_META, [("t", (1,) * 9, 0, 0)], b"\0" * 32), "dimensions"),
    "duplicate-key": (gguf_file(LLAMA_META + LLAMA_META[:1], []), "appears twice"),
    "duplicate-tensor": (gguf_file(LLAMA_META, [("t", (8,), 0, 0), ("t", (8,), 0, 32)], b"\0" * 64), "appears twice"),
    "alignment-not-power-of-two": (tiny_llama(replace_meta("general.alignment", "UINT32", 24)), "alignment"),
    "big-endian": (b"GGUF" + struct.pack(">IQQ", 3, 0, 0), "big-endian"),
    "version-1": (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "version 1"),
    "not-gguf": (b"GGML" + bytes(60), "not a GGUF file"),
    "truncated": (tiny_llama()[:700], "truncated"),
}
TOKENIZER = {  # GGUF tokenizers with fields of the wrong type, given to `trace --tokenizer`
    "tokens-not-strings": (replace_meta("tokenizer.ggml.tokens", ("ARRAY", "INT32"), list(range(90))),
                           "tokenizer.ggml.tokens"),
    "merges-not-strings": (replace_meta("tokenizer.ggml.merges", ("ARRAY", "UINT8"), [1, 2]),
                           "tokenizer.ggml.merges"),
    "token-type-strings": (replace_meta("tokenizer.ggml.token_type", ("ARRAY", "STRING"), ["x"] * 90),
                           "tokenizer.ggml.token_type"),
    "pre-number": (replace_meta("tokenizer.ggml.pre", "UINT32", 3), "tokenizer.ggml.pre"),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("harden-gguf")
    cases = []
    for name, (data, _) in FILES.items():
        (root / f"{name}.gguf").write_bytes(data)
        cases.append({"id": name, "args": ["verify", str(root / f"{name}.gguf"), "-f", "json"]})
    # the same crafted files through `trace` (root cause 4: the trace built the name map, then hung)
    for name in ("block-count-1e9", "uint8-array-2-62", "overlapping-tensors"):
        cases.append({"id": f"trace-{name}", "args": ["trace", "hi", "-m", str(root / f"{name}.gguf"),
                                                      "--device", "cpu"]})
    config_dir = root / "tiny-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps(tiny_config("llama", vocab_size=90)))
    for name, (meta, _) in TOKENIZER.items():
        (root / f"{name}.gguf").write_bytes(tiny_llama(meta))
        cases.append({"id": name, "args": ["trace", "hi", "-m", str(config_dir), "--device", "meta",
                                           "--tokenizer", str(root / f"{name}.gguf")]})
    fifo(root / "fifo.gguf")
    cases.append({"id": "fifo", "args": ["verify", str(root / "fifo.gguf")]})
    (root / "zero.gguf").symlink_to("/dev/zero")
    cases.append({"id": "dev-zero", "args": ["verify", str(root / "zero.gguf")]})
    (root / "valid.gguf").write_bytes(tiny_llama())
    (root / "empty-dir").mkdir()
    cases.append({"id": "gguf-model-with-weights-dir",
                  "args": ["verify", str(root / "valid.gguf"), "--weights", str(root / "empty-dir")]})
    return run_cases(cases, budget_mb=1024, timeout=20), root


@pytest.mark.parametrize("name", list(FILES))
def test_crafted_gguf_refused_by_verify(batch, name):
    results, root = batch
    result = results[name]
    assert_refused(result, f"{name}.gguf", FILES[name][1])
    assert result.seconds < 5
    assert not result.data_opened_outside(root)


@pytest.mark.parametrize("name", ["block-count-1e9", "uint8-array-2-62", "overlapping-tensors"])
def test_crafted_gguf_refused_by_trace(batch, name):
    results, _ = batch
    assert_refused(results[f"trace-{name}"], f"{name}.gguf", FILES[name][1])
    assert results[f"trace-{name}"].seconds < 5


@pytest.mark.parametrize("name", list(TOKENIZER))
def test_gguf_tokenizer_fields_of_the_wrong_type(batch, name):
    results, _ = batch
    assert_refused(results[name], f"{name}.gguf", TOKENIZER[name][1])


@pytest.mark.parametrize("name,words", [("fifo", "FIFO"), ("dev-zero", "character device")])
def test_special_files_as_gguf(batch, name, words):
    results, _ = batch
    assert_refused(results[name], words)
    assert results[name].seconds < 5


def test_gguf_model_with_a_weights_directory_names_the_directory(batch):
    """`verify X.gguf --weights DIR`: the GGUF gives the config; the message is about DIR (it said the
    GGUF was not UTF-8 JSON)."""
    results, root = batch
    result = results["gguf-model-with-weights-dir"]
    assert_refused(result, "empty-dir", "no safetensors or GGUF checkpoint")
    assert "UTF-8" not in result.stderr


def test_valid_tiny_gguf_verifies_and_matches_the_gguf_library(tmp_path):
    """The crafted base file is valid: our reader and the gguf library agree on every tensor."""
    gguf = pytest.importorskip("gguf")
    from inspector.checkpoint.gguf import parse_gguf

    path = tmp_path / "valid.gguf"
    path.write_bytes(tiny_llama())
    ours = {t.name: (t.stored_shape, t.offset, t.nbytes) for t in parse_gguf(path).tensors}
    theirs = {t.name: (tuple(int(d) for d in t.shape), int(t.data_offset), int(t.n_bytes))
              for t in gguf.GGUFReader(str(path)).tensors}
    assert ours == theirs and len(ours) == 11


def test_name_map_is_lazy():
    """A block_count of a billion costs nothing until a name is looked up."""
    from inspector.checkpoint.gguf_hf import gguf_name_map

    names = gguf_name_map(10**9)
    assert names["blk.999999999.ffn_up.weight"] == "model.layers.999999999.mlp.up_proj.weight"
    assert "blk.1000000000.ffn_up.weight" not in names and "blk.01.ffn_up.weight" not in names


def test_ggml_type_table_matches_the_gguf_library():
    gguf = pytest.importorskip("gguf")
    from inspector.checkpoint.gguf import GGML_TYPES

    theirs = {int(t): (t.name, *gguf.GGML_QUANT_SIZES[t]) for t in gguf.GGMLQuantizationType}
    assert {k: v for k, v in theirs.items() if k in GGML_TYPES} == dict(GGML_TYPES)
    assert set(GGML_TYPES) >= {0, 1, 2, 3, 8, 10, 11, 12, 13, 14, 30}


def test_float32_values_shown_as_the_shortest_decimal():
    """GGUF floats are float32: the config shows the shortest decimal that is the same float32,
    as numpy's float32 repr does."""
    np = pytest.importorskip("numpy")
    from inspector.checkpoint.gguf_hf import _f32_clean

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(2000).astype(np.float32) * 10.0 ** rng.integers(-12, 12, 2000),
                             np.array([1e-5, 1e-6, 1e6, 10000.0, 500000.0, 3.4e38, 1e-45], np.float32)])
    for v in values:
        assert _f32_clean(float(v)) == float(str(np.float32(v))), v
