"""The parts every reference vision encoder is built from: patch embedding, encoder block, 2D rotary embeddings.

*Implementations of Large Language Models* section 2.1, Steps 6-10: the patch embedding, the encoder block
(norm, attention, residual, norm, MLP, residual, with optional layer scale or tanh gates), and the 2D rotary
embeddings of Qwen2-VL, Pixtral and Llama 4. Which part a tower gets is read from EncoderSpec fields, never
from a kind's name.

Values worth showing pass through a `Tap` (an identity a tracer hooks by name, e.g.
`blocks.0.attn.probs`); every module carries its step note (inspector.reference.layers.note).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inspector.errors import InspectError
from inspector.reference.layers import RMSNorm, Tap, note, rotate_half
from inspector.spec.vision import VisionSpec

VISION_ROPE_THETA = 10000.0  # the ViTs' rotary base (transformers' default; not in most config.json files)


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(1.702 x), the QuickGELU of Step 9."""
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"quick_gelu": quick_gelu, "gelu": F.gelu, "silu": F.silu,
               "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}


def activation(name: str):
    if name not in ACTIVATIONS:
        raise InspectError(f"vision hidden_act {name!r} is not supported (supported: {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]


def vision_norm(kind: str, dim: int, eps: float) -> nn.Module:
    """layer_norm (with bias), rms_norm, or Gemma's rms_offset ((1 + w), stored as an offset)."""
    if kind == "layer_norm":
        return note(nn.LayerNorm(dim, eps=eps), "", "LayerNorm")
    return note(RMSNorm(dim, eps, offset=kind == "rms_offset"), "", "RMSNorm" + (" (1 + w)" if kind == "rms_offset" else ""))


# --------------------------------------------------------------------------- rotary embeddings


def rope_2d(v: VisionSpec, positions: torch.Tensor, dtype: torch.dtype, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (1, n, d_h) on `device` for (row, column) positions (n, 2) on the CPU, rotate-half layout.

    Qwen2-VL: theta_i = 10000^(-i/(d_h/2)), i = 0, 2, ...; row angles fill the first quarter of the
    pairs, column angles the second. Pixtral: theta_i = 10000^(-i/d_h); rows take the even
    frequencies, columns the odd ones."""
    d_h = v.encoder.head_dim
    if v.encoder.embed.rope == "pixtral":
        inv = 1.0 / VISION_ROPE_THETA ** (torch.arange(0, d_h, 2, dtype=torch.float32) / d_h)  # (d_h/2,)
        angles = torch.cat([positions[:, :1].float() * inv[0::2], positions[:, 1:].float() * inv[1::2]], dim=-1)
    else:
        half = d_h // 2
        inv = 1.0 / VISION_ROPE_THETA ** (torch.arange(0, half, 2, dtype=torch.float32) / half)  # (d_h/4,)
        angles = (positions[..., None].float() * inv).flatten(1)  # (n, d_h/2): rows, then columns
    angles = torch.cat((angles, angles), dim=-1)[None].to(device)  # (1, n, d_h)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def llama4_rope(v: VisionSpec) -> torch.Tensor:
    """Llama 4's vision RoPE as complex rotations (n + 1, d_h/2): patch (x + 1, y + 1) frequencies on
    interleaved pairs; the class token (last) does not rotate."""
    side = v.encoder.embed.image_size // v.encoder.embed.patch_size
    idx = torch.arange(side * side)
    x, y = torch.cat([idx % side, torch.tensor([-1])]), torch.cat([idx // side, torch.tensor([-1])])
    half = v.encoder.head_dim // 2
    freq = 1.0 / VISION_ROPE_THETA ** (torch.arange(0, half, 2)[: half // 2].float() / half)  # (d_h/4,)
    fx = ((x + 1)[:, None] * freq).repeat_interleave(2, dim=-1)  # (n+1, d_h/2)
    fy = ((y + 1)[:, None] * freq).repeat_interleave(2, dim=-1)
    freqs = torch.cat([fx, fy], dim=-1)[..., ::2]  # (n+1, d_h/2)
    freqs = freqs.masked_fill((x < 0)[:, None], 0.0)
    return torch.polar(torch.ones_like(freqs), freqs)  # (n+1, d_h/2) complex


def apply_vision_rope(x: torch.Tensor, rope: Any) -> torch.Tensor:
    """x (b, n_h, n, d_h); rope is (cos, sin) (1, n, d_h) or complex rotations (n, d_h/2)."""
    if isinstance(rope, torch.Tensor):  # Llama 4: rotate adjacent pairs as complex numbers
        xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # (b, n_h, n, d_h/2)
        return torch.view_as_real(xc * rope.to(xc.device)).flatten(-2).to(x.dtype)
    cos, sin = rope[0][:, None], rope[1][:, None]  # (1, 1, n, d_h)
    return (x.float() * cos.float() + rotate_half(x.float()) * sin.float()).to(x.dtype)


# --------------------------------------------------------------------------- block parts


class VisionAttention(nn.Module):
    """Step 8: q, k, v (one fused projection or three), optional q/k norm over the width, 2D RoPE,
    softmax over every patch (no causal mask; `mask` keeps images or windows apart), W_o."""

    def __init__(self, v: VisionSpec) -> None:
        super().__init__()
        enc = v.encoder
        d = enc.hidden_size
        self.n_h, self.d_h, self.scale = enc.num_heads, enc.head_dim, enc.head_dim**-0.5
        inner = self.n_h * self.d_h
        if enc.attention == "fused":
            self.qkv = note(nn.Linear(d, 3 * inner, bias=enc.qkv_bias), "Step 8", "fused q, k, v projection")
        else:
            for role in ("q", "k", "v"):
                setattr(self, role, note(nn.Linear(d, inner, bias=enc.qkv_bias), "Step 8", f"{role} projection"))
        self.q_norm = RMSNorm(inner, enc.norm_eps) if enc.qk_norm else None  # InternViT: RMSNorm, weight only
        self.k_norm = RMSNorm(inner, enc.norm_eps) if enc.qk_norm else None
        self.proj = note(nn.Linear(inner, d, bias=enc.o_bias), "Step 8", "heads concatenated, output projection W_o")
        self.q_rope = Tap("Step 7", "2D RoPE applied to q")
        self.k_rope = Tap("Step 7", "2D RoPE applied to k")
        self.probs = Tap("Step 8", "attention weights: softmax over the patches")
        self.heads = Tap("Step 8", "weighted sum of v per head")

    def forward(self, x, rope=None, mask=None) -> torch.Tensor:
        b, n, _ = x.shape
        if hasattr(self, "qkv"):
            q, k, v = self.qkv(x).view(b, n, 3, -1).unbind(2)  # (b, n, n_h*d_h) each
        else:
            q, k, v = self.q(x), self.k(x), self.v(x)  # (b, n, n_h*d_h) each
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.view(b, n, self.n_h, self.d_h).transpose(1, 2)  # (b, n_h, n, d_h)
        k = k.view(b, n, self.n_h, self.d_h).transpose(1, 2)  # (b, n_h, n, d_h)
        v = v.view(b, n, self.n_h, self.d_h).transpose(1, 2)  # (b, n_h, n, d_h)
        if rope is not None:
            q, k = self.q_rope(apply_vision_rope(q, rope)), self.k_rope(apply_vision_rope(k, rope))
        scores = q @ k.transpose(-2, -1) * self.scale  # (b, n_h, n, n)
        if mask is not None:
            scores = scores + mask
        probs = self.probs(scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype))  # (b, n_h, n, n)
        heads = self.heads(probs @ v)  # (b, n_h, n, d_h)
        return self.proj(heads.transpose(1, 2).reshape(b, n, self.n_h * self.d_h))  # (b, n, d_img)


class VisionMLP(nn.Module):
    """Step 9: fc2(act(fc1(x))), or the gated down(act(gate(x)) * up(x)) of Qwen2.5-VL and Pixtral."""

    def __init__(self, v: VisionSpec) -> None:
        super().__init__()
        enc = v.encoder
        d, w, bias = enc.hidden_size, enc.intermediate_size, enc.mlp_bias
        self.act = activation(enc.hidden_act)
        if enc.mlp == "gated":
            self.gate = note(nn.Linear(d, w, bias=bias), "Step 9", "gate projection")
            self.up = note(nn.Linear(d, w, bias=bias), "Step 9", "up projection")
            self.down = note(nn.Linear(w, d, bias=bias), "Step 9", "down projection; residual follows")
        else:
            self.fc1 = note(nn.Linear(d, w, bias=bias), "Step 9", f"fc1 to the MLP width, then {enc.hidden_act}")
            self.fc2 = note(nn.Linear(w, d, bias=bias), "Step 9", "fc2 back to d_img; residual follows")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "gate"):
            return self.down(self.act(self.gate(x)) * self.up(x))  # (b, n, d_img)
        return self.fc2(self.act(self.fc1(x)))  # (b, n, d_img)


class VisionBlock(nn.Module):
    """One pre-norm encoder block (Steps 8-10). InternViT scales each branch by ls1 / ls2; Mllama's
    global layers by tanh(gate_attn) / tanh(gate_ffn)."""

    def __init__(self, v: VisionSpec, gated: bool = False) -> None:
        super().__init__()
        enc = v.encoder
        d = enc.hidden_size
        self.norm1, self.attn = vision_norm(enc.norm_type, d, enc.norm_eps), VisionAttention(v)
        self.norm2, self.mlp = vision_norm(enc.norm_type, d, enc.norm_eps), VisionMLP(v)
        self.ls1 = nn.Parameter(torch.ones(d)) if enc.layer_scale else None
        self.ls2 = nn.Parameter(torch.ones(d)) if enc.layer_scale else None
        self.gate_attn = nn.Parameter(torch.zeros(1)) if gated else None
        self.gate_ffn = nn.Parameter(torch.zeros(1)) if gated else None
        self.after_attn = Tap("Step 10", "residual: x + attention")
        note(self, "Step 10", "encoder block: norm, attention, residual; norm, MLP, residual")

    @staticmethod
    def _scaled(branch: torch.Tensor, scale: nn.Parameter | None, gate: nn.Parameter | None) -> torch.Tensor:
        if scale is not None:
            branch = branch * scale
        if gate is not None:
            branch = branch * gate.tanh()
        return branch

    def forward(self, x, rope=None, mask=None) -> torch.Tensor:
        a = self._scaled(self.attn(self.norm1(x), rope, mask), self.ls1, self.gate_attn)  # (b, n, d_img)
        x = self.after_attn(x + a)  # (b, n, d_img)
        return x + self._scaled(self.mlp(self.norm2(x)), self.ls2, self.gate_ffn)  # (b, n, d_img)


def block_mask(sizes: list[int], dtype: torch.dtype, device: Any) -> torch.Tensor | None:
    """Additive (1, 1, n, n) mask keeping attention inside consecutive groups of `sizes` patches
    (images, or Qwen2.5-VL's windows); None for one group."""
    if len(sizes) <= 1:
        return None
    owner = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes)).to(device)  # (n,)
    same = owner[:, None] == owner[None, :]  # (n, n)
    mask = torch.zeros(same.shape, dtype=dtype, device=device).masked_fill(~same, torch.finfo(dtype).min)
    return mask[None, None]


def pixel_shuffle(x: torch.Tensor, m: int) -> torch.Tensor:
    """(tiles, H, W, c) -> (tiles, H/m * W/m, m*m*c): each m x m window of patches becomes one token,
    its features concatenated in order of r, then s (InternVL's "v2" shuffle; Idefics3 and Llama 4 use
    the same grouping with their own channel order, see inspector.reference.projectors)."""
    n, h, w, c = x.shape
    x = x.view(n, h // m, m, w // m, m, c)  # (tiles, H/m, r, W/m, s, c)
    x = x.permute(0, 1, 3, 2, 4, 5)  # (tiles, H/m, W/m, r, s, c)
    return x.reshape(n, (h // m) * (w // m), m * m * c)  # (tiles, H/m * W/m, m^2 c)
