"""Tensor data, one tensor at a time: name -> shape without reading data, name -> torch tensor.

Sources: a safetensors file, or a directory of them (sharded through model.safetensors.index.json),
found and validated by inspector.checkpoint.open (the same hardened index reader, shard-name
confinement and regular-file rule as `verify`), then read with safetensors' mmap; a GGUF file, its
header read by inspector.checkpoint.gguf, tensor data mapped with numpy.memmap at the validated
offsets and dequantized by inspector.checkpoint.dequant's DEQUANTIZERS table (one torch pass, bit for bit
gguf.quants') or, for the types not in it, by `gguf.quants`, its names mapped to Hugging Face names and llama.cpp's
Q/K row permutation undone where the architecture's facts say the file carries it, and Gemma's norms
brought back from 1 + w to w.
`open_source(path)` picks the source through inspector.checkpoint.open's FORMATS table (each row
names its TensorSource class here). Needs torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from inspector import files
from inspector.checkpoint.dequant import DEQUANTIZERS
from inspector.checkpoint.gguf import GGML_TYPES, GGUF_ARCHITECTURES, GGUFTensor
from inspector.checkpoint.gguf_hf import GGUFCheckpoint, gguf_name_map, open_gguf_checkpoint, qk_row_permutation
from inspector.checkpoint.open import format_named, format_of, open_checkpoint
from inspector.checkpoint.records import CheckpointHeaders
from inspector.errors import InspectError, one_line, printable


# --------------------------------------------------------------------------- tensor sources


class TensorSource:
    """Name -> shape without reading data, and name -> tensor one at a time."""

    def names(self) -> set[str]:
        raise NotImplementedError

    def shape(self, name: str) -> tuple[int, ...]:
        raise NotImplementedError

    def get(self, name: str) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def load(cls, path: Path, headers: CheckpointHeaders | None) -> TensorSource:
        """The source of the checkpoint at ``path`` (``headers``: when the caller read them)."""
        raise NotImplementedError


class SafetensorsSource(TensorSource):
    """One .safetensors file or a directory of shards (model.safetensors.index.json or *.safetensors).

    ``headers`` (from open_checkpoint, when the caller already has them) say which file holds each
    tensor; only those files are opened."""

    def __init__(self, path: Path, headers: CheckpointHeaders | None = None) -> None:
        from safetensors import safe_open

        headers = headers or open_checkpoint(path)
        # shard names are relative to the checkpoint directory (confined by safe_member when read)
        base = path if path.is_dir() else path.parent if path.name.endswith(".index.json") else None
        self.handles, self.where = {}, {}
        for label in headers.files:
            file = Path(label) if base is None else base / label
            try:
                self.handles[label] = safe_open(os.path.realpath(file), framework="pt")
            except Exception as exc:  # the header was validated; this is the file changing or unreadable
                raise InspectError(f"{printable(file)}: not a readable safetensors file ({one_line(exc)})") from None
        self.where = {name: self.handles[info.file] for name, info in headers.tensors.items()}

    @classmethod
    def load(cls, path: Path, headers: CheckpointHeaders | None) -> SafetensorsSource:
        return cls(path, headers)

    def names(self) -> set[str]:
        return set(self.where)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.where[name].get_slice(name).get_shape())

    def get(self, name: str) -> torch.Tensor:
        return self.where[name].get_tensor(name)


def unpermute_rope_rows(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo llama.cpp's Q/K row order for its interleaved RoPE, back to rotate-half pairs.

    llama.cpp stores, per head, rows (j, j + d_h/2) of the HF matrix next to each other
    (rows 2j and 2j+1); `qk_row_permutation` lists, for each HF row, the GGUF row holding it.
    """
    return w[qk_row_permutation(w.shape[0], n_heads)]


DEQUANT_CALLS = 16  # gguf.quants dequantizes 16 rows per numpy call: rows of 1/256 of a tensor make 16 calls


