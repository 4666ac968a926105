"""The examples in each command's --help run offline as written (the packaged SmolLM2 GGUF file
standing in for the $SMOL they name); only those naming a local directory or a photo of the user's are left
out, since no such file exists here."""

from __future__ import annotations

import os
import shlex

import pytest
import typer
from typer.testing import CliRunner

from conftest import smollm2_gguf_path
from inspector.cli.app import app

COMMANDS = typer.main.get_command(app).commands
EXAMPLES = [(name, line.strip()) for name, command in sorted(COMMANDS.items())
            for line in (command.help or "").split("Examples:")[-1].splitlines()
            if "Examples:" in (command.help or "") and line.strip().startswith("inspect ")]
LOCAL = ("./", "photo.jpg")


def test_every_command_with_options_shows_examples():
    assert {name for name, _ in EXAMPLES} >= {"verify", "trace", "run", "chat", "memory", "report"}


@pytest.mark.parametrize("command,example", EXAMPLES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(EXAMPLES)])
def test_help_example_runs(command, example, tmp_path, monkeypatch):
    if any(local in example for local in LOCAL):
        pytest.skip(f"names a file of the user's: {example}")
    args = shlex.split(example)[1:]
    if "$SMOL" in args or command in ("trace", "run", "chat"):
        pytest.importorskip("torch")
    args = [str(smollm2_gguf_path()) if a == "$SMOL" else a for a in args]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "questions.txt").write_text("What is the capital of France?\n")
    if command in ("run", "chat"):
        args += ["-n", "4"]  # the example as shown, with fewer new tokens to keep the suite short
    result = CliRunner().invoke(app, args, input="What is the capital of France?\n", env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 0, f"{example}: exit {result.exit_code}\n{result.output[-2000:]}"
