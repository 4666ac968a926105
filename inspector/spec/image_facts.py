"""What an image processor does to an image, as the typed facts of each image-token rule (no image is read).

Each image-token rule's facts are one frozen record (`RuleFacts` subclass): its fields, and how they
are read. Most rules list them as `Fact`s: where each one is found (`preprocessor_config.json`, the
top level of config.json or its `vision_config`, first found wins) and the published processor's
value when none of them has it; `read_facts` reads them with typed, named-field errors. Qwen2-VL's
pixel bounds and InternVL's tiling have readers of their own (`preprocessor_pixels`,
`tiling_facts`). A wrapper (inspector.spec.wrappers) names its rule's record; the rule's arithmetic
is in inspector.image.rules (`ImageRule`).
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

from inspector.errors import InspectError
from inspector.spec.config_reader import FIELD_RULES, ConfigReader, shown

# Published Qwen2-VL image-processor defaults (used when no preprocessor_config.json is at hand).
QWEN2_VL_PROCESSOR_DEFAULTS: Mapping[str, int] = MappingProxyType(
    {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 16384}
)


@dataclass(frozen=True)
class Fact:
    """One processor fact: `kind` int | float | bool | str | pairs (a list of [h, w]); `where` lists
    "pre:key", "top:key" or "vision:key" (dotted keys reach into objects); `default` is the value of
    the published processor."""

    name: str
    kind: str
    where: tuple[str, ...]
    default: Any = None


@dataclass(frozen=True)
class Sources:
    """What a rule's facts are read from: config.json (top level and vision_config), the parsed
    preprocessor_config.json, the encoder's patch and input sizes, the merge factor, and the
    wrapper's published processor values."""

    top: ConfigReader
    vision: ConfigReader
    pre: Mapping[str, Any] | None
    patch_size: int
    image_size: int | None
    merge_size: int
    defaults: Mapping[str, Any]


@dataclass(frozen=True)
class RuleFacts:
    """The facts of one image-token rule. `rule` is its name (the key of inspector.image.rules.RULES);
    `FACTS` are read by `read_facts`; `top_level`: the facts are top-level fields of the vision JSON
    of `params --json` (the first two rules), not its "image" object."""

    rule: ClassVar[str]
    FACTS: ClassVar[tuple[Fact, ...]] = ()
    top_level: ClassVar[bool] = False

    @classmethod
    def read(cls, src: Sources) -> RuleFacts:
        return cls(**read_facts(cls.FACTS, src))


_TYPES = {"int": int, "float": (int, float), "bool": bool, "str": str}


def _lookup(source: Mapping[str, Any] | None, dotted: str) -> Any:
    value: Any = source
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or value.get(part) is None:
            return None
        value = value[part]
    return value


def _check(fact: Fact, value: Any, where: str) -> Any:
    if fact.kind == "pairs":
        if (not isinstance(value, (list, tuple)) or not value
                or not all(isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, int) and x > 0
                                                                               for x in p) for p in value)):
            raise InspectError(f"{where}: must be a list of [height, width] pairs, got {str(value)[:60]}")
        return tuple(tuple(p) for p in value)
    if isinstance(value, bool) and fact.kind != "bool" or not isinstance(value, _TYPES[fact.kind]):
        raise InspectError(f"{where}: must be {'a number' if fact.kind == 'float' else 'of type ' + fact.kind}, "
                           f"got {value!r}")
    if fact.kind in ("int", "float") and value <= 0:
        raise InspectError(f"{where}: must be positive, got {value!r}")
    return float(value) if fact.kind == "float" else value


def read_facts(facts: tuple[Fact, ...], src: Sources) -> dict[str, Any]:
    """Each fact from the first source that has it, else its published default."""
    top, vision = src.top, src.vision
    sources = {"pre": (src.pre, f"{top.where} (preprocessor_config.json)", ""), "top": (top.cfg, top.where, ""),
               "vision": (vision.cfg, vision.where, vision.path + ".")}
    out: dict[str, Any] = {}
    for fact in facts:
        value = fact.default
        for place in fact.where:
            scope, _, key = place.partition(":")
            source, where, path = sources[scope]
            found = _lookup(source, key)
            if found is not None:
                if scope == "top":
                    top.used.add(key.split(".")[0])
                value = _check(fact, found, f"{where}: field '{path}{key}'")
                rule = FIELD_RULES.get(key.rsplit(".", 1)[-1])  # what the field's meaning fixes
                problem = rule(found) if rule is not None else None
                if problem:
                    raise InspectError(f"{where}: field '{path}{key}' {problem}, got {shown(found)}")
                break
        out[fact.name] = value
    return out


