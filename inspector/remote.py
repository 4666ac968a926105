"""Safetensors headers straight from the Hugging Face Hub, without downloading weights.

This module owns :func:`read_hub_headers`, which asks ``huggingface_hub.get_safetensors_metadata``
for a repo's safetensors headers (it range-reads the first bytes of each file, or of each shard
named by ``model.safetensors.index.json``) and turns the answer into the same
:class:`~inspector.checkpoint.CheckpointHeaders` the local readers return, index-vs-shard
``problems`` included.

The usual Hub settings apply, because ``huggingface_hub`` reads them: ``HF_TOKEN`` (or a saved
login) for gated/private repos, ``HF_HUB_OFFLINE=1`` to forbid network access, ``HF_ENDPOINT``.
Every failure (offline, no network, repo or revision not found, gated, no safetensors in the repo,
an unparsable header, a timeout) raises :class:`~inspector.errors.InspectError` with one line
that starts with the repo id. The whole call is bounded by ``timeout`` seconds, so a dead network
cannot hang the CLI. ``huggingface_hub`` is imported only when a function runs.
"""

from __future__ import annotations

import threading
from typing import Any

from inspector.checkpoint import CheckpointHeaders, TensorInfo, _cross_check, _show
from inspector.errors import InspectError

__all__ = ["DEFAULT_TIMEOUT_S", "headers_from_repo_metadata", "read_hub_headers"]

DEFAULT_TIMEOUT_S = 60.0


def headers_from_repo_metadata(meta: Any) -> CheckpointHeaders:
    """Convert a ``huggingface_hub`` ``SafetensorsRepoMetadata`` (or a look-alike) to headers.

    Uses ``files_metadata[file].tensors[name]`` (``dtype``, ``shape``, ``data_offsets``) and
    ``files_metadata[file].metadata``; ``weight_map`` and ``metadata`` (the index's) when sharded.
    """
    per_file: dict[str, dict[str, TensorInfo]] = {}
    metadata: dict[str, Any] = {}
    for fname in sorted(meta.files_metadata):
        fmeta = meta.files_metadata[fname]
        tensors = {}
        for name, t in fmeta.tensors.items():
            begin, end = t.data_offsets
            tensors[name] = TensorInfo(
                name=name,
                shape=tuple(int(d) for d in t.shape),
                dtype=str(t.dtype),
                nbytes=int(end) - int(begin),
                file=fname,
            )
        per_file[fname] = tensors
        metadata[fname] = dict(fmeta.metadata or {})
    weight_map = dict(meta.weight_map) if getattr(meta, "sharded", False) else None
    if weight_map is not None:
        metadata["model.safetensors.index.json"] = dict(meta.metadata or {})
    merged, problems = _cross_check(per_file, weight_map)
    return CheckpointHeaders(merged, sorted(per_file), "safetensors", metadata, problems)


def _describe(repo_id: str, revision: str | None, exc: BaseException) -> str:
    """One line saying why fetching headers failed."""
    from huggingface_hub import errors as hf

    what = repo_id if revision is None else f"{repo_id}@{revision}"
    checks: list[tuple[str, str]] = [
        ("OfflineModeIsEnabled", "cannot reach the Hugging Face Hub (HF_HUB_OFFLINE is set)"),
        ("GatedRepoError", "the repo is gated; accept its terms on the Hub and set HF_TOKEN"),
        ("RevisionNotFoundError", "no such revision on the Hugging Face Hub"),
        (
            "RepositoryNotFoundError",
            "no such model repo on the Hugging Face Hub (or it is private; set HF_TOKEN)",
        ),
        ("NotASafetensorsRepoError", "the repo has no model.safetensors or model.safetensors.index.json"),
        ("SafetensorsParsingError", "a safetensors header on the Hub could not be parsed"),
        ("EntryNotFoundError", "a file the repo's index names is not in the repo"),
        ("HFValidationError", "not a valid repo id"),
    ]
    for cls_name, message in checks:
        cls = getattr(hf, cls_name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return f"{what}: {message}"
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return f"{what}: the Hugging Face Hub answered with HTTP error {status or '?'}"
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or _looks_like_network(exc):
        return f"{what}: cannot reach the Hugging Face Hub (offline?)"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{what}: fetching safetensors headers failed ({type(exc).__name__}: {_show(first)})"


def _looks_like_network(exc: BaseException) -> bool:
    # huggingface_hub 1.x talks through httpx (vendored as httpx2 in some builds); its transport
    # errors are not OSErrors.
    names = {c.__name__ for c in type(exc).__mro__}
    mod = type(exc).__module__ or ""
    return mod.startswith(("httpx", "httpcore", "requests", "urllib3")) and bool(
        names & {"TransportError", "ConnectError", "TimeoutException", "NetworkError", "ConnectionError"}
    )


def read_hub_headers(
    repo_id: str, revision: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
) -> CheckpointHeaders:
    """Fetch a Hub repo's safetensors headers (no weights); see the module docstring.

    ``timeout`` bounds the whole call in seconds; each HTTP request is also given at most that.
    """
    if not isinstance(repo_id, str) or not repo_id.strip():
        raise InspectError(f"{_show(repo_id)!s}: not a repo id")
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            from huggingface_hub import get_safetensors_metadata

            result["meta"] = get_safetensors_metadata(repo_id, revision=revision, timeout=timeout)
        except BaseException as e:  # noqa: BLE001 - reported to the caller below
            result["error"] = e

    # A daemon thread lets us give up on a stalled connection; the CLI exits right after.
    worker = threading.Thread(target=work, name="hub-headers", daemon=True)
    worker.start()
    worker.join(timeout)
    what = _show(repo_id if revision is None else f"{repo_id}@{revision}")
    if worker.is_alive():
        raise InspectError(
            f"{what}: cannot reach the Hugging Face Hub (no answer within {timeout:g} s; offline?)"
        )
    if "error" in result:
        raise InspectError(_show(_describe(repo_id, revision, result["error"]))) from None
    try:
        return headers_from_repo_metadata(result["meta"])
    except (AttributeError, TypeError, ValueError) as e:
        raise InspectError(f"{what}: unexpected answer from the Hugging Face Hub ({_show(e)})") from None
