"""The first-day CLI fixes: a missing torch extra named, a closed stdout pipe, options that do not
apply to the chosen mode, the output format taken from the file's extension, and the help text."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


# ---- a missing torch (the state right after `pip install .`)

_NO_TORCH = """
import json, sys
sys.modules["torch"] = None  # `import torch` raises ModuleNotFoundError, as when it is not installed
from typer.testing import CliRunner
from inspector.cli.app import app
out = {}
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(app, args, prog_name="inspect")
    out[" ".join(args)] = [r.exit_code, r.stderr]
print(json.dumps(out))
"""

TORCH_COMMANDS = [["trace", "hi", "-m", "qwen3-0.6b"], ["run", "hi", "-m", "qwen3-0.6b"], ["chat", "-m", "qwen3-0.6b"],
                  ["report", "qwen3-0.6b", "--trace", "hi"]]


def test_missing_torch_names_the_extra(tmp_path):
    commands = [args + (["-o", str(tmp_path / "r.html")] if args[0] == "report" else []) for args in TORCH_COMMANDS]
    done = subprocess.run([sys.executable, "-c", _NO_TORCH, json.dumps(commands)], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    for args, (code, stderr) in zip(commands, results.values()):
        assert code == 2, (args, stderr)
        assert stderr.strip() == (f'error: inspect {args[0]} needs torch, which is not installed: '
                                  'pip install "llm-inspector[torch]"'), args


# ---- a closed stdout pipe (`inspect params X | head -1`)

@pytest.mark.parametrize("fmt", ["table", "md"])
def test_closed_stdout_pipe_exits_0_quietly(fmt):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first write: every write fails with EPIPE
    try:
        done = subprocess.run([sys.executable, "-m", "inspector", "params", "qwen2.5-1.5b", "-f", fmt],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")
