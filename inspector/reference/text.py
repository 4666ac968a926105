"""The reference decoder LLM: small nn.Modules built from a TextSpec, forwards that follow seed 003.

Steps of section 1.2.3: embedding (Step 4), per block RMSNorm -> Q/K/V -> RoPE -> masked attention
-> W_o -> residual (Step 5), RMSNorm -> SwiGLU -> residual (Step 6), N blocks (Step 7), final norm
(Step 8), LM head to logits (b, n, n_v) (Step 9). The KV cache and causal mask are those of 1.2.5;
RoPE is rotate-half (Appendix A). Family differences come from spec fields only.

Observing sub-steps: every value worth showing is the output of a named submodule. Linear layers,
norms and blocks are modules already; values in the middle of a forward (q and k after RoPE, the
masked scores, the softmax probabilities, the concatenated heads, the residual after attention)
pass through a `Tap`, an identity module. A tracer registers forward hooks on
`model.named_modules()` (e.g. `layers.3.attn.probs`) and removes them afterwards; with no hooks a
Tap costs one Python call, so untraced runs pay nothing measurable.

`TextModel(spec, device="meta")` allocates nothing: a 405B spec builds and runs on meta in seconds.
Parameters are named by role (`layers.{i}.attn.q.weight`); `param_name(role, layer)` maps an
inventory role to that name, which is how inspector.reference.load fills the model.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from inspector.errors import InspectError
from inspector.reference.layers import KVCache, RMSNorm, RotaryEmbedding, Tap, apply_rope, causal_mask
from inspector.spec.text import TextSpec

ACTIVATIONS = {"silu": F.silu, "gelu": F.gelu, "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}

# Inventory role -> module path of the parameter in TextModel ("{}" = layer index).
ROLE_PARAMS: Mapping[str, str] = {
    "embed": "embed.weight",
    "attn_norm.weight": "layers.{}.attn_norm.weight",
    "q_norm.weight": "layers.{}.attn.q_norm.weight",
    "k_norm.weight": "layers.{}.attn.k_norm.weight",
    "mlp_norm.weight": "layers.{}.mlp_norm.weight",
    "final_norm.weight": "norm.weight",
    "lm_head": "lm_head.weight",
}
ATTN_LINEARS = ("q", "k", "v", "qkv", "o")
MLP_LINEARS = ("gate", "up", "gate_up", "down")


def param_name(role: str, layer: int | None = None) -> str:
    """TextModel parameter name of an inventory role, e.g. ("q.weight", 3) -> "layers.3.attn.q.weight"."""
    if role in ROLE_PARAMS:
        return ROLE_PARAMS[role].format(layer)
    module, _, kind = role.partition(".")
    if module in ATTN_LINEARS:
        return f"layers.{layer}.attn.{module}.{kind}"
    if module in MLP_LINEARS:
        return f"layers.{layer}.mlp.{module}.{kind}"
    raise InspectError(f"weight role {role!r} has no parameter in the reference model")


# --------------------------------------------------------------------------- blocks


class Attention(nn.Module):
    """Step 5: Q/K/V projections, optional q/k norm, RoPE, GQA, masked softmax attention, W_o."""

    def __init__(self, spec: TextSpec, layer: int) -> None:
        super().__init__()
        self.layer, self.n_h, self.n_kv, self.d_h = layer, spec.num_heads, spec.num_kv_heads, spec.head_dim
        self.groups, self.layout, self.scale = spec.kv_groups, spec.qkv_layout, spec.head_dim**-0.5
        d, bias = spec.hidden_size, spec.qkv_bias
        if spec.fused_qkv:
            self.qkv = nn.Linear(d, spec.q_dim + 2 * spec.kv_dim, bias=bias)
        else:
            self.q = nn.Linear(d, spec.q_dim, bias=bias)
            self.k = nn.Linear(d, spec.kv_dim, bias=bias)
            self.v = nn.Linear(d, spec.kv_dim, bias=bias)
        self.q_norm = RMSNorm(spec.head_dim, spec.rms_norm_eps) if spec.qk_norm else None
        self.k_norm = RMSNorm(spec.head_dim, spec.rms_norm_eps) if spec.qk_norm else None
        self.o = nn.Linear(spec.q_dim, d, bias=spec.o_bias)
        self.q_heads, self.k_heads, self.v_heads = Tap(), Tap(), Tap()
        self.q_rope, self.k_rope, self.k_cache, self.v_cache = Tap(), Tap(), Tap(), Tap()
        self.k_repeat, self.v_repeat = Tap(), Tap()
        self.scores, self.probs, self.heads = Tap(), Tap(), Tap()

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (b, n, d) -> q (b, n, n_h, d_h), k and v (b, n, n_kv, d_h)."""
        b, n, _ = x.shape
        if not hasattr(self, "qkv"):
            q = self.q(x).view(b, n, self.n_h, self.d_h)  # (b, n, n_h, d_h)
            k = self.k(x).view(b, n, self.n_kv, self.d_h)  # (b, n, n_kv, d_h)
            v = self.v(x).view(b, n, self.n_kv, self.d_h)  # (b, n, n_kv, d_h)
            return q, k, v
        qkv = self.qkv(x)  # (b, n, q_dim + 2 kv_dim)
        if self.layout == "grouped":  # InternLM2 wqkv: per kv head [q x groups, k, v]
            qkv = qkv.view(b, n, self.n_kv, self.groups + 2, self.d_h)  # (b, n, n_kv, groups+2, d_h)
            q = qkv[..., : self.groups, :].reshape(b, n, self.n_h, self.d_h)  # (b, n, n_h, d_h)
            return q, qkv[..., -2, :], qkv[..., -1, :]  # k, v: (b, n, n_kv, d_h)
        q, k, v = qkv.split([self.n_h * self.d_h, self.n_kv * self.d_h, self.n_kv * self.d_h], dim=-1)
        return (q.view(b, n, self.n_h, self.d_h), k.view(b, n, self.n_kv, self.d_h),  # (b, n, heads, d_h)
                v.view(b, n, self.n_kv, self.d_h))

    def forward(self, x, cos, sin, mask, cache: KVCache | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.project(x)
        if self.q_norm is not None:  # Qwen3: RMSNorm over d_h of each head, before RoPE
            q, k = self.q_norm(q), self.k_norm(k)
        q = self.q_heads(q.transpose(1, 2))  # (b, n_h, n, d_h)
        k = self.k_heads(k.transpose(1, 2))  # (b, n_kv, n, d_h)
        v = self.v_heads(v.transpose(1, 2))  # (b, n_kv, n, d_h)
        q, k = self.q_rope(apply_rope(q, cos, sin)), self.k_rope(apply_rope(k, cos, sin))
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # (b, n_kv, t+n, d_h)
            k, v = self.k_cache(k), self.v_cache(v)
        k = self.k_repeat(k.repeat_interleave(self.groups, dim=1))  # (b, n_h, t+n, d_h): kv head h serves q heads h*g..
        v = self.v_repeat(v.repeat_interleave(self.groups, dim=1))  # (b, n_h, t+n, d_h)
        scores = self.scores(q @ k.transpose(-2, -1) * self.scale + mask)  # (b, n_h, n, t+n)
        probs = self.probs(scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype))  # (b, n_h, n, t+n)
        heads = self.heads(probs @ v)  # (b, n_h, n, d_h)
        return self.o(heads.transpose(1, 2).reshape(b, n, self.n_h * self.d_h))  # (b, n, d)


