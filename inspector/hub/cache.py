"""Downloads into huggingface_hub's cache (`hub_download`, `hub_snapshot`), a cached copy first.

Each download is watched so that a stalled one is abandoned with one line (see inspector.hub).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from inspector.errors import InspectError, printable
from inspector.hub.environment import check_hub_environment
from inspector.limits import HUB_MIN_RATE
from inspector.hub.failures import answer_timeout, chain, describe
from inspector.hub.guard import DEADLINE_ENV, abandon_transfers, deadline_s, guard_session, resume_transfers
from inspector.hub.fetch import BACKOFF_S, MAX_TRIES, hub_endpoint_reachable, hub_get, hub_offline, repo_listing, with_retries



def _quiet() -> None:
    """Quiets huggingface_hub's logger; after its import, which sets the logger's level."""
    import logging

    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)


def _progress_class(state: dict[str, Any]):
    """huggingface_hub's tqdm (bars only on a terminal), noting when bytes arrive and whether a
    transfer is under way (a byte bar whose total is not reached yet)."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class Progress(hf_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if not sys.stderr.isatty():
                kwargs["disable"] = True
            # byte bars with a true total: a file's, or snapshot_download's sum of the files started
            # (its "transfer" bar only guesses a total, so it never says whether bytes are due)
            counts = kwargs.get("unit") == "B" and not str(kwargs.get("name") or "").endswith(".transfer")
            self.bytes = kwargs.get("unit") == "B"
            super().__init__(*args, **kwargs)
            self.got = kwargs.get("initial") or 0  # our own count: a disabled tqdm does not count
            if counts:
                state["bars"].append(self)

        def update(self, n: float | None = 1) -> bool | None:
            self.got += n or 0
            if n and self.bytes:
                state["last"] = time.monotonic()
            return super().update(n)

    return Progress


def watched(repo_id: str, doing: str, call: Callable[[Any], Any], probe: Callable[[], None]) -> Any:
    """call(progress_class) on a daemon thread, abandoned when nothing arrives for 2 x the answer
    timeout while no transfer is under way (a transfer under way is bounded by huggingface_hub's own
    read timeout and retries); then probe() (one request that raises the reason) or a 'stalled' line.
    The whole call has a deadline: deadline_s() plus the bytes announced so far at HUB_MIN_RATE."""
    box: dict[str, Any] = {}
    state: dict[str, Any] = {"last": time.monotonic(), "bars": []}

    def run() -> None:
        try:
            box["value"] = call(_progress_class(state))
        except BaseException as exc:  # noqa: BLE001 - reported below
            box["error"] = exc

    resume_transfers()
    worker = threading.Thread(target=run, name="hub-download", daemon=True)
    worker.start()
    limit, start, total = 2 * answer_timeout(), time.monotonic(), deadline_s()
    while worker.is_alive():
        worker.join(0.05)
        allowed = total + sum(bar.total or 0 for bar in state["bars"]) / HUB_MIN_RATE
        if worker.is_alive() and time.monotonic() - start > allowed:
            abandon_transfers()  # huggingface_hub's worker threads return, so the process can exit
            raise InspectError(f"{printable(repo_id)}: {doing}: not complete after {allowed:.1f} s ({DEADLINE_ENV} "
                               f"{total:g} s, plus the announced bytes at {HUB_MIN_RATE // 1024} KiB/s)")
        busy = any(bar.total and bar.got < bar.total for bar in state["bars"])
        if busy:
            state["last"] = time.monotonic()
        elif worker.is_alive() and time.monotonic() - state["last"] > limit:
            probe()
            raise InspectError(f"{printable(repo_id)}: {doing}: no data from the Hub for {limit:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _probe(repo_id: str, filename: str, revision: str | None, doing: str) -> Callable[[], None]:
    return lambda: with_retries(repo_id, doing, lambda: hub_get(repo_id, filename, revision, limit=1, first=0, last=0),
                                tries=1)


def _download(repo_id: str, doing: str, call: Callable[[Any], Any], probe: Callable[[], None],
              revision: str | None) -> Any:
    """`watched`, a reset connection retried (MAX_TRIES in all; huggingface_hub resumes an answer cut
    short by itself, but not a reset), every error made one line."""
    for n in range(1, MAX_TRIES + 1):
        try:
            return watched(repo_id, doing, call, probe)
        except InspectError:
            raise
        except Exception as exc:
            cut = any(type(e).__name__ in ("ReadError", "ConnectionResetError") for e in chain(exc))
            if not cut or n == MAX_TRIES:
                raise InspectError(describe(repo_id, exc, doing, revision) + (f" ({n} tries)" if n > 1 else "")) from None
            time.sleep(BACKOFF_S * 2 ** (n - 1))
    raise AssertionError("unreachable")


def _unavailable() -> str:
    return "HF_HUB_OFFLINE is set" if hub_offline() else "the Hugging Face Hub is not reachable (offline?)"


def hub_download(repo_id: str, filename: str, revision: str | None = None, required: bool = True) -> Path | None:
    """One file of a Hub repo through huggingface_hub's cache; one-line errors.

    With `required=False` a file the repo lacks (or that cannot be had offline) gives None.
    """
    check_hub_environment()  # first: huggingface_hub reads these variables on import
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RemoteEntryNotFoundError

    _quiet()
    guard_session()
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, EntryNotFoundError, OSError, ValueError):
        pass
    if hub_offline() or not hub_endpoint_reachable():
        if not required:
            return None
        raise InspectError(f"{repo_id}: cannot fetch {filename}: it is not in the local cache and {_unavailable()}")
    listing = repo_listing(repo_id, revision)
    if listing is not None and filename not in listing.files:
        if not required:
            return None
        raise InspectError(f"{repo_id}: the Hub repo has no {filename}")
    doing = f"downloading {filename}"

    def call(progress: Any) -> str | None:
        try:
            return hf_hub_download(repo_id, filename, revision=revision, etag_timeout=answer_timeout(),
                                   tqdm_class=progress)
        except RemoteEntryNotFoundError:  # an endpoint without the model API: no listing said so
            return None

    path = _download(repo_id, doing, call, _probe(repo_id, filename, revision, doing), revision)
    if path is None:
        if not required:
            return None
        raise InspectError(f"{repo_id}: the Hub repo has no {filename}")
    return Path(path)


