"""Vision towers and projectors of vision-language models, as a frozen `VisionSpec` of small records.

`vision_spec_from_config(top, wrapper, text, preprocessor)` reads `vision_config` (and, for the
image-token walkthrough, the top-level fields or `preprocessor_config.json`) with the same typed,
named-field errors as the LLM part. What differs between encoders and projectors is data
(inspector.spec.vision_kinds), resolved here once into an `EncoderSpec` and a `ProjectorSpec`; the
image-token rule's facts are its own typed record (inspector.spec.image_facts). Nothing downstream
re-reads a config dict or branches on a kind's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from inspector.errors import InspectError, warn
from inspector.spec.config_reader import ConfigReader
from inspector.spec.image_facts import MAX_TILE_SIZE, RuleFacts, Sources, mean_std
from inspector.spec.vision_kinds import ENCODERS, PROJECTORS, EncoderKind, ProjectorKind

NORM_TYPES = ("layer_norm", "rms_norm")


@dataclass(frozen=True)
class PatchEmbedSpec:
    """How pixels become the encoder's input sequence: patching, class token and positions."""

    patch_size: int
    temporal_patch_size: int  # 1 = 2D conv
    in_channels: int
    image_size: int | None  # the encoder's input side (InternVL: the tile)
    patch_embed: str = "conv"  # "conv" | "linear" (unfolded patches)
    conv_bias: bool = True
    class_token: bool = False
    class_layout: str = ""  # "param" (1, 1, d) | "vector" (d,)
    class_at_end: bool = False
    mask_token: bool = False
    learned_pos: bool = False
    pos_layout: str = ""  # "param" | "table" | "embedding" | "gated_tiles"
    num_positions: int = 0  # rows of the learned position embedding (0 when none)
    rope: str = ""  # 2D RoPE in attention: "qwen2_vl" | "pixtral" | "llama4"
    max_num_tiles: int = 0  # Mllama: tile embeddings per aspect ratio
    num_aspect_ratios: int = 0


@dataclass(frozen=True)
class EncoderSpec:
    """The vision tower: its input embedding, widths, depth, heads, norms, and which parts its blocks have."""

    kind: str  # the encoder kind (inspector.spec.vision_kinds.ENCODERS)
    description: str
    embed: PatchEmbedSpec
    hidden_size: int  # d_img
    depth: int
    num_heads: int
    head_dim: int
    intermediate_size: int
    hidden_act: str
    norm_type: str
    norm_eps: float
    position_encoding: str  # the positions in words (Table 2.1, the figures)
    qkv_bias: bool = True
    qk_norm: bool = False
    attention: str = "fused"  # "fused" qkv | "separate" q, k, v
    o_bias: bool = True
    mlp: str = "plain"  # "plain" fc1/fc2 | "gated" gate/up/down
    mlp_bias: bool = True
    layer_scale: bool = False
    pre_norm: bool = False
    post_norm: bool = False
    edge_norm: str = ""  # the type of the pre/post norms (the blocks' own when "")
    head: bool = False  # SigLIP's attention-pooling head (unused by the VLMs)
    window_size: int = 0  # Qwen2.5-VL: attention windows of window_size pixels
    fullatt_blocks: tuple[int, ...] = ()
    deepstack_layers: tuple[int, ...] = ()  # Qwen3-VL: blocks whose output feeds a DeepStack merger
    global_depth: int = 0  # Mllama: gated global layers after the local ones
    feature_layers: tuple[int, ...] = ()  # Mllama: intermediate layers concatenated to the output
    tower: str = "tiles"  # how the reference model feeds the encoder (EncoderKind.tower)
    kv_heads: int = 0  # key/value heads (0: num_heads)
    head_widths: bool = False  # q/k/v/o widths are heads x d_h (Gemma 4), else the hidden size
    qk_norm_width: str = "hidden"  # "hidden" | "head": the q/k norms' width
    sandwich: bool = False  # a norm after each branch too (Gemma 4)
    clip: bool = False  # four scalar clip buffers per block linear (Gemma 4's use_clipped_linears)
    standardize: bool = False  # std_bias / std_scale buffers after pooling (Gemma 4)

    @property
    def q_width(self) -> int:
        return self.num_heads * self.head_dim if self.head_widths else self.hidden_size

    @property
    def kv_width(self) -> int:
        return (self.kv_heads or self.num_heads) * self.head_dim if self.head_widths else self.hidden_size


