"""The reference vision towers: small nn.Modules built from a VisionSpec (seed 003 section 2.1, Steps 6-11).

- `Qwen2VLVision`: PatchEmbed (Conv3d, no bias) -> 2D RoPE -> blocks (LayerNorm, qkv with bias,
  RoPE on q/k, attention within each image, proj; LayerNorm, fc1/QuickGELU/fc2) -> PatchMerger
  (ln_q, group n_merge^2 neighbours, mlp.0, GELU, mlp.2): pixel_values (n_img, C*2*14*14) -> (n_img/4, d).
- `InternViT`: Conv2d patch embed with bias -> class token + learned position embedding -> blocks
  with layer scale (ls1, ls2) and optional q/k RMSNorm -> class token dropped -> pixel shuffle ->
  `mlp1` (LayerNorm, Linear, GELU, Linear): (tiles, 3, S, S) -> (tiles, (S/p)^2 / n_merge^2, d).

Observation works as in inspector.reference: values in the middle of a forward pass through a named
`Tap` (identity), which a tracer hooks by module name (e.g. `blocks.3.attn.probs`, `merger.grouped`).
Parameters are named by inventory role (`VISION_PARAMS`) and filled by `load_vision_weights`.
Building with device="meta" allocates nothing; forwards on meta give shapes only.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from inspector.errors import InspectError
from inspector.inventory.vision import vision_inventory
from inspector.reference.layers import RMSNorm, Tap, apply_rope
from inspector.reference.load import fill
from inspector.spec.vision import VisionSpec

VISION_ROPE_THETA = 10000.0  # Qwen2-VL's vision RoPE base (not in config.json; transformers' default)

# Inventory role (vision_spec names table) -> parameter path in our modules ("{}" = block index).
VISION_PARAMS: Mapping[str, str] = {
    "patch_embed": "patch_embed", "class_embed": "class_embed", "pos_embed": "pos_embed",
    "norm1": "blocks.{}.norm1", "qkv": "blocks.{}.attn.qkv", "q_norm": "blocks.{}.attn.q_norm",
    "k_norm": "blocks.{}.attn.k_norm", "proj": "blocks.{}.attn.proj", "ls1": "blocks.{}.ls1",
    "norm2": "blocks.{}.norm2", "fc1": "blocks.{}.mlp.fc1", "fc2": "blocks.{}.mlp.fc2", "ls2": "blocks.{}.ls2",
    "proj_norm": "merger.norm", "proj_fc1": "merger.fc1", "proj_fc2": "merger.fc2",
}


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(1.702 x), the QuickGELU of Step 9."""
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"quick_gelu": quick_gelu, "gelu": F.gelu}


def _act(name: str):
    if name not in ACTIVATIONS:
        raise InspectError(f"vision hidden_act {name!r} is not supported (supported: {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]


def _norm(v: VisionSpec, dim: int) -> nn.Module:
    return nn.LayerNorm(dim, eps=v.norm_eps) if v.norm_type == "layer_norm" else RMSNorm(dim, v.norm_eps)


# --------------------------------------------------------------------------- shared block


class VisionAttention(nn.Module):
    """Step 8: fused qkv, optional q/k norm over the whole width, RoPE on q/k (Qwen2-VL), softmax, proj."""

    def __init__(self, v: VisionSpec) -> None:
        super().__init__()
        d = v.hidden_size
        self.n_h, self.d_h, self.scale = v.num_heads, v.head_dim, v.head_dim**-0.5
        self.qkv = nn.Linear(d, 3 * d, bias=v.qkv_bias)
        self.q_norm = RMSNorm(d, v.norm_eps) if v.qk_norm else None  # InternViT: RMSNorm, weight only
        self.k_norm = RMSNorm(d, v.norm_eps) if v.qk_norm else None
        self.proj = nn.Linear(d, d)
        self.q_rope, self.k_rope, self.probs, self.heads = Tap(), Tap(), Tap(), Tap()

    def forward(self, x, cos=None, sin=None, mask=None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, d).unbind(2)  # (b, n, d_img) each
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.view(b, n, self.n_h, self.d_h).transpose(1, 2)  # (b, n_h, n, d_h)
        k = k.view(b, n, self.n_h, self.d_h).transpose(1, 2)  # (b, n_h, n, d_h)
        v = v.view(b, n, self.n_h, self.d_h).transpose(1, 2)  # (b, n_h, n, d_h)
        if cos is not None:
            q, k = self.q_rope(apply_rope(q, cos, sin)), self.k_rope(apply_rope(k, cos, sin))
        scores = q @ k.transpose(-2, -1) * self.scale  # (b, n_h, n, n): no causal mask, every patch sees all
        if mask is not None:
            scores = scores + mask  # block-diagonal: patches attend within their own image
        probs = self.probs(scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype))  # (b, n_h, n, n)
        heads = self.heads(probs @ v)  # (b, n_h, n, d_h)
        return self.proj(heads.transpose(1, 2).reshape(b, n, d))  # (b, n, d_img)


