"""Safetensors headers straight from the Hugging Face Hub, without downloading weights.

:func:`read_hub_headers` returns the same :class:`~inspector.checkpoint.records.CheckpointHeaders`
the local readers return (index-vs-shard ``problems`` included):

1. one GET of ``model.safetensors.index.json`` (its answer names the commit; a 404 means the single
   ``model.safetensors``);
2. one range read per shard, of bytes ``0..F-1`` where F is twice what the index says its tensor
   entries need (at least 4 KiB; 64 KiB without an index), and a second read of the rest only when
   the header is longer. The reads run on at most :data:`WORKERS` daemon threads (started while the
   index is fetched); the first failure stops the batch. A server that ignores ``Range`` has its answer cut after F bytes: a header read
   never downloads a shard;
3. every header is parsed by the hardened parser (:func:`~inspector.checkpoint.safetensors.parse_header_bytes`).

The index and the raw headers are cached per commit beside huggingface_hub's cache of the repo
(inspector.checkpoint.hub_cache), so with ``HF_HUB_OFFLINE=1`` the same call
works from the cache, and online a known commit costs one request. Requests follow inspector.hub's
rules (bounded retries, Retry-After, a deadline per request); every failure is one InspectError line
that starts with the repo id. HF_TOKEN, HF_ENDPOINT and HF_HOME apply as for huggingface_hub.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

from inspector.checkpoint.records import CheckpointHeaders, TensorInfo
from inspector.checkpoint.safetensors import MAX_HEADER_BYTES, header_length, parse_header_bytes
from inspector.checkpoint.sharded import INDEX_NAME, MAX_INDEX_BYTES, cross_check, parse_index
from inspector.errors import InspectError, printable
from inspector.checkpoint.hub_cache import cache_load, cache_ref_save, cache_root, cache_save, cached_ref
from inspector.hub import hub_get, hub_offline, with_retries

__all__ = ["WORKERS", "HubReadStats", "fetch_hub_headers", "read_hub_file_header", "read_hub_headers"]

SINGLE = "model.safetensors"
WORKERS = 64
FIRST_READ_MIN = 4096
FIRST_READ_SINGLE = 64 * 1024
FIRST_READ_MAX = 2**20


@dataclass
class HubReadStats:
    """What a header read cost: the commit read, HTTP requests (redirects included) and range reads per file."""

    commit: str | None = None
    requests: int = 0
    reads: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str | None, answer: Any) -> None:
        with self._lock:
            self.requests += answer.requests
            if name is not None:
                self.reads[name] = self.reads.get(name, 0) + 1


def read_hub_headers(repo_id: str, revision: str | None = None, *, workers: int = WORKERS) -> CheckpointHeaders:
    """A Hub repo's safetensors headers (no weights); see the module docstring."""
    return fetch_hub_headers(repo_id, revision, workers=workers)[0]


def fetch_hub_headers(repo_id: str, revision: str | None = None, *,
                      workers: int = WORKERS) -> tuple[CheckpointHeaders, HubReadStats]:
    """(headers, what reading them cost); see the module docstring."""
    if not isinstance(repo_id, str) or not repo_id.strip():
        raise InspectError(f"{printable(repo_id)!s}: not a repo id")
    stats = HubReadStats()
    if hub_offline():
        commit = cached_ref(repo_id, revision)
        cached = cache_load(repo_id, commit) if commit else None
        if cached is None:
            what = printable(repo_id if revision is None else f"{repo_id}@{revision}")
            raise InspectError(f"{what}: the safetensors headers are not in the local cache and HF_HUB_OFFLINE is set")
        stats.commit = commit
        return _from_cache(repo_id, cached), stats
    readers = _Readers(workers)
    try:
        index_raw, commit = _fetch_index(repo_id, revision, stats)
        stats.commit = commit
        cached = cache_load(repo_id, commit) if commit else None
        if cached is not None and cached.get("index") == (index_raw.decode("utf-8", "replace") if index_raw else None):
            cache_ref_save(repo_id, revision, commit)
            return _from_cache(repo_id, cached), stats
        where = f"{printable(repo_id)}: {INDEX_NAME}"
        weight_map, index_meta = parse_index(index_raw, where) if index_raw is not None else (None, {})
        names = sorted(set(weight_map.values())) if weight_map is not None else [SINGLE]
        for name in names:
            _check_name(name, where)
        from huggingface_hub.utils import build_hf_headers

        headers, first, rev = build_hf_headers(), _first_reads(names, weight_map), commit or revision  # one token read
        raw = readers.run({n: partial(_read_one, repo_id, rev, n, first[n], stats, headers=headers) for n in names})
    finally:
        readers.close()
    cache_save(repo_id, revision, commit, index_raw, raw)
    return _assemble(repo_id, weight_map, index_meta, raw), stats


