"""One expected tensor (`WeightEntry`) and the row names of the tables it is grouped into.

Row names follow the tables of *Implementations of Large Language Models* (Table 1.2 for a
decoder LLM, Table 2.2 for a vision tower and its projector).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LM = "language_model"


@dataclass(frozen=True)
class WeightEntry:
    """One expected tensor.

    `group` is the row of seed 003's tables it belongs to; `role` is the family-independent
    part it plays ("q.weight", "embed", ...); `stored` is False for a tied LM head, which the
    checkpoint does not hold (`tied_to` names the tensor it shares).
    """

    name: str
    shape: tuple[int, ...]
    component: str
    group: str
    role: str
    layer: int | None = None
    stored: bool = True
    tied_to: str | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


# Row names, in the order of seed 003's Table 1.2.
EMBED, IN_NORM, ATTN, POST_NORM, MLP, FINAL_NORM, HEAD = (
    "Embedding", "RMS norm (input)", "Attention layer", "RMS norm (post-attention)",
    "MLP layer", "RMS norm (final)", "LM head",
)


