"""Checkpoint headers: which tensors a checkpoint on disk holds, read without touching the weights.

This module owns
  * the records :class:`TensorInfo` (one tensor as a checkpoint describes it) and
    :class:`CheckpointHeaders` (everything a checkpoint says about itself);
  * :func:`read_safetensors_header`, a hardened parser of the safetensors header that reads only
    the 8-byte length prefix and the JSON header, never the data;
  * :func:`read_sharded`, which reads a ``model.safetensors.index.json`` and cross-checks it
    against the shard headers;
  * :func:`open_checkpoint`, which dispatches on a ``.safetensors`` file, a ``.gguf`` file, an
    index file or a directory.

Errors versus problems
----------------------
Two kinds of bad news come out of here, and they mean different things:

* :class:`~inspector.errors.InspectError` (the CLI's exit code 2) is raised when the input cannot
  be read safely or at all: a missing or unreadable file, a malformed safetensors header, a
  malformed index, a shard the index names that is not on disk, a shard path that escapes the
  checkpoint directory, a pickle checkpoint. The message is one line naming the file.
* ``CheckpointHeaders.problems`` (one line each) collects *inconsistencies between readable
  files*: a tensor the index lists that its shard does not hold, a tensor a shard holds that the
  index does not list (or lists under another shard), a tensor held by more than one file. These
  are findings about the checkpoint; ``inspect verify`` reports them as mismatches (exit code 1).
  ``tensors`` then describes what the shard headers really contain, not what the index claims.

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

Shard paths
-----------
Shard names that come from inside the checkpoint (the index's ``weight_map``) are not trusted:
absolute paths and ``..`` components are refused, and the resolved file must lie inside the
checkpoint directory, so a symlink pointing elsewhere is refused too. One exception keeps Hugging
Face cache snapshots usable: in ``<repo>/snapshots/<rev>/`` files are symlinks into
``<repo>/blobs/``, which is allowed. Files found by listing a directory the user named (no index)
are read wherever their symlinks point, like the file a user names directly. Only regular files
are opened (never a FIFO or device, which could block or never end).

``metadata``: for safetensors, a map from file name to that file's ``__metadata__`` (str->str),
plus, when sharded, the index file's own ``"metadata"`` object under the index file's name. For
GGUF it is the GGUF key/value metadata (see :mod:`inspector.gguf_reader`).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspector.errors import InspectError

__all__ = [
    "SAFETENSORS_DTYPE_BITS",
    "CheckpointHeaders",
    "TensorInfo",
    "open_checkpoint",
    "read_safetensors_header",
    "read_safetensors_file",
    "read_sharded",
]

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
_INDEX_NAME = "model.safetensors.index.json"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_MAX_INDEX_BYTES = 100_000_000


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as a checkpoint header describes it.

    ``shape`` is in PyTorch order (outermost dimension first) for every format. ``nbytes`` is the
    number of bytes the tensor occupies in the file. ``file`` is the shard file name (as the
    index or directory names it) or the path as given for a single file. For GGUF, ``quant`` is
    the ggml type name (``"Q4_1"``, ``"F32"``) and ``stored_shape`` the dimensions in GGUF's own
    order (ne[0] first), i.e. ``shape`` reversed.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    file: str
    quant: str | None = None
    stored_shape: tuple[int, ...] | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class CheckpointHeaders:
    """Everything a checkpoint says about itself, without its weights.

    ``tensors``: name -> TensorInfo, as the file headers say (not as an index claims).
    ``files``: the files read, in reading order (names relative to the checkpoint directory, or
    the path as given for a single file). ``format``: ``"safetensors"`` or ``"gguf"``.
    ``metadata``: see the module docstring. ``problems``: one-line inconsistencies between the
    files (index vs shards, tensors in more than one file); empty when all agree.
    """

    tensors: dict[str, TensorInfo]
    files: list[str]
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def total_params(self) -> int:
        return sum(t.numel for t in self.tensors.values())

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())


# --------------------------------------------------------------------------- message helpers

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _show(text: object) -> str:
    """A value safe to put inside a one-line message."""
    s = str(text)
    if _UNPRINTABLE.search(s):
        return s.encode("unicode_escape", "backslashreplace").decode("ascii")
    return s


def _q(name: str) -> str:
    """A tensor or key name, quoted, on one line."""
    return json.dumps(name)


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
        raise _Reject(f"header is not valid JSON ({_show(e)})") from None
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
        raise _Reject(f"tensor {_q(name)}: unknown dtype {_q(v)}")
    if type(v) is _Obj and len(v) == 1 and v[0][1] is None and v[0][0] in SAFETENSORS_DTYPE_BITS:
        return v[0][0]  # serde's externally-tagged enum form {"F32": null}
    raise _Reject(f"tensor {_q(name)}: dtype is not a dtype name")


def _shape_of(v: Any, name: str) -> tuple[int, ...]:
    if type(v) is not list:
        raise _Reject(f"tensor {_q(name)}: shape is not a list")
    for d in v:
        if type(d) is not int or d < 0 or d > _U64_MAX:
            raise _Reject(
                f"tensor {_q(name)}: shape {_show(v)} is not a list of non-negative integers"
            )
    return tuple(v)


def _offsets_of(v: Any, name: str) -> tuple[int, int]:
    if type(v) is not list or len(v) != 2:
        raise _Reject(f"tensor {_q(name)}: data_offsets is not [begin, end]")
    b, e = _as_u64(v[0]), _as_u64(v[1])
    if b is None or e is None:
        raise _Reject(f"tensor {_q(name)}: data_offsets {_show(v)} are not non-negative integers")
    return b, e


def _tensor_entry(name: str, v: Any) -> tuple[str, tuple[int, ...], tuple[int, int]]:
    if type(v) is list:
        if len(v) != 3:
            raise _Reject(f"tensor {_q(name)}: entry is not an object")
        return _dtype_of(v[0], name), _shape_of(v[1], name), _offsets_of(v[2], name)
    if type(v) is not _Obj:
        raise _Reject(f"tensor {_q(name)}: entry is not an object")
    if len(v) == 3:  # the common case: exactly the three fields, in the usual order
        (k0, dt), (k1, sh), (k2, off) = v
        if k0 == "dtype" and k1 == "shape" and k2 == "data_offsets":
            return _dtype_of(dt, name), _shape_of(sh, name), _offsets_of(off, name)
    known: dict[str, Any] = {}
    for key, x in v:
        if key in ("dtype", "shape", "data_offsets"):
            if key in known:
                raise _Reject(f"tensor {_q(name)}: field {key} appears twice")
            known[key] = x
        elif _depth(x, _MAX_JSON_DEPTH) + 2 > _MAX_JSON_DEPTH:
            raise _Reject("header JSON nests too deeply")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in known:
            raise _Reject(f"tensor {_q(name)}: missing field {key}")
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
            raise _Reject(f"__metadata__ value for {_q(k)} is not a string")
        if k in out:
            raise _Reject(f"__metadata__ key {_q(k)} appears twice")
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
            raise _Reject(f"tensor {_q(key)} appears twice")
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
                f"tensor {_q(name)}: data_offsets [{begin}, {end}] do not follow the previous "
                f"tensor, which ends at {pos} ({what})"
            )
        pos = end
        numel = 1
        for d in shape:
            numel *= d
            if numel > _U64_MAX:
                raise _Reject(f"tensor {_q(name)}: shape {list(shape)} overflows")
        bits = numel * SAFETENSORS_DTYPE_BITS[dtype]
        if bits > _U64_MAX:
            raise _Reject(f"tensor {_q(name)}: shape {list(shape)} overflows")
        if bits % 8:
            raise _Reject(
                f"tensor {_q(name)}: {numel} elements of {dtype} do not fill whole bytes"
            )
        if end - begin != bits // 8:
            raise _Reject(
                f"tensor {_q(name)}: shape {list(shape)} of {dtype} needs {bits // 8} bytes but "
                f"data_offsets [{begin}, {end}] hold {end - begin}"
            )
    if pos != data_size:
        raise _Reject(
            f"tensors cover {pos} bytes of data but the file holds {data_size} after the header"
        )
    for name, (dtype, shape, (begin, end)) in entries.items():
        tensors[name] = TensorInfo(name, shape, dtype, end - begin, file_label)
    return tensors, metadata


def _open_binary(path: str | os.PathLike):
    """Open a file unbuffered for reading (a seam for tests that count bytes read)."""
    return open(path, "rb", buffering=0)


def _read_exact(f, n: int) -> bytes:
    chunks = []
    while n > 0:
        b = f.read(n)
        if not b:
            break
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_safetensors_file(
    path: str | os.PathLike, file_label: str | None = None
) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Read one safetensors header: (name -> TensorInfo, the ``__metadata__`` map).

    Reads 8 + N bytes and nothing more. ``file_label`` is what TensorInfo.file and error messages
    call the file (default: the path as given). Raises InspectError for anything malformed.
    """
    label = str(path) if file_label is None else file_label
    where = _show(label)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            kind = "a directory" if os.path.isdir(path) else "not a regular file"
            raise InspectError(f"{where}: is {kind}, not a safetensors file")
        with _open_binary(path) as f:
            size = os.fstat(f.fileno()).st_size
            prefix = _read_exact(f, 8)
            if len(prefix) < 8:
                raise InspectError(
                    f"{where}: not a safetensors file: {len(prefix)} bytes, shorter than the "
                    "8-byte header length"
                )
            (n,) = struct.unpack("<Q", prefix)
            if n > MAX_HEADER_BYTES:
                raise InspectError(
                    f"{where}: not a safetensors file: header length {n} is over the "
                    f"{MAX_HEADER_BYTES}-byte limit"
                )
            if n > size - 8:
                raise InspectError(
                    f"{where}: not a safetensors file: header length {n} is more than the "
                    f"{size - 8} bytes after the length prefix"
                )
            raw = _read_exact(f, n)
    except InspectError:
        raise
    except FileNotFoundError:
        raise InspectError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise InspectError(f"{where}: is a directory, not a safetensors file") from None
    except OSError as e:
        raise InspectError(f"{where}: cannot read: {_show(e.strerror or e)}") from None
    if len(raw) != n:
        raise InspectError(f"{where}: file shrank while reading its header")
    try:
        return _parse_header(raw, size - 8 - n, label)
    except _Reject as e:
        raise InspectError(f"{where}: not a valid safetensors file: {e}") from None


