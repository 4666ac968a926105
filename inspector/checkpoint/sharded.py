"""Sharded safetensors checkpoints: the index, cross-checked against the shard headers, and confinement.

This module owns reading a sharded safetensors checkpoint: :func:`read_sharded` reads a
``model.safetensors.index.json`` and cross-checks it against the shard headers; :func:`safe_member`
is the confinement rule for file names found inside a checkpoint; :func:`cross_check` merges
per-file headers and finds index-vs-shard disagreements.

Errors versus problems
----------------------
Two kinds of bad news come out of here, and they mean different things:

* :class:`~inspector.errors.InspectError` (the CLI's exit code 2) is raised when the input cannot
  be read safely or at all: a missing or unreadable file, a malformed safetensors header, a
  malformed index, a shard the index names that is not on disk, a shard path that escapes the
  checkpoint directory, a pickle checkpoint. The message is one line naming the file.
* ``CheckpointHeaders.problems`` (one line each) collects *inconsistencies between readable
  files*: a tensor the index lists that its shard does not hold, a tensor a shard holds that the
  index does not list (or lists under another shard), a tensor held by more than one file. These
  are findings about the checkpoint; ``inspect verify`` reports them as mismatches (exit code 1).
  ``tensors`` then describes what the shard headers really contain, not what the index claims.

Shard paths
-----------
Shard names that come from inside the checkpoint (the index's ``weight_map``) are not trusted:
absolute paths and ``..`` components are refused, and the resolved file must lie inside the
checkpoint directory, so a symlink pointing elsewhere is refused too. One exception keeps Hugging
Face cache snapshots usable: in ``<repo>/snapshots/<rev>/`` files are symlinks into
``<repo>/blobs/``, which is allowed when ``blobs`` is a real directory (not itself a link) and the
file lies directly in it. Every reader of a checkpoint (``verify``'s headers, ``run``/``trace``'s
tensors) applies this one rule through :func:`safe_member`. Files found by listing a directory the
user named (no index) are held to the same rule (inspector.files.confined); only a file the user
names directly is read wherever its symlink points.
Only regular files are opened (never a FIFO or device, which could block or never end).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from inspector.checkpoint.records import CheckpointHeaders, TensorInfo
from inspector.checkpoint.safetensors import read_safetensors_file
from inspector.errors import InspectError, printable, quoted
from inspector import files

INDEX_NAME = "model.safetensors.index.json"
MAX_INDEX_BYTES = files.LIMITS["index"]  # the bound on an index, read from disk or from the Hub


# --------------------------------------------------------------------------- shards and paths


def safe_member(base: Path, name: str, source: str) -> Path:
    """Resolve a file name found inside a checkpoint, refusing anything outside ``base``."""
    shown = printable(name)
    if not isinstance(name, str) or not name:
        raise InspectError(f"{source}: shard name {printable(json.dumps(name))} is not a file name")
    if "\x00" in name:
        raise InspectError(f"{source}: refusing shard name {shown}: it contains a NUL byte")
    pure = name.replace("\\", "/")
    if pure.startswith("/") or re.match(r"^[A-Za-z]:", pure) or os.path.isabs(name):
        raise InspectError(f"{source}: refusing absolute shard path {shown}")
    if ".." in pure.split("/"):
        raise InspectError(f"{source}: refusing shard path {shown}: it leaves the checkpoint directory")
    candidate = base / name
    real = os.path.realpath(candidate)
    root = os.path.realpath(base)
    blobs = files.hf_cache_blobs(base)
    inside = real.startswith(root.rstrip(os.sep) + os.sep)
    in_blobs = blobs is not None and os.path.dirname(real) == blobs  # the cache's blobs are flat
    if not (inside or in_blobs):
        raise InspectError(
            f"{source}: refusing shard {shown}: it resolves to {printable(real)}, outside the "
            "checkpoint directory"
        )
    return candidate


def cross_check(
    per_file: dict[str, dict[str, TensorInfo]], weight_map: dict[str, str] | None
) -> tuple[dict[str, TensorInfo], list[str]]:
    """Merge per-file headers; compare with an index's weight_map when there is one."""
    holders: dict[str, list[str]] = {}
    for fname, tensors in per_file.items():
        for tname in tensors:
            holders.setdefault(tname, []).append(fname)
    problems: list[str] = []
    merged: dict[str, TensorInfo] = {}
    names = set(holders) | set(weight_map or {})
    for tname in sorted(names):
        held = holders.get(tname, [])
        indexed = weight_map.get(tname) if weight_map is not None else None
        if weight_map is not None:
            if indexed is None:
                problems.append(f"{quoted(tname)}: in {', '.join(held)} but not listed in the index")
            elif not held:
                problems.append(
                    f"{quoted(tname)}: the index lists it in {indexed}, but that shard does not hold it"
                )
            elif indexed not in held:
                problems.append(
                    f"{quoted(tname)}: the index lists it in {indexed}, but it is in {', '.join(held)}"
                )
        if len(held) > 1:
            problems.append(f"{quoted(tname)}: held by more than one file: {', '.join(held)}")
        if held:
            pick = indexed if indexed in held else held[0]
            merged[tname] = per_file[pick][tname]
    return merged, problems


def read_index(index_path: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """The weight_map and metadata of a ``model.safetensors.index.json`` (a regular file, bounded,
    no repeated keys); every reader of an index goes through here."""
    where = printable(index_path)
    return parse_index(files.read_bytes(index_path, "index", "a safetensors index"), where)


def parse_index(raw: bytes, where: str) -> tuple[dict[str, str], dict[str, Any]]:
    """(weight_map, metadata) of an index's bytes (read from disk or from the Hub); `where` names it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InspectError(f"{where}: index is not UTF-8 text") from None
    doc = files.parse_json(text, where)
    if not isinstance(doc, dict):
        raise InspectError(f"{where}: index is not a JSON object")
    wm = doc.get("weight_map")
    if not isinstance(wm, dict):
        raise InspectError(f"{where}: index has no weight_map object")
    bad = [k for k, v in wm.items() if not isinstance(v, str)]
    if bad:
        raise InspectError(f"{where}: weight_map entry {quoted(bad[0])} is not a file name")
    meta = doc.get("metadata")
    return wm, meta if isinstance(meta, dict) else {}


def read_sharded(dir_or_index: str | os.PathLike) -> CheckpointHeaders:
    """Read a sharded safetensors checkpoint: its index plus every shard header it names.

    ``dir_or_index`` is the checkpoint directory or the index file itself. Index-vs-shard
    disagreements go to ``problems``; a missing or unsafe shard raises InspectError.
    """
    p = Path(dir_or_index)
    index_path = p / INDEX_NAME if p.is_dir() else p
    base = index_path.parent
    weight_map, index_meta = read_index(index_path)
    source = printable(index_path)
    shards = sorted(set(weight_map.values()))
    per_file: dict[str, dict[str, TensorInfo]] = {}
    metadata: dict[str, Any] = {index_path.name: index_meta}
    for shard in shards:
        shard_path = safe_member(base, shard, source)
        if not os.path.lexists(shard_path):
            raise InspectError(f"{source}: names shard {printable(shard)}, which is not in {printable(base)}")
        tensors, meta = read_safetensors_file(shard_path, shard)
        per_file[shard] = tensors
        metadata[shard] = meta
    merged, problems = cross_check(per_file, weight_map)
    return CheckpointHeaders(merged, shards, "safetensors", metadata, problems)
