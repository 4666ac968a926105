"""A LoRA adapter's tensors predicted from its config and the base model's modules, and checked against its file.

The prediction follows peft 0.21 (peft/tuners/tuners_utils.py `check_target_module_exists`,
peft/tuners/lora/layer.py, peft/utils/save_and_load.py `get_peft_model_state_dict`): a module is
adapted when its full name equals a `target_modules` entry or ends with `.entry` (a string is a
regex that must match the whole name), unless `exclude_modules` or `modules_to_save` names it, or
`layers_to_transform` leaves its layer out. An adapted Linear (out × in) stores `lora_A.weight`
(r, in) and `lora_B.weight` (out, r), with DoRA a `lora_magnitude_vector` (out,) and with
`lora_bias` a `lora_B.bias` (out,); an adapted Embedding (num × dim) stores `lora_embedding_A`
(r, num) and `lora_embedding_B` (dim, r). An experts parameter (E, out, in) named by
`target_parameters` stores `lora_A.weight` (E·r, in) and `lora_B.weight` (out, E·r); peft nests one
wrapper per parameter, so all but the last one named sit under `base_layer.` once per later one.
r and alpha per module come from `rank_pattern` / `alpha_pattern` (peft's `get_pattern_key`: the
first key K for which `(.*\\.)?(K)$` matches the module name). `modules_to_save` stores a full copy
of each named module's weight (and bias): trainable, and often most of the file. With an adapted
embedding peft may also store the embedding's own weight (`base_layer.weight`, its
`save_embedding_layers`): not trainable. Every key is prefixed `base_model.model.`. The trainable
count is peft's `get_nb_trainable_parameters()[0]`: every predicted tensor but a saved base layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from inspector.errors import InspectError
from inspector.memory.modules import EMBEDDING, EXPERT_PARAMS, LINEAR, Module

PREFIX = "base_model.model."  # peft's PeftModel -> LoraModel -> the transformers model
ALL_LINEAR = "all-linear"


@dataclass(frozen=True)
class AdapterConfig:
    """The keys of peft's LoraConfig that decide which tensors an adapter holds."""

    rank: int
    alpha: float
    targets: tuple[str, ...] | str | None
    rank_pattern: dict[str, int] = field(default_factory=dict)
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    dora: bool = False
    lora_bias: bool = False
    modules_to_save: tuple[str, ...] = ()
    exclude: tuple[str, ...] | str | None = None
    target_parameters: tuple[str, ...] = ()
    layers: tuple[int, ...] | None = None  # layers_to_transform
    rslora: bool = False


@dataclass(frozen=True)
class Planned:
    """One tensor the config and the base predict."""

    name: str  # the key in the file
    shape: tuple[int, ...]
    module: str  # the base module's path
    kind: str  # lora_A | lora_B | magnitude | bias | copy | base_layer
    rank: int = 0
    alpha: float = 0.0

    @property
    def params(self) -> int:
        out = 1
        for d in self.shape:
            out *= d
        return out

    @property
    def trainable(self) -> bool:
        return self.kind != "base_layer"


def _names(value: Any, key: str) -> tuple[str, ...] | str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InspectError(f"adapter_config.json: {key} must be a string or a list of strings, got {value!r}")


def _number(cfg: dict[str, Any], key: str, default: Any) -> Any:
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        raise InspectError(f"adapter_config.json: {key} must be a positive number, got {v!r}")
    return v


def _pattern(cfg: dict[str, Any], key: str) -> dict[str, Any]:
    v = cfg.get(key) or {}
    if not isinstance(v, dict) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values()):
        raise InspectError(f"adapter_config.json: {key} must map module names to numbers, got {v!r}")
    return dict(v)


def parse_config(cfg: dict[str, Any]) -> AdapterConfig:
    """peft's adapter_config.json -> AdapterConfig (one line on a value peft would not accept)."""
    rank = _number(cfg, "r", 8)
    if not isinstance(rank, int):
        raise InspectError(f"adapter_config.json: r must be an integer, got {rank!r}")
    layers = cfg.get("layers_to_transform")
    layers = (layers,) if isinstance(layers, int) else tuple(layers) if isinstance(layers, list) and layers else None
    return AdapterConfig(
        rank, _number(cfg, "lora_alpha", 8), _names(cfg.get("target_modules"), "target_modules"),
        _pattern(cfg, "rank_pattern"), _pattern(cfg, "alpha_pattern"), bool(cfg.get("use_dora")),
        bool(cfg.get("lora_bias")), tuple(_names(cfg.get("modules_to_save"), "modules_to_save") or ()),
        _names(cfg.get("exclude_modules"), "exclude_modules"),
        tuple(_names(cfg.get("target_parameters"), "target_parameters") or ()), layers, bool(cfg.get("use_rslora")))


def _named(names: tuple[str, ...] | str | None, key: str) -> bool:
    if names is None:
        return False
    if isinstance(names, str):
        return re.fullmatch(names, key) is not None
    return key in names or any(key.endswith("." + n) for n in names)


def _saved(c: AdapterConfig, key: str) -> bool:
    return any(re.match(rf"(^|.*\.){re.escape(m)}($|\..*)", key) for m in c.modules_to_save)


def pattern_value(pattern: dict[str, Any], key: str, default: Any) -> Any:
    """peft's get_pattern_key: the first pattern K with `(.*\\.)?(K)$` matching the module name."""
    for k in pattern:
        if re.match(rf"(.*\.)?({k})$", key):
            return pattern[k]
    return default


