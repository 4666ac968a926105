"""The step table of an image trace: StepRecords (inspector.image.preprocess) -> a render.Report.

Encoder blocks and decoder layers with one shape are collapsed into one row (`vision.blocks.0-31`).
Pure: no model is run here.
"""

from __future__ import annotations

from typing import Any

from inspector.reports.render import Report, Section
from inspector.spec.model import ModelSpec
from inspector.runtime.vlm_trace import collapse_steps

STAGES = (("image.", "Image"), ("tiling.", "Image"), ("tokens.", "Tokens"), ("vision.", "Vision encoder"),
          ("image_features", "Projector"), ("text.", "Language model"))


def _stage(name: str) -> str:
    if name.startswith("vision.merger."):
        return "Projector"
    return next((label for prefix, label in STAGES if name.startswith(prefix)), "Merge into text")


def image_trace_report(spec: ModelSpec, steps: list, device: str) -> Report:
    rows = collapse_steps(steps)
    table = [[i + 1, _stage(r.name), r.name, "(" + ", ".join(str(d) for d in r.shape) + ")", r.note]
             for i, r in enumerate(rows)]
    data: dict[str, Any] = {
        "model": spec.name, "device": device,
        "steps": [{"step": r.name, "stage": _stage(r.name), "shape": list(r.shape), "note": r.note} for r in rows],
    }
    notes = ["shapes only (meta device)"] if device == "meta" else []
    section = Section(f"{spec.name}: image trace", ["#", "Stage", "Step", "Shape", "Note"], table, notes)
    return Report([section], data, ["step", "stage", "shape", "note"],
                  [[r.name, _stage(r.name), "x".join(str(d) for d in r.shape), r.note] for r in rows])
