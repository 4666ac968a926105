"""Writing GGUF bytes by hand (the format of the GGUF spec, little-endian, v3) for crafted test files.

`gguf_file(metadata, tensors)` lays out: magic, version, tensor count, key/value count, the key/values,
the tensor infos, padding to the alignment, then the data. Counts, types and offsets can be given
as anything (that is the point: tests craft files a writer library would refuse to write).
`tiny_llama()` is a small valid llama-architecture file: the base most crafted files start from.
"""

from __future__ import annotations

import struct
from typing import Any

SCALAR = {"UINT8": (0, "B"), "INT8": (1, "b"), "UINT16": (2, "H"), "INT16": (3, "h"), "UINT32": (4, "I"),
          "INT32": (5, "i"), "FLOAT32": (6, "f"), "BOOL": (7, "?"), "UINT64": (10, "Q"), "INT64": (11, "q"),
          "FLOAT64": (12, "d")}
STRING, ARRAY = 8, 9
F32, F16, Q8_0 = 0, 1, 8


def string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def value(vtype: str, v: Any) -> bytes:
    """The encoding of a value of GGUF type `vtype` ("UINT32", "STRING", ("ARRAY", elem_type))."""
    if vtype == "STRING":
        return string(v)
    if isinstance(vtype, tuple):  # ("ARRAY", elem)
        elem = vtype[1]
        code = SCALAR[elem][0] if elem in SCALAR else STRING if elem == "STRING" else ARRAY
        return struct.pack("<IQ", code, len(v)) + b"".join(value(elem, x) for x in v)
    return struct.pack("<" + SCALAR[vtype][1], v)


def type_code(vtype: Any) -> int:
    return STRING if vtype == "STRING" else ARRAY if isinstance(vtype, tuple) else SCALAR[vtype][0]


def gguf_file(metadata: list[tuple[str, Any, Any]], tensors: list[tuple[str, tuple[int, ...], int, int]],
              data: bytes = b"", alignment: int = 32, version: int = 3, counts: tuple[int, int] | None = None,
              raw_kv: bytes = b"") -> bytes:
    """metadata: (key, type, value); tensors: (name, stored dims (ne[0] first), ggml type, offset)."""
    n_tensors, n_kv = counts if counts is not None else (len(tensors), len(metadata) + (1 if raw_kv else 0))
    out = bytearray(b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv))  # appended in place: fast at 40,000
    out += b"".join(string(k) + struct.pack("<I", type_code(t)) + value(t, v) for k, t, v in metadata) + raw_kv
    for name, dims, ggml_type, offset in tensors:
        out += string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        out += struct.pack("<IQ", ggml_type, offset)
    out += b"\0" * (-len(out) % alignment)
    return bytes(out) + data


LLAMA_META = [
    ("general.architecture", "STRING", "llama"),
    ("llama.block_count", "UINT32", 1),
    ("llama.context_length", "UINT32", 64),
    ("llama.embedding_length", "UINT32", 8),
    ("llama.feed_forward_length", "UINT32", 16),
    ("llama.attention.head_count", "UINT32", 2),
    ("llama.attention.head_count_kv", "UINT32", 1),
    ("llama.rope.freq_base", "FLOAT32", 10000.0),
    ("llama.attention.layer_norm_rms_epsilon", "FLOAT32", 1e-5),
    ("tokenizer.ggml.model", "STRING", "gpt2"),
    ("tokenizer.ggml.tokens", ("ARRAY", "STRING"), [chr(33 + i) for i in range(90)]),
    ("tokenizer.ggml.merges", ("ARRAY", "STRING"), ["! \"", "# $"]),
]


def llama_tensors(vocab: int = 90, d: int = 8, ff: int = 16, kv: int = 4) -> list[tuple[str, tuple[int, ...], int]]:
    """(name, stored dims, ggml type) of a 1-layer llama, all F32."""
    return [("token_embd.weight", (d, vocab), F32), ("output_norm.weight", (d,), F32),
            ("blk.0.attn_norm.weight", (d,), F32), ("blk.0.ffn_norm.weight", (d,), F32),
            ("blk.0.attn_q.weight", (d, d), F32), ("blk.0.attn_k.weight", (d, kv), F32),
            ("blk.0.attn_v.weight", (d, kv), F32), ("blk.0.attn_output.weight", (d, d), F32),
            ("blk.0.ffn_gate.weight", (d, ff), F32), ("blk.0.ffn_up.weight", (d, ff), F32),
            ("blk.0.ffn_down.weight", (ff, d), F32)]


def tiny_llama(metadata: list | None = None, tensors: list | None = None, **kw) -> bytes:
    """A valid 1-layer llama GGUF (F32, data packed at 32-byte alignment), metadata/tensors overridable."""
    infos, offset = [], 0
    for name, dims, ggml_type in tensors or llama_tensors():
        size = 4
        for x in dims:
            size *= x
        infos.append((name, dims, ggml_type, offset))
        offset += size + (-size % 32)
    return gguf_file(LLAMA_META if metadata is None else metadata, infos, b"\0" * offset, **kw)


def replace_meta(key: str, vtype: Any, v: Any) -> list:
    """LLAMA_META with one key's type and value replaced (or added)."""
    out = [(k, t, x) for k, t, x in LLAMA_META if k != key]
    return out + [(key, vtype, v)]
