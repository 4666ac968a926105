"""The reference projectors: encoder features -> one row per image token, in the LLM's width (Step 11).

One module per projector kind (inspector.spec.vision_kinds.PROJECTORS), chosen through the
`PROJECTOR_MODULES` table. Each takes the encoder output of one image and an `ImageLayout` (what
the preprocessing decided: the patch grid, the anyres tile grid, the original size) and returns
(image tokens, d). Parameters are named by role (`norm`, `fc1`, `fc2`, `merge`, `weight`,
`newline`, `adapt_fc1`, `adapt_fc2`); Taps `grouped`, `hidden`, `out` show the steps.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inspector.image import tiling
from inspector.image.layout import ImageLayout
from inspector.reference.layers import Tap, note
from inspector.reference.vision_blocks import pixel_shuffle, vision_norm
from inspector.spec.image_facts import LlavaAnyres
from inspector.spec.vision import VisionSpec


def _linear(n_in: int, n_out: int, bias: bool, text: str) -> nn.Module:
    return note(nn.Linear(n_in, n_out, bias=bias), "Step 11", text)


class Projector(nn.Module):
    """The layers of a projector kind, built from the spec's dimension symbols (ProjectorSpec.dims)."""

    def __init__(self, v: VisionSpec) -> None:
        super().__init__()
        proj = v.projector
        self.spec, dims, b = v, proj.dims, proj.bias
        self.grouped = Tap("Step 11", "n_merge^2 neighbouring patches concatenated")
        self.hidden = Tap("Step 11", "first linear + GELU")
        self.out = Tap("Step 11", "projector output, one row per image token")
        if proj.norm_size:
            self.norm = note(vision_norm(proj.norm, proj.norm_size, proj.norm_eps), "Step 11",
                             "projector norm")
        self.build(dims, b)

    def build(self, dims: dict[str, int], bias: bool) -> None:  # the two-linear MLP most kinds share
        self.fc1 = _linear(self.spec.projector.in_size, dims["m2d"], True, "first linear")
        self.fc2 = _linear(dims["m2d"], dims["out"], True, "second linear")

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.fc2(self.hidden(F.gelu(self.fc1(x)))))


class QwenMerger(Projector):
    """Qwen2-VL/2.5-VL/3-VL: norm over d_img, n_merge^2 window neighbours (adjacent rows) concatenated, MLP."""

    def forward(self, x: torch.Tensor, layout: Any = None) -> torch.Tensor:
        x = self.grouped(self.norm(x).view(-1, self.spec.projector.in_size))  # (n_img/m^2, m^2 d_img)
        return self.mlp(x)  # (n_img/m^2, d)


class DeepstackMerger(QwenMerger):
    """Qwen3-VL's DeepStack merger: the same MLP with its norm after the concatenation (m^2 d_img)."""

    def forward(self, x: torch.Tensor, layout: Any = None) -> torch.Tensor:
        return self.mlp(self.norm(x.view(-1, self.spec.projector.in_size)))  # (n_img/m^2, d)


class ShuffleMLP(Projector):
    """InternVL: class token dropped, pixel shuffle (m x m -> one token), norm over m^2 d_img, MLP to d."""

    def build(self, dims, bias) -> None:
        self.fc1 = _linear(dims["m2d"], dims["out"], True, "first linear (+ GELU)")
        self.fc2 = _linear(dims["out"], dims["out"], True, "second linear")

    def forward(self, x: torch.Tensor, layout: ImageLayout) -> torch.Tensor:
        tiles, n, d = x.shape
        side = math.isqrt(n)
        x = self.grouped(pixel_shuffle(x.reshape(tiles, side, side, d), self.spec.projector.merge_size))  # (tiles, n/m^2, m^2 d)
        return self.mlp(self.norm(x)).reshape(-1, self.spec.projector.out_hidden_size)  # (tiles * n/m^2, d)


class AvgPool(Projector):
    """Gemma 3: average pooling of m x m patches, RMSNorm (1 + w), then x W (d_img, d)."""

    def build(self, dims, bias) -> None:
        self.weight = nn.Parameter(torch.zeros(dims["d"], dims["out"]))

    def forward(self, x: torch.Tensor, layout: ImageLayout) -> torch.Tensor:
        tiles, n, d = x.shape
        side, m = math.isqrt(n), self.spec.projector.merge_size
        x = x.transpose(1, 2).reshape(tiles, d, side, side)  # (tiles, d_img, side, side)
        x = self.grouped(F.avg_pool2d(x, m, m).flatten(2).transpose(1, 2))  # (tiles, (side/m)^2, d_img)
        return self.out(torch.matmul(self.norm(x), self.weight).type_as(x)).reshape(-1, self.weight.shape[1])


