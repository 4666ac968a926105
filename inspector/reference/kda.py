"""Kimi Delta Attention (KDA), the linear attention of Kimi Linear: a gated delta rule whose decay is per channel.

Per layer: q, k and v come from their own projections, each through a causal depthwise convolution of
`conv_kernel` taps with SiLU; q and k are L2-normalised per head (h heads of d) and q scaled by d^-1/2. The
forget gate is low-rank, f_b(f_a(x)) + dt_bias, one value per key channel: g = -exp(A_log[head]) softplus(.)
(a log decay <= 0); the update strength is beta = sigmoid(b_proj x) per head. Each head's state S (d x d) then
follows S <- diag(exp(g_t)) S; S <- S + k_t (beta_t (v_t - S^T k_t))^T; o_t = S^T q_t. The heads' outputs go
through an RMS norm over d gated by sigmoid(g_b(g_a(x))), then o_proj. A sequence keeps the three convs' last
inputs and S (float32), whatever its length.

Run as transformers' torch fallback runs it (transformers models/kimi_linear, via glm5_next's
chunk_kimi_delta_attention and recurrent_kimi_delta_attention), so FlopCounterMode counts the same matmuls: a
prefill in the chunked form (chunks of 64: within a chunk, the per-channel decays enter elementwise and a unit
lower-triangular system couples the updates; between chunks, the state carries over), a decode token step by step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inspector.reference.deltanet import CHUNK, causal_conv, l2_normalise, padding_zeroed
from inspector.reference.layers import KVCache, Tap, linear, note
from inspector.spec.text import TextSpec

# Inventory roles of the KDA part (its parameters live under `layers.{i}.attn.`).
KDA_ROLES = {"kda_q", "kda_k", "kda_v", "kda_q_conv", "kda_k_conv", "kda_v_conv", "kda_a_log", "kda_f_a", "kda_f_b",
             "kda_dt_bias", "kda_b", "kda_g_a", "kda_g_b", "kda_norm", "kda_out"}


class SigmoidGatedRMSNorm(nn.Module):
    """RMS norm over d times w, then times sigmoid(gate), all in float32 (transformers' KimiLinearRMSNormGated)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = self.weight.float() * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps))
        return (h * torch.sigmoid(gate.float())).to(x.dtype)


def _decays(g: torch.Tensor, chunk: int) -> torch.Tensor:
    """exp(G_i - G_j) per channel for j <= i within each chunk, 0 above: (b, h, m, C, C, d_k); G the running sum."""
    later = torch.ones(chunk, chunk, dtype=torch.bool, device=g.device).triu(1)[..., None]  # (C, C, 1): j > i
    return (g[..., :, None, :] - g[..., None, :, :]).masked_fill(later, float("-inf")).exp()


def chunked_kda(q, k, v, beta, g, S, chunk: int = CHUNK):
    """The per-channel delta rule over chunks of `chunk` tokens; q (scaled), k (b, n, h, d_k), v (b, n, h, d_v),
    beta (b, n, h), g (b, n, h, d_k) log decays, S (b, h, d_k, d_v), all float32. Zero-padded to whole chunks.
    Returns (b, n, h, d_v) and the final S."""
    b, n, h, d_v = v.shape
    pad = (-n) % chunk
    q, k, v, g = (F.pad(x.transpose(1, 2), (0, 0, 0, pad)) for x in (q, k, v, g))  # (b, h, N, d)
    beta = F.pad(beta.transpose(1, 2), (0, pad))  # (b, h, N)
    m = (n + pad) // chunk
    q, k, v, g = (x.reshape(b, h, m, chunk, x.shape[-1]) for x in (q, k, v, g))  # (b, h, m, C, d)
    beta, g = beta.reshape(b, h, m, chunk, 1), g.cumsum(-2)  # g: log decay so far, per channel
    between = _decays(g, chunk)  # (b, h, m, C, C, d_k)
    kb = k * beta
    system = (kb[..., :, None, :] * k[..., None, :, :] * between).sum(-1)  # (b, h, m, C, C): j's update reaching i
    eye = torch.eye(chunk, dtype=q.dtype, device=q.device)
    solved = torch.linalg.solve_triangular(system, eye, upper=False, unitriangular=True)  # (I + strict lower)^-1
    values, reads = solved @ (v * beta), solved @ (kb * g.exp())  # (b, h, m, C, d_v), (b, h, m, C, d_k)
    scores = (q[..., :, None, :] * k[..., None, :, :] * between).sum(-1)  # (b, h, m, C, C): causal, decayed
    q_in, k_out = q * g.exp(), k * (g[..., -1:, :] - g).exp()
    out = []
    for i in range(m):
        fresh = values[:, :, i] - reads[:, :, i] @ S  # (b, h, C, d_v): what the state does not predict yet
        out.append(q_in[:, :, i] @ S + scores[:, :, i] @ fresh)
        S = S * g[:, :, i, -1, :, None].exp() + k_out[:, :, i].transpose(-1, -2) @ fresh  # rows decay per channel
    return torch.stack(out, dim=2).reshape(b, h, m * chunk, d_v)[:, :, :n].transpose(1, 2), S


def recurrent_kda(q, k, v, beta, g, S):
    """The per-channel delta rule token by token (a decode step), float32; shapes as `chunked_kda`'s."""
    out = []
    for t in range(v.shape[1]):
        S = S * g[:, t, :, :, None].exp()  # (b, h, d_k, d_v): each key channel's row decays
        remembered = (S * k[:, t, :, :, None]).sum(-2)  # (b, h, d_v): S^T k_t
        delta = (v[:, t] - remembered) * beta[:, t, :, None]  # (b, h, d_v)
        S = S + k[:, t, :, :, None] * delta[:, :, None, :]  # + k_t delta^T
        out.append((S * q[:, t, :, :, None]).sum(-2))  # (b, h, d_v): S^T q_t
    return torch.stack(out, dim=1), S


def kimi_conv(qkv: torch.Tensor, weight: torch.Tensor, conv: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The three short convs as transformers runs Kimi's (glm5_next's causal_conv1d_forward): as `causal_conv`, but a
    cached sequence given several tokens convolves (kernel past | n new) with kernel - 1 zeros padded on both sides
    and keeps outputs kernel .. kernel + n - 1 (the same values; n + 2 kernel - 1 outputs computed, not n + 1)."""
    n, kernel = qkv.shape[1], weight.shape[-1]
    if conv is None or n == 1:
        return causal_conv(qkv, weight, conv)
    inputs = torch.cat([conv, qkv.transpose(1, 2)], dim=-1)  # (b, 3 h d, kernel + n)
    out = F.conv1d(inputs, weight, padding=kernel - 1, groups=inputs.shape[1])[..., kernel:kernel + n]
    return F.silu(out).transpose(1, 2), inputs[..., -kernel:]  # (b, n, 3 h d)


class KimiDeltaAttention(nn.Module):
    """One KDA token mixer; its roles (KDA_ROLES) are its parameter names."""

    def __init__(self, spec: TextSpec, layer: int) -> None:
        super().__init__()
        g, d = spec.linear, spec.hidden_size
        self.layer, self.h, self.dim, self.width = layer, g.key_heads, g.key_head_dim, g.key_dim
        for role, what in (("kda_q", "q"), ("kda_k", "k"), ("kda_v", "v")):
            setattr(self, role, linear(spec, d, g.key_dim, False, "KDA", f"{what} = x W_{what}: (b, n, h d)"))
        for role in ("kda_q_conv", "kda_k_conv", "kda_v_conv"):  # depthwise: one filter a channel
            setattr(self, role, nn.Parameter(torch.zeros(g.key_dim, 1, g.conv_kernel)))
        self.kda_a_log = nn.Parameter(torch.zeros(1, 1, g.key_heads, 1))
        self.kda_f_a = linear(spec, d, g.key_head_dim, False, "KDA", "forget gate, low rank: (b, n, d)")
        self.kda_f_b = linear(spec, g.key_head_dim, g.key_dim, False, "KDA", "forget gate per key channel: (b, n, h d)")
        self.kda_dt_bias = nn.Parameter(torch.zeros(g.key_dim))
        self.kda_b = linear(spec, d, g.key_heads, False, "KDA", "update strength b per head: (b, n, h)")
        self.kda_g_a = linear(spec, d, g.key_head_dim, False, "KDA", "output gate, low rank: (b, n, d)")
        self.kda_g_b = linear(spec, g.key_head_dim, g.key_dim, False, "KDA", "output gate: (b, n, h d)")
        self.kda_norm = note(SigmoidGatedRMSNorm(g.key_head_dim, spec.rms_norm_eps), "KDA",
                             "RMS norm over d, gated by sigmoid(output gate)")
        self.kda_out = linear(spec, g.key_dim, d, False, "KDA", "heads concatenated, then W_o")
        self.conv_out = Tap("KDA", f"causal depthwise convs ({g.conv_kernel} taps) + SiLU over q, k, v: (b, n, 3 h d)")
        self.decay = Tap("KDA", "log decay per key channel g = -exp(A_log) softplus(f + dt_bias): (b, n, h, d)")
        self.conv_state = Tap("Linear state", f"conv state: the last {g.conv_kernel} inputs (b, 3 h d, kernel)")
        self.rec_state = Tap("Linear state", "recurrent state S (b, h, d, d), float32")
        self.heads = Tap("KDA", "delta-rule outputs o_t = S_t^T q_t: (b, n, h, d)")
        note(self, "KDA", "Kimi Delta Attention output")

    def forward(self, x, ropes, mask, cache: KVCache | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        x = padding_zeroed(x, mask)  # pads leave the state at zero (transformers zeroes them too)
        shape = (b, n, self.h, self.dim)
        qkv = torch.cat([self.kda_q(x), self.kda_k(x), self.kda_v(x)], dim=-1)  # (b, n, 3 h d)
        weight = torch.cat([self.kda_q_conv, self.kda_k_conv, self.kda_v_conv])  # (3 h d, 1, kernel)
        conv, state = (cache.conv[self.layer], cache.state[self.layer]) if cache is not None else (None, None)
        qkv, conv = kimi_conv(qkv, weight, conv)
        q, k, v = (t.reshape(shape).float() for t in self.conv_out(qkv).split(self.width, dim=-1))
        q, k = l2_normalise(q) * self.dim**-0.5, l2_normalise(k)  # (b, n, h, d) each
        f = self.kda_f_b(self.kda_f_a(x)).float() + self.kda_dt_bias.float()  # (b, n, h d)
        g = self.decay(-self.kda_a_log.float().exp() * F.softplus(f.view(shape)))  # (b, n, h, d), <= 0
        beta = torch.sigmoid(self.kda_b(x)).float()  # (b, n, h)
        if state is None or n > 1:  # transformers' rule: the chunked form unless one token follows a state
            S = state if state is not None else x.new_zeros(b, self.h, self.dim, self.dim, dtype=torch.float32)
            heads, state = chunked_kda(q, k, v, beta, g, S)
        else:
            heads, state = recurrent_kda(q, k, v, beta, g, state)
        if cache is not None:
            cache.update_state(self.layer, self.conv_state(conv), self.rec_state(state), mask.shape[-1])  # t+n seen
        heads = self.heads(heads.to(x.dtype))  # (b, n, h, d)
        gate = self.kda_g_b(self.kda_g_a(x)).view(shape)  # (b, n, h, d)
        return self.kda_out(self.kda_norm(heads, gate).reshape(b, n, self.width))  # (b, n, d)
