"""The safetensors header parser: the 8-byte length prefix and the JSON header of one file, never the data.

`read_safetensors_file(path)` returns the tensors (as :class:`~inspector.checkpoint.records.TensorInfo`) and the
`__metadata__` map; `parse_header_bytes` does the same for header bytes read elsewhere (the Hub); every malformed file raises a one-line :class:`~inspector.errors.InspectError`
naming it. The rules below are those of safetensors 0.8, checked by a differential fuzz test.

What the safetensors parser accepts
-----------------------------------
The goal is to accept exactly the files ``safetensors.safe_open`` (0.8) accepts, checked by a
differential fuzz test. Rules, as the Rust library applies them:

* the first 8 bytes are a little-endian u64 ``N``; ``N`` must be at most 100,000,000 and
  ``8 + N`` at most the file size (both checked before anything is read or allocated);
* the ``N`` header bytes are UTF-8 JSON (serde_json grammar: leading/trailing JSON whitespace is
  allowed, so the usual space padding is fine; anything else after the object is not; no NaN or
  Infinity, no out-of-range numbers, no lone surrogate escapes, nesting at most 127 deep);
* the JSON is an object; ``__metadata__`` (at most once) is null or a str->str map; every other
  key is a tensor whose value is ``{"dtype", "shape", "data_offsets"}`` (unknown extra fields are
  ignored; a known field may not repeat) or the 3-element list ``[dtype, shape, data_offsets]``;
* dtype is one of :data:`SAFETENSORS_DTYPE_BITS` (also accepted in serde's ``{"F32": null}``
  form); shape is a list of ints in ``[0, 2**64)``; data_offsets is exactly ``[begin, end]``;
* sorted by offsets, the tensors tile the data buffer: the first begins at 0, each begins where
  the previous ended, ``end - begin == prod(shape) * bits / 8`` (computed with u64 overflow
  checks, sub-byte dtypes must fill whole bytes), and the last ends exactly at
  ``file size - 8 - N``.

Deliberate deviation: safetensors silently keeps the last of two tensors with the same name, and
the last value of a repeated ``__metadata__`` key; this parser refuses such a header, because it
cannot tell which entry the writer meant.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
from typing import Any

from inspector.checkpoint.records import TensorInfo
from inspector.errors import InspectError, printable, quoted
from inspector import files


#: Element size in bits of every dtype safetensors 0.8 accepts.
SAFETENSORS_DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

MAX_HEADER_BYTES = 100_000_000
_U64_MAX = 2**64 - 1
_I64_MIN = -(2**63)
_MAX_JSON_DEPTH = 127  # serde_json's recursion limit, as measured against safetensors 0.8


class _Reject(Exception):
    """Internal: the header is malformed; the message says why (no file name yet)."""


# --------------------------------------------------------------------------- JSON layer


class _Obj(list):
    """A JSON object kept as its (key, value) pairs, in order, repeats included."""

    __slots__ = ()


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _Obj:
    return _Obj(pairs)


def _parse_int(s: str) -> int | float:
    # serde_json reads an integer literal as u64, else i64, else f64 (out of range if infinite);
    # "-0" becomes the float -0.0.
    if s == "-0":
        return -0.0
    if len(s) <= 21:
        v = int(s)
        if _I64_MIN <= v <= _U64_MAX:
            return v
    f = float(s)
    if math.isinf(f):
        raise _Reject("number out of range")
    return f


def _parse_float(s: str) -> float:
    f = float(s)
    if math.isinf(f):
        raise _Reject("number out of range")
    return f


def _parse_constant(s: str) -> Any:
    raise _Reject(f"{s} is not JSON")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return True
        elif type(v) is _Obj:
            for k, x in v:
                if _SURROGATE.search(k):
                    return True
                stack.append(x)
        elif type(v) is list:
            stack.extend(v)
    return False


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of containers in value (0 for a scalar); stops counting past limit."""
    best = 0
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if type(v) is _Obj:
            children = [x for _, x in v]
        elif type(v) is list:
            children = v
        else:
            continue
        best = max(best, d)
        if best > limit:
            return best
        stack.extend((c, d + 1) for c in children)
    return best


# Number literals where Python's json and serde_json could disagree ("-0", integers beyond
# 64 bits, floats that overflow); only headers containing one of these pay for the Python hooks.
# (The pattern may also fire inside a string; that only costs speed.)
_NUMBER_RISK = re.compile(r"\d{20}|\d[eE]|-0(?![\d.eE])")


