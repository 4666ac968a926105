"""Quantized checkpoints: what `quantization_config` says, and what each stored tensor is.

A quantized checkpoint stores a logical weight (out, in) as a packed tensor plus side tensors
(scales, zero points, group indices, block scales). `read_scheme` reads config.json's
`quantization_config`; `classify` says of a stored tensor name which logical weight it belongs to
and whether it is the packed weight or a side tensor; `packed_shape` / `side_shape` give the shapes
the method's documented layout implies for a logical shape, so verify can check them. Side tensors
are not parameters; a packed weight counts as its logical parameters.

Layouts (shapes in PyTorch order; out x in is the logical nn.Linear weight):
  gptq          qweight (in*bits/32, out) int32, qzeros (groups, out*bits/32) int32,
                scales (groups, out), g_idx (in,); groups = in / group_size (1 when group_size -1)
  awq (gemm)    qweight (in, out*bits/32) int32, qzeros (groups, out*bits/32), scales (groups, out)
  bitsandbytes  4-bit: weight (ceil(out*in/2), 1) uint8, weight.absmax (ceil(out*in/64),),
                weight.quant_map (16,), weight.nested_absmax, weight.nested_quant_map (256,),
                weight.quant_state.bitsandbytes__nf4|fp4 (serialized state); 8-bit: weight int8
                (out, in), SCB (out,), weight_format
  fp8           weight float8 (out, in), weight_scale_inv (ceil(out/b0), ceil(in/b1)) for
                weight_block_size [b0, b1] (DeepSeek-V3)
  compressed-tensors  weight float8 (out, in) or weight_packed (out, in*bits/32) int32, weight_scale
                (1,) per tensor | (out, 1) per channel | (out, in/group) per group | (out/b0, in/b1)
                per block, weight_zero_point like weight_scale, input_scale, weight_shape (2,)
  mxfp4         X_blocks (..., b, a/32, 16) uint8 and X_scales (..., b, a/32) uint8 for a logical
                (..., a, b) expert tensor X stored without ".weight" (gpt-oss)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from inspector.errors import InspectError
from inspector.spec.config_reader import ConfigReader

PACKED, SIDE = "packed", "side"
Shape = tuple[int, ...]


@dataclass(frozen=True)
class QuantScheme:
    method: str
    bits: int = 4
    group_size: int = -1
    block: tuple[int, int] | None = None
    strategy: str = "tensor"
    description: str = ""


PACKED_BITS = (2, 3, 4, 8, 16)  # bits per packed value (32 // bits values per int32)
MAX_BLOCK = 1 << 16


def _bits(r: ConfigReader, key: str, default: int) -> int:
    bits = r.int(key, default)
    if bits not in PACKED_BITS:
        raise r.fail(key, f"must be one of {', '.join(map(str, PACKED_BITS))}", bits)
    return bits


def _group_size(r: ConfigReader, default: int) -> int:
    """-1 (or null): one group per row; else a positive group size."""
    size = r.int("group_size", default, minimum=-1)
    if size == 0:
        raise r.fail("group_size", "must be -1 (no groups) or a positive integer", size)
    return size


def _block(r: ConfigReader, key: str) -> tuple[int, int] | None:
    """A block shape [rows, cols] of two positive integers, or None when absent."""
    value = r.raw(key)
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= MAX_BLOCK for b in value)):
        raise r.fail(key, f"must be two integers from 1 to {MAX_BLOCK:,}", value)
    return value[0], value[1]


def _compressed_tensors(r: ConfigReader) -> QuantScheme:
    """compressed-tensors: the first config group's `weights` (num_bits, group_size, strategy,
    block_structure), each read with its type and range."""
    groups = r.sub("config_groups") if r.has("config_groups") else None
    weights = None
    for name in (groups.cfg if groups is not None else {}):
        group = groups.sub(name)
        if group.has("weights"):
            weights = group.sub("weights")
            break
    if weights is None:
        weights = ConfigReader({}, r.where, f"{r.path}.config_groups")
    strategy = weights.str("strategy", "tensor")
    bits = _bits(weights, "num_bits", 8)
    fmt = r.str("format", "")
    kind = weights.str("type", "")
    return QuantScheme("compressed-tensors", bits, _group_size(weights, -1), _block(weights, "block_structure"),
                       strategy, f"compressed-tensors {fmt} {kind}{bits} ({strategy})".replace("  ", " "))


def read_scheme(qc: Any, where: str) -> QuantScheme | None:
    """The scheme of a config.json `quantization_config`; None when there is none. Every field is
    read through a ConfigReader: a wrong type or a value out of range is one line naming it."""
    if qc is None:
        return None
    if not isinstance(qc, dict) or not isinstance(qc.get("quant_method"), str):
        raise InspectError(f"{where}: field 'quantization_config' must be an object with a 'quant_method'")
    r = ConfigReader(qc, where, "quantization_config")
    method = r.str("quant_method")
    if method in ("gptq", "awq"):
        bits, group = _bits(r, "bits", 4), _group_size(r, 128)
        return QuantScheme(method, bits, group, description=f"{method} {bits}-bit, group size {group}")
    if method == "bitsandbytes":
        four = r.bool("load_in_4bit", False) or r.bool("_load_in_4bit", False)
        kind = r.str("bnb_4bit_quant_type", "fp4") if four else "int8"
        return QuantScheme("bitsandbytes", 4 if four else 8, 64 if four else -1,
                           description=f"bitsandbytes {'4-bit ' + kind if four else '8-bit'}")
    if method == "fp8":
        block = _block(r, "weight_block_size")
        blocks = f", blocks {block[0]}x{block[1]}" if block else ""
        return QuantScheme("fp8", 8, block=block, description=f"fp8 {r.str('fmt', 'e4m3')}{blocks}")
    if method == "compressed-tensors":
        return _compressed_tensors(r)
    if method == "mxfp4":
        return QuantScheme("mxfp4", 4, 32, description="mxfp4 (blocks of 32 4-bit values, one uint8 scale)")
    return QuantScheme(method, description=f"{method} (layout not known here: its tensors are listed as found)")


# Stored-name suffixes of each method: suffix -> (packed | side, part); the logical weight's name is
# the stored name with the suffix replaced by ".weight" (mxfp4: removed).
_SUFFIXES: dict[str, dict[str, tuple[str, str]]] = {
    "gptq": {".qweight": (PACKED, "qweight"), ".qzeros": (SIDE, "qzeros"), ".scales": (SIDE, "scales"),
             ".g_idx": (SIDE, "g_idx")},
    "awq": {".qweight": (PACKED, "qweight"), ".qzeros": (SIDE, "qzeros"), ".scales": (SIDE, "scales")},
    "bitsandbytes": {".weight.absmax": (SIDE, "absmax"), ".weight.quant_map": (SIDE, "quant_map"),
                     ".weight.nested_absmax": (SIDE, "nested_absmax"),
                     ".weight.nested_quant_map": (SIDE, "nested_quant_map"),
                     ".weight.quant_state.bitsandbytes__nf4": (SIDE, "quant_state"),
                     ".weight.quant_state.bitsandbytes__fp4": (SIDE, "quant_state"),
                     ".SCB": (SIDE, "SCB"), ".weight_format": (SIDE, "weight_format")},
    "fp8": {".weight_scale_inv": (SIDE, "block_scale"), ".activation_scale": (SIDE, "any"),
            ".input_scale": (SIDE, "any")},
    "compressed-tensors": {".weight_packed": (PACKED, "weight_packed"), ".weight_scale": (SIDE, "scale"),
                           ".weight_zero_point": (SIDE, "scale"), ".weight_g_idx": (SIDE, "g_idx"),
                           ".weight_shape": (SIDE, "weight_shape"), ".input_scale": (SIDE, "any"),
                           ".input_zero_point": (SIDE, "any"), ".output_scale": (SIDE, "any")},
    "mxfp4": {"_blocks": (PACKED, "blocks"), "_scales": (SIDE, "mx_scales")},
}
LOOKS_QUANTIZED = tuple(sorted({s for table in _SUFFIXES.values() for s in table} - {".scales"}))


def classify(scheme: QuantScheme, stored: str) -> tuple[str, str, str] | None:
    """(logical weight name, packed | side, part) of a stored tensor, or None when it is neither."""
    for suffix, (kind, part) in _SUFFIXES.get(scheme.method, {}).items():
        if stored.endswith(suffix):
            base = stored[: -len(suffix)]
            return (base if scheme.method == "mxfp4" else base + ".weight"), kind, part
    return None


def _groups(scheme: QuantScheme, cols: int) -> int:
    return 1 if scheme.group_size <= 0 else math.ceil(cols / scheme.group_size)


def packed_shape(scheme: QuantScheme, part: str, logical: Shape) -> Shape | None:
    """The shape the method stores a logical weight in (None: not a 2-D weight it can pack)."""
    if part == "blocks" and len(logical) >= 2:
        *lead, a, b = logical
        return (*lead, b, math.ceil(a / 32), 16)
    if len(logical) != 2:
        return None
    out, cols = logical
    per_int = 32 // scheme.bits
    if part == "qweight":
        return (cols // per_int, out) if scheme.method == "gptq" else (cols, out // per_int)
    if part == "weight_packed":
        return (out, cols // per_int)
    if part == "bnb4":
        return (math.ceil(out * cols * scheme.bits / 8), 1)
    return None


def side_shape(scheme: QuantScheme, part: str, logical: Shape) -> Shape | None:
    """The shape of a side tensor for a logical weight (None: any shape is accepted)."""
    if part == "mx_scales" and len(logical) >= 2:
        *lead, a, b = logical
        return (*lead, b, math.ceil(a / 32))
    if len(logical) != 2:
        return None
    out, cols = logical
    per_int = 32 // scheme.bits
    if part == "qzeros":
        return (_groups(scheme, cols), out // per_int)
    if part == "scales":
        return (_groups(scheme, cols), out)
    if part == "g_idx":
        return (cols,)
    if part == "absmax" and scheme.method == "bitsandbytes":
        return (math.ceil(out * cols / scheme.group_size),)
    if part == "quant_map":
        return (16,)
    if part == "nested_quant_map":
        return (256,)
    if part == "SCB":
        return (out,)
    if part == "block_scale" and scheme.block:
        return (math.ceil(out / scheme.block[0]), math.ceil(cols / scheme.block[1]))
    if part == "scale":
        return _ct_scale(scheme, out, cols)
    return None


def _ct_scale(scheme: QuantScheme, out: int, cols: int) -> Shape | None:
    if scheme.strategy == "channel":
        return (out, 1)
    if scheme.strategy == "group" and scheme.group_size > 0:
        return (out, math.ceil(cols / scheme.group_size))
    if scheme.strategy == "block" and scheme.block:
        return (math.ceil(out / scheme.block[0]), math.ceil(cols / scheme.block[1]))
    return None  # per tensor: (1,) or () depending on the writer