def read_safetensors_header(path: str | os.PathLike) -> dict[str, TensorInfo]:
    """Read one safetensors file's header: name -> TensorInfo (``file`` = path as given)."""
    return read_safetensors_file(path)[0]


# --------------------------------------------------------------------------- shards and paths


def _hf_cache_blobs(base: Path) -> Path | None:
    """For a Hugging Face cache snapshot dir <repo>/snapshots/<rev>, the <repo>/blobs dir."""
    if base.parent.name == "snapshots":
        return base.parent.parent / "blobs"
    return None


def _safe_member(base: Path, name: str, source: str) -> Path:
    """Resolve a file name found inside a checkpoint, refusing anything outside ``base``."""
    shown = _show(name)
    if not isinstance(name, str) or not name:
        raise InspectError(f"{source}: shard name {_show(json.dumps(name))} is not a file name")
    if "\x00" in name:
        raise InspectError(f"{source}: refusing shard name {shown}: it contains a NUL byte")
    pure = name.replace("\\", "/")
    if pure.startswith("/") or re.match(r"^[A-Za-z]:", pure) or os.path.isabs(name):
        raise InspectError(f"{source}: refusing absolute shard path {shown}")
    if ".." in pure.split("/"):
        raise InspectError(f"{source}: refusing shard path {shown}: it leaves the checkpoint directory")
    candidate = base / name
    real = os.path.realpath(candidate)
    allowed = [os.path.realpath(base)]
    blobs = _hf_cache_blobs(base.absolute())
    if blobs is not None:
        allowed.append(os.path.realpath(blobs))
    if not any(real == a or real.startswith(a.rstrip(os.sep) + os.sep) for a in allowed):
        raise InspectError(
            f"{source}: refusing shard {shown}: it resolves to {_show(real)}, outside the "
            "checkpoint directory"
        )
    return candidate


