"""The Qwen-VL vision towers on packed patches (Qwen2-VL, Qwen2.5-VL, Qwen3-VL).

*Implementations of Large Language Models* section 2.1.

pixel_values (n_img, C*d_t_patch*d_patch^2) and grid_thw (images, 3) -> (n_img/n_merge^2, d):
3D-conv patch embedding (Step 6), Qwen3-VL's learned position embedding interpolated to each grid,
2D RoPE over (row, column) in merge-window order (Step 7), the blocks (Steps 8-10) with attention
inside each image, or (Qwen2.5-VL) inside windows of `window_size` pixels except in the full-attention
blocks, then the patch merger (Step 11) and Qwen3-VL's DeepStack mergers on chosen blocks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inspector.reference.layers import Tap, note
from inspector.reference.projectors import DeepstackMerger, QwenMerger
from inspector.reference.vision_blocks import VisionBlock, block_mask, rope_2d
from inspector.spec.vision import VisionSpec


def window_order(v: VisionSpec, grid_thw: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Qwen2.5-VL: the merge groups reordered window by window (windows of window_size pixels, row by
    row), and each window's size in patches."""
    m, win = v.projector.merge_size, v.encoder.window_size // v.projector.merge_size // v.encoder.embed.patch_size
    order, sizes, offset = [], [], 0
    for t, h, w in grid_thw.tolist():
        gh, gw = h // m, w // m
        index = torch.arange(t * gh * gw).reshape(t, gh, gw)
        pad_h, pad_w = win - gh % win, win - gw % win
        padded = F.pad(index, (0, pad_w, 0, pad_h), value=-100)
        nh, nw = (gh + pad_h) // win, (gw + pad_w) // win
        padded = padded.reshape(t, nh, win, nw, win).permute(0, 1, 3, 2, 4).reshape(t, nh * nw, win * win)
        counts = (padded != -100).sum(-1).reshape(-1)  # merge groups per window
        order.append(padded.reshape(-1)[padded.reshape(-1) != -100] + offset)
        sizes += [int(c) * m * m for c in counts if c > 0]
        offset += t * gh * gw
    return torch.cat(order), sizes


