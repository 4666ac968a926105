"""Mixture-of-experts feed-forward, and `feed_forward_for`, which picks a layer's feed-forward part.

Step 6 of *Implementations of Large Language Models* when the FFN is a router plus experts.

A router scores every token against E experts (logits (b, n, E)); the family's rule
(spec.moe.routing, families.ROUTING_RULES) turns the logits into k weights and expert ids per token
(b, n, k); each chosen expert runs its own gated MLP on just the tokens sent to it, its output
weighted and added back at those tokens; a shared expert (every token, optionally behind a sigmoid
gate) is added on top. The rules:

  softmax_topk     softmax over all E, keep the top k (renormalised when norm_topk_prob): Qwen, OLMoE
  topk_softmax     top k logits, softmax over those k: Mixtral (the same numbers as softmax, top k,
                   renormalise), gpt-oss (its router has a bias)
  sigmoid_grouped  DeepSeek-V3: sigmoid scores; e_score_correction_bias added for the choice only;
                   experts in n_group groups, groups ranked by the sum of their 2 best scores, only
                   experts of the best topk_group groups eligible; weights are the unbiased scores,
                   renormalised, times routed_scaling_factor
  group_limited_greedy
                   DeepSeek-V2: softmax scores; with topk_method "group_limited_greedy", experts in n_group
                   groups, groups ranked by their best score, the others' scores set to 0; the top k
                   scores times routed_scaling_factor, not renormalised (transformers 5.25
                   DeepseekV2TopkRouter; topk_method "greedy", V2-Lite's: one group)
  topk_sigmoid     Llama 4: sigmoid of the top-k logits, applied to the expert's input
  sparsemixer      PhiMoE (top 2): the best expert, then the best of the rest, each weighted by a
                   softmax over the logits within a relative margin (2 router_jitter_noise) of it

Experts are kept as the checkpoint stores them: one module per expert (`experts.{e}`, parameters
gate_weight/up_weight/down_weight) for per-expert checkpoints, or the fused tensors of gpt-oss and
Llama 4 (`experts.gate_up` (E, d, 2 d_e), `experts.down` (E, d_e, d)) with one parameterless slot
per expert, so a tracer sees `experts.{e}` either way. gpt-oss interleaves gate and up columns and
uses its clamped SwiGLU, (up + 1) * g * sigmoid(alpha g) with g and up clamped at `limit`.

The number of tokens each expert received is a Tap whose values are data (`tokens_per_expert`).
On the meta device there are no routing decisions: expert 0 stands for the experts, run on every
token, so its shapes show (m = b n tokens).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from inspector.errors import InspectError
from inspector.reference.layers import Tap, linear, note
from inspector.reference.mlp import MLP, MLP_ROLES, PlainMLP, activation
from inspector.spec.layers import RoutingSpec
from inspector.spec.text import TextSpec

Route = Callable[[torch.Tensor, "torch.Tensor | None", RoutingSpec, int], tuple[torch.Tensor, torch.Tensor]]


# --------------------------------------------------------------------------- routing rules


def _softmax_topk(logits, bias, r: RoutingSpec, k: int):
    probs = logits.softmax(dim=-1, dtype=torch.float32)  # (b, n, E)
    choice = probs if bias is None else probs + bias.float()  # ERNIE 4.5: a selection bias steers the choice only
    ids = choice.topk(k, dim=-1).indices  # (b, n, k)
    weights = probs.gather(-1, ids)
    if r.norm_topk_prob:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, ids


def _topk_softmax(logits, bias, r: RoutingSpec, k: int):
    top, ids = logits.topk(k, dim=-1)  # (b, n, k)
    return top.softmax(dim=-1, dtype=torch.float32), ids


def _sigmoid_grouped(logits, bias, r: RoutingSpec, k: int):
    scores = logits.float().sigmoid()  # (b, n, E)
    choice = scores if bias is None else scores + bias.float()
    if r.n_group > 1:
        grouped = choice.unflatten(-1, (r.n_group, -1))  # (b, n, G, E/G)
        best = grouped.topk(2, dim=-1).values.sum(dim=-1).topk(r.topk_group, dim=-1).indices  # (b, n, topk_group)
        keep = torch.zeros(grouped.shape[:-1], dtype=torch.bool, device=logits.device).scatter(-1, best, True)
        choice = grouped.masked_fill(~keep[..., None], float("-inf")).flatten(-2)  # (b, n, E)
    ids = choice.topk(k, dim=-1).indices  # (b, n, k)
    weights = scores.gather(-1, ids)
    if r.norm_topk_prob:
        weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
    return weights * r.scaling, ids


def _group_limited_greedy(logits, bias, r: RoutingSpec, k: int):
    scores = logits.float().softmax(dim=-1)  # (b, n, E)
    if r.n_group > 1:  # topk_method "group_limited_greedy"; "greedy" reads as one group
        grouped = scores.unflatten(-1, (r.n_group, -1))  # (b, n, G, E/G)
        best = grouped.max(dim=-1).values.topk(r.topk_group, dim=-1).indices  # (b, n, topk_group)
        keep = torch.zeros(grouped.shape[:-1], dtype=torch.bool, device=logits.device).scatter(-1, best, True)
        scores = grouped.masked_fill(~keep[..., None], 0.0).flatten(-2)  # (b, n, E)
    weights, ids = scores.topk(k, dim=-1)  # (b, n, k)
    return weights * r.scaling, ids


def _topk_sigmoid(logits, bias, r: RoutingSpec, k: int):
    top, ids = logits.topk(k, dim=-1)  # (b, n, k)
    return top.float().sigmoid(), ids


def _sparsemixer(logits, bias, r: RoutingSpec, k: int):
    s = logits.float()  # (b, n, E)
    margin = 2 * r.jitter_eps
    best, first = s.max(dim=-1, keepdim=True)  # (b, n, 1)
    near = ((best - s) / s.abs().clamp(min=best)) > margin
    w1 = s.masked_fill(near, float("-inf")).softmax(dim=-1).gather(-1, first)
    rest = s.scatter(-1, first, float("-inf"))
    second_best, second = rest.max(dim=-1, keepdim=True)
    near = ((second_best - s) / s.abs().clamp(min=second_best)) > margin
    w2 = rest.masked_fill(near, float("-inf")).softmax(dim=-1).gather(-1, second)
    return torch.cat((w1, w2), dim=-1), torch.cat((first, second), dim=-1)  # (b, n, 2) each


ROUTES: dict[str, tuple[Route, str]] = {
    "softmax_topk": (_softmax_topk, "softmax over the E logits, top k"),
    "topk_softmax": (_topk_softmax, "top k logits, softmax over those k"),
    "sigmoid_grouped": (_sigmoid_grouped, "sigmoid scores, top k among the best groups (selection bias for the "
                                          "choice only), renormalised, times routed_scaling_factor"),
    "group_limited_greedy": (_group_limited_greedy, "softmax scores, top k among the topk_group groups of the best "
                                                    "single score, times routed_scaling_factor (not renormalised)"),
    "topk_sigmoid": (_topk_sigmoid, "top k logits, sigmoid of each (scales the expert's input)"),
    "sparsemixer": (_sparsemixer, "sparsemixer: best expert, then the best of the rest, each weighted by a "
                                  "softmax over the logits near it"),
}


# --------------------------------------------------------------------------- experts


def _glu(spec: TextSpec) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The experts' gated activation: act(gate) * up, or gpt-oss's clamped SwiGLU."""
    r, act = spec.moe.routing, activation(spec)
    if r.expert_act == "clamped_swiglu":
        alpha, limit = r.swiglu_alpha, r.swiglu_limit

        def clamped(gate, up):
            gate, up = gate.clamp(max=limit), up.clamp(-limit, limit)
            return (up + 1) * gate * torch.sigmoid(gate * alpha)

        return clamped
    return lambda gate, up: act(gate) * up


