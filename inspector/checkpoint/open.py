"""Opening whatever checkpoint a path names: a safetensors file, an index, a GGUF file or a directory.

One table, FORMATS, says which reader serves which kind of file. Pickle checkpoints
(.bin/.pt/.pth/.ckpt/.pkl) are refused, never unpickled: loading one can run arbitrary code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from inspector.checkpoint.records import CheckpointHeaders, TensorInfo
from inspector.checkpoint.safetensors import read_safetensors_file
from inspector.checkpoint.sharded import INDEX_NAME, cross_check, read_sharded
from inspector.errors import InspectError, printable
from inspector.files import confined, local_path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _read_files(base: Path, names: list[str]) -> CheckpointHeaders:
    per_file: dict[str, dict[str, TensorInfo]] = {}
    metadata: dict[str, Any] = {}
    for name in names:  # found by listing a directory the user named: confined to it
        path = confined(base, base / name, "a weights file of the checkpoint directory")
        per_file[name], metadata[name] = read_safetensors_file(path, name)
    merged, problems = cross_check(per_file, None)
    return CheckpointHeaders(merged, list(names), "safetensors", metadata, problems)


def refuse_pickle(path: Path) -> InspectError:
    """The one refusal of a pickle checkpoint, wherever one is met."""
    return InspectError(
        f"{printable(path)}: is a pickle checkpoint (.bin/.pt/.pth); pickle checkpoints are not loaded and "
        "never unpickled here, because loading one can run arbitrary code; use a safetensors or GGUF "
        "copy of the model"
    )


def open_checkpoint(path: str | os.PathLike) -> CheckpointHeaders:
    """Read the headers of whatever checkpoint ``path`` is.

    * a ``.safetensors`` file; a ``*.index.json`` file (sharded); a ``.gguf`` file;
    * a directory: ``model.safetensors.index.json`` if present, else ``model.safetensors``, else
      every ``*.safetensors`` in it (not recursive), else a single ``*.gguf``.
    Pickle checkpoints (.bin/.pt/.pth/.ckpt/.pkl) are refused, never unpickled.
    """
    p = local_path(path)
    if p.is_dir():  # a special file among the candidates is refused by its reader, not skipped
        if os.path.lexists(p / INDEX_NAME):  # every file found in the directory is confined to it
            return read_sharded(confined(p, p / INDEX_NAME, "the checkpoint directory's index"))
        if os.path.lexists(p / "model.safetensors"):
            return _read_files(p, ["model.safetensors"])
        found = sorted(c.name for c in p.glob("*.safetensors"))
        if found:
            return _read_files(p, found)
        ggufs = sorted(c.name for c in p.glob("*.gguf"))
        if len(ggufs) == 1:
            from inspector.checkpoint.gguf import read_gguf

            return read_gguf(confined(p, p / ggufs[0], "the checkpoint directory's GGUF file"))
        if len(ggufs) > 1:
            raise InspectError(
                f"{printable(p)}: holds {len(ggufs)} GGUF files ({', '.join(ggufs[:4])}"
                f"{', ...' if len(ggufs) > 4 else ''}); name the one to read"
            )
        pickles = sorted(c for c in p.iterdir() if c.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise refuse_pickle(pickles[0])
        raise InspectError(f"{printable(p)}: no safetensors or GGUF checkpoint in this directory")
    if not os.path.lexists(p):
        raise InspectError(f"{printable(p)}: no such file or directory")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        tensors, meta = read_safetensors_file(p)
        return CheckpointHeaders(tensors, [str(p)], "safetensors", {str(p): meta}, [])
    if p.name.endswith(".index.json"):
        if p.name.startswith("pytorch_model"):
            raise refuse_pickle(p)
        return read_sharded(p)
    if suffix == ".gguf":
        from inspector.checkpoint.gguf import read_gguf

        return read_gguf(p)
    if suffix in PICKLE_SUFFIXES:
        raise refuse_pickle(p)
    raise InspectError(
        f"{printable(p)}: unknown checkpoint type; expected .safetensors, .gguf, an index.json or a "
        "directory"
    )