class MLP(nn.Module):
    """Step 6: down(act(gate(x)) * up(x)); Phi-3's gate_up holds gate rows first, then up rows."""

    def __init__(self, spec: TextSpec) -> None:
        super().__init__()
        d, inter, bias = spec.hidden_size, spec.intermediate_size, spec.mlp_bias
        if spec.hidden_act not in ACTIVATIONS:
            raise InspectError(f"hidden_act {spec.hidden_act!r} is not supported (supported: {', '.join(ACTIVATIONS)})")
        self.act = ACTIVATIONS[spec.hidden_act]
        if spec.fused_gate_up:
            self.gate_up = nn.Linear(d, 2 * inter, bias=bias)
        else:
            self.gate = nn.Linear(d, inter, bias=bias)
            self.up = nn.Linear(d, inter, bias=bias)
        self.down = nn.Linear(inter, d, bias=bias)
        self.gated = Tap()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "gate_up"):
            gate, up = self.gate_up(x).chunk(2, dim=-1)  # (b, n, d_inter) each
        else:
            gate, up = self.gate(x), self.up(x)  # (b, n, d_inter) each
        return self.down(self.gated(self.act(gate) * up))  # (b, n, d)


class Block(nn.Module):
    """One decoder layer (Steps 5 and 6), pre-norm, with both residual additions in sight."""

    def __init__(self, spec: TextSpec, layer: int) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.attn = Attention(spec, layer)
        self.mlp_norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.mlp = MLP(spec)
        self.after_attn = Tap()

    def forward(self, x, cos, sin, mask, cache: KVCache | None = None) -> torch.Tensor:
        x = self.after_attn(x + self.attn(self.attn_norm(x), cos, sin, mask, cache))  # (b, n, d)
        return x + self.mlp(self.mlp_norm(x))  # (b, n, d)


class TextModel(nn.Module):
    """Token ids (b, n) -> logits (b, n, n_v), Steps 4 to 9; with a KVCache, n new tokens after it."""

    def __init__(self, spec: TextSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.spec = spec
        with torch.device(device):
            self.embed = nn.Embedding(spec.vocab_size, spec.hidden_size, dtype=dtype)
            self.layers = nn.ModuleList(Block(spec, i).to(dtype) for i in range(spec.num_layers))
            self.norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps).to(dtype)
            self.lm_head = nn.Linear(spec.hidden_size, spec.vocab_size, bias=False, dtype=dtype)
        self.rope = RotaryEmbedding(spec)
        self.tie()

    def tie(self) -> None:
        """A tied LM head is the embedding matrix itself (one Parameter)."""
        if self.spec.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def new_cache(self) -> KVCache:
        return KVCache(self.spec.num_layers)

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None, embeds: torch.Tensor | None = None,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        """`embeds` (b, n, d) replaces the embedding lookup (a VLM's text embeddings with image features
        scattered in); `positions` replaces arange, e.g. Qwen2-VL's M-RoPE ids (3, b, n)."""
        b, n = ids.shape
        start = cache.length if cache is not None else 0
        if positions is None:
            positions = torch.arange(start, start + n, device=ids.device)  # (n,)
        x = self.embed(ids) if embeds is None else embeds  # (b, n, d)
        cos, sin = self.rope(positions, x.dtype)  # (1, n, d_h) each
        mask = causal_mask(start, n, self.spec.sliding_window, x.dtype, ids.device)  # (1, 1, n, start+n)
        for block in self.layers:
            x = block(x, cos, sin, mask, cache)  # (b, n, d)
        return self.lm_head(self.norm(x))  # (b, n, n_v)
