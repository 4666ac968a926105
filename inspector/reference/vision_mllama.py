"""The Mllama (Llama 3.2 Vision) tower: the tiles of one canvas -> cross-attention states.

pixel_values (max_tiles, C, S, S) of one image, its aspect-ratio id and how many tiles are real:
conv patch embedding (no bias), gated per-tile embedding, class token, gated position embedding plus a
per-arrangement tile-position embedding, LayerNorm, patches padded to a multiple of 8, the local
blocks (their inputs at `feature_layers` kept), LayerNorm, gated per-tile embedding, the gated global
blocks, padding removed, then the last output and the kept ones concatenated and projected:
(max_tiles * (patches + 1), d). The LLM reads them through its cross-attention layers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inspector.reference.layers import Tap, note
from inspector.reference.projectors import PROJECTOR_MODULES, ImageLayout
from inspector.reference.vision_blocks import VisionBlock, vision_norm
from inspector.spec.vision import VisionSpec


class MllamaViT(nn.Module):
    def __init__(self, v: VisionSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        enc = v.encoder
        emb = enc.embed
        self.spec = v
        d, n, t, rows = enc.hidden_size, emb.num_positions, emb.max_num_tiles, emb.num_aspect_ratios + 1
        with torch.device(device):
            self.patch_embed = note(nn.Conv2d(emb.in_channels, d, emb.patch_size, stride=emb.patch_size, bias=False,
                                              dtype=dtype), "Step 6", "patch embedding (convolution)")
            self.class_embed = nn.Parameter(torch.zeros(d, dtype=dtype))
            self.pos_embed = nn.Parameter(torch.zeros(n, d, dtype=dtype))
            self.pos_gate = nn.Parameter(torch.zeros(1, dtype=dtype))
            self.tile_pos = nn.Embedding(rows, t * n * d, dtype=dtype)
            self.pre_tile, self.post_tile = nn.Embedding(rows, t * d, dtype=dtype), nn.Embedding(rows, t * d, dtype=dtype)
            self.pre_tile_gate = nn.Parameter(torch.zeros(1, dtype=dtype))
            self.post_tile_gate = nn.Parameter(torch.zeros(1, dtype=dtype))
            self.pre_norm = vision_norm("layer_norm", d, enc.norm_eps).to(dtype)
            self.post_norm = vision_norm("layer_norm", d, enc.norm_eps).to(dtype)
            self.blocks = nn.ModuleList(VisionBlock(v).to(dtype) for _ in range(enc.depth))
            self.global_blocks = nn.ModuleList(VisionBlock(v, gated=True).to(dtype) for _ in range(enc.global_depth))
            self.merger = PROJECTOR_MODULES[v.projector.kind](v).to(dtype)
        self.patches = Tap("Step 6", "patch embeddings per tile: (tiles, patches, d_img)")
        self.embedded = Tap("Step 6", "tile, class and position embeddings added; patches padded to a multiple of 8")
        self.local = Tap("Step 10", "after the local blocks and LayerNorm")
        self.selected = Tap("Step 10", "last output + intermediate layers concatenated, padding removed")

    def _tile_embed(self, table: nn.Embedding, gate: nn.Parameter, x: torch.Tensor, aspect_id: int) -> torch.Tensor:
        emb = table(torch.tensor([aspect_id], device=table.weight.device)).reshape(self.spec.encoder.embed.max_num_tiles, 1, -1)
        return x + emb * gate.tanh()  # (tiles, n, d)

    def _mask(self, tiles: int, length: int, real: int, dtype: torch.dtype, device: Any) -> torch.Tensor | None:
        """Padded tiles and padding patches neither attend nor are attended to."""
        keep = torch.zeros(tiles, length, dtype=torch.bool)
        keep[:real, : self.spec.encoder.embed.num_positions] = True
        keep = keep.flatten()
        if bool(keep.all()):
            return None
        allowed = (keep[:, None] & keep[None, :]).to(device)
        return torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(~allowed, torch.finfo(dtype).min)[None, None]

    def encode(self, pixel_values: torch.Tensor, layout: ImageLayout) -> torch.Tensor:
        v = self.spec
        enc = v.encoder
        tiles, d = pixel_values.shape[0], enc.hidden_size
        x = self.patches(self.patch_embed(pixel_values.to(self.patch_embed.weight.dtype)).flatten(2).transpose(1, 2))
        x = self._tile_embed(self.pre_tile, self.pre_tile_gate, x, layout.aspect_id)  # (tiles, n-1, d)
        x = torch.cat([self.class_embed.reshape(1, 1, d).expand(tiles, 1, d), x], dim=1)  # (tiles, n, d)
        g = self.pos_gate.tanh()
        tile_pos = self.tile_pos(torch.tensor([layout.aspect_id], device=x.device)).reshape(tiles, enc.embed.num_positions, d)
        x = self.pre_norm(x + (1 - g) * self.pos_embed + g * tile_pos)  # (tiles, n, d)
        pad = (8 - x.shape[1] % 8) % 8
        x = self.embedded(F.pad(x, (0, 0, 0, pad)))  # (tiles, n + pad, d)
        length = x.shape[1]
        mask = self._mask(tiles, length, layout.tile_count, x.dtype, x.device)
        x, kept = x.reshape(1, tiles * length, d), []
        for i, block in enumerate(self.blocks):
            if i in enc.feature_layers:
                kept.append(x)
            x = block(x, None, mask)  # (1, tiles*(n+pad), d)
        x = self.local(self.post_norm(x)).reshape(tiles, length, d)
        x = self._tile_embed(self.post_tile, self.post_tile_gate, x, layout.aspect_id).reshape(1, tiles * length, d)
        for block in self.global_blocks:
            x = block(x, None, mask)  # (1, tiles*(n+pad), d)
        x = torch.cat([x, *kept], dim=-1).reshape(tiles, length, -1)  # (tiles, n + pad, d * (1 + k))
        return self.selected(x[:, : enc.embed.num_positions])  # (tiles, n, d * (1 + k))

    def features(self, pixel_values: torch.Tensor, layout: ImageLayout, grid_thw: Any = None) -> torch.Tensor:
        return self.merger(self.encode(pixel_values, layout), layout)  # (tiles * n, d)
