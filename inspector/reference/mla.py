"""Multi-head latent attention (DeepSeek-V2/V3): K and V drawn from one small latent per token.

Step 5 of *Implementations of Large Language Models* with a latent KV.

Q goes down to a latent of `q_lora_rank` (normalised) and back up to every head, or is projected
directly when there is no q latent. K and V share one compressed latent c_KV of `kv_lora_rank`
per token, plus one RoPE key of `qk_rope_head_dim` shared by all heads. Each head's query and key
are [a part without position (d_nope) ; a RoPE part (d_rope)].

The cache holds the latent and the RoPE key, kv_lora_rank + qk_rope_head_dim numbers per token and
layer (576 for DeepSeek-V3), not K and V of every head (n_h (d_qk + d_v) = 40,960). We use the
plain form: every step expands the cached latent to per-head K and V with kv_b. The absorbed form
(folding kv_b into the query and the output projection so that attention runs in latent space)
computes the same result with fewer FLOPs per decoded token; the plain form shows the per-head
K and V the document's Step 5 talks about.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from inspector.reference.indexer import LightningIndexer
from inspector.reference.layers import KVCache, RMSNorm, Tap, apply_rope, linear, note, rope_params
from inspector.spec.text import TextSpec

LATENT_NORM_EPS = 1e-6  # transformers' DeepSeek latent norms use their class default, not rms_norm_eps


def latent_scale(spec: TextSpec) -> float:
    """1/sqrt(d_qk), times YaRN's mscale(factor, mscale_all_dim)^2 when the RoPE is scaled."""
    m = spec.mla
    scale = m.qk_head_dim**-0.5
    p = rope_params(spec)
    factor, all_dim = p.get("factor") or 1.0, p.get("mscale_all_dim") or 0.0
    if p["rope_type"] != "default" and all_dim and factor > 1:
        mscale = 0.1 * all_dim * math.log(factor) + 1.0
        scale *= mscale * mscale
    return scale


