"""Tensor data, one tensor at a time: name -> shape without reading data, name -> torch tensor.

Sources: a safetensors file, or a directory of them (sharded through model.safetensors.index.json),
read with safetensors' mmap; a GGUF file, dequantized with the gguf package, its names mapped to
Hugging Face names, llama.cpp's Q/K row permutation undone where the family says the file
carries it, and Gemma's norms brought back from 1 + w to w. `open_source(path)` picks the source.
Needs torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from inspector.checkpoint.gguf import (
    GGUF_NORM_PLUS_ONE, gguf_name_map, gguf_to_hf_config, open_gguf, qk_row_permutation,
)
from inspector.checkpoint.open import PICKLE_SUFFIXES, refuse_pickle
from inspector.errors import InspectError


# --------------------------------------------------------------------------- tensor sources


class TensorSource:
    """Name -> shape without reading data, and name -> tensor one at a time."""

    def names(self) -> set[str]:
        raise NotImplementedError

    def shape(self, name: str) -> tuple[int, ...]:
        raise NotImplementedError

    def get(self, name: str) -> torch.Tensor:
        raise NotImplementedError



class SafetensorsSource(TensorSource):
    """One .safetensors file or a directory of shards (model.safetensors.index.json or *.safetensors)."""

    def __init__(self, path: Path) -> None:
        from safetensors import safe_open

        if path.is_dir():
            index = path / "model.safetensors.index.json"
            if index.exists():
                weight_map = json.loads(index.read_text()).get("weight_map", {})
                files = sorted({path / f for f in weight_map.values()})
            else:
                files = sorted(path.glob("*.safetensors"))
            if not files:
                pickles = sorted(p for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
                if pickles:
                    raise refuse_pickle(pickles[0])
                raise InspectError(f"{path}: no .safetensors or .gguf weights in this directory")
        else:
            files = [path]
        self.handles, self.where = [], {}
        for file in files:
            if not file.exists():
                raise InspectError(f"{file}: shard named in the index is missing")
            try:
                handle = safe_open(str(file), framework="pt")
            except Exception as exc:
                raise InspectError(f"{file}: not a readable safetensors file ({exc})") from None
            self.handles.append(handle)
            for name in handle.keys():
                self.where[name] = handle

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


class GGUFSource(TensorSource):
    """A GGUF file: tensors dequantized on demand to float32, under Hugging Face names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader, headers = open_gguf(path)  # one parse serves the config and the tensors
        self.config = gguf_to_hf_config(headers)  # one-line InspectErrors for bad files and architectures
        self.arch = self.config["model_type"]
        self.gguf_arch = headers.metadata.get("general.architecture")
        names = gguf_name_map(self.config["num_hidden_layers"], self.gguf_arch)
        self.tensors = {names[t.name]: t for t in self.reader.tensors if t.name in names}
        self.heads = {"q_proj": self.config["num_attention_heads"], "k_proj": self.config["num_key_value_heads"]}

    def names(self) -> set[str]:
        return set(self.tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(d) for d in reversed(self.tensors[name].shape.tolist()))  # GGUF lists dims innermost first

    def get(self, name: str) -> torch.Tensor:
        from gguf.quants import dequantize

        t = self.tensors[name]
        array = dequantize(t.data, t.tensor_type).reshape(self.shape(name))
        w = torch.from_numpy(array if array.flags.writeable else array.copy())  # F32 tensors are mmap views
        projection = name.split(".")[-2]
        if self.arch == "llama" and projection in self.heads and w.dim() == 2:
            w = unpermute_rope_rows(w, self.heads[projection])
        if self.gguf_arch in GGUF_NORM_PLUS_ONE and name.endswith("norm.weight"):
            w = w - 1.0  # stored as 1 + w; the (1 + w) RMSNorm wants w
        return w


def open_source(path: str | Path) -> TensorSource:
    path = Path(path)
    if not path.exists():
        raise InspectError(f"{path}: file not found")
    if path.suffix in PICKLE_SUFFIXES:
        raise refuse_pickle(path)
    if path.suffix == ".gguf":
        return GGUFSource(path)
    if path.is_dir() or path.suffix == ".safetensors":
        return SafetensorsSource(path)
    raise InspectError(f"{path}: not a .safetensors or .gguf file, nor a directory of them")
