"""Per-layer relative change ‖A−B‖/‖A‖ of two checkpoints' weights, read one tensor pair at a time.

Both sides are inspector.checkpoint.tensors sources (safetensors through its mmap, GGUF dequantized to
float32 under Hugging Face names), so a fine-tune in safetensors compares with its GGUF. At most one
tensor of each side is in memory at a time (plus their difference): memory is bounded by the largest
tensor, not the model. Two GGUF tensors with the same ggml type and the same bytes are equal without
being dequantized; a layer with a change has every tensor's ‖A‖ computed, so the per-layer figure is
sqrt(Σ‖A−B‖²) / sqrt(Σ‖A‖²) over all its tensors (Frobenius norms, accumulated in float64).
Needs torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from inspector.checkpoint.tensors import GGUFSource, TensorSource

# a layer's index in a Hugging Face name: model.layers.N. (Llama, Qwen, Gemma...), transformer.h.N. (GPT-2),
# gpt_neox.layers.N.; anything else (embeddings, final norm, head) is its own row
_LAYER = re.compile(r"(?:^|\.)(layers|h|blocks)\.(\d+)\.")


@dataclass(frozen=True)
class LayerChange:
    """One layer's (or one non-layer tensor's) relative change."""

    layer: str  # "layers.3", or a tensor name without .weight/.bias
    tensors: int
    changed: int  # tensors whose values differ
    relative: float  # ‖A−B‖ / ‖A‖ over the layer's tensors (0.0 when identical; inf when ‖A‖ = 0 < ‖A−B‖)
    changed_names: tuple[str, ...] = ()


def layer_of(name: str) -> str:
    """The row a tensor belongs to: `layers.N` for a layer's tensors, else the name less .weight/.bias."""
    m = _LAYER.search(name)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    return re.sub(r"\.(weight|bias)$", "", name)


def _same_bytes(a: TensorSource, b: TensorSource, name: str) -> bool:
    """Whether two GGUF tensors are stored alike (same ggml type and bytes): equal without dequantizing."""
    if not (isinstance(a, GGUFSource) and isinstance(b, GGUFSource)):
        return False
    ta, tb = a.tensors[name], b.tensors[name]
    if ta.ggml_type != tb.ggml_type or ta.nbytes != tb.nbytes:
        return False
    # GGUFSource keeps the file mapped once (its _bytes); the offsets are validated by the parser
    return bytes(a._bytes()[ta.offset:ta.offset + ta.nbytes]) == bytes(b._bytes()[tb.offset:tb.offset + tb.nbytes])


def _norm_sq(x: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(x.reshape(-1), dtype=torch.float64)) ** 2


_BITS = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.int8}


def _equal(ta: torch.Tensor, tb: torch.Tensor) -> bool:
    """Bit for bit when the dtypes agree (a NaN equals itself; -0.0 and 0.0 differ), else by value."""
    if ta.dtype == tb.dtype and ta.dtype.is_floating_point and ta.element_size() in _BITS:
        view = _BITS[ta.element_size()]
        return torch.equal(ta.contiguous().view(view), tb.contiguous().view(view))
    return torch.equal(ta, tb)


def _pair(a: TensorSource, b: TensorSource, name: str) -> tuple[bool, float, float]:
    """(equal, ‖A−B‖², ‖A‖²) of one tensor pair, one pair in memory."""
    ta, tb = a.get(name), b.get(name)
    if _equal(ta, tb):
        return True, 0.0, _norm_sq(ta)
    diff = ta.to(torch.float32) - tb.to(torch.float32)
    return False, _norm_sq(diff), _norm_sq(ta)


def _norm_only(a: TensorSource, name: str) -> float:
    return _norm_sq(a.get(name))


def _relative(diff_sq: float, norm_sq: float) -> float:
    if diff_sq == 0.0:
        return 0.0
    return math.sqrt(diff_sq / norm_sq) if norm_sq > 0 else math.inf


def compare_weights(a: TensorSource, b: TensorSource, names: list[str]) -> list[LayerChange]:
    """Rows in the order of `names` (tensors both sides hold, with the same shape)."""
    by_layer: dict[str, list[str]] = {}
    for name in names:
        by_layer.setdefault(layer_of(name), []).append(name)
    rows = []
    for layer, members in by_layer.items():
        diff_sq = norm_sq = 0.0
        changed = []
        unread = []
        for name in members:
            if _same_bytes(a, b, name):
                unread.append(name)
                continue
            equal, d, n = _pair(a, b, name)
            diff_sq, norm_sq = diff_sq + d, norm_sq + n
            if not equal:  # NaNs, or a difference too small for float64's square, still count as changed
                changed.append(name)
        if changed:  # ‖A‖ of the layer's byte-equal tensors too: the figure is over the whole layer
            norm_sq += sum(_norm_only(a, name) for name in unread)
        rows.append(LayerChange(layer, len(members), len(changed), _relative(diff_sq, norm_sq), tuple(changed)))
    return rows
