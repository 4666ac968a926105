"""The tensor inventory of a vision tower and its projector (components `vision_encoder`, `projector`).

Groups are the row names of Table 2.2 of *Implementations of Large Language Models*, in its order,
plus rows for the parts it does not show (norms before and after the blocks, Mllama's tile
embeddings and gated global layers, DeepStack mergers, the image newline). Which tensors exist and
which carry biases follow from the spec's EncoderSpec and ProjectorSpec; names come from its name
table; the projector's layers are data (inspector.spec.vision_kinds.PROJECTORS).
"""

from __future__ import annotations

from typing import Iterator

from inspector.inventory.entry import WeightEntry
from inspector.spec.vision import VisionSpec
from inspector.spec.vision_kinds import PROJECTORS

VE, PROJ = "vision_encoder", "projector"

# Row names of Table 2.2 (the two "Layer norm" and "Residual scale" rows of a block are told apart).
CONV, CLS, POS = "Convolution", "Class embedding", "Positional embedding"
TILE_POS, PRE_LN, POST_LN = "Tile position embeddings", "Layer norm (pre-encoder)", "Layer norm (post-encoder)"
LN1, ATTN, RS1 = "Layer norm (pre-attention)", "Attention layer", "Residual scale (attention)"
LN2, MLP, RS2 = "Layer norm (pre-MLP)", "MLP layer", "Residual scale (MLP)"
POST_ATTN, POST_MLP = "Layer norm (post-attention)", "Layer norm (post-MLP)"
GLOBAL, HEAD = "Gated global layer", "Attention-pooling head (unused)"
CLIP, STANDARDIZE = "Clip bounds (stored buffers)", "Output standardization (stored buffers)"
CLIP_BOUNDS = ("input_min", "input_max", "output_min", "output_max")  # Gemma 4's ClippableLinear buffers
MERGE_LN, MERGE_MLP = "Layer norm (merger)", "Merger MLP"

Entries = Iterator[WeightEntry]


def _entry(v: VisionSpec, role: str, shape, component: str, group: str, layer=None, suffix=""):
    return WeightEntry(v.name(role, layer, suffix), tuple(shape), component, group,
                       f"vision.{role}{suffix}", layer)


def _linear(v, role, out_f, in_f, component, group, layer=None, bias=True) -> Entries:
    yield _entry(v, role, (out_f, in_f), component, group, layer, ".weight")
    if bias:
        yield _entry(v, role, (out_f,), component, group, layer, ".bias")


_NORM_ROW = {"rms_norm": "RMS norm", "rms_offset": "RMS norm"}  # other kinds keep "Layer norm"


def _norm(v, role, dim, component, group, layer=None, with_bias=None) -> Entries:
    enc = v.encoder
    kind = {"pre_norm": enc.edge_norm, "post_norm": enc.edge_norm}.get(role, enc.norm_type) if component == VE \
        else v.projector.norm
    if kind in _NORM_ROW and group.startswith("Layer norm"):  # the row says which norm the spec has
        group = _NORM_ROW[kind] + group[len("Layer norm"):]
    bias = enc.norm_type == "layer_norm" if with_bias is None else with_bias
    yield _entry(v, role, (dim,), component, group, layer, ".weight")
    if bias:
        yield _entry(v, role, (dim,), component, group, layer, ".bias")


# --------------------------------------------------------------------------- encoder


def _clip_bounds(v: VisionSpec, i: int, roles: tuple[str, ...]) -> Entries:
    """Gemma 4's clippable linears: four scalar buffers beside each block linear ("{role}.linear")."""
    if not v.encoder.clip:
        return
    for role in roles:
        base = v.name(role, i).removesuffix(".linear")
        for bound in CLIP_BOUNDS:
            yield WeightEntry(f"{base}.{bound}", (), VE, CLIP, f"vision.{role}.{bound}", i, parameter=False)


