"""Checkpoint headers: which tensors a checkpoint on disk holds, read without touching the weights.

This module owns
  * the records :class:`TensorInfo` (one tensor as a checkpoint describes it) and
    :class:`CheckpointHeaders` (everything a checkpoint says about itself);
  * (the hardened safetensors header parser lives in :mod:`inspector.safetensors_header`);
  * :func:`read_sharded`, which reads a ``model.safetensors.index.json`` and cross-checks it
    against the shard headers;
  * :func:`open_checkpoint`, which dispatches on a ``.safetensors`` file, a ``.gguf`` file, an
    index file or a directory.

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
``<repo>/blobs/``, which is allowed. Files found by listing a directory the user named (no index)
are read wherever their symlinks point, like the file a user names directly. Only regular files
are opened (never a FIFO or device, which could block or never end).

``metadata``: for safetensors, a map from file name to that file's ``__metadata__`` (str->str),
plus, when sharded, the index file's own ``"metadata"`` object under the index file's name. For
GGUF it is the GGUF key/value metadata (see :mod:`inspector.gguf_reader`).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspector.errors import InspectError

__all__ = [
    "CheckpointHeaders",
    "TensorInfo",
    "open_checkpoint",
    "read_sharded",
]

_INDEX_NAME = "model.safetensors.index.json"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_MAX_INDEX_BYTES = 100_000_000


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as a checkpoint header describes it.

    ``shape`` is in PyTorch order (outermost dimension first) for every format. ``nbytes`` is the
    number of bytes the tensor occupies in the file. ``file`` is the shard file name (as the
    index or directory names it) or the path as given for a single file. For GGUF, ``quant`` is
    the ggml type name (``"Q4_1"``, ``"F32"``) and ``stored_shape`` the dimensions in GGUF's own
    order (ne[0] first), i.e. ``shape`` reversed.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    file: str
    quant: str | None = None
    stored_shape: tuple[int, ...] | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class CheckpointHeaders:
    """Everything a checkpoint says about itself, without its weights.

    ``tensors``: name -> TensorInfo, as the file headers say (not as an index claims).
    ``files``: the files read, in reading order (names relative to the checkpoint directory, or
    the path as given for a single file). ``format``: ``"safetensors"`` or ``"gguf"``.
    ``metadata``: see the module docstring. ``problems``: one-line inconsistencies between the
    files (index vs shards, tensors in more than one file); empty when all agree.
    """

    tensors: dict[str, TensorInfo]
    files: list[str]
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def total_params(self) -> int:
        return sum(t.numel for t in self.tensors.values())

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())


# --------------------------------------------------------------------------- message helpers

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _show(text: object) -> str:
    """A value safe to put inside a one-line message."""
    s = str(text)
    if _UNPRINTABLE.search(s):
        return s.encode("unicode_escape", "backslashreplace").decode("ascii")
    return s


def _q(name: str) -> str:
    """A tensor or key name, quoted, on one line."""
    return json.dumps(name)


# --------------------------------------------------------------------------- shards and paths


def _hf_cache_blobs(base: Path) -> Path | None:
    """For a Hugging Face cache snapshot dir <repo>/snapshots/<rev>, the <repo>/blobs dir."""
    if base.parent.name == "snapshots":
        return base.parent.parent / "blobs"
    return None


def _safe_member(base: Path, name: str, source: str) -> Path:
    """Resolve a file name found inside a checkpoint, refusing anything outside ``base``."""
    shown = _show(name)
    if not isinstance(name, str) or not name:
        raise InspectError(f"{source}: shard name {_show(json.dumps(name))} is not a file name")
    if "\x00" in name:
        raise InspectError(f"{source}: refusing shard name {shown}: it contains a NUL byte")
    pure = name.replace("\\", "/")
    if pure.startswith("/") or re.match(r"^[A-Za-z]:", pure) or os.path.isabs(name):
        raise InspectError(f"{source}: refusing absolute shard path {shown}")
    if ".." in pure.split("/"):
        raise InspectError(f"{source}: refusing shard path {shown}: it leaves the checkpoint directory")
    candidate = base / name
    real = os.path.realpath(candidate)
    allowed = [os.path.realpath(base)]
    blobs = _hf_cache_blobs(base.absolute())
    if blobs is not None:
        allowed.append(os.path.realpath(blobs))
    if not any(real == a or real.startswith(a.rstrip(os.sep) + os.sep) for a in allowed):
        raise InspectError(
            f"{source}: refusing shard {shown}: it resolves to {_show(real)}, outside the "
            "checkpoint directory"
        )
    return candidate


def _cross_check(
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
                problems.append(f"{_q(tname)}: in {', '.join(held)} but not listed in the index")
            elif not held:
                problems.append(
                    f"{_q(tname)}: the index lists it in {indexed}, but that shard does not hold it"
                )
            elif indexed not in held:
                problems.append(
                    f"{_q(tname)}: the index lists it in {indexed}, but it is in {', '.join(held)}"
                )
        if len(held) > 1:
            problems.append(f"{_q(tname)}: held by more than one file: {', '.join(held)}")
        if held:
            pick = indexed if indexed in held else held[0]
            merged[tname] = per_file[pick][tname]
    return merged, problems


def _read_index(index_path: Path) -> tuple[dict[str, str], dict[str, Any]]:
    from inspector import safetensors_header as sh  # it imports this module's records

    where = _show(index_path)
    try:
        if not stat.S_ISREG(os.stat(index_path).st_mode):
            raise InspectError(f"{where}: is not a regular file")
        with sh._open_binary(index_path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > _MAX_INDEX_BYTES:
                raise InspectError(f"{where}: index file is {size} bytes, over the limit")
            raw = sh._read_exact(f, size)
    except InspectError:
        raise
    except FileNotFoundError:
        raise InspectError(f"{where}: no such file") from None
    except OSError as e:
        raise InspectError(f"{where}: cannot read: {_show(e.strerror or e)}") from None

    dup: list[str] = []

    def hook(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                dup.append(k)
            d[k] = v
        return d

    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=hook)
    except (ValueError, RecursionError) as e:
        raise InspectError(f"{where}: index is not valid JSON ({_show(e)})") from None
    if not isinstance(doc, dict):
        raise InspectError(f"{where}: index is not a JSON object")
    wm = doc.get("weight_map")
    if not isinstance(wm, dict):
        raise InspectError(f"{where}: index has no weight_map object")
    bad = [k for k, v in wm.items() if not isinstance(v, str)]
    if bad:
        raise InspectError(f"{where}: weight_map entry {_q(bad[0])} is not a file name")
    if dup:
        raise InspectError(f"{where}: index has a repeated key {_q(dup[0])}")
    meta = doc.get("metadata")
    return wm, meta if isinstance(meta, dict) else {}


def read_sharded(dir_or_index: str | os.PathLike) -> CheckpointHeaders:
    """Read a sharded safetensors checkpoint: its index plus every shard header it names.

    ``dir_or_index`` is the checkpoint directory or the index file itself. Index-vs-shard
    disagreements go to ``problems``; a missing or unsafe shard raises InspectError.
    """
    from inspector import safetensors_header as sh  # it imports this module's records

    p = Path(dir_or_index)
    index_path = p / _INDEX_NAME if p.is_dir() else p
    base = index_path.parent
    weight_map, index_meta = _read_index(index_path)
    source = _show(index_path)
    shards = sorted(set(weight_map.values()))
    per_file: dict[str, dict[str, TensorInfo]] = {}
    metadata: dict[str, Any] = {index_path.name: index_meta}
    for shard in shards:
        shard_path = _safe_member(base, shard, source)
        if not shard_path.is_file():
            raise InspectError(f"{source}: names shard {_show(shard)}, which is not in {_show(base)}")
        tensors, meta = sh.read_safetensors_file(shard_path, shard)
        per_file[shard] = tensors
        metadata[shard] = meta
    merged, problems = _cross_check(per_file, weight_map)
    return CheckpointHeaders(merged, shards, "safetensors", metadata, problems)


def _read_files(base: Path, names: list[str]) -> CheckpointHeaders:
    from inspector import safetensors_header as sh  # it imports this module's records

    per_file: dict[str, dict[str, TensorInfo]] = {}
    metadata: dict[str, Any] = {}
    for name in names:  # found by listing a directory the user named: symlinks are followed
        per_file[name], metadata[name] = sh.read_safetensors_file(base / name, name)
    merged, problems = _cross_check(per_file, None)
    return CheckpointHeaders(merged, list(names), "safetensors", metadata, problems)


def _refuse_pickle(path: Path) -> InspectError:
    return InspectError(
        f"{_show(path)}: is a pickle checkpoint (.bin/.pt/.pth); pickle checkpoints are never "
        "unpickled here, because loading one can run arbitrary code; use a safetensors or GGUF "
        "copy of the model"
    )


def open_checkpoint(path: str | os.PathLike) -> CheckpointHeaders:
    """Read the headers of whatever checkpoint ``path`` is.

    * a ``.safetensors`` file; a ``*.index.json`` file (sharded); a ``.gguf`` file;
    * a directory: ``model.safetensors.index.json`` if present, else ``model.safetensors``, else
      every ``*.safetensors`` in it (not recursive), else a single ``*.gguf``.
    Pickle checkpoints (.bin/.pt/.pth/.ckpt/.pkl) are refused, never unpickled.
    """
    from inspector import safetensors_header as sh  # it imports this module's records

    p = Path(path)
    if p.is_dir():
        if (p / _INDEX_NAME).is_file():
            return read_sharded(p)
        if (p / "model.safetensors").is_file():
            return _read_files(p, ["model.safetensors"])
        found = sorted(c.name for c in p.glob("*.safetensors") if c.is_file())
        if found:
            return _read_files(p, found)
        ggufs = sorted(c.name for c in p.glob("*.gguf") if c.is_file())
        if len(ggufs) == 1:
            from inspector.gguf_reader import read_gguf

            return read_gguf(p / ggufs[0])
        if len(ggufs) > 1:
            raise InspectError(
                f"{_show(p)}: holds {len(ggufs)} GGUF files ({', '.join(ggufs[:4])}"
                f"{', ...' if len(ggufs) > 4 else ''}); name the one to read"
            )
        pickles = sorted(c for c in p.iterdir() if c.suffix.lower() in _PICKLE_SUFFIXES)
        if pickles:
            raise _refuse_pickle(pickles[0])
        raise InspectError(f"{_show(p)}: no safetensors or GGUF checkpoint in this directory")
    if not p.exists():
        raise InspectError(f"{_show(p)}: no such file or directory")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        tensors, meta = sh.read_safetensors_file(p)
        return CheckpointHeaders(tensors, [str(p)], "safetensors", {str(p): meta}, [])
    if p.name.endswith(".index.json"):
        if p.name.startswith("pytorch_model"):
            raise _refuse_pickle(p)
        return read_sharded(p)
    if suffix == ".gguf":
        from inspector.gguf_reader import read_gguf

        return read_gguf(p)
    if suffix in _PICKLE_SUFFIXES:
        raise _refuse_pickle(p)
    raise InspectError(
        f"{_show(p)}: unknown checkpoint type; expected .safetensors, .gguf, an index.json or a "
        "directory"
    )