# Bounds on sizes that allocate memory: pixels of an image or canvas (8192 x 8192), of a tile's side, tiles.
MAX_IMAGE_PIXELS, MAX_TILE_SIZE, MAX_TILES = 1 << 26, 4096, 10_000


def preprocessor_pixels(pre: Mapping[str, Any] | None, patch: int, merge: int, where: str):
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


def tiling_facts(src: Sources) -> dict[str, Any]:
    """InternVL's dynamic tiling: InternVL2 keeps it in config.json (min/max_dynamic_patch,
    use_thumbnail, dynamic_image_size); transformers' InternVL processor in preprocessor_config.json
    (crop_to_patches, min/max_patches). `src.defaults` are the wrapper's published values."""
    top, v = src.top, src.vision
    if top.has("force_image_size") and top.int("force_image_size") != src.image_size:
        raise InspectError(f"{top.where}: field 'force_image_size' ({top.int('force_image_size')}) differs from "
                           f"'{v._field('image_size')}' ({src.image_size})")
    p = ConfigReader(dict(src.pre or {}), f"{top.where} (preprocessor_config.json)")
    lo = (p.int("min_patches", maximum=MAX_TILES) if p.has("min_patches")
          else top.int("min_dynamic_patch", 1, maximum=MAX_TILES))
    hi = (p.int("max_patches", maximum=MAX_TILES) if p.has("max_patches")
          else top.int("max_dynamic_patch", 12, maximum=MAX_TILES))
    if hi < lo:
        raise InspectError(f"{top.where}: field 'max_dynamic_patch' ({hi}) is smaller than min_dynamic_patch ({lo})")
    dynamic = (p.bool("crop_to_patches", True) if p.has("crop_to_patches")
               else top.bool("dynamic_image_size", bool(src.defaults.get("dynamic_image_size", False))))
    thumb = top.bool("use_thumbnail", bool(src.defaults.get("use_thumbnail", False)))
    return dict(min_tiles=lo, max_tiles=hi, use_thumbnail=thumb, dynamic_tiles=dynamic)


def mean_std(defaults: Mapping[str, Any], pre: Mapping[str, Any] | None, channels: int, where: str):
    """image_mean / image_std: preprocessor_config.json's when given, else the kind's published ones."""
    out = []
    for key in ("image_mean", "image_std"):
        value = (pre or {}).get(key, defaults[key])
        if (not isinstance(value, (list, tuple)) or len(value) != channels
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value)):
            raise InspectError(f"{where} (preprocessor_config.json): field '{key}' must be {channels} finite numbers, "
                               f"got {shown(value)}")
        if key == "image_std" and any(x <= 0 for x in value):
            raise InspectError(f"{where} (preprocessor_config.json): field 'image_std' must be positive, got {shown(value)}")
        out.append(tuple(float(x) for x in value))
    return out


# --------------------------------------------------------------------------- one record per rule


@dataclass(frozen=True)
class QwenResize(RuleFacts):
    """Qwen2-VL's resize: the pixel bounds of its image processor, and where they came from."""

    rule: ClassVar[str] = "qwen2_vl_resize"
    top_level: ClassVar[bool] = True
    min_pixels: int
    max_pixels: int
    pixels_source: str

    @classmethod
    def read(cls, src: Sources) -> QwenResize:
        return cls(*preprocessor_pixels(src.pre, src.patch_size, src.merge_size, src.top.where))


@dataclass(frozen=True)
class InternVLTiles(RuleFacts):
    """InternVL's dynamic tiling (the tile is the encoder's image_size)."""

    rule: ClassVar[str] = "internvl_tiles"
    top_level: ClassVar[bool] = True
    min_tiles: int
    max_tiles: int
    use_thumbnail: bool
    dynamic_tiles: bool

    @classmethod
    def read(cls, src: Sources) -> InternVLTiles:
        return cls(**tiling_facts(src))


