"""The report's chart of where the FLOPs go: a prefill of N tokens and one decode step, by part of the model.

The numbers are the FLOPs ledger's (inspector.compute.figures.ledgers, "as computed": what torch's
FlopCounterMode counts), its rows summed into the parameter chart's categories (charts.category),
with the attention row split into its projections and its scores (QKᵀ and PV over every key,
compute.flops.attention_flops): a prefill's scores grow with N², the projections with N. Parts that
do no matmul (embedding lookup, norms) count 0 and are left out of the bars; so are a VLM's tower
and projector, which a text prompt does not run. Pure arithmetic: no torch.
"""

from __future__ import annotations

from inspector.compute.figures import FlopsRequest, ledgers
from inspector.compute.flops import Ledger, attention_flops
from inspector.errors import InspectError
from inspector.reports.charts import ORDER, bar_chart, category
from inspector.reports.markup import prose, tag
from inspector.units import n

PROJECTIONS, SCORES = "Attention projections", "Attention scores (QKᵀ, PV)"
FLOPS_ORDER = tuple(x for part in ORDER for x in ((PROJECTIONS, SCORES) if part == "Attention" else (part,)))
# Colours: each part keeps its colour of the parameter chart; the scores take the norms' (norms do no matmul).
PALETTE = {**{part: ORDER.index(part) for part in ORDER}, PROJECTIONS: ORDER.index("Attention"),
           SCORES: ORDER.index("Norms")}
NOTE = ("As computed: what torch's FlopCounterMode counts (every projection 2 × its weight's elements per token, "
        "the full score matrix over every key, MoE at top_k experts per token, the LM head at every position of the "
        "prefill). Embedding lookup, norms, RoPE, softmax and activations count 0 and have no bar. `inspect flops` "
        "gives the counts as needed, per row, and the conventions; `inspect params --flops` the column per row.")


def flops_shares(acc, book: Ledger) -> list[tuple[str, int | float]]:
    """(part, FLOPs as computed) of one pass, parts with FLOPs only, in FLOPS_ORDER; sums to the ledger's total."""
    sums: dict[str, int | float] = {}
    for r in book.rows:
        if r.computed:
            key = category(r.component, r.name)
            sums[key] = sums.get(key, 0) + r.computed
    t = acc.spec.text
    scores = sum(attention_flops(t, i, book.step)[0] for i in range(t.num_layers) if i not in acc.spec.cross_layers)
    if scores and "Attention" in sums:
        sums[PROJECTIONS], sums[SCORES] = sums.pop("Attention") - scores, scores
    known = [(k, sums[k]) for k in FLOPS_ORDER if sums.get(k)]
    return known + sorted((k, v) for k, v in sums.items() if k not in FLOPS_ORDER and v)


def flops_charts(acc, i: int, context: int, batch: int) -> str:
    """Two bar charts (a prefill of `context` tokens × `batch`, one decode step at that context) and a
    note; a model the ledger cannot count (no native family) gets one sentence instead."""
    req = FlopsRequest(seq_len=context, batch=batch, context=context)
    try:
        books = ledgers(acc, req)
    except InspectError as e:
        return tag("p", prose(f"No FLOPs chart: {e}."), class_="sub")
    prefill, decode = books["prefill"], books["decode"]
    what = f"{n(context)} tokens × batch {batch}"
    out = [_chart(acc, prefill, f"Where the {n(prefill.computed)} FLOPs of a prefill of {what} go",
                  f"m{i}-flops-prefill"),
           _chart(acc, decode, f"Where the {n(decode.computed)} FLOPs of one decode step at context "
                               f"{n(context)} × batch {batch} go", f"m{i}-flops-decode")]
    notes = [NOTE] + ([f"Not run by a text prompt, so not counted: {', '.join(prefill.skipped)}."]
                      if prefill.skipped else [])
    return "".join(out) + "".join(tag("p", prose(x), class_="sub") for x in notes)


def _chart(acc, book: Ledger, title: str, ident: str) -> str:
    shares = flops_shares(acc, book)
    desc = "FLOPs as computed by part of the model: " + "; ".join(f"{k} {n(v)}" for k, v in shares)
    return bar_chart(shares, book.computed, title, desc, ident, PALETTE)


__all__ = ["flops_shares", "flops_charts"]
