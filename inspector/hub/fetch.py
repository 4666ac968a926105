"""Requests to the Hub under one set of rules (see inspector.hub): retries, GETs of files or byte ranges, listings.

`with_retries` runs one attempt after another, `hub_get` is one GET of a file or a byte range of it
(huggingface_hub's session, URL and headers), `repo_listing` asks once per repo for the commit and the
file list.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from inspector.errors import InspectError, printable
from inspector.hub.environment import check_hub_environment
from inspector.hub.failures import answer_timeout, describe, endpoint, network_reason, retry_after
from inspector.hub.guard import guard_session, resume_transfers, within_deadline

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
MAX_TRIES = 3
MAX_RETRY_AFTER_S = 10.0
BACKOFF_S = 0.5
RETRY_STATUS = (429, 500, 502, 503, 504)


def is_hub_id(text: str) -> bool:
    """`owner/name`, and not something that looks like a file path."""
    return bool(HUB_ID.match(text)) and ".." not in text and not text.endswith(".json")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_endpoint_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the Hub endpoint, so a dead network fails in seconds, not after retries."""
    import socket

    where = check_hub_environment()  # the endpoint HF_ENDPOINT names, or one line: never another host
    try:
        socket.create_connection((where.host, where.port), timeout=timeout).close()
        return True
    except OSError:
        return False


class Stopped(Exception):
    """Another request of the same batch failed; this one gave up."""


def with_retries(repo_id: str, doing: str, attempt: Callable[[], Any], stop: threading.Event | None = None,
                 tries: int = MAX_TRIES) -> Any:
    """attempt() under the rules of the module docstring; every failure is one InspectError line."""
    from huggingface_hub.errors import HfHubHTTPError

    guard_session()
    resume_transfers()  # a download given up earlier in this process does not hold this request back
    for n in range(1, tries + 1):
        if stop is not None and stop.is_set():
            raise Stopped
        try:
            return within_deadline(f"{printable(repo_id)}: {doing}", attempt)
        except (InspectError, Stopped):
            raise
        except HfHubHTTPError as exc:
            status = getattr(exc.response, "status_code", None)
            wait = retry_after(exc.response)
            if status not in RETRY_STATUS or n == tries:
                raise InspectError(describe(repo_id, exc, doing) + (f" ({n} tries)" if n > 1 else "")) from None
            if wait is not None and wait > MAX_RETRY_AFTER_S:
                raise InspectError(f"{describe(repo_id, exc, doing)}; it asks to wait {wait:g} s, longer than "
                                   f"{MAX_RETRY_AFTER_S:g} s: try again later") from None
        except Exception as exc:  # transport errors: a cut connection is retried, a silent Hub is not
            if network_reason(exc) is None or not any(k in {c.__name__ for c in type(exc).__mro__}
                                                       for k in ("RemoteProtocolError", "ReadError")):
                raise InspectError(describe(repo_id, exc, doing)) from None
            if n == tries:
                raise InspectError(describe(repo_id, exc, doing) + f" ({n} tries)") from None
            wait = None
        delay = wait if wait is not None else BACKOFF_S * 2 ** (n - 1)
        if stop is not None and stop.wait(delay):
            raise Stopped
        if stop is None:
            time.sleep(delay)
    raise AssertionError("unreachable")


@dataclass
class Answer:
    status: int
    headers: Any  # the final response's headers (case-insensitive)
    body: bytes
    start: int  # the file offset of body[0]: the range's first byte (206), else 0
    size: int | None  # the whole file's size (Content-Range, else Content-Length of a 200), None if unknown
    commit: str | None  # X-Repo-Commit, from the Hub's own answer (before any CDN redirect)
    requests: int  # HTTP requests made, redirects included


