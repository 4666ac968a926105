"""Numbers and bytes: element counts, bytes per element of each dtype name, and how figures are shown.

One place for what "bf16" costs per parameter and for how a count or a size is written, so that
accounting, the runtime's fit check and the reports agree.
"""

from __future__ import annotations

import math
from typing import Iterable

# Bytes per element of the torch dtypes the reference model runs in (by their torch names).
TORCH_DTYPE_BYTES: dict[str, int] = {"float32": 4, "bfloat16": 2, "float16": 2}

# Bytes per element of a KV cache, by the dtype it is kept in (params --kv-dtype).
KV_DTYPE_BYTES: dict[str, int] = {"bf16": 2, "fp16": 2, "fp32": 4, "fp8": 1, "int8": 1}

# Bytes per parameter of the weight-memory estimate in `params` (storage formats, not torch dtypes).
WEIGHT_BYTES_PER_PARAM: dict[str, float] = {"fp32": 4, "bf16/fp16": 2, "fp8": 1, "int4": 0.5}


def numel(shape: Iterable[int]) -> int:
    """Number of elements of a tensor of this shape (1 for a scalar)."""
    return math.prod(shape)


class Count(int):
    """A count in a table cell: rendered with thousands separators in tables and markdown, plain in
    CSV and JSON (inspector.reports.render decides; reports only say what the number is)."""


def n(x: int | float) -> str:
    """A count with thousands separators: 1,543,714,304."""
    return f"{int(x):,}"


def billions(x: int) -> str:
    return f"{x / 1e9:.2f}B" if x >= 1e9 else f"{x / 1e6:.1f}M"


def human_bytes(x: float) -> str:
    """Bytes in binary units: 2.88 GiB."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if x >= size:
            return f"{x / size:.2f} {unit}"
    return f"{int(x)} B"


def plural(count: int, word: str) -> str:
    """'1 tensor', '2 tensors' (the count with thousands separators)."""
    return f"{n(count)} {word}" + ("" if count == 1 else "s")
