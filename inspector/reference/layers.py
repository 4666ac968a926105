"""The building blocks every reference model shares: Taps, projections, norms, RoPE, the KV cache, the mask.

Tap points and step notes, projections in the family's stored layout (`linear`: nn.Linear, or GPT-2's
Conv1D stored (in, out)), the norms (RMSNorm and LayerNorm, each with or without a bias and with the weight
used as is or as Gemma's offset from 1, as the spec's `NormKind` record says), RoPE (full or partial,
rotate-half or interleaved pairs, with the scalings transformers implements), the KV cache and the causal
mask (sliding window, Llama 4's chunks) of *Implementations of Large Language Models* section 1.2.5.

A `Tap` is an identity module: a named point in a forward where a tracer's forward hook can see an
intermediate value. With no hooks a Tap costs one Python call. Every module worth showing carries
its own step note (`step_note`: the step of the document it illustrates and what happens there),
set where the module is built; a tracer reads it, so no table elsewhere lists modules by name.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from inspector.errors import InspectError
from inspector.spec.norms import NormKind
from inspector.spec.text import TextSpec


def note(module: nn.Module, step: str, text: str) -> nn.Module:
    """Give `module` its step note (what a trace says about its output) and return it."""
    module.step_note = (step, text)
    return module


class Tap(nn.Identity):
    """A named point in a forward where a tracer's forward hook can see an intermediate value.

    `values=True` marks a small tensor whose values are data worth keeping (an MoE layer's tokens
    per expert): a tracer records them as well as the shape, when the device has values."""

    def __init__(self, step: str = "", text: str = "", values: bool = False) -> None:
        super().__init__()
        self.step_note = (step, text)
        if values:
            self.record_values = True


# --------------------------------------------------------------------------- projections


class TransposedLinear(nn.Module):
    """GPT-2's Conv1D: y = x W + b with W stored (in, out), the checkpoint's own layout."""

    def __init__(self, in_f: int, out_f: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_f, out_f))
        self.bias = nn.Parameter(torch.zeros(out_f)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.weight  # (..., out)
        return y + self.bias if self.bias is not None else y


def linear(spec: TextSpec, in_f: int, out_f: int, bias: bool, step: str, text: str) -> nn.Module:
    """A projection in the family's stored layout, with its step note."""
    layer = TransposedLinear(in_f, out_f, bias) if spec.transposed_linears else nn.Linear(in_f, out_f, bias=bias)
    return note(layer, step, text)


