"""A Hugging Face Hub-compatible HTTP server for tests: the standard library's http.server on threads.

It serves a directory of repos (``ROOT/<owner>/<name>/...``) on 127.0.0.1, speaking the parts of
the Hub protocol that huggingface_hub 2.x uses (read from its source: ``hf_api.model_info`` /
``repo_info`` / ``list_repo_tree``, ``file_download.get_hf_file_metadata`` / ``http_get``,
``parse_safetensors_file_metadata``):

* ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: the model info, with
  ``sha`` and ``siblings`` (sizes, blob ids and LFS facts with ``?blobs=true``); public even for a
  gated repo, as on the Hub;
* ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=``: the file listing, paginated with a
  ``Link: <...>; rel="next"`` header;
* ``HEAD``/``GET /{repo}/resolve/{rev}/{file}``: a small (git) file is answered here, with
  ``ETag`` (its git blob id), ``X-Repo-Commit``, ``Accept-Ranges`` and ``Range`` support (206 +
  ``Content-Range``; 416 when unsatisfiable). An LFS file (weights, or anything of 10 MiB or more)
  is answered like the real Hub answers it: ``302`` to a CDN on another origin (a second port),
  with ``X-Linked-Etag`` (the sha256), ``X-Linked-Size`` and ``X-Repo-Commit``; the CDN serves the
  bytes with ``Range`` support and ignores credentials (huggingface_hub drops them off the Hub);
* errors as the Hub sends them: ``X-Error-Code`` ``RepoNotFound`` / ``RevisionNotFound`` /
  ``EntryNotFound`` (404) and ``GatedRepo`` (401 without a token, 403 with one that has no access).

A revision is ``main`` (or another branch set in ``Repo.branches``) or the repo's commit id, which
hashes the file list, so rewriting a file makes a new commit. File ETags: the git blob sha1 of a
small file, the sha256 of an LFS file; for files over 64 MiB a stand-in (sha256 of the name, the
size and the first 64 KiB), because the sparse 405B-shaped repo is 812 GB of holes and
huggingface_hub treats the ETag as an opaque id.

Knobs (attributes, changeable while running): ``latency_s`` (slept before every answer),
``bandwidth`` (bytes/s per response body), ``tree_page_size``, and ``faults``: a list of
:class:`Fault` (500/503/429 with ``Retry-After``, a reset mid-body, a truncated body, a Range request
answered with 200 and the whole file, a request accepted and never answered) and a hostile server's
answers (ETag, X-Linked-Etag or X-Repo-Commit replaced, a model info's ``sha`` replaced, headers or
body dripped a byte at a time). Every request is
logged (:class:`Logged`), with the body bytes actually sent and the peak number in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx", ".model")
LFS_MIN_SIZE = 10 * 2**20
REAL_HASH_MAX = 64 * 2**20
CHUNK = 64 * 1024
DATE = "2024-07-23T15:02:47.000Z"


@dataclass
class Fault:
    """One misbehaviour. ``kind``: "status" (answer ``status``, with ``Retry-After`` when set),
    "reset" (send the headers and half the body, then reset the connection), "truncate" (half the
    body, then close cleanly), "full" (ignore ``Range``: 200 and the whole file), "hang" (accept and
    never answer), "headers" (the answer's headers replaced by ``headers``), "sha" (a model info's
    ``sha`` is ``value``), "drip" (the body a byte every ``delay`` s), "drip-headers" (the status line
    and headers a byte every ``delay`` s). ``match`` is a regex searched in "METHOD side path?query"
    (side: hub or cdn); ``times`` limits it to the first N matching requests."""

    kind: str
    match: str = ""
    status: int = 500
    retry_after: int | None = None
    times: int | None = None
    hits: int = 0
    headers: dict = field(default_factory=dict)
    value: str = ""
    delay: float = 0.0


@dataclass
class Logged:
    method: str
    side: str  # "hub" or "cdn"
    path: str
    query: str
    range: str | None
    status: int
    sent: int  # body bytes written to the socket
    auth: str | None
    start: float
    end: float


@dataclass
class FileEntry:
    path: str
    file: Path
    size: int
    lfs: bool
    _etag: str | None = None

    def etag(self) -> str:
        if self._etag is None:
            with open(self.file, "rb") as f:
                head = f.read(REAL_HASH_MAX if self.size <= REAL_HASH_MAX else CHUNK)
            if self.size > REAL_HASH_MAX:
                self._etag = hashlib.sha256(f"{self.path}:{self.size}:".encode() + head).hexdigest()
            elif self.lfs:
                self._etag = hashlib.sha256(head).hexdigest()
            else:
                self._etag = hashlib.sha1(b"blob %d\0" % self.size + head).hexdigest()
        return self._etag

    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.etag()}\nsize {self.size}\n".encode()

    def blob_id(self) -> str:
        if not self.lfs:
            return self.etag()
        p = self.pointer()
        return hashlib.sha1(b"blob %d\0" % len(p) + p).hexdigest()


@dataclass
class Repo:
    repo_id: str
    root: Path
    files: dict[str, FileEntry] = field(default_factory=dict)
    commit: str = ""
    branches: dict[str, str] = field(default_factory=dict)
    gated_tokens: set[str] | None = None  # None: not gated

    def scan(self) -> None:
        self.files = {}
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.root).parts):
                rel = p.relative_to(self.root).as_posix()
                size = p.stat().st_size
                self.files[rel] = FileEntry(rel, p, size, p.suffix in LFS_SUFFIXES or size >= LFS_MIN_SIZE)
        listing = json.dumps([(k, f.size, f.file.stat().st_mtime_ns) for k, f in self.files.items()])
        self.commit = hashlib.sha1(f"{self.repo_id}\n{listing}".encode()).hexdigest()
        self.branches = {"main": self.commit}

    def revision(self, rev: str) -> str | None:
        return self.commit if rev == self.commit else self.branches.get(rev)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hubserver/1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK would add ~40 ms to many answers, which no real Hub or CDN does.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.hub.handle(self, "GET")  # type: ignore[attr-defined]

    def do_HEAD(self) -> None:
        self.server.hub.handle(self, "HEAD")  # type: ignore[attr-defined]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address) -> None:  # a client that hangs up is no news
        pass


class _Cut(Exception):
    """The connection was deliberately dropped; nothing more to send."""


class HubServer:
    """The server; use as a context manager or call start()/stop(). See the module docstring."""

    def __init__(self, root: Path | str, latency_s: float = 0.0, bandwidth: float | None = None) -> None:
        self.root = Path(root)
        self.latency_s = latency_s
        self.bandwidth = bandwidth
        self.tree_page_size = 50
        self.faults: list[Fault] = []
        self.log: list[Logged] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.repos: dict[str, Repo] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._hub = _Server(("127.0.0.1", 0), _Handler)
        self._cdn = _Server(("127.0.0.1", 0), _Handler)
        self._hub.hub = self._cdn.hub = self  # type: ignore[attr-defined]
        self._hub.side, self._cdn.side = "hub", "cdn"  # type: ignore[attr-defined]
        self.endpoint = f"http://127.0.0.1:{self._hub.server_address[1]}"
        self.cdn = f"http://127.0.0.1:{self._cdn.server_address[1]}"
        self._threads: list[threading.Thread] = []
        self.rescan()

    # ------------------------------------------------------------------ control

    def rescan(self) -> None:
        """(Re)read the repos under root; a repo's gating and extra branches are kept."""
        old = self.repos
        self.repos = {}
        for owner in sorted(p for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []:
            for repo_dir in sorted(p for p in owner.iterdir() if p.is_dir()):
                repo = Repo(f"{owner.name}/{repo_dir.name}", repo_dir)
                repo.scan()
                if repo.repo_id in old:
                    repo.gated_tokens = old[repo.repo_id].gated_tokens
                self.repos[repo.repo_id] = repo

    def gate(self, repo_id: str, tokens: set[str]) -> None:
        self.repos[repo_id].gated_tokens = set(tokens)

    def reset_log(self) -> None:
        with self._lock:
            self.log = []
            self.peak_in_flight = 0

    def start(self) -> "HubServer":
        for srv in (self._hub, self._cdn):
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for srv in (self._hub, self._cdn):
            srv.shutdown()
            srv.server_close()

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self, home: Path | str, **extra: str) -> dict[str, str]:
        """An environment for a child process that talks to this server: HF_ENDPOINT, a fresh
        HF_HOME, no HF_HUB_OFFLINE and no other HF_* setting of the parent."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_ENDPOINT=self.endpoint, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1")
        env.update(extra)
        return env

    # ------------------------------------------------------------------ request handling

    def _fault(self, key: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if (f.times is None or f.hits < f.times) and re.search(f.match, key):
                    f.hits += 1
                    return f
        return None

    def handle(self, h: _Handler, method: str) -> None:
        start = time.monotonic()
        parts = urlsplit(h.path)
        side = h.server.side  # type: ignore[attr-defined]
        state: dict = {"status": 0, "sent": 0, "fault": None}
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency_s:
                time.sleep(self.latency_s)
            fault = state["fault"] = self._fault(f"{method} {side} {unquote(parts.path)}?{parts.query}")
            if fault is not None and fault.kind == "hang":
                self._stop.wait()
                raise _Cut
            if fault is not None and fault.kind == "status":
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                self._error(h, state, fault.status, "", f"injected fault: HTTP {fault.status}", extra)
                return
            if side == "cdn":
                self._cdn_file(h, method, parts.path, state, fault)
            else:
                self._route(h, method, parts, state, fault)
        except (_Cut, ConnectionError, BrokenPipeError, socket.timeout, OSError):
            h.close_connection = True
        finally:
            with self._lock:
                self.in_flight -= 1
                self.log.append(Logged(method, side, unquote(parts.path), parts.query, h.headers.get("Range"),
                                       state["status"], state["sent"], h.headers.get("Authorization"),
                                       start, time.monotonic()))

    def _route(self, h: _Handler, method: str, parts, state: dict, fault: Fault | None) -> None:
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+?)(?:/revision/([^/]+))?", path)
        if m:
            return self._model_info(h, m.group(1), m.group(2) or "main", "true" in query.get("blobs", []), state)
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if m:
            return self._tree(h, m.group(1), m.group(2), m.group(3) or "", query, state)
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self._resolve(h, method, m.group(1), m.group(2), m.group(3), state, fault)
        self._error(h, state, 404, "", "not found")

    def _repo_rev(self, h, repo_id: str, rev: str, state: dict, gate: bool) -> tuple[Repo, str] | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._error(h, state, 404, "RepoNotFound", "Repository not found")
            return None
        if gate and repo.gated_tokens is not None:
            auth = h.headers.get("Authorization") or ""
            token = auth[7:] if auth.startswith("Bearer ") else None
            if token is None:
                self._error(h, state, 401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have "
                            "access to it and be authenticated to access it. Please log in.")
                return None
            if token not in repo.gated_tokens:
                self._error(h, state, 403, "GatedRepo", f"Access to model {repo_id} is restricted and you are not "
                            "in the authorized list. Visit the repo page to ask for access.")
                return None
        commit = repo.revision(rev)
        if commit is None:
            self._error(h, state, 404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None
        return repo, commit

    def _model_info(self, h, repo_id: str, rev: str, blobs: bool, state: dict) -> None:
        found = self._repo_rev(h, repo_id, rev, state, gate=False)
        if found is None:
            return
        repo, commit = found
        siblings = []
        for entry in repo.files.values():
            s: dict = {"rfilename": entry.path}
            if blobs:
                s.update(size=entry.size, blobId=entry.blob_id())
                if entry.lfs:
                    s["lfs"] = {"sha256": entry.etag(), "size": entry.size, "pointerSize": len(entry.pointer())}
            siblings.append(s)
        info = {
            "_id": commit[:24], "id": repo_id, "modelId": repo_id, "author": repo_id.split("/")[0], "sha": commit,
            "lastModified": DATE, "createdAt": DATE, "private": False,
            "gated": "manual" if repo.gated_tokens is not None else False, "disabled": False, "downloads": 0,
            "likes": 0, "tags": ["safetensors"], "library_name": "transformers", "siblings": siblings,
            "usedStorage": sum(e.size for e in repo.files.values()),
        }
        if state["fault"] is not None and state["fault"].kind == "sha":
            info["sha"] = state["fault"].value
        self._json(h, state, info, {"X-Repo-Commit": commit})

    def _tree(self, h, repo_id: str, rev: str, sub: str, query: dict, state: dict) -> None:
        found = self._repo_rev(h, repo_id, rev, state, gate=False)
        if found is None:
            return
        repo, commit = found
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        items: dict[str, dict] = {}
        for entry in repo.files.values():
            if not entry.path.startswith(prefix):
                continue
            rest = entry.path[len(prefix):].split("/")
            for depth in range(1, len(rest)):
                d = prefix + "/".join(rest[:depth])
                items.setdefault(d, {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0,
                                     "path": d})
                if not recursive:
                    break
            if len(rest) == 1 or recursive:
                item = {"type": "file", "oid": entry.blob_id(), "size": entry.size, "path": entry.path}
                if entry.lfs:
                    item["lfs"] = {"oid": entry.etag(), "size": entry.size, "pointerSize": len(entry.pointer())}
                items[entry.path] = item
        listing = [items[k] for k in sorted(items)]
        cursor = int(query.get("cursor", ["0"])[0])
        page = listing[cursor:cursor + self.tree_page_size]
        headers = {"X-Repo-Commit": commit}
        if cursor + self.tree_page_size < len(listing):
            nxt = (f"{self.endpoint}/api/models/{repo_id}/tree/{quote(rev, safe='')}{'/' + quote(sub) if sub else ''}"
                   f"?recursive={str(recursive).lower()}&expand=false&cursor={cursor + self.tree_page_size}")
            headers["Link"] = f'<{nxt}>; rel="next"'
        self._json(h, state, page, headers)

    def _resolve(self, h, method: str, repo_id: str, rev: str, filename: str, state: dict, fault) -> None:
        found = self._repo_rev(h, repo_id, rev, state, gate=True)
        if found is None:
            return
        repo, commit = found
        entry = repo.files.get(filename)
        if entry is None:
            self._error(h, state, 404, "EntryNotFound", f"{filename} does not exist on \"{rev}\"",
                        {"X-Repo-Commit": commit})
            return
        common = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if entry.lfs:
            sha = entry.etag()
            location = f"{self.cdn}/lfs/{repo_id}/{sha}?file={quote(filename)}&expires=3600"
            body = f"Found. Redirecting to {location}".encode()
            self._send(h, state, 302, {**common, "Location": location, "X-Linked-Etag": f'"{sha}"',
                                       "X-Linked-Size": str(entry.size), "ETag": f'"{entry.blob_id()}"',
                                       "Content-Type": "text/plain; charset=utf-8"}, body, method)
            return
        self._serve_file(h, method, entry, common, state, fault)

    def _cdn_file(self, h, method: str, raw_path: str, state: dict, fault) -> None:
        m = re.fullmatch(r"/lfs/([^/]+/[^/]+)/([0-9a-f]{64})", unquote(raw_path))
        repo = self.repos.get(m.group(1)) if m else None
        entry = next((e for e in repo.files.values() if e.lfs and e.etag() == m.group(2)), None) if repo else None
        if entry is None:
            self._send(h, state, 404, {"Content-Type": "text/plain"}, b"NoSuchKey", method)
            return
        self._serve_file(h, method, entry, {"Accept-Ranges": "bytes"}, state, fault)

    # ------------------------------------------------------------------ responses

    def _serve_file(self, h, method: str, entry: FileEntry, common: dict, state: dict, fault) -> None:
        size = entry.size
        spec = h.headers.get("Range")
        rng = _parse_range(spec, size) if spec and not (fault and fault.kind == "full") else None
        if rng == "unsatisfiable":
            self._send(h, state, 416, {**common, "Content-Range": f"bytes */{size}", "Content-Type": "text/plain"},
                       b"Requested Range Not Satisfiable", method)
            return
        headers = {**common, "ETag": f'"{entry.etag()}"', "Content-Type": "application/octet-stream"}
        if rng is None:
            begin, length, status = 0, size, 200
        else:
            begin, end = rng
            length, status = end - begin + 1, 206
            headers["Content-Range"] = f"bytes {begin}-{end}/{size}"
        headers["Content-Length"] = str(length)
        self._head(h, state, status, headers)
        if method == "HEAD":
            return
        cut = length // 2 if fault is not None and fault.kind in ("reset", "truncate") else None
        with open(entry.file, "rb") as f:
            f.seek(begin)
            left = length if cut is None else cut
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    break
                self._write(h, chunk, state)
                left -= len(chunk)
        if cut is not None:
            self._drop(h, reset=fault.kind == "reset")

    def _head(self, h, state: dict, status: int, headers: dict) -> None:
        """The status line and headers, with a "headers" fault's replacements, dripped for "drip-headers"."""
        fault = state["fault"]
        if fault is not None and fault.kind == "headers":
            headers = {**headers, **fault.headers}
        state["status"] = status
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if fault is None or fault.kind != "drip-headers":
            h.end_headers()
            return
        h._headers_buffer.append(b"\r\n")
        data = b"".join(h._headers_buffer)
        h._headers_buffer = []
        for i in range(len(data)):
            if self._stop.wait(fault.delay):
                raise _Cut
            h.wfile.write(data[i:i + 1])
            h.wfile.flush()

    def _write(self, h, data: bytes, state: dict) -> None:
        fault = state["fault"]
        if fault is not None and fault.kind == "drip":
            for i in range(len(data)):
                if self._stop.wait(fault.delay):
                    raise _Cut
                h.wfile.write(data[i:i + 1])
                h.wfile.flush()
                state["sent"] += 1
            return
        h.wfile.write(data)
        state["sent"] += len(data)
        if self.bandwidth:
            time.sleep(len(data) / self.bandwidth)

    def _drop(self, h, reset: bool) -> None:
        sock = h.connection
        if reset:  # RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        raise _Cut

    def _send(self, h, state: dict, status: int, headers: dict, body: bytes, method: str) -> None:
        self._head(h, state, status, {**headers, "Content-Length": str(len(body))})
        if method != "HEAD" and body:
            self._write(h, body, state)

    def _json(self, h, state: dict, doc, headers: dict) -> None:
        self._send(h, state, 200, {**headers, "Content-Type": "application/json"}, json.dumps(doc).encode(),
                   h.command)

    def _error(self, h, state: dict, status: int, code: str, message: str, extra: dict | None = None) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message, **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._send(h, state, status, headers, json.dumps({"error": message}).encode(), h.command)


def _parse_range(spec: str, size: int):
    """A single "bytes=a-b" / "bytes=a-" / "bytes=-n" range: (begin, end) inclusive, None to ignore
    (malformed or multi-range: the whole file, as RFC 9110 allows), or "unsatisfiable"."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", spec)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else "unsatisfiable"
    begin = int(m.group(1))
    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if begin >= size or end < begin:
        return "unsatisfiable"
    return begin, end
