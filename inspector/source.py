"""What MODEL means: one `ModelSource` for every command, from a preset, a local path or a Hub id.

`resolve(model)` reads the config (an embedded preset's; a directory's config.json, and
preprocessor_config.json for a VLM; the config.json beside a safetensors file; a GGUF file's own
metadata, the file parsed once for config, headers and tensors; a Hub repo's config.json through
inspector.hub) and says where the checkpoint and the tokenizer are. Above it: `load_spec` (MODEL ->
ModelSpec), `account_model` (what `params` counts), `locate` (MODEL and --weights for a trace or a
run) and `verify` (MODEL and/or --weights for `inspect verify`). Which kind of file a path is comes
from inspector.checkpoint.open's FORMATS table (imported when a path is read, not for a preset).
Every failure is one InspectError line. No torch, no transformers, no remote code (a GGUF's tensor
source, for a trace, is built with torch when asked).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspector.errors import InspectError
from inspector.files import confined, local_path, read_json
from inspector.spec.model import ModelSpec, from_hf_config, read_config_files, read_preprocessor
from inspector.spec.presets import find_preset, similar_presets

if TYPE_CHECKING:
    from inspector.checkpoint.verify import VerifyInputs, VerifyResult
    from inspector.inventory.accounting import Accounting, StoredCheckpoint


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: a preset, a local directory or file, or a Hub repo."""

    name: str
    kind: str  # "preset" | "local" | "gguf" | "hub"
    config: dict[str, Any]
    where: str  # what to name in messages: a file path, "preset X", or "repo/config.json"
    directory: Path | None = None
    hub_id: str | None = None
    preprocessor: dict[str, Any] | None = None
    checkpoint: Path | None = None  # a GGUF or safetensors file named as MODEL: its weights are at hand
    opened: Any = None  # a checkpoint that carries its config (a GGUFCheckpoint), parsed once
    tokenizer: str | None = None  # a packaged kind, a directory with tokenizer.json, or a GGUF file

    def spec(self) -> ModelSpec:
        return from_hf_config(self.config, self.name, self.where, self.where, self.preprocessor)


def _tokenizer_dir(directory: Path) -> str | None:
    return str(directory) if (directory / "tokenizer.json").exists() else None


def _local(path: Path, name: str) -> ModelSource:
    from inspector.checkpoint.open import SAFETENSORS, format_of

    fmt = None if path.is_dir() else format_of(path)
    if fmt is not None and fmt.carries_config:  # the config is the file's own metadata
        opened = fmt.opened(path)
        return ModelSource(path.name, fmt.name, opened.config, str(path), path.parent, checkpoint=path,
                           opened=opened, tokenizer=str(path))
    if fmt is SAFETENSORS:  # the weights of the config.json beside them
        if not os.path.lexists(path.parent / "config.json"):
            raise InspectError(f"{path}: a safetensors file holds weights, not a config, and there is no "
                               f"config.json beside it (`inspect verify {path}` lists its tensors)")
        return replace(_local(path.parent, name), checkpoint=path)
    directory = path if path.is_dir() else path.parent
    cfg, config_path, pre = read_config_files(directory, None if path.is_dir() else path)
    return ModelSource(name, "local", cfg, str(config_path), directory, None, pre,
                       tokenizer=_tokenizer_dir(directory))


def _hub(model: str) -> ModelSource:
    from inspector.hub import hub_download  # not imported for a preset or a local path (cold start)

    config_path = hub_download(model, "config.json")
    cfg = read_json(confined(config_path.parent, config_path, "the cached config.json"))
    if not isinstance(cfg, dict):
        raise InspectError(f"{config_path}: must be a JSON object, got {type(cfg).__name__}")
    pre_path = hub_download(model, "preprocessor_config.json", required=False) if cfg.get("vision_config") else None
    pre = read_preprocessor(confined(pre_path.parent, pre_path, "the cached preprocessor_config.json")) \
        if pre_path else None
    return ModelSource(model, "hub", cfg, f"{model}/config.json", config_path.parent, model, pre,
                       tokenizer=_tokenizer_dir(config_path.parent))


def resolve(model: str) -> ModelSource:
    """MODEL -> ModelSource. Order: an existing local path (or a link named like a checkpoint
    file, refused by its reader), a preset, then a Hub id."""
    path = local_path(model, "MODEL")
    if path.exists() or (os.path.lexists(path) and _names_a_checkpoint(path)):
        return _local(path, model)
    preset = find_preset(model)
    if preset is not None:
        pre = dict(preset.preprocessor) if preset.preprocessor else None
        return ModelSource(preset.hub_id, "preset", json.loads(json.dumps(preset.config)),
                           f"preset {preset.hub_id}", None, preset.hub_id, pre, tokenizer=preset.tokenizer or None)
    from inspector.hub import HUB_ID

    if HUB_ID.match(model):
        return _hub(model)
    if model.endswith(".json") or os.sep in model:
        raise InspectError(f"{model}: file not found")
    raise InspectError(f"{model!r} is not a preset, a local path or a Hub id (owner/name).{_did_you_mean(model)} "
                       "See `inspect presets`")


