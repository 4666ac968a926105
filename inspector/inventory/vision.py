"""The tensor inventory of a vision tower and its projector (components `vision_encoder`, `projector`).

Groups are the row names of seed 003's Table 2.2, in its order. Which rows exist and which tensors
carry biases follow from the VisionSpec's plain fields; names come from its kind's name table.
"""

from __future__ import annotations

from inspector.inventory.entry import WeightEntry
from inspector.spec.vision import VisionSpec

VE, PROJ = "vision_encoder", "projector"

# Row names of Table 2.2 (the two "Layer norm" and "Residual scale" rows of a block are told apart).
CONV, CLS, POS = "Convolution", "Class embedding", "Positional embedding"
LN1, ATTN, RS1 = "Layer norm (pre-attention)", "Attention layer", "Residual scale (attention)"
LN2, MLP, RS2 = "Layer norm (pre-MLP)", "MLP layer", "Residual scale (MLP)"
MERGE_LN, MERGE_MLP = "Layer norm (merger)", "Merger MLP"
VISION_ROWS = (CONV, CLS, POS, LN1, ATTN, RS1, LN2, MLP, RS2, MERGE_LN, MERGE_MLP)


def _entry(v: VisionSpec, role: str, shape, component: str, group: str, layer=None, suffix=""):
    return WeightEntry(v.name(role, layer, suffix), tuple(shape), component, group,
                       f"vision.{role}{suffix}", layer)


def _linear(v, role, out_f, in_f, component, group, layer=None, bias=True):
    yield _entry(v, role, (out_f, in_f), component, group, layer, ".weight")
    if bias:
        yield _entry(v, role, (out_f,), component, group, layer, ".bias")


def _norm(v, role, dim, component, group, layer=None, with_bias=None):
    bias = v.norm_type == "layer_norm" if with_bias is None else with_bias
    yield _entry(v, role, (dim,), component, group, layer, ".weight")
    if bias:
        yield _entry(v, role, (dim,), component, group, layer, ".bias")


def _block(v: VisionSpec, i: int):
    d = v.hidden_size
    yield from _norm(v, "norm1", d, VE, LN1, i)
    yield from _linear(v, "qkv", 3 * d, d, VE, ATTN, i, v.qkv_bias)
    if v.qk_norm:  # InternViT: RMSNorm over the whole width, weight only
        yield from _norm(v, "q_norm", d, VE, ATTN, i, with_bias=False)
        yield from _norm(v, "k_norm", d, VE, ATTN, i, with_bias=False)
    yield from _linear(v, "proj", d, d, VE, ATTN, i)
    if v.layer_scale:
        yield _entry(v, "ls1", (d,), VE, RS1, i)
    yield from _norm(v, "norm2", d, VE, LN2, i)
    yield from _linear(v, "fc1", v.intermediate_size, d, VE, MLP, i)
    yield from _linear(v, "fc2", d, v.intermediate_size, VE, MLP, i)
    if v.layer_scale:
        yield _entry(v, "ls2", (d,), VE, RS2, i)


def vision_inventory(v: VisionSpec) -> list[WeightEntry]:
    """Every tensor of the vision tower and the projector, in the row order of Table 2.2."""
    d, p = v.hidden_size, v.patch_size
    out: list[WeightEntry] = []
    kernel = (v.temporal_patch_size, p, p) if v.temporal_patch_size > 1 else (p, p)
    out.extend(_linear_conv(v, d, kernel))
    if v.class_token:
        out.append(_entry(v, "class_embed", (1, 1, d), VE, CLS))
    if v.learned_pos:
        out.append(_entry(v, "pos_embed", (1, v.num_positions, d), VE, POS))
    for i in range(v.depth):
        out.extend(_block(v, i))
    out.extend(_norm(v, "proj_norm", v.projector_norm_dim, PROJ, MERGE_LN, with_bias=True))
    out.extend(_linear(v, "proj_fc1", v.projector_hidden, v.projector_in, PROJ, MERGE_MLP))
    out.extend(_linear(v, "proj_fc2", v.out_hidden_size, v.projector_hidden, PROJ, MERGE_MLP))
    return out


def _linear_conv(v: VisionSpec, d: int, kernel: tuple[int, ...]):
    yield _entry(v, "patch_embed", (d, v.in_channels, *kernel), VE, CONV, None, ".weight")
    if v.conv_bias:
        yield _entry(v, "patch_embed", (d,), VE, CONV, None, ".bias")
