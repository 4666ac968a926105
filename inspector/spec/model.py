"""A whole model's spec (`ModelSpec`): its LLM and, for vision-language models, its vision tower.

`from_hf_config(cfg, name)` is the only entry from a parsed config.json; `read_config_files` reads a
local model directory's config.json and preprocessor_config.json (what inspector.source resolves a
directory MODEL with, and what the reference loader reads beside its weights). Vision-language wrappers
(which nested key holds the LLM config, the LLM's checkpoint names, the encoder and projector kinds)
are data in inspector.spec.wrappers, like the decoder families.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from inspector.errors import InspectError
from inspector.files import confined, read_json
from inspector.spec.audio import AudioSpec, audio_spec_from_config
from inspector.spec.config_reader import ConfigReader
from inspector.spec.families import FAMILIES
from inspector.spec.text import TextSpec, text_spec_from_reader
from inspector.spec.vision import VisionSpec, vision_spec_from_config
from inspector.spec.wrappers import TEXT_MODEL_TYPE_ALIASES, WRAPPERS, Wrapper  # noqa: F401 (re-exported)


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
    cross_layers: tuple[int, ...] = ()  # Mllama: LLM layers that cross-attend to the image
    embed_extra: int = 0  # Mllama: embedding rows beyond the LM head's vocabulary
    image_attention: str = "causal"  # Gemma 3: "bidirectional" within each image
    prompt_template: str = ""  # how the trace writes a prompt with an image (inspector.runtime.vlm_inputs)
    audio: AudioSpec | None = None  # Gemma 4: an audio tower and its projection (inspector.spec.audio)

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
        return _vlm(top, WRAPPERS[model_type], name, source, where, str(architecture), preprocessor)

    supported = ", ".join(supported_model_types())
    raise InspectError(f"{where}: model_type {model_type!r} is not supported (supported: {supported})")


def _text_reader(top: ConfigReader, wrapper: Wrapper, where: str) -> tuple[ConfigReader, str]:
    """The LLM's config (nested, with the wrapper's class defaults under it) and its family."""
    text_reader = top
    for key in wrapper.text_keys:
        if key in top.cfg:
            top.sub(key)
            nested = top.cfg[key]
            if not isinstance(nested, dict):
                raise InspectError(f"{where}: {key} must be a JSON object, got {type(nested).__name__}")
            text_reader = ConfigReader({**wrapper.text_defaults, **nested}, where, key)
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
            f"{where}: language model type {inner!r} of {wrapper.model_type} is not supported "
            f"(supported: {supported})"
        )
    return text_reader, inner


def _renamed(names: Mapping[str, str], rename: tuple[tuple[str, str], ...]) -> Mapping[str, str]:
    out = dict(names)
    for old, new in rename:
        out = {role: new + t[len(old):] if t.startswith(old) else t for role, t in out.items()}
    return MappingProxyType(out)


def _cross_layers(reader: ConfigReader, key: str, layers: int) -> tuple[int, ...]:
    if not key:
        return ()
    value = reader.raw(key, [])
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < layers
                                              for i in value):
        raise InspectError(f"{reader.where}: field '{reader._field(key)}' must list layer indices below {layers}, "
                           f"got {str(value)[:60]}")
    return tuple(sorted(set(value)))


def _tied(top: ConfigReader, text_reader: ConfigReader, wrapper: Wrapper) -> bool | None:
    """transformers 5's rule for a nested LLM config: the top-level flag, else the wrapper's class
    default; text_config's True also ties where the config class forwards it (Wrapper.tie_from_text).
    None: the LLM config is the top level, or the wrapper is remote code (its own flag decides)."""
    if text_reader is top or wrapper.tie_default is None:
        return None
    tied = top.bool("tie_word_embeddings", wrapper.tie_default)
    return tied or (wrapper.tie_from_text and text_reader.bool("tie_word_embeddings", False))


def _vlm(top: ConfigReader, wrapper: Wrapper, name: str, source: str, where: str, architecture: str,
         preprocessor: Mapping[str, Any] | None) -> ModelSpec:
    text_reader, inner = _text_reader(top, wrapper, where)
    text = text_spec_from_reader(text_reader, FAMILIES[inner], wrapper.prefix)
    if wrapper.text_rename:
        text = replace(text, names=_renamed(text.names, wrapper.text_rename))
    tied = _tied(top, text_reader, wrapper)
    if tied is not None:
        text = replace(text, tie_embeddings=tied)
    no_vision = wrapper.vision_optional and top.raw("vision_config") is None
    vision = None if no_vision else vision_spec_from_config(top, wrapper, text, preprocessor)
    audio = audio_spec_from_config(top, wrapper, text.hidden_size)
    if wrapper.vision_optional or wrapper.audio:  # Gemma 4: the top-level ids of towers it may not have
        top.used.update((*wrapper.image_token_keys, *wrapper.marker_keys, *_OPTIONAL_TOWER_KEYS))
    cross = _cross_layers(text_reader, wrapper.cross_layers_key, text.num_layers)
    for key in ("text_config", "vision_config", "llm_config", "tie_word_embeddings", "architectures",
                "model_type", "_name_or_path", "image_grid_pinpoints", "vision_aspect_ratio", wrapper.feature_layer_key):
        top.used.add(key)
    return ModelSpec(name, source, wrapper.model_type, architecture, text, vision, top.unused(), cross,
                     wrapper.embed_extra, wrapper.image_attention, wrapper.prompt_template, audio)


# Gemma4Config's top-level keys beside its sub-configs (token ids of the towers; transformers 5.25
# configuration_gemma4.py), and what transformers writes with them
_OPTIONAL_TOWER_KEYS = ("boi_token_id", "eoi_token_id", "image_token_id", "video_token_id", "boa_token_id",
                        "eoa_token_index", "eoa_token_id", "audio_token_id", "initializer_range", "dtype",
                        "transformers_version", "eos_token_id", "pad_token_id", "bos_token_id",
                        "vision_soft_tokens_per_image", "audio_config")


def read_preprocessor(path: Path) -> dict[str, Any]:
    """A preprocessor_config.json, which must be a JSON object."""
    pre = read_json(path)
    if not isinstance(pre, dict):
        raise InspectError(f"{path}: must be a JSON object, got {type(pre).__name__}")
    return pre


def read_config_files(directory: Path, config_path: Path | None = None) -> tuple[Any, Path, dict[str, Any] | None]:
    """(config, its file, preprocessor config or None) of a local model: ``config_path`` as the user
    named it, else the directory's own config.json, which must be there. Files found in the
    directory, not named by the user, are confined to it."""
    if config_path is None:
        config_path = directory / "config.json"
        if not os.path.lexists(config_path):
            raise InspectError(f"{directory}: no config.json in this directory")
        confined(directory, config_path, "the model directory's config.json")
    cfg = read_json(config_path)
    pre_path = directory / "preprocessor_config.json"
    pre = read_preprocessor(confined(directory, pre_path, "the model directory's preprocessor_config.json")) \
        if os.path.lexists(pre_path) else None
    return cfg, config_path, pre


def spec_of_directory(directory: Path) -> ModelSpec:
    """The spec of a checkpoint directory, from its config.json (the name is the directory)."""
    cfg, config_path, pre = read_config_files(directory)
    return from_hf_config(cfg, str(directory), str(config_path), str(config_path), pre)