def read_hub_file_header(repo_id: str, filename: str, revision: str | None = None) -> CheckpointHeaders:
    """The header of one named safetensors file of a Hub repo (an adapter's adapter_model.safetensors),
    by the same range reads as a shard's: FIRST_READ_SINGLE bytes, the rest only when the header is longer."""
    _check_name(filename, f"{printable(repo_id)}: {printable(filename)}")
    size, header = _read_one(repo_id, revision, filename, FIRST_READ_SINGLE, HubReadStats(), threading.Event(),
                             shard=False)
    tensors, meta = parse_header_bytes(header, size, filename)
    return CheckpointHeaders(tensors, [filename], "safetensors", {filename: meta}, [])


def _fetch_index(repo_id: str, revision: str | None, stats: HubReadStats) -> tuple[bytes | None, str | None]:
    """(index bytes, or None when the repo has no index; the commit the Hub named)."""
    from huggingface_hub.errors import RemoteEntryNotFoundError

    def attempt() -> Any:
        try:
            return hub_get(repo_id, INDEX_NAME, revision, limit=MAX_INDEX_BYTES + 1)
        except RemoteEntryNotFoundError as exc:  # no index: a single model.safetensors
            return exc

    answer = with_retries(repo_id, f"fetching {INDEX_NAME}", attempt)
    if isinstance(answer, Exception):
        return None, getattr(answer.response, "headers", {}).get("X-Repo-Commit")
    stats.add(None, answer)
    if len(answer.body) > MAX_INDEX_BYTES:
        raise InspectError(f"{printable(repo_id)}: {INDEX_NAME} on the Hub is over {MAX_INDEX_BYTES} bytes")
    return answer.body, answer.commit


def _check_name(name: Any, where: str) -> None:
    """A shard name from the index becomes part of a URL: plain relative file names only."""
    bad = (not isinstance(name, str) or not name or name.startswith("/") or "\\" in name
           or ".." in name.split("/") or any(ord(c) < 32 or c in "?#" for c in name))
    if bad:
        raise InspectError(f"{where}: refusing shard name {printable(json.dumps(name))}: not a plain file name")


