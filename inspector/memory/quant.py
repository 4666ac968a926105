"""Bytes of the weights at a storage dtype, scales included, and which tensors a format quantizes.

Serving formats (`--dtype`): bf16/fp16 (2 bytes); fp8 (1 byte plus one fp32 scale per 128×128
block, DeepSeek-V3's and vLLM's block-wise fp8); int8 (1 byte plus one fp32 scale per output
channel); int4 (half a byte plus one fp16 scale per group of `group_size` weights along the input,
GPTQ/AWQ style). Only the linear weights of the layers are quantized: the embedding, the LM head,
norms, biases and routers stay in 16-bit, as vLLM's quantized checkpoints keep them.

QLoRA (`nf4`): bitsandbytes' 4-bit NormalFloat with blocksize 64 and an fp32 absmax per block
(4.5 bits per weight); with double quantization the absmax values are themselves 8-bit with one
fp32 scale per 256 of them (4 + 8/64 + 32/(64·256) ≈ 4.127 bits). It quantizes exactly the
`nn.Linear` (and GPT-2 `Conv1D`) modules other than the output embedding.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from inspector.errors import InspectError

SERVE_DTYPES = ("bf16", "fp16", "fp8", "int8", "int4")
KV_DTYPES = ("bf16", "fp16", "fp8", "int8")
KV_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}
NF4_BLOCK = 64
DQ_BLOCK = 256
FP8_BLOCK = 128 * 128


class Format(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    name: str
    rule: str  # what one weight costs, in words


FORMATS = {
    "bf16": Format("bf16", "2 B per weight"),
    "fp16": Format("fp16", "2 B per weight"),
    "fp8": Format("fp8", "1 B per weight + one fp32 scale per 128×128 block"),
    "int8": Format("int8", "1 B per weight + one fp32 scale per output channel"),
    "int4": Format("int4", "0.5 B per weight + one fp16 scale per group of {group} inputs"),
    "nf4": Format("nf4", "NF4: 0.5 B per weight + one fp32 absmax per 64 (4.5 bits)"),
    "nf4-dq": Format("nf4-dq", "NF4 with double quantization: 0.5 B + an 8-bit absmax per 64 + one fp32 "
                               "scale per 256 blocks (≈4.127 bits)"),
}


def check_dtype(dtype: str, allowed: tuple[str, ...], option: str) -> str:
    if dtype not in allowed:
        raise InspectError(f"{option} {dtype!r} is not one of {', '.join(allowed)}")
    return dtype


def quantized_bytes(numel: int, in_features: int, dtype: str, group_size: int = 128) -> int:
    """Bytes of one weight tensor of `numel` elements whose rows are `in_features` long."""
    if dtype in ("bf16", "fp16"):
        return 2 * numel
    if dtype == "fp8":
        return numel + 4 * math.ceil(numel / FP8_BLOCK)
    if dtype == "int8":
        return numel + 4 * (numel // max(in_features, 1))
    if dtype == "int4":
        return math.ceil(numel / 2) + 2 * math.ceil(numel / group_size)
    if dtype == "nf4":
        return math.ceil(numel / 2) + 4 * math.ceil(numel / NF4_BLOCK)
    if dtype == "nf4-dq":
        blocks = math.ceil(numel / NF4_BLOCK)
        return math.ceil(numel / 2) + blocks + 4 * math.ceil(blocks / DQ_BLOCK)
    raise InspectError(f"unknown weight dtype {dtype!r}")


def bits_per_weight(dtype: str, group_size: int = 128) -> float:
    """The average bits of a large quantized matrix (scales spread over its weights)."""
    big = 2**30
    return 8 * quantized_bytes(big, 4096, dtype, group_size) / big
