"""The CLI imports a command's module only when that command runs (inspector.cli.app.COMMANDS): `params`
imports none of the other commands' modules, nor what only they need, and `--help` still lists every
command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import sys
from typer.testing import CliRunner
from inspector.cli.app import app
result = CliRunner().invoke(app, {args!r})
assert result.exit_code == 0, result.output
print(" ".join(sorted(m for m in sys.modules if m.startswith("inspector.") or m in ("torch", "pydantic"))))
"""


def _modules(args: list[str]) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", CHECK.format(args=args)], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_params_imports_no_other_command():
    loaded = _modules(["params", "smollm2-135m", "-f", "json"])
    others = {"inspector.cli.chat", "inspector.cli.memory", "inspector.cli.report", "inspector.cli.run",
              "inspector.cli.tokens", "inspector.cli.trace", "inspector.cli.verify", "inspector.cli.model_options",
              "inspector.memory", "inspector.runtime.trace", "inspector.checkpoint.verify", "torch"}
    assert not loaded & others, f"params imported {sorted(loaded & others)}"
    assert "inspector.inventory.accounting" in loaded


def test_serving_a_preset_imports_only_the_serving_arithmetic():
    """Cold start (issue 27): `memory PRESET` loads neither training's modules, nor the vision tower's profile
    (a text model), nor the checkpoint-header reader (a preset has no files)."""
    loaded = _modules(["memory", "qwen2.5-0.5b", "-f", "json"])
    unneeded = {"inspector.memory.training", "inspector.memory.lora", "inspector.memory.zero",
                "inspector.memory.modules", "inspector.memory.vllm_vision", "inspector.memory.headers",
                "inspector.checkpoint.verify", "inspector.checkpoint.open", "torch"}
    assert not loaded & unneeded, f"memory imported {sorted(loaded & unneeded)}"
    assert {"inspector.memory.serving", "inspector.memory.vllm", "inspector.memory.parallel"} <= loaded


def test_help_builds_every_command():
    from typer.testing import CliRunner

    from inspector.cli.app import COMMANDS, app

    shown = CliRunner().invoke(app, ["--help"])
    assert shown.exit_code == 0
    assert all(f" {name} " in shown.stdout for name in COMMANDS)
