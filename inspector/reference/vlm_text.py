"""A VLM's language model: inspector.reference.text.TextModel plus what the image adds to it.

`VLMTextModel` is a TextModel (same parts, same parameter names) whose forward also takes
- `image_blocks` (b, n): each image token's image index, -1 for text. Gemma 3 lets the tokens of one
  image attend to each other both ways (on top of the causal and sliding-window masks);
- `deepstack`: Qwen3-VL's DeepStack features, added to the image tokens' rows after the first
  len(deepstack) layers;
- `cross_states` (b, m, d): Mllama's image, read by the cross-attention layers that replace the
  decoder layers listed in the ModelSpec's `cross_layers`.
Qwen3-VL's interleaved M-RoPE (`mrope_interleaved`) replaces the rotary table; Mllama's embedding has
`embed_extra` more rows than its LM head.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from inspector.reference.layers import RMSNorm, RotaryEmbedding, Tap, causal_mask, make_norm, note
from inspector.reference.moe import feed_forward_for
from inspector.reference.text import TextModel
from inspector.spec.model import ModelSpec
from inspector.spec.text import TextSpec


class InterleavedMRope(RotaryEmbedding):
    """Qwen3-VL: frequency j takes its angle from axis j % 3 within the height/width sections
    (t, h, w, t, h, w, ...), instead of one contiguous section per axis."""

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        if positions.dim() != 3:
            return super().forward(positions, dtype)
        freqs = positions[..., None].float() * self.inv_freq.to(positions.device)  # (3, b, n, d_h/2)
        out = freqs[0].clone()  # (b, n, d_h/2): temporal everywhere first
        for axis, offset in ((1, 1), (2, 2)):
            idx = slice(offset, self.mrope_section[axis] * 3, 3)
            out[..., idx] = freqs[axis, ..., idx]
        angles = torch.cat((out, out), dim=-1)  # (b, n, d_h)
        return (angles.cos() * self.attention_factor).to(dtype), (angles.sin() * self.attention_factor).to(dtype)


class CrossAttention(nn.Module):
    """Mllama: queries from the text, keys and values from the image states; q/k RMSNorm over d_h; no RoPE."""

    def __init__(self, t: TextSpec) -> None:
        super().__init__()
        d, self.n_h, self.n_kv, self.d_h = t.hidden_size, t.num_heads, t.num_kv_heads, t.head_dim
        self.q, self.o = nn.Linear(d, t.q_dim, bias=False), nn.Linear(t.q_dim, d, bias=False)
        self.k, self.v = nn.Linear(d, t.kv_dim, bias=False), nn.Linear(d, t.kv_dim, bias=False)
        self.q_norm, self.k_norm = RMSNorm(self.d_h, t.rms_norm_eps), RMSNorm(self.d_h, t.rms_norm_eps)
        self.probs = Tap("Step 5", "cross-attention weights: each text token over the image states")

    def forward(self, x: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        m = states.shape[1]
        q = self.q_norm(self.q(x).view(b, n, self.n_h, self.d_h)).transpose(1, 2)  # (b, n_h, n, d_h)
        k = self.k_norm(self.k(states).view(b, m, self.n_kv, self.d_h)).transpose(1, 2)  # (b, n_kv, m, d_h)
        v = self.v(states).view(b, m, self.n_kv, self.d_h).transpose(1, 2)  # (b, n_kv, m, d_h)
        k, v = k.repeat_interleave(self.n_h // self.n_kv, 1), v.repeat_interleave(self.n_h // self.n_kv, 1)
        probs = self.probs((q @ k.transpose(-2, -1) * self.d_h**-0.5).softmax(-1, dtype=torch.float32).to(q.dtype))
        return self.o((probs @ v).transpose(1, 2).reshape(b, n, -1))  # (b, n, d)


class CrossAttentionBlock(nn.Module):
    """Mllama's cross-attention decoder layer: x + tanh(g_a) * xattn(norm(x), image); x + tanh(g_m) * MLP(norm(x))."""

    def __init__(self, t: TextSpec, layer: int) -> None:
        super().__init__()
        self.attn_norm, self.attn = make_norm(t, t.hidden_size, "Step 5"), CrossAttention(t)
        self.mlp_norm, self.mlp = make_norm(t, t.hidden_size, "Step 6"), feed_forward_for(t, layer)
        self.attn_gate, self.mlp_gate = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
        self.after_attn = Tap("Step 5", "residual: x + tanh(gate) * cross-attention")
        self.states: torch.Tensor | None = None
        note(self, "Step 7", "cross-attention layer: the text reads the image")

    def forward(self, x, rope, mask, cache=None) -> torch.Tensor:
        if self.states is None:  # no image: the layer is skipped, as transformers does
            return x
        x = self.after_attn(x + self.attn_gate.tanh() * self.attn(self.attn_norm(x), self.states))  # (b, n, d)
        return x + self.mlp_gate.tanh() * self.mlp(self.mlp_norm(x))  # (b, n, d)


