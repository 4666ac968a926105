"""Gemma 3n / Gemma 4 parts of the reference decoder: per-layer inputs, AltUp streams, LAuReL, the layer scalar.

Follows transformers 5.25 (models/gemma3n Gemma3nTextModel / Gemma3nTextDecoderLayer / Gemma3nTextAltUp /
Gemma3nTextLaurelBlock, models/gemma4 Gemma4TextModel / Gemma4TextDecoderLayer):

* per-layer inputs (PLE): a token's row of a (vocab, L x p) table times sqrt(p), plus the token embedding
  projected to L x p, times d^-1/2 and RMS-normed per layer; their sum times 2^-1/2 gives each layer a
  p-wide input. After the MLP, a layer adds norm(W_out (act(W_gate x) * input_i)) to its residual stream;
* Gemma 4 then multiplies the layer's output by its stored scalar;
* Gemma 3n runs k AltUp streams of width d: the model spreads the embedding to k streams (k - 1
  projections, each rescaled to the embedding's RMS), each layer predicts all streams from a router over
  the active one (k x k mixing coefficients per token), computes on the active prediction (attention
  beside a LAuReL low-rank residual, then the MLP), and corrects every stream by the innovation; the
  model maps the streams back (k - 1 projections, same rescale) and averages them before the final norm.

Modules are named by inventory role (`layers.{i}.ple_gate.weight`, `extras.altup_in.{j}.weight`), which is
how inspector.reference.text's `param_name` finds them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from inspector.reference.attention import L2Norm, attention_for
from inspector.reference.layers import Tap, linear, make_norm, note
from inspector.reference.mlp import activation
from inspector.reference.moe import feed_forward_for
from inspector.spec.text import TextSpec

# Inventory role parts -> where their parameters live (inspector.inventory.per_layer names them).
LAYER_EXTRA_ROLES = frozenset({"ple_gate", "ple_out", "ple_out_norm", "layer_scalar", "altup_scale", "altup_correct",
                               "altup_predict", "altup_router", "altup_router_norm", "laurel_left", "laurel_right",
                               "laurel_norm"})
MODEL_EXTRA_ROLES = frozenset({"ple_embed", "ple_proj", "ple_norm", "altup_in", "altup_out"})
EXPERT_ROLES = frozenset({"g4_router", "g4_router_scale", "g4_expert_scale", "g4_gate_up", "g4_down", "g4_norm_pre"})
LAYER_EXTRA_ROLES = LAYER_EXTRA_ROLES | {"g4_norm_mlp", "g4_norm_experts"}


def extra_param_name(role: str, layer: int | None, stream: int | None) -> str | None:
    """The reference parameter of a Gemma 3n / 4 role, or None for other roles."""
    part, _, kind = role.partition(".")
    if part in EXPERT_ROLES:
        return f"layers.{layer}.experts.{role}"
    if part in LAYER_EXTRA_ROLES:
        return f"layers.{layer}.{role}"
    if part in MODEL_EXTRA_ROLES:
        return f"extras.{part}.{stream}.{kind}" if stream is not None else f"extras.{role}"
    return None


def _rescaled(y: torch.Tensor, rms: torch.Tensor) -> torch.Tensor:
    """y scaled to the root mean square `rms` (b, n, 1) over d (its own RMS floored at 1e-5^1/2)."""
    return y * rms / torch.sqrt(torch.mean(y**2, dim=-1, keepdim=True).clamp(min=1e-5))


class ModelExtras(nn.Module):
    """The per-layer inputs and (Gemma 3n) the AltUp stream projections in and out."""

    def __init__(self, spec: TextSpec, dtype: torch.dtype) -> None:
        super().__init__()
        p, d, n = spec.per_layer, spec.hidden_size, spec.num_layers
        self.layers, self.dim, self.d = n, p.ple_dim, d
        if p.ple_dim:
            self.ple_embed = nn.Parameter(torch.empty(p.ple_vocab, n * p.ple_dim, dtype=dtype))
            self.ple_proj = linear(spec, d, n * p.ple_dim, False, "PLE", "token embedding projected to L x p")
            self.ple_norm = make_norm(spec, p.ple_dim, "PLE", "RMS norm of each layer's projected input")
            self.ple_inputs = Tap("PLE", "per-layer inputs: (b, n, L, p)")
        if p.altup_inputs:
            self.altup_in = nn.ModuleList(linear(spec, d, d, False, "AltUp", f"embedding to stream {j + 1}")
                                          for j in range(p.altup_inputs - 1))
            self.altup_out = nn.ModuleList(linear(spec, d, d, False, "AltUp", f"stream {j + 1} back")
                                           for j in range(p.altup_inputs - 1))
            self.streams = Tap("AltUp", f"{p.altup_inputs} streams: (k, b, n, d)")
            self.averaged = Tap("AltUp", "streams mapped back and averaged: (b, n, d)")
        self.to(dtype)

    def inputs(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
        """ids (b, n), scaled token embeddings x (b, n, d) -> per-layer inputs (b, n, L, p), or None."""
        if not self.dim:
            return None
        b, n = ids.shape
        rows = torch.where((ids >= 0) & (ids < self.ple_embed.shape[0]), ids, 0)  # Gemma 3n: out of table -> 0
        table = self.ple_embed[rows] * torch.tensor(self.dim**0.5, dtype=x.dtype)  # (b, n, L p)
        token = table.reshape(b, n, self.layers, self.dim)  # (b, n, L, p)
        proj = self.ple_proj(x) * torch.tensor(self.d**-0.5, dtype=x.dtype)  # (b, n, L p)
        proj = self.ple_norm(proj.reshape(b, n, self.layers, self.dim))  # (b, n, L, p)
        return self.ple_inputs((proj + token) * torch.tensor(2.0**-0.5, dtype=x.dtype))

    def expand(self, x: torch.Tensor) -> torch.Tensor:
        """Gemma 3n: (b, n, d) -> (k, b, n, d), stream 0 the embedding; others: x unchanged."""
        if not hasattr(self, "altup_in"):
            return x
        rms = torch.mean(x**2, dim=-1, keepdim=True) ** 0.5  # (b, n, 1)
        return self.streams(torch.stack([x] + [_rescaled(proj(x), rms) for proj in self.altup_in]))  # (k, b, n, d)

    def collapse(self, x: torch.Tensor) -> torch.Tensor:
        """Gemma 3n: (k, b, n, d) -> (b, n, d), the mean of the streams mapped back; others: x unchanged."""
        if not hasattr(self, "altup_out"):
            return x
        rms = torch.mean(x[0] ** 2, dim=-1, keepdim=True) ** 0.5  # (b, n, 1)
        back = [x[0]] + [_rescaled(proj(x[j + 1]), rms) for j, proj in enumerate(self.altup_out)]
        return self.averaged(torch.mean(torch.stack(back), dim=0))  # (b, n, d)


class GemmaExperts(nn.Module):
    """Gemma 4's experts beside the dense MLP (transformers Gemma4TextRouter, Gemma4TextExperts): the router
    reads the layer's residual stream x, weightless-RMS-normed, times a (d,) scale and d^-1/2; softmax over
    the E experts in float32, the top k renormalised to sum to 1, each times its expert's scale. The experts
    read norm(x): act(gate) * up from the fused (E, 2 d_e, d) tensor (gate rows first), then (E, d, d_e).
    On the meta device (no routing decisions) the T x k (token, slot) pairs are dealt round-robin over the
    experts: a uniform load of top_k experts per token."""

    def __init__(self, spec: TextSpec) -> None:
        super().__init__()
        m, d = spec.moe, spec.hidden_size
        self.e, self.k, self.act = m.num_experts, m.top_k, activation(spec)
        self.g4_router = linear(spec, d, m.num_experts, False, "Step 6", "router logits: d -> E")
        self.g4_router_scale = nn.Parameter(torch.ones(d))
        self.g4_expert_scale = nn.Parameter(torch.ones(m.num_experts))
        self.g4_gate_up = nn.Parameter(torch.empty(m.num_experts, 2 * m.expert_intermediate, d))
        self.g4_down = nn.Parameter(torch.empty(m.num_experts, d, m.expert_intermediate))
        self.g4_norm_pre = make_norm(spec, d, "Step 6", "RMS norm before the experts")
        self.unit_norm = L2Norm(spec.rms_norm_eps)
        self.weights = Tap("Step 6", f"top-{m.top_k} of {m.num_experts} experts per token, weights renormalised "
                           "and scaled per expert: (T, k)")
        note(self, "Step 6", "experts' output (beside the dense MLP)")

    def _route(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, d) -> weights and expert ids, (T, k) each."""
        h = self.unit_norm(flat) * self.g4_router_scale * flat.shape[-1] ** -0.5  # (T, d)
        probs = torch.softmax(self.g4_router(h), dim=-1, dtype=torch.float32)  # (T, E)
        weights, ids = torch.topk(probs, self.k, dim=-1)  # (T, k) each
        weights = weights / weights.sum(dim=-1, keepdim=True)
        return self.weights(weights * self.g4_expert_scale[ids]), ids

    def _expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        gate, up = F.linear(x, self.g4_gate_up[e]).chunk(2, dim=-1)  # (t, d_e) each
        return F.linear(self.act(gate) * up, self.g4_down[e])  # (t, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])  # (T, d)
        weights, ids = self._route(flat)
        h = self.g4_norm_pre(flat)  # (T, d)
        out = torch.zeros_like(h)
        if h.is_meta:  # pair p = (token p // k, slot p % k) goes to expert p mod E
            pairs = h.shape[0] * self.k
            for e in range(min(self.e, pairs)):
                out = out + self._expert(e, h[: len(range(e, pairs, self.e))]).sum(0)
            return out.reshape(shape)  # (b, n, d)
        for e in range(self.e):
            token, slot = torch.where(ids == e)  # (t,) each
            if token.numel():
                y = self._expert(e, h[token]) * weights[token, slot, None]  # (t, d)
                out.index_add_(0, token, y.to(out.dtype))
        return out.reshape(shape)  # (b, n, d)


