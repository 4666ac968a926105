"""A config -> Accounting: a native family's inventory, or transformers' on the meta device for the rest.

`account_config` is what `params` counts (through inspector.source.account_model, which resolves
MODEL). A config whose `model_type` has a native family (or a native vision-language wrapper) is
counted from `inspector.spec`; any other goes to `inspector.inventory.transformers_meta`, which needs
the optional transformers extra and is the only path that imports torch.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from inspector.inventory.accounting import Accounting, account
from inspector.spec.model import from_hf_config, supported_model_types


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


def account_config(cfg: dict[str, Any], name: str, where: str,
                   preprocessor: dict[str, Any] | None = None) -> Accounting:
    """The accounting of a parsed config: native when its family is, else transformers' on meta."""
    if is_native(cfg):
        return account(from_hf_config(cfg, name, where, where, preprocessor))
    from inspector.inventory.transformers_meta import meta_account

    check_fallback_config(cfg, where)
    return meta_account(cfg, name, where)


@lru_cache(maxsize=None)
def preset_params(hub_id: str) -> int | None:
    """An embedded preset's total parameters (native families; None for the others, which would need
    transformers), counted once per process: presets are constants of the package."""
    from inspector.spec.presets import all_presets

    p = next(p for p in all_presets() if p.hub_id == hub_id)
    if not is_native(p.config):
        return None
    return account(from_hf_config(dict(p.config), p.hub_id, preprocessor=p.preprocessor)).totals.total_params
