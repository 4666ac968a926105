"""How often each expert was chosen while `inspect run` generates, from hooks on every MoE layer.

Forward hooks on every MoE layer's tokens-per-expert step (inspector.reference.moe), summed over the
prompt and every decoded token.

`RoutingCounter(model)` is a context manager; the hooks only add the counts the model already
computed (kept on the device, read once at the end) and are removed on exit. No printing here.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

_TAP = re.compile(r"^layers\.(\d{1,9})\.mlp\.tokens_per_expert$")


class RoutingCounter:
    """Tokens each expert received, per MoE layer, over every forward run inside the `with` block."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.counts: dict[int, torch.Tensor] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> "RoutingCounter":
        for name, module in self.model.named_modules():
            m = _TAP.match(name)
            if m is not None:
                self._handles.append(module.register_forward_hook(self._add(int(m.group(1)))))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _add(self, layer: int):
        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            if not output.is_meta:
                done = self.counts.get(layer)
                self.counts[layer] = output.detach().clone() if done is None else done + output
            return None  # observe only

        return hook

    def layers(self) -> list[tuple[int, int, list[int]]]:
        """(layer, experts, tokens per expert) for each MoE layer, in layer order."""
        return [(layer, int(c.numel()), c.tolist()) for layer, c in sorted(self.counts.items())]
