"""The model spec: a frozen record of everything the rest of the package needs from config.json.

`from_hf_config(cfg, name)` is the only place that reads a config dict. It validates each field
(one-line errors naming the field), resolves the family's differences into plain booleans, works
out the derived values once (head_dim, kv groups, projection widths) and unwraps the nested
`text_config` / `llm_config` / `vision_config` of vision-language models.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

from inspector.errors import InspectError
from inspector.families import FAMILIES, Family

# --------------------------------------------------------------------------- wrappers (VLMs)


@dataclass(frozen=True)
class Wrapper:
    """A vision-language `model_type` wrapping a decoder LLM and a vision tower."""

    model_type: str
    description: str
    text_keys: tuple[str, ...]  # nested key(s) holding the LLM config; () = top level
    text_model_type: str | None  # family of the LLM when the nested config does not say
    prefix: str  # checkpoint prefix of the LLM's tensors
    vision_kind: str


WRAPPERS: Mapping[str, Wrapper] = MappingProxyType(
    {
        "qwen2_vl": Wrapper(
            "qwen2_vl", "Qwen2-VL (ViT with 2D RoPE + patch merger, Qwen2 LLM)",
            ("text_config",), "qwen2", "", "qwen2_vl",
        ),
        "internvl_chat": Wrapper(
            "internvl_chat", "InternVL2 (InternViT + MLP projector, InternLM2/Qwen2/LLaMA LLM)",
            ("llm_config",), None, "language_model.", "internvit",
        ),
    }
)

# Nested LLM configs sometimes carry their own wrapper-specific model_type.
TEXT_MODEL_TYPE_ALIASES: Mapping[str, str] = MappingProxyType({"qwen2_vl_text": "qwen2"})


def supported_model_types() -> list[str]:
    return sorted([*FAMILIES, *WRAPPERS])


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class TextSpec:
    """A decoder LLM, family differences already resolved to plain fields."""

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tie_embeddings: bool
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    qk_norm: bool
    fused_qkv: bool
    fused_gate_up: bool
    qkv_layout: str
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    hidden_act: str = "silu"
    rope_scaling: Mapping[str, Any] | None = field(default=None, compare=False)
    sliding_window: int | None = None
    prefix: str = ""
    names: Mapping[str, str] = field(default_factory=lambda: FAMILIES["llama"].names, repr=False, compare=False)
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    torch_dtype: str | None = None
    # derived, filled in __post_init__
    q_dim: int = field(init=False)
    kv_dim: int = field(init=False)
    kv_groups: int = field(init=False)

    def __post_init__(self) -> None:
        assert self.num_heads % self.num_kv_heads == 0, "checked by text_spec_from_reader"
        object.__setattr__(self, "q_dim", self.num_heads * self.head_dim)
        object.__setattr__(self, "kv_dim", self.num_kv_heads * self.head_dim)
        object.__setattr__(self, "kv_groups", self.num_heads // self.num_kv_heads)

    def name(self, role: str, layer: int | None = None, suffix: str = "") -> str:
        """Checkpoint name of a tensor role, e.g. name("q", 3, ".weight")."""
        template = self.prefix + self.names[role] + suffix
        return template.format(layer) if layer is not None else template


@dataclass(frozen=True)
class ModelSpec:
    """A whole model: its LLM, and for VLMs its vision tower (see inspector.vision_spec)."""

    name: str
    source: str
    model_type: str
    architecture: str
    text: TextSpec
    vision: Any = None
    ignored_keys: tuple[str, ...] = ()

    @property
    def is_vlm(self) -> bool:
        return self.vision is not None


# --------------------------------------------------------------------------- config reading


class ConfigReader:
    """Typed access to one config dict, with errors that name the file and the field."""

    def __init__(self, cfg: Any, where: str, path: str = "") -> None:
        if not isinstance(cfg, dict):
            raise InspectError(f"{where}: {path or 'config'} must be a JSON object, got {type(cfg).__name__}")
        self.cfg, self.where, self.path = cfg, where, path
        self.used: set[str] = set()

    def _field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.cfg.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        value = self.cfg.get(key)
        return default if value is None else value

    def int(self, key: str, default: int | None = None, minimum: int = 1) -> int:
        value = self.raw(key, default)
        if value is None:
            raise InspectError(f"{self.where}: field '{self._field(key)}' is missing")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InspectError(
                f"{self.where}: field '{self._field(key)}' must be an integer, got {value!r}"
            )
        if value < minimum:
            raise InspectError(
                f"{self.where}: field '{self._field(key)}' must be >= {minimum}, got {value}"
            )
        return value

    def float(self, key: str, default: float | None = None) -> float:
        value = self.raw(key, default)
        if value is None:
            raise InspectError(f"{self.where}: field '{self._field(key)}' is missing")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InspectError(
                f"{self.where}: field '{self._field(key)}' must be a number, got {value!r}"
            )
        return float(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise InspectError(
                f"{self.where}: field '{self._field(key)}' must be true or false, got {value!r}"
            )
        return value

    def str(self, key: str, default: str | None = None) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise InspectError(
                f"{self.where}: field '{self._field(key)}' must be a string, got {value!r}"
            )
        return value

    def sub(self, key: str) -> "ConfigReader":
        self.used.add(key)
        if key not in self.cfg:
            raise InspectError(f"{self.where}: field '{self._field(key)}' is missing")
        return ConfigReader(self.cfg[key], self.where, self._field(key))

    def unused(self) -> tuple[str, ...]:
        return tuple(sorted(k for k in self.cfg if k not in self.used))


def _flag(reader: ConfigReader, setting: bool | str) -> bool:
    return reader.bool(setting, False) if isinstance(setting, str) else setting


def _token_ids(reader: ConfigReader, key: str) -> tuple[int, ...]:
    value = reader.raw(key)
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise InspectError(f"{reader.where}: field '{reader._field(key)}' must be token ids, got {value!r}")
    return tuple(values)


def text_spec_from_reader(r: ConfigReader, family: Family, prefix: str = "") -> TextSpec:
    """Read a decoder LLM's fields with `family`'s differences applied."""
    hidden = r.int("hidden_size")
    heads = r.int("num_attention_heads")
    if r.has("head_dim"):
        head_dim = r.int("head_dim")
    else:
        if hidden % heads:
            raise InspectError(
                f"{r.where}: hidden_size ({hidden}) is not a multiple of "
                f"num_attention_heads ({heads}) and no head_dim is given"
            )
        head_dim = hidden // heads
    kv_heads = r.int("num_key_value_heads", heads)
    if heads % kv_heads:
        raise InspectError(
            f"{r.where}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv_heads})"
        )
    rope_scaling = r.raw("rope_scaling")
    if rope_scaling is not None and not isinstance(rope_scaling, dict):
        raise InspectError(f"{r.where}: field '{r._field('rope_scaling')}' must be an object, got {rope_scaling!r}")
    rope_theta = r.float("rope_theta", 10000.0)
    rope_parameters = r.raw("rope_parameters")  # transformers >= 5 writes RoPE settings here instead
    if isinstance(rope_parameters, dict) and "rope_theta" in rope_parameters:
        rope_theta = float(rope_parameters["rope_theta"])
        kind = rope_parameters.get("rope_type", rope_parameters.get("type", "default"))
        if rope_scaling is None and (kind != "default" or "mrope_section" in rope_parameters):
            rope_scaling = {k: v for k, v in rope_parameters.items() if k != "rope_theta"}
    sliding = r.raw("sliding_window")
    if sliding is not None and r.raw("use_sliding_window", True) is False:
        sliding = None
    for key in ("max_window_layers", "attention_dropout", "initializer_range", "use_cache",
                "architectures", "transformers_version", "model_type", "_name_or_path"):
        r.used.add(key)
    return TextSpec(
        model_type=family.model_type,
        vocab_size=r.int("vocab_size"),
        hidden_size=hidden,
        intermediate_size=r.int("intermediate_size"),
        num_layers=r.int("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        tie_embeddings=r.bool("tie_word_embeddings", False),
        qkv_bias=_flag(r, family.qkv_bias),
        o_bias=_flag(r, family.o_bias),
        mlp_bias=_flag(r, family.mlp_bias),
        qk_norm=family.qk_norm,
        fused_qkv=family.fused_qkv,
        fused_gate_up=family.fused_gate_up,
        qkv_layout=family.qkv_layout,
        rms_norm_eps=r.float("rms_norm_eps", 1e-6),
        rope_theta=rope_theta,
        max_position_embeddings=r.int("max_position_embeddings", 2048),
        hidden_act=r.str("hidden_act", "silu"),
        rope_scaling=MappingProxyType(dict(rope_scaling)) if rope_scaling else None,
        sliding_window=sliding if isinstance(sliding, int) and not isinstance(sliding, bool) else None,
        prefix=prefix,
        names=family.names,
        bos_token_id=(_token_ids(r, "bos_token_id") or (None,))[0],
        eos_token_ids=_token_ids(r, "eos_token_id"),
        torch_dtype=r.raw("torch_dtype") if isinstance(r.raw("torch_dtype"), str) else None,
    )


def from_hf_config(
    cfg: Any, name: str, source: str = "", where: str | None = None,
    preprocessor: Mapping[str, Any] | None = None,
) -> ModelSpec:
    """Build a ModelSpec from a parsed config.json dict. `where` names the file in errors.

    `preprocessor` is a parsed preprocessor_config.json (VLMs only; its image-size facts go into
    the vision spec)."""
    where = where or source or name
    top = ConfigReader(cfg, where)
    if not top.has("model_type"):
        raise InspectError(f"{where}: field 'model_type' is missing")
    model_type = top.str("model_type")
    architectures = top.raw("architectures") or [model_type]
    architecture = architectures[0] if isinstance(architectures, list) and architectures else model_type

    if model_type in FAMILIES:
        text = text_spec_from_reader(top, FAMILIES[model_type])
        return ModelSpec(name, source, model_type, str(architecture), text, None, top.unused())

    if model_type in WRAPPERS:
        wrapper = WRAPPERS[model_type]
        text_reader = top
        for key in wrapper.text_keys:
            if key in top.cfg:
                text_reader = top.sub(key)
                break
        else:
            if wrapper.text_keys and wrapper.text_model_type is None:
                raise InspectError(f"{where}: field '{wrapper.text_keys[0]}' is missing")
        if text_reader is not top and text_reader.has("model_type"):
            inner = text_reader.str("model_type")
            inner = TEXT_MODEL_TYPE_ALIASES.get(inner, inner)
        else:
            inner = wrapper.text_model_type or ""
        if inner not in FAMILIES:
            supported = ", ".join(sorted(FAMILIES))
            raise InspectError(
                f"{where}: language model type {inner!r} of {model_type} is not supported "
                f"(supported: {supported})"
            )
        text = text_spec_from_reader(text_reader, FAMILIES[inner], wrapper.prefix)
        if text_reader is not top and not text_reader.has("tie_word_embeddings") and top.has("tie_word_embeddings"):
            # transformers 5 saves Qwen2-VL's tie flag at the top level, not in text_config
            text = replace(text, tie_embeddings=top.bool("tie_word_embeddings", False))
        from inspector.vision_spec import vision_spec_from_config

        vision = vision_spec_from_config(top, wrapper, text, preprocessor)
        return ModelSpec(name, source, model_type, str(architecture), text, vision, top.unused())

    supported = ", ".join(supported_model_types())
    raise InspectError(f"{where}: model_type {model_type!r} is not supported (supported: {supported})")
