"""Resolving MODEL to a config dict: an embedded preset, a local directory or config.json, or a Hub id.

Only config.json (and, for VLMs, preprocessor_config.json when present) is read. Hub downloads go
through huggingface_hub (its cache, HF_HUB_OFFLINE, HF_TOKEN); every failure becomes one
InspectError line. No torch, no transformers, no remote code.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.errors import InspectError
from inspector.files import read_json
from inspector.presets import find_preset
from inspector.spec import ModelSpec, from_hf_config

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


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


def _local(path: Path, name: str) -> ModelSource:
    if path.is_dir():
        config_path = path / "config.json"
        if not config_path.exists():
            raise InspectError(f"{path}: no config.json in this directory")
        directory = path
    else:
        config_path, directory = path, path.parent
    cfg = read_json(config_path)
    pre_path = directory / "preprocessor_config.json"
    pre = read_json(pre_path) if pre_path.exists() else None
    return ModelSource(name, "local", cfg, str(config_path), directory, None, pre if isinstance(pre, dict) else None)


def hub_endpoint_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the Hub endpoint, so a dead network fails in seconds, not after retries."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_download(repo_id: str, filename: str, revision: str | None = None, required: bool = True) -> Path | None:
    """Fetch one file of a Hub repo through huggingface_hub's cache; one-line errors.

    A cached copy is used first; then, unless HF_HUB_OFFLINE is set, the Hub is probed and asked.
    With `required=False` a file the repo lacks (or that cannot be had offline) gives None.
    """
    import logging

    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError, GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
    )

    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, EntryNotFoundError, OSError, ValueError):
        pass
    if hub_offline():
        if not required:
            return None
        raise InspectError(f"{repo_id}: cannot fetch {filename}: HF_HUB_OFFLINE is set and it is not in the local cache")
    if not hub_endpoint_reachable():
        if not required:
            return None
        raise InspectError(f"{repo_id}: cannot fetch {filename}: the Hugging Face Hub is not reachable (offline?)")
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, etag_timeout=10))
    except GatedRepoError:
        raise InspectError(f"{repo_id}: gated repo; accept its licence on the Hub and set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise InspectError(f"{repo_id}: no such repo on the Hugging Face Hub (or it is private: set HF_TOKEN)") from None
    except EntryNotFoundError:
        if not required:
            return None
        raise InspectError(f"{repo_id}: the Hub repo has no {filename}") from None
    except Exception as exc:  # timeouts, HTTP errors: one line
        raise InspectError(f"{repo_id}: cannot fetch {filename} from the Hugging Face Hub ({type(exc).__name__})") from None


def resolve(model: str) -> ModelSource:
    """MODEL -> ModelSource. Order: an existing local path, a preset, then a Hub id."""
    path = Path(model).expanduser()
    if path.exists():
        return _local(path, model)
    preset = find_preset(model)
    if preset is not None:
        pre = dict(preset.preprocessor) if preset.preprocessor else None
        return ModelSource(preset.hub_id, "preset", json.loads(json.dumps(preset.config)),
                           f"preset {preset.hub_id}", None, preset.hub_id, pre)
    if HUB_ID.match(model):
        config_path = hub_download(model, "config.json")
        cfg = read_json(config_path)
        pre_path = hub_download(model, "preprocessor_config.json", required=False) if cfg.get("vision_config") else None
        pre = read_json(pre_path) if pre_path else None
        return ModelSource(model, "hub", cfg, f"{model}/config.json", config_path.parent, model, pre)
    if model.endswith(".json") or os.sep in model:
        raise InspectError(f"{model}: file not found")
    raise InspectError(f"{model!r} is not a preset, a local path or a Hub id (owner/name); see `inspect presets`")


def load_spec(model: str) -> ModelSpec:
    """MODEL -> ModelSpec (the one entry point commands use)."""
    src = resolve(model)
    return from_hf_config(src.config, src.name, src.where, src.where, src.preprocessor)
