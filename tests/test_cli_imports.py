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
    assert not {m for m in loaded if m.startswith("inspector.compute")}, "params without --flops loaded the ledger"


def test_params_flops_is_pure_arithmetic():
    """`params --flops` (issue 22): the FLOPs column comes from the ledger, no torch, no other command."""
    loaded = _modules(["params", "smollm2-135m", "--flops", "-f", "json"])
    unneeded = {"torch", "inspector.cli.flops", "inspector.reference", "inspector.compute.machine", "inspector.memory"}
    assert not loaded & unneeded, f"params --flops imported {sorted(loaded & unneeded)}"
    assert {"inspector.compute.figures", "inspector.reports.params_flops"} <= loaded


def test_serving_a_preset_imports_only_the_serving_arithmetic():
    """Cold start (issue 27): `memory PRESET` loads neither training's modules, nor the vision tower's profile
    or the image layer (a text model), nor the checkpoint-header reader (a preset has no files), nor torch."""
    loaded = _modules(["memory", "qwen2.5-0.5b", "-f", "json"])
    unneeded = {"inspector.memory.training", "inspector.memory.lora", "inspector.memory.zero",
                "inspector.memory.modules", "inspector.memory.vllm_vision", "inspector.image.rules",
                "inspector.memory.headers",
                "inspector.checkpoint.verify", "inspector.checkpoint.open", "torch"}
    assert not loaded & unneeded, f"memory imported {sorted(loaded & unneeded)}"
    assert {"inspector.memory.serving", "inspector.memory.vllm", "inspector.memory.parallel"} <= loaded


def test_flops_is_pure_arithmetic():
    """`flops PRESET --gpu G` (issue 22): the ledger and the roofline load no torch, no other command, no memory
    estimate; cold start like `params`."""
    loaded = _modules(["flops", "llama-3.2-1b", "--gpu", "H100-80GB", "--train-tokens", "1e9", "--gpus", "8",
                       "-f", "json"])
    unneeded = {"torch", "inspector.cli.memory", "inspector.cli.run", "inspector.memory", "inspector.runtime.trace",
                "inspector.compute.machine", "inspector.checkpoint.verify", "inspector.reference"}
    assert not loaded & unneeded, f"flops imported {sorted(loaded & unneeded)}"
    assert {"inspector.compute.flops", "inspector.compute.roofline", "inspector.reports.flops"} <= loaded


def test_help_builds_every_command():
    from typer.testing import CliRunner

    from inspector.cli.app import COMMANDS, app

    shown = CliRunner().invoke(app, ["--help"])
    assert shown.exit_code == 0
    assert all(f" {name} " in shown.stdout for name in COMMANDS)


DYNAMO = """
import sys
import torch
from inspector.reference.text import TextModel
from inspector.spec.presets import find_preset
from inspector.spec.model import from_hf_config
spec = from_hf_config(find_preset("smollm2-135m").config, "smollm2").text
meta = TextModel(spec, device="meta")
print("torch._dynamo" in sys.modules)
cpu = TextModel(spec, device="cpu")
for name in ("embed",):
    a, b = getattr(meta, name).weight, getattr(cpu, name).weight
    print(a.shape == b.shape, a.dtype == b.dtype, a.requires_grad == b.requires_grad, a.device.type)
print(meta.lm_head.weight is meta.embed.weight)
"""


def test_a_model_built_on_meta_skips_the_random_init_that_imports_dynamo():
    """`inspect run`/`trace` build the TextModel on meta and then load or trace it: the embedding's random
    init has no values to set there, and its normal_ imports torch._dynamo (~1.4 s a command). On meta the
    embedding has the shape, dtype and requires_grad it has on cpu (where the random init still runs),
    and stays tied to the LM head."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", DYNAMO],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True", "True", "meta", "True"]
