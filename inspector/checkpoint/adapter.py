"""Reading a LoRA adapter: peft's directory (adapter_config.json + adapter_model.safetensors) or a GGUF LoRA.

peft's `save_pretrained` writes `adapter_config.json` (the LoraConfig as JSON) and
`adapter_model.safetensors` (the adapter's tensors, keys `base_model.model.<module>.lora_A.weight`,
...); older peft wrote `adapter_model.bin`, a pickle, which is refused in one line and never
unpickled. llama.cpp's convert_lora_to_gguf.py writes one GGUF file with `general.type = adapter`,
`adapter.type = lora`, `adapter.lora.alpha` and tensors `<gguf name>.lora_a` / `.lora_b`
(https://github.com/ggml-org/llama.cpp/blob/master/convert_lora_to_gguf.py). Headers only: the
safetensors header and the GGUF tensor table are read with bounded reads (inspector.checkpoint.open).
A Hub id (`owner/name`, no such local path) is read the same way over HTTP: adapter_config.json
through huggingface_hub's cache, the safetensors header by range reads (inspector.checkpoint.hub),
both at the commit the Hub names first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.checkpoint.open import GGUF, SAFETENSORS, format_of, refuse_pickle
from inspector.checkpoint.records import CheckpointHeaders
from inspector.errors import InspectError, printable
from inspector.files import confined, local_path, read_json

CONFIG_NAME = "adapter_config.json"  # peft.utils.constants.CONFIG_NAME
WEIGHTS_NAME = "adapter_model.safetensors"  # peft.utils.constants.SAFETENSORS_WEIGHTS_NAME
PICKLE_NAME = "adapter_model.bin"  # peft.utils.constants.WEIGHTS_NAME


@dataclass(frozen=True)
class AdapterFiles:
    """An adapter as read: its config (peft's keys; a GGUF adapter's mapped onto them), its headers,
    where it is, and the base model the config names (None when it names none)."""

    path: str
    config: dict[str, Any]
    headers: CheckpointHeaders
    format: str  # "peft" | "gguf"
    base: str | None


def _peft_config(directory: Path) -> dict[str, Any]:
    config_path = directory / CONFIG_NAME
    if not os.path.lexists(config_path):
        raise InspectError(f"--adapter {printable(directory)}: no {CONFIG_NAME} (a peft adapter directory "
                           f"holds {CONFIG_NAME} and {WEIGHTS_NAME})")
    return _checked_config(read_json(confined(directory, config_path, f"the adapter's {CONFIG_NAME}")), config_path)


def _checked_config(cfg: Any, config_path: Path | str) -> dict[str, Any]:
    if not isinstance(cfg, dict):
        raise InspectError(f"{printable(config_path)}: must be a JSON object, got {type(cfg).__name__}")
    kind = cfg.get("peft_type", "LORA")
    if kind != "LORA":
        raise InspectError(f"{printable(config_path)}: peft_type {kind!r}; only LoRA adapters (LORA) are read")
    return cfg


def _peft_headers(directory: Path) -> CheckpointHeaders:
    weights = directory / WEIGHTS_NAME
    if os.path.lexists(weights):
        return SAFETENSORS.headers(confined(directory, weights, f"the adapter's {WEIGHTS_NAME}"))
    if os.path.lexists(directory / PICKLE_NAME):
        raise refuse_pickle(directory / PICKLE_NAME)
    raise InspectError(f"--adapter {printable(directory)}: no {WEIGHTS_NAME} beside {CONFIG_NAME}")


def _gguf_adapter(path: Path) -> AdapterFiles:
    headers = GGUF.headers(path)
    meta = headers.metadata
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise InspectError(f"--adapter {printable(path)}: a GGUF file but not a LoRA adapter (general.type "
                           f"{meta.get('general.type')!r}, adapter.type {meta.get('adapter.type')!r})")
    # the token embedding's lora_a is stored transposed, (num, r) (see inspector.memory.adapter_verify)
    ranks = {t.shape[-1 if n.endswith("token_embd.weight.lora_a") else 0] for n, t in headers.tensors.items()
             if n.endswith(".lora_a") and t.shape}
    alpha = meta.get("adapter.lora.alpha")
    cfg = {"peft_type": "LORA", "r": min(ranks) if ranks else 0, "lora_alpha": alpha,
           "general.architecture": meta.get("general.architecture")}
    return AdapterFiles(str(path), cfg, headers, "gguf", None)


def _hub_adapter(repo_id: str) -> AdapterFiles:
    """A peft adapter on the Hub: its config downloaded (a small file, cached), its safetensors header
    read by range (never the weights), both at one commit."""
    from inspector.checkpoint.hub import read_hub_file_header
    from inspector.hub import hub_download, hub_offline, repo_listing

    if hub_offline():
        raise InspectError(f"--adapter {printable(repo_id)}: not a local path, and a Hub adapter's header is read "
                           f"over HTTP but HF_HUB_OFFLINE is set")
    listing = repo_listing(repo_id)
    commit = listing.commit if listing is not None else None
    if listing is not None:
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if name not in listing.files:
                if name == WEIGHTS_NAME and PICKLE_NAME in listing.files:
                    raise refuse_pickle(Path(f"{repo_id}/{PICKLE_NAME}"))
                raise InspectError(f"--adapter {printable(repo_id)}: the Hub repo has no {name} (a peft adapter "
                                   f"holds {CONFIG_NAME} and {WEIGHTS_NAME})")
    config_path = hub_download(repo_id, CONFIG_NAME, commit)
    cfg = _checked_config(read_json(config_path), f"{repo_id}/{CONFIG_NAME}")
    base = cfg.get("base_model_name_or_path")
    return AdapterFiles(repo_id, cfg, read_hub_file_header(repo_id, WEIGHTS_NAME, commit), "peft",
                        base if isinstance(base, str) and base else None)


def read_adapter(path: str) -> AdapterFiles:
    """`--adapter PATH`: a peft adapter directory, a GGUF LoRA file, or a Hub id. Every failure is one line."""
    from inspector.hub import is_hub_id

    p = local_path(path, "--adapter")
    if not os.path.lexists(p):
        if is_hub_id(path):
            return _hub_adapter(path)
        raise InspectError(f"--adapter {printable(p)}: no such file or directory")
    if not p.is_dir():
        if format_of(p) is GGUF:
            return _gguf_adapter(p)
        if p.name == CONFIG_NAME:
            p = p.parent
        else:
            raise InspectError(f"--adapter {printable(p)}: expected a peft adapter directory ({CONFIG_NAME} + "
                               f"{WEIGHTS_NAME}) or a GGUF LoRA file")
    cfg = _peft_config(p)
    base = cfg.get("base_model_name_or_path")
    return AdapterFiles(str(p), cfg, _peft_headers(p), "peft", base if isinstance(base, str) and base else None)


__all__ = ["AdapterFiles", "CONFIG_NAME", "WEIGHTS_NAME", "read_adapter"]
