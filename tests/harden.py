"""Running bad-input cases through the CLI, many per subprocess, each bounded in memory and time.

`run_cases(cases)` sends a batch of cases to ONE Python process, started on first use and reused by
every batch of the session (so the suite pays the imports once). For each batch it caps its address
space at what it holds plus `budget_mb` (resource.setrlimit), and runs every case through the real
`inspect` command group with file descriptors 1 and 2 redirected to files, so that output written
below Python (a Rust panic, a forked child) is caught too. Each case
has a wall-clock limit (SIGALRM). An audit hook records every path the case opens. The result of a
case: exit code (or "timeout" / "memory" / "crash"), stdout, stderr, seconds, opened paths.

`assert_refused(result, needle)` is the promise every bad input must keep: exit code 2, exactly one
line on stderr starting with `error:` and naming the thing (`needle`), no traceback.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_SUFFIXES = (".py", ".pyc", ".so", ".pth", ".pyi", ".typed", ".json.gz", "METADATA", "RECORD", "entry_points.txt")

DRIVER = r'''
import io, json, os, resource, signal, sys, tempfile, time, traceback
import numpy, torch, PIL.Image, tokenizers, jinja2  # the heavy imports, before any cap
from typer.main import get_command
from inspector.cli.app import app
command = get_command(app)
opened = []
def audit(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        opened.append(os.fsdecode(args[0]))
sys.addaudithook(audit)
class Timeout(BaseException):
    pass
def on_alarm(signum, frame):
    raise Timeout()
signal.signal(signal.SIGALRM, on_alarm)
saved = os.dup(1), os.dup(2)
requests = os.fdopen(os.dup(0), "r")
def run(case, default_timeout):
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    sys.stdout.flush(); sys.stderr.flush()
    os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
    del opened[:]
    old_cwd = os.getcwd()
    os.chdir(case.get("cwd") or old_cwd)
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, case.get("timeout", default_timeout))
    try:
        command.main(args=case["args"], prog_name="inspect", standalone_mode=True)
        rc = 0
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except Timeout:
        rc = "timeout"
    except MemoryError:
        rc = "memory"
    except BaseException:
        rc = "crash"
        sys.stderr.write(traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    os.chdir(old_cwd)
    sys.stdout.flush(); sys.stderr.flush()
    os.dup2(saved[0], 1); os.dup2(saved[1], 2)
    texts = []
    for f in (out, err):
        f.seek(0)
        texts.append(f.read(1 << 20).decode("utf-8", "replace"))
        f.close()
    return {"id": case["id"], "rc": rc, "stdout": texts[0], "stderr": texts[1], "seconds": seconds,
            "opened": sorted(set(opened))}
for line in requests:  # one batch per line: cap the address space, run its cases, answer in one line
    spec = json.loads(line)
    exec(spec.get("setup", ""))
    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + spec["budget_mb"] * 2**20, resource.RLIM_INFINITY))
    results = [run(case, spec["timeout"]) for case in spec["cases"]]
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    os.write(saved[0], (json.dumps(results) + "\n").encode())
'''


@dataclass
class Result:
    id: str
    rc: int | str
    stdout: str
    stderr: str
    seconds: float
    opened: list[str] = field(default_factory=list)

    def opened_under(self, directory: str | os.PathLike) -> list[str]:
        """Paths the case opened inside `directory` (links resolved)."""
        d = os.path.realpath(directory)
        return [p for p in self.opened if os.path.realpath(p) == d or os.path.realpath(p).startswith(d + os.sep)]

    def data_opened_outside(self, directory: str | os.PathLike, *allowed_names: str) -> list[str]:
        """Data files the case opened outside `directory` (code, /proc and /dev/null aside; files named
        in `allowed_names` aside)."""
        d = os.path.realpath(directory)
        return [p for p in self.opened
                if not p.endswith(CODE_SUFFIXES) and not p.startswith(("/proc/", "/sys/")) and p != os.devnull
                and os.path.basename(p) not in allowed_names
                and not (os.path.realpath(p) + os.sep).startswith(d + os.sep)]


_RUNNER: subprocess.Popen | None = None


def _runner(env: dict[str, str] | None) -> subprocess.Popen:
    """The one driver process of this test session (started on first use, reused by every batch)."""
    global _RUNNER
    if _RUNNER is None or _RUNNER.poll() is not None:
        environment = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                       "COLUMNS": "200", **(env or {})}
        environment.pop("INSPECT_DEBUG", None)
        _RUNNER = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=environment)
        atexit.register(_RUNNER.kill)
    return _RUNNER


def run_cases(cases: list[dict], budget_mb: int = 1024, timeout: float = 20.0, setup: str = "",
              env: dict[str, str] | None = None) -> dict[str, Result]:
    """Run every case ({"id", "args", optional "cwd", "timeout"}) in the capped driver process."""
    runner = _runner(env)
    runner.stdin.write(json.dumps({"cases": cases, "budget_mb": budget_mb, "timeout": timeout, "setup": setup}) + "\n")
    runner.stdin.flush()
    line = runner.stdout.readline()
    if not line:
        raise AssertionError(f"the case driver died (rc {runner.wait()}): {runner.stderr.read()[-3000:]}")
    return {r["id"]: Result(**r) for r in json.loads(line)}


def assert_refused(result: Result, *needles: str) -> None:
    """Exit code 2, one `error:` line on stderr naming each needle, no traceback."""
    assert result.rc == 2, f"{result.id}: exit {result.rc}, stderr: {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    errors = [line for line in lines if not line.startswith("warning: ")]
    assert len(errors) == 1 and errors[0].startswith("error: "), f"{result.id}: stderr is {result.stderr!r}"
    for needle in needles:
        assert needle in errors[0], f"{result.id}: {needle!r} not in {errors[0]!r}"


def fifo(path: Path) -> Path:
    """A named pipe nobody writes to: reading it would block forever."""
    os.mkfifo(path)
    return path
