"""Fuzzing the GGUF header reader, differentially against the gguf library.

The base file carries the real SmolLM2-135M-Instruct GGUF's metadata (every key, type and value, its
long tokenizer arrays cut to 200 items) and a small llama tensor table; hypothesis then overwrites
counts, lengths, types, offsets and bytes, and truncates. Properties:
  * inspector.checkpoint.gguf.parse_gguf raises nothing but a one-line InspectError naming the file,
    and answers within a second whatever the counts say;
  * differential, where the gguf library terminates (it is stopped after a second: crafted counts
    make it loop): when we accept a file, the library accepts it too and both report the same
    tensors (name, shape, type, offset, bytes) and metadata values; when the library accepts a file
    we refuse, the reason is one of our documented stricter rules (alignment, overlap, dimensions,
    whole blocks, a known type, data inside the file, UTF-8 names). One deliberate leniency: string
    values keep undecodable bytes (as llama.cpp keeps them), where the library raises.

INSPECTOR_FUZZ_SCALE=20 runs twenty times as many examples.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import select
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import smollm2_gguf_path
from gguf_bytes import gguf_file, llama_tensors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.checkpoint.gguf import GGUFArray, parse_gguf
from inspector.errors import InspectError

gguf = pytest.importorskip("gguf")

SCALE = float(os.environ.get("INSPECTOR_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=int(150 * SCALE), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
STRICTER = ("alignment", "overlaps", "dimensions", "blocks", "unknown ggml type", "runs past the end",
            "not UTF-8", "truncated", "big-endian", "appears twice", "unknown value type", "nests arrays")


def _smollm2() -> Path:
    return smollm2_gguf_path()


def _real_metadata() -> list:
    """(key, type, value) of every key/value of the real file, long arrays cut to 200 items (read with
    our reader: the library takes seconds on the 49k-item arrays; test_real_smollm2_agrees_with_the_library
    checks the two readers agree on this file)."""
    from inspector.checkpoint.gguf import VALUE_TYPES

    real = parse_gguf(_smollm2())
    guess = {str: "STRING", bool: "BOOL", int: "INT32", float: "FLOAT32"}
    out = []
    for key, value in real.metadata.items():
        vtype = VALUE_TYPES[real.value_types[key]][0]
        if isinstance(value, GGUFArray):
            out.append((key, ("ARRAY", value.elem_type), real.values(key)[:200]))
        elif isinstance(value, list):
            out.append((key, ("ARRAY", guess[type(value[0])] if value else "INT32"), value))
        else:
            out.append((key, vtype, value))
    return out


@functools.lru_cache(maxsize=1)
def _base() -> bytes:
    infos, offset = [], 0
    for name, dims, ggml_type in llama_tensors():
        size = 4
        for x in dims:
            size *= x
        infos.append((name, dims, ggml_type, offset))
        offset += size + (-size % 32)
    return gguf_file(_real_metadata(), infos, bytes(range(256)) * (offset // 256 + 1))


LIBRARY_WORKER = r'''
import json, resource, sys
import gguf
def summary(reader):
    tensors = {t.name: [[int(d) for d in t.shape], t.tensor_type.name, int(t.data_offset), int(t.n_bytes)]
               for t in reader.tensors}
    metadata = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    return {"verdict": "ok", "tensors": tensors, "metadata": metadata}
with open("/proc/self/status") as f:
    vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + (512 << 20), resource.RLIM_INFINITY))
for line in sys.stdin:
    try:
        out = summary(gguf.GGUFReader(json.loads(line)))
    except BaseException as exc:  # the library raises many kinds on a corrupt file
        out = {"verdict": "error", "error": type(exc).__name__}
    print(json.dumps(out), flush=True)
'''


class _Library:
    """The gguf library in a worker process (memory-capped; killed and restarted when it does not
    answer within a second: crafted counts make it loop)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def read(self, path: str) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-c", LIBRARY_WORKER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
            atexit.register(self.proc.kill)
        self.proc.stdin.write(json.dumps(path) + "\n")
        self.proc.stdin.flush()
        if not select.select([self.proc.stdout], [], [], 1.0)[0]:
            self.proc.kill()
            self.proc.wait()
            return {"verdict": "stuck"}
        return json.loads(self.proc.stdout.readline())


