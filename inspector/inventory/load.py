"""MODEL -> Accounting: a native family's inventory, or transformers' on the meta device for the rest.

`account_model` is what `params` calls. A config whose `model_type` has a native family (or a
native vision-language wrapper) is counted from `inspector.spec`; any other goes to
`inspector.inventory.transformers_meta`, which needs the optional transformers extra and is the
only path that imports torch.
"""

from __future__ import annotations

from inspector.inventory.accounting import Accounting, account
from inspector.spec.model import from_hf_config, supported_model_types
from inspector.spec.resolve import resolve


def is_native(cfg) -> bool:
    """Whether a parsed config.json has a native family (a config without model_type is refused
    by the native reader with its own message)."""
    model_type = cfg.get("model_type") if isinstance(cfg, dict) else None
    return not isinstance(model_type, str) or model_type in supported_model_types()


def account_model(model: str) -> Accounting:
    src = resolve(model)
    if is_native(src.config):
        return account(from_hf_config(src.config, src.name, src.where, src.where, src.preprocessor))
    from inspector.inventory.transformers_meta import meta_account

    return meta_account(src.config, src.name, src.where)
