"""Run several `inspect` command lines in one process (torch and huggingface_hub imported once).

    python tests/hub_cli.py '[["params", "org/tiny"], ["run", "hi", "-m", "org/tiny"]]'

prints a JSON list of {"code", "stdout", "stderr", "seconds"}, one per command line, each run through
typer's CliRunner on the real `inspect` app. The Hub tests use it where a fresh process per command
would cost seconds of imports; the environment (HF_ENDPOINT, HF_HOME, ...) is the process's own.
A command line ["@files", DIR] lists DIR's regular files instead ({"path": size} as stdout), to see a
cache between two commands.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    from typer.testing import CliRunner

    from inspector.cli.app import app

    runner = CliRunner()
    out = []
    for argv in json.loads(sys.argv[1]):
        if argv[0] == "@files":
            root = Path(argv[1])
            files = {str(f.relative_to(root)): f.stat().st_size for f in sorted(root.rglob("*")) if f.is_file()}
            out.append({"code": 0, "stdout": json.dumps(files), "stderr": "", "seconds": 0.0})
            continue
        start = time.perf_counter()
        result = runner.invoke(app, argv)
        out.append({"code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr,
                    "seconds": time.perf_counter() - start})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
