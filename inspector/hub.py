"""Every fetch from the Hugging Face Hub, and the one mapping of its failures to one-line errors.

Downloads go through huggingface_hub, so its cache, HF_HUB_OFFLINE, HF_ENDPOINT and HF_TOKEN all
apply. A cached copy is used first; then, unless offline, the endpoint is probed (a dead network
fails in seconds, not after huggingface_hub's retries) and asked. `describe` turns any exception
huggingface_hub raises into one line that starts with the repo id. huggingface_hub is imported
only inside the functions that need it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from inspector.errors import InspectError, printable

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def is_hub_id(text: str) -> bool:
    """`owner/name`, and not something that looks like a file path."""
    return bool(HUB_ID.match(text)) and ".." not in text and not text.endswith((".gguf", ".json"))


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_endpoint_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the Hub endpoint, so a dead network fails in seconds, not after retries."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout).close()
        return True
    except OSError:
        return False


# (exception class name in huggingface_hub.errors, what it means), most specific first
_MEANINGS: tuple[tuple[str, str], ...] = (
    ("OfflineModeIsEnabled", "cannot reach the Hugging Face Hub (HF_HUB_OFFLINE is set)"),
    ("GatedRepoError", "the repo is gated; accept its terms on the Hub and set HF_TOKEN"),
    ("RevisionNotFoundError", "no such revision on the Hugging Face Hub"),
    ("RepositoryNotFoundError", "no such model repo on the Hugging Face Hub (or it is private; set HF_TOKEN)"),
    ("NotASafetensorsRepoError", "the repo has no model.safetensors or model.safetensors.index.json"),
    ("SafetensorsParsingError", "a safetensors header on the Hub could not be parsed"),
    ("EntryNotFoundError", "a file the repo's index names is not in the repo"),
    ("HFValidationError", "not a valid repo id"),
)


def _looks_like_network(exc: BaseException) -> bool:
    """huggingface_hub talks through httpx; its transport errors are not OSErrors."""
    names = {c.__name__ for c in type(exc).__mro__}
    mod = type(exc).__module__ or ""
    return mod.startswith(("httpx", "httpcore", "requests", "urllib3")) and bool(
        names & {"TransportError", "ConnectError", "TimeoutException", "NetworkError", "ConnectionError"}
    )


def describe(repo_id: str, exc: BaseException, doing: str, revision: str | None = None) -> str:
    """One line saying why `doing` (e.g. "fetching safetensors headers") failed for `repo_id`."""
    from huggingface_hub import errors as hf

    what = printable(repo_id if revision is None else f"{repo_id}@{revision}")
    for cls_name, message in _MEANINGS:
        cls = getattr(hf, cls_name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return f"{what}: {message}"
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return f"{what}: the Hugging Face Hub answered with HTTP error {status or '?'}"
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or _looks_like_network(exc):
        return f"{what}: cannot reach the Hugging Face Hub (offline?)"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{what}: {doing} failed ({type(exc).__name__}: {printable(first)})"


def _quiet() -> None:
    import logging

    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)


def hub_download(repo_id: str, filename: str, revision: str | None = None, required: bool = True) -> Path | None:
    """One file of a Hub repo through huggingface_hub's cache; one-line errors.

    With `required=False` a file the repo lacks (or that cannot be had offline) gives None.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    _quiet()
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, EntryNotFoundError, OSError, ValueError):
        pass
    if hub_offline() or not hub_endpoint_reachable():
        if not required:
            return None
        raise InspectError(f"{repo_id}: cannot fetch {filename}: it is not in the local cache and {_unavailable()}")
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, etag_timeout=10))
    except EntryNotFoundError:
        if not required:
            return None
        raise InspectError(f"{repo_id}: the Hub repo has no {filename}") from None
    except Exception as exc:  # timeouts, HTTP errors, gated or missing repos: one line
        raise InspectError(describe(repo_id, exc, f"fetching {filename}", revision)) from None


def _unavailable() -> str:
    return ("HF_HUB_OFFLINE is set" if hub_offline() else "the Hugging Face Hub is not reachable (offline?)")


def hub_snapshot(repo_id: str, patterns: list[str], what: str, must_have: str, revision: str | None = None,
                 hint: str = "") -> Path:
    """The files of a Hub repo matching `patterns`, from the cache or downloaded; one-line errors.

    A cached snapshot counts only when it holds a file matching the glob `must_have`. `what` names
    the files in messages ("weights"); `hint` is appended to the offline message."""
    from huggingface_hub import snapshot_download

    _quiet()
    try:
        cached = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True))
        if any(cached.glob(must_have)):
            return cached
    except Exception:  # not in the cache: ask the Hub below
        pass
    if hub_offline() or not hub_endpoint_reachable():
        raise InspectError(f"{repo_id}: no {what} here (not in the local cache) and {_unavailable()}{hint}")
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, etag_timeout=10))
    except Exception as exc:
        raise InspectError(describe(repo_id, exc, f"downloading {what}", revision)) from None
    if not any(folder.glob(must_have)):
        raise InspectError(f"{repo_id}: the Hub repo has no {must_have}")
    return folder
