"""GGUF names of mixture-of-experts tensors: a small table to merge into the GGUF name map.

llama.cpp stores a layer's routed experts stacked, one tensor per projection (`blk.N.ffn_gate_exps`
of shape (E, I, H) in PyTorch order), where Hugging Face checkpoints store one tensor per expert.
The other MoE tensors (router, shared expert, DeepSeek's score bias) are one-to-one. Roles are those
of the family name templates (inspector.spec.families), so one table serves every MoE family.
"""

from __future__ import annotations

import re

# GGUF name after "blk.N." -> (role in the family name templates, stacked over the experts)
GGUF_MOE_ROLES: dict[str, tuple[str, bool]] = {
    "ffn_gate_inp.weight": ("router", False),
    "ffn_gate_exps.weight": ("expert_gate", True),
    "ffn_up_exps.weight": ("expert_up", True),
    "ffn_down_exps.weight": ("expert_down", True),
    "ffn_gate_shexp.weight": ("shared_gate", False),
    "ffn_up_shexp.weight": ("shared_up", False),
    "ffn_down_shexp.weight": ("shared_down", False),
    "ffn_gate_inp_shexp.weight": ("shared_expert_gate", False),
    "exp_probs_b.bias": ("router_score_bias", False),
}
_BLOCK = re.compile(r"^blk\.(\d{1,9})\.(.+)$")  # digits bounded: int() of a 5,000-digit layer would fail


def gguf_moe_role(name: str) -> tuple[int, str, bool] | None:
    """(layer, role, stacked) of a GGUF MoE tensor name, or None for any other tensor."""
    m = _BLOCK.match(name)
    if m is None or m.group(2) not in GGUF_MOE_ROLES:
        return None
    role, stacked = GGUF_MOE_ROLES[m.group(2)]
    return int(m.group(1)), role, stacked
