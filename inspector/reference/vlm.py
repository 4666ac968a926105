"""A whole vision-language model: the image's features in the LLM's sequence, then the LLM.

The tower and projector (inspector.reference.vision) turn pixels into one row per image token; those
rows replace the image-token rows of the text embeddings (Mllama instead keeps them aside for its
cross-attention layers). Qwen-VL's M-RoPE position ids (3, b, n) follow transformers'
`get_rope_index`: text tokens count up on all three axes; an image's tokens take (t, row, column) of
its merged grid offset by the position before it; the text after it resumes at that offset +
max(h, w)/n_merge. The language model is inspector.reference.vlm_text.VLMTextModel.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from inspector.errors import InspectError
from inspector.image.layout import ImageLayout
from inspector.reference.layers import Tap
from inspector.reference.load import fill
from inspector.reference.text import param_name
from inspector.reference.vision import build_vision, load_vision_weights
from inspector.reference.vlm_text import VLMTextModel
from inspector.spec.model import ModelSpec


def require_vlm(spec: ModelSpec) -> None:
    if spec.vision is None:
        raise InspectError(f"--image: {spec.name} is a text-only model ({spec.model_type}); it takes no image")
    if spec.vision.encoder.tower == "none":  # Gemma 4's ViT: counted natively, no native forward
        raise InspectError(f"--image: {spec.name} ({spec.model_type}) has no native forward of its vision tower; "
                           f"its text runs natively (leave --image out), its image tokens: inspect tokens --image-size")


# --------------------------------------------------------------------------- positions


def mrope_positions(ids: torch.Tensor, grid_thw: torch.Tensor, image_token_id: int, merge: int) -> tuple[torch.Tensor, torch.Tensor]:
    """M-RoPE position ids (3, b, n) and the per-row delta (b,) = max position + 1 - n, which later
    tokens (generation) add to their plain index."""
    b, n = ids.shape
    out = torch.zeros(3, b, n, dtype=torch.long)
    deltas = torch.zeros(b, dtype=torch.long)
    grids = iter(grid_thw.tolist())
    for row in range(b):
        is_image = (ids[row] == image_token_id).tolist()
        i, current = 0, 0
        while i < n:
            if not is_image[i]:
                j = i
                while j < n and not is_image[j]:
                    j += 1
                out[:, row, i:j] = torch.arange(current, current + j - i)  # same id on all 3 axes
                current += j - i
            else:
                t, h, w = next(grids)
                gt, gh, gw = t, h // merge, w // merge
                j = i + gt * gh * gw
                tt, hh, ww = torch.meshgrid(torch.arange(gt), torch.arange(gh), torch.arange(gw), indexing="ij")
                out[:, row, i:j] = torch.stack([tt, hh, ww]).reshape(3, -1) + current  # (3, t*h/m*w/m)
                current += max(gh, gw)
            i = j
        deltas[row] = int(out[:, row].max()) + 1 - n
    return out, deltas


def image_blocks(is_image: torch.Tensor) -> torch.Tensor:
    """(b, n): the index of the image each image token belongs to (runs of image tokens), -1 for text."""
    previous = torch.nn.functional.pad(is_image, (1, 0))[:, :-1]
    starts = is_image & ~previous
    return torch.where(is_image, torch.cumsum(starts.int(), dim=1) - 1, -1)


# --------------------------------------------------------------------------- model


class VLM(nn.Module):
    """Vision tower + projector, then the LLM on text embeddings with the image features scattered in."""

    def __init__(self, spec: ModelSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        require_vlm(spec)
        self.spec = spec
        self.vision = build_vision(spec.vision, device, dtype)
        self.text = VLMTextModel(spec, device, dtype)
        self.image_features = Tap("Step 11", "image features, one row per image token (all tiles)")
        self.text_embeds = Tap("Step 4", "text embeddings (b, n, d)")
        self.scattered = Tap("Step 11", "image features scattered into the image-token rows")
        self.positions = Tap("Step 5", "M-RoPE position ids (3, b, n): temporal, height, width")

    def features(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor | None, layout: ImageLayout | None):
        return self.vision.features(pixel_values, layout or ImageLayout((0, 0)), grid_thw)

    def forward(self, ids: torch.Tensor, pixel_values: torch.Tensor, grid_thw: torch.Tensor | None,
                image_token_id: int, positions: torch.Tensor | None = None,
                layout: ImageLayout | None = None) -> torch.Tensor:
        """ids (b, n) on the CPU -> logits (b, n, n_v); positions default to M-RoPE for Qwen-VL."""
        spec, device = self.spec, self.text.embed.weight.device
        feats = self.features(pixel_values.to(device), grid_thw, layout)
        feats = self.image_features(feats.reshape(-1, spec.text.hidden_size))  # (image tokens, d)
        x = self.text_embeds(self.text.embed_ids(ids.to(device)))  # (b, n, d)
        is_image = ids == image_token_id  # (b, n)
        cross = feats[None] if spec.cross_layers else None
        if cross is None:
            if int(is_image.sum()) != feats.shape[0]:
                raise InspectError(f"image tokens in the prompt ({int(is_image.sum())}) differ from image features "
                                   f"({feats.shape[0]})")
            x = self.scattered(x.masked_scatter(is_image.to(device)[..., None], feats.to(x.dtype)))  # (b, n, d)
        if positions is None and grid_thw is not None and spec.text.rope_scaling and \
                spec.text.rope_scaling.get("mrope_section"):
            positions = mrope_positions(ids, grid_thw, image_token_id, spec.vision.projector.merge_size)[0]  # (3, b, n)
        if positions is not None:
            positions = self.positions(positions.to(device))
        deepstack = getattr(self.vision, "deepstack_out", None) or None
        return self.text(ids.to(device), embeds=x, positions=positions, image_blocks=image_blocks(is_image).to(device),
                         deepstack=deepstack, cross_states=cross)  # (b, n, n_v)


def load_vlm(path: Any, spec: ModelSpec | None = None, dtype: torch.dtype = torch.float32, device: Any = "cpu") -> VLM:
    """A VLM filled from a safetensors file or directory, by inventory name (text and vision)."""
    from pathlib import Path

    from inspector.checkpoint.tensors import open_source
    from inspector.inventory.model import inventory
    from inspector.spec.model import spec_of_directory

    path = Path(path)
    source = open_source(path)
    spec = spec or spec_of_directory(path if path.is_dir() else path.parent)
    model = VLM(spec, device="meta", dtype=dtype)
    text = [e for e in inventory(spec) if e.component == "language_model"]
    fill(model.text, text, source, param_name, dtype, device)
    load_vision_weights(model.vision, source, dtype, device)
    return model.eval()