def _loads(text: str) -> Any:
    hooks: dict[str, Any] = {}
    if _NUMBER_RISK.search(text):
        hooks = {"parse_int": _parse_int, "parse_float": _parse_float}
    try:
        value = json.loads(
            text, object_pairs_hook=_pairs_hook, parse_constant=_parse_constant, **hooks
        )
    except _Reject:
        raise
    except RecursionError:
        raise _Reject("header JSON nests too deeply") from None
    except ValueError as e:  # JSONDecodeError and int() limits
        raise _Reject(f"header is not valid JSON ({printable(e)})") from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise _Reject("header JSON has a lone surrogate escape in a string")
    return value


# --------------------------------------------------------------------------- header semantics


def _as_u64(v: Any) -> int | None:
    if type(v) is int and 0 <= v <= _U64_MAX:
        return v
    return None


def _dtype_of(v: Any, name: str) -> str:
    if type(v) is str:
        if v in SAFETENSORS_DTYPE_BITS:
            return v
        raise _Reject(f"tensor {quoted(name)}: unknown dtype {quoted(v)}")
    if type(v) is _Obj and len(v) == 1 and v[0][1] is None and v[0][0] in SAFETENSORS_DTYPE_BITS:
        return v[0][0]  # serde's externally-tagged enum form {"F32": null}
    raise _Reject(f"tensor {quoted(name)}: dtype is not a dtype name")


def _shape_of(v: Any, name: str) -> tuple[int, ...]:
    if type(v) is not list:
        raise _Reject(f"tensor {quoted(name)}: shape is not a list")
    for d in v:
        if type(d) is not int or d < 0 or d > _U64_MAX:
            raise _Reject(
                f"tensor {quoted(name)}: shape {printable(v)} is not a list of non-negative integers"
            )
    return tuple(v)


def _offsets_of(v: Any, name: str) -> tuple[int, int]:
    if type(v) is not list or len(v) != 2:
        raise _Reject(f"tensor {quoted(name)}: data_offsets is not [begin, end]")
    b, e = _as_u64(v[0]), _as_u64(v[1])
    if b is None or e is None:
        raise _Reject(f"tensor {quoted(name)}: data_offsets {printable(v)} are not non-negative integers")
    return b, e


def _tensor_entry(name: str, v: Any) -> tuple[str, tuple[int, ...], tuple[int, int]]:
    if type(v) is list:
        if len(v) != 3:
            raise _Reject(f"tensor {quoted(name)}: entry is not an object")
        return _dtype_of(v[0], name), _shape_of(v[1], name), _offsets_of(v[2], name)
    if type(v) is not _Obj:
        raise _Reject(f"tensor {quoted(name)}: entry is not an object")
    if len(v) == 3:  # the common case: exactly the three fields, in the usual order
        (k0, dt), (k1, sh), (k2, off) = v
        if k0 == "dtype" and k1 == "shape" and k2 == "data_offsets":
            return _dtype_of(dt, name), _shape_of(sh, name), _offsets_of(off, name)
    known: dict[str, Any] = {}
    for key, x in v:
        if key in ("dtype", "shape", "data_offsets"):
            if key in known:
                raise _Reject(f"tensor {quoted(name)}: field {key} appears twice")
            known[key] = x
        elif _depth(x, _MAX_JSON_DEPTH) + 2 > _MAX_JSON_DEPTH:
            raise _Reject("header JSON nests too deeply")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in known:
            raise _Reject(f"tensor {quoted(name)}: missing field {key}")
    return (
        _dtype_of(known["dtype"], name),
        _shape_of(known["shape"], name),
        _offsets_of(known["data_offsets"], name),
    )


def _metadata_of(v: Any) -> dict[str, str]:
    if v is None:
        return {}
    if type(v) is not _Obj:
        raise _Reject("__metadata__ is not an object")
    out: dict[str, str] = {}
    for k, x in v:
        if type(x) is not str:
            raise _Reject(f"__metadata__ value for {quoted(k)} is not a string")
        if k in out:
            raise _Reject(f"__metadata__ key {quoted(k)} appears twice")
        out[k] = x
    return out


