"""Verification: the expected inventory of a spec compared, tensor by tensor, with checkpoint headers.

`compare(spec, headers)` is pure: it takes the inventory (the same one `params` uses) and the
headers read by inspector.checkpoint (open, gguf, hub), and returns a `VerifyResult` of
findings. `open_inputs(model, weights)` resolves the command line's MODEL / --weights into a spec
(or None when no inventory exists for the architecture) and headers. Headers only: tensor data is
never read.

Statuses: ok, missing, unexpected, shape (mismatch), buffer (a known non-parameter buffer, not an
error), tied (an absent LM head that the config ties to the embedding: fine), tied-stored (an LM
head stored although the config says tied: reported). Index/shard inconsistencies found while
reading come in as `problems`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspector.checkpoint.records import CheckpointHeaders, TensorInfo
from inspector.errors import InspectError
from inspector.inventory.model import inventory
from inspector.spec.model import ModelSpec, from_hf_config, supported_model_types
from inspector.units import numel

# Tensors some checkpoints carry that are buffers, not parameters.
BUFFER_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"(^|\.)rotary_emb\.inv_freq$",
        r"(^|\.)position_ids$",
        r"(^|\.)attn\.(masked_)?bias$",
        r"^rope_freqs\.weight$",  # GGUF: llama3 rope frequency factors
    )
)
FAILING = ("missing", "unexpected", "shape", "tied-stored")


@dataclass(frozen=True)
class Finding:
    name: str  # Hugging Face name (for GGUF: the name it maps to, else the GGUF name)
    status: str
    expected: tuple[int, ...] | None = None
    actual: tuple[int, ...] | None = None
    dtype: str | None = None
    stored_name: str | None = None  # the name in the file when it differs (GGUF)
    stored_shape: tuple[int, ...] | None = None  # GGUF dimension order, as stored


@dataclass
class DtypeStat:
    tensors: int = 0
    params: int = 0
    nbytes: int = 0


@dataclass
class VerifyResult:
    model: str | None
    architecture: str | None
    checkpoint: str
    format: str
    files: list[str]
    has_inventory: bool
    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    dtypes: dict[str, DtypeStat] = field(default_factory=dict)
    expected_params: int | None = None
    checkpoint_params: int = 0
    stored_bytes: int = 0
    config_dtype: str | None = None
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.findings if f.status == status)

    def names(self, status: str) -> list[str]:
        return [f.name for f in self.findings if f.status == status]

    @property
    def ok(self) -> bool:
        return not self.problems and not any(f.status in FAILING for f in self.findings)


def is_buffer(name: str) -> bool:
    return any(p.search(name) for p in BUFFER_PATTERNS)


def _by_hf_name(headers: CheckpointHeaders, spec: ModelSpec | None) -> dict[str, tuple[str, TensorInfo]]:
    """Checkpoint tensors keyed by Hugging Face name; GGUF names are mapped when a map exists."""
    if headers.format != "gguf":
        return {name: (name, info) for name, info in headers.tensors.items()}
    from inspector.checkpoint.gguf_hf import gguf_layer_count, gguf_name_map

    mapping = gguf_name_map(spec.text.num_layers if spec else gguf_layer_count(headers))  # maps lazily
    prefix = spec.text.prefix if spec else ""
    return {prefix + mapping.get(g, g) if g in mapping else g: (g, info) for g, info in headers.tensors.items()}


def _dtype_stats(headers: CheckpointHeaders) -> dict[str, DtypeStat]:
    stats: dict[str, DtypeStat] = {}
    for info in headers.tensors.values():
        s = stats.setdefault(info.dtype, DtypeStat())
        s.tensors += 1
        s.params += numel(info.shape)
        s.nbytes += info.nbytes
    return dict(sorted(stats.items(), key=lambda kv: -kv[1].params))


def compare(spec: ModelSpec | None, headers: CheckpointHeaders, checkpoint: str) -> VerifyResult:
    """Findings for every expected and every stored tensor (listing only when spec is None)."""
    result = VerifyResult(
        model=spec.name if spec else None,
        architecture=spec.architecture if spec else None,
        checkpoint=checkpoint,
        format=headers.format,
        files=list(headers.files),
        has_inventory=spec is not None,
        problems=list(headers.problems),
        dtypes=_dtype_stats(headers),
        checkpoint_params=sum(numel(i.shape) for n, i in headers.tensors.items() if not is_buffer(n)),
        stored_bytes=sum(i.nbytes for i in headers.tensors.values()),
        config_dtype=spec.text.torch_dtype if spec else None,
    )
    actual = _by_hf_name(headers, spec)
    if spec is None:
        for name, (stored, info) in actual.items():
            status = "buffer" if is_buffer(stored) else "listed"
            result.findings.append(_finding(name, status, None, stored, info))
        return result

    expected = inventory(spec)
    result.expected_params = sum(e.numel for e in expected if e.stored)
    for e in expected:
        hit = actual.pop(e.name, None)
        stored, info = hit if hit else (None, None)
        if not e.stored:
            status = "tied" if info is None else "tied-stored"
        elif info is None:
            status = "missing"
        else:
            status = "ok" if tuple(info.shape) == tuple(e.shape) else "shape"
        result.findings.append(_finding(e.name, status, e.shape, stored, info))
    for name, (stored, info) in actual.items():
        result.findings.append(_finding(name, "buffer" if is_buffer(stored) else "unexpected", None, stored, info))
    return result


def _finding(name: str, status: str, expected, stored: str | None, info: TensorInfo | None) -> Finding:
    return Finding(
        name=name,
        status=status,
        expected=tuple(expected) if expected is not None else None,
        actual=tuple(info.shape) if info else None,
        dtype=info.dtype if info else None,
        stored_name=stored if stored and stored != name else None,
        stored_shape=tuple(info.stored_shape) if info and info.stored_shape else None,
    )


# --------------------------------------------------------------------------- inputs


def _spec_or_listing(cfg: dict[str, Any], name: str, where: str) -> tuple[ModelSpec | None, str | None]:
    """A spec, or (None, note) when no inventory exists for the config's architecture."""
    model_type = cfg.get("model_type") if isinstance(cfg, dict) else None
    if isinstance(model_type, str) and model_type not in supported_model_types():
        arch = (cfg.get("architectures") or [model_type])[0]
        return None, (f"no expectation exists for architecture {arch} (model_type {model_type!r}): "
                      f"listing the checkpoint's tensors only")
    return from_hf_config(cfg, name, where, where), None