@dataclass(frozen=True)
class ProjectorSpec:
    """The connector from encoder features to LLM token embeddings: its kind, merge and widths."""

    kind: str  # the projector kind (inspector.spec.vision_kinds.PROJECTORS)
    merge_size: int  # n_merge: patches merged (or pooled) along each side into one token
    downsample_ratio: float | None  # 1/n_merge when the config states it that way
    out_hidden_size: int  # d, the LLM's hidden size
    in_size: int  # n_merge^2 * d_img
    norm_size: int  # width of the projector's norm (0 when it has none)
    hidden_size: int  # width of the first linear output
    act: str
    norm: str  # layer_norm | rms_norm | rms_offset
    bias: bool
    norm_eps: float
    dims: Mapping[str, int] = field(repr=False, compare=False)  # dimension symbols (vision_kinds.ProjLayer)


@dataclass(frozen=True)
class VisionSpec:
    """A vision tower plus its projector, the image-token rule's facts, and the image's token ids."""

    encoder: EncoderSpec
    projector: ProjectorSpec
    image: RuleFacts  # the image-token rule's facts; `image.rule` names the rule (inspector.image.rules)
    image_mean: tuple[float, ...]
    image_std: tuple[float, ...]
    names: Mapping[str, str] = field(repr=False, compare=False)
    image_token_id: int | None = None
    vision_start_token_id: int | None = None
    vision_end_token_id: int | None = None

    def name(self, role: str, layer: int | None = None, suffix: str = "") -> str:
        template = self.names[role] + suffix
        return template.format(layer) if layer is not None else template


# --------------------------------------------------------------------------- reading


def _first_key(kind: EncoderKind, reader: ConfigReader, fieldname: str) -> str | None:
    for key in kind.keys.get(fieldname, ()):
        if reader.has(key):
            return key
    return None


def _get(kind: EncoderKind, reader: ConfigReader, fieldname: str, typ: str, required: bool = True):
    """A vision field from its config key(s), else the kind's default; missing = one-line error."""
    key = _first_key(kind, reader, fieldname)
    if key is None:
        if fieldname in kind.defaults:
            return kind.defaults[fieldname]
        if required:
            keys = kind.keys.get(fieldname, (fieldname,))
            raise InspectError(f"{reader.where}: field '{reader._field(keys[0])}' is missing")
        return None
    if typ == "ints":
        return _ints(reader, key)
    if typ == "side":  # an int, or [h, w] with h == w (InternVL native writes [448, 448])
        value = reader.raw(key)
        if isinstance(value, list) and len(value) == 2 and value[0] == value[1]:
            return _side(reader, key, value)
        typ = "int"
    read = getattr(reader, typ)
    return read(key, False) if typ == "bool" else read(key)


def _side(reader: ConfigReader, key: str, value: list) -> int:
    if not isinstance(value[0], int) or isinstance(value[0], bool) or value[0] < 1:
        raise InspectError(f"{reader.where}: field '{reader._field(key)}' must be a size, got {value!r}")
    return value[0]


def _ints(reader: ConfigReader, key: str) -> tuple:
    value = reader.raw(key)
    if not isinstance(value, list) or not all(isinstance(i, (int, list)) and not isinstance(i, bool) for i in value):
        raise InspectError(f"{reader.where}: field '{reader._field(key)}' must be a list of integers, got {value!r}")
    return tuple(tuple(i) if isinstance(i, list) else i for i in value)


def _switch(kind: EncoderKind, reader: ConfigReader, setting: bool | str) -> bool:
    """A part that is fixed (bool) or switched by a config key ("key", or "!key" for its negation)."""
    if isinstance(setting, bool):
        return setting
    key = setting.lstrip("!")
    value = reader.bool(key, bool(kind.defaults.get(key, False)))
    return not value if setting.startswith("!") else value


def _intermediate(kind: EncoderKind, v: ConfigReader, d: int) -> int:
    if _first_key(kind, v, "intermediate_size") or "intermediate_size" in kind.defaults:
        return _get(kind, v, "intermediate_size", "int")
    ratio = _get(kind, v, "mlp_ratio", "float")
    if ratio <= 0 or not float(d * ratio).is_integer():
        raise InspectError(f"{v.where}: field '{v._field('mlp_ratio')}' must give an integer MLP width, got {ratio}")
    return int(d * ratio)