def _parse_header(raw: bytes, data_size: int, file_label: str):
    """Parse and validate header bytes; returns (tensors, __metadata__). Raises _Reject."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Reject(f"header is not UTF-8 (bad byte at offset {8 + e.start})") from None
    top = _loads(text)
    if type(top) is not _Obj:
        raise _Reject("header JSON is not an object")
    metadata: dict[str, str] = {}
    seen_meta = False
    entries: dict[str, tuple[str, tuple[int, ...], tuple[int, int]]] = {}
    for key, v in top:
        if key == "__metadata__":
            if seen_meta:
                raise _Reject("__metadata__ appears twice")
            seen_meta = True
            metadata = _metadata_of(v)
            continue
        if key in entries:
            raise _Reject(f"tensor {quoted(key)} appears twice")
        entries[key] = _tensor_entry(key, v)

    # The data offsets, sorted, must tile [0, data_size) exactly.
    order = sorted(entries, key=lambda n: entries[n][2])
    pos = 0
    tensors: dict[str, TensorInfo] = {}
    for name in order:
        dtype, shape, (begin, end) = entries[name]
        if begin != pos or end < begin:
            what = "overlap" if begin < pos else "gap" if begin > pos else "end before begin"
            raise _Reject(
                f"tensor {quoted(name)}: data_offsets [{begin}, {end}] do not follow the previous "
                f"tensor, which ends at {pos} ({what})"
            )
        pos = end
        numel = 1
        for d in shape:
            numel *= d
            if numel > _U64_MAX:
                raise _Reject(f"tensor {quoted(name)}: shape {list(shape)} overflows")
        bits = numel * SAFETENSORS_DTYPE_BITS[dtype]
        if bits > _U64_MAX:
            raise _Reject(f"tensor {quoted(name)}: shape {list(shape)} overflows")
        if bits % 8:
            raise _Reject(
                f"tensor {quoted(name)}: {numel} elements of {dtype} do not fill whole bytes"
            )
        if end - begin != bits // 8:
            raise _Reject(
                f"tensor {quoted(name)}: shape {list(shape)} of {dtype} needs {bits // 8} bytes but "
                f"data_offsets [{begin}, {end}] hold {end - begin}"
            )
    if pos != data_size:
        raise _Reject(
            f"tensors cover {pos} bytes of data but the file holds {data_size} after the header"
        )
    for name, (dtype, shape, (begin, end)) in entries.items():
        tensors[name] = TensorInfo(name, shape, dtype, end - begin, file_label)
    return tensors, metadata


def header_length(prefix: bytes, file_size: int, file_label: str) -> int:
    """The header length N from a file's first 8 bytes, checked against the limit and the file size."""
    where = printable(file_label)
    if len(prefix) < 8:
        raise InspectError(f"{where}: not a safetensors file: {len(prefix)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", prefix[:8])
    # the length is not shown: in a file that is not safetensors it is 8 of its bytes
    if n > MAX_HEADER_BYTES:
        raise InspectError(f"{where}: not a safetensors file: its header length prefix is over the "
                           f"{MAX_HEADER_BYTES}-byte limit")
    if n > file_size - 8:
        raise InspectError(f"{where}: not a safetensors file: its header length prefix is more than the "
                           f"{file_size - 8:,} bytes after it")
    return n


def parse_header_bytes(raw: bytes, file_size: int, file_label: str) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Parse the N header bytes (after the 8-byte prefix) of a safetensors file of ``file_size`` bytes
    that came from elsewhere (a range read on the Hub, a cache), by the rules above; one-line errors."""
    try:
        return _parse_header(raw, file_size - 8 - len(raw), file_label)
    except _Reject as e:
        raise InspectError(f"{printable(file_label)}: not a valid safetensors file: {e}") from None


def read_safetensors_file(
    path: str | os.PathLike, file_label: str | None = None
) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Read one safetensors header: (name -> TensorInfo, the ``__metadata__`` map).

    Reads 8 + N bytes and nothing more. ``file_label`` is what TensorInfo.file and error messages
    call the file (default: the path as given). Raises InspectError for anything malformed.
    """
    label = str(path) if file_label is None else file_label
    where = printable(path)  # the path as opened (the label may be a bare shard name)
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise InspectError(f"{where}: is {files.kind_of(mode)}, not a safetensors file")
        with files.open_binary(path) as f:
            size = os.fstat(f.fileno()).st_size
            n = header_length(files.read_exact(f, 8), size, label)
            raw = files.read_exact(f, n)
    except InspectError:
        raise
    except FileNotFoundError:
        raise InspectError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise InspectError(f"{where}: is a directory, not a safetensors file") from None
    except OSError as e:
        raise InspectError(f"{where}: cannot read: {printable(e.strerror or e)}") from None
    if len(raw) != n:
        raise InspectError(f"{where}: file shrank while reading its header")
    return parse_header_bytes(raw, size, label)


def read_safetensors_header(path: str | os.PathLike) -> dict[str, TensorInfo]:
    """Read one safetensors file's header: name -> TensorInfo (``file`` = path as given)."""
    return read_safetensors_file(path)[0]


