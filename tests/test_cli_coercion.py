"""inspector.cli.coercion: a plain option value comes out exactly as typer's own coercion makes it (same value,
same type), and any other value goes to typer's coercion, so every error is typer's."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import pytest
import typer.main
from typer._click import Context
from typer._coercion import build_runtime_param

from inspector.cli.app import COMMANDS, app
from inspector.cli.coercion import _UNSURE, PlainFirst, plain_value

SAMPLES = ["0", "1", "7", "007", "10", "4096", "-1", "+3", " 5", "5 ", "1_000", "1e3", "0.5", "0.01", "1.0", ".5",
           "5.", "1.5e-3", "nan", "inf", "-inf", "99999999999999999999", "3.000000000000001", "", "abc", "x y",
           "table", "json", "md", "csv", "JSON", "Table", "flash", "none", "adamw", "cpu", "bf16", "True", "false",
           0, 1, 4096, -1, 0.0, 0.5, 1.0, 2.5, True, False, ("a", "b"), ["a"], (), Path("x")]


def _options():
    """(command, option) for every option of every command whose coercion typer builds."""
    group = typer.main.get_command(app)
    for name in COMMANDS:
        command = group.commands[name]
        for param in command.params:
            if getattr(param, "type_descriptor", None) is not None:
                yield name, command, param


def _typer(param, value, ctx):
    try:
        return ("value", build_runtime_param(param.type_descriptor)._coerce_value(value, param=param, ctx=ctx))
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return ("error", type(exc).__name__, str(exc))


@pytest.mark.parametrize("name,command,param", list(_options()), ids=lambda x: getattr(x, "name", x))
def test_plain_values_equal_typers(name, command, param):
    ctx = Context(command, info_name=name)
    descriptor = param.type_descriptor
    for value in SAMPLES:
        plain = plain_value(descriptor.annotation, descriptor.parameter_info, value, ctx)
        if plain is _UNSURE:
            continue
        kind, *expected = _typer(param, value, ctx)
        assert kind == "value", f"--{param.name} {value!r}: plain gives {plain!r}, typer refuses: {expected}"
        assert (type(plain), repr(plain)) == (type(expected[0]), repr(expected[0])), f"--{param.name} {value!r}"


@pytest.mark.parametrize("name,command,param", list(_options()), ids=lambda x: getattr(x, "name", x))
def test_every_value_coerces_as_typer_does(name, command, param):
    """Through the command's own coercion (PlainFirst): each sample gives typer's value or typer's error."""
    ctx = Context(command, info_name=name)
    coercion = param.get_runtime_param()
    assert isinstance(coercion, PlainFirst)
    for value in SAMPLES:
        try:
            got = ("value", coercion._coerce_value(value, param=param, ctx=ctx))
        except Exception as exc:  # noqa: BLE001
            got = ("error", type(exc).__name__, str(exc))
        expected = _typer(param, value, ctx)
        if got[0] == "value" and expected[0] == "value":
            assert type(got[1]) is type(expected[1]), f"--{param.name} {value!r}"
        assert repr(got) == repr(expected), f"--{param.name} {value!r}"  # (repr: nan equals nan)


class Colour(Enum):
    red = "red"


def test_unsure_cases():
    info = typer.models.OptionInfo(min=1)
    assert plain_value(int, info, "0") is _UNSURE  # below the bound: typer's error
    assert plain_value(int, info, "12x") is _UNSURE
    assert plain_value(int, info, "12") == 12
    assert plain_value(Colour, typer.models.OptionInfo(case_sensitive=False), "RED") is _UNSURE
    assert plain_value(Path, typer.models.OptionInfo(), "x") is _UNSURE  # paths: typer's checks