def _expert_note(e: int, width: int) -> tuple[str, str]:
    return "Step 6", f"expert {e} on the m tokens routed to it: (m, d) -> (m, {width}) -> (m, d)"


class Expert(nn.Module):
    """One routed expert as a per-expert checkpoint stores it: down(glu(gate x, up x))."""

    def __init__(self, spec: TextSpec, e: int, glu) -> None:
        super().__init__()
        m, d = spec.moe, spec.moe.latent or spec.hidden_size  # Nemotron-H's latent experts read the latent width
        w, self.glu = m.expert_intermediate, glu
        self.act = None if m.gated else activation(spec)  # Nemotron-H: down(act(up x)), no gate
        for name, shape in (("gate", (w, d)), ("up", (w, d)), ("down", (d, w)))[0 if m.gated else 1:]:
            setattr(self, name + "_weight", nn.Parameter(torch.empty(shape)))
            setattr(self, name + "_bias", nn.Parameter(torch.empty(shape[0])) if m.expert_bias else None)
        note(self, *_expert_note(e, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act is not None:
            return F.linear(self.act(F.linear(x, self.up_weight, self.up_bias)), self.down_weight, self.down_bias)
        h = self.glu(F.linear(x, self.gate_weight, self.gate_bias), F.linear(x, self.up_weight, self.up_bias))
        return F.linear(h, self.down_weight, self.down_bias)  # (m, d)


class UpDown(nn.Module):
    """Nemotron-H's shared expert: down(act(up x)), biased by mlp_bias."""

    def __init__(self, spec: TextSpec, width: int) -> None:
        super().__init__()
        self.act, bias = activation(spec), spec.mlp_bias
        self.up = linear(spec, spec.hidden_size, width, bias, "Step 6", "shared expert up")
        self.down = linear(spec, width, spec.hidden_size, bias, "Step 6", "shared expert down")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))  # (b, n, d)


