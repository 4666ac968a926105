"""Tracing a vision-language model: prompt + image -> logits, with every step recorded.

`trace_vlm(...)` runs everything and returns the logits and a `StepLog` of inspector.steps.Record
rows (the record type of the text trace): preprocessing steps are recorded by a callable, module
steps by forward hooks on every module that carries a step note (inspector.reference.layers.note /
Tap), removed in `finally`. inspector.steps.collapse_steps folds repeated encoder blocks and decoder
layers for the report. `inspect trace PROMPT --image ...` builds the model with
inspector.runtime.prepare.load_runtime (inspector.runtime.tracing).
"""

from __future__ import annotations

import re
from typing import Any

import torch

from inspector.image.preprocess import StepLog
from inspector.reference.vlm import VLM
from inspector.runtime.trace import Recorder
from inspector.runtime.vlm_inputs import build_inputs


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


def read_image(image: str | None, image_size: str | None):
    """The picture of --image FILE, else a synthetic one of --image-size HEIGHTxWIDTH."""
    from inspector.image.preprocess import load_image, synthetic_image
    from inspector.image.tokens import parse_size

    return load_image(image) if image is not None else synthetic_image(*parse_size(image_size))
