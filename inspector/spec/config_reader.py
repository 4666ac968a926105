"""Typed, validated access to one config dict: every error names the file and the field.

`ConfigReader` is the only way the spec package reads a config.json (or a nested text/vision
config): `int`, `float`, `bool`, `str`, `sub`, with the keys it read recorded so that unknown keys
can be reported rather than silently dropped.
"""

from __future__ import annotations

from typing import Any, Mapping

from inspector.errors import InspectError


class ConfigReader:
    """Typed access to one config dict, with errors that name the file and the field."""

    def __init__(self, cfg: Any, where: str, path: str = "") -> None:
        if not isinstance(cfg, dict):
            raise InspectError(f"{where}: {path or 'config'} must be a JSON object, got {type(cfg).__name__}")
        self.cfg, self.where, self.path = cfg, where, path
        self.used: set[str] = set()

    def _field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.cfg.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        value = self.cfg.get(key)
        return default if value is None else value

    def int(self, key: str, default: int | None = None, minimum: int = 1) -> int:
        value = self.raw(key, default)
        if value is None:
            raise InspectError(f"{self.where}: field '{self._field(key)}' is missing")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InspectError(
                f"{self.where}: field '{self._field(key)}' must be an integer, got {value!r}"
            )
        if value < minimum:
            raise InspectError(
                f"{self.where}: field '{self._field(key)}' must be >= {minimum}, got {value}"
            )
        return value

    def float(self, key: str, default: float | None = None) -> float:
        value = self.raw(key, default)
        if value is None:
            raise InspectError(f"{self.where}: field '{self._field(key)}' is missing")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InspectError(
                f"{self.where}: field '{self._field(key)}' must be a number, got {value!r}"
            )
        return float(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise InspectError(
                f"{self.where}: field '{self._field(key)}' must be true or false, got {value!r}"
            )
        return value

    def str(self, key: str, default: str | None = None) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise InspectError(
                f"{self.where}: field '{self._field(key)}' must be a string, got {value!r}"
            )
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
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise InspectError(f"{reader.where}: field '{reader._field(key)}' must be token ids, got {value!r}")
    return tuple(values)


