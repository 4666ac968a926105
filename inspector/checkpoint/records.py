"""The records every checkpoint reader returns: one tensor as a header describes it, and a whole checkpoint.

``TensorInfo.shape`` is in PyTorch order (outermost dimension first) for every format.
``CheckpointHeaders.metadata``: for safetensors, a map from file name to that file's
``__metadata__`` (str->str), plus, when sharded, the index file's own ``"metadata"`` object under
the index file's name. For GGUF it is the GGUF key/value metadata (see inspector.checkpoint.gguf).
``CheckpointHeaders.problems`` collects inconsistencies between readable files (a tensor the index
lists that its shard does not hold, and so on); ``inspect verify`` reports them as mismatches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


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