def _first_reads(names: list[str], weight_map: dict[str, str] | None) -> dict[str, int]:
    """Bytes of each shard's first range read: twice the JSON its index entries need, at least 4 KiB."""
    if weight_map is None:
        return {n: FIRST_READ_SINGLE for n in names}
    need = dict.fromkeys(names, 8 + 64)
    for tensor, shard in weight_map.items():
        need[shard] += len(tensor) + 96
    return {n: min(FIRST_READ_MAX, max(FIRST_READ_MIN, -(-2 * need[n] // 4096) * 4096)) for n in names}


def _read_one(repo_id: str, rev: str | None, name: str, first: int, stats: HubReadStats,
              stop: threading.Event, *, headers: dict[str, str] | None = None, shard: bool = True) -> tuple[int, bytes]:
    """(file size, the header's JSON bytes) of one shard: one range read, two if the header is longer."""
    from huggingface_hub.errors import RemoteEntryNotFoundError

    doing = f"reading the header of {name}" + (" (the index came through)" if name != SINGLE and shard else "")

    def attempt(begin: int, end: int) -> Any:
        try:
            return hub_get(repo_id, name, rev, limit=end - begin + 1, first=begin, last=end, headers=headers)
        except RemoteEntryNotFoundError:
            if name == SINGLE:
                raise InspectError(f"{printable(repo_id)}: the repo has no {SINGLE} or {INDEX_NAME}") from None
            raise

    def get(begin: int, end: int) -> tuple[bytes, int | None]:
        answer = with_retries(repo_id, doing, lambda: attempt(begin, end), stop=stop)
        stats.add(name, answer)
        data = answer.body[begin - answer.start:end - answer.start + 1]
        if len(data) != end - begin + 1 and (answer.size is None or answer.size > begin + len(data)):
            raise InspectError(f"{printable(repo_id)}: {doing}: the Hub sent {len(data)} of the "
                               f"{end - begin + 1} bytes asked for")
        return data, answer.size

    head, size = get(0, first - 1)
    label = f"{printable(repo_id)}: {name}"
    if size is None:
        raise InspectError(f"{label}: the Hub did not say how large the file is (no Content-Range or Content-Length)")
    n = header_length(head[:8], size, label)
    if 8 + n > len(head):
        rest, _ = get(len(head), 8 + n - 1)
        head += rest
    return size, head[8:8 + n]


class _Readers:
    """Up to `size` daemon threads that run the shard reads given to `run`; the first failure stops
    the rest. A helper thread starts them, so the caller fetches the index meanwhile (starting a
    thread waits for it to run: tens of milliseconds for 64 on a busy machine)."""

    def __init__(self, size: int) -> None:
        self.todo: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.done: queue.SimpleQueue[tuple[str, Any, BaseException | None]] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.wanted, self.started = max(1, size), 0
        threading.Thread(target=self._spawn, name="hub-header-start", daemon=True).start()

    def _spawn(self) -> None:
        while True:
            with self.lock:
                if self.started >= self.wanted:
                    return
                threading.Thread(target=self._work, name=f"hub-header-{self.started}", daemon=True).start()
                self.started += 1

    def _work(self) -> None:
        while (task := self.todo.get()) is not None:
            name, read = task
            try:
                self.done.put((name, read(self.stop), None))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self.done.put((name, None, exc))

    def run(self, tasks: dict[str, Callable[[threading.Event], Any]]) -> dict[str, Any]:
        with self.lock:
            self.wanted = min(self.wanted, max(1, len(tasks)))
        for item in tasks.items():
            self.todo.put(item)
        out: dict[str, Any] = {}
        while len(out) < len(tasks):
            try:
                name, value, error = self.done.get(timeout=0.5)
            except queue.Empty:
                continue
            if error is not None:
                self.stop.set()  # the other readers give up (Stopped) at their next request
                raise error
            out[name] = value
        return out

    def close(self) -> None:
        """Stop the readers; daemon threads never hold the process, even on a silent Hub."""
        self.stop.set()
        with self.lock:
            self.wanted = 0
            for _ in range(self.started):
                self.todo.put(None)


def _assemble(repo_id: str, weight_map: dict[str, str] | None, index_meta: dict[str, Any],
              raw: dict[str, tuple[int, bytes]]) -> CheckpointHeaders:
    per_file: dict[str, dict[str, TensorInfo]] = {}
    metadata: dict[str, Any] = {INDEX_NAME: index_meta} if weight_map is not None else {}
    for name in sorted(raw):
        size, header = raw[name]
        per_file[name], metadata[name] = parse_header_bytes(header, size, name)
    merged, problems = cross_check(per_file, weight_map)
    return CheckpointHeaders(merged, sorted(raw), "safetensors", metadata, problems)


def _from_cache(repo_id: str, data: dict) -> CheckpointHeaders:
    """Headers rebuilt from the cache, through the same parsers as a fresh read."""
    where = f"{printable(repo_id)}: cached {INDEX_NAME}"
    index = data.get("index")
    weight_map, index_meta = parse_index(index.encode("utf-8"), where) if isinstance(index, str) else (None, {})
    raw: dict[str, tuple[int, bytes]] = {}
    for name, entry in data["files"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("size"), int) or not isinstance(entry.get("header"), str):
            raise InspectError(f"{printable(repo_id)}: the cached header of {printable(name)} is damaged; "
                               f"delete {cache_root(repo_id)}")
        header = entry["header"].encode("utf-8")
        if len(header) > MAX_HEADER_BYTES:
            raise InspectError(f"{printable(repo_id)}: the cached header of {printable(name)} is too large")
        raw[name] = (entry["size"], header)
    return _assemble(repo_id, weight_map, index_meta, raw)
