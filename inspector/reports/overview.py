"""The figures of one model as flows: the overview column(s) and every expanded layer.

`model_figures(acc, anchor)` returns the overview (the LLM column of Figure 1.1 of *Implementations
of Large Language Models*; for VLMs also the vision column and projector of Figure 2.1) and the
expanded flows (one per kind of decoder layer, and the vision block of Figure 2.2). Each overview
box links to its expansion. Boxes come from the inventory's entries, so the counted boxes of the
overview, and those of the expansions plus the overview's other boxes, both sum to the total.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.inventory.accounting import Accounting
from inspector.inventory.entry import HEAD, LM, MTP
from inspector.reports.arch import (
    Flow, LayerKind, Note, Part, decoder_flows, ffn_summary, layer_box, layer_flow, layer_kinds, part_of,
)
from inspector.reports.arch_text import layers_text
from inspector.units import billions, n

VISION, PROJECTOR = "vision_encoder", "projector"


@dataclass(frozen=True)
class Figures:
    columns: tuple[Flow, ...]  # vision column (VLMs) then the LLM column
    expanded: tuple[Flow, ...]  # decoder layer kinds, then the vision block
    other: tuple[Part, ...]  # boxes outside the layers (for the expansions' sum)


def _top(acc: Accounting, component: str) -> list:
    return [e for e in acc.entries if e.component == component and e.layer is None]


def _llm_column(acc: Accounting, kinds: list[LayerKind], flows: list[Flow], anchor: str) -> tuple[Flow, list[Part]]:
    t = acc.spec.text
    top = _top(acc, LM)
    d = t.hidden_size
    embed = [e for e in top if e.role == "embed"]
    pos = [e for e in top if e.role == "pos_embed"]
    head = [e for e in top if e.group == HEAD]
    norm = [e for e in top if e not in embed and e not in pos and e not in head]
    other = [part_of(f"{anchor}.embed", "Token embedding", embed, "embed", note=f"vocabulary {n(t.vocab_size)} × d {d}",
                     out=f"(b, n, {d})")]
    if pos:
        other.append(part_of(f"{anchor}.pos", "Position embedding", pos, "embed",
                             note=f"{n(t.max_position_embeddings)} positions, added"))
    boxes = [layer_box(k, f"{anchor}.layers{i}", "Decoder layer", ffn_summary(t, k), f"(b, n, {d})", f"#{f.key}")
             for i, (k, f) in enumerate(zip(kinds, flows))]
    other.append(part_of(f"{anchor}.norm", norm[0].group if norm else "Final norm", norm, "norm"))
    tied = head[0].tied_to if head else None
    title = "LM head (tied to the embedding)" if tied else "LM head"
    note = f"shares {tied.rsplit('.', 2)[-2]}: stored once" if tied else f"d {d} → {n(t.vocab_size)} logits"
    other.append(part_of(f"{anchor}.head", title, head, "head", note=note, out=f"(b, n, {n(t.vocab_size)})"))
    steps = [Note("token ids (b, n), from the tokenizer"), *other[:-2], *boxes, *other[-2:],
             Note("logits → sampling → next token")]
    mtp = [e for e in acc.entries if e.component == MTP and e.parameter]
    if mtp:
        total = sum(e.numel for e in mtp)
        steps.append(Part(f"{anchor}.mtp", "Multi-token prediction module", (f"{t.mtp_layers} extra layer(s), "
                          f"own embedding and head",), total, "extra", "stored beside the model, not counted",
                          counted=False))
    return Flow(f"{anchor}-llm", "Language model", tuple(steps)), other


def _vision_column(acc: Accounting, kinds: list[LayerKind], flows: list[Flow], anchor: str) -> tuple[Flow, list[Part]]:
    v = acc.spec.vision
    enc = v.encoder
    emb = enc.embed
    top = _top(acc, VISION)
    groups: dict[str, list] = {}
    for e in top:
        groups.setdefault(e.group, []).append(e)
    other = [part_of(f"{anchor}.v.{i}", g, es, "vision") for i, (g, es) in enumerate(groups.items())]
    tokens = v.projector.merge_size * v.projector.merge_size
    blocks = [layer_box(k, f"{anchor}.vlayers{i}", "Vision block", "attention + MLP", f"(n_patches, {enc.hidden_size})",
                        f"#{f.key}")
              for i, (k, f) in enumerate(zip(kinds, flows))]
    proj_groups: dict[str, list] = {}
    for e in acc.entries:  # every projector tensor, repeated ones too (Qwen3-VL's DeepStack mergers)
        if e.component == PROJECTOR:
            proj_groups.setdefault(e.group, []).append(e)
    proj = [part_of(f"{anchor}.p.{i}", g, es, "proj", note=f"{tokens} patches → 1 token" if i == 0 else "")
            for i, (g, es) in enumerate(proj_groups.items())]
    patch = f"{emb.temporal_patch_size} × {emb.patch_size} × {emb.patch_size}" if emb.temporal_patch_size > 1 else \
        f"{emb.patch_size} × {emb.patch_size}"
    steps = [Note(f"image ({emb.in_channels}, H, W) → patches of {patch}"), *other, *blocks, *proj,
             Note(f"image tokens (n_img, {v.projector.out_hidden_size}) → the LLM's sequence")]
    return Flow(f"{anchor}-vision", "Vision encoder and projector", tuple(steps)), other + proj


def model_figures(acc: Accounting, anchor: str) -> Figures:
    kinds = layer_kinds(acc.entries)
    flows = decoder_flows(acc, kinds, anchor)
    column, other = _llm_column(acc, kinds, flows, anchor)
    if acc.spec.vision is None:
        return Figures((column,), tuple(flows), tuple(other))
    vkinds = layer_kinds(acc.entries, VISION)
    vflows = [layer_flow(acc.spec.vision.encoder, k, f"{anchor}-vblock{i}", f"Vision block × {len(k.layers)} "
                         f"({layers_text(k.layers)})", f"(n_patches, {acc.spec.vision.encoder.hidden_size})")
              for i, k in enumerate(vkinds)]
    vcolumn, vother = _vision_column(acc, vkinds, vflows, anchor)
    return Figures((vcolumn, column), tuple(flows + vflows), tuple(vother + other))


def describe(acc: Accounting) -> str:
    """One sentence for the figure's <desc>: what a screen reader says about it."""
    t, s = acc.spec.text, acc.spec
    what = f"{s.name}: {t.num_layers} decoder layers, d {t.hidden_size}, {billions(acc.totals.total_params)} parameters"
    if s.vision is not None:
        what += f"; a vision encoder of {s.vision.encoder.depth} blocks and a projector beside the LLM"
    if t.moe is not None:
        what += f"; {t.moe.num_experts} routed experts in {len(t.moe.layers)} layers"
    return what + "."
