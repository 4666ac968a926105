"""Tracing a vision-language model: prompt + image -> logits, with every step recorded.

`trace_vlm(...)` runs everything and returns the logits and a `StepLog` of inspector.steps.Record
rows (the record type of the text trace): preprocessing steps are recorded by a callable, module
steps by forward hooks on every module that carries a step note (inspector.reference.layers.note /
Tap), removed in `finally`. inspector.steps.collapse_steps folds repeated encoder blocks and decoder
layers for the report. `image_trace(...)` is what
`inspect trace PROMPT --image ...` runs.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from inspector.errors import InspectError
from inspector.image.preprocess import StepLog
from inspector.reference.vlm import VLM, load_vlm, require_vlm
from inspector.runtime.trace import Recorder
from inspector.runtime.vlm_inputs import build_inputs
from inspector.spec.model import ModelSpec


def noted_modules(model: torch.nn.Module) -> re.Pattern:
    """A pattern matching the name of every module that carries a step note."""
    names = [name for name, m in model.named_modules() if name and hasattr(m, "step_note")]
    return re.compile("|".join(re.escape(n) for n in names) or "$^")


def trace_vlm(model: VLM, prompt: str, image: Any, tokenizer=None) -> tuple[torch.Tensor, StepLog]:
    """Run prompt + image through `model` (any device, meta included) recording every step."""
    log = StepLog()
    inputs = build_inputs(model.spec, prompt, image, tokenizer, log)
    with torch.no_grad(), Recorder(model, include=noted_modules(model), on_record=log.steps.append):
        logits = model(inputs.ids, inputs.pixel_values, inputs.grid_thw, inputs.image_token_id, layout=inputs.layout)
    return logits, log


def image_trace(model: str, prompt: str, image: str | None = None, image_size: str | None = None,
                device: str = "cpu", dtype: torch.dtype = torch.float32,
                tokenizer=None) -> tuple[ModelSpec, torch.Tensor, StepLog]:
    """What `inspect trace PROMPT --model M --image FILE | --image-size HxW [--device meta]` runs.

    On meta, any spec works (shapes only); otherwise `model` must be a local directory with
    safetensors weights. Every bad input is one InspectError line."""
    from pathlib import Path

    from inspector.image.preprocess import load_image, synthetic_image
    from inspector.image.tokens import parse_size
    from inspector.spec.resolve import load_spec

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
