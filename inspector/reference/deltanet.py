"""Gated DeltaNet, the linear attention of the hybrid families (Qwen3-Next, Qwen3.5).

Per layer: the input is projected to q, k, v (grouped: each of the h_k key heads serves h_v / h_k value
heads), an output gate z, an update strength b and a decay a; a causal depthwise convolution of
`conv_kernel` taps runs over q, k and v with SiLU; q and k are L2-normalised per head and q scaled by
d_k^-1/2. A per-head state S (d_k x d_v) then goes token by token (the delta rule with a decay):
S <- S exp(g_t); S <- S + k_t (beta_t (v_t - S^T k_t))^T; o_t = S^T q_t, with beta = sigmoid(b) and
g = -exp(A_log) softplus(a + dt_bias). The heads' outputs go through an RMS norm over d_v gated by
SiLU(z), then out_proj. The cache keeps the convolution's last `conv_kernel` inputs and S (float32), not
K and V: a fixed size per sequence whatever its length. The recurrence runs as transformers' torch fallback
runs it, so FlopCounterMode counts the same matmuls: a prefill in the chunked form (torch_chunk_gated_delta_rule,
chunks of 64, `chunked_delta_rule`), a decode token one step at a time (torch_recurrent_gated_delta_rule).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inspector.reference.layers import KVCache, Tap, linear, note
from inspector.spec.text import TextSpec

# Inventory roles of the Gated DeltaNet part (its parameters live under `layers.{i}.attn.`).
DELTANET_ROLES = {"gdn_qkvz", "gdn_ba", "gdn_qkv", "gdn_z", "gdn_b", "gdn_a", "gdn_conv", "gdn_dt_bias",
                  "gdn_a_log", "gdn_norm", "gdn_out"}


class GatedRMSNorm(nn.Module):
    """RMS norm over d_v (weight w, not an offset), then times SiLU(z), in float32."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = self.weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)
        return (h * F.silu(z.float())).to(x.dtype)


