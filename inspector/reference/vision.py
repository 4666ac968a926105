"""The reference vision towers, built from a VisionSpec.

*Implementations of Large Language Models* section 2.1, Steps 6-11.

Which tower a spec gets is data (`EncoderSpec.tower`, one entry of `TOWERS`):
- "packed": Qwen-VL's packed patches (inspector.reference.vision_qwen.QwenViT);
- "tiles": square encoder inputs (tiles, C, S, S): InternViT, SigLIP, CLIP, Idefics3 and Llama 4. Conv
  (or unfolded Linear) patch embedding, class token, learned positions, norm before the blocks,
  blocks (2D RoPE for Llama 4), norm after, then the projector of the spec's kind
  (inspector.reference.projectors);
- "image": one image of any size (Pixtral): conv, RMSNorm, 2D RoPE over the patch grid, blocks;
- "mllama": tiles of a canvas with gated position and tile embeddings (inspector.reference.vision_mllama).

Every tower exposes `features(pixel_values, layout)` -> (image tokens, d). Parameters are named by
inventory role (`vision_param_name`) and filled by `load_vision_weights`. Building on device="meta"
allocates nothing; forwards on meta give shapes only.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inspector.errors import InspectError
from inspector.inventory.vision import vision_inventory
from inspector.reference.layers import Tap, note
from inspector.reference.load import fill
from inspector.reference.projectors import PROJECTOR_MODULES, PROJECTOR_PARAMS, ImageLayout
from inspector.reference.vision_blocks import VisionBlock, block_mask, llama4_rope, rope_2d, vision_norm
from inspector.reference.vision_mllama import MllamaViT
from inspector.reference.vision_qwen import QwenViT
from inspector.spec.image_facts import LlavaAnyres
from inspector.spec.vision import VisionSpec


class _Tower(nn.Module):
    """The parts every non-packed tower shares: patch embedding, class token, positions, the norms."""

    def __init__(self, v: VisionSpec, dtype: torch.dtype) -> None:
        super().__init__()
        enc = v.encoder
        emb = enc.embed
        self.spec, d, p = v, enc.hidden_size, emb.patch_size
        if emb.patch_embed == "linear":  # Llama 4: unfolded patches through a Linear
            self.patch_embed = nn.Linear(emb.in_channels * p * p, d, bias=emb.conv_bias, dtype=dtype)
        else:
            self.patch_embed = nn.Conv2d(emb.in_channels, d, p, stride=p, bias=emb.conv_bias, dtype=dtype)
        note(self.patch_embed, "Step 6", "patch embedding (convolution, stride = kernel)")
        if emb.class_token:
            shape = (1, 1, d) if emb.class_layout == "param" else (d,)
            self.class_embed = nn.Parameter(torch.zeros(*shape, dtype=dtype))
        if emb.mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, d, dtype=dtype))  # stored, unused by the VLM
        if emb.pos_layout == "param":
            self.pos_embed = nn.Parameter(torch.zeros(1, emb.num_positions, d, dtype=dtype))
        elif emb.pos_layout == "table":
            self.pos_embed = nn.Parameter(torch.zeros(emb.num_positions, d, dtype=dtype))
        elif emb.pos_layout == "embedding":
            self.pos_embed = nn.Embedding(emb.num_positions, d, dtype=dtype)
        if enc.pre_norm:
            self.pre_norm = note(vision_norm(enc.edge_norm, d, enc.norm_eps).to(dtype), "Step 6", "norm before the blocks")
        if enc.post_norm:
            self.post_norm = note(vision_norm(enc.edge_norm, d, enc.norm_eps).to(dtype), "Step 10", "norm after the blocks")
        if enc.head:
            self.head = _unused_head(v, dtype)
        self.blocks = nn.ModuleList(VisionBlock(v).to(dtype) for _ in range(enc.depth))
        self.merger = PROJECTOR_MODULES[v.projector.kind](v).to(dtype)
        self.patches = Tap("Step 6", "patch embeddings, flattened: (tiles, patches, d_img)")
        drops = emb.class_token and not _keeps_class(v)
        self.embedded = Tap("Step 6", ("class token and " if emb.class_token else "") + "positions added: the encoder input"
                            if emb.pos_layout else "the encoder input")
        self.selected = Tap("Step 10", "encoder output the projector reads" + (" (class token dropped)" if drops else ""))


def _keeps_class(v: VisionSpec) -> bool:
    """LLaVA's "full" vision_feature_select_strategy: the projector reads the class token too."""
    return isinstance(v.image, LlavaAnyres) and v.image.strategy == "full"


