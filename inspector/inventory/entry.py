"""One expected tensor (`WeightEntry`) and the row names of the tables it is grouped into.

Row names follow the tables of *Implementations of Large Language Models* (Table 1.2 for a
decoder LLM, Table 2.2 for a vision tower and its projector).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from inspector.spec.norms import FINAL_PLACE

LM = "language_model"


class WeightEntry(NamedTuple):
    """One expected tensor.

    `group` is the table row it belongs to; `role` is the family-independent part it plays
    ("q.weight", "embed", ...); `expert` is the routed expert's index in a mixture of experts.
    `stored` is False for a tied LM head, which the checkpoint does not hold (`tied_to` names the
    tensor it shares). `parameter` is False for a buffer that checkpoints store (DeepSeek-V3's
    router score bias). `optional` tensors may be absent from a checkpoint (DeepSeek-V3's
    multi-token-prediction module). A NamedTuple: a 100,000-layer model has a million of them.
    """

    name: str
    shape: tuple[int, ...]
    component: str
    group: str
    role: str
    layer: int | None = None
    stored: bool = True
    tied_to: str | None = None
    expert: int | None = None
    parameter: bool = True
    optional: bool = False

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


# Row names, in the order of Table 1.2 of *Implementations of Large Language Models*, plus the rows
# of the parts it does not show (positions, experts, the MTP module).
EMBED, POS_EMBED, ATTN, MLP, HEAD = "Embedding", "Position embedding", "Attention layer", "MLP layer", "LM head"
ROUTER, EXPERTS, SHARED_EXPERT, DENSE_MLP = "Router", "Experts (routed)", "Shared expert", "MLP layer (dense layers)"
ROUTER_BIAS = "Router score-correction bias"
LINEAR_ATTN = "Linear attention layer (Gated DeltaNet)"
KDA_ATTN = "Linear attention layer (Kimi Delta Attention)"
SSM = "State-space layer (Mamba2)"
SHORT_CONV = "Short convolution layer"
LATENT = "Experts' latent projections"  # Nemotron-H's moe_latent_size: d -> latent before the experts, back after
MTP_PROJ, MTP_HEAD = "Embedding, norms and projection", "Head (norm and LM head)"
MTP = "mtp"  # component and row of DeepSeek-V3's multi-token-prediction module
# Gemma 3n / Gemma 4 rows (inspector.spec.per_layer): per-layer inputs, AltUp, LAuReL, Gemma 4's layer scalar
PLE, ALTUP, LAUREL = "Per-layer inputs (PLE)", "AltUp streams", "LAuReL residual"
PLE_TABLE, ALTUP_PROJ = "Per-layer input table and projection (PLE)", "AltUp stream projections"
LAYER_SCALAR = "Layer scalar (stored buffer)"


def norm_row(t, role: str) -> str:
    """The row of a norm: its kind and where it sits ("RMS norm (input)", "Layer norm (final)"),
    both from the spec's records (inspector.spec.norms)."""
    place = FINAL_PLACE if role == "final_norm" else t.placement.places[role]
    return f"{t.norm.row} ({place})"