class LlavaMLP(Projector):
    """LLaVA-NeXT/OneVision: Linear, GELU, Linear on every tile's features, then the anyres packing: the
    base tile, the grid tiles stitched, padding rows/columns removed, (OneVision) scaled down above
    anyres_max_N tiles, one image_newline vector after each row."""

    def build(self, dims, bias) -> None:
        self.fc1 = _linear(dims["d"], dims["out"], bias, "first linear (+ GELU)")
        self.fc2 = _linear(dims["out"], dims["out"], bias, "second linear")
        self.newline = nn.Parameter(torch.zeros(dims["out"]))
        self.packed = Tap("Step 11", "base tile + unpadded grid with image_newline after each row")

    def forward(self, x: torch.Tensor, layout: ImageLayout) -> torch.Tensor:
        x = self.mlp(x)  # (tiles, n, d)
        side, (rows, cols) = math.isqrt(x.shape[1]), layout.tiles
        base, grid = x[0], x[1:]  # (n, d), (rows*cols, n, d)
        grid = grid.view(rows, cols, side, side, -1).permute(4, 0, 2, 1, 3).flatten(1, 2).flatten(2, 3)  # (d, H, W)
        h, w = tiling.unpad(*layout.size, grid.shape[1], grid.shape[2])
        top, left = (grid.shape[1] - h) // 2, (grid.shape[2] - w) // 2
        grid = grid[:, top:top + h, left:left + w]  # (d, h, w)
        aspect = self.spec.image.aspect if isinstance(self.spec.image, LlavaAnyres) else ""
        if aspect.startswith("anyres_max_"):
            h2, w2, ratio = tiling.capped(h, w, int(aspect.removeprefix("anyres_max_")), side)
            if ratio > 1.1:
                grid = F.interpolate(grid[None], [h2, w2], mode="bilinear")[0]  # (d, h2, w2)
        newline = self.newline[:, None, None].expand(*grid.shape[:-1], 1).to(grid)  # (d, h, 1)
        grid = torch.cat((grid, newline), dim=-1).flatten(1, 2).transpose(0, 1)  # (h * (w + 1), d)
        return self.packed(torch.cat((base, grid), dim=0))  # (image tokens, d)


class ShuffleLinear(Projector):
    """Idefics3/SmolVLM: pixel shuffle (m x m -> one token), one Linear without bias."""

    def build(self, dims, bias) -> None:
        self.fc1 = _linear(dims["m2d"], dims["out"], False, "modality projection")

    def forward(self, x: torch.Tensor, layout: ImageLayout) -> torch.Tensor:
        tiles, n, d = x.shape
        side = math.isqrt(n)
        x = self.grouped(pixel_shuffle(x.reshape(tiles, side, side, d), self.spec.projector.merge_size))  # (tiles, n/m^2, m^2 d)
        return self.out(self.fc1(x)).reshape(-1, self.spec.projector.out_hidden_size)  # (tiles * n/m^2, d)


class LinearProjector(Projector):
    """Mllama: one Linear from the concatenated encoder features to d: the cross-attention states."""

    def build(self, dims, bias) -> None:
        self.fc1 = _linear(dims["feat"], dims["out"], True, "projection to the LLM width: cross-attention states")

    def forward(self, x: torch.Tensor, layout: ImageLayout) -> torch.Tensor:
        return self.out(self.fc1(x)).reshape(-1, self.spec.projector.out_hidden_size)  # (tiles * (n + 1), d)


class PatchMerger(Projector):
    """Mistral 3: RMSNorm, each m x m window of the patch grid unfolded (channel-major) and merged by a
    Linear to d_img, then Linear, GELU, Linear to d."""

    def build(self, dims, bias) -> None:
        self.merge = _linear(dims["m2d"], dims["d"], False, "patch merger: m x m patches -> d_img")
        self.fc1 = _linear(dims["d"], dims["out"], bias, "first linear (+ GELU)")
        self.fc2 = _linear(dims["out"], dims["out"], bias, "second linear")

    def forward(self, x: torch.Tensor, layout: ImageLayout) -> torch.Tensor:
        (h, w), m, d = layout.grid, self.spec.projector.merge_size, x.shape[-1]
        grid = self.norm(x).reshape(h, w, d).permute(2, 0, 1)[None]  # (1, d_img, h, w)
        x = F.unfold(grid, kernel_size=m, stride=m).view(d * m * m, -1).t()  # (h/m * w/m, m^2 d_img)
        return self.mlp(self.merge(self.grouped(x)))  # (tokens, d)


class Llama4Adapter(Projector):
    """Llama 4: class token dropped, pixel shuffle, Linear, GELU, Linear, GELU (the vision adapter),
    then the projector's Linear to d."""

    def build(self, dims, bias) -> None:
        self.adapt_fc1 = _linear(dims["inter"], dims["p_in"], False, "adapter fc1 (+ GELU)")
        self.adapt_fc2 = _linear(dims["p_out"], dims["p_out"], False, "adapter fc2 (+ GELU)")
        self.fc1 = _linear(dims["v_out"], dims["out"], False, "projection to the LLM width")

    def forward(self, x: torch.Tensor, layout: ImageLayout) -> torch.Tensor:
        tiles, n, d = x.shape
        side = math.isqrt(n)
        x = self.grouped(pixel_shuffle(x.reshape(tiles, side, side, d), self.spec.projector.merge_size))  # (tiles, n/m^2, m^2 d)
        x = self.hidden(F.gelu(self.adapt_fc2(F.gelu(self.adapt_fc1(x)))))  # (tiles, n/m^2, p_out)
        return self.out(self.fc1(x)).reshape(-1, self.spec.projector.out_hidden_size)  # (tiles * n/m^2, d)


PROJECTOR_MODULES: dict[str, type[Projector]] = {
    "merger": QwenMerger, "merger_rms": QwenMerger, "merger_deepstack": QwenMerger, "pixel_shuffle": ShuffleMLP,
    "pixel_shuffle_hf": ShuffleMLP, "avg_pool": AvgPool, "mlp": LlavaMLP, "shuffle_linear": ShuffleLinear,
    "linear": LinearProjector, "patch_merger": PatchMerger, "llama4_adapter": Llama4Adapter,
}
# Inventory role -> parameter path inside the projector module ("merger" in a tower).
PROJECTOR_PARAMS = {"proj_norm": "norm", "proj_fc1": "fc1", "proj_fc2": "fc2", "proj_weight": "weight",
                    "proj_merge": "merge", "newline": "newline", "adapt_fc1": "adapt_fc1", "adapt_fc2": "adapt_fc2"}
