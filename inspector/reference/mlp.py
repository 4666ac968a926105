"""Feed-forward parts of the reference decoder (Step 6 of *Implementations of Large Language Models*).

`MLP`: down(act(gate(x)) * up(x)) (SwiGLU with silu, GeGLU with a tanh GELU), gate and up as
two matrices or one fused gate_up (gate rows first). `PlainMLP`: fc2(act(fc1(x))) with biases
(GPT-2, GPT-NeoX, Phi-2, StarCoder2). `inspector.reference.moe.feed_forward_for(spec, layer)` picks
a layer's part: one of these, or a router and experts.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from inspector.errors import InspectError
from inspector.reference.layers import Tap, linear, note
from inspector.spec.text import TextSpec


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": F.silu, "swish": F.silu, "gelu": F.gelu, "gelu_pytorch_tanh": _gelu_tanh, "gelu_new": _gelu_tanh,
    "relu": F.relu, "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu2": lambda x: F.relu(x).square(),  # Nemotron-H (transformers' ReLUSquaredActivation)
}

# Inventory roles of the feed-forward part -> parameter path under `layers.{i}.mlp.` ("gate.weight").
MLP_ROLES: dict[str, Callable[[str, int | None], str]] = {
    part: (lambda role, expert: role) for part in ("gate", "up", "gate_up", "down", "fc1", "fc2")
}


def activation(spec: TextSpec) -> Callable[[torch.Tensor], torch.Tensor]:
    if spec.hidden_act not in ACTIVATIONS:
        raise InspectError(f"hidden_act {spec.hidden_act!r} is not supported (supported: {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[spec.hidden_act]


class MLP(nn.Module):
    """down(act(gate(x)) * up(x)); a fused gate_up holds the gate rows first, then the up rows."""

    def __init__(self, spec: TextSpec, width: int, sparsity: float = 0.0) -> None:
        super().__init__()
        d, bias = spec.hidden_size, spec.mlp_bias
        self.act = activation(spec)
        self.sparsity = sparsity  # Gemma 3n: the gate keeps what lies above its mean + z(sparsity) std
        if sparsity:
            self.sparse = Tap("Step 6", f"activation sparsity: gate - (mean + {_normal_quantile(sparsity):.4g} std) "
                              f"over d_inter, clamped at 0 (about {sparsity:.0%} of it zero)")
        if spec.mlp == "gated_fused":
            self.gate_up = linear(spec, d, 2 * width, bias, "Step 6", "fused gate and up projections")
        else:
            self.gate = linear(spec, d, width, bias, "Step 6", "gate projection")
            self.up = linear(spec, d, width, bias, "Step 6", "up projection")
        self.down = linear(spec, width, d, bias, "Step 6", "down projection")
        # Falcon-H1's mlp_multipliers: the gate's pre-activation and the output scaled
        self.gate_scale, self.down_scale = (spec.mup.mlp_gate, spec.mup.mlp_down) if spec.mup else (1.0, 1.0)
        self.gated = Tap("Step 6", f"{spec.hidden_act}(gate) * up")
        note(self, "Step 6", "FFN output")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "gate_up"):
            gate, up = self.gate_up(x).chunk(2, dim=-1)  # (b, n, d_inter) each
        else:
            gate, up = self.gate(x), self.up(x)  # (b, n, d_inter) each
        if self.sparsity:
            gate = self.sparse(self._top_k(gate))  # (b, n, d_inter)
        if self.gate_scale != 1.0 or self.down_scale != 1.0:
            return self.down(self.gated(self.act(gate * self.gate_scale) * up)) * self.down_scale  # (b, n, d)
        return self.down(self.gated(self.act(gate) * up))  # (b, n, d)

    def _top_k(self, gate: torch.Tensor) -> torch.Tensor:
        """Gemma 3n's statistical top-k (transformers Gemma3nTextMLP._gaussian_topk): relu(gate - cutoff),
        cutoff = mean + std * the standard normal's quantile at the sparsity target, over d_inter."""
        z = torch.tensor(_normal_quantile(self.sparsity), dtype=torch.float32, device="cpu").to(gate.dtype)
        mean, std = gate.mean(-1, keepdim=True), gate.std(-1, keepdim=True, unbiased=False)  # (b, n, 1) each
        return F.relu(gate - (mean + std * z.to(gate.device)))


def _normal_quantile(p: float) -> float:
    """The standard normal's quantile at p: sqrt(2) erfinv(2p - 1), in float32 as torch's Normal.icdf."""
    value = torch.tensor(p, dtype=torch.float32, device="cpu")  # (also while a model is built on meta)
    return float(torch.erfinv(2 * value - 1) * math.sqrt(2))


class PlainMLP(nn.Module):
    """fc2(act(fc1(x))): the two-matrix MLP of GPT-2 and its descendants."""

    def __init__(self, spec: TextSpec, width: int) -> None:
        super().__init__()
        d, bias = spec.hidden_size, spec.mlp_bias
        self.act = activation(spec)
        self.fc1 = linear(spec, d, width, bias, "Step 6", "fc1 to d_inter")
        self.activated = Tap("Step 6", f"{spec.hidden_act}(fc1)")
        self.fc2 = linear(spec, width, d, bias, "Step 6", "fc2 back to d")
        note(self, "Step 6", "FFN output")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activated(self.act(self.fc1(x))))  # (b, n, d)