class VisionMLP(nn.Module):
    """Step 9: fc2(act(fc1(x))), QuickGELU for Qwen2-VL, GELU for InternViT."""

    def __init__(self, v: VisionSpec) -> None:
        super().__init__()
        self.fc1 = nn.Linear(v.hidden_size, v.intermediate_size)
        self.act = _act(v.hidden_act)
        self.fc2 = nn.Linear(v.intermediate_size, v.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))  # (b, n, d_img)


class VisionBlock(nn.Module):
    """One encoder block, pre-norm; InternViT scales each branch by ls1 / ls2 before the residual add."""

    def __init__(self, v: VisionSpec) -> None:
        super().__init__()
        d = v.hidden_size
        self.norm1, self.attn = _norm(v, d), VisionAttention(v)
        self.norm2, self.mlp = _norm(v, d), VisionMLP(v)
        self.ls1 = nn.Parameter(torch.ones(d)) if v.layer_scale else None
        self.ls2 = nn.Parameter(torch.ones(d)) if v.layer_scale else None
        self.after_attn = Tap()

    def forward(self, x, cos=None, sin=None, mask=None) -> torch.Tensor:
        a = self.attn(self.norm1(x), cos, sin, mask)  # (b, n, d_img)
        x = self.after_attn(x + (a if self.ls1 is None else a * self.ls1))  # (b, n, d_img)
        m = self.mlp(self.norm2(x))  # (b, n, d_img)
        return x + (m if self.ls2 is None else m * self.ls2)  # (b, n, d_img)


class Projector(nn.Module):
    """fc2(GELU(fc1(x))) after a LayerNorm: the Qwen2-VL merger normalizes before grouping (width
    d_img), InternVL's mlp1 after the pixel shuffle (width n_merge^2 * d_img); the caller orders it."""

    def __init__(self, v: VisionSpec) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(v.projector_norm_dim, eps=v.projector_norm_eps)
        self.fc1 = nn.Linear(v.projector_in, v.projector_hidden)
        self.fc2 = nn.Linear(v.projector_hidden, v.out_hidden_size)
        self.grouped, self.hidden, self.out = Tap(), Tap(), Tap()

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.fc2(self.hidden(F.gelu(self.fc1(x)))))


# --------------------------------------------------------------------------- Qwen2-VL


