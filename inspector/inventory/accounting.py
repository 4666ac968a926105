"""Accounting: the inventory grouped into table rows, the totals block, and where the inventory came from.

Pure, no formatting. Rows follow the tables of *Implementations of Large Language Models*: one row per (component,
group), counted once per repetition (a layer, or a layer's expert). Totals distinguish what a
checkpoint stores (a tied LM head once) from the convention of its Table 1.4 (the LM head counted
separately), and embedding from non-embedding parameters (non-embedding = without the token
embedding and without the LM head, the model cards' definition). Mixture-of-experts models add
the parameters active per token; stored buffers and DeepSeek-V3's multi-token-prediction module
are listed but not counted as the model's parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from inspector.errors import whole_number
from inspector.inventory.entry import EXPERTS, MTP, WeightEntry
from inspector.inventory.model import inventory
from inspector.spec.model import ModelSpec
from inspector.spec.text import TextSpec
from inspector.units import WEIGHT_BYTES_PER_PARAM

KV_BYTES = 2  # the KV cache is counted in bf16
# Gated DeltaNet state widths as transformers 5.25 holds them (models/qwen3_next/modeling_qwen3_next.py):
# torch_chunk_gated_delta_rule casts q, k and v to float32 and builds the recurrent state in that dtype
# (4 B); the convolution state holds the layer's inputs in the model dtype (KV_BYTES, bf16). Measured equal
# to transformers' own cache tensors after a forward (tests/test_hybrid_families.py).
RECURRENT_STATE_BYTES = 4

COMPONENT_ORDER = ("vision_encoder", "projector", "audio_encoder", "language_model")

ACTIVE_DEFINITION = ("embedding, every weight outside the routed experts, the shared experts, "
                     "top-k of the routed experts in each MoE layer, and the LM head")


@dataclass(frozen=True)
class Row:
    """One table row: a group of tensors repeated `repeat` times (once per layer, or per expert)."""

    component: str
    name: str
    repeat: int
    weights: tuple[tuple[str, tuple[int, ...]], ...]  # (name template, shape) of one repetition
    params: int  # per repetition
    stored: bool = True  # False: a tied LM head, not stored in the checkpoint
    note: str = ""
    parameter: bool = True  # False: a stored buffer, not a parameter

    @property
    def total(self) -> int:
        return self.params * self.repeat


@dataclass(frozen=True)
class MoETotals:
    """Parameters of the mixture of experts: routed experts in all, and those a token uses."""

    active_params: int
    routed_expert_params: int
    moe_layers: int
    experts: int
    top_k: int
    definition: str = ACTIVE_DEFINITION


@dataclass(frozen=True)
class Totals:
    total_params: int
    total_params_untied: int
    embedding_params: int
    non_embedding_params: int
    components: dict[str, int]
    weight_bytes: dict[str, float]
    kv_cache_bytes_per_token: int
    tied_embeddings: bool
    moe: MoETotals | None = None
    extra: dict[str, int] = field(default_factory=dict)  # stored beside the model, not counted


@dataclass(frozen=True)
class StoredCheckpoint:
    """What a checkpoint file holds beside the logical counts: bytes per stored dtype/quant type."""

    file: str
    nbytes: int
    dtypes: tuple[tuple[str, int, int, int], ...]  # (dtype, tensors, logical parameters, bytes)


class Counter(Enum):
    """What listed an inventory's tensors."""

    NATIVE = "native"  # a native family (inspector.inventory.model)
    TRANSFORMERS = "transformers"  # transformers on the meta device (inspector.inventory.transformers_meta)


@dataclass(frozen=True)
class Origin:
    """Where an inventory came from: `name` is the native family's model_type, or the version of
    transformers (major.minor) that built the model on the meta device."""

    counter: Counter
    name: str

    @property
    def native(self) -> bool:
        return self.counter is Counter.NATIVE

    def __str__(self) -> str:
        if self.native:
            return f"native family {self.name}"
        return f"inventory from transformers {self.name} on the meta device (no native family)"