def adapted(c: AdapterConfig, m: Module) -> bool:
    """Whether peft puts a LoRA layer on module `m` (a Linear or an Embedding)."""
    if m.kind not in (LINEAR, EMBEDDING) or _named(c.exclude, m.path) or _saved(c, m.path):
        return False
    if c.targets == ALL_LINEAR:
        return m.kind == LINEAR and not m.output_embedding
    if not _named(c.targets, m.path):
        return False
    return c.layers is None or isinstance(c.targets, str) or m.layer in c.layers


def _module_tensors(c: AdapterConfig, m: Module) -> list[Planned]:
    r = int(pattern_value(c.rank_pattern, m.path, c.rank))
    a = float(pattern_value(c.alpha_pattern, m.path, c.alpha))
    key = PREFIX + m.path
    if m.kind == EMBEDDING:
        return [Planned(key + ".lora_embedding_A", (r, m.in_features), m.path, "lora_A", r, a),
                Planned(key + ".lora_embedding_B", (m.out_features, r), m.path, "lora_B", r, a)]
    out = [Planned(key + ".lora_A.weight", (r, m.in_features), m.path, "lora_A", r, a),
           Planned(key + ".lora_B.weight", (m.out_features, r), m.path, "lora_B", r, a)]
    if c.lora_bias:
        out.append(Planned(key + ".lora_B.bias", (m.out_features,), m.path, "bias", r, a))
    if c.dora:
        out.append(Planned(key + ".lora_magnitude_vector", (m.out_features,), m.path, "magnitude", r, a))
    return out


def expert_groups(c: AdapterConfig, modules: list[Module]) -> dict[str, list[Module]]:
    """The experts parameters `target_parameters` names, by their parent module, in the config's order."""
    by_parent: dict[str, list[Module]] = {}
    for m in modules:
        if m.kind == EXPERT_PARAMS and any(m.path.endswith("." + t) or m.path == t for t in c.target_parameters):
            by_parent.setdefault(m.path.rsplit(".", 1)[0], []).append(m)
    order = {t.rsplit(".", 1)[-1]: i for i, t in enumerate(c.target_parameters)}
    return {k: sorted(ms, key=lambda m: order.get(m.path.rsplit(".", 1)[-1], 0)) for k, ms in by_parent.items()}


def expert_tensors(c: AdapterConfig, parent: str, ms: list[Module]) -> list[Planned]:
    """One parent's nested ParamWrappers, `ms` in wrapping order (the first innermost). peft saves
    target_parameters as a set, so the wrapping order is not in adapter_config.json: the caller
    tries the orders against the file (inspector.memory.adapter_verify)."""
    out: list[Planned] = []
    for i, m in enumerate(ms):
        r = int(pattern_value(c.rank_pattern, m.path, c.rank))
        a = float(pattern_value(c.alpha_pattern, m.path, c.alpha))
        key = PREFIX + parent + ".base_layer" * (len(ms) - 1 - i)
        er = m.experts * r
        out += [Planned(key + ".lora_A.weight", (er, m.in_features), m.path, "lora_A", r, a),
                Planned(key + ".lora_B.weight", (m.out_features, er), m.path, "lora_B", r, a)]
    return out


def _copies(c: AdapterConfig, modules: list[Module], weights: dict[str, tuple[int, ...]]) -> list[Planned]:
    out = []
    for m in modules:
        if c.modules_to_save and _saved(c, m.path) and not any(_saved(c, p) for p in _parents(m.path)):
            for suffix in (".weight", ".bias"):
                shape = weights.get(m.path + suffix)
                if shape is not None:
                    out.append(Planned(PREFIX + m.path + suffix, shape, m.path, "copy"))
    return out


def _parents(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@dataclass(frozen=True)
class Plan:
    """What the config and the base predict: the tensors, and the config's targets the base lacks."""

    tensors: list[Planned]
    absent_targets: list[str]

    @property
    def trainable(self) -> int:
        return sum(t.params for t in self.tensors if t.trainable)


def plan(c: AdapterConfig, modules: list[Module], weights: dict[str, tuple[int, ...]]) -> Plan:
    """The adapter's tensors for a base of `modules` (`weights`: the base's parameter shapes by name)."""
    tensors: list[Planned] = []
    for m in modules:
        if adapted(c, m):
            tensors += _module_tensors(c, m)
            if m.kind == EMBEDDING:
                tensors.append(Planned(PREFIX + m.path + ".base_layer.weight", (m.in_features, m.out_features),
                                       m.path, "base_layer"))
    for parent, ms in expert_groups(c, modules).items():
        tensors += expert_tensors(c, parent, ms)
    tensors += _copies(c, modules, weights)
    return Plan(tensors, _absent(c, modules))


def _absent(c: AdapterConfig, modules: list[Module]) -> list[str]:
    """Config names that match no module of the base (peft refuses such a config)."""
    absent = []
    if isinstance(c.targets, tuple):
        absent += [t for t in c.targets if not any(m.path == t or m.path.endswith("." + t) for m in modules
                                                    if m.kind in (LINEAR, EMBEDDING))]
    absent += [t for t in c.target_parameters if not any(m.path == t or m.path.endswith("." + t) for m in modules
                                                         if m.kind == EXPERT_PARAMS)]
    absent += [t for t in c.modules_to_save
               if not any(re.match(rf"(^|.*\.){re.escape(t)}($|\..*)", m.path) for m in modules)]
    return absent


__all__ = ["AdapterConfig", "Plan", "Planned", "PREFIX", "adapted", "expert_groups", "expert_tensors", "parse_config",
           "pattern_value", "plan"]