class VisionRotary(nn.Module):
    """2D RoPE of the Qwen2-VL ViT: half of each head's rotary pairs turn with the patch row, half
    with its column; theta_i = 10000^(-i/(d_h/2)) for i = 0, 2, ..., d_h/2 - 2."""

    def __init__(self, v: VisionSpec) -> None:
        super().__init__()
        half = v.head_dim // 2
        exps = torch.arange(0, half, 2, dtype=torch.float32, device="cpu") / half  # (d_h/4,)
        self.register_buffer("inv_freq", 1.0 / VISION_ROPE_THETA**exps, persistent=False)
        self.merge = v.merge_size

    def positions(self, grid_thw: torch.Tensor) -> torch.Tensor:
        """(row, column) of every patch, in the merge-window order of pixel_values: (n_img, 2)."""
        m, out = self.merge, []
        for t, h, w in grid_thw.tolist():
            rows = torch.arange(h)[:, None].expand(h, w)  # (h, w)
            cols = torch.arange(w)[None, :].expand(h, w)  # (h, w)
            rows = rows.reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()  # (h*w,) window order
            cols = cols.reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).flatten()  # (h*w,)
            out.append(torch.stack([rows, cols], dim=-1).repeat(t, 1))  # (t*h*w, 2)
        return torch.cat(out)  # (n_img, 2)

    def forward(self, grid_thw: torch.Tensor, dtype: torch.dtype, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
        pos = self.positions(grid_thw).to(device)  # (n_img, 2)
        freqs = pos[..., None].float() * self.inv_freq.to(device)  # (n_img, 2, d_h/4)
        angles = freqs.flatten(1)  # (n_img, d_h/2): row angles, then column angles
        angles = torch.cat((angles, angles), dim=-1)[None]  # (1, n_img, d_h) for rotate-half
        return angles.cos().to(dtype), angles.sin().to(dtype)


def image_mask(grid_thw: torch.Tensor, dtype: torch.dtype, device: Any) -> torch.Tensor | None:
    """Additive (1, 1, n, n) mask keeping attention inside each image (cu_seqlens); None for one image."""
    if len(grid_thw) == 1:
        return None
    sizes = (grid_thw[:, 0] * grid_thw[:, 1] * grid_thw[:, 2]).tolist()
    owner = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes)).to(device)  # (n,)
    same = owner[:, None] == owner[None, :]  # (n, n)
    mask = torch.zeros(same.shape, dtype=dtype, device=device).masked_fill(~same, torch.finfo(dtype).min)
    return mask[None, None]


