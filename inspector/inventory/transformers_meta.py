"""The inventory of a model with no native family, from transformers on the meta device.

For a `model_type` that `inspector.spec.families` does not describe, transformers (the optional
extra `pip install "llm-inspector[hf]"`) builds the model from its config.json on the meta device
(no memory, no weights, never a repo's own code), and every parameter and stored buffer becomes a
`WeightEntry`. transformers renames and fuses some tensors at load time; the names given here are
those its `save_pretrained` writes, obtained with its own reverse of those conversions
(`transformers.core_model_loading.revert_weight_conversion`), so `verify` can compare them with
checkpoints. Rows are grouped by role (embedding, attention, MLP, experts, norms, head, vision) from
the names; layers whose shapes differ get rows of their own, so rows always add up to the total.

Only this module imports torch and transformers for `params`/`verify`, and only when it is used.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
import time
import warnings
from dataclasses import dataclass
from typing import Any

from inspector.errors import InspectError, printable
from inspector.inventory.accounting import Accounting, Counter, Origin, rows_of, totals_of
from inspector.inventory.entry import (
    ATTN, EMBED, EXPERTS, HEAD, LM, MLP, POS_EMBED, ROUTER, SHARED_EXPERT, WeightEntry,
)
from inspector.inventory.meta_guard import bounded, safe_fields, sealed

EXTRA = 'pip install "llm-inspector[hf]"'
NORMS, MIXER, OTHER = "Norms", "Mixer (SSM, convolution or linear attention)", "Other"
PATCH_EMBED = "Patch / position embedding"

# Name patterns -> component, first match wins (vision towers and projectors of VLMs).
_COMPONENTS = (
    (re.compile(r"(multi_modal_projector|mm_projector|\.merger\.|connector|visual\.merger|vision_proj"
                r"|projector)"), "projector"),
    (re.compile(r"(vision|visual|image_encoder|vit\.|siglip|patch_embed|img_)"), "vision_encoder"),
)
# Name patterns -> row, first match wins; tried on the name with its layer index removed.
_GROUPS = (
    (re.compile(r"(^|\.)(lm_head|embed_out|output)\.(weight|bias)$|^output\.|(^|\.)lm_head\."), HEAD),
    (re.compile(r"(wpe|position_embedding|pos_embed|embed_positions)"), POS_EMBED),
    (re.compile(r"patch_embed|patch_embedding|class_embedding"), PATCH_EMBED),
    (re.compile(r"(embed_tokens|wte|word_embeddings|tok_embeddings|embed_in|embeddings?\.|embedding)"), EMBED),
    (re.compile(r"shared_experts?\.|shared_expert_gate|shared_mlp"), SHARED_EXPERT),
    (re.compile(r"\.experts?\.|experts_"), EXPERTS),
    (re.compile(r"\.(router|gate)\.(weight|bias|e_score_correction_bias)$|\.router\.|block_sparse_moe\.gate"),
     ROUTER),
    (re.compile(r"(norm|ln_\d|ln_f|ln_|layernorm)"), NORMS),
    (re.compile(r"(mixer|mamba|ssm|conv1d|\.conv\.|linear_attn|time_mix|rwkv|retention)"), MIXER),
    (re.compile(r"(attn|attention|q_proj|k_proj|v_proj|o_proj|qkv|query|key|value)"), ATTN),
    (re.compile(r"(mlp|ffn|feed_forward|fc1|fc2|c_fc|dense_h_to_4h|dense_4h_to_h|channel_mix|up_proj|down_proj)"),
     MLP),
)
_LAYER = re.compile(r"\.(?:layers|layer|h|blocks|block|decoder_layers|encoder_layers)\.(\d+)\.")
_EXPERT = re.compile(r"\.experts\.(\d+)\.")


@dataclass(frozen=True)
class MetaModel:
    """What `params` shows of a model counted through transformers (in place of a ModelSpec)."""

    name: str
    source: str
    model_type: str
    architecture: str
    class_name: str
    transformers_version: str
    seconds: float
    text: None = None  # no native text spec: no KV-cache estimate
    vision: None = None
    notes: tuple[str, ...] = ()
    saved_as: tuple[tuple[str, str, tuple[int, ...]], ...] = ()  # (in-memory name, saved name, saved shape)

    @property
    def is_vlm(self) -> bool:
        return False


def _imports(model_type: str, where: str):
    try:
        import torch
        import transformers
    except ImportError:
        raise InspectError(
            f"{where}: model_type {model_type!r} has no native family; to count it through transformers "
            f"on the meta device: {EXTRA}"
        ) from None
    return torch, transformers


@contextlib.contextmanager
def _quiet(transformers):
    """transformers warns about config oddities on stderr; the CLI's output is one report."""
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        transformers.logging.set_verbosity(level)


