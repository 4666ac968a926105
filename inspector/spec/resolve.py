"""Resolving MODEL to a config dict: an embedded preset, a local directory or config.json, or a Hub id.

Only config.json (and, for VLMs, preprocessor_config.json when present) is read; Hub downloads go
through inspector.hub. Every failure becomes one InspectError line. No torch, no transformers, no
remote code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from inspector.errors import InspectError
from inspector.files import confined, local_path, read_json
from inspector.hub import HUB_ID, hub_download
from inspector.spec.model import ModelSpec, from_hf_config
from inspector.spec.presets import find_preset, similar_presets


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: a preset, a local directory, or a Hub repo."""

    name: str
    kind: str  # "preset" | "local" | "hub"
    config: dict[str, Any]
    where: str  # what to name in messages: a file path, "preset X", or "hub:repo"
    directory: Path | None = None
    hub_id: str | None = None
    preprocessor: dict[str, Any] | None = None
    checkpoint: Path | None = None  # a GGUF or safetensors file named as MODEL: its weights are at hand


def _local(path: Path, name: str) -> ModelSource:
    if path.is_dir():
        config_path = path / "config.json"
        if not os.path.lexists(config_path):
            raise InspectError(f"{path}: no config.json in this directory")
        directory = path
    else:
        config_path, directory = path, path.parent
        if path.suffix.lower() == ".gguf":  # the config is the file's own metadata
            from inspector.checkpoint.gguf import read_gguf
            from inspector.checkpoint.gguf_hf import gguf_to_hf_config

            return ModelSource(path.name, "gguf", gguf_to_hf_config(read_gguf(path)), str(path), directory,
                               checkpoint=path)
        if path.suffix.lower() == ".safetensors":  # the weights of the config.json beside them
            config_path = directory / "config.json"
            if not os.path.lexists(config_path):
                raise InspectError(f"{path}: a safetensors file holds weights, not a config, and there is no "
                                   f"config.json beside it (`inspect verify {path}` lists its tensors)")
            return replace(_local(directory, name), checkpoint=path)
    if path.is_dir():  # found in the directory the user named: confined to it
        confined(directory, config_path, "the model directory's config.json")
    cfg = read_json(config_path)
    pre_path = directory / "preprocessor_config.json"
    pre = _preprocessor(confined(directory, pre_path, "the model directory's preprocessor_config.json")) \
        if os.path.lexists(pre_path) else None
    return ModelSource(name, "local", cfg, str(config_path), directory, None, pre)


def _preprocessor(path: Path) -> dict[str, Any]:
    pre = read_json(path)
    if not isinstance(pre, dict):
        raise InspectError(f"{path}: must be a JSON object, got {type(pre).__name__}")
    return pre


def resolve(model: str) -> ModelSource:
    """MODEL -> ModelSource. Order: an existing local path, a preset, then a Hub id."""
    path = local_path(model, "MODEL")
    if path.exists():
        return _local(path, model)
    preset = find_preset(model)
    if preset is not None:
        pre = dict(preset.preprocessor) if preset.preprocessor else None
        return ModelSource(preset.hub_id, "preset", json.loads(json.dumps(preset.config)),
                           f"preset {preset.hub_id}", None, preset.hub_id, pre)
    if HUB_ID.match(model):
        config_path = hub_download(model, "config.json")
        cfg = read_json(confined(config_path.parent, config_path, "the cached config.json"))
        if not isinstance(cfg, dict):
            raise InspectError(f"{config_path}: must be a JSON object, got {type(cfg).__name__}")
        pre_path = hub_download(model, "preprocessor_config.json", required=False) if cfg.get("vision_config") else None
        pre = _preprocessor(confined(pre_path.parent, pre_path, "the cached preprocessor_config.json")) \
            if pre_path else None
        return ModelSource(model, "hub", cfg, f"{model}/config.json", config_path.parent, model, pre)
    if model.endswith(".json") or os.sep in model:
        raise InspectError(f"{model}: file not found")
    raise InspectError(f"{model!r} is not a preset, a local path or a Hub id (owner/name).{_did_you_mean(model)} "
                       "See `inspect presets`")


def _did_you_mean(model: str) -> str:
    close = similar_presets(model)
    return f" Did you mean {' or '.join(close)}?" if close else ""


def load_spec(model: str) -> ModelSpec:
    """MODEL -> ModelSpec (the one entry point commands use)."""
    src = resolve(model)
    return from_hf_config(src.config, src.name, src.where, src.where, src.preprocessor)
