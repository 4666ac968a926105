"""MODEL -> Accounting: a native family's inventory, or transformers' on the meta device for the rest.

`account_model` is what `params` calls. A config whose `model_type` has a native family (or a
native vision-language wrapper) is counted from `inspector.spec`; any other goes to
`inspector.inventory.transformers_meta`, which needs the optional transformers extra and is the
only path that imports torch.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from inspector.inventory.accounting import Accounting, StoredCheckpoint, account
from inspector.spec.model import from_hf_config, supported_model_types
from inspector.spec.resolve import resolve


def is_native(cfg) -> bool:
    """Whether a parsed config.json has a native family (a config without model_type is refused
    by the native reader with its own message)."""
    model_type = cfg.get("model_type") if isinstance(cfg, dict) else None
    return not isinstance(model_type, str) or model_type in supported_model_types()


def check_fallback_config(cfg, where: str) -> None:
    """The fields the transformers fallback reads itself (model_type, architectures), checked as a
    native config's are: one line naming the field, never a KeyError from deep inside."""
    from inspector.spec.config_reader import ConfigReader

    from inspector.hub.environment import check_hub_environment

    reader = ConfigReader(cfg, where)
    reader.str("model_type")
    reader.raw("architectures")
    check_hub_environment()  # transformers imports huggingface_hub, which reads them


def account_model(model: str) -> Accounting:
    src = resolve(model)
    if is_native(src.config):
        acc = account(from_hf_config(src.config, src.name, src.where, src.where, src.preprocessor))
    else:
        from inspector.inventory.transformers_meta import meta_account

        check_fallback_config(src.config, src.where)
        acc = meta_account(src.config, src.name, src.where)
    return replace(acc, stored=stored_checkpoint(src.checkpoint)) if src.checkpoint else acc


def stored_checkpoint(path: Path) -> StoredCheckpoint:
    """Bytes per dtype (GGUF: per quant type) of a checkpoint file, from its headers only."""
    from inspector.checkpoint.open import open_checkpoint

    headers = open_checkpoint(path)
    by_dtype: dict[str, list[int]] = {}
    for info in headers.tensors.values():
        row = by_dtype.setdefault(info.dtype, [0, 0, 0])
        row[0], row[1], row[2] = row[0] + 1, row[1] + info.numel, row[2] + info.nbytes
    dtypes = tuple(sorted(((d, *v) for d, v in by_dtype.items()), key=lambda r: -r[3]))
    return StoredCheckpoint(str(path), headers.total_bytes, dtypes)
