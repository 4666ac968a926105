"""RoPE settings of a decoder config: the base (`rope_theta`) and the scaling, read and validated.

`read_rope(reader, head_dim)` -> `(rope_theta, rope_scaling or None, local rope_theta or None,
partial rotary factor)`; the local base is Gemma 3's for its sliding layers (`rope_local_base_freq`,
or transformers 5's per-layer-type `rope_parameters`), the partial factor the fraction of each head
RoPE rotates (`partial_rotary_factor`, GPT-NeoX's `rotary_pct`). The settings come from
`rope_scaling` (transformers 4 configs) or, when it holds `rope_theta`, the flat `rope_parameters`
object transformers 5 writes instead. The scaling dict is returned as the config wrote it; every
field a rope type needs is checked first, the way transformers' rope functions
(modeling_rope_utils) use it, so nothing downstream divides by zero or indexes past a table:

* `rope_theta`: a finite number > 0 (yarn: > 1, it takes log(theta));
* `linear`, `dynamic`: `factor` > 0 (dynamic also needs head_dim > 2);
* `yarn`: `factor` > 0; optional `original_max_position_embeddings` >= 1, `beta_fast`, `beta_slow`
  > 0, `attention_factor` >= 0, `mscale`, `mscale_all_dim` finite, `truncate` true/false;
* `llama3`: `factor`, `low_freq_factor`, `high_freq_factor` > 0,
  `original_max_position_embeddings` >= 1;
* `longrope`: `short_factor`, `long_factor` lists of finite numbers;
* `mrope_section` (Qwen2-VL's M-RoPE, any type): positive integers summing to head_dim / 2.
RoPE rotates pairs, so head_dim must be even. A legal but odd value (a factor below 1, beta_fast
below beta_slow, high_freq_factor below low_freq_factor, an original length not below
max_position_embeddings) is a one-line warning, as transformers warns. Other rope types pass through; the reference model refuses them when run.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, Mapping

from inspector.errors import InspectError, warn
from inspector.spec.config_reader import ConfigReader

REQUIRED: Mapping[str, tuple[str, ...]] = {
    "linear": ("factor",),
    "dynamic": ("factor",),
    "yarn": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
    "longrope": ("short_factor", "long_factor"),
}


def _positive(s: ConfigReader, key: str, strict: bool = True) -> float:
    value = s.float(key)
    if value <= 0 if strict else value < 0:
        raise s.fail(key, "must be > 0" if strict else "must be >= 0", s.cfg[key])
    return value


def _theta(r: ConfigReader, value: Any, key: str) -> float:
    theta = ConfigReader({key: value}, r.where, r.path).float(key)
    if theta <= 0:
        raise r.fail(key, "must be > 0", value)
    return theta


def _per_layer_type(r: ConfigReader, params: Any) -> tuple[Any, float | None]:
    """transformers 5 writes Gemma 3's settings per layer type: the full layers' and the local base."""
    if not (isinstance(params, dict) and isinstance(params.get("full_attention"), dict)):
        return params, None
    sliding = params.get("sliding_attention")
    local = None
    if isinstance(sliding, dict) and "rope_theta" in sliding:
        local = _theta(ConfigReader(sliding, r.where, r._field("rope_parameters.sliding_attention")),
                       sliding["rope_theta"], "rope_theta")
    return params["full_attention"], local


def _partial(r: ConfigReader, params: Any, default: float = 1.0) -> float:
    if isinstance(params, dict) and params.get("partial_rotary_factor") is not None:
        value = ConfigReader(params, r.where, r._field("rope_parameters")).float("partial_rotary_factor")
    elif r.has("partial_rotary_factor"):
        value = r.float("partial_rotary_factor")
    else:
        value = r.float("rotary_pct", default)
    if not 0 < value <= 1:
        raise InspectError(f"{r.where}: field 'partial_rotary_factor' must be in (0, 1], got {value}")
    return value


def read_rope(r: ConfigReader, head_dim: int | None = None,
              partial_default: float = 1.0) -> tuple[float, Mapping[str, Any] | None, float | None, float]:
    """(rope_theta, rope_scaling or None, local rope_theta or None, partial rotary factor), validated
    (see the module docstring); `partial_default`: the family's class default when the config names none."""
    scaling = r.raw("rope_scaling")
    if scaling is not None and not isinstance(scaling, dict):
        raise r.fail("rope_scaling", "must be an object", scaling)
    theta = _theta(r, r.raw("rope_theta", 10000.0), "rope_theta")
    local = _theta(r, r.raw("rope_local_base_freq"), "rope_local_base_freq") if r.has("rope_local_base_freq") else None
    key = "rope_scaling"
    params = r.raw("rope_parameters")  # transformers >= 5 writes RoPE settings here instead
    if params is not None and not isinstance(params, dict):
        raise r.fail("rope_parameters", "must be an object", params)
    params, per_type_local = _per_layer_type(r, params)
    local = per_type_local if per_type_local is not None else local
    partial = _partial(r, params, partial_default)
    if params and "rope_theta" in params:
        theta = _theta(ConfigReader(params, r.where, r._field("rope_parameters")), params["rope_theta"], "rope_theta")
        kind = params.get("rope_type", params.get("type", "default"))
        if scaling is None and (kind != "default" or "mrope_section" in params):
            scaling = {k: v for k, v in params.items() if k not in ("rope_theta", "partial_rotary_factor")}
            key = "rope_parameters"
        if kind == "proportional":  # Gemma 4: the factor is part of the rule (zero frequencies past it), over all of d_h
            scaling, partial = {**scaling, "partial_rotary_factor": partial}, 1.0
    if head_dim is not None and head_dim % 2:
        raise r.fail("head_dim", "must be even: RoPE rotates pairs of dimensions", head_dim)
    if scaling:
        _check_scaling(ConfigReader(scaling, r.where, r._field(key)), theta, head_dim, r.cfg.get("max_position_embeddings"))
    return theta, MappingProxyType(dict(scaling)) if scaling else None, local, partial


