"""The inventory seen as the modules transformers builds from it (for LoRA, QLoRA and DeepSpeed).

What LoRA can adapt, what QLoRA quantizes, and which module is DeepSpeed's "largest layer".

transformers 5 holds a mixture-of-experts layer's routed experts as one module with two 3-D
parameters, `gate_up_proj` (E, 2·I, d) and `down_proj` (E, d, I), whatever the checkpoint's layout
(one tensor per expert, or already fused); these are not Linear modules, so peft adapts them only
through `target_parameters` and bitsandbytes leaves them in 16-bit. Routers are a plain parameter
holder in most families and an `nn.Linear` subclass in a few (LINEAR_ROUTERS). DeepSeek-V3's
multi-token-prediction layer is not built by transformers and is left out here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from inspector.inventory.accounting import Accounting
from inspector.inventory.entry import EMBED, EXPERTS, HEAD, LM, MTP, POS_EMBED, ROUTER, WeightEntry

LINEAR = "linear"
EMBEDDING = "embedding"
EXPERT_PARAMS = "experts"
ROUTER_KIND = "router"
OTHER = "other"

# transformers 5 model types whose router is an nn.Linear subclass (PhimoeTopKRouter, Llama4Router);
# the other MoE families hold the router weight as a bare parameter.
LINEAR_ROUTERS = frozenset({"phimoe", "llama4_text"})

# The names the runtime gives the experts' two parameters (what --lora-targets accepts for them).
EXPERT_TARGETS = ("experts.gate_up_proj", "experts.down_proj")


class Module(NamedTuple):
    """One module with its direct parameters.

    `leaf` is the name peft's target_modules match (`q_proj`); for the experts' 3-D parameters it
    is one of EXPERT_TARGETS. `in_features`/`out_features` are those of one matrix; `experts` is
    how many matrices a 3-D parameter stacks (1 for a Linear). A NamedTuple: a 100,000-layer model
    has a million of them.
    """

    path: str
    leaf: str
    kind: str
    params: int  # direct parameters (weight and bias; a tied head's weight included)
    in_features: int = 0
    out_features: int = 0
    experts: int = 1
    bias: bool = False
    layer: int | None = None
    output_embedding: bool = False
    component: str = LM
    router: bool = False  # an nn.Linear subclass, which bitsandbytes does not quantize


def _path(e: WeightEntry) -> str:
    if e.group == EXPERTS and ".experts." in e.name:
        return e.name[: e.name.index(".experts.") + len(".experts")]
    return e.name.rsplit(".", 1)[0]


def _kind(e: WeightEntry, linear_router: bool) -> str:
    if e.group == EXPERTS:
        return EXPERT_PARAMS
    if e.group == ROUTER:
        return LINEAR if linear_router else ROUTER_KIND
    if e.role in ("embed", "pos_embed") or e.group in (EMBED, POS_EMBED):
        return EMBEDDING
    if e.name.endswith(".weight") and len(e.shape) == 2:
        return LINEAR
    return OTHER


def runtime_modules(acc: Accounting) -> list[Module]:
    """Every module that holds parameters, in inventory order (the MTP module left out)."""
    t = acc.spec.text
    linear_router = t.model_type in LINEAR_ROUTERS
    grouped: dict[str, list[WeightEntry]] = {}
    for e in acc.entries:
        if e.parameter and e.component != MTP:
            grouped.setdefault(_path(e), []).append(e)
    out: list[Module] = []
    for path, entries in grouped.items():
        first = entries[0]
        kind = _kind(first, linear_router)
        params = math.prod(first.shape) if len(entries) == 1 else sum(math.prod(e.shape) for e in entries)
        if kind == EXPERT_PARAMS:
            out.extend(_expert_params(acc, path, first.layer, params))
            continue
        weight = next((e for e in entries if e.name.endswith(".weight") or e.role == "embed"), first)
        shape = weight.shape
        if kind in (LINEAR, ROUTER_KIND) and len(shape) == 2:
            transposed = first.component == LM and t.transposed_linears
            out_f, in_f = (shape[1], shape[0]) if transposed else shape
        elif kind == EMBEDDING:
            in_f, out_f = shape  # (num_embeddings, embedding_dim)
        else:
            in_f = out_f = 0
        out.append(Module(path, path.rsplit(".", 1)[-1], kind, params, in_f, out_f,
                          bias=any(e.name.endswith(".bias") for e in entries), layer=first.layer,
                          output_embedding=first.group == HEAD, component=first.component,
                          router=first.group == ROUTER))
    return out


def _expert_params(acc: Accounting, path: str, layer: int | None, params: int) -> list[Module]:
    """The routed experts of one layer as transformers holds them: two 3-D parameters.

    The first carries the experts module's whole parameter count (biases included), so that the
    largest-layer search sees the module; the second carries 0."""
    t = acc.spec.text
    m = t.moe
    d, w, e = t.hidden_size, m.expert_intermediate, m.num_experts
    return [
        Module(path + ".gate_up_proj", EXPERT_TARGETS[0], EXPERT_PARAMS, params, d, 2 * w, e, layer=layer),
        Module(path + ".down_proj", EXPERT_TARGETS[1], EXPERT_PARAMS, 0, w, d, e, layer=layer),
    ]


def largest_layer_params(modules: list[Module]) -> int:
    """DeepSpeed's "largest layer": the module with the most direct parameters (its
    `model_to_params`, which counts `m.parameters(recurse=False)` of every module)."""
    return max(m.params for m in modules)