def l2_normalise(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x / sqrt(sum(x^2) + eps) over the last dim (the eps of transformers' l2norm)."""
    return x * torch.rsqrt((x * x).sum(dim=-1, keepdim=True) + eps)


CHUNK = 64  # transformers' torch_chunk_gated_delta_rule chunk_size (and FLA's chunk_gated_delta_rule)


def chunked_delta_rule(q, k, v, beta, decay, S, chunk: int = CHUNK):
    """The delta rule over chunks of `chunk` tokens (the WY/UT form transformers' torch fallback runs for a
    prefill): within a chunk, a unit lower-triangular system turns the token-by-token updates into
    matmuls; between chunks, the state carries over. The sequence is padded with zeros (beta 0, decay 0)
    to a multiple of `chunk`. Inputs as `recur`'s after normalisation, float32; returns (b, n, h, d_v), S."""
    b, n, h, d_v = v.shape
    pad = (-n) % chunk
    q, k, v = (F.pad(x.transpose(1, 2), (0, 0, 0, pad)) for x in (q, k, v))  # (b, h, N, d)
    beta, decay = (F.pad(x.transpose(1, 2), (0, pad)) for x in (beta, decay))  # (b, h, N)
    m = (n + pad) // chunk
    q, k, v = (x.reshape(b, h, m, chunk, x.shape[-1]) for x in (q, k, v))
    beta, g = beta.reshape(b, h, m, chunk, 1), decay.reshape(b, h, m, chunk).cumsum(-1)  # g: decay so far
    later = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).triu(1)
    between = (g[..., :, None] - g[..., None, :]).masked_fill(later, float("-inf")).exp()  # exp(g_i - g_j), j <= i
    system = (k * beta) @ k.transpose(-1, -2) * between  # its strict lower part: how token j's update reaches i
    values = torch.linalg.solve_triangular(system, v * beta, upper=False, unitriangular=True)
    reads = torch.linalg.solve_triangular(system, k * beta * g.exp()[..., None], upper=False, unitriangular=True)
    scores = q @ k.transpose(-1, -2) * between  # (b, h, m, C, C): within the chunk, causal
    q_in, k_out = q * g.exp()[..., None], k * (g[..., -1:] - g).exp()[..., None]
    out = []
    for i in range(m):
        fresh = values[:, :, i] - reads[:, :, i] @ S  # (b, h, C, d_v): what the state does not predict yet
        out.append(q_in[:, :, i] @ S + scores[:, :, i] @ fresh)
        S = S * g[:, :, i, -1].exp()[..., None, None] + k_out[:, :, i].transpose(-1, -2) @ fresh
    return torch.stack(out, dim=2).reshape(b, h, m * chunk, d_v)[:, :, :n].transpose(1, 2), S


def causal_conv(qkv: torch.Tensor, weight: torch.Tensor, conv: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal depthwise conv of `weight` (conv_dim, 1, kernel) + SiLU over qkv (b, n, conv_dim); returns
    (b, n, conv_dim) and the new state (the last `kernel` inputs). Run as transformers runs it (its FLOPs are those
    FlopCounterMode counts there): a fresh sequence pads kernel - 1 zeros on both sides and keeps the first n of
    n + kernel - 1 outputs; a cached one convolves (kernel past | n new) inputs and keeps the last n of n + 1
    outputs (causal_conv1d_fn / _update)."""
    b, n, c = qkv.shape
    kernel = weight.shape[-1]
    past = conv if conv is not None else qkv.new_zeros(b, c, kernel)  # (b, conv_dim, kernel)
    inputs = torch.cat([past, qkv.transpose(1, 2)], dim=-1)  # (b, conv_dim, kernel + n)
    if conv is None:
        out = F.conv1d(qkv.transpose(1, 2), weight, padding=kernel - 1, groups=c)[..., :n]
    else:
        out = F.conv1d(inputs, weight, groups=c)[..., -n:]  # (b, conv_dim, n)
    return F.silu(out).transpose(1, 2), inputs[..., -kernel:]  # (b, n, conv_dim)


def padding_zeroed(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x (b, n, d) with the pads of the additive mask (b or 1, 1, n, t+n) zeroed: a pad cannot see itself."""
    n = x.shape[1]
    keys = torch.arange(n, device=x.device)
    real = mask[:, 0, keys, mask.shape[-1] - n + keys] == 0  # (1 or b, n)
    return x * real[..., None].to(x.dtype)


class GatedDeltaNet(nn.Module):
    """One Gated DeltaNet token mixer; its roles (DELTANET_ROLES) are its parameter names."""

    def __init__(self, spec: TextSpec, layer: int) -> None:
        super().__init__()
        g, d = spec.linear, spec.hidden_size
        self.layer, self.kind, self.kernel = layer, g.kind, g.conv_kernel
        self.h_k, self.h_v, self.d_k, self.d_v = g.key_heads, g.value_heads, g.key_head_dim, g.value_head_dim
        self.key_dim, self.value_dim, self.conv_dim = g.key_dim, g.value_dim, g.conv_dim
        if g.kind == "gdn_fused":
            self.gdn_qkvz = linear(spec, d, 2 * g.key_dim + 2 * g.value_dim, False, "GDN", "q, k, v, z per key head")
            self.gdn_ba = linear(spec, d, 2 * g.value_heads, False, "GDN", "b, a per key head")
        else:
            self.gdn_qkv = linear(spec, d, g.conv_dim, False, "GDN", "q, k, v = x W_qkv")
            self.gdn_z = linear(spec, d, g.value_dim, False, "GDN", "output gate z = x W_z")
            self.gdn_b = linear(spec, d, g.value_heads, False, "GDN", "update strength b = x W_b")
            self.gdn_a = linear(spec, d, g.value_heads, False, "GDN", "decay input a = x W_a")
        self.gdn_conv = nn.Parameter(torch.zeros(g.conv_dim, 1, g.conv_kernel))  # depthwise: one filter a channel
        self.gdn_dt_bias = nn.Parameter(torch.ones(g.value_heads))
        self.gdn_a_log = nn.Parameter(torch.zeros(g.value_heads))
        self.gdn_norm = note(GatedRMSNorm(g.value_head_dim, spec.rms_norm_eps), "GDN",
                             "RMS norm over d_v, gated by SiLU(z)")
        self.gdn_out = linear(spec, g.value_dim, d, False, "GDN", "heads concatenated, then W_out")
        self.conv_out = Tap("GDN", f"causal depthwise conv ({g.conv_kernel} taps) + SiLU over q, k, v: "
                                   "(b, n, conv_dim)")
        self.conv_state = Tap("Linear state", f"conv state: the last {g.conv_kernel} inputs (b, conv_dim, kernel)")
        self.rec_state = Tap("Linear state", "recurrent state S (b, h_v, d_k, d_v), float32")
        self.heads = Tap("GDN", "delta-rule outputs o_t = S_t^T q_t: (b, n, h_v, d_v)")
        note(self, "GDN", "Gated DeltaNet output")

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (b, n, d) -> qkv (b, n, conv_dim) as [q | k | v], z (b, n, h_v, d_v), b and a (b, n, h_v)."""
        b, n, _ = x.shape
        if self.kind != "gdn_fused":
            z = self.gdn_z(x).view(b, n, self.h_v, self.d_v)  # (b, n, h_v, d_v)
            return self.gdn_qkv(x), z, self.gdn_b(x), self.gdn_a(x)
        r = self.h_v // self.h_k  # value heads per key head
        qkvz = self.gdn_qkvz(x).view(b, n, self.h_k, 2 * self.d_k + 2 * r * self.d_v)  # (b, n, h_k, per key head)
        q, k, v, z = qkvz.split([self.d_k, self.d_k, r * self.d_v, r * self.d_v], dim=-1)
        ba = self.gdn_ba(x).view(b, n, self.h_k, 2 * r)  # (b, n, h_k, 2r)
        beta_in, a = ba.split([r, r], dim=-1)  # (b, n, h_k, r) each
        qkv = torch.cat([q.reshape(b, n, -1), k.reshape(b, n, -1), v.reshape(b, n, -1)], dim=-1)  # (b, n, conv_dim)
        return qkv, z.reshape(b, n, self.h_v, self.d_v), beta_in.reshape(b, n, self.h_v), a.reshape(b, n, self.h_v)

    def convolve(self, qkv: torch.Tensor, conv: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal depthwise conv + SiLU: (b, n, conv_dim) and the new state (see `causal_conv`)."""
        out, state = causal_conv(qkv, self.gdn_conv, conv)
        return self.conv_out(out), state

    def recur(self, q, k, v, beta, decay, state):
        """The delta rule token by token in float32: q, k (b, n, h_v, d_k), v (b, n, h_v, d_v), beta and
        decay (b, n, h_v); state (b, h_v, d_k, d_v) or None -> outputs (b, n, h_v, d_v), final state."""
        b, n, h, _ = v.shape
        S = state if state is not None else v.new_zeros(b, h, self.d_k, self.d_v, dtype=torch.float32)
        q, k, v, beta, decay = (t.float() for t in (q, k, v, beta, decay))
        q = l2_normalise(q) * self.d_k**-0.5
        k = l2_normalise(k)
        if state is None or n > 1:  # transformers' condition for its chunked form (prefill; recurrent: decode)
            return chunked_delta_rule(q, k, v, beta, decay, S)
        out = []
        for t in range(n):
            S = S * decay[:, t].exp()[..., None, None]  # (b, h_v, d_k, d_v): the decay
            remembered = (S * k[:, t, :, :, None]).sum(-2)  # (b, h_v, d_v): S^T k_t
            delta = (v[:, t] - remembered) * beta[:, t, :, None]  # (b, h_v, d_v)
            S = S + k[:, t, :, :, None] * delta[:, :, None, :]  # (b, h_v, d_k, d_v): + k_t delta^T
            out.append((S * q[:, t, :, :, None]).sum(-2))  # (b, h_v, d_v): S^T q_t
        return torch.stack(out, dim=1), S  # (b, n, h_v, d_v)

    def forward(self, x, ropes, mask, cache: KVCache | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        x = padding_zeroed(x, mask)  # pads zeroed, so they leave the state at zero (transformers does too)
        qkv, z, beta_in, a = self.project(x)
        conv, state = (cache.conv[self.layer], cache.state[self.layer]) if cache is not None else (None, None)
        qkv, conv = self.convolve(qkv, conv)  # (b, n, conv_dim)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.value_dim], dim=-1)
        r = self.h_v // self.h_k
        q = q.reshape(b, n, self.h_k, self.d_k).repeat_interleave(r, dim=2)  # (b, n, h_v, d_k)
        k = k.reshape(b, n, self.h_k, self.d_k).repeat_interleave(r, dim=2)  # (b, n, h_v, d_k)
        v = v.reshape(b, n, self.h_v, self.d_v)  # (b, n, h_v, d_v)
        decay = -self.gdn_a_log.float().exp() * F.softplus(a.float() + self.gdn_dt_bias)  # (b, n, h_v), <= 0
        heads, state = self.recur(q, k, v, beta_in.sigmoid(), decay, state)
        if cache is not None:
            cache.update_state(self.layer, self.conv_state(conv), self.rec_state(state), mask.shape[-1])  # t+n seen
        heads = self.heads(heads.to(x.dtype))  # (b, n, h_v, d_v)
        return self.gdn_out(self.gdn_norm(heads, z).reshape(b, n, self.value_dim))  # (b, n, d)