# --------------------------------------------------------------------------- norms


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * w (+ b) over the last dim (Appendix B.1), computed in float32.

    `offset`: Gemma's form, x_norm * (1 + w) in float32, with w stored as an offset from 1."""

    def __init__(self, dim: int, eps: float, offset: bool = False, bias: bool = False,
                 float_weight: bool = False) -> None:
        super().__init__()
        self.eps, self.offset, self.float_weight = eps, offset, float_weight
        self.weight = nn.Parameter(torch.zeros(dim) if offset else torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.offset:
            y = (h * (1.0 + self.weight.float())).to(x.dtype)
        elif self.float_weight:  # Gemma 3n / 4: x_norm * w in float32, then the input's dtype
            y = (h * self.weight.float()).to(x.dtype)
        else:
            y = self.weight * h.to(x.dtype)
        return y if self.bias is None else y + self.bias


class LayerNorm(nn.LayerNorm):
    """(x - mean) / sqrt(var + eps) * w (+ b) over the last dim; `offset`: the weight is stored as an
    offset from 1 and the norm multiplies by (1 + w), in the input's dtype (NVIDIA's LayerNorm1P)."""

    def __init__(self, dim: int, eps: float, offset: bool = False, bias: bool = True) -> None:
        super().__init__(dim, eps=eps, bias=bias)
        self.offset = offset
        if offset:
            nn.init.zeros_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.offset:
            return super().forward(x)
        return F.layer_norm(x, self.normalized_shape, self.weight + 1.0, self.bias, self.eps)


def norm_module(kind: NormKind, dim: int, eps: float) -> nn.Module:
    """A norm of `kind` over `dim`: RMSNorm or LayerNorm, with the bias and offset the record says."""
    if kind.rms:
        return RMSNorm(dim, eps, offset=kind.offset, bias=kind.bias, float_weight=kind.float_weight)
    return LayerNorm(dim, eps, offset=kind.offset, bias=kind.bias)


def make_norm(spec: TextSpec, dim: int, step: str = "", text: str | None = None) -> nn.Module:
    """The spec's kind of norm over `dim`, with its step note (default: the kind's label)."""
    return note(norm_module(spec.norm, dim, spec.rms_norm_eps), step, spec.norm.label if text is None else text)


# --------------------------------------------------------------------------- RoPE


def rope_params(spec: TextSpec) -> dict[str, Any]:
    """The spec's RoPE settings as one dict with `rope_type`, `rope_theta` and the scaling fields."""
    params = dict(spec.rope_scaling or {})
    params.setdefault("rope_type", params.pop("type", "default"))
    if params["rope_type"] == "mrope":  # Qwen2-VL: default frequencies, split over 3 position axes
        params["rope_type"] = "default"
    if params["rope_type"] == "dynamic" and params.get("alpha"):  # Hunyuan: a fixed NTK alpha, static frequencies
        params["rope_type"] = "ntk_alpha"
    params.setdefault("rope_theta", spec.rope_theta)
    return params


def rotary_dim(spec: TextSpec) -> int:
    """How many of each head's dimensions RoPE rotates (all of them unless partial_rotary_factor < 1;
    latent attention rotates only its separate RoPE part, qk_rope_head_dim)."""
    if spec.mla is not None:
        return spec.mla.qk_rope_head_dim
    return int(spec.head_dim * spec.partial_rotary_factor)


def inv_frequencies(spec: TextSpec, seq_len: int | None = None) -> tuple[torch.Tensor, float]:
    """theta_i of Appendix A with the spec's rope scaling, as transformers computes them.

    Returns (inv_freq of shape (d_h/2,), attention factor for cos/sin). `seq_len` only matters for
    "dynamic" (NTK) scaling, which raises the base once the sequence outgrows max_position_embeddings.
    """
    p = rope_params(spec)
    kind, base, dim = p["rope_type"], float(p["rope_theta"]), rotary_dim(spec)
    max_pos = spec.max_position_embeddings
    exponents = torch.arange(0, dim, 2, dtype=torch.int64, device="cpu").float() / dim  # (d_h/2,)
    if kind == "default":
        return 1.0 / base**exponents, 1.0
    if kind == "linear":
        return 1.0 / base**exponents / p["factor"], 1.0
    if kind == "dynamic":
        factor = p["factor"]
        n = max(seq_len or max_pos, max_pos)
        base = base * ((factor * n / max_pos) - (factor - 1)) ** (dim / (dim - 2))
        return 1.0 / base**exponents, 1.0
    if kind == "ntk_alpha":  # Hunyuan (transformers compute_ntk_alpha_rope_parameters): base * alpha^(d/(d-2))
        return 1.0 / (base * float(p["alpha"]) ** (dim / (dim - 2)))**exponents, 1.0
    if kind == "llama3":
        return _llama3(1.0 / base**exponents, p), 1.0
    if kind == "yarn":
        return _yarn(base, dim, exponents, p, max_pos)
    if kind == "proportional":  # Gemma 4's global layers: the first factor * d_h / 2 angles turn, the rest stay
        angles = int(p.get("partial_rotary_factor", 1.0) * dim // 2)
        turning = 1.0 / base ** (torch.arange(0, 2 * angles, 2, dtype=torch.int64).float() / dim)  # (angles,)
        return torch.cat((turning, torch.zeros(dim // 2 - angles))) / p.get("factor", 1.0), 1.0  # (d_h/2,)
    raise InspectError(f"rope_scaling type {kind!r} is not supported "
                       "(supported: default, linear, dynamic, yarn, llama3, proportional)")


def _llama3(inv_freq: torch.Tensor, p: Mapping[str, Any]) -> torch.Tensor:
    """Llama 3.1: divide low frequencies by `factor`, keep high ones, blend those in between."""
    factor, low, high = p["factor"], p["low_freq_factor"], p["high_freq_factor"]
    old_len = p["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old_len / high) * ~(wavelen > old_len / low)
    return torch.where(medium, blended, scaled)


def _yarn(base: float, dim: int, exponents: torch.Tensor, p: Mapping[str, Any], max_pos: int):
    """YaRN: interpolate low frequencies, extrapolate high ones, ramp between; scale cos/sin."""
    old_len = p.get("original_max_position_embeddings") or max_pos
    factor = p.get("factor") or max_pos / old_len

    def mscale(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    attention = p.get("attention_factor")
    if attention is None:
        m, m_all = p.get("mscale"), p.get("mscale_all_dim")
        attention = mscale(factor, m) / mscale(factor, m_all) if m and m_all else mscale(factor)

    def correction_dim(rotations: float) -> float:
        return dim * math.log(old_len / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(p.get("beta_fast") or 32), correction_dim(p.get("beta_slow") or 1)
    if p.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / ((high + 0.001 if low == high else high) - low)).clamp(0, 1)
    extrapolate = 1 - ramp  # (d_h/2,) 1 = keep the original frequency
    pos_freqs = base**exponents
    inv_freq = (1.0 / (factor * pos_freqs)) * (1 - extrapolate) + (1.0 / pos_freqs) * extrapolate
    return inv_freq, float(attention)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for positions: (n,) -> two (1, n, d_h) tensors, or (b, n) -> (b, n, d_h).

    M-RoPE (Qwen2-VL, `mrope_section` in the rope settings): positions (3, b, n) hold temporal,
    height and width ids; frequency i/2-pair j takes its angle from axis (section of j) % 3.
    With `spec.rope_interleaved` the angles repeat pairwise (theta_0, theta_0, theta_1, ...), the
    layout of `apply_rope(..., interleaved=True)`.
    """

    def __init__(self, spec: TextSpec) -> None:
        super().__init__()
        self.spec = spec
        self.dynamic = rope_params(spec)["rope_type"] == "dynamic"
        self.mrope_section = tuple(rope_params(spec).get("mrope_section") or ())
        self.interleaved = spec.rope_interleaved
        inv_freq, self.attention_factor = inv_frequencies(spec)
        self.register_buffer("inv_freq", inv_freq, persistent=False)  # (d_h/2,) always on CPU first

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = self.inv_freq
        if self.dynamic and positions.device.type != "meta":
            seq_len = int(positions.max()) + 1
            if seq_len > self.spec.max_position_embeddings:
                inv_freq = inv_frequencies(self.spec, seq_len)[0]
        if positions.dim() == 3:  # M-RoPE: (3, b, n)
            freqs = positions[..., None].float() * inv_freq.to(positions.device)  # (3, b, n, d_h/2)
            parts = freqs.split(list(self.mrope_section), dim=-1)  # sections of (3, b, n, s_k)
            freqs = torch.cat([part[k % 3] for k, part in enumerate(parts)], dim=-1)  # (b, n, d_h/2)
        else:
            pos = positions if positions.dim() == 2 else positions[None]  # (b or 1, n)
            freqs = pos[..., None].float() * inv_freq.to(pos.device)  # (b, n, d_h/2)
        if self.interleaved:
            angles = freqs.repeat_interleave(2, dim=-1)  # (b, n, d_h): theta_i for the pair (2i, 2i+1)
        else:
            angles = torch.cat((freqs, freqs), dim=-1)  # (b, n, d_h): theta_i repeated for the rotate-half pairs
        return (angles.cos() * self.attention_factor).to(dtype), (angles.sin() * self.attention_factor).to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1): pairs element i with element i + d_h/2 (Appendix A)."""
    x1, x2 = x.chunk(2, dim=-1)  # (..., d_h/2) each
    return torch.cat((-x2, x1), dim=-1)


def rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...): the interleaved-pair form of rotate_half."""
    return torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, interleaved: bool = False) -> torch.Tensor:
    """x: (b, heads, n, d_h); cos/sin: (b or 1, n, d_rot), broadcast over heads. With partial
    rotary (d_rot < d_h) only the first d_rot dimensions rotate; the rest pass through.
    `interleaved`: dimensions (2i, 2i+1) form a pair (GLM-4, Cohere 2, Llama 4, DeepSeek-V3),
    not (i, i + d_rot/2); cos/sin then come from a RotaryEmbedding built with rope_interleaved."""
    cos, sin = cos[:, None], sin[:, None]  # (b, 1, n, d_rot)
    d_rot = cos.shape[-1]
    turn = rotate_pairs if interleaved else rotate_half
    if d_rot == x.shape[-1]:
        return x * cos + turn(x) * sin
    rot, rest = x[..., :d_rot], x[..., d_rot:]  # (b, heads, n, d_rot), (b, heads, n, d_h - d_rot)
    return torch.cat((rot * cos + turn(rot) * sin, rest), dim=-1)


# --------------------------------------------------------------------------- cache and mask


class KVCache:
    """Per layer K and V after RoPE, (b, n_kv, t, d_h), grown by each forward (section 1.2.5.1).

    `crop(t)` keeps the first t positions (a chat turn that reuses a prefix of the cache);
    `reorder(rows)` picks batch rows (beam search: each kept beam continues from its parent's cache).
    """

    def __init__(self, num_layers: int) -> None:
        self.k: list[torch.Tensor | None] = [None] * num_layers
        self.v: list[torch.Tensor | None] = [None] * num_layers
        # Linear-attention layers (Gated DeltaNet) keep a fixed state instead: the convolution's last
        # inputs (b, conv_dim, kernel) and the recurrent state (b, h_v, d_k, d_v), and the tokens seen.
        self.conv: list[torch.Tensor | None] = [None] * num_layers
        self.state: list[torch.Tensor | None] = [None] * num_layers
        self.seen = 0
        self.index_k: list[torch.Tensor | None] = [None] * num_layers  # DeepSeek-V3.2's indexer keys (b, t, d_I)

    @property
    def length(self) -> int:
        """Tokens already cached: the position of the next token."""
        return next((k.shape[2] for k in self.k if k is not None), self.seen)

    def update_state(self, layer: int, conv: torch.Tensor, state: torch.Tensor | None, seen: int) -> None:
        """A linear-attention layer's state after `seen` tokens in all."""
        self.conv[layer], self.state[layer], self.seen = conv, state, seen

    def update_index(self, layer: int, k: torch.Tensor) -> torch.Tensor:
        """Append a lightning indexer's keys (b, n, d_I): (b, t+n, d_I)."""
        if self.index_k[layer] is not None:
            k = torch.cat((self.index_k[layer], k), dim=1)
        self.index_k[layer] = k
        return k

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k[layer] is not None:
            k = torch.cat((self.k[layer], k), dim=2)  # (b, n_kv, t+n, d_h)
            v = torch.cat((self.v[layer], v), dim=2)  # (b, n_kv, t+n, d_h)
        self.k[layer], self.v[layer] = k, v
        return k, v

    def crop(self, length: int) -> None:
        """Forget every position from `length` on."""
        if not 0 <= length <= self.length:
            raise InspectError(f"KV cache: cannot crop {self.length} positions to {length}")
        if length == 0:  # an empty cache: linear-attention states start again from zero
            self.conv, self.state, self.seen = [None] * len(self.conv), [None] * len(self.state), 0
        elif length != self.length and any(c is not None for c in self.conv):
            raise InspectError(f"KV cache: a linear-attention state holds all {self.length} positions at once; "
                               f"it cannot be cropped to {length}")
        for i, (k, v) in enumerate(zip(self.k, self.v)):
            if k is not None:
                self.k[i], self.v[i] = (k[:, :, :length], v[:, :, :length]) if length else (None, None)
        self.index_k = [k[:, :length] if k is not None and length else None for k in self.index_k]

    def reorder(self, rows: torch.Tensor) -> None:
        """Batch row r becomes old row rows[r] (rows may repeat: a beam with two children)."""
        for i, (k, v) in enumerate(zip(self.k, self.v)):
            if k is not None:
                index = rows.to(k.device)
                self.k[i], self.v[i] = k.index_select(0, index), v.index_select(0, index)  # (b', n_kv, t, d_h)
        self.index_k = [k.index_select(0, rows.to(k.device)) if k is not None else None for k in self.index_k]
        for i, (conv, state) in enumerate(zip(self.conv, self.state)):
            if conv is not None:
                index = rows.to(conv.device)
                self.conv[i] = conv.index_select(0, index)
                self.state[i] = state.index_select(0, index) if state is not None else None  # LFM2: conv only


def causal_mask(start: int, n: int, window: int | None, dtype: torch.dtype, device: Any,
                chunk: int | None = None, padding: torch.Tensor | None = None) -> torch.Tensor:
    """M of section 1.2.5.2 for queries at positions start..start+n-1 over keys 0..start+n-1.

    0 where key j <= query i (and, with a sliding window, j > i - window; with Llama 4's chunks,
    j in the same chunk as i), else the most negative finite number of `dtype`. Shape
    (1, 1, n, start+n), broadcast over batch and heads. With `padding` (b, start+n), 1 for a real
    token and 0 for a pad (Step 1's left padding), pad keys are masked too and the shape is
    (b, 1, n, start+n). Windows and chunks count slots, as transformers does, so a left-padded row
    sees the same keys as its unpadded self only while the window is longer than the sequence.
    """
    i = torch.arange(start, start + n, device=device)[:, None]  # (n, 1) query positions
    j = torch.arange(start + n, device=device)[None, :]  # (1, start+n) key positions
    allowed = j <= i
    if window is not None:
        allowed = allowed & (j > i - window)
    if chunk is not None:
        allowed = allowed & (j // chunk == i // chunk)
    allowed = allowed[None, None]  # (1, 1, n, start+n)
    if padding is not None:
        if padding.shape[-1] != start + n:
            raise InspectError(f"padding mask covers {padding.shape[-1]} positions, expected {start + n}")
        allowed = allowed & padding.to(device=device, dtype=torch.bool)[:, None, None, :]  # (b, 1, n, start+n)
    return torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(~allowed, torch.finfo(dtype).min)