def _read_capped(response: Any, limit: int) -> bytes:
    length = response.headers.get("Content-Length", "")
    if length.isascii() and length.isdigit() and len(length) <= 20 and int(length) <= limit:
        return response.read()  # read to the end, so the connection goes back to the pool
    buf = bytearray()
    for chunk in response.iter_bytes():
        buf += chunk
        if len(buf) >= limit:
            break  # leaving the stream closes the connection: never more than ~limit + one chunk
    return bytes(buf)


def _placement(r: Any, first: int | None, where: str) -> tuple[int, int | None]:
    """(offset of the body in the file, file size) of a 200 or 206 answer; InspectError if it makes no sense."""
    if r.status_code == 206:
        m = re.fullmatch(r"\s*bytes\s+(\d{1,20})-(\d{1,20})/(\d{1,20}|\*)\s*", r.headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != (first or 0):
            raise InspectError(f"{where}: the Hub answered a read of bytes {first}- with Content-Range "
                               f"{printable(r.headers.get('Content-Range'))!r}")
        return int(m.group(1)), None if m.group(3) == "*" else int(m.group(3))
    if r.status_code != 200:
        raise InspectError(f"{where}: the Hub answered HTTP {r.status_code}, neither 200 nor 206")
    length = r.headers.get("Content-Length", "")
    return 0, int(length) if length.isascii() and length.isdigit() and len(length) <= 20 else None


def hub_get(repo_id: str, filename: str, revision: str | None, *, limit: int, first: int | None = None,
            last: int | None = None, headers: dict[str, str] | None = None) -> Answer:
    """One GET of a repo file (bytes first..last when given), reading at most ~limit bytes of the body.

    A server may answer a range with 200 and the whole file: `start` says where the body begins, and
    the read stops after `limit` bytes all the same. `headers`: huggingface_hub's (token, user agent),
    built here when not given. Raises huggingface_hub's HTTP errors (via hf_raise_for_status) and
    httpx's transport errors; callers wrap it in `with_retries`."""
    import httpx2
    from huggingface_hub import get_session, hf_hub_url, hf_raise_for_status
    from huggingface_hub.utils import build_hf_headers

    guard_session()
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint())
    headers = {**(build_hf_headers() if headers is None else headers), "Accept-Encoding": "identity"}
    if first is not None:
        headers["Range"] = f"bytes={first}-{'' if last is None else last}"
    with get_session().stream("GET", url, headers=headers, timeout=httpx2.Timeout(answer_timeout())) as r:
        if r.status_code >= 400:
            copy = httpx2.Response(r.status_code, headers=r.headers, content=_read_capped(r, 65536), request=r.request)
            hf_raise_for_status(copy)
        start, size = _placement(r, first, f"{printable(repo_id)}: {printable(filename)}")
        body = _read_capped(r, limit + (first or 0) - start)
        commit = next((x.headers["X-Repo-Commit"] for x in (*r.history, r) if "X-Repo-Commit" in x.headers), None)
        return Answer(r.status_code, r.headers, body, start, size, commit, 1 + len(r.history))


@dataclass(frozen=True)
class Listing:
    commit: str
    files: frozenset[str]


_LISTINGS: dict[tuple[str, str | None], Listing | None] = {}


def repo_listing(repo_id: str, revision: str | None = None) -> Listing | None:
    """The repo's commit and files at `revision`, asked once per process; None when the endpoint has
    no model API (a plain mirror of `resolve`). One-line InspectError when the Hub says no or fails."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    check_hub_environment()
    key = (repo_id, revision)
    if key not in _LISTINGS:
        def attempt() -> Listing | None:
            try:
                info = HfApi().model_info(repo_id, revision=revision, timeout=answer_timeout())
            except HfHubHTTPError as exc:
                response = exc.response
                if getattr(response, "status_code", None) in (404, 405) and "X-Error-Code" not in response.headers:
                    return None
                raise
            return Listing(str(info.sha), frozenset(s.rfilename for s in info.siblings or []))

        _LISTINGS[key] = with_retries(repo_id, "asking the Hub for the repo's files", attempt)
    return _LISTINGS[key]
