"""The FLOPs column of `inspect params --flops`: each params row's FLOPs for a prefill of N tokens, from the ledger.

Pure arithmetic (inspector.compute.figures.row_flops, no torch): "as computed", what torch's
FlopCounterMode counts over a forward of B sequences of N tokens with the logits at every position
(the `prefill_flops` of `inspect flops`). The reports layer sits above compute, so this module may
read it; inspector.reports.params only asks it for numbers and labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inspector.compute.figures import FlopsRequest, ledgers, row_flops
from inspector.units import n

# What the column counts, in one sentence (the same definitions as `inspect flops`).
DEFINITION = ("as computed: every projection 2 × its weight's numel per token, the full score matrix "
              "(QKᵀ and PV over every key), MoE at top_k experts per token, the LM head at every position; "
              "not counted (nor by torch's FlopCounterMode): embedding lookup, norms, RoPE, softmax, "
              "activations, biases")


@dataclass(frozen=True)
class FlopsColumn:
    """`--flops`: a prefill of `seq_len` tokens for `batch` sequences (the defaults of `inspect flops`)."""

    seq_len: int = 2048
    batch: int = 1

    def request(self) -> FlopsRequest:
        return FlopsRequest(seq_len=self.seq_len, batch=self.batch)

    def header(self) -> str:
        return f"FLOPs (prefill, {n(self.seq_len)} tokens)"

    def title(self) -> str:
        return f"Prefill FLOPs as computed ({n(self.seq_len)} tokens × batch {self.batch}, logits at every position)"


@dataclass(frozen=True)
class ModelFlops:
    """One model's column: prefill FLOPs as computed per params row, keyed (component, row name) like
    `acc.rows`, and the rows a text prefill does not run (a VLM's tower and projector)."""

    col: FlopsColumn
    by_row: dict[tuple[str, str], int | float]
    skipped: tuple[str, ...]

    @property
    def total(self) -> int | float:
        return sum(self.by_row.values())

    def json(self) -> dict[str, Any]:
        """The `flops` block of a params JSON payload."""
        return {"seq_len": self.col.seq_len, "batch": self.col.batch, "prefill_flops": self.total,
                "definition": DEFINITION, "not_counted": list(self.skipped)}


def model_flops(acc, col: FlopsColumn) -> ModelFlops:
    """The column of one model (InspectError for a model without a native family: no ledger)."""
    req = col.request()
    by_row = {key: cell["prefill"] for key, cell in row_flops(acc, req).items()}
    return ModelFlops(col, by_row, tuple(ledgers(acc, req)["prefill"].skipped))


def flops_notes(names: list[str], columns: list[ModelFlops]) -> list[str]:
    """The notes under the params table: the definition once, then per model the rows a text prefill
    does not run."""
    col = columns[0].col
    out = [f"{col.header()}: {DEFINITION}. `inspect flops MODEL --seq-len {col.seq_len}` adds the decode step, "
           "the counts as needed and the conventions."]
    out += [f"{name}: not in the FLOPs column (a text prompt does not run them): {', '.join(f.skipped)}."
            for name, f in zip(names, columns) if f.skipped]
    return out