class TileViT(_Tower):
    """pixel_values (tiles, C, S, S) -> (tiles * tokens per tile, d)."""

    def __init__(self, v: VisionSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> None:
        with torch.device(device):
            super().__init__(v, dtype)

    def position_embedding(self, gh: int, gw: int) -> torch.Tensor:
        """(1, [1 +] gh*gw, d): the learned positions, bicubic-resized when the grid is not the config's."""
        v = self.spec
        enc = v.encoder
        emb = enc.embed
        table = self.pos_embed.weight if isinstance(self.pos_embed, nn.Embedding) else self.pos_embed
        table = table.reshape(1, -1, enc.hidden_size)  # (1, n, d)
        cls = 1 if emb.class_token else 0
        side = emb.image_size // emb.patch_size
        head, grid = (table[:, :cls], table[:, cls:]) if not emb.class_at_end else (table[:, -1:], table[:, :-1])
        if (gh, gw) != (side, side):
            g = grid.float().reshape(1, side, side, -1).permute(0, 3, 1, 2)  # (1, d, side, side)
            g = F.interpolate(g, size=(gh, gw), mode="bicubic", align_corners=False)  # (1, d, gh, gw)
            grid = g.flatten(2).transpose(1, 2).to(table.dtype)  # (1, gh*gw, d)
        return torch.cat([grid, head] if emb.class_at_end else [head, grid], dim=1)

    def embed(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        v = self.spec
        enc = v.encoder
        emb = enc.embed
        x = pixel_values.to(self.patch_embed.weight.dtype)
        tiles, gh, gw = x.shape[0], x.shape[-2] // emb.patch_size, x.shape[-1] // emb.patch_size
        if emb.patch_embed == "linear":
            x = self.patch_embed(F.unfold(x, emb.patch_size, stride=emb.patch_size).transpose(1, 2))  # (tiles, n, d)
        else:
            x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (tiles, n, d)
        x = self.patches(x)
        if emb.class_token:
            cls = self.class_embed.reshape(1, 1, -1).expand(tiles, 1, -1)  # (tiles, 1, d)
            x = torch.cat([x, cls] if emb.class_at_end else [cls, x], dim=1)  # (tiles, 1 + n, d)
        if emb.pos_layout:
            x = x + self.position_embedding(gh, gw)  # (tiles, [1 +] n, d)
        return self.embedded(x), gh, gw

    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Steps 6-10: (tiles, C, S, S) -> (tiles, [1 +] patches, d_img)."""
        v = self.spec
        x, _, _ = self.embed(pixel_values)
        if v.encoder.pre_norm:
            x = self.pre_norm(x)
        rope = llama4_rope(v).to(x.device) if v.encoder.embed.rope == "llama4" else None
        for block in self.blocks:
            x = block(x, rope)  # (tiles, [1 +] n, d_img)
        if v.encoder.post_norm:
            x = self.post_norm(x)
        return x

    def select(self, x: torch.Tensor) -> torch.Tensor:
        """The class token leaves before the projector (kept only by LLaVA's "full" feature strategy)."""
        v = self.spec
        if not v.encoder.embed.class_token or _keeps_class(v):
            return self.selected(x)
        return self.selected(x[:, :-1] if v.encoder.embed.class_at_end else x[:, 1:])  # (tiles, patches, d_img)

    def features(self, pixel_values: torch.Tensor, layout: ImageLayout, grid_thw: Any = None) -> torch.Tensor:
        return self.merger(self.select(self.encode(pixel_values)), layout)  # (image tokens, d)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.select(self.encode(pixel_values))
        side = math.isqrt(x.shape[1])
        return self.merger(x, ImageLayout((0, 0), (side, side))).reshape(x.shape[0], -1, self.spec.projector.out_hidden_size)


class ImageViT(_Tower):
    """Pixtral: pixel_values (1, C, H, W) of any size -> (tokens, d); 2D RoPE over the patch grid."""

    def __init__(self, v: VisionSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> None:
        with torch.device(device):
            super().__init__(v, dtype)

    def encode(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        v = self.spec
        x = self.patch_embed(pixel_values.to(self.patch_embed.weight.dtype))  # (1, d_img, gh, gw)
        gh, gw = x.shape[-2:]
        x = self.patches(x.flatten(2).transpose(1, 2))  # (1, gh*gw, d_img)
        x = self.embedded(self.pre_norm(x)) if v.encoder.pre_norm else self.embedded(x)
        rows, cols = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
        rope = rope_2d(v, torch.stack([rows.flatten(), cols.flatten()], -1), x.dtype, x.device)
        for block in self.blocks:
            x = block(x, rope)  # (1, gh*gw, d_img)
        return self.selected(x[0]), (gh, gw)

    def features(self, pixel_values: torch.Tensor, layout: ImageLayout, grid_thw: Any = None) -> torch.Tensor:
        x, grid = self.encode(pixel_values)
        return self.merger(x, ImageLayout(layout.size, grid))  # (tokens, d)


def _unused_head(v: VisionSpec, dtype: torch.dtype) -> nn.Module:
    """SigLIP's attention-pooling head: stored in checkpoints, never used by the VLM."""
    d, w = v.encoder.hidden_size, v.encoder.intermediate_size
    head = nn.Module()
    head.probe = nn.Parameter(torch.zeros(1, 1, d, dtype=dtype))
    head.in_proj_weight = nn.Parameter(torch.zeros(3 * d, d, dtype=dtype))
    head.in_proj_bias = nn.Parameter(torch.zeros(3 * d, dtype=dtype))
    head.out_proj, head.layernorm = nn.Linear(d, d, dtype=dtype), nn.LayerNorm(d, dtype=dtype)
    head.fc1, head.fc2 = nn.Linear(d, w, dtype=dtype), nn.Linear(w, d, dtype=dtype)
    return head


# --------------------------------------------------------------------------- building and loading

TOWERS = {"packed": QwenViT, "tiles": TileViT, "image": ImageViT, "mllama": MllamaViT}

# Inventory role -> parameter path in the towers ("{}" = block index).
_BLOCK = {"norm1": "norm1", "norm2": "norm2", "qkv": "attn.qkv", "q": "attn.q", "k": "attn.k", "v": "attn.v",
          "q_norm": "attn.q_norm", "k_norm": "attn.k_norm", "proj": "attn.proj", "ls1": "ls1", "ls2": "ls2",
          "fc1": "mlp.fc1", "fc2": "mlp.fc2", "gate": "mlp.gate", "up": "mlp.up", "down": "mlp.down",
          "gate_attn": "gate_attn", "gate_ffn": "gate_ffn"}
VISION_PARAMS: dict[str, str] = {
    **{role: f"blocks.{{}}.{path}" for role, path in _BLOCK.items()},
    **{f"g_{role}": f"global_blocks.{{}}.{path}" for role, path in _BLOCK.items()},
    **{role: f"merger.{path}" for role, path in PROJECTOR_PARAMS.items()},
    **{f"deep_{r}": f"deepstack.{{}}.{r}" for r in ("norm", "fc1", "fc2")},
    **{r: r for r in ("patch_embed", "class_embed", "pos_embed", "mask_token", "pre_norm", "post_norm", "pos_gate",
                      "tile_pos", "pre_tile", "pre_tile_gate", "post_tile", "post_tile_gate")},
    "head_probe": "head.probe", "head_in_weight": "head.in_proj_weight", "head_in_bias": "head.in_proj_bias",
    "head_out": "head.out_proj", "head_norm": "head.layernorm", "head_fc1": "head.fc1", "head_fc2": "head.fc2",
}


def build_vision(v: VisionSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    return TOWERS[v.encoder.tower](v, device, dtype)


def vision_param_name(role: str, layer: int | None = None, expert: int | None = None) -> str:
    """Inventory role "vision.qkv.weight" of block 3 -> "blocks.3.attn.qkv.weight"."""
    role = role.removeprefix("vision.")
    base, _, suffix = role.partition(".")
    if base not in VISION_PARAMS:
        raise InspectError(f"vision weight role {role!r} has no parameter in the reference model")
    path = VISION_PARAMS[base].format(layer)
    return f"{path}.{suffix}" if suffix else path


def load_vision_weights(model: nn.Module, source, dtype: torch.dtype, device: Any = "cpu") -> None:
    """Set every parameter of a vision tower from a TensorSource, by inventory name."""
    fill(model, vision_inventory(model.spec), source, vision_param_name, dtype, device, what="vision ")


__all__ = ["TileViT", "ImageViT", "QwenViT", "MllamaViT", "build_vision", "load_vision_weights", "block_mask"]
