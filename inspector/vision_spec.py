"""Vision towers of vision-language models (placeholder until the VLM work lands)."""

from __future__ import annotations

from inspector.errors import InspectError


def vision_spec_from_config(top, wrapper, text):
    raise InspectError(f"{top.where}: {wrapper.model_type} vision towers are not supported yet")