def _cross_check(
    per_file: dict[str, dict[str, TensorInfo]], weight_map: dict[str, str] | None
) -> tuple[dict[str, TensorInfo], list[str]]:
    """Merge per-file headers; compare with an index's weight_map when there is one."""
    holders: dict[str, list[str]] = {}
    for fname, tensors in per_file.items():
        for tname in tensors:
            holders.setdefault(tname, []).append(fname)
    problems: list[str] = []
    merged: dict[str, TensorInfo] = {}
    names = set(holders) | set(weight_map or {})
    for tname in sorted(names):
        held = holders.get(tname, [])
        indexed = weight_map.get(tname) if weight_map is not None else None
        if weight_map is not None:
            if indexed is None:
                problems.append(f"{_q(tname)}: in {', '.join(held)} but not listed in the index")
            elif not held:
                problems.append(
                    f"{_q(tname)}: the index lists it in {indexed}, but that shard does not hold it"
                )
            elif indexed not in held:
                problems.append(
                    f"{_q(tname)}: the index lists it in {indexed}, but it is in {', '.join(held)}"
                )
        if len(held) > 1:
            problems.append(f"{_q(tname)}: held by more than one file: {', '.join(held)}")
        if held:
            pick = indexed if indexed in held else held[0]
            merged[tname] = per_file[pick][tname]
    return merged, problems