class ExpertList(nn.ModuleList):
    """The routed experts of a layer, one module each (`experts.{e}`)."""

    def run(self, e: int, x: torch.Tensor) -> torch.Tensor:
        return self[e](x)


class ExpertStandIn(ExpertList):
    """Shapes only (a trace on the meta device): expert 0, built once, stands for each of the layer's
    `count` experts, which on meta all have its shapes and no values. A 512-expert layer builds one
    module instead of 512; the trace, which runs expert 0 on meta, records the same steps."""

    def __init__(self, expert: Expert, count: int) -> None:
        super().__init__([expert])
        self.count = count

    def run(self, e: int, x: torch.Tensor) -> torch.Tensor:
        if not 0 <= e < self.count:
            raise IndexError(f"expert {e} of {self.count}")
        return self[0](x)


class ExpertSlot(nn.Module):
    """Expert e of a fused tensor: no parameters of its own, so that hooks see each expert."""

    def __init__(self, e: int, width: int, glu, interleaved: bool) -> None:
        super().__init__()
        self.glu, self.interleaved = glu, interleaved
        note(self, *_expert_note(e, width))

    def forward(self, x, gate_up, gate_up_bias, down, down_bias) -> torch.Tensor:
        h = x @ gate_up  # (m, 2 d_e)
        if gate_up_bias is not None:
            h = h + gate_up_bias
        gate, up = (h[..., ::2], h[..., 1::2]) if self.interleaved else h.chunk(2, dim=-1)  # (m, d_e) each
        y = self.glu(gate, up) @ down  # (m, d)
        return y + down_bias if down_bias is not None else y


class FusedExperts(nn.ModuleList):
    """All experts of a layer as gpt-oss and Llama 4 store them: gate_up (E, d, 2 d_e), down (E, d_e, d)."""

    def __init__(self, spec: TextSpec, glu) -> None:
        m, d = spec.moe, spec.hidden_size
        e, w = m.num_experts, m.expert_intermediate
        interleaved = m.routing.expert_act == "clamped_swiglu"
        super().__init__(ExpertSlot(i, w, glu, interleaved) for i in range(e))
        self.out_in = m.fused_out_in  # Granite 4.0-H: gate_up (E, 2 d_e, d) and down (E, d, d_e), Linear layout
        self.gate_up = nn.Parameter(torch.empty((e, 2 * w, d) if self.out_in else (e, d, 2 * w)))
        self.down = nn.Parameter(torch.empty((e, d, w) if self.out_in else (e, w, d)))
        self.gate_up_bias = nn.Parameter(torch.empty(e, 2 * w)) if m.expert_bias else None
        self.down_bias = nn.Parameter(torch.empty(e, d)) if m.expert_bias else None

    def run(self, e: int, x: torch.Tensor) -> torch.Tensor:
        def pick(p):
            return None if p is None else p[e]

        gate_up, down = (self.gate_up[e].T, self.down[e].T) if self.out_in else (self.gate_up[e], self.down[e])
        return self[e](x, gate_up, pick(self.gate_up_bias), down, pick(self.down_bias))  # (d, 2 d_e), (d_e, d)


