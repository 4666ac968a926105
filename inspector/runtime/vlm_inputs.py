"""A VLM's input sequence: the chat template with one image placeholder, the image preprocessed, the
placeholder expanded to the number of image tokens (*Implementations of Large Language Models*
section 2.1, Steps 1-5).

Qwen2-VL uses `<|vision_start|><|image_pad|><|vision_end|>` and a TextTokenizer (the embedded Qwen
one works offline); the placeholder becomes t*h*w/n_merge^2 tokens. InternVL2 uses
`<img><IMG_CONTEXT></img>` and tiles * (S/p)^2/n_merge^2 tokens. Its InternLM2 tokenizer is not
available offline: without a tokenizer the text around the image becomes placeholder ids (its UTF-8
bytes), and the image markers take the ids of InternVL2-2B's added_tokens.json; the image part of
the sequence is exact, the text part only stands in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from inspector.errors import InspectError
from inspector.image.preprocess import preprocess
from inspector.reference.vlm import require_vlm
from inspector.spec.model import ModelSpec

QWEN2_VL_SYSTEM = "You are a helpful assistant."
QWEN2_VL_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
# InternVL2-2B's added_tokens.json (shared/reference/configs/OpenGVLab__InternVL2-2B)
INTERNVL_IMG_START, INTERNVL_IMG_END, INTERNVL_IMG_CONTEXT = 92544, 92545, 92546


@dataclass
class VLMInputs:
    ids: torch.Tensor  # (1, n) with the image placeholder expanded
    pixel_values: torch.Tensor
    grid_thw: torch.Tensor | None  # Qwen2-VL (images, 3)
    image_tokens: int
    image_token_id: int
    placeholder_ids: bool  # True when the text ids are stand-ins (no tokenizer)


def _expand(ids: list[int], token: int, count: int) -> list[int]:
    if ids.count(token) != 1:
        raise InspectError(f"prompt: expected exactly one image placeholder token {token}, found {ids.count(token)}")
    k = ids.index(token)
    return ids[:k] + [token] * count + ids[k + 1:]


def build_inputs(spec: ModelSpec, prompt: str, image: Any, tokenizer=None, record=None) -> VLMInputs:
    """Template, preprocessing and placeholder expansion (Steps 1-5) for one image and one prompt."""
    require_vlm(spec)
    v = spec.vision
    pixel_values, grid_thw = preprocess(image, v, record)
    if v.tokens_rule == "qwen2_vl_resize":
        token = v.image_token_id
        if token is None:
            raise InspectError(f"{spec.name}: config has no image_token_id")
        count = int(grid_thw.prod(dim=1).sum()) // v.merge_size**2
        if tokenizer is None:
            from inspector.tokenizer.qwen_bpe import embedded_qwen_tokenizer

            tokenizer = embedded_qwen_tokenizer()
        text = (f"<|im_start|>system\n{QWEN2_VL_SYSTEM}<|im_end|>\n<|im_start|>user\n{QWEN2_VL_IMAGE}"
                f"{prompt}<|im_end|>\n<|im_start|>assistant\n")
        ids = tokenizer.encode(text, add_special_tokens=False)
        if token not in ids:
            raise InspectError(f"{spec.name}: the tokenizer does not give <|image_pad|> the config's image_token_id {token}")
        note = "chat template with one <|vision_start|><|image_pad|><|vision_end|>"
        placeholder = False
    else:
        token = INTERNVL_IMG_CONTEXT
        count = pixel_values.shape[0] * (v.tokens_per_tile or 0)
        if tokenizer is not None:
            text = (f"<|im_start|>user\n<img><IMG_CONTEXT></img>\n{prompt}<|im_end|>\n<|im_start|>assistant\n")
            ids = tokenizer.encode(text, add_special_tokens=True)
            token = tokenizer.tokenizer.token_to_id("<IMG_CONTEXT>") if hasattr(tokenizer, "tokenizer") else token
            placeholder = False
        else:
            text_ids = list(("\n" + prompt).encode("utf-8"))  # stand-in ids, see the module docstring
            ids = [INTERNVL_IMG_START, token, INTERNVL_IMG_END] + text_ids
            placeholder = True
        note = "<img><IMG_CONTEXT></img> + prompt" + (" (text ids are UTF-8 byte stand-ins)" if placeholder else "")
    if max(ids) >= spec.text.vocab_size:
        raise InspectError(f"{spec.name}: token id {max(ids)} is outside the vocabulary ({spec.text.vocab_size})")
    if record:
        record("tokens.template", (1, len(ids)), note)
    ids = _expand(ids, token, count)
    if record:
        what = ("t_grid*h_grid*w_grid / n_merge^2" if grid_thw is not None
                else f"tiles * {v.tokens_per_tile} per tile")
        record("tokens.expanded", (1, len(ids)), f"image placeholder expanded to {count} tokens = {what}")
    return VLMInputs(torch.tensor([ids]), pixel_values, grid_thw, count, token, placeholder)


