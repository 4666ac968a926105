"""Mamba2 and short-convolution token mixers of hybrid families: their sizes, and which layers hold what.

Three layouts (transformers 5.25's config classes are the sources of every rule and default here):
- one block per layer (Nemotron-H, `Family.single_block`): `layers_block_type` / `layer_types` lists, or the
  `hybrid_override_pattern` string, name each layer's one block behind its one norm: a Mamba2 mixer
  ("M" / "mamba" / "linear_attention"), attention ("*"), an MLP ("-") or experts ("E")
  (transformers models/nemotron_h/configuration_nemotron_h.py `_pattern_to_list`, default
  ["linear_attention", "moe", "full_attention", "mlp"]);
- a mixer then an MLP per layer, the mixer picked by `layer_types` (Granite 4.0-H: "mamba"/"attention", the
  legacy names transformers' `remap_legacy_layer_types` maps to linear_attention/full_attention; default all
  Mamba2; LFM2: "conv"/"full_attention", else `full_attn_idxs`, default all attention);
- attention and Mamba2 side by side in every layer (Falcon-H1, `Family.parallel_linear`).
The Mamba2 sizes are read under the family's own key names (`Family.keys`: ssm_heads, ssm_head_dim,
ssm_groups, ssm_state, ssm_conv_kernel, ssm_inner, ssm_expand, ssm_conv_bias, ssm_proj_bias, ssm_out_bias,
ssm_norm); the inner width is `ssm_inner` (Falcon-H1's mamba_d_ssm), else `ssm_expand` x hidden (Granite,
Falcon-H1), else heads x head_dim (Nemotron-H).
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.errors import InspectError
from inspector.spec.config_reader import ConfigReader
from inspector.spec.families import Family
from inspector.spec.layers import LinearAttnSpec

SSM_KINDS = ("mamba2", "shortconv")


@dataclass(frozen=True)
class MupSpec:
    """Falcon-H1's muP multipliers (transformers FalconH1Config, 1 by default): the attention's input, keys and
    output; the Mamba2 mixer's input, its in_proj sections (z, x, B, C, dt: `ssm_multipliers`) and output; the
    MLP's gate pre-activation and output (`mlp_multipliers`). The embedding and LM-head multipliers are the
    spec's `multipliers`."""

    attention_in: float = 1.0
    attention_out: float = 1.0
    key: float = 1.0
    ssm_in: float = 1.0
    ssm_out: float = 1.0
    zxbcdt: tuple[float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0)
    mlp_gate: float = 1.0
    mlp_down: float = 1.0


def _floats(r: ConfigReader, key: str, count: int) -> tuple[float, ...]:
    value = r.raw(key, [1.0] * count)
    if not isinstance(value, list) or len(value) != count or not all(isinstance(v, (int, float)) for v in value):
        raise r.fail(key, f"must list {count} numbers", value)
    return tuple(float(v) for v in value)


def read_mup(r: ConfigReader) -> MupSpec:
    """Falcon-H1's multipliers (config keys, else 1)."""
    mlp = _floats(r, "mlp_multipliers", 2)
    return MupSpec(r.float("attention_in_multiplier", 1.0), r.float("attention_out_multiplier", 1.0),
                   r.float("key_multiplier", 1.0), r.float("ssm_in_multiplier", 1.0),
                   r.float("ssm_out_multiplier", 1.0), _floats(r, "ssm_multipliers", 5), mlp[0], mlp[1])
# Nemotron-H's pattern letters and list names -> the block a layer is
BLOCK_OF_LETTER = {"M": "linear", "E": "moe", "*": "attention", "-": "mlp"}
BLOCK_OF_TYPE = {"linear_attention": "linear", "mamba": "linear", "moe": "moe", "full_attention": "attention",
                 "attention": "attention", "mlp": "mlp"}
NEMOTRON_DEFAULT_BLOCKS = ("linear", "moe", "attention", "mlp")  # NemotronHConfig.__post_init__
# a mixer-then-MLP layer's `layer_types` value -> whether its mixer is the linear one
LINEAR_TYPE = {"linear_attention": True, "mamba": True, "conv": True, "full_attention": False, "attention": False}


def read_blocks(r: ConfigReader) -> tuple[str, ...]:
    """Nemotron-H: each layer's one block ("linear" | "attention" | "mlp" | "moe")."""
    for key in ("layers_block_type", "layer_types"):
        value = r.raw(key)
        if value is not None:
            if not isinstance(value, list) or not value or any(v not in BLOCK_OF_TYPE for v in value):
                raise r.fail(key, f"must list one of {', '.join(BLOCK_OF_TYPE)} per layer", value)
            r.used.update(("hybrid_override_pattern", "num_hidden_layers"))
            return tuple(BLOCK_OF_TYPE[v] for v in value)
    pattern = r.raw("hybrid_override_pattern")
    r.used.add("num_hidden_layers")  # transformers takes the pattern's length, whatever this says
    if pattern is None:
        return NEMOTRON_DEFAULT_BLOCKS
    if not isinstance(pattern, str) or not pattern or any(c not in BLOCK_OF_LETTER for c in pattern):
        raise r.fail("hybrid_override_pattern", f"must be a string of {' '.join(BLOCK_OF_LETTER)}", pattern)
    return tuple(BLOCK_OF_LETTER[c] for c in pattern)