class VLMTextModel(TextModel):
    def __init__(self, spec: ModelSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> None:
        t = spec.text
        super().__init__(t, device, dtype)
        with torch.device(device):
            if spec.embed_extra:
                self.embed = note(nn.Embedding(t.vocab_size + spec.embed_extra, t.hidden_size, dtype=dtype),
                                  "Step 4", "embedding lookup (with the image token rows)")
            for i in spec.cross_layers:
                self.layers[i] = CrossAttentionBlock(t, i).to(dtype)
        if t.rope_scaling and t.rope_scaling.get("mrope_interleaved"):
            self.rope = note(InterleavedMRope(t), "Step 5", "interleaved M-RoPE cos, sin")
        self.deepstacked = Tap("Step 7", "DeepStack: vision features of an earlier encoder block added to the image rows")
        self._bidirectional = spec.image_attention == "bidirectional"

    def embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings as the LLM's own lookup makes them (Gemma: times sqrt(d))."""
        return self._embed(ids, torch.arange(ids.shape[1], device=ids.device))

    def _mask(self, window: int | None, n: int, blocks: torch.Tensor | None, dtype, device) -> torch.Tensor:
        mask = causal_mask(0, n, None, dtype, device)  # (1, 1, n, n)
        if blocks is None:
            return causal_mask(0, n, window, dtype, device)
        same = (blocks[:, :, None] == blocks[:, None, :]) & (blocks[:, :, None] >= 0)  # (b, n, n)
        mask = mask.masked_fill(same[:, None].to(device), 0.0)  # an image's tokens see each other both ways
        if window is not None:
            i, j = torch.arange(n, device=device)[:, None], torch.arange(n, device=device)[None, :]
            mask = mask.masked_fill(~(j > i - window), torch.finfo(dtype).min)
        return mask  # (b, 1, n, n)

    def forward(self, ids: torch.Tensor, cache=None, embeds: torch.Tensor | None = None,
                positions: torch.Tensor | None = None, image_blocks: torch.Tensor | None = None,
                deepstack: list[torch.Tensor] | None = None, cross_states: torch.Tensor | None = None) -> torch.Tensor:
        if cache is not None:  # decoding: the image is in the cache already
            return super().forward(ids, cache, embeds, positions)
        b, n = ids.shape
        positions = torch.arange(n, device=ids.device) if positions is None else positions
        x = self._embed(ids, positions) if embeds is None else embeds  # (b, n, d)
        ropes = {key: getattr(self, name)(positions, x.dtype)
                 for key, name in (("", "rope"), ("local", "rope_local")) if hasattr(self, name)}
        masks: dict[int | None, torch.Tensor] = {}
        is_image = image_blocks >= 0 if image_blocks is not None else None
        for i, block in enumerate(self.layers):
            window = self.spec.window(i)
            if window not in masks:
                masks[window] = self._mask(window, n, image_blocks if self._bidirectional else None, x.dtype, x.device)
            if isinstance(block, CrossAttentionBlock):
                block.states = cross_states
            x = block(x, ropes, masks[window])  # (b, n, d)
            if deepstack and i < len(deepstack):  # added to the image tokens' rows only
                extra = torch.zeros_like(x).masked_scatter(is_image[..., None], deepstack[i].to(x.dtype))
                x = self.deepstacked(x + extra)
        return self._logits(x)  # (b, n, n_v)
