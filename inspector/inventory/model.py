"""The tensor inventory of a whole model: every tensor a checkpoint of a spec should hold.

One list of `WeightEntry` records, in checkpoint order, drives `params` (grouped into rows by
inventory.accounting), `verify` (compared with checkpoint headers) and the reference model's
weight loading (looked up by role and layer).
"""

from __future__ import annotations

from inspector.inventory.entry import WeightEntry
from inspector.inventory.text import text_inventory
from inspector.inventory.vision import vision_inventory
from inspector.spec.model import ModelSpec


def inventory(spec: ModelSpec) -> list[WeightEntry]:
    """The whole model's inventory: vision tower and projector first, then the LLM."""
    if spec.vision is None:
        return text_inventory(spec.text)
    return vision_inventory(spec.vision) + text_inventory(spec.text)
