"""GGUF files: the one bounded reader of their headers, and the per-architecture GGUF facts.

This module owns
  * ``GGUF_ARCHITECTURES`` (the facts live in inspector.spec.families): what each llama.cpp
    architecture is on the Hugging Face side;
  * :func:`parse_gguf`: the key/value metadata and the tensor infos of a ``.gguf`` file, read by our
    own bounded parser (a :class:`GGUFFile`); :func:`read_gguf` gives them as CheckpointHeaders;
  * :meth:`GGUFFile.values`: a metadata array's values, long ones read from the file on demand (the
    GGUF tokenizer reads its vocabulary this way).
The mapping to Hugging Face (config, names) is inspector.checkpoint.gguf_hf. Tensor data is read by
inspector.checkpoint.tensors through numpy.memmap at the offsets validated here and dequantized
with ``gguf.quants`` (the gguf package serves for dequantization only).

Bounds. Every count and length is checked against the bytes left in the file before anything is
read or allocated, so a crafted count (an array of 2**62 items) fails at once. Long arrays (more
than :data:`MAX_INLINE_ARRAY` items: the tokenizer's tokens, merges, scores) are skipped, their
strings' lengths walked but nothing decoded, and kept as a :class:`GGUFArray` record (element type,
length, file offset) that :meth:`GGUFFile.values` reads when asked. Tensor infos are validated: a
known ggml type, at most 4 dimensions, ``ne[0]`` a multiple of the type's block size, the data
offset a multiple of ``general.alignment`` (a power of two, default 32), inside the file, and no two
tensors overlapping. Anything else is one InspectError line naming the file.

Shapes. GGUF stores dimensions fastest-varying first (``ne[0]`` first); ``TensorInfo.stored_shape``
keeps that order and ``TensorInfo.shape`` is its reverse, the PyTorch order. ``dtype`` and
``quant`` are both the ggml type name (``"Q4_1"``, ``"F32"``); ``nbytes`` the bytes in the file.

Values versus shapes. For architectures marked ``permuted_qk``, llama.cpp's converter
permutes the rows of ``attn_q.weight`` and ``attn_k.weight`` within each head (HF's rotate-half RoPE
to ggml's interleaved pairs): shapes are unchanged, values must be un-permuted with
:func:`qk_row_permutation` (``attn_k`` with the number of KV heads), as transformers' GGUF loader does.
Gemma's files store every norm weight as 1 + w (``norm_plus_one``): a loader into the (1 + w) form
subtracts 1, as transformers' GGUF loader does.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from inspector import files
from inspector.checkpoint.records import CheckpointHeaders, TensorInfo
from inspector.errors import InspectError, printable, quoted
from inspector.spec.families import GGUF_ARCHITECTURES, GGUFArch  # noqa: F401 (re-exported)


__all__ = ["GGML_TYPES", "GGUF_ARCHITECTURES", "GGUFArch", "GGUFArray", "GGUFFile", "GGUFTensor",
           "MAX_INLINE_ARRAY", "open_gguf", "parse_gguf", "read_gguf"]

# --------------------------------------------------------------------------- the format (facts)

# GGUF value types: id -> (name, struct format; None for STRING and ARRAY).
VALUE_TYPES: Mapping[int, tuple[str, str | None]] = MappingProxyType({
    0: ("UINT8", "B"), 1: ("INT8", "b"), 2: ("UINT16", "H"), 3: ("INT16", "h"), 4: ("UINT32", "I"),
    5: ("INT32", "i"), 6: ("FLOAT32", "f"), 7: ("BOOL", "?"), 8: ("STRING", None), 9: ("ARRAY", None),
    10: ("UINT64", "Q"), 11: ("INT64", "q"), 12: ("FLOAT64", "d"),
})
_STRING, _ARRAY, _UINT32 = 8, 9, 4

# ggml tensor types: id -> (name, elements per block, bytes per block) (ggml's type traits).
GGML_TYPES: Mapping[int, tuple[str, int, int]] = MappingProxyType({
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40), 10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
    28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
})

MAX_INLINE_ARRAY = 64  # longer metadata arrays are kept as GGUFArray records
MAX_DIMS = 4  # ggml's GGML_MAX_DIMS
MAX_NESTING = 8  # arrays of arrays
DEFAULT_ALIGNMENT = 32
_U64_LIMIT = 2**63
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_MIN_SIZE = {_STRING: 8, _ARRAY: 12}  # smallest encoding of one element of each non-scalar type


@dataclass(frozen=True)
class GGUFArray:
    """A long GGUF metadata array, kept as its element type, length and file offset (not read)."""

    elem_type: str
    length: int
    offset: int = 0  # file offset of the first element

    def __len__(self) -> int:
        return self.length


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor info, validated: ``offset`` is the absolute file offset of its data."""

    name: str
    ggml_type: int
    quant: str
    stored_shape: tuple[int, ...]
    offset: int
    nbytes: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(reversed(self.stored_shape))


class _Bad(Exception):
    """Internal: the header is malformed; the message says why (no file name yet)."""


