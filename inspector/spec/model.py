"""A whole model's spec (`ModelSpec`): its LLM and, for vision-language models, its vision tower.

`from_hf_config(cfg, name)` is the only entry from a parsed config.json. Vision-language wrappers
(which nested key holds the LLM config, the LLM's checkpoint prefix, the vision kind) are data in
WRAPPERS, like the decoder families.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Mapping

from inspector.errors import InspectError
from inspector.spec.config_reader import ConfigReader
from inspector.spec.families import FAMILIES
from inspector.spec.text import TextSpec, text_spec_from_reader
from inspector.spec.vision import VisionSpec, vision_spec_from_config

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


@dataclass(frozen=True)
class ModelSpec:
    """A whole model: its LLM, and for VLMs its vision tower (see inspector.spec.vision)."""

    name: str
    source: str
    model_type: str
    architecture: str
    text: TextSpec
    vision: VisionSpec | None = None
    ignored_keys: tuple[str, ...] = ()

    @property
    def is_vlm(self) -> bool:
        return self.vision is not None


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
        vision = vision_spec_from_config(top, wrapper, text, preprocessor)
        return ModelSpec(name, source, model_type, str(architecture), text, vision, top.unused())

    supported = ", ".join(supported_model_types())
    raise InspectError(f"{where}: model_type {model_type!r} is not supported (supported: {supported})")