def _read_index(index_path: Path) -> tuple[dict[str, str], dict[str, Any]]:
    where = _show(index_path)
    try:
        if not stat.S_ISREG(os.stat(index_path).st_mode):
            raise InspectError(f"{where}: is not a regular file")
        with _open_binary(index_path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > _MAX_INDEX_BYTES:
                raise InspectError(f"{where}: index file is {size} bytes, over the limit")
            raw = _read_exact(f, size)
    except InspectError:
        raise
    except FileNotFoundError:
        raise InspectError(f"{where}: no such file") from None
    except OSError as e:
        raise InspectError(f"{where}: cannot read: {_show(e.strerror or e)}") from None

    dup: list[str] = []

    def hook(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                dup.append(k)
            d[k] = v
        return d

    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=hook)
    except (ValueError, RecursionError) as e:
        raise InspectError(f"{where}: index is not valid JSON ({_show(e)})") from None
    if not isinstance(doc, dict):
        raise InspectError(f"{where}: index is not a JSON object")
    wm = doc.get("weight_map")
    if not isinstance(wm, dict):
        raise InspectError(f"{where}: index has no weight_map object")
    bad = [k for k, v in wm.items() if not isinstance(v, str)]
    if bad:
        raise InspectError(f"{where}: weight_map entry {_q(bad[0])} is not a file name")
    if dup:
        raise InspectError(f"{where}: index has a repeated key {_q(dup[0])}")
    meta = doc.get("metadata")
    return wm, meta if isinstance(meta, dict) else {}


def read_sharded(dir_or_index: str | os.PathLike) -> CheckpointHeaders:
    """Read a sharded safetensors checkpoint: its index plus every shard header it names.

    ``dir_or_index`` is the checkpoint directory or the index file itself. Index-vs-shard
    disagreements go to ``problems``; a missing or unsafe shard raises InspectError.
    """
    p = Path(dir_or_index)
    index_path = p / _INDEX_NAME if p.is_dir() else p
    base = index_path.parent
    weight_map, index_meta = _read_index(index_path)
    source = _show(index_path)
    shards = sorted(set(weight_map.values()))
    per_file: dict[str, dict[str, TensorInfo]] = {}
    metadata: dict[str, Any] = {index_path.name: index_meta}
    for shard in shards:
        shard_path = _safe_member(base, shard, source)
        if not shard_path.is_file():
            raise InspectError(f"{source}: names shard {_show(shard)}, which is not in {_show(base)}")
        tensors, meta = read_safetensors_file(shard_path, shard)
        per_file[shard] = tensors
        metadata[shard] = meta
    merged, problems = _cross_check(per_file, weight_map)
    return CheckpointHeaders(merged, shards, "safetensors", metadata, problems)


def _read_files(base: Path, names: list[str]) -> CheckpointHeaders:
    per_file: dict[str, dict[str, TensorInfo]] = {}
    metadata: dict[str, Any] = {}
    for name in names:  # found by listing a directory the user named: symlinks are followed
        per_file[name], metadata[name] = read_safetensors_file(base / name, name)
    merged, problems = _cross_check(per_file, None)
    return CheckpointHeaders(merged, list(names), "safetensors", metadata, problems)


def _refuse_pickle(path: Path) -> InspectError:
    return InspectError(
        f"{_show(path)}: is a pickle checkpoint (.bin/.pt/.pth); pickle checkpoints are never "
        "unpickled here, because loading one can run arbitrary code; use a safetensors or GGUF "
        "copy of the model"
    )


def open_checkpoint(path: str | os.PathLike) -> CheckpointHeaders:
    """Read the headers of whatever checkpoint ``path`` is.

    * a ``.safetensors`` file; a ``*.index.json`` file (sharded); a ``.gguf`` file;
    * a directory: ``model.safetensors.index.json`` if present, else ``model.safetensors``, else
      every ``*.safetensors`` in it (not recursive), else a single ``*.gguf``.
    Pickle checkpoints (.bin/.pt/.pth/.ckpt/.pkl) are refused, never unpickled.
    """
    p = Path(path)
    if p.is_dir():
        if (p / _INDEX_NAME).is_file():
            return read_sharded(p)
        if (p / "model.safetensors").is_file():
            return _read_files(p, ["model.safetensors"])
        found = sorted(c.name for c in p.glob("*.safetensors") if c.is_file())
        if found:
            return _read_files(p, found)
        ggufs = sorted(c.name for c in p.glob("*.gguf") if c.is_file())
        if len(ggufs) == 1:
            from inspector.gguf_reader import read_gguf

            return read_gguf(p / ggufs[0])
        if len(ggufs) > 1:
            raise InspectError(
                f"{_show(p)}: holds {len(ggufs)} GGUF files ({', '.join(ggufs[:4])}"
                f"{', ...' if len(ggufs) > 4 else ''}); name the one to read"
            )
        pickles = sorted(c for c in p.iterdir() if c.suffix.lower() in _PICKLE_SUFFIXES)
        if pickles:
            raise _refuse_pickle(pickles[0])
        raise InspectError(f"{_show(p)}: no safetensors or GGUF checkpoint in this directory")
    if not p.exists():
        raise InspectError(f"{_show(p)}: no such file or directory")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        tensors, meta = read_safetensors_file(p)
        return CheckpointHeaders(tensors, [str(p)], "safetensors", {str(p): meta}, [])
    if p.name.endswith(".index.json"):
        if p.name.startswith("pytorch_model"):
            raise _refuse_pickle(p)
        return read_sharded(p)
    if suffix == ".gguf":
        from inspector.gguf_reader import read_gguf

        return read_gguf(p)
    if suffix in _PICKLE_SUFFIXES:
        raise _refuse_pickle(p)
    raise InspectError(
        f"{_show(p)}: unknown checkpoint type; expected .safetensors, .gguf, an index.json or a "
        "directory"
    )
