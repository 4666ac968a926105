"""Mamba2 and LFM2's short convolution, the state-space token mixers of the Mamba2/short-conv hybrid families.

Mamba2 (Nemotron-H, Granite 4.0-H): in_proj gives the output gate z, the convolution's input x B C and one dt
per head; a causal depthwise convolution (with bias) and SiLU run over x B C; per head h, with dt = softplus(dt
+ dt_bias) and A = -exp(A_log), the state S (head_dim x state) goes token by token S <- exp(dt A) S + dt x B^T
(B of the head's group), y = S C + D x; y times SiLU(z) is RMS-normalised in groups of inner / n_groups and
scaled by the norm's weight, then out_proj (transformers models/nemotron_h NemotronHMamba2Mixer,
mamba2_selective_state_update and NemotronHRMSNormGated: the recurrent form its torch path takes for a cached
token; its prefill's chunked form is the same sum). LFM2 (transformers models/lfm2 Lfm2ShortConv): in_proj gives
B, C and x; B * x goes through a causal depthwise convolution (no activation), C times that, then out_proj.

The cache keeps the convolution's last `kernel` inputs (b, conv_dim, kernel) as transformers does, and Mamba2's
state (b, heads, head_dim, state) in float32. The convolution runs over (kernel - 1 past inputs | the new ones)
without padding, so it computes exactly one output per new token (FlopCounterMode: 2 conv_dim kernel FLOPs a
token, the ledger's count of the conv weight); the scan is elementwise (no matmul: FlopCounterMode counts none).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inspector.reference.deltanet import padding_zeroed  # left pads zeroed, as transformers does
from inspector.reference.layers import KVCache, Tap, linear, note
from inspector.spec.text import TextSpec

# Inventory roles of the Mamba2 / short-convolution parts (their parameters live under `layers.{i}.attn.`).
SSM_ROLES = {"ssm_in", "ssm_conv", "ssm_dt_bias", "ssm_a_log", "ssm_d", "ssm_norm", "ssm_out"}


def causal_conv(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, kernel: int,
                conv: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Depthwise causal conv of `inputs` (b, n, c) after the cached `conv` (b, c, kernel) or zeros: returns the n
    outputs (b, n, c) and the new cache (the last `kernel` inputs)."""
    b, n, c = inputs.shape
    past = conv if conv is not None else inputs.new_zeros(b, c, kernel)  # (b, c, kernel)
    seq = torch.cat([past, inputs.transpose(1, 2)], dim=-1)  # (b, c, kernel + n)
    out = F.conv1d(seq[..., 1:], weight, bias, groups=c)  # (b, c, n): kernel - 1 past inputs, then the new ones
    return out.transpose(1, 2), seq[..., -kernel:]  # (b, n, c), (b, c, kernel)


