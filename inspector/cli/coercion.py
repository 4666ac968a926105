"""Option values of the plain kinds coerced without pydantic; anything else, and every error, by typer's own coercion.

typer 0.29 coerces every option value through a pydantic TypeAdapter, and importing pydantic (86
modules) was the largest single part of `inspect params`' cold start. A plain value (a string, digits
within the option's bounds, a choice written as it is listed, a list of strings, a default of the
right type, a flag's bool) comes out the same without it: `plain_coercion(command)` gives each option
a coercion that returns such a value at once and hands any other to the coercion typer would have
built (which then imports pydantic), so every error message stays typer's. tests/test_cli_coercion.py
holds every option of every command against typer's own result. A typer without this hook
(`typer._coercion`), or of another minor version than the tested one, keeps its own coercion throughout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, get_args, get_origin

_DIGITS = re.compile(r"[1-9][0-9]{0,17}|0")
_DECIMAL = re.compile(r"(?:[1-9][0-9]{0,14}|0)(?:\.[0-9]{1,15})?")
_UNSURE = object()  # the value is not plain: typer's coercion decides


def _within(number, info) -> bool:
    return (info.min is None or number >= info.min) and (info.max is None or number <= info.max)


def _number(annotation, info, value):
    if info.clamp or isinstance(value, bool):
        return _UNSURE
    if annotation is int:
        number = int(value) if isinstance(value, str) and _DIGITS.fullmatch(value) else value
        return number if isinstance(number, int) and _within(number, info) else _UNSURE
    number = float(value) if isinstance(value, str) and _DECIMAL.fullmatch(value) else value
    return number if isinstance(number, float) and _within(number, info) else _UNSURE


def _choice(annotation: type[Enum], info, value, ctx):
    if not info.case_sensitive or getattr(ctx, "token_normalize_func", None) is not None:
        return _UNSURE
    for member in annotation:
        if value is member or (isinstance(value, str) and value == str(member.value)):
            return member
    return _UNSURE


def plain_value(annotation: Any, info: Any, value: Any, ctx: Any = None) -> Any:
    """The coerced value when it is plain, else _UNSURE."""
    if info.parser is not None:
        return _UNSURE
    if annotation is str:
        return value if isinstance(value, str) else _UNSURE
    if annotation is bool:
        return value if isinstance(value, bool) else _UNSURE
    if annotation in (int, float):
        return _number(annotation, info, value)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _choice(annotation, info, value, ctx)
    if get_origin(annotation) is list and get_args(annotation) == (str,):
        plain = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        return list(value) if plain else _UNSURE
    return _UNSURE


# The hook is typer's private API: used only with the typer minor version tests/test_cli_coercion.py holds
# against typer's own coercion (the pin of the test extra); any other typer keeps its own coercion throughout.
TESTED_TYPER = "0.29."


def _typer_hook():
    import typer

    if not typer.__version__.startswith(TESTED_TYPER):
        return None, None
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
    except ImportError:  # pragma: no cover
        return None, None
    return RuntimeParam, build_runtime_param


RuntimeParam, build_runtime_param = _typer_hook()
if RuntimeParam is not None:
    @dataclass(frozen=True)
    class PlainFirst(RuntimeParam):
        """A plain value at once; any other to the coercion typer would have built (`descriptor`)."""

        descriptor: Any

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            plain = plain_value(self.annotation, self.parameter_info, value, ctx)
            if plain is not _UNSURE:
                return plain
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)


def _plain_first(param) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(param, "_runtime_param", False) is not None or descriptor.file_annotation:
        return  # not typer's, already coerced once, or a file
    param._runtime_param = PlainFirst(descriptor.parameter_info, descriptor.annotation, descriptor)


def plain_coercion(command) -> None:
    """Give each option of `command`, and its --help (built when asked for), the plain-first coercion."""
    if RuntimeParam is None:  # pragma: no cover
        return
    for param in getattr(command, "params", ()):
        _plain_first(param)
    get_help_option = command.get_help_option

    def help_option(ctx):
        option = get_help_option(ctx)
        if option is not None:
            _plain_first(option)
        return option

    command.get_help_option = help_option
