"""LoRA and DoRA adapters counted on the runtime modules, the way peft builds them.

An adapted matrix W (out × in) gains A (r × in) and B (out × r): r·(in + out) trainable parameters;
DoRA adds a magnitude vector of `out`; peft's `lora_bias` gives B a bias of `out`. An adapted
embedding gains r·(num_embeddings + embedding_dim). The routed experts' 3-D parameters (E, ...)
are adapted through peft's `target_parameters` with A (E·r × in) and B (out × E·r): r·E·(in + out),
without DoRA or lora_bias. Targets are matched as peft does, by the module's last name(s); "all-linear"
is every Linear module but the output embedding (so neither the experts' parameters nor a router
that is not an nn.Linear). `peft_line` prints peft's `print_trainable_parameters` line.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.errors import InspectError
from inspector.memory.modules import EMBEDDING, EXPERT_PARAMS, EXPERT_TARGETS, LINEAR, ROUTER_KIND, Module

ALL_LINEAR = "all-linear"

# peft's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING (peft.utils.constants) for the model
# types this package reads; a model type that is absent has no default there.
PEFT_DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "v_proj"), "mistral": ("q_proj", "v_proj"), "mixtral": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"), "qwen3": ("q_proj", "v_proj"), "gemma": ("q_proj", "v_proj"),
    "gemma2": ("q_proj", "v_proj"), "gemma3_text": ("q_proj", "v_proj"),
    "phi": ("q_proj", "v_proj", "fc1", "fc2"), "gpt2": ("c_attn",), "gpt_neox": ("query_key_value",),
    "llama4": ("q_proj", "v_proj"),
    "nemotron_h": ("q_proj", "k_proj", "v_proj", "o_proj"),  # (peft 0.21.2; granitemoehybrid, falcon_h1, lfm2: none)
    # gemma4: peft's default is the regex r".*language_model\..*\.(q_proj|v_proj)"; the towers' q/v are
    # ClippableLinear wrappers (their Linear's last name is "linear"), so the last names q_proj / v_proj
    # select the same modules, the language model's (tests/test_memory_references.py)
    "gemma4": ("q_proj", "v_proj"),
}

# peft's conversion of transformers-4 MoE target names for transformers 5 (peft.utils.
# transformers_weight_conversion, applied to the model types transformers maps onto these patterns):
# old name -> the fused parameter it now adapts; a pair fused into one parameter gets rank 2r.
_QWEN_MOE_V4 = {"gate": "gate.weight", "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj", "down_proj": "down_proj"}
PEFT_MOE_RENAMES: dict[str, dict[str, str]] = {
    "mixtral": {"gate": "gate.weight", "w1": "gate_up_proj", "w3": "gate_up_proj", "w2": "down_proj"},
    "qwen3_moe": _QWEN_MOE_V4, "olmoe": _QWEN_MOE_V4, "deepseek_v2": _QWEN_MOE_V4, "deepseek_v3": _QWEN_MOE_V4,
}


@dataclass(frozen=True)
class LoraOptions:
    rank: int = 16
    alpha: int = 32
    targets: tuple[str, ...] | None = None  # None: peft's default for the model type
    dora: bool = False
    bias: bool = False  # peft's lora_bias


@dataclass(frozen=True)
class Adapted:
    """The adapters of one target name, summed over every module it matches."""

    target: str
    modules: int
    trainable: int
    formula: str


@dataclass(frozen=True)
class LoraCount:
    targets: tuple[str, ...]
    adapted: tuple[Adapted, ...]
    trainable: int
    base_params: int
    default_note: str

    @property
    def all_params(self) -> int:
        """peft's "all params": the base model's parameters (a tied head once) plus the adapters."""
        return self.base_params + self.trainable


def peft_line(trainable: int, all_params: int) -> str:
    """peft's PeftModel.print_trainable_parameters, in its own words."""
    return f"trainable params: {trainable:,d} || all params: {all_params:,d} || trainable%: {100 * trainable / all_params:.4f}"


def targetable(modules: list[Module]) -> list[str]:
    """The target names this model has, in module order."""
    names: dict[str, None] = {}
    for m in modules:
        if m.kind in (LINEAR, EMBEDDING, EXPERT_PARAMS):
            names[m.leaf] = None
    return list(names)


def resolve_targets(model_type: str, name: str, modules: list[Module], o: LoraOptions) -> tuple[tuple[str, ...], str]:
    """The target names and a note on where they come from (peft's default, or none there)."""
    if o.rank < 1:
        raise InspectError(f"--lora-rank must be a positive integer, got {o.rank}")
    if o.targets is not None:
        if ALL_LINEAR in o.targets and len([t for t in o.targets if t not in EXPERT_TARGETS]) > 1:
            raise InspectError(f"--lora-targets: {ALL_LINEAR} stands alone (peft takes it as the whole value)")
        return o.targets, ""
    default = PEFT_DEFAULT_TARGETS.get(model_type)
    if default is None:
        raise InspectError(f"{name}: peft has no default LoRA targets for model_type {model_type!r}; pass "
                           f"--lora-targets (this model has: {', '.join(targetable(modules))}, or all-linear)")
    return default, f"peft's default targets for {model_type}: {', '.join(default)}"


def _shown_name(m: Module) -> str:
    """A module's target name: its last name, or for a bare index (a Sequential's `0`) the path up to
    two names above it (`merger.mlp.0`), which matches the same modules by path suffix."""
    parts = m.path.split(".")
    if not parts[-1].isdigit():
        return m.leaf
    named, start = 0, len(parts)
    while start > 0 and named < 2:
        start -= 1
        named += not parts[start].isdigit()
    return ".".join(parts[start:])


