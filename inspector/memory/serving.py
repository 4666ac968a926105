"""Serving like vLLM: weights, an activation allowance, and a paged KV cache in what is left.

vLLM (v1) gives the KV cache `total × gpu_memory_utilization − weights − activation peak −
non-torch memory`, cuts it into blocks of `block_size` tokens (one block holds, per layer,
2 × block_size × kv_heads × head_dim × dtype bytes; an MLA layer holds block_size × (kv_lora_rank +
qk_rope_head_dim) × dtype), and logs what that buys: "GPU KV cache size: N tokens" and "Maximum
concurrency for L tokens per request: X.XXx". Layers of one attention kind share a block table;
with both sliding-window and full layers, vLLM's hybrid allocator forms groups of equally many
layers, and a sliding layer holds at most its window (plus the tokens of one scheduler step).
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.errors import InspectError
from inspector.inventory.accounting import Accounting, kv_bytes_per_token_layer
from inspector.inventory.entry import EMBED, HEAD, LM, MTP, POS_EMBED, ROUTER, ROUTER_BIAS, WeightEntry
from inspector.memory.activations import Term, prefill_terms
from inspector.memory.gpus import GIB, Gpu
from inspector.memory.quant import FORMATS, KV_BYTES, quantized_bytes
from inspector.units import n

_UNQUANTIZED_GROUPS = (EMBED, POS_EMBED, HEAD, ROUTER, ROUTER_BIAS)


@dataclass(frozen=True)
class ServeOptions:
    dtype: str = "bf16"
    kv_dtype: str = "bf16"
    group_size: int = 128
    block_size: int = 16
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None  # None: the config's max_position_embeddings
    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 256
    tp: int = 1
    overhead_bytes: int = GIB // 2
    weights_bytes: int | None = None  # stored bytes of a real checkpoint (--weights)
    weights_source: str = ""


@dataclass(frozen=True)
class KvGroup:
    """One KV cache group of vLLM: layers of one attention kind sharing a block table."""

    kind: str  # "full" | "sliding"
    window: int | None
    layers: tuple[int, ...]


@dataclass(frozen=True)
class Serving:
    options: ServeOptions
    gpu: Gpu
    max_model_len: int
    usable: int  # total × gpu_memory_utilization
    weights: Term
    layer_peak: Term
    logits: Term
    all_logits: Term  # a transformers forward keeping every position's logits
    overhead: Term
    kv_available: int
    token_layer_bytes: int  # one token in one layer, on one GPU
    page_bytes: int  # one block of one layer
    groups: tuple[KvGroup, ...]
    group_size: int
    num_blocks: int
    kv_tokens: int
    concurrency: float
    largest_context: int  # the longest request the KV memory holds, up to max_model_len
    one_request_bytes: int  # KV memory one request of max_model_len needs

    @property
    def activations(self) -> int:
        return max(self.layer_peak.bytes, self.logits.bytes)

    @property
    def fixed(self) -> int:
        """Everything but the KV cache."""
        return self.weights.bytes + self.activations + self.overhead.bytes


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


# --------------------------------------------------------------------------- weights


def _quantized(e: WeightEntry) -> bool:
    return (e.component == LM and e.group not in _UNQUANTIZED_GROUPS and len(e.shape) >= 2
            and not e.name.endswith(".bias"))


def weight_term(acc: Accounting, o: ServeOptions) -> Term:
    """The weights one GPU holds: matrices split over `tp`, 1-D tensors replicated."""
    if o.weights_bytes is not None:
        return Term("Weights", cdiv(o.weights_bytes, o.tp),
                    f"stored bytes of {o.weights_source}" + (f" / {o.tp} GPUs" if o.tp > 1 else ""))
    split = replicated = quantized = 0
    for e in acc.entries:
        if not (e.parameter and e.stored and e.component != MTP):
            continue
        size = quantized_bytes(e.numel, e.shape[-1], o.dtype, o.group_size) if _quantized(e) else 2 * e.numel
        quantized += e.numel if _quantized(e) else 0
        if len(e.shape) >= 2:
            split += size
        else:
            replicated += size
    rule = FORMATS[o.dtype].rule.format(group=o.group_size)
    formula = (f"{n(quantized)} layer weights at {o.dtype} ({rule}); the other "
               f"{n(acc.totals.total_params - quantized)} at 2 B" if o.dtype not in ("bf16", "fp16")
               else f"{n(acc.totals.total_params)} × 2 B")
    if o.tp > 1:
        formula += f"; matrices / {o.tp} GPUs, norms replicated"
    return Term(f"Weights ({o.dtype})", cdiv(split, o.tp) + replicated, formula)


# --------------------------------------------------------------------------- KV cache layout


def token_layer_bytes(acc: Accounting, o: ServeOptions) -> int:
    """One token of one layer on one GPU: kv heads split over tp (at least one), an MLA latent whole."""
    t = acc.spec.text
    width = KV_BYTES[o.kv_dtype]
    if t.mla is not None:
        return kv_bytes_per_token_layer(t, width)
    return 2 * max(1, t.num_kv_heads // o.tp) * t.head_dim * width


def check_tp(acc: Accounting, tp: int) -> None:
    t = acc.spec.text
    if t.num_heads % tp:
        raise InspectError(f"{acc.spec.name}: num_attention_heads ({t.num_heads}) is not divisible by "
                           f"{tp} GPUs (tensor parallel size)")
    if t.mla is None and t.num_kv_heads % tp and tp % t.num_kv_heads:
        raise InspectError(f"{acc.spec.name}: num_key_value_heads ({t.num_kv_heads}) and {tp} GPUs "
                           "(tensor parallel size): neither divides the other")


def kv_groups(acc: Accounting) -> tuple[tuple[KvGroup, ...], int]:
    """vLLM's KV cache groups and the number of layers per group."""
    t = acc.spec.text
    by_kind: dict[tuple[str, int | None], list[int]] = {}
    for i in range(t.num_layers):
        w = None if t.mla is not None else t.window(i)
        by_kind.setdefault(("sliding", w) if w else ("full", None), []).append(i)
    if len(by_kind) == 1:
        (kind, w), layers = next(iter(by_kind.items()))
        return (KvGroup(kind, w, tuple(layers)),), len(layers)
    sizes = [len(v) for v in by_kind.values()]
    size = max(sizes) if max(sizes) < min(sizes) * 1.25 else min(sizes)
    groups = [KvGroup(kind, w, tuple(layers[i:i + size]))
              for (kind, w), layers in by_kind.items() for i in range(0, len(layers), size)]
    return tuple(groups), size