def open_inputs(model: str | None, weights: str | None):
    """(spec or None, headers, checkpoint label, notes) for `inspect verify MODEL [--weights PATH]`."""
    from inspector.checkpoint.open import open_checkpoint
    from inspector.files import read_json
    from inspector.spec.resolve import resolve

    if model is None and weights is None:
        raise InspectError("give MODEL (a directory, .gguf file, preset or Hub id) or --weights PATH")
    notes: list[str] = []
    if weights is not None:
        headers = open_checkpoint(weights)
        label = str(weights)
        model_path = Path(model).expanduser() if model is not None else None
        if model_path is not None and model_path.suffix.lower() == ".gguf" and os.path.lexists(model_path):
            from inspector.checkpoint.gguf_hf import gguf_to_hf_config

            cfg, name, where = gguf_to_hf_config(open_checkpoint(model_path)), model_path.name, str(model_path)
        elif model is not None:
            src = resolve(model)
            cfg, name, where = src.config, src.name, src.where
        elif headers.format == "gguf":
            from inspector.checkpoint.gguf_hf import gguf_to_hf_config

            cfg, name, where = gguf_to_hf_config(headers), Path(weights).name, str(weights)
        else:
            base = Path(weights) if Path(weights).is_dir() else Path(weights).parent
            config_path = base / "config.json"
            if not os.path.lexists(config_path):
                notes.append(f"no config.json beside {weights}: listing the checkpoint's tensors only")
                return None, headers, label, notes
            cfg, name, where = read_json(config_path), str(base), str(config_path)
    else:
        path = Path(model).expanduser()
        if path.suffix.lower() == ".gguf" and os.path.lexists(path):  # a special file is refused by the reader
            from inspector.checkpoint.gguf_hf import gguf_to_hf_config

            headers = open_checkpoint(path)
            cfg, name, where, label = gguf_to_hf_config(headers), path.name, str(path), str(path)
        elif path.exists():
            src = resolve(model)
            assert src.directory is not None
            headers = open_checkpoint(path if path.suffix == ".safetensors" else src.directory)
            cfg, name, where, label = src.config, src.name, src.where, str(path)
        else:
            src = resolve(model)
            from inspector.checkpoint.hub import read_hub_headers

            headers = read_hub_headers(src.hub_id or model)
            cfg, name, where, label = src.config, src.name, src.where, f"hub:{src.hub_id or model}"
    spec, note = _spec_or_listing(cfg, name, where)
    if note:
        notes.append(note)
    return spec, headers, label, notes


def verify(model: str | None, weights: str | None = None) -> VerifyResult:
    spec, headers, label, notes = open_inputs(model, weights)
    result = compare(spec, headers, label)
    result.notes.extend(notes)
    return result