def _config(transformers, cfg: dict[str, Any], model_type: str, where: str):
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        raise InspectError(
            f"{where}: model_type {model_type!r} is neither a native family nor known to transformers "
            f"{transformers.__version__} (a repository's own code is never run)"
        )
    fields = {k: v for k, v in copy.deepcopy(cfg).items() if k != "model_type"}
    config_class = CONFIG_MAPPING[model_type]
    try:  # transformers' own JSON convention for infinities ({"__float__": "Infinity"}), then its reader
        return config_class.from_dict(config_class._decode_special_floats(fields))
    except Exception as e:  # transformers validates configs with many exception types
        raise InspectError(f"{where}: transformers cannot read this {model_type} config: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return printable(text[0][:200] if text else type(e).__name__)


def _build(transformers, config, cfg: dict[str, Any]):
    """The class config.json's `architectures` names (when transformers has it for this config),
    else what transformers' causal-LM, image-text-to-text or base auto class builds; on meta. A
    config with a vision part (Qwen3.5, dots3_note: VLMs that transformers' causal-LM mapping also
    lists, there as the LLM alone) builds the image-text-to-text class, which holds everything."""
    for arch in cfg.get("architectures") or []:
        cls = getattr(transformers, arch, None) if isinstance(arch, str) and arch.isidentifier() else None
        if isinstance(cls, type) and getattr(cls, "config_class", None) is type(config):
            return cls._from_config(config, attn_implementation="eager")
    autos = (transformers.AutoModelForCausalLM, transformers.AutoModelForImageTextToText, transformers.AutoModel)
    if getattr(config, "vision_config", None) is not None:
        autos = (autos[1], autos[0], autos[2])
    for auto in autos:
        if type(config) in auto._model_mapping:
            return auto.from_config(config, attn_implementation="eager")
    raise InspectError(f"transformers has no model class for {type(config).__name__}")


def _entry(name: str, shape: tuple[int, ...], parameter: bool = True, tied_to: str | None = None) -> WeightEntry:
    component = next((c for pattern, c in _COMPONENTS if pattern.search(name)), LM)
    layer_match, expert_match = _LAYER.search(name), _EXPERT.search(name)
    bare = _LAYER.sub(".N.", name)
    group = next((g for pattern, g in _GROUPS if pattern.search(bare)), OTHER)
    if group in (NORMS,) and layer_match is None:
        group = "Norm (outside the layers)"
    role = {EMBED: "embed", HEAD: "lm_head" if name.endswith("weight") else "lm_head.bias"}.get(group, name)
    return WeightEntry(name, shape, component, group, role, int(layer_match.group(1)) if layer_match else None,
                       stored=tied_to is None, tied_to=tied_to,
                       expert=int(expert_match.group(1)) if expert_match else None, parameter=parameter)


def _split_variants(entries: list[WeightEntry]) -> list[WeightEntry]:
    """Layers whose tensors differ in a row (dense and MoE layers, full and sliding attention of
    other widths) get a row each, named by their layers, so that a row's repeat is exact."""
    signature: dict[tuple[str, str, int | None], list] = {}
    for e in entries:
        if e.layer is not None:
            signature.setdefault((e.component, e.group, e.layer), []).append(
                (_LAYER.sub(".N.", _EXPERT.sub(".E.", e.name)), e.shape))
    variants: dict[tuple[str, str], dict[tuple, list[int]]] = {}
    for (component, group, layer), sig in signature.items():
        variants.setdefault((component, group), {}).setdefault(tuple(sig), []).append(layer)
    renamed: dict[tuple[str, str, int], str] = {}
    for (component, group), by_sig in variants.items():
        if len(by_sig) > 1:
            for layers in by_sig.values():
                for layer in layers:
                    renamed[(component, group, layer)] = f"{group} (layers {_ranges(layers)})"
    if not renamed:
        return entries
    return [WeightEntry(e.name, e.shape, e.component, renamed.get((e.component, e.group, e.layer), e.group), e.role,
                        e.layer, e.stored, e.tied_to, e.expert, e.parameter, e.optional) for e in entries]


def _ranges(layers: list[int]) -> str:
    out, start = [], None
    ordered = sorted(set(layers))
    for i, n in enumerate(ordered):
        if start is None:
            start = n
        if i + 1 == len(ordered) or ordered[i + 1] != n + 1:
            out.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(out)


def _revert(model, tensors: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    from transformers.core_model_loading import revert_weight_conversion

    return {k: tuple(v.shape) for k, v in revert_weight_conversion(model, dict(tensors)).items()}


def _size_keeping(model, tensors: dict[str, Any]) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple]]:
    """Reverted names of the tensors whose reversion keeps their size, and for the others (found by
    halving the set until one tensor is left) their in-memory name -> (saved name, saved shape)."""
    reverted = _revert(model, tensors)
    if sum(map(math.prod, reverted.values())) == sum(t.numel() for t in tensors.values()):
        return reverted, {}
    if len(tensors) == 1:
        (name, t), = tensors.items()
        saved = ", ".join(reverted)
        shape = next(iter(reverted.values())) if len(reverted) == 1 else (sum(map(math.prod, reverted.values())),)
        return {name: tuple(t.shape)}, {name: (saved, shape)}
    items = list(tensors.items())
    names, resized = {}, {}
    for half in (dict(items[: len(items) // 2]), dict(items[len(items) // 2:])):
        n, r = _size_keeping(model, half)
        names.update(n)
        resized.update(r)
    return names, resized


def _checkpoint_names(model, tensors: dict[str, Any]) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple],
                                                                str | None]:
    """Names and shapes as transformers' save_pretrained writes them (its reverse conversions), the
    shapes always those built in memory: a conversion that changes a tensor's size on saving
    (Inkling2 pads its LM head's vocabulary) keeps the in-memory name and shape, returned apart
    (in-memory name -> (saved name, saved shape)) with a note."""
    try:
        names, resized = _size_keeping(model, tensors)
    except Exception as e:  # a conversion that cannot run on the meta device: keep transformers' names
        return {k: tuple(v.shape) for k, v in tensors.items()}, {}, f"names as in memory ({_first_line(e)})"
    notes = [f"{name} {_dims(tensors[name].shape)} is counted as built in memory; transformers saves it as "
             f"{saved} {_dims(shape)}" for name, (saved, shape) in resized.items()]
    return names, resized, "; ".join(notes) or None


def _dims(shape) -> str:
    return "(" + ", ".join(f"{d:,}" for d in shape) + ")"


def meta_entries(model) -> tuple[list[WeightEntry], tuple[str, ...], dict[str, tuple]]:
    """Every parameter (a tied one once, the others marked tied) and every stored buffer; notes;
    the tensors that transformers saves at another size (in-memory name -> saved name and shape)."""
    first: dict[int, str] = {}
    tied: dict[str, str] = {}
    params: dict[str, Any] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            tied[name] = first[id(p)]
        else:
            first[id(p)] = name
            params[name] = p
    buffers = {k: v for k, v in model.state_dict().items() if k not in params and k not in tied}
    names, resized, note = _checkpoint_names(model, params)
    entries = [_entry(n, s) for n, s in names.items()]
    buffer_names, _, _ = _checkpoint_names(model, buffers) if buffers else ({}, {}, None)
    entries += [_entry(n, s, parameter=False) for n, s in buffer_names.items()]
    for name, source in tied.items():
        entries.append(_entry(name, tuple(params[source].shape), tied_to=source))
    place = {EMBED: 0, POS_EMBED: 0, PATCH_EMBED: 0, HEAD: 2}  # embeddings first, the head last
    entries.sort(key=lambda e: place.get(e.group, 1))  # stable: layers keep transformers' order
    return _split_variants(entries), (note,) if note else (), resized


def _moe_facts(config, entries: list[WeightEntry]) -> tuple[int, int | None, int] | None:
    experts = next((getattr(config, k) for k in ("num_local_experts", "num_experts", "n_routed_experts")
                    if isinstance(getattr(config, k, None), int)), 0)
    top_k = getattr(config, "num_experts_per_tok", None)
    layers = {e.layer for e in entries if e.group.startswith(EXPERTS)}
    if not experts or not isinstance(top_k, int) or not layers:
        return None
    return experts, top_k, len(layers)


@dataclass(frozen=True)
class MetaBuild:
    """A model transformers built from a guarded config on the meta device, with what built it: the one
    build `params`, `memory`, `flops`, `trace` and `report` share for a model with no native family."""

    torch: Any
    transformers: Any
    config: Any  # transformers' config object
    model: Any  # the nn.Module, on meta
    cfg: dict  # config.json's fields as they reached transformers (`safe_fields`)
    model_type: str
    where: str
    seconds: float

    @contextlib.contextmanager
    def room(self):
        """transformers quiet, offline and without Hub kernels: where a forward of the built model runs."""
        with _quiet(self.transformers), sealed():
            yield

    def failed(self, e: BaseException, what: str = "run") -> InspectError:
        """One line for an exception transformers raised running the model."""
        if isinstance(e, InspectError):
            return InspectError(f"{self.where}: {e}")
        return InspectError(f"{self.where}: transformers {self.transformers.__version__} cannot {what} "
                            f"{self.model_type} on the meta device: {_first_line(e)}")


_LAST: list[tuple[str, MetaBuild]] = []  # the last build, by its config's text: a command builds once


def _key(cfg: dict[str, Any], where: str) -> str | None:
    try:
        return json.dumps([cfg, where], sort_keys=True)
    except (TypeError, ValueError):
        return None


def build_meta(cfg: dict[str, Any], where: str) -> MetaBuild:
    """Build a config's model with transformers on the meta device: fields that name code dropped, sizes
    bounded, offline, eager attention (`safe_fields`, `bounded`, `sealed`); one line naming the `hf`
    extra without torch/transformers, one line when transformers cannot read or build it. The last
    build is kept (meta tensors: no memory) and given again for the same config, so `memory` (params,
    then the cache) and `flops` build the model once."""
    model_type = str(cfg.get("model_type"))
    cfg = safe_fields(cfg, where)  # before transformers sees it: nothing that names code or a repository
    bounded(cfg, where)  # before anything is built: no size that takes minutes to build
    key = _key(cfg, where)
    if key is not None and _LAST and _LAST[0][0] == key:
        return _LAST[0][1]
    torch, transformers = _imports(model_type, where)
    start = time.perf_counter()
    with _quiet(transformers), sealed():
        config = _config(transformers, cfg, model_type, where)
        try:
            with torch.device("meta"):
                model = _build(transformers, config, cfg)
        except InspectError as e:
            raise InspectError(f"{where}: {e}") from None
        except Exception as e:
            raise InspectError(
                f"{where}: transformers {transformers.__version__} cannot build {model_type} from this config: "
                f"{_first_line(e)}") from None
    built = MetaBuild(torch, transformers, config, model, cfg, model_type, where, time.perf_counter() - start)
    if key is not None:
        _LAST[:] = [(key, built)]
    return built


def meta_account(cfg: dict[str, Any], name: str, where: str, built: MetaBuild | None = None) -> Accounting:
    """`params` for a model with no native family: transformers builds it on the meta device (or `built`,
    the same build another command made)."""
    built = built or build_meta(cfg, where)
    start = time.perf_counter()
    with built.room():
        entries, notes, resized = meta_entries(built.model)
    seconds = built.seconds + time.perf_counter() - start
    transformers, model, model_type = built.transformers, built.model, built.model_type
    class_name = type(model).__name__
    architecture = (built.cfg.get("architectures") or [class_name])[0]
    meta = MetaModel(name, where, model_type, str(architecture), class_name, transformers.__version__, seconds,
                     notes=notes, saved_as=tuple((k, *v) for k, v in resized.items()))
    tied = any(e.tied_to for e in entries)
    totals = totals_of(entries, tied, 0, _moe_facts(built.config, [e for e in entries if e.parameter]))
    version = ".".join(transformers.__version__.split(".")[:2])
    return Accounting(meta, rows_of(entries), totals, entries, Origin(Counter.TRANSFORMERS, version))