@dataclass(frozen=True)
class Gemma3PanAndScan(RuleFacts):
    rule: ClassVar[str] = "gemma3_pan_and_scan"
    FACTS: ClassVar[tuple[Fact, ...]] = (
        Fact("tile", "int", ("pre:size.height", "vision:image_size"), 896),
        Fact("tokens_per_image", "int", ("top:mm_tokens_per_image", "pre:image_seq_length"), 256),
        Fact("pan_and_scan", "bool", ("pre:do_pan_and_scan",), False),
        Fact("min_crop", "int", ("pre:pan_and_scan_min_crop_size",), 256),
        Fact("max_crops", "int", ("pre:pan_and_scan_max_num_crops",), 4),
        Fact("min_ratio", "float", ("pre:pan_and_scan_min_ratio_to_activate",), 1.2),
    )
    tile: int
    tokens_per_image: int
    pan_and_scan: bool
    min_crop: int
    max_crops: int
    min_ratio: float


@dataclass(frozen=True)
class LlavaAnyres(RuleFacts):
    rule: ClassVar[str] = "llava_anyres"
    FACTS: ClassVar[tuple[Fact, ...]] = (
        Fact("tile", "int", ("pre:size.height", "pre:size.shortest_edge", "vision:image_size"), 384),
        Fact("pinpoints", "pairs", ("pre:image_grid_pinpoints", "top:image_grid_pinpoints"),
             tuple((384 * h, 384 * w) for h in range(1, 7) for w in range(1, 7))),
        Fact("strategy", "str", ("top:vision_feature_select_strategy",), "default"),
        Fact("aspect", "str", ("top:vision_aspect_ratio", "pre:vision_aspect_ratio"), ""),
    )
    tile: int
    pinpoints: tuple[tuple[int, int], ...]
    strategy: str
    aspect: str


@dataclass(frozen=True)
class Idefics3Split(RuleFacts):
    rule: ClassVar[str] = "idefics3_split"
    FACTS: ClassVar[tuple[Fact, ...]] = (
        Fact("longest", "int", ("pre:size.longest_edge",), 4 * 364),
        Fact("tile", "int", ("pre:max_image_size.longest_edge", "vision:image_size"), 364),
        Fact("split", "bool", ("pre:do_image_splitting",), True),
    )
    longest: int
    tile: int
    split: bool


@dataclass(frozen=True)
class MllamaTiles(RuleFacts):
    rule: ClassVar[str] = "mllama_tiles"
    FACTS: ClassVar[tuple[Fact, ...]] = (
        Fact("tile", "int", ("pre:size.height", "vision:image_size"), 560),
        Fact("max_tiles", "int", ("pre:max_image_tiles", "vision:max_num_tiles"), 4),
    )
    tile: int
    max_tiles: int


@dataclass(frozen=True)
class PixtralRows(RuleFacts):
    rule: ClassVar[str] = "pixtral_rows"
    FACTS: ClassVar[tuple[Fact, ...]] = (Fact("longest", "int", ("pre:size.longest_edge", "vision:image_size"), 1024),)
    longest: int


@dataclass(frozen=True)
class Llama4Tiles(RuleFacts):
    rule: ClassVar[str] = "llama4_tiles"
    FACTS: ClassVar[tuple[Fact, ...]] = (
        Fact("tile", "int", ("pre:size.height", "vision:image_size"), 336),
        Fact("max_chunks", "int", ("pre:max_patches",), 16),
        Fact("to_max_canvas", "bool", ("pre:resize_to_max_canvas",), False),
    )
    tile: int
    max_chunks: int
    to_max_canvas: bool


@dataclass(frozen=True)
class Gemma4Resize(RuleFacts):
    """Gemma 4's aspect-preserving resize within a soft-token budget (transformers 5.25
    models/gemma4/image_processing_gemma4.py: max_soft_tokens 280, one of 70/140/280/560/1120)."""

    rule: ClassVar[str] = "gemma4_resize"
    FACTS: ClassVar[tuple[Fact, ...]] = (
        Fact("max_soft_tokens", "int", ("pre:max_soft_tokens", "top:vision_soft_tokens_per_image",
                                        "vision:default_output_length"), 280),
    )
    max_soft_tokens: int
