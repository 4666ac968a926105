"""The step table of an image trace: inspector.steps.Record rows -> a render.Report.

Encoder blocks and decoder layers whose shapes equal their layer 0's are folded into one row
(`vision.blocks.1-31`), as in the text trace. Pure: no model is run here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from inspector.reports.render import Report, Section
from inspector.reports.trace import step_json
from inspector.spec.model import ModelSpec
from inspector.steps import collapse_steps

STAGES = (("image.", "Image"), ("tiling.", "Image"), ("tokens.", "Tokens"), ("vision.merger.", "Projector"),
          ("vision.deepstack.", "Projector"), ("vision.", "Vision encoder"), ("image_features", "Projector"),
          ("text.", "Language model"))


def _stage(name: str) -> str:
    return next((label for prefix, label in STAGES if name.startswith(prefix)), "Merge into text")


def _shape(r) -> str:
    return "(" + ", ".join(str(d) for d in r.shape) + ")" if r.shapes else ""


def image_trace_report(spec: ModelSpec, steps: list, device: str) -> Report:
    rows = collapse_steps(steps)
    table = [[i + 1, _stage(r.name), r.name, _shape(r), r.text or r.note] for i, r in enumerate(rows)]
    data: dict[str, Any] = {
        "model": spec.name, "device": device,
        "steps": [{**step_json(replace(r, text=r.text or r.note)), "stage": _stage(r.name)} for r in rows],
    }
    notes = ["shapes only (meta device)"] if device == "meta" else []
    section = Section(f"{spec.name}: image trace", ["#", "Stage", "Step", "Shape", "Note"], table, notes)
    return Report([section], data, ["name", "stage", "shape", "description"],
                  [[r.name, _stage(r.name), "x".join(str(d) for d in r.shape), r.text or r.note] for r in rows])