LIBRARY = _Library()


def _summary(reader) -> dict:
    """What the library read, in the worker's form (for a reader built in this process)."""
    return json.loads(json.dumps({
        "verdict": "ok",
        "tensors": {t.name: [[int(d) for d in t.shape], t.tensor_type.name, int(t.data_offset), int(t.n_bytes)]
                    for t in reader.tensors},
        "metadata": {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}}))


def _interesting_u64():
    return st.sampled_from([0, 1, 2, 3, 4, 8, 9, 12, 31, 32, 33, 64, 200, 255, 256, 2**31, 2**32 - 1, 2**32,
                            2**62, 2**63, 2**64 - 1])


MUTATION = st.one_of(
    st.tuples(st.just("u64"), st.integers(0, 20000), _interesting_u64()),
    st.tuples(st.just("u32"), st.integers(0, 20000), st.integers(0, 40)),  # (types: value and ggml)
    st.tuples(st.just("byte"), st.integers(0, 20000), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 20000), st.just(0)),
)


def _mutate(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for kind, pos, value in mutations:
        pos = pos % max(len(out), 1)
        if kind == "u64":
            out[pos:pos + 8] = struct.pack("<Q", value)[: len(out) - pos]
        elif kind == "u32":
            out[pos:pos + 4] = struct.pack("<I", value)[: len(out) - pos]
        elif kind == "byte" and out:
            out[pos] = value
        elif kind == "cut":
            del out[pos:]
    return bytes(out)


def _compare(ours, theirs: dict) -> None:
    assert {t.name: [list(t.stored_shape), t.quant, t.offset, t.nbytes] for t in ours.tensors} == theirs["tensors"]
    assert set(ours.metadata) == set(theirs["metadata"])
    for key, expected in theirs["metadata"].items():
        value = ours.metadata[key]
        mine = ours.values(key) if isinstance(value, (list, GGUFArray)) else value
        mine = json.loads(json.dumps(mine))
        assert mine == expected or (mine != mine and expected != expected), key  # (NaN equals NaN here)


@FUZZ
@given(mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_fuzzed_gguf_headers(mutations):
    data = _mutate(_base(), mutations)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fuzz.gguf")
        with open(path, "wb") as f:
            f.write(data)
        start = time.perf_counter()
        try:
            ours, refusal = parse_gguf(path), None
        except InspectError as exc:
            ours, refusal = None, str(exc)
            assert "\n" not in refusal and "fuzz.gguf" in refusal
        assert time.perf_counter() - start < 1.0
        theirs = LIBRARY.read(path)
        if ours is not None:
            # (string values keep undecodable bytes, as llama.cpp does; the library refuses them)
            assert theirs["verdict"] != "error" or theirs["error"] == "UnicodeDecodeError", theirs
            if theirs["verdict"] == "ok":
                _compare(ours, theirs)
        elif theirs["verdict"] == "ok":
            assert any(word in refusal for word in STRICTER), refusal


def test_unmutated_base_agrees_with_the_library(tmp_path):
    path = tmp_path / "base.gguf"
    path.write_bytes(_base())
    theirs = LIBRARY.read(str(path))
    assert theirs["verdict"] == "ok"
    _compare(parse_gguf(path), theirs)


def test_real_smollm2_agrees_with_the_library(smollm2_gguf_reader):
    """Every tensor and every metadata value of the real file, as the library reads them."""
    _compare(parse_gguf(_smollm2()), _summary(smollm2_gguf_reader))
    assert len(smollm2_gguf_reader.tensors) == 272
