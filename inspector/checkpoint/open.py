"""Opening whatever checkpoint a path names: a safetensors file, an index, a GGUF file or a directory.

One table, FORMATS, says per kind of file its suffixes, the reader of its headers, the tensor source
that loads its data (inspector.checkpoint.tensors, imported only when tensors are loaded: it needs
torch), and whether the file carries its own config (GGUF does). `format_of(path)` is the one suffix
test; `open_checkpoint` (headers) and `inspector.checkpoint.tensors.open_source` (tensor data) both
dispatch through the table. Pickle checkpoints (.bin/.pt/.pth/.ckpt/.pkl) are a row that refuses:
they are never unpickled, because loading one can run arbitrary code.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from inspector.checkpoint.records import CheckpointHeaders, TensorInfo
from inspector.errors import InspectError, printable
from inspector.files import confined, local_path


@dataclass(frozen=True)
class Format:
    """One kind of checkpoint file.

    ``read`` gives its headers; ``tensors`` names the TensorSource class of
    inspector.checkpoint.tensors that loads its data (its ``load(path, headers)``). A format that
    carries its own config has ``config`` (the config.json dict its headers imply) and ``opened``
    (the file parsed once into a record holding the config, the headers and what tensor loading
    needs; the TensorSource class is built on it). A refused format has ``refuse`` and nothing else.
    """

    name: str
    suffixes: tuple[str, ...]
    read: Callable[[Path], CheckpointHeaders] | None = None
    tensors: str | None = None
    config: Callable[[CheckpointHeaders], dict[str, Any]] | None = None
    opened: Callable[[Path], Any] | None = None
    refuse: Callable[[Path], InspectError] | None = None

    @property
    def carries_config(self) -> bool:
        return self.config is not None

    def headers(self, path: Path) -> CheckpointHeaders:
        if self.read is None:
            raise self.refuse(path)
        return self.read(path)

    def tensor_source(self, path: Path, headers: CheckpointHeaders | None = None):
        """The TensorSource of this format for ``path`` (imports torch)."""
        if self.tensors is None:
            raise self.refuse(path)
        return self._tensor_class().load(path, headers)

    def opened_source(self, opened: Any):
        """The TensorSource built on a file this format opened (``opened``): no second parse."""
        return self._tensor_class()(opened)

    def _tensor_class(self):
        return getattr(importlib.import_module("inspector.checkpoint.tensors"), self.tensors)


def refuse_pickle(path: Path) -> InspectError:
    """The one refusal of a pickle checkpoint, wherever one is met."""
    return InspectError(
        f"{printable(path)}: is a pickle checkpoint (.bin/.pt/.pth); pickle checkpoints are not loaded and "
        "never unpickled here, because loading one can run arbitrary code; use a safetensors or GGUF "
        "copy of the model"
    )


def _read_safetensors(path: Path) -> CheckpointHeaders:
    from inspector.checkpoint.safetensors import read_safetensors_file

    tensors, meta = read_safetensors_file(path)
    return CheckpointHeaders(tensors, [str(path)], "safetensors", {str(path): meta}, [])


def _read_index(path: Path) -> CheckpointHeaders:
    from inspector.checkpoint.sharded import read_sharded

    if path.name.startswith("pytorch_model"):  # the index of pickle shards
        raise refuse_pickle(path)
    return read_sharded(path)


def _read_gguf(path: Path) -> CheckpointHeaders:
    from inspector.checkpoint.gguf import read_gguf

    return read_gguf(path)


def _gguf_config(headers: CheckpointHeaders) -> dict[str, Any]:
    from inspector.checkpoint.gguf_hf import gguf_to_hf_config

    return gguf_to_hf_config(headers)


def _open_gguf(path: Path):
    from inspector.checkpoint.gguf_hf import open_gguf_checkpoint

    return open_gguf_checkpoint(path)


SAFETENSORS = Format("safetensors", (".safetensors",), _read_safetensors, "SafetensorsSource")
INDEX = Format("safetensors index", (".index.json",), _read_index, "SafetensorsSource")
GGUF = Format("gguf", (".gguf",), _read_gguf, "GGUFSource", _gguf_config, _open_gguf)
PICKLE = Format("pickle", (".bin", ".pt", ".pth", ".ckpt", ".pkl"), refuse=refuse_pickle)
FORMATS: tuple[Format, ...] = (SAFETENSORS, INDEX, GGUF, PICKLE)


def format_of(path: str | os.PathLike) -> Format | None:
    """The row whose suffix ``path``'s name ends with (any case), or None."""
    name = Path(path).name.lower()
    return next((f for f in FORMATS if name.endswith(f.suffixes)), None)