def mixer_layers(r: ConfigReader, family: Family, layers: int) -> tuple[int, ...]:
    """The layers whose mixer is the linear one, in a mixer-then-MLP layout (see the module docstring)."""
    if family.parallel_linear:
        return tuple(range(layers))
    value = r.raw("layer_types")
    if value is not None:
        if not isinstance(value, list) or len(value) != layers or any(v not in LINEAR_TYPE for v in value):
            raise r.fail("layer_types", f"must list {layers} of {', '.join(LINEAR_TYPE)}", str(value)[:80])
        return tuple(i for i, v in enumerate(value) if LINEAR_TYPE[v])
    if family.linear_attention == "shortconv":  # LFM2: the layers not in full_attn_idxs (all attention without it)
        full = r.raw("full_attn_idxs")
        if full is None:
            return ()
        if not isinstance(full, list) or any(not isinstance(i, int) or not 0 <= i < layers for i in full):
            raise r.fail("full_attn_idxs", f"must list layer indices below {layers}", full)
        return tuple(i for i in range(layers) if i not in set(full))
    return tuple(range(layers))  # Granite 4.0-H: every layer Mamba2 without layer_types


def _size(r: ConfigReader, family: Family, name: str, default=None) -> int:
    return r.first(family.config_keys(name), "int", family.defaults, default, minimum=1)


def _switch(r: ConfigReader, family: Family, name: str) -> bool:
    keys = family.keys.get(name, ())
    if not keys:
        return False
    for key in keys:
        if r.has(key):
            return r.bool(key, False)
    return bool(next((family.defaults[k] for k in keys if k in family.defaults), False))


def read_mamba2(r: ConfigReader, family: Family, hidden: int, layers: tuple[int, ...]) -> LinearAttnSpec:
    """A Mamba2 mixer's sizes and switches, and the layers that have one."""
    heads, groups = _size(r, family, "ssm_heads"), _size(r, family, "ssm_groups")
    if family.keys.get("ssm_inner") and any(r.has(k) for k in family.keys["ssm_inner"]):
        inner = _size(r, family, "ssm_inner")
    elif family.keys.get("ssm_expand"):
        inner = _size(r, family, "ssm_expand") * hidden
    else:
        inner = heads * _size(r, family, "ssm_head_dim")
    if inner % heads or heads % groups:
        raise InspectError(f"{r.where}: the Mamba2 inner width ({inner}) must split into the {heads} heads, "
                           f"and the heads into the {groups} groups")
    head_dim = r.raw(family.config_keys("ssm_head_dim")[0])
    if isinstance(head_dim, int) and head_dim * heads != inner:
        raise r.fail(family.config_keys("ssm_head_dim")[0], f"times {heads} heads must be the inner width {inner}",
                     head_dim)
    norm = _switch(r, family, "ssm_norm") if family.keys.get("ssm_norm") else True
    return LinearAttnSpec("mamba2", groups, heads, _size(r, family, "ssm_state"), inner // heads,
                          _size(r, family, "ssm_conv_kernel"), layers, conv_bias=_switch(r, family, "ssm_conv_bias"),
                          proj_bias=_switch(r, family, "ssm_proj_bias"), out_bias=_switch(r, family, "ssm_out_bias"),
                          gated_norm=norm, norm_groups=groups, parallel=family.parallel_linear,
                          norm_before_gate=_switch(r, family, "ssm_norm_before_gate"))


def read_shortconv(r: ConfigReader, family: Family, hidden: int, layers: tuple[int, ...]) -> LinearAttnSpec:
    """LFM2's gated short convolution: in_proj (d -> 3d: B, C, x), a depthwise conv of `conv_L_cache` taps
    over B * x, C times its output, out_proj; `conv_bias` switches every bias of the block on."""
    bias = _switch(r, family, "ssm_conv_bias")
    return LinearAttnSpec("shortconv", 0, 1, 0, hidden, _size(r, family, "ssm_conv_kernel"), layers,
                          conv_bias=bias, proj_bias=bias, out_bias=bias, gated_norm=False)


def read_ssm(r: ConfigReader, family: Family, hidden: int, layers: int,
             blocks: tuple[str, ...]) -> LinearAttnSpec:
    """The family's Mamba2 or short-convolution mixer and its layers."""
    linear = tuple(i for i, b in enumerate(blocks) if b == "linear") if blocks else mixer_layers(r, family, layers)
    read = read_mamba2 if family.linear_attention == "mamba2" else read_shortconv
    return read(r, family, hidden, linear)


def ff_width(r: ConfigReader, width: int) -> int:
    """LFM2's MLP width: with `block_auto_adjust_ff_dim` (default true) 2/3 of the configured width, times
    `block_ffn_dim_multiplier`, rounded up to `block_multiple_of` (transformers models/lfm2 Lfm2MLP)."""
    if not r.bool("block_auto_adjust_ff_dim", True):
        return width
    width = int(2 * width / 3)
    if "block_ffn_dim_multiplier" in r.cfg and r.cfg["block_ffn_dim_multiplier"] is None:
        return width  # null: no multiplier, no rounding
    width = int(r.float("block_ffn_dim_multiplier", 1.0) * width)
    step = r.int("block_multiple_of", 256)
    return step * ((width + step - 1) // step)
