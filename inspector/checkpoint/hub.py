"""Safetensors headers straight from the Hugging Face Hub, without downloading weights.

This module owns :func:`read_hub_headers`, which asks ``huggingface_hub.get_safetensors_metadata``
for a repo's safetensors headers (it range-reads the first bytes of each file, or of each shard
named by ``model.safetensors.index.json``) and turns the answer into the same
:class:`~inspector.checkpoint.records.CheckpointHeaders` the local readers return, index-vs-shard
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

from inspector.checkpoint.records import CheckpointHeaders, TensorInfo
from inspector.checkpoint.sharded import cross_check
from inspector.errors import InspectError, printable
from inspector.hub import describe

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
    merged, problems = cross_check(per_file, weight_map)
    return CheckpointHeaders(merged, sorted(per_file), "safetensors", metadata, problems)


def read_hub_headers(
    repo_id: str, revision: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
) -> CheckpointHeaders:
    """Fetch a Hub repo's safetensors headers (no weights); see the module docstring.

    ``timeout`` bounds the whole call in seconds; each HTTP request is also given at most that.
    """
    if not isinstance(repo_id, str) or not repo_id.strip():
        raise InspectError(f"{printable(repo_id)!s}: not a repo id")
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
    what = printable(repo_id if revision is None else f"{repo_id}@{revision}")
    if worker.is_alive():
        raise InspectError(
            f"{what}: cannot reach the Hugging Face Hub (no answer within {timeout:g} s; offline?)"
        )
    if "error" in result:
        raise InspectError(printable(describe(repo_id, result["error"], "fetching safetensors headers", revision))) from None
    try:
        return headers_from_repo_metadata(result["meta"])
    except (AttributeError, TypeError, ValueError) as e:
        raise InspectError(f"{what}: unexpected answer from the Hugging Face Hub ({printable(e)})") from None
