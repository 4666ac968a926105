"""Attention parts of the reference decoder (Step 5 of *Implementations of Large Language Models*).

`Attention` covers every q/k/v layout the families use: separate projections, one stacked qkv
matrix (Phi-3, GPT-2's Conv1D), InternLM2's grouped wqkv, GPT-NeoX's per-head interleaved
query_key_value; q/k norms over each head or over all heads; partial RoPE (rotate-half or
interleaved pairs), sliding windows and Llama 4's chunks, a RoPE base of their own for sliding
layers, layers without RoPE; Gemma 2's soft-capped scores and query_pre_attn_scalar; gpt-oss's
attention sinks (a learned per-head logit that joins each softmax and takes its share of the
probability, then is dropped); Llama 4's weightless q/k L2 norm and the temperature of its NoPE
layers. Soft-capping, window masks and sinks are named steps (Taps) with the shapes they produce.
`attention_for(spec, layer)` picks the part by `spec.attention` (latent attention:
inspector.reference.mla).
"""

from __future__ import annotations

import torch
from torch import nn

from inspector.errors import InspectError
from inspector.reference.deltanet import DELTANET_ROLES, GatedDeltaNet
from inspector.reference.indexer import INDEXER_PATHS
from inspector.reference.kda import KDA_ROLES, KimiDeltaAttention
from inspector.reference.layers import KVCache, Tap, apply_rope, linear, make_norm, note
from inspector.reference.mla import LatentAttention
from inspector.spec.text import TextSpec

# Inventory roles of the attention part (their parameters live under `layers.{i}.attn.`).
ATTENTION_ROLES = {"q", "k", "v", "qkv", "o", "q_norm", "k_norm", "sinks",
                   "q_a", "q_a_norm", "q_b", "kv_a", "kv_a_norm", "kv_b"} | DELTANET_ROLES | set(INDEXER_PATHS) | KDA_ROLES
# Attention roles whose parameters sit in a sub-module (DeepSeek-V3.2's indexer): role -> path under `attn.`
ATTENTION_PATHS = dict(INDEXER_PATHS)