def format_named(name: str) -> Format:
    """The row of a CheckpointHeaders.format ("safetensors" or "gguf")."""
    return next(f for f in FORMATS if f.name == name)


def _read_files(base: Path, names: list[str]) -> CheckpointHeaders:
    from inspector.checkpoint.safetensors import read_safetensors_file
    from inspector.checkpoint.sharded import cross_check

    per_file: dict[str, dict[str, TensorInfo]] = {}
    metadata: dict[str, Any] = {}
    for name in names:  # found by listing a directory the user named: confined to it
        path = confined(base, base / name, "a weights file of the checkpoint directory")
        per_file[name], metadata[name] = read_safetensors_file(path, name)
    merged, problems = cross_check(per_file, None)
    return CheckpointHeaders(merged, list(names), "safetensors", metadata, problems)


def _read_directory(p: Path) -> CheckpointHeaders:
    """The scan order: the index, else model.safetensors, else every *.safetensors (sorted, not
    recursive), else the one GGUF file, else a pickle is refused. A special file among the
    candidates is refused by its reader, not skipped; every file found is confined to ``p``."""
    from inspector.checkpoint.sharded import INDEX_NAME

    if os.path.lexists(p / INDEX_NAME):
        return INDEX.headers(confined(p, p / INDEX_NAME, "the checkpoint directory's index"))
    if os.path.lexists(p / "model.safetensors"):
        return _read_files(p, ["model.safetensors"])
    listed = sorted(p.iterdir(), key=lambda c: c.name)
    visible = [c for c in listed if not c.name.startswith(".")]  # as a shell glob lists them
    found = [c.name for c in visible if format_of(c) is SAFETENSORS]
    if found:
        return _read_files(p, found)
    ggufs = [c.name for c in visible if format_of(c) is GGUF]
    if len(ggufs) == 1:
        return GGUF.headers(confined(p, p / ggufs[0], "the checkpoint directory's GGUF file"))
    if len(ggufs) > 1:
        raise InspectError(
            f"{printable(p)}: holds {len(ggufs)} GGUF files ({', '.join(ggufs[:4])}"
            f"{', ...' if len(ggufs) > 4 else ''}); name the one to read"
        )
    pickles = [c for c in listed if format_of(c) is PICKLE]
    if pickles:
        raise refuse_pickle(pickles[0])
    raise InspectError(f"{printable(p)}: no safetensors or GGUF checkpoint in this directory")


def open_checkpoint(path: str | os.PathLike) -> CheckpointHeaders:
    """Read the headers of whatever checkpoint ``path`` is: a file of a FORMATS row, or a directory
    (read in `_read_directory`'s order). Pickle checkpoints are refused, never unpickled."""
    p = local_path(path)
    if p.is_dir():
        return _read_directory(p)
    if not os.path.lexists(p):
        raise InspectError(f"{printable(p)}: no such file or directory")
    fmt = format_of(p)
    if fmt is None:
        raise InspectError(
            f"{printable(p)}: unknown checkpoint type; expected .safetensors, .gguf, an index.json or a "
            "directory"
        )
    return fmt.headers(p)