def _merge(wrapper, top: ConfigReader, v: ConfigReader, grid: int) -> tuple[int, float | None]:
    """n_merge, and the ratio 1/n_merge when the config states it that way."""
    m = wrapper.merge
    if m is None:
        return 1, None
    r = v if m.scope == "vision" else top
    if m.how == "n":
        return r.int(m.key, int(m.default) if m.default else None), None
    value = r.float(m.key, m.default)
    if m.how == "pool":  # tokens per image -> the pooling kernel (transformers: grid // isqrt(tokens))
        side = int(value ** 0.5)
        return max(1, grid // side) if side >= 1 else 1, None
    if not 0 < value <= 1 or abs(1 / value - round(1 / value)) > 1e-9:
        raise InspectError(f"{r.where}: field '{r._field(m.key)}' must be 1/n, got {value}")
    return round(1 / value), value


def _tokens_ids(top: ConfigReader, wrapper) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in wrapper.image_token_keys:
        if top.has(key):
            out["image_token_id"] = top.int(key, minimum=0)
            break
    for key, name in zip(wrapper.marker_keys, ("vision_start_token_id", "vision_end_token_id")):
        if top.has(key):
            out[name] = top.int(key, minimum=0)
    return out


IGNORED_TOP = ("ps_version", "select_layer", "template", "use_backbone_lora", "use_llm_lora", "vision_token_id",
               "video_token_id", "video_token_index", "auto_map", "_commit_hash", "torch_dtype", "dtype",
               "transformers_version", "boi_token_index", "eoi_token_index", "initializer_range", "pad_token_id",
               "projector_hidden_act", "vision_feature_select_strategy", "image_seq_length", "use_cache",
               "_pad_token_id", "vocab_size", "use_image_newline_parameter", "eos_token_id", "bos_token_id")


def _encoder(kind: EncoderKind, v: ConfigReader) -> EncoderSpec:
    """The encoder's fields, from the config where it says, else the kind's defaults."""
    d = _get(kind, v, "hidden_size", "int")
    heads = _get(kind, v, "num_heads", "int")
    head_dim = v.int("head_dim") if _first_key(kind, v, "head_dim") else d // heads
    if not _first_key(kind, v, "head_dim") and d % heads:
        raise InspectError(f"{v.where}: field '{v._field(_first_key(kind, v, 'num_heads') or 'num_heads')}' "
                           f"({heads}) does not divide the vision hidden size ({d})")
    norm_type = _get(kind, v, "norm_type", "str")
    if norm_type not in NORM_TYPES:
        raise InspectError(f"{v.where}: field '{v._field('norm_type')}' must be one of {', '.join(NORM_TYPES)}, "
                           f"got {norm_type!r}")
    patch = _get(kind, v, "patch_size", "side")
    image_size = _get(kind, v, "image_size", "side", required=False)
    if image_size and image_size > MAX_TILE_SIZE:
        raise v.fail(_first_key(kind, v, "image_size") or "image_size",
                     f"must be at most {MAX_TILE_SIZE} (pixels a side of one tile)", image_size)
    learned = bool(kind.positions) and _switch(kind, v, kind.learned_pos)
    if _first_key(kind, v, "num_positions") or "num_positions" in kind.defaults:
        positions = _get(kind, v, "num_positions", "int")
    elif learned and image_size:
        positions = (image_size // patch) ** 2 + (1 if kind.class_token else 0)
    else:
        positions = 0
    aspect = _get(kind, v, "aspect_ratios", "ints", required=False) or ()
    embed = PatchEmbedSpec(
        patch, _get(kind, v, "temporal_patch_size", "int", required=False) or 1, _get(kind, v, "in_channels", "int"),
        image_size, kind.patch_embed, _switch(kind, v, kind.conv_bias), bool(kind.class_token), kind.class_token,
        kind.class_at_end, _switch(kind, v, kind.mask_token), learned, kind.positions if learned else "",
        positions if learned else 0, kind.rope, _get(kind, v, "max_num_tiles", "int", required=False) or 0,
        len(aspect))
    return EncoderSpec(
        kind=kind.kind, description=kind.description, embed=embed, hidden_size=d, depth=_get(kind, v, "depth", "int"),
        num_heads=heads, head_dim=head_dim, intermediate_size=_intermediate(kind, v, d),
        hidden_act=_get(kind, v, "hidden_act", "str"), norm_type=norm_type,
        norm_eps=_get(kind, v, "norm_eps", "float", required=False) or 1e-6,
        position_encoding=_position_text(kind, learned), qkv_bias=_get(kind, v, "qkv_bias", "bool"),
        qk_norm=_get(kind, v, "qk_norm", "bool"), attention=kind.attention, o_bias=kind.o_bias, mlp=kind.mlp,
        mlp_bias=kind.mlp_bias, layer_scale=kind.layer_scale, pre_norm=kind.pre_norm,
        post_norm=_switch(kind, v, kind.post_norm), edge_norm=kind.edge_norm or norm_type,
        head=_switch(kind, v, kind.head),
        window_size=(_get(kind, v, "window_size", "int") if kind.window_attention else 0),
        fullatt_blocks=(_get(kind, v, "fullatt_blocks", "ints") if kind.window_attention else ()),
        deepstack_layers=_get(kind, v, "deepstack", "ints", required=False) or (),
        global_depth=_get(kind, v, "global_depth", "int", required=False) or 0,
        feature_layers=_get(kind, v, "feature_layers", "ints", required=False) or (), tower=kind.tower,
        kv_heads=_get(kind, v, "kv_heads", "int", required=False) or 0, head_widths=kind.head_widths,
        qk_norm_width=kind.qk_norm_width, sandwich=kind.sandwich, clip=_switch(kind, v, kind.clip),
        standardize=_switch(kind, v, kind.standardize),
    )


def _position_text(kind: EncoderKind, learned: bool) -> str:
    stored = {"param": "learned absolute (1, 1 + (image/patch)^2, d_img)", "embedding": "learned (positions, d_img)",
              "table": "learned (1 + (image/patch)^2, d_img)",
              "gated_tiles": "learned, gated, plus tile embeddings per aspect ratio",
              "axes": "learned (2, positions, d_img): x and y rows summed"}.get(kind.positions if learned else "")
    rope = "2D RoPE" if kind.rope else ""
    if stored and rope:
        return f"{stored} plus {rope}"
    return stored or (f"{rope}, nothing stored" if rope else "none")


def _bias(wrapper, top: ConfigReader) -> bool:
    setting = wrapper.projector_bias
    if isinstance(setting, bool):
        return setting
    key, default = setting
    return top.bool(key, default)


def _projector(pk: ProjectorKind, wrapper, top: ConfigReader, v: ConfigReader, enc: EncoderSpec,
               text) -> ProjectorSpec:
    d, patch, image = enc.hidden_size, enc.embed.patch_size, enc.embed.image_size
    grid = image // patch if image else 0
    merge, ratio = _merge(wrapper, top, v, grid)
    if grid and merge > 1 and grid % merge and wrapper.merge.how != "n":
        raise InspectError(f"{top.where}: field '{wrapper.merge.key}' does not divide the {grid}-patch grid")
    kind = ENCODERS[enc.kind]
    # the merger's output width: its own field where the encoder has one (transformers builds the last
    # layer that wide whatever the LLM's width), else the LLM's hidden size
    out = _get(kind, v, "out_hidden_size", "int", required=False) or text.hidden_size
    if out != text.hidden_size:
        out_key = _first_key(kind, v, "out_hidden_size") or kind.keys.get("out_hidden_size", ("out_hidden_size",))[0]
        warn(f"{top.where}: field '{v._field(out_key)}' ({out}) differs from the LLM hidden_size "
             f"({text.hidden_size}): the merger's output width; counted as transformers builds it, but its image "
             f"features cannot enter the LLM")
    taps = len(enc.feature_layers)
    dims = {"d": d, "m2d": merge * merge * d, "out": out, "inter": enc.intermediate_size,
            "feat": v.int("vision_output_dim") if v.has("vision_output_dim") else d * (1 + taps),
            "p_in": v.int("projector_input_dim", out), "p_out": v.int("projector_output_dim", out),
            "v_out": v.int("vision_output_dim", out)}
    norm = next((dims[layer.out] for layer in pk.layers if layer.op == "norm" and not layer.per), 0)
    first = next(dims[layer.out] for layer in pk.layers if layer.op in ("linear", "matrix"))
    eps = {"vision": enc.norm_eps, "text": text.rms_norm_eps}.get(pk.norm_eps, pk.norm_eps)
    return ProjectorSpec(pk.kind, merge, ratio, out, dims["m2d"], norm, first, pk.act, pk.norm, _bias(wrapper, top),
                         float(eps), MappingProxyType(dims))


def vision_spec_from_config(top: ConfigReader, wrapper, text, preprocessor: Mapping[str, Any] | None = None) -> VisionSpec:
    """Read `vision_config` of a VLM config (`top` is the top-level ConfigReader)."""
    v = top.sub("vision_config")
    inner = v.raw("model_type")
    kind, pk = ENCODERS[wrapper.encoder_for(inner if isinstance(inner, str) else None)], PROJECTORS[wrapper.projector]
    enc = _encoder(kind, v)
    if kind.learned_pos is True and kind.positions and not enc.embed.image_size and not enc.embed.num_positions:
        raise InspectError(f"{top.where}: field '{v._field(kind.keys['image_size'][0])}' is missing")
    proj = _projector(pk, wrapper, top, v, enc, text)
    ids = _tokens_ids(top, wrapper)
    image = wrapper.image.read(Sources(top, v, preprocessor, enc.embed.patch_size, enc.embed.image_size, proj.merge_size,
                                       wrapper.image_defaults))
    mean, std = mean_std(kind.defaults, preprocessor, enc.embed.in_channels, top.where)
    for key in IGNORED_TOP:
        top.used.add(key)
    names = {**_prefixed(wrapper.vision_prefix, kind.names), **_prefixed(wrapper.projector_prefix, pk.names)}
    return VisionSpec(enc, proj, image, mean, std, MappingProxyType(names), **ids)


def _prefixed(prefix: str, names: Mapping[str, str]) -> dict[str, str]:
    """Templates under `prefix`; one starting with "/" is relative to the model root instead."""
    return {role: t[1:] if t.startswith("/") else ".".join(p for p in (prefix, t) if p) for role, t in names.items()}