class GemmaBlock(nn.Module):
    """A Gemma 3n / 4 decoder layer: sandwich-normed attention and MLP, then the per-layer input added
    through its gate (Gemma 4 then scales by its layer scalar); with AltUp (Gemma 3n) around it all,
    LAuReL beside the attention."""

    def __init__(self, spec: TextSpec, layer: int, shapes_only: bool = False) -> None:
        super().__init__()
        p, d = spec.per_layer, spec.hidden_size
        for step, roles in (("Step 5", ("attn_norm", "post_attn_norm")), ("Step 6", ("mlp_norm", "post_mlp_norm"))):
            for role in roles:
                setattr(self, role, make_norm(spec, d, step))
        self.attn, self.mlp = attention_for(spec, layer), feed_forward_for(spec, layer, shapes_only)
        self.act, self.active = activation(spec), p.altup_active
        if p.ple_dim:
            self.ple_gate = linear(spec, d, p.ple_dim, False, "PLE", "gate of the layer's input: d -> p")
            self.ple_out = linear(spec, p.ple_dim, d, False, "PLE", "act(gate) * input_i, back to d")
            self.ple_out_norm = make_norm(spec, d, "PLE")
        if p.layer_scalar:
            self.register_buffer("layer_scalar", torch.ones(1))  # (1,) stored in the checkpoint
        if spec.is_moe_layer(layer):  # Gemma 4 26B-A4B: experts beside the dense MLP, each normed after
            self.experts = GemmaExperts(spec)
            self.g4_norm_mlp = make_norm(spec, d, "Step 6", "RMS norm after the dense MLP")
            self.g4_norm_experts = make_norm(spec, d, "Step 6", "RMS norm after the experts")
        if p.altup_inputs:
            self._altup(spec)
        self.after_attn = Tap("Step 5", "residual: x + attention")
        note(self, "Step 7", "decoder layer output")

    def _altup(self, spec: TextSpec) -> None:
        p, d, k = spec.per_layer, spec.hidden_size, spec.per_layer.altup_inputs
        self.altup_scale = nn.Parameter(torch.zeros(d))  # (d,) correct_output_scale
        self.correct_scale = p.altup_correct_scale
        self.altup_router = linear(spec, d, k, False, "AltUp", "router over the streams: d -> k")
        self.altup_router_norm = make_norm(spec, d, "AltUp")
        self.altup_predict = linear(spec, k, k * k, False, "AltUp", "prediction coefficients: k -> k x k")
        self.altup_correct = linear(spec, k, k, False, "AltUp", "correction coefficients: k -> k")
        self.laurel_left = linear(spec, d, p.laurel_rank, False, "LAuReL", "d -> rank")
        self.laurel_right = linear(spec, p.laurel_rank, d, False, "LAuReL", "rank -> d")
        self.laurel_norm = make_norm(spec, d, "LAuReL")
        self.predicted = Tap("AltUp", "streams predicted: (k, b, n, d)")
        self.corrected = Tap("AltUp", "streams corrected by the layer's innovation: (k, b, n, d)")

    def _sublayers(self, x, rope, mask, cache, laurel: bool) -> torch.Tensor:
        """Attention (beside LAuReL in Gemma 3n) and the MLP, each sandwich-normed with its residual."""
        h = self.attn_norm(x)  # (b, n, d)
        a = x + self.post_attn_norm(self.attn(h, rope, mask, cache))  # (b, n, d)
        if laurel:
            a = (a + h + self.laurel_norm(self.laurel_right(self.laurel_left(h)))) / math.sqrt(2)
        a = self.after_attn(a)
        h = self.mlp(self.mlp_norm(a))  # (b, n, d)
        if hasattr(self, "experts"):  # the experts read the residual stream itself (their router does too)
            h = self.g4_norm_mlp(h) + self.g4_norm_experts(self.experts(a))  # (b, n, d)
        return a + self.post_mlp_norm(h)  # (b, n, d)

    def _per_layer_input(self, x: torch.Tensor, per_layer: torch.Tensor) -> torch.Tensor:
        """norm(W_out (act(W_gate x) * input_i)): (b, n, d)."""
        return self.ple_out_norm(self.ple_out(self.act(self.ple_gate(x)) * per_layer))

    def forward(self, x, rope, mask, cache=None, per_layer: torch.Tensor | None = None) -> torch.Tensor:
        if hasattr(self, "altup_router"):
            return self._altup_forward(x, rope, mask, cache, per_layer)
        x = self._sublayers(x, rope, mask, cache, laurel=False)  # (b, n, d)
        if hasattr(self, "ple_gate"):
            x = x + self._per_layer_input(x, per_layer)
        return x * self.layer_scalar if hasattr(self, "layer_scalar") else x

    def _modalities(self, x: torch.Tensor) -> torch.Tensor:
        """tanh(W_router (norm(x) / d)) in float32: (b, n, k)."""
        scaled = self.altup_router_norm(x) * torch.tensor(x.shape[-1] ** -1.0)
        return torch.tanh(self.altup_router(scaled).float()).type_as(x)

    def _altup_forward(self, x, rope, mask, cache, per_layer) -> torch.Tensor:
        k, b, n, d = x.shape
        mix = self.altup_predict(self._modalities(x[self.active])).reshape(b, n, k, k)  # (b, n, k, k)
        predicted = torch.matmul(x.permute(1, 2, 3, 0), mix.permute(0, 1, 3, 2))  # (b, n, d, k)
        predicted = self.predicted(predicted.permute(3, 0, 1, 2) + x)  # (k, b, n, d)
        out = self._sublayers(predicted[self.active], rope, mask, cache, laurel=True)  # (b, n, d)
        weights = self.altup_correct(self._modalities(out)) + 1.0  # (b, n, k)
        innovation = out - predicted[self.active]  # (b, n, d)
        corrected = self.corrected(innovation[None] * weights.permute(2, 0, 1)[..., None] + predicted)  # (k, b, n, d)
        first = corrected[self.active]
        if self.correct_scale:
            first = (first.type_as(self.altup_scale) * self.altup_scale).type_as(first)
        return torch.cat((corrected[:1], corrected[1:] + self._per_layer_input(first, per_layer)[None]))