class _Reader:
    """A bounded cursor over the mapped file: every read checks the bytes left first."""

    def __init__(self, buf, size: int, pos: int = 0) -> None:
        self.buf, self.size, self.pos = buf, size, pos

    def need(self, n: int, what: str) -> int:
        if n < 0 or n > self.size - self.pos:
            raise _Bad(f"truncated or corrupt: {what} runs past the end of the file")
        start = self.pos
        self.pos += n
        return start

    def u32(self, what: str) -> int:
        return _U32.unpack_from(self.buf, self.need(4, what))[0]

    def u64(self, what: str) -> int:
        return _U64.unpack_from(self.buf, self.need(8, what))[0]

    def raw_string(self, what: str) -> bytes:
        n = self.u64(what)
        start = self.need(n, what)
        return self.buf[start:start + n]

    def name(self, what: str) -> str:
        try:
            return self.raw_string(what).decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad(f"{what} is not UTF-8") from None

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        if vtype == _STRING:
            return self.raw_string(what).decode("utf-8", "surrogateescape")
        if vtype == _ARRAY:
            return self.array(what, depth)
        name_fmt = VALUE_TYPES.get(vtype)
        if name_fmt is None:
            raise _Bad(f"{what} has unknown value type {vtype}")
        fmt = "<" + name_fmt[1]
        return struct.unpack_from(fmt, self.buf, self.need(struct.calcsize(fmt), what))[0]

    def array(self, what: str, depth: int) -> Any:
        etype, n = self.u32(what), self.u64(what)
        if etype not in VALUE_TYPES:
            raise _Bad(f"{what} is an array of unknown value type {etype}")
        if depth >= MAX_NESTING:
            raise _Bad(f"{what} nests arrays more than {MAX_NESTING} deep")
        fmt = VALUE_TYPES[etype][1]
        size = struct.calcsize("<" + fmt) if fmt else _MIN_SIZE[etype]
        if n * size > self.size - self.pos:
            raise _Bad(f"truncated or corrupt: {what} ({n:,} items) runs past the end of the file")
        if n <= MAX_INLINE_ARRAY:
            if fmt:
                return list(struct.unpack_from(f"<{n}{fmt}", self.buf, self.need(n * size, what)))
            return [self.value(etype, what, depth + 1) for _ in range(n)]
        start = self.pos
        self.skip(etype, n, what, depth)
        return GGUFArray(VALUE_TYPES[etype][0], n, start)

    def skip(self, etype: int, n: int, what: str, depth: int) -> None:
        fmt = VALUE_TYPES[etype][1]
        if fmt:
            self.need(n * struct.calcsize("<" + fmt), what)
        elif etype == _STRING:  # walk the lengths; decode nothing
            buf, end, pos, unpack = self.buf, self.size, self.pos, _U64.unpack_from
            for _ in range(n):
                if pos + 8 > end:
                    raise _Bad(f"truncated or corrupt: {what} runs past the end of the file")
                pos += 8 + unpack(buf, pos)[0]
                if pos > end:
                    raise _Bad(f"truncated or corrupt: {what} runs past the end of the file")
            self.pos = pos
        else:
            for _ in range(n):
                self.array(what, depth + 1)


@dataclass
class GGUFFile:
    """A parsed GGUF header: metadata (long arrays as GGUFArray records) and validated tensor infos."""

    path: str
    size: int
    version: int
    alignment: int
    data_offset: int
    metadata: dict[str, Any]
    value_types: dict[str, int]
    tensors: list[GGUFTensor]

    def values(self, key: str) -> list | None:
        """A metadata array's values (a long one read from the file now); None when absent."""
        value = self.metadata.get(key)
        if not isinstance(value, GGUFArray):
            return value if isinstance(value, list) else None
        etype = next(k for k, (name, _) in VALUE_TYPES.items() if name == value.elem_type)
        where = printable(self.path)
        with files.open_regular(self.path, "a GGUF file") as f:
            if os.fstat(f.fileno()).st_size != self.size:
                raise InspectError(f"{where}: the file changed while it was being read")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                r = _Reader(buf, self.size, value.offset)
                fmt = VALUE_TYPES[etype][1]
                try:
                    if fmt:
                        n = value.length
                        return list(struct.unpack_from(f"<{n}{fmt}", buf, r.need(n * struct.calcsize("<" + fmt), key)))
                    return [r.value(etype, key, 1) for _ in range(value.length)]
                except _Bad as exc:
                    raise InspectError(f"{where}: not a valid GGUF file: {exc}") from None

    def headers(self) -> CheckpointHeaders:
        label = str(self.path)
        tensors = {t.name: TensorInfo(t.name, t.shape, t.quant, t.nbytes, label, t.quant, t.stored_shape)
                   for t in self.tensors}
        return CheckpointHeaders(tensors, [label], "gguf", dict(self.metadata), [])