def _chunk_blocks(n_blocks: int) -> int:
    """Quantization blocks per row handed to gguf.quants: blocks are independent, so the tensor's bytes are
    cut into about 16 x DEQUANT_CALLS equal rows (a divisor of n_blocks) instead of its own rows, so that a
    tensor of a million rows is a few numpy calls, not sixty thousand."""
    target = max(1, n_blocks // (16 * DEQUANT_CALLS))
    return next(k for k in range(target, 0, -1) if n_blocks % k == 0)


class GGUFSource(TensorSource):
    """A GGUF file: tensors dequantized on demand to float32, under Hugging Face names.

    Built on the file as parsed once (`open_gguf_checkpoint`): the same parse gave the config."""

    def __init__(self, checkpoint: GGUFCheckpoint) -> None:
        self.path, self.file, self.config = checkpoint.path, checkpoint.file, checkpoint.config
        arch = checkpoint.headers.metadata["general.architecture"]
        self.facts = GGUF_ARCHITECTURES[arch]
        names = gguf_name_map(self.config["num_hidden_layers"], arch)
        self.tensors: dict[str, GGUFTensor] = {names[t.name]: t for t in self.file.tensors if t.name in names}
        self.heads = {"q_proj": self.config["num_attention_heads"], "k_proj": self.config["num_key_value_heads"]}
        self._data = None

    @classmethod
    def load(cls, path: Path, headers: CheckpointHeaders | None) -> GGUFSource:
        return cls(open_gguf_checkpoint(Path(headers.files[0]) if headers else path))

    def names(self) -> set[str]:
        return set(self.tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name].shape  # GGUF lists dims innermost first; this is PyTorch order

    def _bytes(self):
        import numpy as np

        if self._data is None:
            with files.open_regular(self.path, "a GGUF file") as f:
                if os.fstat(f.fileno()).st_size != self.file.size:
                    raise InspectError(f"{printable(self.path)}: the file changed while it was being read")
                self._data = np.memmap(f, dtype=np.uint8, mode="r")
        return self._data

    def get(self, name: str) -> torch.Tensor:
        import numpy as np
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize

        t = self.tensors[name]
        raw = self._bytes()[t.offset:t.offset + t.nbytes]  # validated: aligned, inside the file
        type_size = GGML_TYPES[t.ggml_type][2]
        ours = DEQUANTIZERS.get(t.quant)  # one torch pass, bit for bit gguf.quants' (checkpoint/dequant.py)
        try:
            array = (np.zeros(0, np.float32) if not t.nbytes else ours(raw).numpy() if ours
                     else dequantize(raw.reshape(-1, _chunk_blocks(t.nbytes // type_size) * type_size),
                                     GGMLQuantizationType(t.ggml_type)))
        except NotImplementedError:
            raise InspectError(f"{printable(self.path)}: tensor {t.name!r}: ggml type {t.quant} cannot be "
                               "dequantized here") from None
        array = array.reshape(self.shape(name))
        w = torch.from_numpy(array if array.flags.writeable else array.copy())  # F32 tensors are mmap views
        projection = name.split(".")[-2]
        if self.facts.permuted_qk and projection in self.heads and w.dim() == 2:
            w = unpermute_rope_rows(w, self.heads[projection])
        if self.facts.norm_plus_one and name.endswith("norm.weight"):
            w = w - 1.0  # stored as 1 + w; the (1 + w) RMSNorm wants w
        return w


def open_source(path: str | Path) -> TensorSource:
    """The tensor source of a checkpoint file (by its FORMATS row) or directory (by what it holds)."""
    path = Path(path)
    if not os.path.lexists(path):
        raise InspectError(f"{printable(path)}: file not found")
    fmt = format_of(path)
    if fmt is not None:
        return fmt.tensor_source(path)  # a pickle is refused by its row
    if path.is_dir():
        headers = open_checkpoint(path)  # pickles refused, empty directories named, shards confined
        return format_named(headers.format).tensor_source(path, headers)
    raise InspectError(f"{printable(path)}: not a .safetensors or .gguf file, nor a directory of them")