def layer_max_bytes(g: KvGroup, length: int, page: int, o: ServeOptions) -> int:
    """What one layer of group `g` needs for one request of `length` tokens."""
    if g.kind == "sliding":
        tokens = min(g.window - 1 + o.max_num_batched_tokens, length)
        return (cdiv(tokens, o.block_size) + 1) * page
    return cdiv(length, o.block_size) * page


def request_bytes(groups: tuple[KvGroup, ...], length: int, page: int, o: ServeOptions) -> int:
    return sum(len(g.layers) * layer_max_bytes(g, length, page, o) for g in groups)


def largest_context(groups, page: int, available: int, o: ServeOptions, limit: int) -> int:
    """The longest request (≤ limit) whose KV cache fits in `available` (vLLM's binary search)."""
    if request_bytes(groups, 1, page, o) > available:
        return 0
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if request_bytes(groups, mid, page, o) <= available else (lo, mid - 1)
    return lo


def concurrency(groups, size: int, page: int, num_blocks: int, length: int, o: ServeOptions) -> float:
    per_request = size * sum(layer_max_bytes(g, length, page, o) for g in groups)
    blocks = cdiv(per_request, page * size)
    return num_blocks / blocks


# --------------------------------------------------------------------------- the plan


def plan(acc: Accounting, gpu: Gpu, o: ServeOptions) -> Serving:
    t = acc.spec.text
    check_tp(acc, o.tp)
    length = o.max_model_len or t.max_position_embeddings
    usable = int(gpu.bytes * o.gpu_memory_utilization)
    weights = weight_term(acc, o)
    step = o.max_num_batched_tokens
    layer_peak, logits = prefill_terms(t, step, min(step, o.max_num_seqs), o.tp)
    _, all_logits = prefill_terms(t, step, step, o.tp)
    overhead = Term("Non-torch memory (CUDA context, NCCL, cuBLAS workspaces)", o.overhead_bytes,
                    "allowance, --overhead-gib")
    groups, size = kv_groups(acc)
    token_bytes = token_layer_bytes(acc, o)
    page = o.block_size * token_bytes
    available = usable - weights.bytes - max(layer_peak.bytes, logits.bytes) - overhead.bytes
    num_blocks = max(0, available // page // size)
    return Serving(
        o, gpu, length, usable, weights, layer_peak, logits, all_logits, overhead, available, token_bytes, page,
        groups, size, num_blocks, num_blocks // len(groups) * o.block_size,
        concurrency(groups, size, page, num_blocks, length, o),
        largest_context(groups, page, available, o, length) if available > 0 else 0,
        request_bytes(groups, length, page, o),
    )
