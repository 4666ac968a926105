"""Filling a reference TextModel from a checkpoint, tensor by tensor, by inventory name.

`load_model(path)` builds the model on the meta device (no memory, no random init), then walks
`text_inventory(spec)`: each entry's checkpoint name is looked up in the source, its shape checked
against the inventory, converted to the requested dtype and set as the parameter `param_name(role,
layer)`. Only one tensor is in flight at a time; a tied LM head shares the embedding.

Sources: a safetensors file, or a directory of them (sharded through model.safetensors.index.json),
read with safetensors' mmap; a GGUF file, dequantized with the gguf package, its names mapped to
Hugging Face names and llama.cpp's Q/K row permutation undone for llama-architecture files. Pickle
checkpoints (.bin, .pt) are refused: loading them can run code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inspector.errors import InspectError
from inspector.gguf_reader import gguf_name_map, gguf_to_hf_config, qk_row_permutation
from inspector.reference import TextModel, param_name
from inspector.spec import TextSpec, from_hf_config
from inspector.weights import text_inventory

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _refuse_pickle(path: Path) -> None:
    raise InspectError(f"{path}: pickle checkpoints are not loaded (they can run code); convert to safetensors")


def _shape_error(name: str, expected: tuple[int, ...], found: tuple[int, ...]) -> InspectError:
    return InspectError(f"tensor '{name}': expected {tuple(expected)}, found {tuple(found)}")


# --------------------------------------------------------------------------- tensor sources


class TensorSource:
    """Name -> shape without reading data, and name -> tensor one at a time."""

    def names(self) -> set[str]:
        raise NotImplementedError

    def shape(self, name: str) -> tuple[int, ...]:
        raise NotImplementedError

    def get(self, name: str) -> torch.Tensor:
        raise NotImplementedError

    def close(self) -> None:
        pass


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
                if any(path.glob(f"*{s}") for s in PICKLE_SUFFIXES):
                    _refuse_pickle(path)
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
        from inspector.gguf_reader import open_gguf

        self.path = path
        self.reader, headers = open_gguf(path)  # one parse serves the config and the tensors
        self.config = gguf_to_hf_config(headers)  # one-line InspectErrors for bad files and architectures
        self.arch = self.config["model_type"]
        names = gguf_name_map(self.config["num_hidden_layers"])
        self.tensors = {names[t.name]: t for t in self.reader.tensors if t.name in names}
        self.heads = {"q_proj": self.config["num_attention_heads"], "k_proj": self.config["num_key_value_heads"]}

    def names(self) -> set[str]:
        return set(self.tensors)

    def spec(self) -> TextSpec:
        """The spec from the file's own metadata."""
        return from_hf_config(self.config, self.path.name, str(self.path)).text

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
        return w


def open_source(path: str | Path) -> TensorSource:
    path = Path(path)
    if not path.exists():
        raise InspectError(f"{path}: file not found")
    if path.suffix in PICKLE_SUFFIXES:
        _refuse_pickle(path)
    if path.suffix == ".gguf":
        return GGUFSource(path)
    if path.is_dir() or path.suffix == ".safetensors":
        return SafetensorsSource(path)
    raise InspectError(f"{path}: not a .safetensors or .gguf file, nor a directory of them")


# --------------------------------------------------------------------------- loading


def _set_param(model: nn.Module, target: str, value: torch.Tensor) -> None:
    module_path, _, attr = target.rpartition(".")
    module = model.get_submodule(module_path) if module_path else model
    setattr(module, attr, nn.Parameter(value, requires_grad=False))


def load_weights(model: TextModel, source: TensorSource, dtype: torch.dtype, device: Any = "cpu") -> None:
    """Set every parameter of `model` from `source`, entry by entry of the spec's inventory."""
    entries = text_inventory(model.spec)
    available = source.names()
    missing = [e.name for e in entries if e.stored and e.name not in available]
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise InspectError(f"{len(missing)} tensor(s) missing from the checkpoint: {', '.join(missing[:5])}{more}")
    for entry in entries:
        if not entry.stored:
            continue
        found = source.shape(entry.name)
        if found != entry.shape:
            raise _shape_error(entry.name, entry.shape, found)
        _set_param(model, param_name(entry.role, entry.layer), source.get(entry.name).to(device=device, dtype=dtype))
    model.tie()
    model.rope.to(device)
    left = [name for name, p in model.named_parameters() if p.is_meta]
    if left:
        raise InspectError(f"reference model parameters not filled from the inventory: {', '.join(left[:5])}")


def load_model(path: str | Path | TensorSource, spec: TextSpec | None = None,
               dtype: torch.dtype | str = torch.float32, device: Any = "cpu") -> TextModel:
    """Build a TextModel for `spec` (read from the checkpoint's config when None) and fill it from
    `path`, or from an already opened TensorSource."""
    dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    source = path if isinstance(path, TensorSource) else open_source(Path(path))
    if spec is None:
        spec = source.spec() if isinstance(source, GGUFSource) else spec_for(Path(path))
    model = TextModel(spec, device="meta", dtype=dtype)
    load_weights(model, source, dtype, device)
    return model.eval()


def spec_for(path: Path) -> TextSpec:
    """The TextSpec of a safetensors checkpoint, from the config.json beside it."""
    from inspector.hf_config import load_spec

    return load_spec(str(path if path.is_dir() else path.parent)).text
