"""RoPE settings of a config: the base, the scaling (transformers 4's `rope_scaling` or 5's
`rope_parameters`), Gemma 3's separate base for sliding layers, and the rotated fraction of each head.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from inspector.errors import InspectError
from inspector.spec.config_reader import ConfigReader


def read_rope(r: ConfigReader) -> tuple[float, Mapping[str, Any] | None, float | None, float]:
    """(rope_theta, rope scaling or None, local rope_theta or None, partial rotary factor)."""
    scaling = r.raw("rope_scaling")
    if scaling is not None and not isinstance(scaling, dict):
        raise InspectError(f"{r.where}: field '{r._field('rope_scaling')}' must be an object, got {scaling!r}")
    theta = r.float("rope_theta", 10000.0)
    local = r.float("rope_local_base_freq") if r.has("rope_local_base_freq") else None
    partial = r.float("partial_rotary_factor") if r.has("partial_rotary_factor") else r.float("rotary_pct", 1.0)
    params = r.raw("rope_parameters")  # transformers >= 5 writes RoPE settings here instead
    if isinstance(params, dict) and isinstance(params.get("full_attention"), dict):  # per layer type
        sliding = params.get("sliding_attention")
        if isinstance(sliding, dict) and "rope_theta" in sliding:
            local = float(sliding["rope_theta"])
        params = params["full_attention"]
    if isinstance(params, dict):
        if "rope_theta" in params:
            theta = float(params["rope_theta"])
        if "partial_rotary_factor" in params:
            partial = float(params["partial_rotary_factor"])
        kind = params.get("rope_type", params.get("type", "default"))
        if scaling is None and (kind != "default" or "mrope_section" in params):
            scaling = {k: v for k, v in params.items() if k not in ("rope_theta", "partial_rotary_factor")}
    if not 0 < partial <= 1:
        raise InspectError(f"{r.where}: field 'partial_rotary_factor' must be in (0, 1], got {partial}")
    return theta, MappingProxyType(dict(scaling)) if scaling else None, local, partial
