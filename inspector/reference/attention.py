"""Attention parts of the reference decoder (Step 5 of *Implementations of Large Language Models*).

`Attention` covers every q/k/v layout the families use: separate projections, one stacked qkv
matrix (Phi-3, GPT-2's Conv1D), InternLM2's grouped wqkv, GPT-NeoX's per-head interleaved
query_key_value; q/k norms over each head or over all heads; partial RoPE, sliding windows, a
RoPE base of their own for sliding layers, layers without RoPE; Gemma 2's soft-capped scores and
query_pre_attn_scalar. `attention_for(spec, layer)` picks the part by `spec.attention`.
"""

from __future__ import annotations

import torch
from torch import nn

from inspector.errors import InspectError
from inspector.reference.layers import KVCache, Tap, apply_rope, make_norm, note
from inspector.spec.text import TextSpec

# Inventory roles of the attention part (their parameters live under `layers.{i}.attn.`).
ATTENTION_ROLES = {"q", "k", "v", "qkv", "o", "q_norm", "k_norm"}


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


class Attention(nn.Module):
    """Q/K/V projections, optional q/k norm, RoPE, GQA, masked softmax attention, W_o."""

    def __init__(self, spec: TextSpec, layer: int) -> None:
        super().__init__()
        self.layer, self.n_h, self.n_kv, self.d_h = layer, spec.num_heads, spec.num_kv_heads, spec.head_dim
        self.groups, self.layout = spec.kv_groups, spec.attention
        self.scale = (spec.query_pre_attn_scalar**-0.5 if spec.query_pre_attn_scalar
                      else spec.multipliers[1] or spec.head_dim**-0.5)
        self.softcap, self.window = spec.attn_softcap, spec.window(layer)
        self.rope_key = "local" if spec.rope_local_theta is not None and self.window else ""
        self.use_rope = not spec.learned_positions and layer not in spec.no_rope_layers
        d, bias, qd, kvd = spec.hidden_size, spec.qkv_bias, spec.q_dim, spec.kv_dim
        if spec.fused_qkv:
            self.qkv = linear(spec, d, qd + 2 * kvd, bias, "Step 5", "fused Q/K/V projection")
        else:
            self.q = linear(spec, d, qd, bias, "Step 5", "Q = x W_Q (+ bias)")
            self.k = linear(spec, d, kvd, bias, "Step 5", "K = x W_K (+ bias)")
            self.v = linear(spec, d, kvd, bias, "Step 5", "V = x W_V (+ bias)")
        self.qk_norm = spec.qk_norm_kind
        if self.qk_norm:
            full = self.qk_norm == "full"
            where = "over all heads (n_h d_h)" if full else "over d_h"
            self.q_norm = make_norm(spec, qd if full else self.d_h, "Step 5", f"q norm {where} (before RoPE)")
            self.k_norm = make_norm(spec, kvd if full else self.d_h, "Step 5", f"k norm {where} (before RoPE)")
        self.o = linear(spec, spec.attn_out_dim, d, spec.o_bias, "Step 5", "heads concatenated to (b, n, d), then W_o")
        self._taps(spec)
        note(self, "Step 5", "self-attention output")

    def _taps(self, spec: TextSpec) -> None:
        self.q_heads = Tap("Step 5", "Q reshaped and transposed to (b, n_h, n, d_h)")
        self.k_heads = Tap("Step 5", "K reshaped and transposed to (b, n_kv, n, d_h)")
        self.v_heads = Tap("Step 5", "V reshaped and transposed to (b, n_kv, n, d_h)")
        partial = " (first {} of d_h)".format(int(spec.head_dim * spec.partial_rotary_factor)) \
            if spec.partial_rotary_factor < 1 else ""
        self.q_rope = Tap("Step 5", f"RoPE applied to Q (rotate-half pairs){partial}")
        self.k_rope = Tap("Step 5", f"RoPE applied to K{partial}")
        self.k_cache = Tap("1.2.5.1", "K cache after appending: (b, n_kv, t+n, d_h)")
        self.v_cache = Tap("1.2.5.1", "V cache after appending: (b, n_kv, t+n, d_h)")
        self.k_repeat = Tap("Step 5", "GQA: K repeated to n_h heads")
        self.v_repeat = Tap("Step 5", "GQA: V repeated to n_h heads")
        extra = f", tanh soft-capped at {self.softcap:g}" if self.softcap else ""
        window = f", sliding window {self.window}" if self.window else ""
        self.scores = Tap("1.2.5.2", f"Q K^T / sqrt(d_h) + causal mask{window}{extra}")
        self.probs = Tap("Step 5", "attention weights: softmax over keys")
        self.heads = Tap("Step 5", "weighted sum of V, per head")

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (b, n, d) -> q (b, n, n_h, d_h), k and v (b, n, n_kv, d_h)."""
        b, n, _ = x.shape
        h, kv, dh = self.n_h, self.n_kv, self.d_h
        if not hasattr(self, "qkv"):
            q, k, v = self.q(x), self.k(x), self.v(x)  # (b, n, n_h d_h), (b, n, n_kv d_h) x2
        elif self.layout == "qkv_grouped":  # InternLM2 wqkv: per kv head [q x groups, k, v]
            qkv = self.qkv(x).view(b, n, kv, self.groups + 2, dh)  # (b, n, n_kv, groups+2, d_h)
            q = qkv[..., : self.groups, :].reshape(b, n, h * dh)  # (b, n, n_h d_h)
            k, v = qkv[..., -2, :].reshape(b, n, kv * dh), qkv[..., -1, :].reshape(b, n, kv * dh)
        elif self.layout == "qkv_per_head":  # GPT-NeoX: per head [q, k, v]
            qkv = self.qkv(x).view(b, n, h, 3, dh)  # (b, n, n_h, 3, d_h)
            q, k, v = (qkv[..., j, :].reshape(b, n, h * dh) for j in range(3))  # (b, n, n_h d_h) each
        else:  # stacked [q; k; v]
            q, k, v = self.qkv(x).split([h * dh, kv * dh, kv * dh], dim=-1)
        if self.qk_norm == "full":  # OLMo 2: one norm over all heads
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.view(b, n, h, dh), k.view(b, n, kv, dh), v.view(b, n, kv, dh)  # (b, n, heads, d_h)
        if self.qk_norm == "head":  # Qwen3, Gemma 3: a norm over d_h of each head
            q, k = self.q_norm(q), self.k_norm(k)
        return q, k, v

    def forward(self, x, ropes, mask, cache: KVCache | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.project(x)
        q = self.q_heads(q.transpose(1, 2))  # (b, n_h, n, d_h)
        k = self.k_heads(k.transpose(1, 2))  # (b, n_kv, n, d_h)
        v = self.v_heads(v.transpose(1, 2))  # (b, n_kv, n, d_h)
        if self.use_rope:
            cos, sin = ropes[self.rope_key]
            q, k = self.q_rope(apply_rope(q, cos, sin)), self.k_rope(apply_rope(k, cos, sin))
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # (b, n_kv, t+n, d_h)
            k, v = self.k_cache(k), self.v_cache(v)
        k = self.k_repeat(k.repeat_interleave(self.groups, dim=1))  # (b, n_h, t+n, d_h): kv head h serves q heads h*g..
        v = self.v_repeat(v.repeat_interleave(self.groups, dim=1))  # (b, n_h, t+n, d_h)
        scores = q @ k.transpose(-2, -1) * self.scale  # (b, n_h, n, t+n)
        if self.softcap:
            scores = torch.tanh(scores / self.softcap) * self.softcap
        scores = self.scores(scores + mask)  # (b, n_h, n, t+n)
        probs = self.probs(scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype))  # (b, n_h, n, t+n)
        heads = self.heads(probs @ v)  # (b, n_h, n, d_h)
        return self.o(heads.transpose(1, 2).reshape(b, n, self.n_h * self.d_h))  # (b, n, d)


ATTENTION = {"qkv": Attention, "qkv_fused": Attention, "qkv_grouped": Attention, "qkv_per_head": Attention}


def attention_for(spec: TextSpec, layer: int) -> nn.Module:
    """The attention part of `layer`, by the spec's attention kind."""
    if spec.attention not in ATTENTION or spec.attention_sinks:
        raise InspectError(f"{spec.model_type}: the reference model has no forward pass for "
                           f"{'attention sinks' if spec.attention_sinks else spec.attention + ' attention'} yet")
    return ATTENTION[spec.attention](spec, layer)