class L2Norm(nn.Module):
    """x / sqrt(mean(x^2) + eps) over the last dim, no weight (Llama 4's q/k norm), in float32."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        return (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)


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
        self.interleaved, self.chunk = spec.rope_interleaved, spec.chunk(layer)
        self.temperature = spec.attn_temperature if not self.use_rope else None
        d, bias, qd, kvd = spec.hidden_size, spec.qkv_bias, spec.q_dim, spec.kv_dim
        if spec.fused_qkv:
            self.qkv = linear(spec, d, qd + 2 * kvd, bias, "Step 5", "fused Q/K/V projection")
        else:
            self.gated = spec.attn_output_gate  # Qwen3-Next: W_Q also yields a gate on the heads' output
            self.q = linear(spec, d, 2 * qd if self.gated else qd, bias, "Step 5",
                            "Q and its output gate, per head [q | gate] = x W_Q" if self.gated else "Q = x W_Q (+ bias)")
            self.k = linear(spec, d, kvd, bias, "Step 5", "K = x W_K (+ bias)")
            self.v = linear(spec, d, kvd, bias, "Step 5", "V = x W_V (+ bias)")
        self.qk_norm = spec.qk_norm_kind  # inspector.spec.norms.QK_NORMS: over each head, or over all heads
        if self.qk_norm is not None:
            per_head, where = self.qk_norm.per_head, self.qk_norm.scope
            self.norm_after_rope = spec.qk_norm_after_rope  # Hunyuan: q/k normalised after RoPE
            when = "after RoPE" if self.norm_after_rope else "before RoPE"
            self.q_norm = make_norm(spec, self.d_h if per_head else qd, "Step 5", f"q norm {where} ({when})")
            self.k_norm = make_norm(spec, self.d_h if per_head else kvd, "Step 5", f"k norm {where} ({when})")
        if spec.qk_l2_norm and self.use_rope:  # Llama 4: after RoPE, RoPE layers only
            self.qk_l2 = note(L2Norm(spec.rms_norm_eps), "Step 5", "q and k L2-normalised per head (no weight)")
        if spec.attention_sinks:
            self.sinks = nn.Parameter(torch.zeros(self.n_h))  # (n_h,) one learned logit per head
        self.o = linear(spec, spec.attn_out_dim, d, spec.o_bias, "Step 5", "heads concatenated to (b, n, d), then W_o")
        self.key_scale = spec.mup.key if spec.mup is not None else 1.0  # Falcon-H1's key_multiplier
        self._taps(spec)
        note(self, "Step 5", "self-attention output")

    def _taps(self, spec: TextSpec) -> None:
        self.q_heads = Tap("Step 5", "Q reshaped and transposed to (b, n_h, n, d_h)")
        self.k_heads = Tap("Step 5", "K reshaped and transposed to (b, n_kv, n, d_h)")
        self.v_heads = Tap("Step 5", "V reshaped and transposed to (b, n_kv, n, d_h)")
        partial = " (first {} of d_h)".format(int(spec.head_dim * spec.partial_rotary_factor)) \
            if spec.partial_rotary_factor < 1 else ""
        pairs = "interleaved pairs (2i, 2i+1)" if spec.rope_interleaved else "rotate-half pairs"
        self.q_rope = Tap("Step 5", f"RoPE applied to Q ({pairs}){partial}")
        self.k_rope = Tap("Step 5", f"RoPE applied to K{partial}")
        self.k_cache = Tap("KV cache", "K cache after appending: (b, n_kv, t+n, d_h)")
        self.v_cache = Tap("KV cache", "V cache after appending: (b, n_kv, t+n, d_h)")
        self.k_repeat = Tap("Step 5", "GQA: K repeated to n_h heads")
        self.v_repeat = Tap("Step 5", "GQA: V repeated to n_h heads")
        extra = f", tanh soft-capped at {self.softcap:g}" if self.softcap else ""
        window = f", sliding window {self.window}" if self.window else ""
        window += f", chunks of {self.chunk}" if self.chunk else ""
        if self.temperature:
            self.q_temperature = Tap("Step 5", "NoPE layer: Q scaled by 1 + attn_scale * log(1 + floor((pos + 1) / "
                                     "floor_scale))")
        if self.softcap:
            self.softcapped = Tap("Mask", f"soft-capping: c tanh(scores / c), c = {self.softcap:g}: (b, n_h, n, t+n)")
        if self.window or self.chunk:
            rule = (f"i - {self.window} < j <= i" if self.window else "") + \
                (f"j // {self.chunk} == i // {self.chunk}, j <= i" if self.chunk else "")
            self.window_mask = Tap("Mask", f"{'sliding-window' if self.window else 'chunked'} causal mask "
                                   f"(1, 1, n, t+n): key j visible from query i when {rule}")
        self.scores = Tap("Mask", f"Q K^T / sqrt(d_h) + causal mask{window}{extra}")
        if hasattr(self, "sinks"):
            self.with_sinks = Tap("Step 5", "attention sinks: each head's learned logit appended as one more "
                                  "key column (b, n_h, n, t+n+1); softmax over it, then the sink column dropped")
        self.probs = Tap("Step 5", "attention weights: softmax over keys"
                         + (" and the sink (rows sum to less than 1)" if hasattr(self, "sinks") else ""))
        self.heads = Tap("Step 5", "weighted sum of V, per head")
        if getattr(self, "gated", False):
            self.gated_out = Tap("Step 5", "heads concatenated, times sigmoid(gate): (b, n, n_h d_h)")

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """x (b, n, d) -> q (b, n, n_h, d_h), k and v (b, n, n_kv, d_h), and a gated attention's output gate
        (b, n, n_h d_h) or None."""
        b, n, _ = x.shape
        h, kv, dh = self.n_h, self.n_kv, self.d_h
        gate = None
        if getattr(self, "gated", False):  # per head [q | gate]: (b, n, n_h, 2 d_h)
            q, gate = self.q(x).view(b, n, h, 2 * dh).chunk(2, dim=-1)  # (b, n, n_h, d_h) each
            q, gate = q.reshape(b, n, h * dh), gate.reshape(b, n, h * dh)  # (b, n, n_h d_h) each
            k, v = self.k(x), self.v(x)  # (b, n, n_kv d_h) x2
        elif not hasattr(self, "qkv"):
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
        if self.key_scale != 1.0:
            k = k * self.key_scale  # (b, n, n_kv d_h)
        if self.qk_norm is not None and not self.qk_norm.per_head:  # OLMo 2: one norm over all heads
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.view(b, n, h, dh), k.view(b, n, kv, dh), v.view(b, n, kv, dh)  # (b, n, heads, d_h)
        if self.qk_norm is not None and self.qk_norm.per_head and not self.norm_after_rope:  # Qwen3, Gemma 3
            q, k = self.q_norm(q), self.k_norm(k)  # a norm over d_h of each head
        return q, k, v, gate

    def forward(self, x, ropes, mask, cache: KVCache | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v, gate = self.project(x)
        q = self.q_heads(q.transpose(1, 2))  # (b, n_h, n, d_h)
        k = self.k_heads(k.transpose(1, 2))  # (b, n_kv, n, d_h)
        v = self.v_heads(v.transpose(1, 2))  # (b, n_kv, n, d_h)
        if self.use_rope:
            cos, sin = ropes[self.rope_key]
            q = self.q_rope(apply_rope(q, cos, sin, self.interleaved))
            k = self.k_rope(apply_rope(k, cos, sin, self.interleaved))
        if self.qk_norm is not None and self.norm_after_rope:  # Hunyuan: per head, after RoPE
            q, k = self.q_norm(q), self.k_norm(k)  # (b, heads, n, d_h)
        if hasattr(self, "qk_l2"):
            q, k = self.qk_l2(q), self.qk_l2(k)
        if self.temperature:
            q = self.q_temperature(q * self._temperature(mask.shape[-1] - n, n, q))  # (b, n_h, n, d_h)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # (b, n_kv, t+n, d_h)
            k, v = self.k_cache(k), self.v_cache(v)
        k = self.k_repeat(k.repeat_interleave(self.groups, dim=1))  # (b, n_h, t+n, d_h): kv head h serves q heads h*g..
        v = self.v_repeat(v.repeat_interleave(self.groups, dim=1))  # (b, n_h, t+n, d_h)
        heads = self.heads(self.attend(q, k, v, mask))  # (b, n_h, n, d_h)
        out = heads.transpose(1, 2).reshape(b, n, self.n_h * self.d_h)  # (b, n, n_h d_h)
        if gate is not None:
            out = self.gated_out(out * torch.sigmoid(gate))  # (b, n, n_h d_h)
        return self.o(out)  # (b, n, d)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T * scale (soft-capped) + mask (+ sink column)) v: (b, n_h, n, d_v)."""
        scores = q @ k.transpose(-2, -1) * self.scale  # (b, n_h, n, t+n)
        if self.softcap:
            scores = self.softcapped(torch.tanh(scores / self.softcap) * self.softcap)
        if hasattr(self, "window_mask"):
            mask = self.window_mask(mask)  # (1, 1, n, t+n)
        scores = self.scores(scores + mask)  # (b, n_h, n, t+n)
        if hasattr(self, "sinks"):
            b, h, n, _ = scores.shape
            sink = self.sinks.to(scores.dtype).view(1, h, 1, 1).expand(b, h, n, 1)  # (b, n_h, n, 1)
            scores = self.with_sinks(torch.cat((scores, sink), dim=-1))  # (b, n_h, n, t+n+1)
        probs = scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype)  # (b, n_h, n, t+n[+1])
        if hasattr(self, "sinks"):
            probs = probs[..., :-1]  # (b, n_h, n, t+n): the sink's share is dropped
        return self.probs(probs) @ v  # (b, n_h, n, d_v)

    def _temperature(self, start: int, n: int, like: torch.Tensor) -> torch.Tensor:
        """Llama 4's per-position query scale on NoPE layers: (1, 1, n, 1)."""
        attn_scale, floor_scale = self.temperature
        pos = torch.arange(start, start + n, device=like.device, dtype=torch.float32)  # (n,)
        scale = torch.log1p(torch.floor((pos + 1.0) / floor_scale)) * attn_scale + 1.0
        return scale.view(1, 1, n, 1).to(like.dtype)


