"""A VLM's input sequence: the prompt with its image placeholder expanded, and the image preprocessed.

The prompt has one image placeholder; the image is preprocessed; the placeholder is expanded to the number
of image tokens (*Implementations of Large Language Models* section 2.1, Steps 1-5).

The number of image tokens comes from the image-token rule (inspector.image.rules), the same count
`inspect tokens` shows and transformers' processors insert; the model then checks that its
projector produced exactly that many rows. Qwen-VL uses its chat template with
`<|vision_start|><|image_pad|><|vision_end|>` and the embedded Qwen tokenizer (it works offline).
The other families' tokenizers are not available offline: without one, the text around the image
becomes stand-in ids (its UTF-8 bytes) and the image block is the config's image token between the
config's start/end markers when it names them. The image part of the sequence is exact; the text
part only stands in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from inspector.errors import InspectError
from inspector.image.layout import ImageLayout
from inspector.image.rules import image_pixels, image_tokens
from inspector.reference.vlm import require_vlm
from inspector.spec.model import ModelSpec

QWEN2_VL_SYSTEM = "You are a helpful assistant."
QWEN2_VL_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
# InternVL2-2B's added_tokens.json (https://huggingface.co/OpenGVLab/InternVL2-2B/blob/main/added_tokens.json): its config names none
INTERNVL_IMG_START, INTERNVL_IMG_END, INTERNVL_IMG_CONTEXT = 92544, 92545, 92546


@dataclass
class VLMInputs:
    ids: torch.Tensor  # (1, n) with the image placeholder expanded
    pixel_values: torch.Tensor
    grid_thw: torch.Tensor | None  # Qwen-VL (images, 3)
    image_tokens: int
    image_token_id: int
    placeholder_ids: bool  # True when the text ids are stand-ins (no tokenizer)
    layout: ImageLayout | None = None


def _expand(ids: list[int], token: int, count: int) -> list[int]:
    if ids.count(token) != 1:
        raise InspectError(f"prompt: expected exactly one image placeholder token {token}, found {ids.count(token)}")
    k = ids.index(token)
    return ids[:k] + [token] * count + ids[k + 1:]


def _qwen_ids(spec: ModelSpec, prompt: str, tokenizer) -> tuple[list[int], str]:
    token = spec.vision.image_token_id
    if tokenizer is None:
        from inspector.tokenizer.qwen_bpe import embedded_qwen_tokenizer

        tokenizer = embedded_qwen_tokenizer()
    text = (f"<|im_start|>system\n{QWEN2_VL_SYSTEM}<|im_end|>\n<|im_start|>user\n{QWEN2_VL_IMAGE}"
            f"{prompt}<|im_end|>\n<|im_start|>assistant\n")
    ids = tokenizer.encode(text, add_special_tokens=False)
    if token not in ids:
        raise InspectError(f"{spec.name}: the tokenizer does not give <|image_pad|> the config's image_token_id {token}")
    return ids, "chat template with one <|vision_start|><|image_pad|><|vision_end|>"


def _stand_in_ids(spec: ModelSpec, prompt: str, token: int, tokenizer) -> tuple[list[int], str, bool]:
    v = spec.vision
    if tokenizer is not None and hasattr(tokenizer, "tokenizer"):  # InternVL2 with its own tokenizer
        text = f"<|im_start|>user\n<img><IMG_CONTEXT></img>\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
        return tokenizer.encode(text, add_special_tokens=True), "<img><IMG_CONTEXT></img> + prompt", False
    start = v.vision_start_token_id if v.vision_start_token_id is not None else (
        INTERNVL_IMG_START if v.image_token_id is None else None)
    end = v.vision_end_token_id if v.vision_end_token_id is not None else (
        INTERNVL_IMG_END if v.image_token_id is None else None)
    block = [t for t in (start, token, end) if t is not None]
    base = 0 if min(block) >= 256 else max(block) + 1  # stand-ins never collide with the image's own ids
    text = [base + b for b in ("\n" + prompt).encode("utf-8")]
    return block + text, "image block + prompt (text ids are UTF-8 byte stand-ins)", True


def build_inputs(spec: ModelSpec, prompt: str, image: Any, tokenizer=None, record=None) -> VLMInputs:
    """Template, preprocessing and placeholder expansion (Steps 1-5) for one image and one prompt."""
    require_vlm(spec)
    v = spec.vision
    height, width = image.size[1], image.size[0]
    count = image_tokens(v, height, width, spec.text.hidden_size).tokens
    pixel_values, grid_thw, layout = image_pixels(image, v, record)
    if spec.prompt_template == "qwen":
        if v.image_token_id is None:
            raise InspectError(f"{spec.name}: config has no image_token_id")
        token, placeholder = v.image_token_id, False
        ids, note = _qwen_ids(spec, prompt, tokenizer)
    else:
        token = v.image_token_id if v.image_token_id is not None else INTERNVL_IMG_CONTEXT
        ids, note, placeholder = _stand_in_ids(spec, prompt, token, tokenizer)
        if not placeholder:
            token = tokenizer.tokenizer.token_to_id("<IMG_CONTEXT>")
    vocab = spec.text.vocab_size + spec.embed_extra
    if max(ids) >= vocab:
        raise InspectError(f"{spec.name}: token id {max(ids)} is outside the vocabulary ({vocab})")
    if record:
        record("tokens.template", (1, len(ids)), note)
    ids = _expand(ids, token, count)
    if record:
        what = "one <|image|>: the image is read by cross-attention" if spec.cross_layers else \
            f"{count} image tokens, as the processor inserts them"
        record("tokens.expanded", (1, len(ids)), f"image placeholder expanded: {what}")
    return VLMInputs(torch.tensor([ids]), pixel_values, grid_thw, count, token, placeholder, layout)
