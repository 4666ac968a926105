"""inspector.hub's one-line errors, without a Hub: offline, a dead port, a silent socket, and `describe`
on the exceptions huggingface_hub itself raises for the Hub's answers (hf_raise_for_status on real
httpx responses). The Hub protocol end to end is tests/test_hub_server.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from inspector.hub import describe
from inspector.hub.failures import retry_after

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60
    )


PROBE = """
import time
from inspector.checkpoint.hub import read_hub_headers
from inspector.errors import InspectError
t = time.time()
try:
    read_hub_headers("Qwen/Foo")
    print("NO ERROR")
except InspectError as e:
    print("InspectError|" + str(e) + "|%.1f" % (time.time() - t))
"""


def test_offline_mode_is_one_line_error(tmp_path):
    out = _run(PROBE, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path))
    kind, msg, _ = out.stdout.strip().split("|")
    assert kind == "InspectError", out.stderr
    assert msg == "Qwen/Foo: the safetensors headers are not in the local cache and HF_HUB_OFFLINE is set"


def test_dead_network_fails_fast(tmp_path):
    with socket.socket() as s:  # a port nothing listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _run(PROBE, HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path))
    kind, msg, secs = out.stdout.strip().split("|")
    assert kind == "InspectError", out.stderr
    assert msg == (f"Qwen/Foo: fetching model.safetensors.index.json: cannot reach the Hugging Face Hub at "
                   f"http://127.0.0.1:{port} (offline?)")
    assert float(secs) < 10


def test_silent_server_is_cut_off_by_the_timeout(tmp_path):
    """A server that accepts connections and never answers: given up after HF_HUB_DOWNLOAD_TIMEOUT."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def accept_forever():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept_forever, daemon=True)
    t.start()
    try:
        out = _run(PROBE, HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path), HF_HUB_DOWNLOAD_TIMEOUT="2")
    finally:
        stop.set()
        t.join()
        for c in accepted:
            c.close()
        server.close()
    kind, msg, secs = out.stdout.strip().split("|")
    assert kind == "InspectError", out.stderr
    assert msg == ("Qwen/Foo: fetching model.safetensors.index.json: no answer from the Hub within 2 s "
                   "(it accepted the connection)")
    assert float(secs) < 6


def _hub_error(status: int, code: str | None = None, url: str = "https://huggingface.co/org/m/resolve/main/x",
               **headers: str) -> Exception:
    """The exception huggingface_hub raises for this answer of the Hub."""
    import httpx2
    from huggingface_hub.utils import hf_raise_for_status

    if code:
        headers["X-Error-Code"] = code
    response = httpx2.Response(status, headers=headers, content=b"{}", request=httpx2.Request("GET", url))
    try:
        hf_raise_for_status(response)
    except Exception as exc:  # noqa: BLE001 - the point
        return exc
    raise AssertionError("no error raised")


@pytest.mark.parametrize(
    "status,code,headers,reason",
    [
        (401, "GatedRepo", {}, "the repo is gated (HTTP 401): accept its terms on the Hub and set HF_TOKEN"),
        (403, "GatedRepo", {}, "the repo is gated and this token has not been granted access (HTTP 403); "
                               "ask for access on its page"),
        (404, "RevisionNotFound", {}, "no such revision on the Hugging Face Hub"),
        (404, "RepoNotFound", {}, "no such model repo on the Hugging Face Hub (or it is private; set HF_TOKEN)"),
        (404, "EntryNotFound", {}, "the file is not in the repo"),
        (503, None, {}, "the Hub answered HTTP 503 Service Unavailable"),
        (429, None, {"Retry-After": "7"}, "the Hub is rate-limiting requests (HTTP 429, Retry-After 7 s)"),
    ],
    ids=["gated-401", "gated-403", "revision", "repo", "entry", "503", "429"],
)
def test_hub_answers_become_one_line(status, code, headers, reason):
    exc = _hub_error(status, code, **headers)
    assert describe("org/m", exc, "fetching config.json", "v1") == f"org/m@v1: fetching config.json: {reason}"


def test_the_cause_of_a_wrapped_error_is_found():
    """huggingface_hub wraps a failed HEAD in LocalEntryNotFoundError; the reason is its cause."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        try:
            raise _hub_error(500)
        except Exception as inner:
            raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub") from inner
    except Exception as outer:
        line = describe("org/m", outer, "downloading config.json")
    assert line == "org/m: downloading config.json: the Hub answered HTTP 500 Internal Server Error"


def test_unexpected_exception_is_one_line():
    line = describe("org/m", RuntimeError("weird\nthing"), "reading headers")
    assert line == "org/m: reading headers failed (RuntimeError: weird)"


def test_retry_after_reads_seconds_and_dates():
    from email.utils import formatdate
    from types import SimpleNamespace
    import time

    assert retry_after(SimpleNamespace(headers={"Retry-After": "12"})) == 12
    in_a_minute = retry_after(SimpleNamespace(headers={"Retry-After": formatdate(time.time() + 60, usegmt=True)}))
    assert 55 < in_a_minute <= 61
    assert retry_after(SimpleNamespace(headers={"Retry-After": "soon"})) is None
    assert retry_after(SimpleNamespace(headers={})) is None