def _names_a_checkpoint(path: Path) -> bool:
    from inspector.checkpoint.open import format_of

    return format_of(path) is not None


def _did_you_mean(model: str) -> str:
    close = similar_presets(model)
    return f" Did you mean {' or '.join(close)}?" if close else ""


def load_spec(model: str) -> ModelSpec:
    """MODEL -> ModelSpec (the one entry point commands use)."""
    return resolve(model).spec()


# --------------------------------------------------------------------------- params


def account_model(model: str) -> Accounting:
    """What `params` shows for MODEL: its inventory counted, and the bytes per dtype of the
    checkpoint file MODEL names, if it names one."""
    from inspector.inventory.load import account_config

    src = resolve(model)
    acc = account_config(src.config, src.name, src.where, src.preprocessor)
    return replace(acc, stored=stored_checkpoint(src)) if src.checkpoint else acc


def stored_checkpoint(src: ModelSource) -> StoredCheckpoint:
    """Bytes per dtype (GGUF: per quant type) of the checkpoint file MODEL names, from its headers only."""
    from inspector.checkpoint.open import open_checkpoint
    from inspector.inventory.accounting import StoredCheckpoint

    headers = src.opened.headers if src.opened is not None else open_checkpoint(src.checkpoint)
    by_dtype: dict[str, list[int]] = {}
    for info in headers.tensors.values():
        row = by_dtype.setdefault(info.dtype, [0, 0, 0])
        row[0], row[1], row[2] = row[0] + 1, row[1] + info.numel, row[2] + info.nbytes
    dtypes = tuple(sorted(((d, *v) for d, v in by_dtype.items()), key=lambda r: -r[3]))
    return StoredCheckpoint(str(src.checkpoint), headers.total_bytes, dtypes)


# --------------------------------------------------------------------------- trace and run


def _has_safetensors(directory: Path | None) -> bool:
    return directory is not None and any(directory.glob("*.safetensors"))


def locate(model: str, weights: str | None) -> tuple[ModelSpec, Any, str]:
    """(spec, weights: a path, a GGUF's tensor source or None, tokenizer source) for MODEL / --weights."""
    from inspector.checkpoint.open import GGUF, format_of

    local_path(model, "MODEL")
    if weights is not None:
        local_path(weights, "--weights")
    src = resolve(model)
    if src.opened is not None:  # parsed once: the config here, the tensors when loading
        return src.spec(), weights or format_of(src.checkpoint).opened_source(src.opened), src.tokenizer
    if weights is None and _has_safetensors(src.directory):
        weights = str(src.directory)
    weights_tokenizer = weights if isinstance(weights, str) and format_of(weights) is GGUF else None
    return src.spec(), weights, src.tokenizer or weights_tokenizer or src.hub_id or model


# --------------------------------------------------------------------------- verify


def verify_inputs(model: str | None, weights: str | None) -> VerifyInputs:
    """What `inspect verify MODEL [--weights PATH]` compares."""
    from inspector.checkpoint.open import open_checkpoint
    from inspector.checkpoint.verify import VerifyInputs

    if model is None and weights is None:
        raise InspectError("give MODEL (a directory, .gguf file, preset or Hub id) or --weights PATH")
    model = None if model is None else str(local_path(model, "MODEL"))
    if weights is not None:
        return _beside_weights(model, str(local_path(weights, "--weights")))
    src = resolve(model)
    if src.opened is not None:
        return VerifyInputs(src.opened.headers, model, src.config, src.name, src.where)
    if src.kind == "local":  # a safetensors file's expectation is the config.json beside it
        headers = open_checkpoint(src.checkpoint or src.directory)
        return VerifyInputs(headers, model, src.config, src.where if src.checkpoint else src.name, src.where)
    from inspector.checkpoint.hub import read_hub_headers

    repo = src.hub_id or model
    return VerifyInputs(read_hub_headers(repo), f"hub:{repo}", src.config, src.name, src.where)


def _beside_weights(model: str | None, weights: str) -> VerifyInputs:
    """--weights: the config comes from MODEL, else from the checkpoint itself (GGUF), else from a
    config.json beside it; without one the checkpoint is listed only."""
    from inspector.checkpoint.open import format_named, open_checkpoint
    from inspector.checkpoint.verify import VerifyInputs

    headers = open_checkpoint(weights)
    if model is not None:
        src = resolve(model)
        return VerifyInputs(headers, weights, src.config, src.name, src.where)
    fmt = format_named(headers.format)
    if fmt.carries_config:
        return VerifyInputs(headers, weights, fmt.config(headers), Path(weights).name, weights)
    base = Path(weights) if Path(weights).is_dir() else Path(weights).parent
    config_path = base / "config.json"
    if not os.path.lexists(config_path):
        return VerifyInputs(headers, weights, None,
                            notes=(f"no config.json beside {weights}: listing the checkpoint's tensors only",))
    return VerifyInputs(headers, weights, read_json(config_path), str(base), str(config_path))


def verify(model: str | None, weights: str | None = None) -> VerifyResult:
    """`inspect verify`: MODEL's expected inventory checked against its checkpoint's headers."""
    from inspector.checkpoint.verify import verify_checkpoint

    return verify_checkpoint(verify_inputs(model, weights))