@dataclass(frozen=True)
class Accounting:
    """Rows and totals of a model, and the `origin` of its inventory. `spec` is a ModelSpec for native
    families; for a model counted through transformers (inspector.inventory.transformers_meta) it is a
    MetaModel, whose `text` is None (no KV-cache estimate)."""

    spec: ModelSpec
    rows: list[Row]
    totals: Totals
    entries: list[WeightEntry] = field(repr=False)
    origin: Origin
    stored: StoredCheckpoint | None = None  # the checkpoint file named as MODEL, when one was


    def kv_cache_bytes(self, context: int, batch: int = 1, dtype_bytes: int = KV_BYTES) -> int | None:
        """KV cache bytes for `context` tokens: sliding-window layers hold at most their window."""
        context, batch = whole_number(context, "context", 1, 2**40), whole_number(batch, "batch", 1, 2**40)
        dtype_bytes = whole_number(dtype_bytes, "dtype_bytes", 1, 64)
        t = self.spec.text
        if t is None:
            return None
        return batch * sum(kv_bytes_per_token_layer(t, dtype_bytes, i) * min(context, t.window(i) or context)
                           for i in t.kv_layers)


@dataclass(frozen=True)
class LayerState:
    """What one linear-attention layer keeps per sequence: its convolution and recurrent states."""

    layers: int  # how many layers keep it
    conv_shape: tuple[int, int]  # (channels, positions)
    recurrent_shape: tuple[int, ...]  # GDN (value heads, key head dim, value head dim); Mamba2 (heads, head dim,
    # state size); () for a short convolution (LFM2), which keeps no recurrent state
    conv_bytes: int  # per layer and sequence
    recurrent_bytes: int

    @property
    def bytes_per_layer(self) -> int:
        return self.conv_bytes + self.recurrent_bytes

    @property
    def bytes_per_sequence(self) -> int:
        return self.layers * self.bytes_per_layer


def linear_state(t: TextSpec, conv_bytes: int = KV_BYTES,
                 recurrent_bytes: int = RECURRENT_STATE_BYTES) -> LayerState | None:
    """The fixed per-sequence state of a hybrid model's linear-attention layers (None: it has none)."""
    g = t.linear
    if g is None or not g.layers:
        return None
    return LayerState(len(g.layers), (g.conv_dim, g.conv_kernel), g.recurrent_shape(),
                      g.conv_state_elements() * conv_bytes, g.recurrent_state_elements() * recurrent_bytes)


def kv_line(t: TextSpec) -> str:
    """"12 of 48 layers keep a KV cache", or "all 32 layers keep a KV cache"."""
    kv, layers = len(t.kv_layers), t.num_layers
    return f"all {layers} layers keep a KV cache" if kv == layers else f"{kv} of {layers} layers keep a KV cache"


def kv_bytes_per_token_layer(t: TextSpec, dtype_bytes: int = KV_BYTES, layer: int | None = None) -> int:
    """What one token costs in one layer's cache: K and V per kv head, or MLA's compressed latent
    (kv_lora_rank + the shared RoPE key), which is all an MLA cache needs to hold, plus DeepSeek-V3.2's
    indexer key (index_head_dim), all at `dtype_bytes` as transformers' cache holds them. Gemma 4's layers
    differ (its full-attention layers' global_head_dim and kv heads): `layer` picks one (None: the spec's plain
    fields, its sliding layers')."""
    if t.mla is not None:  # DeepSeek-V3.2 adds its indexer's key (transformers' DynamicIndexedLayer.indexer_keys)
        indexer = t.indexer.head_dim if t.indexer is not None else 0
        return (t.mla.kv_lora_rank + t.mla.qk_rope_head_dim + indexer) * dtype_bytes
    if layer is not None:
        return 2 * t.layer_kv_heads(layer) * t.layer_head_dim(layer) * dtype_bytes
    return 2 * t.num_kv_heads * t.head_dim * dtype_bytes