class Mamba2(nn.Module):
    """One Mamba2 mixer; its roles (SSM_ROLES) are its parameter names."""

    def __init__(self, spec: TextSpec, layer: int) -> None:
        super().__init__()
        g, d = spec.linear, spec.hidden_size
        self.layer, self.kernel, self.eps = layer, g.conv_kernel, spec.rms_norm_eps
        self.heads, self.head_dim, self.groups, self.state = g.value_heads, g.value_head_dim, g.key_heads, g.key_head_dim
        self.inner, self.conv_dim, self.norm_groups = g.value_dim, g.conv_dim, g.norm_groups
        self.ssm_in = linear(spec, d, self.inner + self.conv_dim + self.heads, g.proj_bias, "Mamba2",
                             "z | x B C | dt = x W_in")
        self.ssm_conv = nn.Conv1d(self.conv_dim, self.conv_dim, g.conv_kernel, groups=self.conv_dim, bias=g.conv_bias)
        self.ssm_dt_bias = nn.Parameter(torch.ones(self.heads))
        self.ssm_a_log = nn.Parameter(torch.zeros(self.heads))
        self.ssm_d = nn.Parameter(torch.ones(self.heads))
        if g.gated_norm:
            self.ssm_norm = nn.Module()
            self.ssm_norm.weight = nn.Parameter(torch.ones(self.inner))
        self.ssm_out = linear(spec, self.inner, d, g.out_bias, "Mamba2", "y W_out")
        self.norm_before_gate = g.norm_before_gate
        m = spec.mup  # Falcon-H1: the input scaled, then in_proj's sections z | x | B | C | dt each by its own factor
        self.in_scale = m.ssm_in if m is not None else 1.0
        sections = (self.inner, self.inner, self.groups * self.state, self.groups * self.state, self.heads)
        self.zxbcdt = tuple(zip(sections, m.zxbcdt)) if m is not None and any(f != 1.0 for f in m.zxbcdt) else None
        self.conv_out = Tap("Mamba2", f"causal depthwise conv ({g.conv_kernel} taps) + SiLU over x B C: (b, n, conv_dim)")
        self.conv_state = Tap("Linear state", f"conv state: the last {g.conv_kernel} inputs (b, conv_dim, kernel)")
        self.rec_state = Tap("Linear state", "SSM state S (b, heads, head_dim, state), float32")
        self.scan = Tap("Mamba2", "selective scan y_t = S_t C_t + D x_t: (b, n, heads, head_dim)")
        note(self, "Mamba2", "Mamba2 output")

    def recur(self, x, B, C, dt, S):
        """x (b, n, h, p), B and C (b, n, h, N) (each head's group), dt (b, n, h) after softplus, S (b, h, p, N)
        or None -> y (b, n, h, p), final S; float32, token by token."""
        b, n, h, p = x.shape
        S = S if S is not None else x.new_zeros(b, h, p, self.state, dtype=torch.float32)
        x, B, C, dt = (t.float() for t in (x, B, C, dt))
        decay = torch.exp(dt * -self.ssm_a_log.float().exp())  # (b, n, h)
        out = []
        for t in range(n):
            S = S * decay[:, t, :, None, None] + (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, :, None, :]
            out.append((S * C[:, t, :, None, :]).sum(-1))  # (b, h, p): S_t C_t
        y = torch.stack(out, dim=1) + x * self.ssm_d.float()[:, None]  # (b, n, h, p): + D x
        return y, S

    def gated_norm(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """y * SiLU(z), RMS-normalised per group of inner / norm_groups channels, times w (float32 inside)."""
        if not hasattr(self, "ssm_norm"):  # Falcon-H1 without mamba_rms_norm: the gate alone
            return y * F.silu(z)
        h = y.float() if self.norm_before_gate else y.float() * F.silu(z.float())  # (b, n, inner)
        groups = h.view(*h.shape[:-1], self.norm_groups, -1)  # (b, n, G, inner / G)
        groups = groups * torch.rsqrt(groups.pow(2).mean(-1, keepdim=True) + self.eps)
        out = self.ssm_norm.weight * groups.view(h.shape).to(y.dtype)  # (b, n, inner)
        return (out.float() * F.silu(z.float())).to(y.dtype) if self.norm_before_gate else out

    def forward(self, x, ropes, mask, cache: KVCache | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        projected = self.ssm_in(padding_zeroed(x, mask) * self.in_scale)  # (b, n, inner + conv_dim + heads)
        if self.zxbcdt is not None:  # (inner + conv_dim + heads,): each section's factor
            factors = torch.cat([projected.new_full((w,), f) for w, f in self.zxbcdt])
            projected = projected * factors
        z, xbc, dt = projected.split([self.inner, self.conv_dim, self.heads], dim=-1)
        conv, S = (cache.conv[self.layer], cache.state[self.layer]) if cache is not None else (None, None)
        xbc, conv = causal_conv(xbc, self.ssm_conv.weight, self.ssm_conv.bias, self.kernel, conv)
        xbc = padding_zeroed(self.conv_out(F.silu(xbc)), mask)  # (b, n, conv_dim)
        xs, B, C = xbc.split([self.inner, self.groups * self.state, self.groups * self.state], dim=-1)
        r = self.heads // self.groups  # heads per group
        B = B.reshape(b, n, self.groups, self.state).repeat_interleave(r, dim=2)  # (b, n, h, N)
        C = C.reshape(b, n, self.groups, self.state).repeat_interleave(r, dim=2)  # (b, n, h, N)
        dt = F.softplus(dt + self.ssm_dt_bias)  # (b, n, h)
        y, S = self.recur(xs.reshape(b, n, self.heads, self.head_dim), B, C, dt, S)  # (b, n, h, p)
        if cache is not None:
            cache.update_state(self.layer, self.conv_state(conv), self.rec_state(S), mask.shape[-1])
        y = self.scan(y).reshape(b, n, self.inner).to(x.dtype)  # (b, n, inner)
        return self.ssm_out(self.gated_norm(y, z))  # (b, n, d)


class ShortConv(nn.Module):
    """LFM2's gated short convolution: out_proj(C * conv(B * x))."""

    def __init__(self, spec: TextSpec, layer: int) -> None:
        super().__init__()
        g, d = spec.linear, spec.hidden_size
        self.layer, self.kernel = layer, g.conv_kernel
        self.ssm_in = linear(spec, d, 3 * d, g.proj_bias, "Short conv", "B | C | x = x W_in")
        self.ssm_conv = nn.Conv1d(d, d, g.conv_kernel, groups=d, bias=g.conv_bias)
        self.ssm_out = linear(spec, d, d, g.out_bias, "Short conv", "(C * conv(B * x)) W_out")
        self.conv_out = Tap("Short conv", f"causal depthwise conv ({g.conv_kernel} taps) of B * x: (b, n, d)")
        self.conv_state = Tap("Linear state", f"conv state: the last {g.conv_kernel} inputs (b, d, kernel)")
        note(self, "Short conv", "short-convolution output")

    def forward(self, x, ropes, mask, cache: KVCache | None = None) -> torch.Tensor:
        B, C, xs = self.ssm_in(padding_zeroed(x, mask)).chunk(3, dim=-1)  # (b, n, d) each
        conv = cache.conv[self.layer] if cache is not None else None
        out, conv = causal_conv(B * xs, self.ssm_conv.weight, self.ssm_conv.bias, self.kernel, conv)
        if cache is not None:
            cache.update_state(self.layer, self.conv_state(conv), None, mask.shape[-1])
        return self.ssm_out(C * self.conv_out(out))  # (b, n, d)


MIXERS = {"mamba2": Mamba2, "shortconv": ShortConv}