# --------------------------------------------------------------------------- the block


class MoE(nn.Module):
    """Router -> top-k weights and ids -> the chosen experts on their tokens -> weighted sum (+ shared)."""

    def __init__(self, spec: TextSpec, layer: int, shapes_only: bool = False) -> None:
        super().__init__()
        m, d = spec.moe, spec.hidden_size
        r = m.routing
        if r.rule not in ROUTES:
            raise InspectError(f"{spec.model_type}: the reference model has no forward pass for the "
                               f"'{r.rule}' routing rule yet (it has: {', '.join(ROUTES)})")
        if m.top_k is None or (r.rule == "sparsemixer" and m.top_k != 2):
            raise InspectError(f"{spec.model_type}: experts per token must be {'2' if m.top_k else 'given'} "
                               f"for the '{r.rule}' routing rule, got {m.top_k}")
        self.route, self.routing, self.k, self.n_experts = ROUTES[r.rule][0], r, m.top_k, m.num_experts
        self.router = linear(spec, d, m.num_experts, m.router_bias, "Step 6", "router logits (b, n, E)")
        if m.score_bias:
            shape = (1, m.num_experts) if m.score_bias_param else (m.num_experts,)  # ERNIE 4.5 stores (1, E)
            self.register_buffer("score_bias", torch.zeros(shape))  # e_score_correction_bias
        rule = ROUTES[r.rule][1] + (" (the selection bias added for the choice only)"
                                    if m.score_bias and "bias" not in ROUTES[r.rule][1] else "")  # ERNIE 4.5
        self.topk_weights = Tap("Step 6", f"routing weights (b, n, k), k = {m.top_k}: {rule}")
        self.topk_ids = Tap("Step 6", "chosen expert ids (b, n, k)")
        self.tokens_per_expert = Tap("Step 6", f"tokens each of the {m.num_experts} experts received (E,)", values=True)
        if m.latent:  # Nemotron-H: experts run in the latent width, between fc1 (d -> latent) and fc2 (back)
            self.latent_in = linear(spec, d, m.latent, spec.mlp_bias, "Step 6", f"to the experts' latent width {m.latent}")
            self.latent_out = linear(spec, m.latent, d, spec.mlp_bias, "Step 6", "experts' sum back to d")
        glu = _glu(spec)
        if m.fused:
            self.experts = FusedExperts(spec, glu)
        elif shapes_only:
            self.experts = ExpertStandIn(Expert(spec, 0, glu), m.num_experts)
        else:
            self.experts = ExpertList(Expert(spec, e, glu) for e in range(m.num_experts))
        if m.shared_intermediate:
            fused = "shared_gate_up" in spec.names  # Granite 4.0-H's shared_mlp.input_linear: [gate | up]
            plain = replace(spec, mlp="gated_fused" if fused else "gated", mlp_bias=spec.mlp_bias and m.shared_bias)
            shared = MLP(plain, m.shared_intermediate) if m.gated else UpDown(spec, m.shared_intermediate)
            self.shared = note(shared, "Step 6", f"shared expert on every token (b, n, d), width {m.shared_intermediate}")
        if m.shared_expert_gate:
            self.shared_gate = linear(spec, d, 1, False, "Step 6", "shared expert gate: sigmoid(x W) (b, n, 1)")
        self.meta_stand_in = Tap("Step 6", "meta device, no routing decisions: expert 0 stands for the chosen "
                                 "experts, run on all b n tokens for its shapes")
        self.combined = Tap("Step 6", "each token's experts summed with their weights"
                            + (" plus the shared expert" if m.shared_intermediate else "") + ": back to (b, n, d)")
        note(self, "Step 6", "mixture-of-experts output")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        logits = self.router(x)  # (b, n, E)
        weights, ids = self.route(logits, getattr(self, "score_bias", None), self.routing, self.k)
        weights, ids = self.topk_weights(weights.to(x.dtype)), self.topk_ids(ids)  # (b, n, k) each
        flat_ids = ids.reshape(-1)  # (b n k,)
        counts = torch.zeros(self.n_experts, dtype=torch.long, device=x.device)
        counts = self.tokens_per_expert(counts.scatter_add_(0, flat_ids, torch.ones_like(flat_ids)))  # (E,)
        inner = self.latent_in(x) if hasattr(self, "latent_in") else x  # (b, n, latent or d)
        out = self._routed(inner.reshape(b * n, -1), weights.reshape(-1, self.k), ids.reshape(-1, self.k), counts)
        out = out.view(b, n, -1)  # (b, n, latent or d)
        if hasattr(self, "latent_out"):
            out = self.latent_out(out)  # (b, n, d)
        if hasattr(self, "shared"):
            shared = self.shared(x)  # (b, n, d)
            if hasattr(self, "shared_gate"):
                shared = torch.sigmoid(self.shared_gate(x)) * shared
            out = out + shared
        return self.combined(out)  # (b, n, d)

    def _routed(self, x: torch.Tensor, weights: torch.Tensor, ids: torch.Tensor, counts: torch.Tensor):
        """x (T, d), weights and ids (T, k) -> sum over each token's experts (T, d)."""
        out = torch.zeros_like(x)
        if x.is_meta:  # no routing decisions without values: expert 0 stands for them, on every token
            return out + self.meta_stand_in(self.experts.run(0, x))
        for e in counts.nonzero().flatten().tolist():
            token, slot = torch.where(ids == e)  # (m,) each: which tokens chose e, and in which of their k slots
            w = weights[token, slot, None]  # (m, 1)
            if self.routing.weight_input:
                y = self.experts.run(e, x[token] * w)  # (m, d)
            else:
                y = self.experts.run(e, x[token]) * w  # (m, d)
            out.index_add_(0, token, y.to(out.dtype))
        return out