def _attention(v: VisionSpec, i: int, p: str, group: str) -> Entries:
    enc = v.encoder
    d = enc.hidden_size
    if enc.attention == "fused":
        yield from _linear(v, p + "qkv", 3 * d, d, VE, group, i, enc.qkv_bias)
    else:
        for role, width in (("q", enc.q_width), ("k", enc.kv_width), ("v", enc.kv_width)):
            yield from _linear(v, p + role, width, d, VE, group, i, enc.qkv_bias)
    if enc.qk_norm:  # InternViT: RMSNorm over the whole width; Gemma 4: over d_h; weight only
        width = enc.head_dim if enc.qk_norm_width == "head" else d
        yield from _norm(v, p + "q_norm", width, VE, group, i, with_bias=False)
        yield from _norm(v, p + "k_norm", width, VE, group, i, with_bias=False)
    yield from _linear(v, p + "proj", d, enc.q_width, VE, group, i, enc.o_bias)


def _mlp(v: VisionSpec, i: int, p: str, group: str) -> Entries:
    enc = v.encoder
    d, w, b = enc.hidden_size, enc.intermediate_size, enc.mlp_bias
    if enc.mlp == "gated":
        yield from _linear(v, p + "gate", w, d, VE, group, i, b)
        yield from _linear(v, p + "up", w, d, VE, group, i, b)
        yield from _linear(v, p + "down", d, w, VE, group, i, b)
    else:
        yield from _linear(v, p + "fc1", w, d, VE, group, i, b)
        yield from _linear(v, p + "fc2", d, w, VE, group, i, b)


def _block(v: VisionSpec, i: int) -> Entries:
    d = v.encoder.hidden_size
    yield from _norm(v, "norm1", d, VE, LN1, i)
    yield from _attention(v, i, "", ATTN)
    if v.encoder.layer_scale:
        yield _entry(v, "ls1", (d,), VE, RS1, i)
    if v.encoder.sandwich:
        yield from _norm(v, "post_attn_norm", d, VE, POST_ATTN, i)
    yield from _norm(v, "norm2", d, VE, LN2, i)
    yield from _mlp(v, i, "", MLP)
    if v.encoder.layer_scale:
        yield _entry(v, "ls2", (d,), VE, RS2, i)
    if v.encoder.sandwich:
        yield from _norm(v, "post_mlp_norm", d, VE, POST_MLP, i)
    if v.encoder.clip:
        linears = ("q", "k", "v", "proj") + (("gate", "up", "down") if v.encoder.mlp == "gated" else ("fc1", "fc2"))
        yield from _clip_bounds(v, i, linears)


def _global_block(v: VisionSpec, i: int) -> Entries:
    """Mllama's gated global layer: a block whose two branches are scaled by tanh(gate)."""
    d = v.encoder.hidden_size
    yield from _norm(v, "g_norm1", d, VE, GLOBAL, i)
    yield from _attention(v, i, "g_", GLOBAL)
    yield from _norm(v, "g_norm2", d, VE, GLOBAL, i)
    yield from _mlp(v, i, "g_", GLOBAL)
    yield _entry(v, "g_gate_attn", (1,), VE, GLOBAL, i)
    yield _entry(v, "g_gate_ffn", (1,), VE, GLOBAL, i)


def _embeddings(v: VisionSpec) -> Entries:
    enc = v.encoder
    emb = enc.embed
    d, p = enc.hidden_size, emb.patch_size
    if emb.patch_embed == "linear":  # unfolded patches through a Linear (Llama 4)
        yield from _linear(v, "patch_embed", d, emb.in_channels * p * p, VE, CONV, bias=emb.conv_bias)
    else:
        kernel = (emb.temporal_patch_size, p, p) if emb.temporal_patch_size > 1 else (p, p)
        yield _entry(v, "patch_embed", (d, emb.in_channels, *kernel), VE, CONV, None, ".weight")
        if emb.conv_bias:
            yield _entry(v, "patch_embed", (d,), VE, CONV, None, ".bias")
    if emb.class_token:
        yield _entry(v, "class_embed", (1, 1, d) if emb.class_layout == "param" else (d,), VE, CLS)
    if emb.mask_token:
        yield _entry(v, "mask_token", (1, 1, d), VE, CLS)
    if emb.pos_layout == "param":
        yield _entry(v, "pos_embed", (1, emb.num_positions, d), VE, POS)
    elif emb.pos_layout == "table":
        yield _entry(v, "pos_embed", (emb.num_positions, d), VE, POS)
    elif emb.pos_layout == "embedding":
        yield _entry(v, "pos_embed", (emb.num_positions, d), VE, POS, suffix=".weight")
    elif emb.pos_layout == "gated_tiles":
        yield from _tile_positions(v)
    elif emb.pos_layout == "axes":  # Gemma 4: an x row and a y row per position, summed
        yield _entry(v, "pos_embed", (2, emb.num_positions, d), VE, POS)