def _matches(m: Module, target: str) -> bool:
    return m.leaf == target or m.path == target or m.path.endswith("." + target)


ADAPTABLE = (LINEAR, EMBEDDING, EXPERT_PARAMS)


def _adapter(m: Module, o: LoraOptions, rank: int) -> int:
    if m.kind in (EXPERT_PARAMS, ROUTER_KIND):  # a parameter, adapted through target_parameters
        if o.dora or o.bias:
            raise InspectError(f"{m.path}: peft adapts parameters (target_parameters) without "
                               f"{'DoRA' if o.dora else 'lora_bias'}; drop --dora/--lora-bias or that target")
        return rank * m.experts * (m.in_features + m.out_features)
    if m.kind == EMBEDDING and o.bias:
        raise InspectError(f"{m.path}: peft's lora_bias is not supported for embeddings")
    return rank * (m.in_features + m.out_features) + (m.out_features if o.dora else 0) + \
        (m.out_features if o.bias else 0)


def _moe_renames(model_type: str, names: list[str]) -> tuple[list[str], dict[str, int]]:
    """peft's transformers-5 conversion of v4 MoE target names: (module targets left, parameter
    targets with their rank multiplier). Naming one half of a fused pair is an error there too."""
    renames = PEFT_MOE_RENAMES.get(model_type, {})
    moved: dict[str, str] = {}
    for name in names:
        old = next((k for k in renames if name == k or name.endswith("." + k)), None)
        if old is not None:
            moved[name] = old
    params: dict[str, int] = {}
    for new in dict.fromkeys(renames.values()):
        olds = [k for k, v in renames.items() if v == new]
        present = [k for k in olds if k in moved.values()]
        if 0 < len(present) < len(olds):
            missing = ", ".join(k for k in olds if k not in present)
            raise InspectError(f"--lora-targets: peft cannot adapt {', '.join(present)} without {missing} in "
                               f"{model_type}: transformers 5 fuses them into the experts' {new}")
        if present:
            params[new] = len(olds)
    return [t for t in names if t not in moved], params


def _param_modules(modules: list[Module], target: str) -> list[Module]:
    if target.endswith(".weight"):  # the router weight, "gate.weight"
        return [m for m in modules if m.kind == ROUTER_KIND and m.path.endswith("." + target[: -len(".weight")])]
    return [m for m in modules if m.kind == EXPERT_PARAMS and m.path.endswith("." + target)]


def count(model_type: str, name: str, modules: list[Module], base_params: int, o: LoraOptions) -> LoraCount:
    targets, note = resolve_targets(model_type, name, modules, o)
    if o.dora and o.bias:
        raise InspectError("peft does not support lora_bias with DoRA: pass --dora or --lora-bias, not both")
    explicit_params = [t for t in targets if t in EXPERT_TARGETS]
    names = [t for t in targets if t not in EXPERT_TARGETS]
    all_linear = names == [ALL_LINEAR]
    if all_linear:
        names = list(dict.fromkeys(_shown_name(m) for m in modules if m.kind == LINEAR and not m.output_embedding))
        names += [k for k in PEFT_MOE_RENAMES.get(model_type, {}) if k not in names]
    names, renamed = _moe_renames(model_type, names)
    if not all_linear:
        missing = [t for t in names if not any(_matches(m, t) for m in modules if m.kind in ADAPTABLE)]
        if missing:
            have = targetable(modules) + list(PEFT_MOE_RENAMES.get(model_type, {}))
            raise InspectError(f"{name}: no module {missing[0]!r} to adapt; it has: {', '.join(have)} "
                               "(or all-linear)")
    adapted = []
    for target in names:
        ms = [m for m in modules if (m.kind == LINEAR and not m.output_embedding) and _matches(m, target)] \
            if all_linear else [m for m in modules if m.kind in ADAPTABLE and _matches(m, target)
                                and next(t for t in names if _matches(m, t)) == target]
        adapted.append(Adapted(target, len(ms), sum(_adapter(m, o, o.rank) for m in ms), _formula(ms, o, o.rank)))
    params = {**renamed, **{t.split(".", 1)[1]: 1 for t in explicit_params if t.split(".", 1)[1] not in renamed}}
    for target, times in params.items():
        ms = _param_modules(modules, target)
        rank = o.rank * times
        adapted.append(Adapted(target + (f" (rank {rank}: peft fuses the pair)" if times > 1 else ""), len(ms),
                               sum(_adapter(m, o, rank) for m in ms), _formula(ms, o, rank)))
    notes = note
    if renamed:
        notes = (note + "; " if note else "") + (
            f"peft rewrites the transformers-4 names {', '.join(PEFT_MOE_RENAMES[model_type])} of {model_type} "
            "onto the parameters transformers 5 fuses (routed experts, router), so those names no longer adapt "
            "the dense or shared-expert MLPs")
    return LoraCount(targets, tuple(adapted), sum(a.trainable for a in adapted), base_params, notes)


def _formula(ms: list[Module], o: LoraOptions, rank: int) -> str:
    if not ms:
        return "0"
    m, times = ms[0], len(ms)
    extra = " + out" if (o.dora or o.bias) and m.kind in (LINEAR, EMBEDDING) else ""
    experts = f"{m.experts}·" if m.kind == EXPERT_PARAMS else ""
    return (f"{times} × [{experts}r·(in + out){extra}] = {times} × {experts}{rank}·({m.in_features} + "
            f"{m.out_features}){' + ' + str(m.out_features) if extra else ''}")


__all__ = ["ALL_LINEAR", "EXPERT_TARGETS", "LoraCount", "LoraOptions", "PEFT_DEFAULT_TARGETS", "count", "peft_line"]