def _header(r: _Reader, path: str) -> tuple[int, int, int]:
    if r.size < 4 or bytes(r.buf[:4]) != b"GGUF":
        raise InspectError(f"{printable(path)}: not a GGUF file (it does not start with the GGUF magic)")
    r.pos = 4
    version = r.u32("the version")
    if version & 0xFFFF == 0:
        raise _Bad("it is big-endian, which is not supported")
    if version not in (2, 3):
        raise _Bad(f"GGUF version {version} is not supported (versions 2 and 3 are)")
    n_tensors, n_kv = r.u64("the tensor count"), r.u64("the key/value count")
    if n_kv * 13 > r.size - r.pos or n_tensors * 24 > r.size - r.pos:
        raise _Bad("truncated or corrupt: its tensor and key/value counts do not fit in the file")
    return version, n_tensors, n_kv


def _tensor_info(r: _Reader) -> tuple[str, tuple[int, ...], int, int]:
    name = r.name("a tensor name")
    n_dims = r.u32(f"tensor {quoted(name)}")
    if n_dims > MAX_DIMS:
        raise _Bad(f"tensor {quoted(name)} has {n_dims} dimensions (at most {MAX_DIMS})")
    dims = struct.unpack_from(f"<{n_dims}Q", r.buf, r.need(8 * n_dims, f"tensor {quoted(name)}"))
    ggml_type = r.u32(f"tensor {quoted(name)}")
    if ggml_type not in GGML_TYPES:
        raise _Bad(f"tensor {quoted(name)} has unknown ggml type {ggml_type}")
    return name, dims, ggml_type, r.u64(f"tensor {quoted(name)}")


def _validate_tensors(infos, alignment: int, data_offset: int, size: int) -> list[GGUFTensor]:
    tensors: dict[str, GGUFTensor] = {}
    for name, dims, ggml_type, offset in infos:
        quant, block, type_size = GGML_TYPES[ggml_type]
        if name in tensors:
            raise _Bad(f"tensor {quoted(name)} appears twice")
        if dims and dims[0] % block:
            raise _Bad(f"tensor {quoted(name)}: {dims[0]} elements per row are not a whole number of "
                       f"{quant} blocks of {block}")
        numel = math.prod(dims)
        if numel >= _U64_LIMIT:
            raise _Bad(f"tensor {quoted(name)}: shape {list(dims)} is too large")
        nbytes = numel // block * type_size
        if offset % alignment:
            raise _Bad(f"tensor {quoted(name)}: data offset {offset} is not a multiple of the alignment {alignment}")
        if data_offset + offset + nbytes > size:
            raise _Bad(f"tensor {quoted(name)} ({quant} {list(dims)}, {nbytes:,} bytes at offset {offset}) runs "
                       f"past the end of the file; the file is truncated or corrupt")
        tensors[name] = GGUFTensor(name, ggml_type, quant, tuple(dims), data_offset + offset, nbytes)
    end, previous = 0, None
    for t in sorted(tensors.values(), key=lambda t: (t.offset, t.nbytes)):
        if t.offset < end:
            raise _Bad(f"tensor {quoted(t.name)} overlaps tensor {quoted(previous)} in the file")
        if t.nbytes:
            end, previous = t.offset + t.nbytes, t.name
    return list(tensors.values())


def _parse(buf, size: int, path: str) -> GGUFFile:
    r = _Reader(buf, size)
    version, n_tensors, n_kv = _header(r, path)
    metadata: dict[str, Any] = {}
    types: dict[str, int] = {}
    for _ in range(n_kv):
        key = r.name("a metadata key")
        if key in metadata:
            raise _Bad(f"metadata key {quoted(key)} appears twice")
        types[key] = r.u32(f"metadata {quoted(key)}")
        metadata[key] = r.value(types[key], f"metadata {quoted(key)}")
    infos = [_tensor_info(r) for _ in range(n_tensors)]
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if "general.alignment" in metadata and (types["general.alignment"] != _UINT32 or alignment <= 0
                                            or alignment & (alignment - 1)):
        raise _Bad(f"general.alignment {printable(alignment)} is not a power of two stored as UINT32")
    data_offset = -(-r.pos // alignment) * alignment
    tensors = _validate_tensors(infos, alignment, data_offset, size)
    return GGUFFile(path, size, version, alignment, data_offset, metadata, types, tensors)


def parse_gguf(path: str | os.PathLike) -> GGUFFile:
    """Read and validate a GGUF file's header (metadata and tensor infos); no tensor data is read."""
    where = printable(path)
    with files.open_regular(path, "a GGUF file") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 4:
            raise InspectError(f"{where}: not a GGUF file ({size} bytes)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                return _parse(buf, size, str(path))
            except _Bad as exc:
                raise InspectError(f"{where}: not a valid GGUF file: {exc}") from None
            except struct.error:  # the file shrank under the mapping
                raise InspectError(f"{where}: not a valid GGUF file: truncated or corrupt") from None


def read_gguf(path: str | os.PathLike) -> CheckpointHeaders:
    """A GGUF file's tensor infos and metadata as CheckpointHeaders (no tensor data is read)."""
    return parse_gguf(path).headers()


def open_gguf(path: str | os.PathLike) -> tuple[GGUFFile, CheckpointHeaders]:
    """The parsed file (for tensor data and long arrays) and its headers: one parse for both."""
    parsed = parse_gguf(path)
    return parsed, parsed.headers()
