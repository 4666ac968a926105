"""One-pass torch dequantizers of GGUF block types, each equal bit for bit to gguf.quants.dequantize.

Each function takes a type's raw bytes (a flat uint8 numpy array or memory map, a multiple of its block
size) and returns float32 (n_blocks, values per block). The block layouts are ggml's (ggml-common.h:
block_q4_0 ... block_q6_K) as gguf-py's `gguf/quants.py` decodes them in `dequantize_blocks`; each value is
the same IEEE float32 operations in the same order as there (f16 -> f32 casts, small integers -> f32 casts,
then one product, and for the types with a minimum one separate sum or difference: no fused multiply-add),
so the result is the same bits, NaN and infinite and subnormal scales included (tests/test_gguf_reader.py
compares the raw bits on random blocks and on every tensor of two real files). Integer unpacking stays
in uint8/int8 until the one float32 multiply, which is what makes it one pass instead of numpy's many.

`DEQUANTIZERS` is the one table: ggml type name -> function; a type not in it is dequantized by gguf.quants.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch

QK_K = 256  # values per K-quant super-block (ggml-common.h QK_K)


def _blocks(raw, type_size: int) -> torch.Tensor:
    """The bytes as a uint8 tensor (n_blocks, type_size), sharing memory (the file's mapping is read-only and
    only read here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(raw).reshape(-1, type_size)


def _f16(blocks: torch.Tensor, at: int) -> torch.Tensor:
    """The f16 at byte `at` of each block, as float32 (n_blocks, 1)."""
    return blocks[:, at:at + 2].contiguous().view(torch.float16).to(torch.float32)


def _nibbles(qs: torch.Tensor, groups: int) -> torch.Tensor:
    """qs (n, groups * w) as (n, groups, 2, w) uint8: each group's low nibbles, then its high nibbles.
    (Two scalar ops into one buffer: torch's broadcast shifts by a tensor of shifts are 2x slower.)"""
    qs = qs.reshape(qs.shape[0], groups, -1)
    out = torch.empty((qs.shape[0], groups, 2, qs.shape[2]), dtype=torch.uint8)
    torch.bitwise_and(qs, 0x0F, out=out[:, :, 0])
    torch.bitwise_right_shift(qs, 4, out=out[:, :, 1])
    return out


def _bits(qh: torch.Tensor, width: int) -> torch.Tensor:
    """The `width`-bit fields of each byte of qh (n, k), lowest first, as (n, 8 // width, k) uint8
    (field i of byte j at [:, i, j])."""
    out = torch.empty((qh.shape[0], 8 // width, qh.shape[1]), dtype=torch.uint8)
    for i in range(8 // width):
        torch.bitwise_right_shift(qh, i * width, out=out[:, i]).bitwise_and_((1 << width) - 1)
    return out


def _bits32(qh: torch.Tensor) -> torch.Tensor:
    """qh (n, 4) bytes, a little-endian uint32, as its 32 bits (n, 32) uint8, bit j at column j."""
    return _bits(qh, 1).transpose(1, 2).reshape(-1, 32)


def _scaled(q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """d * q in float32 (q small integers, exact in float32; d broadcast to q's shape), one rounding per value:
    the cast allocates the output and the product is taken in place (a mixed-dtype product is slower)."""
    return q.to(torch.float32).mul_(d)


def _plus(out: torch.Tensor, q: torch.Tensor, d: torch.Tensor, m: torch.Tensor, minus: bool = False) -> torch.Tensor:
    """out (= d * q) + m (or - m) in place, as gguf.quants' (d * q) + m: where both are NaN, numpy keeps the
    first operand's NaN (x86 and Arm alike) but torch's add, computed as m * alpha + out, may keep m's; the
    blocks where that can happen (a NaN m with an infinite or NaN d: never in a real file) are redone, so the
    payload is d * q's. (Not out + (-m): negating a NaN m would flip its sign bit, numpy's d * q - m does not.)"""
    out.sub_(m) if minus else out.add_(m)
    bad = (~torch.isfinite(d) & torch.isnan(m)).squeeze(-1)
    if bad.any():
        prod = _scaled(q[bad], d[bad])
        out[bad] = torch.where(torch.isnan(prod), prod, out[bad])
    return out


def dequantize_q8_0(raw) -> torch.Tensor:
    """Q8_0 (34 bytes: f16 d, 32 int8 q): x * d (gguf.quants Q8_0)."""
    blocks = _blocks(raw, 34)
    return _scaled(blocks[:, 2:].view(torch.int8), _f16(blocks, 0))


def dequantize_q4_0(raw) -> torch.Tensor:
    """Q4_0 (18 bytes: f16 d, 16 bytes of nibbles): d * (q - 8), q the low nibbles then the high ones."""
    blocks = _blocks(raw, 18)
    q = _nibbles(blocks[:, 2:], 1).reshape(-1, 32).view(torch.int8).sub_(8)
    return _scaled(q, _f16(blocks, 0))


def dequantize_q4_1(raw) -> torch.Tensor:
    """Q4_1 (20 bytes: f16 d, f16 m, 16 bytes of nibbles): (d * q) + m."""
    blocks = _blocks(raw, 20)
    q, d = _nibbles(blocks[:, 4:], 1).reshape(-1, 32), _f16(blocks, 0)
    return _plus(_scaled(q, d), q, d, _f16(blocks, 2))


def _q5(blocks: torch.Tensor, at: int) -> torch.Tensor:
    """The 5-bit q of a Q5_0/Q5_1 block from byte `at` (4 bytes of high bits, then 16 of nibbles), uint8 (n, 32)."""
    ql = _nibbles(blocks[:, at + 4:], 1).reshape(-1, 32)
    return ql.bitwise_or_(_bits32(blocks[:, at:at + 4]).bitwise_left_shift_(4))


def dequantize_q5_0(raw) -> torch.Tensor:
    """Q5_0 (22 bytes: f16 d, uint32 high bits, 16 bytes of nibbles): d * (q - 16)."""
    blocks = _blocks(raw, 22)
    return _scaled(_q5(blocks, 2).view(torch.int8).sub_(16), _f16(blocks, 0))


def dequantize_q5_1(raw) -> torch.Tensor:
    """Q5_1 (24 bytes: f16 d, f16 m, uint32 high bits, 16 bytes of nibbles): (d * q) + m."""
    blocks = _blocks(raw, 24)
    q, d = _q5(blocks, 4), _f16(blocks, 0)
    return _plus(_scaled(q, d), q, d, _f16(blocks, 2))


def _k_scales(blocks: torch.Tensor) -> torch.Tensor:
    """The eight sub-block scales (n, 8) and mins (n, 8) of a Q4_K/Q5_K block, 6 bits each in 12 bytes
    from byte 4: bytes 0-3 scales 0-3 (and their top bits: scales 4-7's), 4-7 mins 0-3 (mins 4-7's top
    bits), 8-11 scales 4-7's and mins 4-7's low nibbles (gguf.quants Q4_K.get_scale_min)."""
    s = blocks[:, 4:16].reshape(-1, 3, 4)
    d, m, m_d = s[:, 0], s[:, 1], s[:, 2]
    sc = torch.cat([d & 0x3F, (m_d & 0x0F) | ((d >> 2) & 0x30)], dim=-1)
    mn = torch.cat([m & 0x3F, (m_d >> 4) | ((m >> 2) & 0x30)], dim=-1)
    return sc, mn


def _k_minus(q: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """(d * sc) * q - (dmin * m) per sub-block of 32, q uint8 (n, 8, 32), as float32 (n, 256)."""
    sc, mn = _k_scales(blocks)
    d = (_f16(blocks, 0) * sc.to(torch.float32)).unsqueeze(-1)
    dm = (_f16(blocks, 2) * mn.to(torch.float32)).unsqueeze(-1)
    return _plus(_scaled(q, d), q, d, dm, minus=True).reshape(-1, QK_K)


def dequantize_q4_k(raw) -> torch.Tensor:
    """Q4_K (144 bytes: f16 d, f16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles: 4 groups of 32
    bytes, each two sub-blocks: its low nibbles, then its high ones)."""
    blocks = _blocks(raw, 144)
    return _k_minus(_nibbles(blocks[:, 16:], 4).reshape(-1, 8, 32), blocks)


def dequantize_q5_k(raw) -> torch.Tensor:
    """Q5_K (176 bytes: as Q4_K, then 32 bytes of high bits before the nibbles: bit i of byte j is the
    fifth bit of sub-block i's value j)."""
    blocks = _blocks(raw, 176)
    qh = _bits(blocks[:, 16:48], 1)
    q = _nibbles(blocks[:, 48:], 4).reshape(-1, 8, 32).bitwise_or_(qh.bitwise_left_shift_(4))
    return _k_minus(q, blocks)


def dequantize_q6_k(raw) -> torch.Tensor:
    """Q6_K (210 bytes: 128 bytes of low nibbles, 64 of 2-bit highs, 16 int8 scales, f16 d):
    (d * scale) * (q - 32) per sub-block of 16."""
    blocks = _blocks(raw, 210)
    ql = _nibbles(blocks[:, :128], 2).reshape(-1, 8, 32)
    qh = _bits(blocks[:, 128:192].reshape(-1, 32), 2).reshape(-1, 8, 32)
    q = ql.bitwise_or_(qh.bitwise_left_shift_(4)).view(torch.int8).sub_(32).reshape(-1, 16, 16)
    d = (_f16(blocks, 208) * blocks[:, 192:208].view(torch.int8).to(torch.float32)).unsqueeze(-1)
    return _scaled(q, d).reshape(-1, QK_K)


# ggml type name -> its dequantizer; the types not here go through gguf.quants.
DEQUANTIZERS: Mapping[str, Callable[..., torch.Tensor]] = MappingProxyType({
    "Q4_0": dequantize_q4_0, "Q4_1": dequantize_q4_1, "Q5_0": dequantize_q5_0, "Q5_1": dequantize_q5_1,
    "Q8_0": dequantize_q8_0, "Q4_K": dequantize_q4_k, "Q5_K": dequantize_q5_k, "Q6_K": dequantize_q6_k,
})
