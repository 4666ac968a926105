"""A warm `inspect` for the docs' shell examples: one process imports torch and the CLI once, then forks a
child per command, so that a page's fifty commands do not each pay a second of imports.

`WarmCli(env)` starts the server (this file run as a script) with the pages' environment and writes an
`inspect` shim into a directory to put first on PATH. The shim is what bash runs, inside the page's pipes
and redirections: it hands its argv, working directory, environment and its stdin, stdout and stderr
(the file descriptors themselves) to the server over a Unix socket, and exits with the child's exit
code. The child sets the working directory, the environment and argv and runs `inspector.cli.main`,
as the installed `inspect` would; its output goes straight to the shim's descriptors. The server only
imports before it forks (no torch op has started a thread pool), so each child starts as a fresh
process would, less the imports (the inspector package and the libraries its commands import lazily,
PRELOAD, except those that read the environment when imported).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

SHIM = """#!{python} -IS
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect({sock!r})
msg = json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}).encode()
socket.send_fds(s, [len(msg).to_bytes(8, "little") + msg], [0, 1, 2])
code = s.recv(16)
sys.exit(int(code) if code else 70)
"""
MAX_MESSAGE = 1 << 24


class WarmCli:
    """The server process and the directory holding the `inspect` shim that talks to it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="inspect-warm-"))
        sock = str(self.dir / "s")
        import inspector

        # the package the tests import, wherever it is installed from (this file runs as a script from tests/)
        package = str(Path(inspector.__file__).resolve().parents[1])
        env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, (package, env.get("PYTHONPATH"))))}
        self.server = subprocess.Popen([sys.executable, __file__, sock], env=env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, text=True)
        ready = self.server.stdout.readline()
        if ready.strip() != "ready":
            self.server.kill()
            raise RuntimeError(f"the warm inspect server did not start: {ready!r}")
        shim = self.dir / "inspect"
        shim.write_text(SHIM.format(python=sys.executable, sock=sock))
        shim.chmod(0o755)

    def close(self) -> None:
        self.server.kill()
        self.server.wait()


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 3)
    size = int.from_bytes(data[:8], "little")
    data = data[8:]
    while len(data) < size:
        more = conn.recv(size - len(data))
        if not more:
            raise ConnectionError("the shim hung up")
        data += more
    return json.loads(data), fds


def _child(request: dict, fds: list[int]) -> None:
    """In the forked child: become the command, run it, and exit with its code (never returns)."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["inspect", *request["argv"]]
        from inspector.cli import main

        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            if not isinstance(done.code, (int, type(None))):
                print(done.code, file=sys.stderr)
    except BaseException:  # anything main did not handle: a traceback on stderr, as a real process shows
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _answer(conn: socket.socket, pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    try:
        conn.sendall(str(os.waitstatus_to_exitcode(status)).encode())
    finally:
        conn.close()


# What the commands import lazily, imported here once instead of in each child: torch._dynamo (torch
# imports it, with sympy, on the first random initialisation of a module's weights under a device
# context: a second of every command that builds a model), the libraries of the reports, readers and
# tokenizers. Not huggingface_hub nor transformers (which imports it): huggingface_hub reads its
# environment variables when it is imported, and a command's own environment must be the one it reads.
PRELOAD = ("torch._dynamo", "numpy", "rich.console", "rich.table", "rich.markdown", "tabulate", "wcwidth",
           "tokenizers", "gguf", "jinja2", "safetensors.torch", "yaml", "PIL.Image")


def _preload() -> None:
    """Import torch, every module of the inspector package and PRELOAD (each one that is installed)."""
    import importlib
    import pkgutil

    import torch  # noqa: F401

    import inspector

    names = [m.name for m in pkgutil.walk_packages(inspector.__path__, "inspector.") if not m.name.endswith("__main__")]
    for name in [*names, *PRELOAD]:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    if "huggingface_hub" in sys.modules:
        raise RuntimeError("the warm server imported huggingface_hub: it would read the server's environment, "
                           "not each command's")


def serve(sock: str) -> None:
    _preload()

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock)
    listener.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        request, fds = _recv_request(conn)
        pid = os.fork()
        if pid == 0:
            listener.close()
            conn.close()
            _child(request, fds)
        for fd in fds:
            os.close(fd)
        threading.Thread(target=_answer, args=(conn, pid), daemon=True).start()


if __name__ == "__main__":
    serve(sys.argv[1])
