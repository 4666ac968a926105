"""Fuzzing the safetensors header parser against safetensors itself.

Properties, over thousands of headers mutated from a real small file:
  * read_safetensors_header raises nothing but InspectError;
  * it never reads more than the 8-byte prefix plus the declared header;
  * differential: it accepts a file iff ``safetensors.safe_open(path, framework="np")`` opens it,
    and then both report the same names, shapes and dtypes.

Known, deliberate difference (see inspector.checkpoint's docstring): safetensors keeps the last of
two entries with the same tensor name or the same ``__metadata__`` key; we refuse such a header
because the writer's intent is ambiguous. The differential check allows exactly that case.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile

import numpy as np
import pytest
from conftest import CountingFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save_file

from inspector import files
from inspector.checkpoint import safetensors as sh
from inspector.errors import InspectError
from inspector.checkpoint.safetensors import SAFETENSORS_DTYPE_BITS, read_safetensors_header

# INSPECTOR_FUZZ_SCALE=20 runs twenty times as many examples (a deeper run than the suite's).
SCALE = float(os.environ.get("INSPECTOR_FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=int(500 * SCALE),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _base_file() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "base.safetensors")
        save_file(
            {
                "emb": np.arange(12, dtype=np.float32).reshape(3, 4),
                "half": np.ones((2, 2), dtype=np.float16),
                "flag": np.array([True, False, True]),
                "step": np.array(7, dtype=np.int64),
                "empty": np.zeros((0, 3), dtype=np.float32),
            },
            p,
            metadata={"format": "pt", "note": "fuzz base"},
        )
        with open(p, "rb") as f:
            return f.read()


STATS = {"accepted": 0, "refused": 0}
BASE = _base_file()
BASE_N = struct.unpack("<Q", BASE[:8])[0]
BASE_HEADER = json.loads(BASE[8 : 8 + BASE_N])
BASE_DATA = BASE[8 + BASE_N :]


@pytest.fixture(scope="module")
def work_dir():
    with tempfile.TemporaryDirectory() as d:
        yield d


def _mine(path: str):
    log: list[int] = []
    real_open = files.open_binary
    files.open_binary = lambda p: CountingFile(real_open(p), log)
    try:
        try:
            result = read_safetensors_header(path)
        except InspectError as e:
            msg = str(e)
            assert "\n" not in msg and os.path.basename(path) in msg, msg
            result = e
    finally:
        files.open_binary = real_open
    return result, sum(log)


def _theirs(path: str):
    try:
        with safe_open(path, framework="np") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except Exception as e:  # safetensors raises SafetensorError and a few others
        return e


def _is_dup_deviation(err: InspectError) -> bool:
    msg = str(err)
    return ("appears twice" in msg and ": tensor " in msg) or "__metadata__ key" in msg


def check(path: str, blob: bytes) -> None:
    with open(path, "wb") as f:
        f.write(blob)
    mine, nread = _mine(path)
    # never more than the prefix and the declared header
    if len(blob) >= 8:
        n = struct.unpack("<Q", blob[:8])[0]
        assert nread <= 8 + min(n, max(len(blob) - 8, 0))
    else:
        assert nread <= 8
    theirs = _theirs(path)
    STATS["accepted" if not isinstance(theirs, Exception) else "refused"] += 1
    if isinstance(mine, InspectError):
        if not isinstance(theirs, Exception):
            assert _is_dup_deviation(mine), f"we refuse what safetensors accepts: {mine}"
        return
    assert not isinstance(theirs, Exception), f"we accept what safetensors refuses: {theirs}"
    assert {k: (v.shape, v.dtype) for k, v in mine.items()} == theirs


def _file(header: bytes, data: bytes, n: int | None = None) -> bytes:
    return struct.pack("<Q", len(header) if n is None else n) + header + data


# --------------------------------------------------------------------------- strategies

U64 = 2**64 - 1
ints = st.one_of(
    st.integers(0, 40),
    st.integers(-3, 3),
    st.sampled_from([2**32, 2**61, 2**63, U64, U64 + 1, 2**70]),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), ints, st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4)
)
dtypes = st.one_of(st.sampled_from(sorted(SAFETENSORS_DTYPE_BITS)), st.sampled_from(["f32", "F8_E4M3FN", "", "Q4"]))


RAW_NUMBERS = [
    "-0", "-0.0", "0", "7", "1E5", "2e0", "1e400", "-1e400", "1e-400", "18446744073709551615",
    "18446744073709551616", "-9223372036854775808", "-9223372036854775809", "1" * 400, "-" + "9" * 30,
]


@st.composite
def mutated_headers(draw):
    header = json.loads(json.dumps(BASE_HEADER))
    names = [k for k in header if k != "__metadata__"]
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(names))
        entry = header.get(name)
        if not isinstance(entry, dict):
            continue
        op = draw(st.sampled_from(["dtype", "shape", "offsets", "drop", "extra", "rename", "meta", "dup", "listform", "value"]))
        if op == "dtype":
            entry["dtype"] = draw(dtypes)
        elif op == "shape":
            entry["shape"] = draw(st.lists(st.one_of(ints, json_scalars), max_size=4))
        elif op == "offsets":
            old = entry.get("data_offsets")
            b, e = old if isinstance(old, list) and len(old) == 2 and all(type(x) is int for x in old) else (0, 0)
            entry["data_offsets"] = draw(
                st.one_of(
                    st.tuples(st.integers(-2, 2).map(lambda d: b + d), st.integers(-2, 2).map(lambda d: e + d)).map(list),
                    st.lists(ints, max_size=3),
                )
            )
        elif op == "drop":
            entry.pop(draw(st.sampled_from(sorted(entry))), None)
        elif op == "extra":
            entry[draw(st.sampled_from(["x", "dtype_", "offsets"]))] = draw(
                st.recursive(json_scalars, lambda c: st.lists(c, max_size=2), max_leaves=4)
            )
        elif op == "rename":
            header[draw(st.sampled_from(["emb", "new", "__metadata__", ""]))] = header.pop(name)
        elif op == "meta":
            header["__metadata__"] = draw(
                st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), ints), max_size=2), json_scalars)
            )
        elif op == "dup":
            pass  # handled on the text below
        elif op == "listform":
            header[name] = [entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")]
        elif op == "value":
            header[name] = draw(json_scalars)
    text = json.dumps(header)
    if draw(st.booleans()) and len(names) > 0:
        # duplicate one entry textually
        k = draw(st.sampled_from(names))
        if k in header:
            text = text[:-1] + ", " + json.dumps(k) + ": " + json.dumps(header[k]) + "}"
    if draw(st.integers(0, 3)) == 0:
        # number literals where Python's json and serde_json read differently
        token = draw(st.sampled_from(RAW_NUMBERS))
        if draw(st.booleans()):
            text = text.replace('"shape": [', '"shape": [' + token + ", ", 1)
        else:
            text = text.replace('"dtype": ', '"x": ' + token + ', "dtype": ', 1)
    text += " " * draw(st.integers(0, 9))
    data_delta = draw(st.sampled_from([0, 0, 0, -1, 1, -4, 4]))
    data = BASE_DATA[: max(len(BASE_DATA) + data_delta, 0)] + b"\0" * max(data_delta, 0)
    return text.encode("utf-8"), data


@st.composite
def byte_mutations(draw):
    blob = bytearray(BASE)
    op = draw(st.sampled_from(["truncate", "flip", "length", "insert", "delete", "header-only"]))
    if op == "truncate":
        blob = blob[: draw(st.integers(0, len(blob)))]
    elif op == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, 8 + BASE_N - 1))
            blob[i] = draw(st.integers(0, 255))
    elif op == "length":
        n = draw(
            st.one_of(
                st.integers(0, len(blob)),
                st.integers(BASE_N - 8, BASE_N + 8),
                st.sampled_from([100_000_000, 100_000_001, 2**32, 2**63, U64]),
            )
        )
        blob[:8] = struct.pack("<Q", n)
    elif op == "insert":
        i = draw(st.integers(8, 8 + BASE_N))
        blob[i:i] = draw(st.sampled_from([b" ", b"\t", b"\0", b"x", b",", b"}", b"\xff", b"\\ud800"]))
        if draw(st.booleans()):
            blob[:8] = struct.pack("<Q", BASE_N + 1)
    elif op == "delete":
        i = draw(st.integers(8, 8 + BASE_N - 1))
        del blob[i]
        if draw(st.booleans()):
            blob[:8] = struct.pack("<Q", BASE_N - 1)
    elif op == "header-only":
        blob = blob[: 8 + BASE_N]
    return bytes(blob)


# --------------------------------------------------------------------------- properties


def test_base_file_agrees(work_dir):
    check(os.path.join(work_dir, "base.safetensors"), BASE)


@FUZZ
@given(hd=mutated_headers())
def test_fuzz_json_mutations(work_dir, hd):
    header, data = hd
    check(os.path.join(work_dir, "json-mut.safetensors"), _file(header, data))


@FUZZ
@given(blob=byte_mutations())
def test_fuzz_byte_mutations(work_dir, blob):
    check(os.path.join(work_dir, "byte-mut.safetensors"), blob)


@settings(max_examples=int(400 * SCALE), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob=st.binary(max_size=64), n=st.one_of(st.none(), st.integers(0, U64)))
def test_fuzz_random_bytes(work_dir, blob, n):
    if n is not None:
        blob = struct.pack("<Q", n) + blob
    check(os.path.join(work_dir, "random.safetensors"), blob)


@settings(max_examples=int(400 * SCALE), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.lists(
        st.tuples(
            st.text(max_size=3),
            st.sampled_from(sorted(SAFETENSORS_DTYPE_BITS)),
            st.lists(st.integers(0, 5), max_size=3),
            st.integers(-1, 1),
        ),
        max_size=4,
    ),
    shuffle=st.randoms(use_true_random=False),
    slack=st.sampled_from([0, 0, 0, 1, -1]),
)
def test_fuzz_generated_layouts(work_dir, entries, shuffle, slack):
    # well-formed-looking headers with sizes that are right, or off by a little
    header, pos = {}, 0
    for name, dtype, shape, err in entries:
        n = int(np.prod(shape)) * SAFETENSORS_DTYPE_BITS[dtype]
        size = n // 8 + err if n % 8 == 0 else n // 8 + 1
        size = max(size, 0)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [pos, pos + size]}
        pos += size
    items = list(header.items())
    shuffle.shuffle(items)
    text = json.dumps(dict(items)).encode()
    check(os.path.join(work_dir, "layout.safetensors"), _file(text, b"\0" * max(pos + slack, 0)))


def test_fuzzers_reach_both_verdicts():
    # run after the fuzz tests above (file order): the mutations must not all be refused
    if STATS["accepted"] + STATS["refused"] < 100:
        pytest.skip("run together with the fuzz tests")
    assert STATS["accepted"] >= 50 and STATS["refused"] >= 50, STATS
