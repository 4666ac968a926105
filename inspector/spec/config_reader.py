"""Typed, validated access to one config dict: every error names the file and the field.

`ConfigReader` is the only way the spec package reads a config.json (or a nested text/vision
config): `int`, `float`, `bool`, `str`, `sub`, with the keys it read recorded so that unknown keys
can be reported rather than silently dropped. Numbers must be finite, integers within
[minimum, maximum] (by default at most 2**31 - 1), strings where strings belong.

`FIELD_RULES` holds the bounds that a field's meaning fixes whatever model it belongs to (an
epsilon is positive, a dtype is a dtype name); they apply
to a value found in the config however it is read, `raw` included.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from inspector.errors import InspectError, printable

MAX_INT = 2**31 - 1


def _positive_number(value: Any) -> str | None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    return None if ok else "must be a positive finite number"


def _positive_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_INT
    return None if ok else f"must be an integer in [1, {MAX_INT}] or null"


def _non_negative_number(value: Any) -> str | None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
    return None if ok else "must be a finite number >= 0"


# what transformers writes as `torch_dtype` / `dtype`: torch's dtype names (and "auto")
TORCH_DTYPE_NAMES = frozenset({
    "auto", "float16", "half", "bfloat16", "float32", "float", "float64", "double", "int8", "uint8", "int16",
    "int32", "int64", "bool", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
    "float4_e2m1fn_x2", "complex64", "complex128"})


def _dtype_name(value: Any) -> str | None:
    if isinstance(value, str) and value.removeprefix("torch.") in TORCH_DTYPE_NAMES:
        return None
    return "must be a torch dtype name such as \"bfloat16\""


def _architectures(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, str) and 0 < len(v) <= 200 for v in value)
    return None if ok else "must be a list of class names (strings)"


def _aspect_ratio(value: Any) -> str | None:
    """LLaVA-OneVision's `vision_aspect_ratio`: "anyres_max_N" caps the tiles at N (digits bounded before int())."""
    if not isinstance(value, str):
        return "must be a string such as \"anyres_max_9\""
    n = value.removeprefix("anyres_max_")
    if n != value and not (n.isascii() and n.isdigit() and len(n) <= 4 and int(n) >= 1):
        return "must be anyres_max_N with N a whole number from 1 to 9999"
    return None


FIELD_RULES: dict[str, Callable[[Any], str | None]] = {
    "vision_aspect_ratio": _aspect_ratio,
    "rms_norm_eps": _positive_number,
    "layer_norm_eps": _positive_number,
    "torch_dtype": _dtype_name,
    "dtype": _dtype_name,
    "architectures": _architectures,
    # mixture of experts: experts per token, expert groups, router noise, SwiGLU clamp
    "num_experts_per_tok": _positive_int,
    "experts_per_token": _positive_int,
    "n_group": _positive_int,
    "topk_group": _positive_int,
    "router_jitter_noise": _non_negative_number,
    "swiglu_limit": _positive_number,
    "routed_scaling_factor": _positive_number,
    # soft-capping divides by the cap: 0 would be a division by zero (null switches it off)
    "attn_logit_softcapping": _positive_number,
    "final_logit_softcapping": _positive_number,
}


def shown(value: Any) -> str:
    """A config value as messages show it: its JSON-ish repr, on one line, cut to about 80 characters
    (with an ellipsis and its length: `printable`)."""
    if isinstance(value, (list, dict)) and len(value) > 1000:  # repr() of a huge array is costly
        return f"a {'list' if isinstance(value, list) else 'object'} of {len(value):,} items"
    return printable(repr(value), 80)


class ConfigReader:
    """Typed access to one config dict, with errors that name the file and the field."""

    def __init__(self, cfg: Any, where: str, path: str = "") -> None:
        if not isinstance(cfg, dict):
            raise InspectError(f"{where}: {path or 'config'} must be a JSON object, got {type(cfg).__name__}")
        self.cfg, self.where, self.path = cfg, where, path
        self.used: set[str] = set()

    def _field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str, value: Any) -> InspectError:
        """The one-line error for field `key`: `file: field 'key' problem, got value`."""
        return InspectError(f"{self.where}: field '{self._field(key)}' {problem}, got {shown(value)}")

    def has(self, key: str) -> bool:
        return self.cfg.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        value = self.cfg.get(key)
        if value is None:
            return default
        rule = FIELD_RULES.get(key)
        problem = rule(value) if rule is not None else None
        if problem:
            raise self.fail(key, problem, value)
        return value

    def int(self, key: str, default: int | None = None, minimum: int = 1, maximum: int = MAX_INT) -> int:
        value = self.raw(key, default)
        if value is None:
            raise InspectError(f"{self.where}: field '{self._field(key)}' is missing")
        if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "must be an integer", value)
        if value < minimum:
            raise InspectError(f"{self.where}: field '{self._field(key)}' must be >= {minimum}, got {value}")
        if value > maximum:
            raise InspectError(f"{self.where}: field '{self._field(key)}' must be at most {maximum:,}, got {value:,}")
        return value

    def float(self, key: str, default: float | None = None) -> float:
        value = self.raw(key, default)
        if value is None:
            raise InspectError(f"{self.where}: field '{self._field(key)}' is missing")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, "must be a number", value)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(key, "must be a finite number", value)
        return number

    def bool(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false", value)
        return value

    def str(self, key: str, default: str | None = None) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise self.fail(key, "must be a string", value)
        return value

    def first(self, keys: tuple[str, ...], kind: str, defaults: Mapping[str, Any] | None = None,
              default: Any = None, **kw: Any) -> Any:
        """The value of the first of `keys` present, read as `kind` ("int", "float", ...); else the
        first of them in `defaults` (a config class's defaults); else `default`; else an error
        naming the first key."""
        for key in keys:
            if self.has(key):
                return getattr(self, kind)(key, **kw)
        for key in keys:
            if defaults and key in defaults:
                return defaults[key]
        if default is None:
            raise InspectError(f"{self.where}: field '{self._field(keys[0])}' is missing")
        return default

    def sub(self, key: str) -> "ConfigReader":
        self.used.add(key)
        if key not in self.cfg:
            raise InspectError(f"{self.where}: field '{self._field(key)}' is missing")
        return ConfigReader(self.cfg[key], self.where, self._field(key))

    def unused(self) -> tuple[str, ...]:
        return tuple(sorted(k for k in self.cfg if k not in self.used))


def flag(reader: ConfigReader, setting: bool | str) -> bool:
    return reader.bool(setting, False) if isinstance(setting, str) else setting


def token_ids(reader: ConfigReader, key: str) -> tuple[int, ...]:
    value = reader.raw(key)
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_INT for v in values):
        raise reader.fail(key, "must be token ids (integers)", value)
    return tuple(values)
