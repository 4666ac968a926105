"""Vision towers and projectors of vision-language models, as a frozen `VisionSpec`.

`vision_spec_from_config(top, wrapper, text, preprocessor)` reads `vision_config` (and, for the
image-token walkthrough, the top-level tiling fields or `preprocessor_config.json`) with the same
typed, named-field errors as the LLM part. What differs between a Qwen2-VL ViT and an InternViT is
data: one `VisionKind` record per kind (which config keys hold what, which tensors exist, their
checkpoint names). Nothing downstream re-reads a config dict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from inspector.errors import InspectError
from inspector.spec.config_reader import ConfigReader, shown

# --------------------------------------------------------------------------- kinds (data)

QWEN2_VL_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "patch_embed": "visual.patch_embed.proj",
        "norm1": "visual.blocks.{}.norm1",
        "qkv": "visual.blocks.{}.attn.qkv",
        "proj": "visual.blocks.{}.attn.proj",
        "norm2": "visual.blocks.{}.norm2",
        "fc1": "visual.blocks.{}.mlp.fc1",
        "fc2": "visual.blocks.{}.mlp.fc2",
        "proj_norm": "visual.merger.ln_q",
        "proj_fc1": "visual.merger.mlp.0",
        "proj_fc2": "visual.merger.mlp.2",
    }
)

INTERNVIT_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "class_embed": "vision_model.embeddings.class_embedding",
        "pos_embed": "vision_model.embeddings.position_embedding",
        "patch_embed": "vision_model.embeddings.patch_embedding",
        "norm1": "vision_model.encoder.layers.{}.norm1",
        "qkv": "vision_model.encoder.layers.{}.attn.qkv",
        "q_norm": "vision_model.encoder.layers.{}.attn.q_norm",
        "k_norm": "vision_model.encoder.layers.{}.attn.k_norm",
        "proj": "vision_model.encoder.layers.{}.attn.proj",
        "ls1": "vision_model.encoder.layers.{}.ls1",
        "norm2": "vision_model.encoder.layers.{}.norm2",
        "fc1": "vision_model.encoder.layers.{}.mlp.fc1",
        "fc2": "vision_model.encoder.layers.{}.mlp.fc2",
        "ls2": "vision_model.encoder.layers.{}.ls2",
        "proj_norm": "mlp1.0",
        "proj_fc1": "mlp1.1",
        "proj_fc2": "mlp1.3",
    }
)


@dataclass(frozen=True)
class VisionKind:
    """What one kind of vision tower does differently, and where its config keeps each field.

    `keys` maps a field to the config key(s) holding it, first found wins. A field absent from
    `keys` takes its value from `fixed`. `projector` describes how the merged features reach the
    LLM: "merger" (Qwen2-VL: LayerNorm on d_img, then concatenate n_merge^2 patches) or
    "pixel_shuffle" (InternVL: concatenate, then LayerNorm on n_merge^2 * d_img).
    """

    kind: str
    description: str
    names: Mapping[str, str] = field(hash=False)
    keys: Mapping[str, tuple[str, ...]] = field(hash=False)
    fixed: Mapping[str, Any] = field(hash=False)
    class_token: bool
    learned_pos: bool
    conv_bias: bool
    layer_scale: bool
    projector: str
    position_encoding: str
    tokens_rule: str  # "qwen2_vl_resize" | "internvl_tiles"


VISION_KINDS: Mapping[str, VisionKind] = MappingProxyType(
    {
        "qwen2_vl": VisionKind(
            "qwen2_vl",
            "Qwen2-VL ViT: 3D-conv patch embed (no bias), 2D RoPE, LayerNorm blocks, QuickGELU MLP, patch merger",
            QWEN2_VL_NAMES,
            MappingProxyType({
                "hidden_size": ("embed_dim",), "depth": ("depth",), "num_heads": ("num_heads",),
                "mlp_ratio": ("mlp_ratio",), "patch_size": ("patch_size",),
                "temporal_patch_size": ("temporal_patch_size",), "merge_size": ("spatial_merge_size",),
                "in_channels": ("in_chans", "in_channels"), "out_hidden_size": ("hidden_size",),
                "hidden_act": ("hidden_act",),
            }),
            MappingProxyType({"hidden_act": "quick_gelu", "in_channels": 3, "temporal_patch_size": 2,
                              "merge_size": 2, "norm_type": "layer_norm", "qkv_bias": True,
                              "qk_normalization": False, "projector_act": "gelu",
                              # LayerNorm eps of transformers' Qwen2-VL blocks and merger; CLIP mean/std
                              # of the published preprocessor_config.json (used when none is given)
                              "norm_eps": 1e-6, "projector_norm_eps": 1e-6,
                              "image_mean": (0.48145466, 0.4578275, 0.40821073),
                              "image_std": (0.26862954, 0.26130258, 0.27577711)}),
            class_token=False, learned_pos=False, conv_bias=False, layer_scale=False,
            projector="merger", position_encoding="2D RoPE, nothing stored",
            tokens_rule="qwen2_vl_resize",
        ),
        "internvit": VisionKind(
            "internvit",
            "InternViT: conv patch embed with bias, class token, learned position embedding, "
            "layer scale (ls1/ls2), pixel-shuffle MLP projector",
            INTERNVIT_NAMES,
            MappingProxyType({
                "hidden_size": ("hidden_size",), "depth": ("num_hidden_layers",),
                "num_heads": ("num_attention_heads",), "intermediate_size": ("intermediate_size",),
                "patch_size": ("patch_size",), "image_size": ("image_size",),
                "in_channels": ("num_channels",), "norm_type": ("norm_type",), "qkv_bias": ("qkv_bias",),
                "qk_normalization": ("qk_normalization",), "hidden_act": ("hidden_act",),
                "norm_eps": ("layer_norm_eps",),
            }),
            MappingProxyType({"hidden_act": "gelu", "in_channels": 3, "temporal_patch_size": 1,
                              "norm_type": "layer_norm", "qkv_bias": True, "qk_normalization": False,
                              "projector_act": "gelu", "norm_eps": 1e-6,
                              # mlp1's nn.LayerNorm keeps torch's default eps; InternVL's
                              # build_transform normalizes with the ImageNet mean/std
                              "projector_norm_eps": 1e-5,
                              "image_mean": (0.485, 0.456, 0.406), "image_std": (0.229, 0.224, 0.225)}),
            class_token=True, learned_pos=True, conv_bias=True, layer_scale=True,
            projector="pixel_shuffle", position_encoding="learned absolute (1, 1 + (image/patch)^2, d_img)",
            tokens_rule="internvl_tiles",
        ),
    }
)

NORM_TYPES = ("layer_norm", "rms_norm")

# Bounds on sizes that allocate memory: pixels of an image or canvas (8192 x 8192), of a tile's side, tiles.
MAX_IMAGE_PIXELS, MAX_TILE_SIZE, MAX_TILES = 1 << 26, 4096, 10_000

# Published Qwen2-VL image-processor defaults (used when no preprocessor_config.json is at hand).
QWEN2_VL_PROCESSOR_DEFAULTS: Mapping[str, int] = MappingProxyType(
    {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 16384}
)


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class VisionSpec:
    """A vision tower plus its projector, every derived width worked out once."""

    kind: str
    description: str
    hidden_size: int  # d_img
    depth: int
    num_heads: int
    head_dim: int
    intermediate_size: int
    patch_size: int
    temporal_patch_size: int  # 1 = 2D conv
    in_channels: int
    merge_size: int  # n_merge (InternVL: 1 / downsample_ratio)
    out_hidden_size: int  # d, the LLM's hidden size
    class_token: bool
    learned_pos: bool
    num_positions: int  # rows of the learned position embedding (0 when none)
    conv_bias: bool
    qkv_bias: bool
    qk_norm: bool
    norm_type: str
    layer_scale: bool
    hidden_act: str
    projector: str
    projector_in: int  # n_merge^2 * d_img
    projector_norm_dim: int  # d_img for the Qwen2-VL merger, n_merge^2 * d_img for InternVL
    projector_hidden: int  # width of the projector's first linear output
    projector_act: str
    position_encoding: str
    names: Mapping[str, str] = field(repr=False, compare=False)
    # image-token facts
    tokens_rule: str = ""
    image_size: int | None = None  # InternVL tile size
    min_pixels: int | None = None
    max_pixels: int | None = None
    pixels_source: str = ""
    min_tiles: int = 1
    max_tiles: int = 1
    use_thumbnail: bool = False
    dynamic_tiles: bool = False
    downsample_ratio: float | None = None
    # forward-pass facts (the reference model and the image preprocessor)
    norm_eps: float = 1e-6
    projector_norm_eps: float = 1e-6
    image_mean: tuple[float, ...] = ()
    image_std: tuple[float, ...] = ()
    image_token_id: int | None = None  # Qwen2-VL <|image_pad|>; InternVL's <IMG_CONTEXT> lives in its tokenizer
    vision_start_token_id: int | None = None
    vision_end_token_id: int | None = None

    @property
    def tokens_per_tile(self) -> int | None:
        if self.image_size is None:
            return None
        side = self.image_size // self.patch_size
        return side * side // (self.merge_size * self.merge_size)

    def name(self, role: str, layer: int | None = None, suffix: str = "") -> str:
        template = self.names[role] + suffix
        return template.format(layer) if layer is not None else template


def _first_key(kind: VisionKind, reader, fieldname: str) -> str | None:
    for key in kind.keys.get(fieldname, ()):
        if reader.has(key):
            return key
    return None


def _get(kind: VisionKind, reader, fieldname: str, typ: str, required: bool = True):
    key = _first_key(kind, reader, fieldname)
    if key is None:
        if fieldname in kind.fixed:
            return kind.fixed[fieldname]
        keys = kind.keys.get(fieldname, (fieldname,))
        if required:
            raise InspectError(f"{reader.where}: field '{reader._field(keys[0])}' is missing")
        return None
    read = getattr(reader, typ)
    return read(key, False) if typ == "bool" else read(key)


def _positive_ratio(reader, key: str, default: float) -> float:
    value = reader.float(key, default)
    if not 0 < value <= 1:
        raise InspectError(f"{reader.where}: field '{reader._field(key)}' must be in (0, 1], got {value}")
    return value


def _tile_size(size: int, reader) -> int:
    if size > MAX_TILE_SIZE:
        raise reader.fail("image_size", f"must be at most {MAX_TILE_SIZE} (pixels a side of one tile)", size)
    return size


def _preprocessor_pixels(pre: Mapping[str, Any] | None, patch: int, merge: int, where: str):
    """min/max pixels of the Qwen2-VL image processor; checks its patch/merge sizes agree."""
    if not pre:
        d = QWEN2_VL_PROCESSOR_DEFAULTS
        return d["min_pixels"], d["max_pixels"], "published Qwen2-VL processor defaults"
    r = ConfigReader(dict(pre), f"{where} (preprocessor_config.json)")
    size = pre.get("size") if isinstance(pre.get("size"), dict) else {}
    sub = ConfigReader(size, r.where, "size") if size else None
    if r.has("min_pixels"):
        lo = r.int("min_pixels", maximum=MAX_IMAGE_PIXELS)
    elif sub is not None and sub.has("shortest_edge"):
        lo = sub.int("shortest_edge", maximum=MAX_IMAGE_PIXELS)
    else:
        lo = QWEN2_VL_PROCESSOR_DEFAULTS["min_pixels"]
    if r.has("max_pixels"):
        hi = r.int("max_pixels")
    elif sub is not None and sub.has("longest_edge"):
        hi = sub.int("longest_edge")
    else:
        hi = QWEN2_VL_PROCESSOR_DEFAULTS["max_pixels"]
    if hi < lo:
        raise InspectError(f"{r.where}: field 'max_pixels' ({hi}) is smaller than min_pixels ({lo})")
    for key, value in (("patch_size", patch), ("merge_size", merge)):
        if r.has(key) and r.int(key) != value:
            raise InspectError(
                f"{r.where}: field '{key}' is {r.int(key)} but the vision config says {value}"
            )
    return lo, hi, "preprocessor_config.json"


def _mean_std(kind: VisionKind, pre: Mapping[str, Any] | None, channels: int, where: str):
    """image_mean / image_std: preprocessor_config.json's when given, else the kind's published ones."""
    out = []
    for key in ("image_mean", "image_std"):
        value = (pre or {}).get(key, kind.fixed[key])
        if (not isinstance(value, (list, tuple)) or len(value) != channels
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value)):
            raise InspectError(f"{where} (preprocessor_config.json): field '{key}' must be {channels} finite numbers, "
                               f"got {shown(value)}")
        if key == "image_std" and any(x <= 0 for x in value):
            raise InspectError(f"{where} (preprocessor_config.json): field 'image_std' must be positive, got {shown(value)}")
        out.append(tuple(float(x) for x in value))
    return out


def vision_spec_from_config(top, wrapper, text, preprocessor: Mapping[str, Any] | None = None) -> VisionSpec:
    """Read `vision_config` of a VLM config (`top` is the top-level ConfigReader)."""
    kind = VISION_KINDS[wrapper.vision_kind]
    v = top.sub("vision_config")
    where = top.where

    d = _get(kind, v, "hidden_size", "int")
    depth = _get(kind, v, "depth", "int")
    heads = _get(kind, v, "num_heads", "int")
    if d % heads:
        key = kind.keys["num_heads"][0]
        raise InspectError(
            f"{where}: field '{v._field(key)}' ({heads}) does not divide the vision hidden size ({d})"
        )
    if "intermediate_size" in kind.keys:
        inter = _get(kind, v, "intermediate_size", "int")
    else:
        ratio = _get(kind, v, "mlp_ratio", "float")
        if ratio <= 0 or not float(d * ratio).is_integer():
            raise InspectError(f"{where}: field '{v._field('mlp_ratio')}' must give an integer MLP width, got {ratio}")
        inter = int(d * ratio)
    patch = _get(kind, v, "patch_size", "int")
    t_patch = _get(kind, v, "temporal_patch_size", "int")
    channels = _get(kind, v, "in_channels", "int")
    norm_type = _get(kind, v, "norm_type", "str")
    if norm_type not in NORM_TYPES:
        raise InspectError(
            f"{where}: field '{v._field('norm_type')}' must be one of {', '.join(NORM_TYPES)}, got {norm_type!r}"
        )
    qkv_bias = _get(kind, v, "qkv_bias", "bool")
    qk_norm = _get(kind, v, "qk_normalization", "bool")
    act = _get(kind, v, "hidden_act", "str")
    norm_eps = _get(kind, v, "norm_eps", "float")
    mean, std = _mean_std(kind, preprocessor if kind.tokens_rule == "qwen2_vl_resize" else None, channels, where)

    image_size = None
    num_positions = 0
    downsample = None
    if kind.projector == "merger":
        merge = _get(kind, v, "merge_size", "int")
        out_hidden = _get(kind, v, "out_hidden_size", "int")
        if out_hidden != text.hidden_size:
            raise InspectError(
                f"{where}: field '{v._field('hidden_size')}' ({out_hidden}) must equal the LLM hidden_size "
                f"({text.hidden_size}): it is the merger's output width"
            )
        proj_in = merge * merge * d
        norm_dim, proj_hidden = d, proj_in
    else:  # pixel shuffle
        image_size = _tile_size(_get(kind, v, "image_size", "int"), v)
        if top.has("force_image_size"):
            forced = top.int("force_image_size")
            if forced != image_size:
                raise InspectError(
                    f"{where}: field 'force_image_size' ({forced}) differs from "
                    f"'{v._field('image_size')}' ({image_size})"
                )
        if image_size % patch:
            raise InspectError(
                f"{where}: field '{v._field('image_size')}' ({image_size}) is not a multiple of patch_size ({patch})"
            )
        num_positions = (image_size // patch) ** 2 + (1 if kind.class_token else 0)
        downsample = _positive_ratio(top, "downsample_ratio", 0.5)
        inv = 1 / downsample
        if abs(inv - round(inv)) > 1e-9:
            raise InspectError(f"{where}: field 'downsample_ratio' must be 1/n, got {downsample}")
        merge = round(inv)
        if (image_size // patch) % merge:
            raise InspectError(
                f"{where}: field 'downsample_ratio' ({downsample}) does not divide the {image_size // patch}-patch grid"
            )
        out_hidden = text.hidden_size
        proj_in = merge * merge * d
        norm_dim, proj_hidden = proj_in, out_hidden

    # image-token facts
    extra: dict[str, Any] = {}
    if kind.tokens_rule == "qwen2_vl_resize":
        lo, hi, src = _preprocessor_pixels(preprocessor, patch, merge, where)
        extra = dict(min_pixels=lo, max_pixels=hi, pixels_source=src)
        extra.update({key: top.int(key, minimum=0) for key in
                      ("image_token_id", "vision_start_token_id", "vision_end_token_id") if top.has(key)})
    elif kind.tokens_rule == "internvl_tiles":
        lo_t = top.int("min_dynamic_patch", 1, maximum=MAX_TILES)
        hi_t = top.int("max_dynamic_patch", 12, maximum=MAX_TILES)
        if hi_t < lo_t:
            raise InspectError(f"{where}: field 'max_dynamic_patch' ({hi_t}) is smaller than min_dynamic_patch ({lo_t})")
        extra = dict(image_size=image_size, min_tiles=lo_t, max_tiles=hi_t,
                     use_thumbnail=top.bool("use_thumbnail", False),
                     dynamic_tiles=top.bool("dynamic_image_size", False), downsample_ratio=downsample)
    for key in ("ps_version", "select_layer", "template", "use_backbone_lora", "use_llm_lora",
                "vision_start_token_id", "vision_end_token_id", "vision_token_id", "image_token_id",
                "video_token_id", "auto_map", "_commit_hash", "torch_dtype", "transformers_version"):
        top.used.add(key)

    return VisionSpec(
        kind=kind.kind, description=kind.description, hidden_size=d, depth=depth, num_heads=heads,
        head_dim=d // heads, intermediate_size=inter, patch_size=patch, temporal_patch_size=t_patch,
        in_channels=channels, merge_size=merge, out_hidden_size=out_hidden,
        class_token=kind.class_token, learned_pos=kind.learned_pos, num_positions=num_positions,
        conv_bias=kind.conv_bias, qkv_bias=qkv_bias, qk_norm=qk_norm, norm_type=norm_type,
        layer_scale=kind.layer_scale, hidden_act=act, projector=kind.projector, projector_in=proj_in,
        projector_norm_dim=norm_dim, projector_hidden=proj_hidden,
        projector_act=kind.fixed["projector_act"], position_encoding=kind.position_encoding,
        names=kind.names, tokens_rule=kind.tokens_rule, norm_eps=norm_eps,
        projector_norm_eps=kind.fixed["projector_norm_eps"], image_mean=mean, image_std=std, **extra,
    )
