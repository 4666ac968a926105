"""A whole vision-language model: prompt + image -> logits, with every step recordable.

Steps (seed 003 section 2.1 around the vision tower of inspector.vision_reference):
1. Text template with ONE image placeholder: Qwen2-VL `<|vision_start|><|image_pad|><|vision_end|>`,
   InternVL2 `<img><IMG_CONTEXT></img>` (Step 1).
2. The image preprocessed (inspector.image_preprocess) and the placeholder expanded to the number of
   image tokens: t*h*w/n_merge^2 (Step 5), or tiles * (S/p)^2/n_merge^2 for InternVL2.
3. The text embedded, the vision features scattered into the image-token rows.
4. Qwen2-VL: M-RoPE position ids (3, b, n) as transformers' `get_rope_index`: text tokens count up on
   all three axes; an image's tokens take (t, row, column) of its merged grid offset by the position
   before it; the text after it resumes at that offset + max(h, w)/n_merge.
5. The language model (inspector.reference.TextModel) on those embeddings and positions.

Token ids. Qwen2-VL uses a TextTokenizer (the embedded Qwen one works offline). InternVL2's
InternLM2 tokenizer is not available offline: without a tokenizer the text around the image becomes
placeholder ids (its UTF-8 bytes), and the image markers take the ids of InternVL2-2B's
added_tokens.json; the image part of the sequence is exact, the text part only stands in.

`trace_vlm(...)` runs everything and returns the logits and a `StepLog` of (name, shape, note)
records: preprocessing steps are recorded by a callable, module steps by forward hooks on named
modules and Taps (removed in `finally`); nothing is recorded, or costs anything, otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from inspector.errors import InspectError
from inspector.image_preprocess import StepLog, preprocess
from inspector.reference import Tap, TextModel
from inspector.spec import ModelSpec
from inspector.vision_reference import build_vision, load_vision_weights

QWEN2_VL_SYSTEM = "You are a helpful assistant."
QWEN2_VL_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
# InternVL2-2B's added_tokens.json (shared/reference/configs/OpenGVLab__InternVL2-2B)
INTERNVL_IMG_START, INTERNVL_IMG_END, INTERNVL_IMG_CONTEXT = 92544, 92545, 92546


def require_vlm(spec: ModelSpec) -> None:
    if spec.vision is None:
        raise InspectError(f"--image: {spec.name} is a text-only model ({spec.model_type}); it takes no image")


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


# --------------------------------------------------------------------------- inputs


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
            from inspector.qwen_bpe import embedded_qwen_tokenizer

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


# --------------------------------------------------------------------------- model


class VLM(nn.Module):
    """Vision tower + projector, then the LLM on text embeddings with the image features scattered in."""

    def __init__(self, spec: ModelSpec, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        require_vlm(spec)
        self.spec = spec
        self.vision = build_vision(spec.vision, device, dtype)
        self.text = TextModel(spec.text, device, dtype)
        self.image_features, self.text_embeds, self.scattered, self.positions = Tap(), Tap(), Tap(), Tap()

    def forward(self, ids: torch.Tensor, pixel_values: torch.Tensor, grid_thw: torch.Tensor | None,
                image_token_id: int, positions: torch.Tensor | None = None) -> torch.Tensor:
        """ids (b, n) on the CPU -> logits (b, n, n_v); positions default to M-RoPE for Qwen2-VL."""
        v, device = self.spec.vision, self.text.embed.weight.device
        pixel_values = pixel_values.to(device)
        feats = self.vision(pixel_values, grid_thw) if grid_thw is not None else self.vision(pixel_values)
        feats = self.image_features(feats.reshape(-1, self.spec.text.hidden_size))  # (image tokens, d)
        is_image = ids == image_token_id  # (b, n)
        if int(is_image.sum()) != feats.shape[0]:
            raise InspectError(f"image tokens in the prompt ({int(is_image.sum())}) differ from image features ({feats.shape[0]})")
        if positions is None and grid_thw is not None:
            positions = mrope_positions(ids, grid_thw, image_token_id, v.merge_size)[0]  # (3, b, n)
        x = self.text_embeds(self.text.embed(ids.to(device)))  # (b, n, d)
        x = self.scattered(x.masked_scatter(is_image.to(device)[..., None], feats.to(x.dtype)))  # (b, n, d)
        if positions is not None:
            positions = self.positions(positions.to(device))
        return self.text(ids.to(device), embeds=x, positions=positions)  # (b, n, n_v)


def load_vlm(path: Any, spec: ModelSpec | None = None, dtype: torch.dtype = torch.float32, device: Any = "cpu") -> VLM:
    """A VLM filled from a safetensors file or directory, by inventory name (text and vision)."""
    from pathlib import Path

    from inspector.hf_config import load_spec
    from inspector.load_weights import load_weights, open_source

    path = Path(path)
    source = open_source(path)
    spec = spec or load_spec(str(path if path.is_dir() else path.parent))
    model = VLM(spec, device="meta", dtype=dtype)
    load_weights(model.text, source, dtype, device)
    load_vision_weights(model.vision, source, dtype, device)
    return model.eval()


# --------------------------------------------------------------------------- tracing

# Modules whose outputs are steps of the trace, by name in VLM.named_modules().
TRACE_STEPS = re.compile(
    r"vision\.(patches|embedded|rope|blocks\.\d+|no_class|merger\.(norm|grouped|hidden|out))"
    r"|vision\.blocks\.0\.(norm1|attn\.(qkv|q_rope|k_rope|probs|heads|proj)|after_attn|norm2|mlp\.(fc1|fc2))"
    r"|image_features|text_embeds|scattered|positions|text\.(rope|layers\.\d+|norm|lm_head)"
    r"|text\.layers\.0\.(attn_norm|attn\.(q|k|v|qkv|q_norm|k_norm|q_heads|k_heads|v_heads|q_rope|k_rope"
    r"|k_repeat|v_repeat|probs|heads|o)|after_attn|mlp_norm|mlp\.(gate|up|gate_up|gated|down))"
)
# Sub-steps of vision block 0 (the others repeat them with the same shapes).
VISION_SUBSTEPS = {
    "norm1": "LayerNorm",
    "attn.qkv": "fused q, k, v projection (with bias): (n_img, 3 d_img)",
    "attn.q_rope": "2D RoPE applied to q: (n_h, n_img, d_h)",
    "attn.k_rope": "2D RoPE applied to k",
    "attn.probs": "attention weights: softmax over the patches of the same image",
    "attn.heads": "weighted sum of v per head",
    "attn.proj": "heads concatenated, output projection W_o",
    "after_attn": "residual: x + attention",
    "norm2": "LayerNorm",
    "mlp.fc1": "fc1 to mlp_ratio x d_img, then the activation",
    "mlp.fc2": "fc2 back to d_img; residual follows",
}
STEP_NOTES = {
    "vision.rope": "vision 2D RoPE cos (1, n_img, d_h): row angles, then column angles",
    "vision.no_class": "class token dropped",
    "vision.merger.grouped": "n_merge^2 neighbouring patches concatenated",
    "vision.merger.hidden": "first linear + GELU",
    "vision.merger.out": "projector output, one row per image token",
    "image_features": "image features, flattened over tiles",
    "text_embeds": "text embeddings (b, n, d)",
    "scattered": "image features scattered into the image-token rows",
    "positions": "M-RoPE position ids (3, b, n): temporal, height, width",
    "text.rope": "LLM RoPE cos",
    "text.norm": "final RMSNorm",
    "text.lm_head": "logits (b, n, n_v)",
}
KIND_NOTES = {
    "qwen2_vl": {
        "vision.patches": "Step 6: patches as 3D-conv input (n_img, C, d_t_patch, d_patch, d_patch)",
        "vision.embedded": "3D convolution, stride = kernel: (n_img, d_img)",
        "vision.merger.norm": "merger ln_q, before grouping",
    },
    "internvit": {
        "vision.patches": "conv patch embed, flattened: (tiles, (S/p)^2, d_img)",
        "vision.embedded": "class token prepended, position embedding added",
        "vision.merger.grouped": "pixel shuffle (downsample_ratio 1/n_merge, v2): n_merge^2 patches per token",
        "vision.merger.norm": "mlp1.0 LayerNorm",
        "vision.merger.hidden": "mlp1.1 linear + GELU",
        "vision.merger.out": "mlp1.3 linear",
    },
}


def step_note(kind: str, name: str) -> str:
    if name.startswith("vision.blocks.0."):
        return VISION_SUBSTEPS.get(name.removeprefix("vision.blocks.0."), "")
    if name.startswith("text.layers.0."):
        from inspector.trace import describe

        return describe(name.removeprefix("text."))[1]
    if ".blocks." in name:
        return "encoder block: LayerNorm, attention" + (" x ls1" if kind == "internvit" else "") + \
            ", residual; LayerNorm, MLP" + (" x ls2" if kind == "internvit" else "") + ", residual"
    if ".layers." in name:
        return "decoder layer"
    return KIND_NOTES.get(kind, {}).get(name) or STEP_NOTES.get(name, "")


def trace_vlm(model: VLM, prompt: str, image: Any, tokenizer=None) -> tuple[torch.Tensor, StepLog]:
    """Run prompt + image through `model` (any device, meta included) recording every step."""
    from inspector.image_preprocess import StepRecord
    from inspector.trace import Recorder

    log = StepLog()
    inputs = build_inputs(model.spec, prompt, image, tokenizer, log)
    kind = model.spec.vision.kind

    def on_record(r) -> None:  # module outputs join the steps recorded outside modules, in order
        log.steps.append(StepRecord(r.name, r.shapes[0] if r.shapes else (), step_note(kind, r.name), r.dtype))

    with torch.no_grad(), Recorder(model, include=TRACE_STEPS, on_record=on_record):
        logits = model(inputs.ids, inputs.pixel_values, inputs.grid_thw, inputs.image_token_id)
    return logits, log


def collapse_steps(steps: list) -> list:
    """Runs of `...blocks.N` / `...layers.N` records with one shape become one record `...blocks.0-31`
    whose note says how many; everything else passes through (StepRecord in, StepRecord out)."""
    from inspector.image_preprocess import StepRecord

    out, i = [], 0
    while i < len(steps):
        m = re.fullmatch(r"(.*\.(?:blocks|layers))\.(\d+)", steps[i].name)
        j = i + 1
        if m:
            while (j < len(steps) and steps[j].shape == steps[i].shape
                   and re.fullmatch(re.escape(m.group(1)) + r"\.\d+", steps[j].name)):
                j += 1
        if m and j - i > 1:
            last = steps[j - 1].name.rsplit(".", 1)[1]
            note = f"{j - i} x {steps[i].note}" if steps[i].note else f"{j - i} layers"
            out.append(StepRecord(f"{m.group(1)}.{m.group(2)}-{last}", steps[i].shape, note, steps[i].dtype))
        else:
            out.append(steps[i])
            j = i + 1
        i = j
    return out


def image_trace(model: str, prompt: str, image: str | None = None, image_size: str | None = None,
                device: str = "cpu", dtype: torch.dtype = torch.float32,
                tokenizer=None) -> tuple[ModelSpec, torch.Tensor, StepLog]:
    """What `inspect trace PROMPT --model M --image FILE | --image-size HxW [--device meta]` runs.

    On meta, any spec works (shapes only); otherwise `model` must be a local directory with
    safetensors weights. Every bad input is one InspectError line."""
    from pathlib import Path

    from inspector.hf_config import load_spec
    from inspector.image_preprocess import load_image, synthetic_image
    from inspector.image_tokens import parse_size

    if (image is None) == (image_size is None):
        raise InspectError("give exactly one of --image FILE or --image-size HEIGHTxWIDTH")
    spec = load_spec(model)
    require_vlm(spec)
    picture = load_image(image) if image is not None else synthetic_image(*parse_size(image_size))
    if device == "meta":
        vlm = VLM(spec, device="meta", dtype=dtype)
    else:
        path = Path(model)
        if not (path.is_dir() and any(path.glob("*.safetensors"))):
            raise InspectError(f"{model}: no local safetensors weights to run on {device}; use --device meta for shapes only")
        vlm = load_vlm(path, spec, dtype, device)
    logits, log = trace_vlm(vlm, prompt, picture, tokenizer)
    return spec, logits, log