# Inventory roles of the MoE part -> parameter path under `layers.{i}.mlp.`.
MOE_ROLES: dict[str, Callable[[str, int | None], str]] = {
    "router": lambda role, e: role,
    "router_score_bias": lambda role, e: "score_bias",
    **{f"expert_{p}": (lambda role, e, p=p: f"experts.{e}.{p}_{role.partition('.')[2]}") for p in ("gate", "up", "down")},
    **{f"experts_{p}": (lambda role, e, p=p: f"experts.{p}") for p in ("gate_up", "gate_up_bias", "down", "down_bias")},
    **{f"shared_{p}": (lambda role, e, p=p: f"shared.{p}.{role.partition('.')[2]}")
       for p in ("gate", "up", "down", "gate_up")},
    "shared_expert_gate": lambda role, e: "shared_gate." + role.partition(".")[2],
    "moe_latent_in": lambda role, e: "latent_in." + role.partition(".")[2],
    "moe_latent_out": lambda role, e: "latent_out." + role.partition(".")[2],
}
FEED_FORWARD_ROLES = {**MLP_ROLES, **MOE_ROLES}


def feed_forward_for(spec: TextSpec, layer: int, shapes_only: bool = False) -> nn.Module:
    """The feed-forward part of `layer`: the family's MLP, or (MoE layers) a router and experts
    (`shapes_only`: expert 0 standing for all, ExpertStandIn)."""
    if spec.per_layer is not None:  # Gemma 3n / 4: the layer's own width and sparsity (Gemma 4's experts sit beside)
        return MLP(spec, spec.mlp_width(layer), spec.per_layer.sparsity[layer])
    if spec.is_moe_layer(layer):
        return MoE(spec, layer, shapes_only)
    return (PlainMLP if spec.mlp == "plain" else MLP)(spec, spec.intermediate_size)
