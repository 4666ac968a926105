"""The per-commit cache of Hub safetensors headers (inspector.checkpoint.hub), one JSON file per commit.

The index and the raw header bytes of every file, in one JSON file per commit beside huggingface_hub's cache of
the repo (``$HF_HUB_CACHE/models--OWNER--NAME/.llm-inspector/headers-COMMIT.json``), and which commit a
revision named last (``refs/REVISION``). Written atomically and never through a link (a symlink at
a cache file or among its directories is refused: inspector.files.write_private), read with
O_NOFOLLOW; a file that cannot be written only makes the next run slower; what is read back goes
through the same parsers as a fresh read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

from inspector.errors import InspectError
from inspector.files import read_private, write_private

COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _hub_cache() -> Path:
    from inspector.hub.environment import check_hub_environment

    check_hub_environment()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cache_root(repo_id: str) -> Path:
    return _hub_cache() / ("models--" + repo_id.replace("/", "--")) / ".llm-inspector"


def _ref_file(repo_id: str, revision: str | None) -> Path:
    return cache_root(repo_id) / "refs" / quote(revision or "main", safe="")


def cached_ref(repo_id: str, revision: str | None) -> str | None:
    if revision and COMMIT.match(revision):
        return revision
    try:
        commit = read_private(_ref_file(repo_id, revision)).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return commit if COMMIT.match(commit) else None


def cache_load(repo_id: str, commit: str) -> dict | None:
    if not COMMIT.match(commit):
        return None
    try:
        data = json.loads(read_private(cache_root(repo_id) / f"headers-{commit}.json", "index").decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("commit") == commit and isinstance(data.get("files"), dict) else None


def cache_ref_save(repo_id: str, revision: str | None, commit: str | None) -> None:
    if commit and COMMIT.match(commit) and not (revision and COMMIT.match(revision)):
        try:
            write_private(_ref_file(repo_id, revision), commit, _hub_cache())
        except (OSError, InspectError):
            pass  # a cache that cannot be written is only a slower next run


def cache_save(repo_id: str, revision: str | None, commit: str | None, index_raw: bytes | None,
                raw: dict[str, tuple[int, bytes]]) -> None:
    if not commit or not COMMIT.match(commit):
        return
    try:
        doc = {"version": 1, "repo": repo_id, "commit": commit,
               "index": index_raw.decode("utf-8") if index_raw is not None else None,
               "files": {n: {"size": s, "header": h.decode("utf-8")} for n, (s, h) in raw.items()}}
        write_private(cache_root(repo_id) / f"headers-{commit}.json", json.dumps(doc), _hub_cache())
    except (OSError, UnicodeDecodeError, InspectError):
        return
    cache_ref_save(repo_id, revision, commit)