def _merge_order(x: torch.Tensor, order: torch.Tensor, unit: int) -> torch.Tensor:
    """Reorder rows of x (n, ...) by merge group: groups of `unit` consecutive rows move together."""
    n = x.shape[-2]
    return x.reshape(*x.shape[:-2], n // unit, unit, x.shape[-1])[..., order.to(x.device), :, :].reshape(x.shape)


class QwenViT(nn.Module):
    """pixel_values (n_img, C*d_t_patch*d_patch^2) and grid_thw (images, 3) -> (n_img/n_merge^2, d)."""

    def __init__(self, v: VisionSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        enc = v.encoder
        emb = enc.embed
        self.spec = v
        p, tp = emb.patch_size, emb.temporal_patch_size
        with torch.device(device):
            self.patch_embed = note(nn.Conv3d(emb.in_channels, enc.hidden_size, (tp, p, p), stride=(tp, p, p),
                                              bias=emb.conv_bias, dtype=dtype), "Step 6", "3D convolution")
            if emb.pos_layout == "embedding":
                self.pos_embed = nn.Embedding(emb.num_positions, enc.hidden_size, dtype=dtype)
            self.blocks = nn.ModuleList(VisionBlock(v).to(dtype) for _ in range(enc.depth))
            self.merger = QwenMerger(v).to(dtype)
            self.deepstack = nn.ModuleList(DeepstackMerger(_postshuffle(v)).to(dtype) for _ in enc.deepstack_layers)
        self.patches = Tap("Step 6", "patches as 3D-conv input (n_img, C, d_t_patch, d_patch, d_patch)")
        self.embedded = Tap("Step 6", "3D convolution, stride = kernel: (n_img, d_img)")
        self.positioned = Tap("Step 7", "learned position embedding, interpolated to the grid, added")
        self.rope = Tap("Step 7", "vision 2D RoPE cos (1, n_img, d_h): row angles, then column angles")
        self.windows = Tap("Step 8", "patches regrouped window by window (window attention)")
        self.deepstack_out: list[torch.Tensor] = []

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        return self.merge(self.encode(pixel_values, grid_thw))  # (n_img/n_merge^2, d)

    def features(self, pixel_values: torch.Tensor, layout: Any, grid_thw: torch.Tensor) -> torch.Tensor:
        return self(pixel_values, grid_thw)  # (n_img/n_merge^2, d)

    def positions(self, grid_thw: torch.Tensor) -> torch.Tensor:
        """(row, column) of every patch, in the merge-window order of pixel_values: (n_img, 2)."""
        m, out = self.spec.projector.merge_size, []
        for t, h, w in grid_thw.tolist():
            rows = torch.arange(h)[:, None].expand(h, w)  # (h, w)
            cols = torch.arange(w)[None, :].expand(h, w)  # (h, w)
            rows = rows.reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()  # (h*w,) window order
            cols = cols.reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()  # (h*w,)
            out.append(torch.stack([rows, cols], dim=-1).repeat(t, 1))  # (t*h*w, 2)
        return torch.cat(out)  # (n_img, 2)

    def learned_positions(self, grid_thw: torch.Tensor) -> torch.Tensor:
        """Qwen3-VL: the (side x side) position table bilinearly resized to each grid, merge-window order."""
        v, m = self.spec, self.spec.projector.merge_size
        side = int(v.encoder.embed.num_positions ** 0.5)
        table = self.pos_embed.weight.reshape(side, side, -1).permute(2, 0, 1)[None]  # (1, d, side, side)
        out = []
        for t, h, w in grid_thw.tolist():
            g = F.interpolate(table.float(), size=(h, w), mode="bilinear", align_corners=True)[0]  # (d, h, w)
            g = g.permute(1, 2, 0).reshape(h // m, m, w // m, m, -1).permute(0, 2, 1, 3, 4).reshape(h * w, -1)
            out.append(g.repeat(t, 1))  # (t*h*w, d)
        return torch.cat(out).to(table.dtype)  # (n_img, d)

    def encode(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """Steps 6-10: patch embedding, positions and the encoder blocks, (n_img, d_img)."""
        v, unit = self.spec, self.spec.projector.merge_size ** 2
        enc = v.encoder
        emb = enc.embed
        x = pixel_values.view(-1, emb.in_channels, emb.temporal_patch_size, emb.patch_size, emb.patch_size)
        x = self.patches(x.to(self.patch_embed.weight.dtype))  # (n_img, C, d_t_patch, d_patch, d_patch): Step 6
        x = self.embedded(self.patch_embed(x).view(-1, enc.hidden_size))  # (n_img, d_img)
        if hasattr(self, "pos_embed"):
            x = self.positioned(x + self.learned_positions(grid_thw).to(x.device, x.dtype))  # (n_img, d_img)
        cos, sin = rope_2d(v, self.positions(grid_thw), x.dtype, x.device)  # (1, n_img, d_h) each: Step 7
        self.rope(cos)
        images = (grid_thw[:, 0] * grid_thw[:, 1] * grid_thw[:, 2]).tolist()
        full, windowed, order = block_mask(images, x.dtype, x.device), None, None
        if enc.window_size:
            order, sizes = window_order(v, grid_thw)
            x, cos, sin = (_merge_order(t, order, unit) for t in (x, cos, sin))
            windowed = block_mask(sizes, x.dtype, x.device)
            self.windows(x)
        x, self.deepstack_out = x[None], []  # (1, n_img, d_img): the images are one packed sequence
        for i, block in enumerate(self.blocks):  # Steps 8-10
            full_attention = not enc.window_size or i in enc.fullatt_blocks
            x = block(x, (cos, sin), full if full_attention else windowed)  # (1, n_img, d_img)
            if i in enc.deepstack_layers:
                self.deepstack_out.append(self.deepstack[enc.deepstack_layers.index(i)](x[0]))
        self._order = order
        return x[0]  # (n_img, d_img)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        """Step 11, the patch merger: (n_img, d_img) -> (n_img/n_merge^2, d), back in image order."""
        out = self.merger(x)  # (n_img/n_merge^2, d)
        order = getattr(self, "_order", None)
        if order is not None:
            back = torch.argsort(order)
            out = out[back.to(out.device)]
            self.deepstack_out = [f[back.to(f.device)] for f in self.deepstack_out]
        return out


def _postshuffle(v: VisionSpec) -> VisionSpec:
    """The DeepStack mergers' spec: a LayerNorm over n_merge^2 d_img (after the concatenation)."""
    from dataclasses import replace

    return replace(v, projector=replace(v.projector, norm_size=v.projector.in_size))