class LatentAttention(nn.Module):
    """Q through a latent, K/V through one shared latent plus a RoPE key; the cache keeps the latent."""

    def __init__(self, spec: TextSpec, layer: int) -> None:
        super().__init__()
        m, d, h = spec.mla, spec.hidden_size, spec.num_heads
        self.layer, self.n_h, self.m, self.interleaved = layer, h, m, spec.rope_interleaved
        self.use_rope = layer not in spec.no_rope_layers  # Kimi Linear's MLA: no RoPE (its k_rot part unrotated)
        self.scale = latent_scale(spec)
        q_out = h * m.qk_head_dim
        if m.q_lora_rank:
            self.q_a = linear(spec, d, m.q_lora_rank, spec.qkv_bias, "Step 5", "Q down-projection to the q latent "
                              "(b, n, q_lora_rank)")
            self.q_a_norm = note(RMSNorm(m.q_lora_rank, LATENT_NORM_EPS), "Step 5", "RMS norm of the q latent")
            self.q_b = linear(spec, m.q_lora_rank, q_out, False, "Step 5", "Q up-projection to every head: "
                              "(b, n, n_h (d_nope + d_rope))")
        else:
            self.q = linear(spec, d, q_out, False, "Step 5", "Q = x W_Q: (b, n, n_h (d_nope + d_rope))")
        self.kv_a = linear(spec, d, m.kv_lora_rank + m.qk_rope_head_dim, spec.qkv_bias, "Step 5",
                           "KV down-projection: the latent and the shared RoPE key (b, n, kv_lora_rank + d_rope)")
        self.kv_a_norm = note(RMSNorm(m.kv_lora_rank, LATENT_NORM_EPS), "Step 5",
                              "the KV latent c_KV, RMS-normalised: (b, n, kv_lora_rank)")
        self.kv_b = linear(spec, m.kv_lora_rank, h * (m.qk_nope_head_dim + m.v_head_dim), False, "Step 5",
                           "per-head expansion of the latent: K_nope and V of every head (b, 1, t+n, n_h (d_nope + d_v))")
        self.o = linear(spec, h * m.v_head_dim, d, spec.o_bias, "Step 5", "heads concatenated to (b, n, n_h d_v), "
                        "then W_o")
        if spec.indexer is not None:  # DeepSeek-V3.2: a lightning indexer picks the keys each query sees
            self.indexer = LightningIndexer(spec, layer)
            self.sparse_mask = Tap("Mask", "causal mask with the keys the indexer did not keep masked too")
        self._taps(spec)
        note(self, "Step 5", "multi-head latent attention output")

    def _taps(self, spec: TextSpec) -> None:
        m, h = self.m, self.n_h
        per_token, full = m.kv_lora_rank + m.qk_rope_head_dim, h * (m.qk_head_dim + m.v_head_dim)
        self.q_heads = Tap("Step 5", "Q per head (b, n_h, n, d_nope + d_rope)")
        self.q_rope = Tap("Step 5", "RoPE applied to the RoPE part of Q (b, n_h, n, d_rope)")
        self.k_rope = Tap("Step 5", "RoPE applied to the shared RoPE key (b, 1, n, d_rope), one for all heads")
        self.latent_cache = Tap("KV cache", f"cache after appending: the latent (b, 1, t+n, kv_lora_rank); per token "
                                f"and layer it keeps {per_token} numbers (latent + RoPE key), not {full:,} for "
                                "every head's K and V")
        self.rope_cache = Tap("KV cache", "cache after appending: the RoPE key (b, 1, t+n, d_rope)")
        self.k_heads = Tap("Step 5", "K per head = [K_nope ; shared RoPE key]: (b, n_h, t+n, d_nope + d_rope)")
        self.v_heads = Tap("Step 5", "V per head from the latent: (b, n_h, t+n, d_v)")
        self.scores = Tap("Mask", "Q K^T / sqrt(d_nope + d_rope) + causal mask")
        self.probs = Tap("Step 5", "attention weights: softmax over keys")
        self.heads = Tap("Step 5", "weighted sum of V, per head (b, n_h, n, d_v)")

    def forward(self, x, ropes, mask, cache: KVCache | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        m, h = self.m, self.n_h
        q_latent = self.q_a_norm(self.q_a(x)) if hasattr(self, "q_a") else None  # (b, n, q_lora_rank)
        q = self.q_b(q_latent) if q_latent is not None else self.q(x)  # (b, n, n_h d_qk)
        q = self.q_heads(q.view(b, n, h, m.qk_head_dim).transpose(1, 2))  # (b, n_h, n, d_nope + d_rope)
        q_nope, q_rot = q.split([m.qk_nope_head_dim, m.qk_rope_head_dim], dim=-1)
        latent, k_rot = self.kv_a(x).split([m.kv_lora_rank, m.qk_rope_head_dim], dim=-1)  # (b, n, r), (b, n, d_rope)
        latent = self.kv_a_norm(latent)[:, None]  # (b, 1, n, kv_lora_rank)
        k_rot = k_rot[:, None]  # (b, 1, n, d_rope)
        if self.use_rope:
            cos, sin = ropes[""]
            q_rot = self.q_rope(apply_rope(q_rot, cos, sin, self.interleaved))  # (b, n_h, n, d_rope)
            k_rot = self.k_rope(apply_rope(k_rot, cos, sin, self.interleaved))  # (b, 1, n, d_rope)
        if cache is not None:
            latent, k_rot = cache.update(self.layer, latent, k_rot)  # (b, 1, t+n, r), (b, 1, t+n, d_rope)
            latent, k_rot = self.latent_cache(latent), self.rope_cache(k_rot)
        if hasattr(self, "indexer"):  # keys outside a query's top-k get the mask's minimum too
            kept = self.indexer(x, q_latent, ropes, mask, cache)  # (b, 1, n, t+n)
            mask = self.sparse_mask(mask.masked_fill(~kept, torch.finfo(mask.dtype).min))  # (b, 1, n, t+n)
        t = latent.shape[2]
        kv = self.kv_b(latent).view(b, t, h, m.qk_nope_head_dim + m.v_head_dim).transpose(1, 2)  # (b, n_h, t, ..)
        k_nope, v = kv.split([m.qk_nope_head_dim, m.v_head_dim], dim=-1)  # (b, n_h, t, d_nope), (b, n_h, t, d_v)
        k = self.k_heads(torch.cat((k_nope, k_rot.expand(b, h, t, m.qk_rope_head_dim)), dim=-1))  # (b, n_h, t, d_qk)
        v = self.v_heads(v)
        q = torch.cat((q_nope, q_rot), dim=-1)  # (b, n_h, n, d_qk)
        scores = self.scores(q @ k.transpose(-2, -1) * self.scale + mask)  # (b, n_h, n, t)
        probs = self.probs(scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype))  # (b, n_h, n, t)
        heads = self.heads(probs @ v)  # (b, n_h, n, d_v)
        return self.o(heads.transpose(1, 2).reshape(b, n, h * m.v_head_dim))  # (b, n, d)
