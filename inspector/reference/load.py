"""Filling a reference model from a checkpoint, tensor by tensor, by inventory name: one fill loop.

`fill(model, entries, source, param_of, dtype, device)` walks inventory entries: each entry's
checkpoint name is looked up in the source, its shape checked against the inventory, converted to
the requested dtype and set as the model parameter `param_of(entry)`. Only one tensor is in flight
at a time. The text model and the vision tower both load through it. `load_model(path)` builds a
TextModel on the meta device (no memory, no random init) and fills it.

Experts: the reference model keeps them as the family's checkpoints store them (one module per
expert, or gpt-oss's and Llama 4's fused tensors; inspector.reference.moe). A per-expert family saved
by transformers 5 with `save_original_format=False` holds its internal fused layout instead,
`...experts.gate_up_proj` (E, 2 d_e, d) (gate rows first) and `...experts.down_proj` (E, d, d_e);
`FusedExpertsSplit` serves each expert's slice under the per-expert names. It covers families whose
router keeps its name there (Qwen, OLMoE, DeepSeek); Mixtral and PhiMoE rename theirs, and such a
save is refused with the names it lacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from inspector.checkpoint.tensors import GGUFSource, TensorSource, open_source
from inspector.errors import InspectError, printable
from inspector.files import local_path
from inspector.inventory.entry import MTP, WeightEntry
from inspector.inventory.text import text_inventory
from inspector.reference.text import TextModel, param_name
from inspector.spec.model import from_hf_config
from inspector.spec.text import TextSpec
from inspector.units import TORCH_DTYPE_BYTES


def shape_error(name: str, expected: tuple[int, ...], found: tuple[int, ...]) -> InspectError:
    return InspectError(f"tensor '{name}': expected {tuple(expected)}, found {tuple(found)}")


def set_param(model: nn.Module, target: str, value: torch.Tensor) -> None:
    """Replace the parameter at dotted path `target` (a meta placeholder) by `value`, frozen; a
    stored buffer (DeepSeek-V3's e_score_correction_bias) stays a buffer."""
    module_path, _, attr = target.rpartition(".")
    module = model.get_submodule(module_path) if module_path else model
    if attr in module._buffers:
        module._buffers[attr] = value
    else:
        setattr(module, attr, nn.Parameter(value, requires_grad=False))


def fill(model: nn.Module, entries: Iterable[WeightEntry], source: TensorSource,
         param_of: Callable[[str, int | None, int | None], str], dtype: torch.dtype, device: Any = "cpu",
         what: str = "") -> None:
    """Set each stored entry's parameter `param_of(role, layer, expert)` of `model` from `source`.

    `what` ("vision ") names the part in messages. Every parameter must be filled: a parameter
    left on the meta device means the inventory and the model disagree."""
    entries = [e for e in entries if e.stored]
    available = source.names()
    missing = [e.name for e in entries if e.name not in available]
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise InspectError(f"{len(missing)} {what}tensor(s) missing from the checkpoint: {', '.join(missing[:5])}{more}")
    for entry in entries:
        found = source.shape(entry.name)
        if found != entry.shape:
            raise shape_error(entry.name, entry.shape, found)
        value = source.get(entry.name).to(device=device, dtype=dtype)
        set_param(model, param_of(entry.role, entry.layer, entry.expert), value)
    if hasattr(model, "tie"):
        model.tie()
    for module in model.modules():  # RoPE tables are buffers built on the CPU, not parameters
        if isinstance(getattr(module, "inv_freq", None), torch.Tensor):
            module.to(device)
    left = [name for name, p in model.named_parameters() if p.is_meta]
    if left:
        raise InspectError(f"{what or 'reference model '}parameters not filled from the inventory: {', '.join(left[:5])}")


class FusedExpertsSplit(TensorSource):
    """Per-expert tensors (gate, up, down) served from transformers' fused expert tensors."""

    _FUSED = {"expert_gate": ("experts.gate_up_proj", 0), "expert_up": ("experts.gate_up_proj", 1),
              "expert_down": ("experts.down_proj", None)}

    def __init__(self, source: TensorSource, entries: Iterable[WeightEntry]) -> None:
        self.source, self.split, self._held = source, {}, {}
        have = source.names()
        for e in entries:
            part, _, kind = e.role.partition(".")
            if e.expert is None or e.name in have or part not in self._FUSED or kind != "weight" \
                    or "experts." not in e.name:
                continue
            fused, half = self._FUSED[part]
            name = e.name[: e.name.index("experts.")] + fused
            if name in have:
                self.split[e.name] = (name, e.expert, half)

    def names(self) -> set[str]:
        return self.source.names() | set(self.split)

    def shape(self, name: str) -> tuple[int, ...]:
        if name not in self.split:
            return self.source.shape(name)
        fused, _, half = self.split[name]
        rows, cols = self.source.shape(fused)[1:]
        return (rows // 2, cols) if half is not None else (rows, cols)

    def get(self, name: str) -> torch.Tensor:
        if name not in self.split:
            return self.source.get(name)
        fused, expert, half = self.split[name]
        if fused not in self._held:  # a layer's experts come in a run: hold its two fused tensors only
            if len(self._held) == 2:
                self._held.pop(next(iter(self._held)))
            self._held[fused] = self.source.get(fused)
        w = self._held[fused][expert]  # (2 d_e, d) or (d, d_e)
        return w.chunk(2, dim=0)[half] if half is not None else w


def load_weights(model: TextModel, source: TensorSource, dtype: torch.dtype, device: Any = "cpu") -> None:
    """Set every parameter of a TextModel from `source`, entry by entry of its spec's inventory
    (DeepSeek-V3's multi-token-prediction module is stored, but no part of the forward pass)."""
    entries = [e for e in text_inventory(model.spec) if e.component != MTP]
    if model.spec.moe is not None and not model.spec.moe.fused:
        source = FusedExpertsSplit(source, entries)
    fill(model, entries, source, param_name, dtype, device)


def load_model(path: str | Path | TensorSource, spec: TextSpec | None = None,
               dtype: torch.dtype | str = torch.float32, device: Any = "cpu") -> TextModel:
    """Build a TextModel for `spec` (read from the checkpoint's config when None) and fill it from
    `path`, or from an already opened TensorSource."""
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).removeprefix("torch.")
    if dtype not in TORCH_DTYPE_BYTES:
        raise InspectError(f"unknown dtype {printable(repr(dtype), 60)} (choose from {', '.join(TORCH_DTYPE_BYTES)})")
    dtype, device = getattr(torch, dtype), torch_device(device)
    source = path if isinstance(path, TensorSource) else open_source(local_path(path))
    if spec is None:
        spec = (from_hf_config(source.config, source.path.name, str(source.path)).text if isinstance(source, GGUFSource)
                else spec_for(Path(path)))
    model = TextModel(spec, device="meta", dtype=dtype)
    load_weights(model, source, dtype, device)
    return model.eval()


DEVICE_TYPES = ("cpu", "cuda", "meta")


def torch_device(device: Any) -> torch.device:
    """A device the reference model can run on: cpu, cuda (when present, "cuda:N" too) or meta."""
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        d = None
    if d is None or d.type not in DEVICE_TYPES:
        raise InspectError(f"unknown device {printable(repr(device), 60)} (choose from {', '.join(DEVICE_TYPES)})")
    if d.type == "cuda" and not torch.cuda.is_available():
        raise InspectError(f"device {d}: no CUDA device is available here (try cpu or meta)")
    return d


def spec_for(path: Path) -> TextSpec:
    """The TextSpec of a safetensors checkpoint, from the config.json beside it."""
    from inspector.spec.model import spec_of_directory

    return spec_of_directory(path if path.is_dir() else path.parent).text