def kv_bytes_per_token(t: TextSpec, dtype_bytes: int = KV_BYTES) -> int:
    """One token's K and V over every layer that keeps a cache (KV-shared and linear layers keep none)."""
    return sum(kv_bytes_per_token_layer(t, dtype_bytes, i) for i in t.kv_layers)


def _template(e: WeightEntry) -> str:
    """The entry's name with its layer index as N and expert index as E."""
    name = e.name
    if e.layer is not None:
        name = re.sub(rf"\.{e.layer}\.", ".N.", name, count=1)
    if e.expert is not None:
        name = re.sub(rf"\.{e.expert}\.", ".E.", name, count=1)
    return name


def rows_of(entries: list[WeightEntry]) -> list[Row]:
    """Group entries into rows; a row's weights are those of its first repetition. Linear time."""
    first: dict[tuple[str, str], tuple] = {}
    weights: dict[tuple[str, str], list[WeightEntry]] = {}
    repeats: dict[tuple[str, str], set] = {}
    for e in entries:
        key, rep = (e.component, e.group), (e.layer, e.expert)
        if key not in first:
            first[key], weights[key], repeats[key] = rep, [], set()
        repeats[key].add(rep)
        if rep == first[key]:
            weights[key].append(e)
    rows = []
    for key, group in weights.items():
        tied = next((e.tied_to for e in group if e.tied_to), None)
        rows.append(Row(
            component=key[0], name=key[1], repeat=len(repeats[key]),
            weights=tuple((_template(e), e.shape) for e in group),
            params=sum(e.numel for e in group), stored=all(e.stored for e in group),
            note=f"tied to {tied}: counted once, not stored" if tied else "",
            parameter=all(e.parameter for e in group),
        ))
    return rows


def moe_totals(entries: list[WeightEntry], total: int, experts: int, top_k: int | None,
               moe_layers: int) -> MoETotals | None:
    """Routed-expert parameters and those a token uses: all but (experts - top_k) / experts of them."""
    if not experts or top_k is None:
        return None
    routed = sum(e.numel for e in entries if e.group == EXPERTS and e.component != MTP and e.parameter)
    inactive = routed * (experts - top_k) // experts
    return MoETotals(total - inactive, routed, moe_layers, experts, top_k)


def totals_of(entries: list[WeightEntry], tied: bool, kv_per_token: int,
              moe: tuple[int, int | None, int] | None = None) -> Totals:
    """The totals block of an inventory; `moe` is (experts, top_k, MoE layers) when the model has experts."""
    untied = embedding = mtp = 0
    by_component: dict[str, int] = {}
    for e in entries:  # one pass: a 100,000-layer model has a million entries
        if not e.parameter:
            continue
        size = e.numel
        if e.component == MTP:
            mtp += size
            continue
        untied += size
        if e.stored:
            by_component[e.component] = by_component.get(e.component, 0) + size
            if e.role in ("embed", "lm_head"):
                embedding += size
    stored = sum(by_component.values())
    components = {name: by_component.get(name, 0) for name in COMPONENT_ORDER
                  if by_component.get(name) or name == "language_model"}
    return Totals(
        total_params=stored,
        total_params_untied=untied,
        embedding_params=embedding,
        non_embedding_params=stored - embedding,
        components=components,
        weight_bytes={k: stored * v for k, v in WEIGHT_BYTES_PER_PARAM.items()},
        kv_cache_bytes_per_token=kv_per_token,
        tied_embeddings=tied,
        moe=moe_totals(entries, stored, *moe) if moe else None,
        extra={MTP: mtp} if mtp else {},
    )


def account(spec: ModelSpec) -> Accounting:
    entries = inventory(spec)
    t = spec.text
    moe = (t.moe.num_experts, t.moe.top_k, len(t.moe.layers)) if t.moe is not None else None
    totals = totals_of(entries, t.tie_embeddings, kv_bytes_per_token(t), moe)
    return Accounting(spec, rows_of(entries), totals, entries, Origin(Counter.NATIVE, t.model_type))
