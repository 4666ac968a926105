"""llm-inspector's Python API: what is inside a transformer LLM or VLM, from a notebook.

    >>> import inspector
    >>> spec = inspector.load_spec("Qwen/Qwen2.5-1.5B")          # a preset, directory, config.json or Hub id
    >>> acc = inspector.account(spec)                              # rows of Table 1.2 and the totals
    >>> acc.totals.total_params
    1543714304

Torch-free: `load_spec`, `from_hf_config`, `inventory`, `account`, `open_checkpoint`, `verify`.
With the `torch` extra: `prepare` (model, tokenizer, device for a trace), `load_model`,
`trace_prompt`, `generate`, `load_tokenizer`. Names are imported on first use (`inventory` at
once), so `import inspector` imports neither torch nor transformers.
Bad input raises `InspectError` with a one-line message.
"""

from __future__ import annotations

import importlib
from typing import Any

from inspector.errors import InspectError

# `inventory` is also a subpackage's name: bind the function now, after that package is imported,
# so the import system's own binding of the subpackage cannot hide it later.
from inspector.inventory.model import inventory

# public name -> the module that defines it
_EXPORTS = {
    "load_spec": "inspector.source",
    "from_hf_config": "inspector.spec.model",
    "ModelSpec": "inspector.spec.model",
    "TextSpec": "inspector.spec.text",
    "WeightEntry": "inspector.inventory.entry",
    "account": "inspector.inventory.accounting",
    "open_checkpoint": "inspector.checkpoint.open",
    "verify": "inspector.source",
    # the torch parts
    "prepare": "inspector.runtime.prepare",
    "load_model": "inspector.reference.load",
    "trace_prompt": "inspector.runtime.trace",
    "generate": "inspector.runtime.generate",
    "load_tokenizer": "inspector.tokenizer.load",
}

__all__ = ["InspectError", "inventory", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'inspector' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