class Qwen2VLVision(nn.Module):
    """pixel_values (n_img, C*d_t_patch*d_patch^2) and grid_thw (images, 3) -> (n_img/n_merge^2, d)."""

    def __init__(self, v: VisionSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.spec = v
        p, tp = v.patch_size, v.temporal_patch_size
        with torch.device(device):
            self.patch_embed = nn.Conv3d(v.in_channels, v.hidden_size, (tp, p, p), stride=(tp, p, p), bias=False, dtype=dtype)
            self.blocks = nn.ModuleList(VisionBlock(v).to(dtype) for _ in range(v.depth))
            self.merger = Projector(v).to(dtype)
        self.rope = VisionRotary(v)
        self.patches, self.embedded = Tap(), Tap()

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        return self.merge(self.encode(pixel_values, grid_thw))  # (n_img/n_merge^2, d)

    def encode(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        """Steps 6-10: patch embedding, 2D RoPE and the encoder blocks, (n_img, d_img)."""
        v = self.spec
        x = pixel_values.view(-1, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size)
        x = self.patches(x.to(self.patch_embed.weight.dtype))  # (n_img, C, d_t_patch, d_patch, d_patch): Step 6
        x = self.embedded(self.patch_embed(x).view(-1, v.hidden_size))  # (n_img, d_img): one output per kernel position
        cos, sin = self.rope(grid_thw, x.dtype, x.device)  # (1, n_img, d_h) each: Step 7
        mask = image_mask(grid_thw, x.dtype, x.device)
        x = x[None]  # (1, n_img, d_img): the images are one packed sequence
        for block in self.blocks:  # Steps 8-10
            x = block(x, cos, sin, mask)  # (1, n_img, d_img)
        return x[0]  # (n_img, d_img)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        """Step 11, the patch merger: (n_img, d_img) -> (n_img/n_merge^2, d)."""
        v = self.spec
        x = self.merger.norm(x)  # (n_img, d_img)
        x = self.merger.grouped(x.view(-1, v.projector_in))  # (n_img/n_merge^2, n_merge^2*d_img): window neighbours are adjacent rows
        return self.merger.mlp(x)  # (n_img/n_merge^2, d)


# --------------------------------------------------------------------------- InternViT


def pixel_shuffle(x: torch.Tensor, m: int) -> torch.Tensor:
    """(tiles, H, W, c) -> (tiles, H/m * W/m, m*m*c): each m x m window of patches becomes one token.

    The token for window (i, j) concatenates the features of patches (m*i + r, m*j + s) in order of
    r, then s: InternVL's pixel_shuffle with downsample_ratio 1/m and ps_version "v2".
    """
    n, h, w, c = x.shape
    x = x.view(n, h // m, m, w // m, m, c)  # (tiles, H/m, r, W/m, s, c)
    x = x.permute(0, 1, 3, 2, 4, 5)  # (tiles, H/m, W/m, r, s, c)
    return x.reshape(n, (h // m) * (w // m), m * m * c)  # (tiles, H/m * W/m, m^2 c)


class InternViT(nn.Module):
    """pixel_values (tiles, 3, S, S) -> (tiles, (S/p)^2 / n_merge^2, d)."""

    def __init__(self, v: VisionSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.spec = v
        d, p = v.hidden_size, v.patch_size
        with torch.device(device):
            self.patch_embed = nn.Conv2d(v.in_channels, d, p, stride=p, bias=True, dtype=dtype)
            self.class_embed = nn.Parameter(torch.zeros(1, 1, d, dtype=dtype))
            self.pos_embed = nn.Parameter(torch.zeros(1, v.num_positions, d, dtype=dtype))
            self.blocks = nn.ModuleList(VisionBlock(v).to(dtype) for _ in range(v.depth))
            self.merger = Projector(v).to(dtype)
        self.patches, self.embedded, self.no_class = Tap(), Tap(), Tap()

    def position_embedding(self, gh: int, gw: int) -> torch.Tensor:
        """(1, 1 + gh*gw, d): the class row, then the patch rows, bicubic-resized if the grid is not the config's."""
        cls_pos, grid = self.pos_embed[:, :1], self.pos_embed[:, 1:]  # (1, 1, d), (1, side^2, d)
        side = self.spec.image_size // self.spec.patch_size
        if (gh, gw) != (side, side):
            g = grid.float().reshape(1, side, side, -1).permute(0, 3, 1, 2)  # (1, d, side, side)
            g = F.interpolate(g, size=(gh, gw), mode="bicubic", align_corners=False)  # (1, d, gh, gw)
            grid = g.flatten(2).transpose(1, 2).to(cls_pos.dtype)  # (1, gh*gw, d)
        return torch.cat([cls_pos, grid], dim=1)  # (1, 1 + gh*gw, d)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixel_values.to(self.patch_embed.weight.dtype))  # (tiles, d_img, S/p, S/p)
        tiles, d, gh, gw = x.shape
        x = self.patches(x.flatten(2).transpose(1, 2))  # (tiles, gh*gw, d_img)
        x = torch.cat([self.class_embed.expand(tiles, 1, d), x], dim=1)  # (tiles, 1 + gh*gw, d_img)
        x = self.embedded(x + self.position_embedding(gh, gw))  # (tiles, 1 + gh*gw, d_img)
        for block in self.blocks:
            x = block(x)  # (tiles, 1 + gh*gw, d_img)
        x = self.no_class(x[:, 1:])  # (tiles, gh*gw, d_img): class token dropped
        x = pixel_shuffle(x.reshape(tiles, gh, gw, d), self.spec.merge_size)  # (tiles, gh*gw/m^2, m^2 d_img)
        x = self.merger.grouped(x)
        return self.merger.mlp(self.merger.norm(x))  # (tiles, gh*gw/m^2, d)


# --------------------------------------------------------------------------- building and loading


def build_vision(v: VisionSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    if v.projector == "merger":
        return Qwen2VLVision(v, device, dtype)
    return InternViT(v, device, dtype)


def vision_param_name(role: str, layer: int | None = None, expert: int | None = None) -> str:
    """Inventory role "vision.qkv.weight" of block 3 -> "blocks.3.attn.qkv.weight"."""
    base, _, suffix = role.removeprefix("vision.").partition(".")
    if base not in VISION_PARAMS:
        raise InspectError(f"vision weight role {role!r} has no parameter in the reference model")
    path = VISION_PARAMS[base].format(layer)
    return f"{path}.{suffix}" if suffix else path


def load_vision_weights(model: nn.Module, source, dtype: torch.dtype, device: Any = "cpu") -> None:
    """Set every parameter of a vision tower from a TensorSource, by inventory name."""
    fill(model, vision_inventory(model.spec), source, vision_param_name, dtype, device, what="vision ")
