"""The figures `inspect flops` reports for one model: prefill, decode and training FLOPs as plain numbers.

Pure arithmetic over inspector.compute.flops and .conventions; the keys are those of the JSON
output that issue 22 asks for (`prefill_flops`, `prefill_flops_last_logits`, `decode_flops`,
`train_flops_6nd`, `train_flops`), each with its "as needed" twin and the conventions beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inspector.compute.conventions import decode_bytes, forward_conventions, train_flops
from inspector.compute.flops import Ledger, VisionPass, decode, ledger, merged, prefill, vision_ledger


@dataclass(frozen=True)
class FlopsRequest:
    """What to count: a prefill of `seq_len` tokens and a decode step at `context`, for `batch`
    sequences; training over `train_tokens` (None: no training figures) in sequences of `seq_len`."""

    seq_len: int = 2048
    batch: int = 1
    context: int = 2048
    train_tokens: int | None = None
    recompute: bool = False
    experts_per_token: float | None = None  # None: top_k
    weight_bytes: float = 2.0  # bf16 weights
    kv_bytes: int = 2  # bf16 KV cache
    sliding_cache: bool = True  # sliding-window layers cache only their window (transformers, vLLM)
    images: tuple[VisionPass, ...] = ()  # images in the prompt (flops.vision_pass): their tower and projector


def ledgers(acc, req: FlopsRequest) -> dict[str, Ledger]:
    """The three ledgers: prefill (logits at every position), prefill (last logits), decode. The
    prefills include the tower and projector of each image of each sequence (`req.images`)."""
    k = req.experts_per_token
    images = [vision_ledger(acc, vp) for vp in req.images for _ in range(req.batch)]
    return {"prefill": merged(ledger(acc, prefill(req.seq_len, req.batch, False, k)), *images),
            "prefill_last_logits": merged(ledger(acc, prefill(req.seq_len, req.batch, True, k)), *images),
            "decode": ledger(acc, decode(req.context, req.batch, k, req.sliding_cache))}


def row_flops(acc, req: FlopsRequest) -> dict[tuple[str, str], dict[str, float]]:
    """Per `params` row, keyed (component, row name): each ledger's FLOPs, as computed and as needed
    (keys prefill, prefill_needed, prefill_last_logits, ..., decode_needed)."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for name, book in ledgers(acc, req).items():
        for r in book.rows:
            cell = out.setdefault(r.key, {})
            cell[name], cell[name + "_needed"] = r.computed, r.needed
    return out


def flops_figures(acc, req: FlopsRequest) -> dict[str, Any]:
    """Every figure as a plain number (the JSON of `inspect flops`, roofline times aside)."""
    books = ledgers(acc, req)
    step = books["decode"].step
    read = decode_bytes(acc, step, req.weight_bytes, req.kv_bytes)
    out: dict[str, Any] = {
        "seq_len": req.seq_len, "batch": req.batch, "context": req.context,
        "prefill_flops": books["prefill"].computed, "prefill_flops_needed": books["prefill"].needed,
        "prefill_flops_last_logits": books["prefill_last_logits"].computed,
        "prefill_flops_last_logits_needed": books["prefill_last_logits"].needed,
        "decode_flops": books["decode"].computed, "decode_flops_needed": books["decode"].needed,
        "decode_bytes": read.bytes, "decode_weight_bytes": read.weight_bytes, "decode_kv_bytes": read.kv_bytes,
        "decode_intensity": read.intensity,
        "not_counted": list(books["prefill"].skipped),
        "conventions": {c.name: c.flops for c in forward_conventions(acc, books["prefill"].step)},
    }
    if req.train_tokens is not None:
        train = train_flops(acc, req.train_tokens, req.seq_len, req.recompute, req.experts_per_token)
        out.update({"train_tokens": req.train_tokens, "train_flops_6nd": train.convention("6ND"),
                    "train_flops": train.computed, "train_flops_needed": train.needed, "recompute": req.recompute,
                    "train_conventions": {c.name: c.flops for c in train.conventions}})
    return out