def _tile_positions(v: VisionSpec) -> Entries:
    """Mllama: a gated (patches + 1, d) embedding, one (tiles * (patches + 1) * d) row per aspect
    ratio, and gated per-tile embeddings before and after the local layers."""
    enc = v.encoder
    d, n, t, rows = enc.hidden_size, enc.embed.num_positions, enc.embed.max_num_tiles, enc.embed.num_aspect_ratios + 1
    yield _entry(v, "pos_gate", (1,), VE, POS)
    yield _entry(v, "pos_embed", (n, d), VE, POS)
    yield _entry(v, "tile_pos", (rows, t * n * d), VE, TILE_POS, suffix=".weight")
    for role in ("pre_tile", "post_tile"):
        yield _entry(v, role + "_gate", (1,), VE, TILE_POS)
        yield _entry(v, role, (rows, t * d), VE, TILE_POS, suffix=".weight")


def _head(v: VisionSpec) -> Entries:
    """SigLIP's attention-pooling head: built by transformers when vision_use_head, never used by a VLM."""
    d = v.encoder.hidden_size
    yield _entry(v, "head_probe", (1, 1, d), VE, HEAD)
    yield _entry(v, "head_in", (3 * d, d), VE, HEAD, suffix="_weight")
    yield _entry(v, "head_in", (3 * d,), VE, HEAD, suffix="_bias")
    yield from _linear(v, "head_out", d, d, VE, HEAD)
    yield from _norm(v, "head_norm", d, VE, HEAD, with_bias=True)
    yield from _linear(v, "head_fc1", v.encoder.intermediate_size, d, VE, HEAD)
    yield from _linear(v, "head_fc2", d, v.encoder.intermediate_size, VE, HEAD)


def encoder_inventory(v: VisionSpec) -> list[WeightEntry]:
    enc = v.encoder
    out = list(_embeddings(v))
    edge_bias = enc.edge_norm == "layer_norm"
    if enc.pre_norm:
        out.extend(_norm(v, "pre_norm", enc.hidden_size, VE, PRE_LN, with_bias=edge_bias))
    for i in range(enc.depth):
        out.extend(_block(v, i))
    for i in range(enc.global_depth):
        out.extend(_global_block(v, i))
    if enc.post_norm:
        out.extend(_norm(v, "post_norm", enc.hidden_size, VE, POST_LN, with_bias=edge_bias))
    if enc.head:
        out.extend(_head(v))
    if enc.standardize:  # Gemma 4: (pooled - std_bias) * std_scale, two stored buffers
        out.extend(WeightEntry(v.name(role), (enc.hidden_size,), VE, STANDARDIZE, f"vision.{role}", parameter=False)
                   for role in ("std_bias", "std_scale"))
    return out


# --------------------------------------------------------------------------- projector


def projector_inventory(v: VisionSpec) -> list[WeightEntry]:
    """The projector's stored layers, from its kind's layer list (dimension symbols -> v.projector.dims)."""
    proj = v.projector
    out: list[WeightEntry] = []
    dims = proj.dims
    for layer in PROJECTORS[proj.kind].layers:
        bias = proj.bias if layer.bias is None else layer.bias
        for i in (range(len(v.encoder.deepstack_layers)) if layer.per == "deepstack" else (None,)):
            if layer.op == "norm":
                out.extend(_norm(v, layer.role, dims[layer.out], PROJ, layer.row, i,
                                 with_bias=proj.norm == "layer_norm"))
            elif layer.op == "linear":
                out.extend(_linear(v, layer.role, dims[layer.out], dims[layer.inp], PROJ, layer.row, i, bias))
            elif layer.op == "matrix":
                out.append(_entry(v, layer.role, (dims[layer.inp], dims[layer.out]), PROJ, layer.row, i))
            else:
                out.append(_entry(v, layer.role, (dims[layer.out],), PROJ, layer.row, i))
    return out


def vision_inventory(v: VisionSpec) -> list[WeightEntry]:
    """Every tensor of the vision tower and the projector, in the row order of Table 2.2."""
    return encoder_inventory(v) + projector_inventory(v)