class SharedKVAttention(Attention):
    """Gemma 3n / 4 attention (transformers Gemma3nTextAttention, Gemma4TextAttention): the layer's own head_dim
    and kv heads, per-head q/k norms, a weightless RMS norm of V, scores unscaled (scaling 1.0). A KV-shared
    layer has no K/V parts: it attends to the keys and values of its source layer (the last earlier layer of
    its type), left by that layer in `share`, a dict the model hands every layer; with attention_k_eq_v
    (Gemma 4's global layers) the raw K projection is also V."""

    def __init__(self, spec: TextSpec, layer: int) -> None:
        p = spec.per_layer
        super().__init__(spec.at_layer(layer), layer)
        self.scale, self.source, self.share = 1.0, p.kv_source[layer], {}
        if self.source != layer:
            del self.k, self.v, self.k_norm
        elif p.k_eq_v[layer]:
            del self.v
        self.v_norm = note(L2Norm(spec.rms_norm_eps), "Step 5", "V normalised per head (RMS, no weight)")
        window = f", sliding window {self.window}" if self.window else ""
        self.scores = Tap("Mask", f"Q K^T, not scaled (the q/k norms set the scale) + causal mask{window}")
        if self.source != layer:
            self.shared_kv = Tap("KV cache", f"K and V of layer {self.source} (this layer computes and caches none)")

    def project(self, x: torch.Tensor):
        """q (b, n, n_h, d_h) normed; k (normed) and v (b, n, n_kv, d_h), or None in a KV-shared layer."""
        if hasattr(self, "v"):
            return super().project(x)
        b, n, _ = x.shape
        q = self.q_norm(self.q(x).view(b, n, self.n_h, self.d_h))  # (b, n, n_h, d_h)
        if not hasattr(self, "k"):
            return q, None, None, None
        k = self.k(x).view(b, n, self.n_kv, self.d_h)  # (b, n, n_kv, d_h): also V (attention_k_eq_v)
        return q, self.k_norm(k), k, None

    def forward(self, x, ropes, mask, cache: KVCache | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v, _ = self.project(x)
        cos, sin = ropes[self.rope_key]
        q = self.q_rope(apply_rope(self.q_heads(q.transpose(1, 2)), cos, sin))  # (b, n_h, n, d_h)
        if k is None:
            k, v = self.share[self.source]  # (b, n_kv, t+n, d_h) each, as the source layer cached them
            k, v = self.shared_kv(k), self.shared_kv(v)
        else:
            k = self.k_rope(apply_rope(self.k_heads(k.transpose(1, 2)), cos, sin))  # (b, n_kv, n, d_h)
            v = self.v_heads(self.v_norm(v).transpose(1, 2))  # (b, n_kv, n, d_h)
            if cache is not None:
                k, v = cache.update(self.layer, k, v)  # (b, n_kv, t+n, d_h)
                k, v = self.k_cache(k), self.v_cache(v)
            self.share[self.layer] = (k, v)
        k = self.k_repeat(k.repeat_interleave(self.groups, dim=1))  # (b, n_h, t+n, d_h)
        v = self.v_repeat(v.repeat_interleave(self.groups, dim=1))  # (b, n_h, t+n, d_h)
        heads = self.heads(self.attend(q, k, v, mask))  # (b, n_h, n, d_h)
        return self.o(heads.transpose(1, 2).reshape(b, n, self.n_h * self.d_h))  # (b, n, d)


ATTENTION = {"qkv": Attention, "qkv_fused": Attention, "qkv_grouped": Attention, "qkv_per_head": Attention,
             "mla": LatentAttention}


def attention_for(spec: TextSpec, layer: int) -> nn.Module:
    """The attention part of `layer`, by the spec's attention kind."""
    if spec.is_linear_layer(layer) and spec.linear.kind == "kda":
        return KimiDeltaAttention(spec, layer)
    if spec.is_linear_layer(layer) and spec.linear.kind.startswith("gdn"):
        return GatedDeltaNet(spec, layer)
    if spec.per_layer is not None:
        return SharedKVAttention(spec, layer)
    if spec.attention not in ATTENTION:
        raise InspectError(f"{spec.model_type}: the reference model has no forward pass for "
                           f"{spec.attention} attention yet")
    return ATTENTION[spec.attention](spec, layer)
