"""Tracing a vision-language model: prompt + image -> logits, with every step recorded.

`trace_vlm(...)` runs everything and returns the logits and a `StepLog` of (name, shape, note)
records: preprocessing steps are recorded by a callable, module steps by forward hooks on named
modules and Taps (removed in `finally`); nothing is recorded, or costs anything, otherwise.
`image_trace(...)` is what `inspect trace PROMPT --image ...` runs.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from inspector.errors import InspectError
from inspector.image.preprocess import StepLog, StepRecord
from inspector.reference.vlm import VLM, load_vlm, require_vlm
from inspector.runtime.trace import Recorder
from inspector.runtime.vlm_inputs import build_inputs
from inspector.spec.model import ModelSpec

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
    if ".blocks." in name:
        return "encoder block: LayerNorm, attention" + (" x ls1" if kind == "internvit" else "") + \
            ", residual; LayerNorm, MLP" + (" x ls2" if kind == "internvit" else "") + ", residual"
    if ".layers." in name:
        return "decoder layer"
    return KIND_NOTES.get(kind, {}).get(name) or STEP_NOTES.get(name, "")


def trace_vlm(model: VLM, prompt: str, image: Any, tokenizer=None) -> tuple[torch.Tensor, StepLog]:
    """Run prompt + image through `model` (any device, meta included) recording every step."""
    from inspector.image.preprocess import StepRecord
    from inspector.runtime.trace import Recorder

    log = StepLog()
    inputs = build_inputs(model.spec, prompt, image, tokenizer, log)
    kind = model.spec.vision.kind

    def on_record(r) -> None:  # module outputs join the steps recorded outside modules, in order
        text = r.text if r.name.startswith("text.layers.0.") else step_note(kind, r.name)
        log.steps.append(StepRecord(r.name, r.shapes[0] if r.shapes else (), text, r.dtype))

    with torch.no_grad(), Recorder(model, include=TRACE_STEPS, on_record=on_record):
        logits = model(inputs.ids, inputs.pixel_values, inputs.grid_thw, inputs.image_token_id)
    return logits, log


def collapse_steps(steps: list) -> list:
    """Runs of `...blocks.N` / `...layers.N` records with one shape become one record `...blocks.0-31`
    whose note says how many; everything else passes through (StepRecord in, StepRecord out)."""
    from inspector.image.preprocess import StepRecord

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

    from inspector.spec.resolve import load_spec
    from inspector.image.preprocess import load_image, synthetic_image
    from inspector.image.tokens import parse_size

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