def hub_snapshot(repo_id: str, patterns: list[str], what: str, must_have: str, revision: str | None = None,
                 hint: str = "", complete: Callable[[Path], bool] | None = None) -> Path:
    """The files of a Hub repo matching `patterns`, from the cache or downloaded; one-line errors.

    A cached snapshot counts only when it holds a file matching the glob `must_have` (and passes
    `complete`). `what` names the files in messages ("weights"); `hint` ends the offline message."""
    from fnmatch import fnmatch

    check_hub_environment()  # first: huggingface_hub reads these variables on import
    from huggingface_hub import snapshot_download, try_to_load_from_cache

    _quiet()
    guard_session()
    ok = lambda folder: any(folder.glob(must_have)) and (complete is None or complete(folder))  # noqa: E731
    try:
        cached = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True))
        if ok(cached):
            return cached
    except Exception:  # not (all) in the cache: ask the Hub below
        pass
    if hub_offline() or not hub_endpoint_reachable():
        raise InspectError(f"{repo_id}: no {what} here (not in the local cache) and {_unavailable()}{hint}")
    listing = repo_listing(repo_id, revision)
    wanted = sorted(f for f in (listing.files if listing else ()) if any(fnmatch(f, p) for p in patterns))
    if listing is not None and not any(fnmatch(f, must_have) for f in wanted):
        raise InspectError(f"{repo_id}: the Hub repo has no {must_have}")
    doing = f"downloading {what}"

    def probe() -> None:
        pending = [f for f in wanted if not isinstance(try_to_load_from_cache(repo_id, f, revision=revision), str)]
        if pending:
            _probe(repo_id, pending[0], revision, f"downloading {pending[0]}")()

    def call(progress: Any) -> str:
        return snapshot_download(repo_id, revision=revision, allow_patterns=patterns, etag_timeout=answer_timeout(),
                                 tqdm_class=progress)

    folder = Path(_download(repo_id, doing, call, probe, revision))
    if not ok(folder):
        raise InspectError(f"{repo_id}: the Hub repo has no complete set of {what} ({must_have})")
    return folder