def _check_scaling(s: ConfigReader, theta: float, head_dim: int | None, max_pos: Any) -> None:
    kind = s.cfg.get("rope_type", s.cfg.get("type", "default"))
    if not isinstance(kind, str):
        raise s.fail("rope_type", "must be a string", kind)
    ntk_alpha = kind == "dynamic" and s.cfg.get("alpha") is not None  # Hunyuan: a fixed alpha stretches the base
    for key in () if ntk_alpha else REQUIRED.get(kind, ()):
        if s.cfg.get(key) is None:
            raise InspectError(f"{s.where}: field '{s._field(key)}' is missing (rope_type {kind!r} needs it)")
    if ntk_alpha:
        _positive(s, "alpha")
    if "factor" in REQUIRED.get(kind, ()) and s.cfg.get("factor") is not None:
        factor = _positive(s, "factor")
        if factor < 1:
            warn(f"{s.where}: field '{s._field('factor')}' is {factor:g}, below 1 (transformers expects >= 1)")
    if kind == "dynamic" and head_dim is not None and head_dim <= 2:
        raise InspectError(f"{s.where}: field '{s._field('rope_type')}' is 'dynamic', which needs head_dim > 2 "
                           f"(head_dim is {head_dim})")
    if kind == "yarn":
        _check_yarn(s, theta)
    elif kind == "llama3":
        low, high = _positive(s, "low_freq_factor"), _positive(s, "high_freq_factor")
        if high < low:  # (equal is how Llama 4 switches the blend off)
            warn(f"{s.where}: field '{s._field('high_freq_factor')}' ({high:g}) is below low_freq_factor ({low:g})")
        original = s.int("original_max_position_embeddings")
        if isinstance(max_pos, int) and original >= max_pos:
            warn(f"{s.where}: field '{s._field('original_max_position_embeddings')}' ({original}) is not below "
                 f"max_position_embeddings ({max_pos})")
    elif kind == "longrope":
        for key in ("short_factor", "long_factor"):
            value = s.raw(key)
            if not isinstance(value, list) or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value):
                raise s.fail(key, "must be a list of finite numbers", value)
    if s.has("mrope_section"):
        _check_mrope(s, head_dim)


def _check_yarn(s: ConfigReader, theta: float) -> None:
    if theta <= 1:
        raise InspectError(f"{s.where}: field '{s._field('rope_type')}' is 'yarn', which needs rope_theta > 1 "
                           f"(it takes its logarithm; rope_theta is {theta:g})")
    if s.has("original_max_position_embeddings"):
        s.int("original_max_position_embeddings")
    betas = [_positive(s, key) if s.has(key) else default for key, default in (("beta_fast", 32), ("beta_slow", 1))]
    if betas[0] < betas[1]:
        warn(f"{s.where}: field '{s._field('beta_fast')}' ({betas[0]:g}) is below beta_slow ({betas[1]:g})")
    if s.has("attention_factor"):
        _positive(s, "attention_factor", strict=False)
    for key in ("mscale", "mscale_all_dim"):
        if s.has(key):
            s.float(key)
    if s.has("truncate"):
        s.bool("truncate", True)


def _check_mrope(s: ConfigReader, head_dim: int | None) -> None:
    section = s.raw("mrope_section")
    if not isinstance(section, list) or not section or not all(
            isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in section):
        raise s.fail("mrope_section", "must be a list of positive integers", section)
    if head_dim is not None and sum(section) != head_dim // 2:
        raise s.fail("mrope_section", f"must sum to head_dim / 2 = {head_dim // 2}", section)
