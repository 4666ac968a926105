"""What the Hub answers, checked before huggingface_hub builds a path from it; a total deadline per request.

huggingface_hub names its cache files after strings the server sends: ``blobs/<ETag>``,
``<ETag>.lock``, ``snapshots/<X-Repo-Commit>/`` and ``.no_exist/<X-Repo-Commit>/``, and a snapshot
after the model info's ``sha``. It does not check them, so an ETag of ``../../tmp/x`` would write the
answer outside the cache. `guard_session` installs (once per process) huggingface_hub's own HTTP
client with one more response hook, `check_answer`, so every answer of every request (huggingface_hub's
downloads and listings, and our own range reads, which share the session) is checked before anyone
uses it: ETag (Hub answers; a CDN's own ETag is never used for a path), X-Linked-Etag and
X-Repo-Commit, after huggingface_hub's own normalisation (``W/`` and quotes stripped), and the
``sha`` of a model-info answer, must be 40 or 64 hex digits. Anything else is one InspectError line,
raised before a byte of the answer is written.

`deadline_s` is the total time one request may take (INSPECT_HUB_DEADLINE, default
:data:`DEADLINE_S`): a server that drips its headers or body a byte at a time never trips a read
timeout, so `within_deadline` runs a request on a daemon thread and gives up on it at the deadline.
huggingface_hub's snapshot downloads run on worker threads the interpreter waits for at exit, so a
download given up (inspector.hub.cache.watched) also calls `abandon_transfers`: every connection the
session opened is shut down (a read blocked on a dripping server returns at once) and the session
starts no new request until `resume_transfers`.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import threading
import weakref
from typing import Any, Callable
from urllib.parse import urlsplit

from inspector.errors import InspectError, printable
from inspector.limits import HUB_DEADLINE_S, HUB_DEADLINE_MAX_S, HUB_INFO_MAX_BYTES

DEADLINE_S = HUB_DEADLINE_S
DEADLINE_ENV = "INSPECT_HUB_DEADLINE"
HEX_ID = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
MODEL_INFO = re.compile(r"/api/models/[^/]+/[^/]+(?:/revision/[^/]+)?/?")
_INSTALLED: list[bool] = []
_LOCK = threading.Lock()
_ABANDONED = threading.Event()
_SOCKETS: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()


class _RecordingBackend:
    """httpcore's network backend, noting every socket it opens (see `abandon_transfers`)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def connect_tcp(self, *args: Any, **kwargs: Any) -> Any:
        stream = self.inner.connect_tcp(*args, **kwargs)
        sock = stream.get_extra_info("socket")
        if sock is not None:
            _SOCKETS.add(sock)
        return stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def abandon_transfers() -> None:
    """Give up every transfer of the session: no new request starts, open connections are shut down."""
    _ABANDONED.set()
    for sock in list(_SOCKETS):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def resume_transfers() -> None:
    _ABANDONED.clear()


def _check_request(request: Any) -> None:
    if _ABANDONED.is_set():
        raise InspectError(f"{printable(urlsplit(str(request.url)).path)}: not requested, the download was given up "
                           f"at its deadline ({DEADLINE_ENV})")


def deadline_s() -> float:
    """Seconds one Hub request may take in all: INSPECT_HUB_DEADLINE, else DEADLINE_S."""
    raw = os.environ.get(DEADLINE_ENV)
    if raw is None or not raw.strip():
        return DEADLINE_S
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= HUB_DEADLINE_MAX_S):
        raise InspectError(f"{DEADLINE_ENV}={printable(raw)!r}: expected seconds, a number above 0 and at most "
                           f"{HUB_DEADLINE_MAX_S:g}")
    return value


def _hub_origin() -> tuple[str, str]:
    from inspector.hub.failures import endpoint

    url = urlsplit(endpoint())
    return url.scheme, url.netloc


def _refuse(response: Any, what: str, value: str) -> InspectError:
    url = urlsplit(str(response.request.url))
    shown = value if len(value) <= 120 else value[:120] + "..."
    return InspectError(f"the Hub's answer to {printable(url.path)} names {what} {printable(json.dumps(shown))}, "
                        "not a 40- or 64-digit hex id: refused before anything was written")


def _normalized(etag: str) -> str:
    return etag.lstrip("W/").strip('"')  # exactly huggingface_hub's _normalize_etag


def check_answer(response: Any) -> None:
    """The response hook: refuse an answer whose ids would become cache paths (see the module docstring)."""
    headers = response.headers
    for name in ("X-Linked-Etag", "X-Repo-Commit"):
        value = headers.get(name)
        if value is not None and not HEX_ID.fullmatch(_normalized(value) if name == "X-Linked-Etag" else value):
            raise _refuse(response, name, value)
    url = urlsplit(str(response.request.url))
    from_hub = (url.scheme, url.netloc) == _hub_origin()
    etag = headers.get("ETag")
    if etag is not None and (response.request.method == "HEAD" or (from_hub and not url.path.startswith("/api/"))):
        if not HEX_ID.fullmatch(_normalized(etag)):
            raise _refuse(response, "ETag", etag)
    if from_hub and response.status_code == 200 and MODEL_INFO.fullmatch(url.path):
        sha = _model_info_sha(response)
        if sha is not None and not (isinstance(sha, str) and HEX_ID.fullmatch(sha)):
            raise _refuse(response, "commit (model info 'sha')", str(sha))


def _model_info_sha(response: Any) -> Any:
    """The `sha` of a model-info answer, read here at most HUB_INFO_MAX_BYTES (and kept for its reader)."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > HUB_INFO_MAX_BYTES:
            raise InspectError(f"the Hub's answer to {printable(urlsplit(str(response.request.url)).path)} is over "
                               f"{HUB_INFO_MAX_BYTES:,} bytes")
    response._content = bytes(body)  # what read() and json() return from now on
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None  # huggingface_hub's own parse says what is wrong
    return doc.get("sha") if isinstance(doc, dict) else None


def guard_session() -> None:
    """Add `check_answer` to the clients huggingface_hub makes (its factory's, a user's own factory
    kept), once per process."""
    if _INSTALLED:
        return
    with _LOCK:
        if _INSTALLED:
            return
        from huggingface_hub import set_client_factory
        from huggingface_hub.utils import _http

        previous = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None) or _http.default_client_factory

        def factory() -> Any:
            client = previous()
            hooks = client.event_hooks.get("response", [])
            if check_answer not in hooks:
                client.event_hooks["response"] = [*hooks, check_answer]
                client.event_hooks["request"] = [*client.event_hooks.get("request", []), _check_request]
            pool = getattr(getattr(client, "_transport", None), "_pool", None)
            if pool is not None and hasattr(pool, "_network_backend"):  # httpx's default transport
                pool._network_backend = _RecordingBackend(pool._network_backend)
            return client

        set_client_factory(factory)
        _INSTALLED.append(True)


def within_deadline(what: str, call: Callable[[], Any], seconds: float | None = None) -> Any:
    """call() on a daemon thread, given up after `seconds` (deadline_s()) with one line naming `what`."""
    seconds = deadline_s() if seconds is None else seconds
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    worker = threading.Thread(target=run, name="hub-request", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise InspectError(f"{what}: the answer was not complete after {seconds:g} s ({DEADLINE_ENV})")
    if "error" in box:
        raise box["error"]
    return box["value"]
