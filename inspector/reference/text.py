"""The reference decoder LLM: small nn.Modules built from a TextSpec, forwards that follow the document.

Steps of section 1.2.3 of *Implementations of Large Language Models*: embedding (Step 4), per block
norm -> Q/K/V -> RoPE -> masked attention -> W_o -> residual (Step 5), norm -> MLP -> residual
(Step 6), N blocks (Step 7), final norm (Step 8), LM head to logits (b, n, n_v) (Step 9). The KV
cache and causal mask are those of 1.2.5; RoPE is rotate-half (Appendix A).

A layer is composed of parts picked by spec fields, never by family name: the attention kind
(inspector.reference.attention, .mla), the feed-forward kind (inspector.reference.mlp, .moe), the norm kind
and where the norms sit (the `Placement` record: pre-norm, Gemma's sandwich, OLMo 2's post-norm, or
parallel attention and MLP). New maths is one new part; a family that reuses parts needs no code here.

`TextModel(spec, device="meta")` allocates nothing: a 405B spec builds and runs on meta in seconds.
Parameters are named by role (`layers.{i}.attn.q.weight`); `param_name(role, layer)` maps an
inventory role to that name, which is how inspector.reference.load fills the model.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterator

import torch
from torch import nn

from inspector.errors import InspectError
from inspector.reference.attention import ATTENTION_PATHS, ATTENTION_ROLES, attention_for
from inspector.reference.layers import KVCache, RotaryEmbedding, Tap, causal_mask, make_norm, note
from inspector.reference.moe import FEED_FORWARD_ROLES, feed_forward_for
from inspector.reference.per_layer import GemmaBlock, ModelExtras, extra_param_name
from inspector.reference.ssm import MIXERS, SSM_ROLES
from inspector.spec.norms import PLACEMENTS
from inspector.spec.text import TextSpec

# Inventory roles that are not inside attention or the feed-forward part -> parameter path.
TOP_ROLES = {"embed": "embed.weight", "pos_embed": "pos_embed.weight", "lm_head": "lm_head.weight",
             "lm_head.bias": "lm_head.bias"}
NORM_ROLES = frozenset(role for p in PLACEMENTS.values() for role in p.roles)  # a layer's norms


def param_name(role: str, layer: int | None = None, expert: int | None = None) -> str:
    """TextModel parameter name of an inventory role, e.g. ("q.weight", 3) -> "layers.3.attn.q.weight"."""
    if role in TOP_ROLES:
        return TOP_ROLES[role]
    part, _, kind = role.partition(".")
    if part == "final_norm":
        return f"norm.{kind}"
    if part in NORM_ROLES:
        return f"layers.{layer}.{part}.{kind}"
    if part in ATTENTION_PATHS:
        return f"layers.{layer}.attn.{ATTENTION_PATHS[part]}.{kind}"
    if part in ATTENTION_ROLES:
        return f"layers.{layer}.attn.{role}"
    if part in SSM_ROLES:
        return f"layers.{layer}.ssm.{role}"
    if part in FEED_FORWARD_ROLES:
        return f"layers.{layer}.mlp.{FEED_FORWARD_ROLES[part](role, expert)}"
    if extra_param_name(role, layer, expert) is not None:  # Gemma 3n / 4: PLE, AltUp, LAuReL, layer scalar
        return extra_param_name(role, layer, expert)
    raise InspectError(f"weight role {role!r} has no parameter in the reference model")


class Block(nn.Module):
    """One decoder layer (Steps 5 and 6), with both residual additions in sight."""

    def __init__(self, spec: TextSpec, layer: int, shapes_only: bool = False) -> None:
        super().__init__()
        p = spec.placement  # its norms around attention (Step 5) and the MLP (Step 6), inspector.spec.norms
        self.parallel = p.parallel
        for step, roles in (("Step 5", p.before_attn + p.after_attn), ("Step 6", p.before_mlp + p.after_mlp)):
            for role in roles:
                setattr(self, role, make_norm(spec, spec.hidden_size, step))
        # Nemotron-H: a layer is one block, a mixer (attention, Mamba2) or a feed-forward part (MLP, experts);
        # Falcon-H1: attention and Mamba2 side by side
        mixer = not spec.blocks or spec.blocks[layer] in ("attention", "linear")
        ssm = mixer and spec.is_linear_layer(layer) and spec.linear.kind in MIXERS
        self.ssm = MIXERS[spec.linear.kind](spec, layer) if ssm else None
        self.attn = attention_for(spec, layer) if mixer and (not ssm or spec.linear.parallel) else None
        self.mlp = feed_forward_for(spec, layer, shapes_only) if spec.has_feed_forward(layer) else None
        self.mup = spec.mup
        self.residual_scale = spec.multipliers[2]
        self.after_attn = Tap("Step 5", "residual: x + attention")
        note(self, "Step 7", "decoder layer output: x + FFN (residual)")

    def _norm(self, role: str, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, role)(x) if hasattr(self, role) else x

    def _mix(self, h, rope, mask, cache) -> torch.Tensor:
        """The token mixer(s) on the normed input: attention, a state-space mixer, or (Falcon-H1) both, each
        scaled by its muP multipliers."""
        if self.attn is None or self.ssm is None:
            return (self.attn if self.attn is not None else self.ssm)(h, rope, mask, cache)  # (b, n, d)
        m = self.mup
        return (m.ssm_out * self.ssm(h, rope, mask, cache)
                + m.attention_out * self.attn(h * m.attention_in, rope, mask, cache))  # (b, n, d)

    def forward(self, x, rope, mask, cache: KVCache | None = None) -> torch.Tensor:
        s = self.residual_scale
        if self.parallel:  # attention and MLP both read the (same or own) norm of x
            h = self._norm("attn_norm", x)
            m = self._norm("mlp_norm", x) if hasattr(self, "mlp_norm") else h
            return x + self.attn(h, rope, mask, cache) + self.mlp(m)  # (b, n, d)
        if self.attn is None and self.ssm is None:  # a feed-forward block behind the layer's one norm
            return x + s * self.mlp(self._norm("attn_norm", x))  # (b, n, d)
        a = self._norm("post_attn_norm", self._mix(self._norm("attn_norm", x), rope, mask, cache))  # (b, n, d)
        if self.mlp is None:  # a mixer block
            return self.after_attn(x + s * a)  # (b, n, d)
        x = self.after_attn(x + s * a)  # (b, n, d)
        return x + s * self._norm("post_mlp_norm", self.mlp(self._norm("mlp_norm", x)))  # (b, n, d)


def _embedding(n: int, d: int, dtype: torch.dtype, device: Any) -> nn.Embedding:
    """nn.Embedding(n, d); on the meta device without its random init, which has no values to set there
    and whose normal_ imports torch._dynamo (~1.4 s of every `inspect run`/`trace`, which build on meta)."""
    if torch.device(device).type == "meta":
        return nn.Embedding(n, d, _weight=torch.empty(n, d, dtype=dtype, device="meta"))
    return nn.Embedding(n, d, dtype=dtype)


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Floating tensors made without a dtype are made in `dtype` inside the block (restored after)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _in_dtype(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """`module` with every floating parameter and buffer in `dtype`; converted only where one is not
    (`.to` walks every submodule: 3.7 s of the 80B Qwen3-Next's 24,576 experts on meta)."""
    tensors = [*module.parameters(), *module.buffers()]
    if any(t.is_floating_point() and t.dtype != dtype for t in tensors):
        return module.to(dtype)
    return module


class TextModel(nn.Module):
    """Token ids (b, n) -> logits (b, n, n_v), Steps 4 to 9; with a KVCache, n new tokens after it."""

    def __init__(self, spec: TextSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32,
                 shapes_only: bool = False) -> None:
        """`shapes_only` (meta traces): each MoE layer builds expert 0 to stand for all its experts
        (moe.ExpertStandIn); a model to load weights into, or to count FLOPs of every expert, builds all."""
        super().__init__()
        self.spec = spec
        if shapes_only and torch.device(device).type != "meta":
            raise InspectError(f"shapes_only builds on the meta device, not {device}")
        with torch.device(device):
            self.embed = note(_embedding(spec.vocab_size, spec.hidden_size, dtype, device),
                              "Step 4", "embedding lookup: ids (b, n) -> (b, n, d)"
                              + (" times sqrt(d)" if spec.embed_scale else ""))
            if spec.learned_positions:
                self.pos_embed = note(_embedding(spec.max_position_embeddings, spec.hidden_size, dtype, device),
                                      "Step 4", "learned position embedding added")
            block = GemmaBlock if spec.per_layer is not None else Block
            with _default_dtype(dtype):  # built in `dtype`: no second pass over every module to convert it
                self.layers = nn.ModuleList(_in_dtype(block(spec, i, shapes_only), dtype)
                                            for i in range(spec.num_layers))
                if spec.per_layer is not None:
                    self.extras = ModelExtras(spec, dtype)
                self.norm = _in_dtype(make_norm(spec, spec.hidden_size, "Step 8", "final " + spec.norm.label), dtype)
            self.lm_head = note(nn.Linear(spec.hidden_size, spec.vocab_size, bias=spec.lm_head_bias, dtype=dtype),
                                "Step 9", "LM head: logits (b, n, n_v)")
        self._share_kv()
        if not spec.learned_positions:  # (Gemma 4: the full layers' own head_dim)
            full = next((i for i in range(spec.num_layers) if spec.window(i) is None), 0)
            self.rope = note(RotaryEmbedding(spec.at_layer(full)), "Step 5",
                             "RoPE cos, sin: (1, n, d_h) each; (b, n, d_h) for per-row positions")
        if spec.rope_local_theta is not None:  # Gemma 3: sliding layers rotate with their own base
            local = replace(spec, rope_theta=spec.rope_local_theta, rope_scaling=None)
            self.rope_local = note(RotaryEmbedding(local), "Step 5", "RoPE cos, sin of the sliding layers")
        self.positions = Tap("Step 5", "position ids of the new tokens (left padding skipped)")
        self.mask = Tap("Mask", "attention mask M: 0 where allowed, min where masked (causal, padding)")
        self.tie()

    def _share_kv(self) -> None:
        """Gemma 3n / 4: one dict through which a KV-shared layer reads its source layer's keys and values."""
        share: dict = {}
        for block in self.layers:
            if hasattr(block.attn, "share"):
                block.attn.share = share

    def tie(self) -> None:
        """A tied LM head is the embedding matrix itself (one Parameter)."""
        if self.spec.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def new_cache(self) -> KVCache:
        return KVCache(self.spec.num_layers)

    def _embed(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        t = self.spec
        x = self.embed(ids)  # (b, n, d)
        if t.embed_scale:
            x = x * torch.tensor(t.hidden_size**0.5, dtype=x.dtype)
        if t.multipliers[0] != 1.0:
            x = x * t.multipliers[0]
        if t.learned_positions:
            x = x + self.pos_embed(positions)  # (b, n, d)
        return x

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        t = self.spec
        logits = self.lm_head(self.norm(x))  # (b, n, n_v)
        if t.multipliers[3] != 1.0:
            logits = logits * t.multipliers[3]
        if t.final_softcap:
            logits = torch.tanh(logits / t.final_softcap) * t.final_softcap
        return logits

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None, embeds: torch.Tensor | None = None,
                positions: torch.Tensor | None = None, last_only: bool = False,
                padding: torch.Tensor | None = None) -> torch.Tensor:
        """`embeds` (b, n, d) replaces the embedding lookup (a VLM's text embeddings with image features
        scattered in); `positions` replaces arange, e.g. Qwen2-VL's M-RoPE ids (3, b, n); `last_only`
        gives the logits of the last position only, (b, 1, n_v), all that generation samples from.

        `padding` (b, t+n): 1 for a real token, 0 for a pad, over the cached and the new positions
        (Steps 1 and 3: a left-padded batch). Pad keys are masked, and position ids count only real
        tokens, so each row sees what it would see alone.
        """
        b, n = ids.shape
        start = cache.length if cache is not None else 0
        if positions is None:
            if padding is not None:  # (b, t+n): a row's first real token gets position 0
                positions = (padding.long().cumsum(-1) - 1).clamp(min=0)[:, start:]  # (b, n)
            else:
                positions = torch.arange(start, start + n, device=ids.device)  # (n,)
        x = self._embed(ids, positions) if embeds is None else embeds  # (b, n, d)
        per_layer = self.extras.inputs(ids, x) if hasattr(self, "extras") else None  # (b, n, L, p) or None
        if hasattr(self, "extras"):
            x = self.extras.expand(x)  # Gemma 3n: (k, b, n, d) AltUp streams
        positions = self.positions(positions)  # (n,), (b, n) or M-RoPE's (3, b, n)
        ropes = {key: getattr(self, name)(positions, x.dtype)  # cos, sin: (1 or b, n, d_rot) each
                 for key, name in (("", "rope"), ("local", "rope_local")) if hasattr(self, name)}
        masks: dict[tuple[int | None, int | None], torch.Tensor] = {}
        for i, block in enumerate(self.layers):
            key = (self.spec.window(i), self.spec.chunk(i))
            if key not in masks:  # (1 or b, 1, n, start+n)
                masks[key] = self.mask(causal_mask(start, n, key[0], x.dtype, ids.device, chunk=key[1],
                                                   padding=padding))
            if per_layer is None:
                x = block(x, ropes, masks[key], cache)  # (b, n, d)
            else:
                x = block(x, ropes, masks[key], cache, per_layer[:, :, i])  # (b, n, d) or (k, b, n, d)
        if hasattr(self, "extras"):
            x = self.extras.collapse(x)  # (b, n, d)
        return self._logits(x[:, -1:] if last_only else x)  # (b, n or 1, n_v)
