"""Serving like vLLM: weights per rank, the profile-run peak, and a paged KV cache in what is left.

vLLM (v1) gives the KV cache `torch's total × gpu_memory_utilization − weights − activation peak −
non-torch memory` (the terms come from inspector.memory.vllm, each marked exact, calibrated or
assumed; the weights per rank from inspector.memory.parallel at the checkpoint's stored widths),
cuts it into blocks of `block_size` tokens (one block holds, per layer,
2 × block_size × kv_heads × head_dim × dtype bytes; an MLA layer holds block_size × (kv_lora_rank +
qk_rope_head_dim) × dtype), and logs what that buys: "GPU KV cache size: N tokens" and "Maximum
concurrency for L tokens per request: X.XXx". Layers of one attention kind share a block table;
with both sliding-window and full layers, vLLM's hybrid allocator forms groups of equally many
layers, and a sliding layer holds at most its window (plus the tokens of one scheduler step).
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from inspector.inventory.accounting import Accounting, kv_bytes_per_token_layer
from inspector.inventory.entry import EMBED, HEAD, LM, MTP, POS_EMBED, ROUTER, ROUTER_BIAS, WeightEntry
from inspector.memory.activations import Term, prefill_terms
from inspector.memory.gpus import Gpu
from inspector.memory.parallel import Layout, RankPlan, RankShare, check_layout, rank_plan
from inspector.memory.quant import FORMATS, KV_BYTES, quantized_bytes
from inspector.memory.vllm import Device, ModelDims, VllmBudget, VllmSettings, vllm_budget
from inspector.units import human_bytes, n

_UNQUANTIZED_GROUPS = (EMBED, POS_EMBED, HEAD, ROUTER, ROUTER_BIAS)


class ServeOptions(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    dtype: str = "bf16"
    kv_dtype: str = "bf16"
    group_size: int = 128
    block_size: int = 16
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None  # None: the config's max_position_embeddings
    max_num_batched_tokens: int | None = None  # None: vLLM's default for the engine and the GPU
    max_num_seqs: int | None = None
    tp: int = 1
    pp: int = 1
    ep: bool = False
    engine: str = "vllm-v1"
    vllm_version: str | None = None  # --vllm-version (vllm_versions); None: the newest modelled with the engine
    enforce_eager: bool = False
    kv_cache_memory: int | None = None  # --kv-cache-memory BYTES
    overhead_bytes: int | None = None  # --overhead-gib: the non-torch figure given; None: vLLM's measured one
    weights_bytes: int | None = None  # a checkpoint's stored total, split evenly (--weights not matching the config)
    weights_source: str = ""
    dtype_given: bool = False  # --dtype given: a what-if width for the layers' matrices
    stored: StoredWidths | None = None  # widths per tensor: the checkpoint's headers, else its quantization_config
    weights_notes: tuple[str, ...] = ()  # why the headers at hand were not used per tensor
    images_per_prompt: int | None = None  # --images-per-prompt (vLLM's --limit-mm-per-prompt image=N)
    largest_image: Any = None  # a VLM's largest image (inspector.image ImageTokens); None: no encoder profile
    # what vLLM allocates at load beyond the checkpoint, per rank: (layout, stage layers) -> vllm_load.LoadExtra
    # records (inspector.memory.vllm_load.load_extras bound to the model's config and the GPU); None: nothing
    extras: Callable[[Layout, tuple[int, int] | None], tuple[Any, ...]] | None = None

    @property
    def layout(self) -> Layout:
        return Layout(tp=self.tp, pp=self.pp, ep=self.ep)

    @property
    def gpus(self) -> int:
        return self.tp * self.pp


@dataclass(frozen=True)
class StoredWidths:
    """Bytes per element of each stored tensor (quantized widths are fractional: packed values and
    their scales over the tensor's elements), what it is called, and where it comes from: the
    checkpoint's headers (inspector.memory.headers) or config.json's quantization_config."""

    widths: dict[str, float]
    label: str  # "mxfp4 + BF16", ...
    default: float = 2.0
    source: str = "config.json's quantization_config"  # or "safetensors headers of PATH" / "... of hub:ID"
    notes: tuple[str, ...] = ()
    # per tensor, bytes of parts a rank keeps whole when TP splits the tensor along (in, out): see kept_bytes
    kept: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __call__(self, e: WeightEntry) -> float:
        return self.widths.get(e.name, self.default)

    def kept_whole(self, e: WeightEntry, axis: str) -> float:
        """Bytes of `e`'s parts that every rank holding a share keeps whole when TP splits `axis`."""
        by_in, by_out = self.kept.get(e.name, (0.0, 0.0))
        return by_in if axis == "in" else by_out

    def __hash__(self) -> int:
        return id(self)


def kept_bytes(shape: tuple[int, ...], part: str, part_shape: tuple[int, ...], nbytes: int,
               desc_act: bool = False) -> tuple[int, int]:
    """(bytes kept whole when TP splits the input dimension, when it splits the output) of one stored part
    of a Linear weight of `shape` (out, in), as vLLM's quantized linear methods allocate them per rank:
    a scalar (per-tensor scale) whole either way; a vector along the input only (GPTQ's `g_idx`: a
    RowvLLMParameter of input_size_per_partition, vllm/model_executor/layers/quantization/gptq.py)
    whole under a column split; a vector along the output only (a per-channel scale, (out,) or (out, 1))
    whole under a row split; with GPTQ's desc_act, scales and qzeros stay whole under a row split
    (gptq.py: scale_and_zero_input_dim is None for act-order row-parallel layers). Packed weights and
    group scales (both dimensions) split with the weight."""
    if len(shape) != 2:
        return 0, 0
    out, inp = shape
    size = math.prod(part_shape)
    dims = [d for d in part_shape if d != 1]
    if size == 1:
        return nbytes, nbytes
    if desc_act and part.endswith(("scales", "qzeros")):
        return nbytes, 0
    if len(dims) != 1:
        return 0, 0
    if part.endswith("g_idx") or (dims[0] == inp and dims[0] != out):
        return 0, nbytes
    return (nbytes, 0) if dims[0] == out else (0, 0)


def stored_widths(acc: Accounting, cfg: dict, sw) -> StoredWidths:
    """StoredWidths of stored.stored_weights' result `sw`: each tensor's loaded parts' bytes over its
    elements (parts vLLM does not load, e.g. AutoGPTQ's zero biases, left out), and the parts kept whole
    when TP splits the tensor (kept_bytes)."""
    numels = {e.name: e.numel for e in acc.entries}
    shapes = {e.name: e.shape for e in acc.entries}
    qc = cfg.get("quantization_config")
    desc_act = isinstance(qc, dict) and qc.get("desc_act") is True
    widths, kept = {}, {}
    for st in sw.tensors:
        numel = numels.get(st.name, 0)
        if numel:
            widths[st.name] = sum(p.nbytes for p in st.parts if p.loaded) / numel
            sides = [kept_bytes(shapes[st.name], p.name, p.shape, p.nbytes, desc_act) for p in st.parts if p.loaded]
            if any(a or b for a, b in sides):
                kept[st.name] = (sum(a for a, _ in sides), sum(b for _, b in sides))
    return StoredWidths(widths, " + ".join(sw.by_label()), kept=kept)


class KvGroup(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """One KV cache group of vLLM: layers of one attention kind sharing a block table."""

    kind: str  # "full" | "sliding"
    window: int | None
    layers: tuple[int, ...]


class Serving(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
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
    budget: VllmBudget  # vLLM's terms, each marked exact / calibrated / assumed / input
    ranks: RankPlan
    weights_status: str = "exact"
    load_extras: tuple[Any, ...] = ()  # vllm_load.LoadExtra records counted in `weights` (per rank)
    hybrid: Any = None  # vllm_hybrid.HybridPlan of a spec with Gated DeltaNet layers (state pages), else None

    @property
    def activations(self) -> int:
        return self.budget.term("activation_peak").bytes

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


def entry_width(o: ServeOptions) -> tuple[Callable[[WeightEntry], float], str, str]:
    """Bytes per element of each tensor as vLLM loads it, the rule in words, and its status: the
    checkpoint's stored widths (config.json's quantization_config) by default, --dtype as a what-if."""
    if o.dtype_given or o.stored is None:
        rule = FORMATS[o.dtype].rule.format(group=o.group_size)

        def width(e: WeightEntry) -> float:
            if _quantized(e):
                return quantized_bytes(e.numel, e.shape[-1], o.dtype, o.group_size) / e.numel
            return 2

        what = (f"--dtype {o.dtype} (what-if): layer matrices at {rule}, the rest at 2 B"
                if o.dtype not in ("bf16", "fp16") else f"--dtype {o.dtype}: 2 B per parameter" if o.dtype_given
                else "2 B per parameter (no quantization_config: vLLM's --dtype auto loads 16 bits)")
        return width, what, "exact" if o.dtype in ("bf16", "fp16") else "assumed (--dtype)"
    return o.stored, f"as stored ({o.stored.label}; {o.stored.source})", "exact"


def weights_source(o: ServeOptions) -> str:
    """Where the weights' widths come from, in words (the report's and the JSON's `weights_source`)."""
    if o.dtype_given:
        return f"--dtype {o.dtype} (what-if)"
    if o.weights_bytes is not None:
        return f"stored total of {o.weights_source}, split evenly"
    if o.stored is not None:
        return o.stored.source
    return "config.json (no quantization_config: 16 bits per parameter)"


def weights_status(o: ServeOptions, status: str) -> str:
    if o.weights_bytes is not None:
        return "exact" if o.gpus == 1 else "assumed (even split: the headers do not match config.json)"
    return status


def weight_term(acc: Accounting, o: ServeOptions, rank: RankShare, what: str, extras: tuple = ()) -> Term:
    """The weights of the rank that decides the KV cache (vLLM's per-rank split), or a checkpoint's
    stored total split evenly over the GPUs (--weights whose tensors do not match the config), plus what
    vLLM allocates at load beyond the checkpoint (`extras`: RoPE caches, quantization transforms)."""
    added = sum(x.bytes for x in extras)
    loaded = "".join(f"; {'+' if x.bytes >= 0 else '−'} {human_bytes(abs(x.bytes))} {x.name} ({x.status})"
                     for x in extras)
    if o.weights_bytes is not None:
        return Term("Weights", cdiv(o.weights_bytes, o.gpus) + added,
                    f"stored bytes of {o.weights_source}" + (f" / {o.gpus} GPUs" if o.gpus > 1 else "") + loaded)
    formula = f"{n(acc.totals.total_params)} parameters, {what}"
    if o.gpus > 1:
        formula += (f"; rank PP {rank.pp_rank} TP {rank.tp_rank} of {o.layout.label()} (the fewest KV blocks): "
                    "vocab-parallel embedding and head, kv heads and norms replicated as vLLM loads them")
    return Term("Weights", round(rank.weights_bytes) + added, formula + loaded)


def deciding_rank(acc: Accounting, o: ServeOptions, ranks: RankPlan, usable_less_fixed: int) -> RankShare:
    """The rank with the fewest KV blocks (vLLM takes the minimum over ranks): per stage the rank with
    the most weights, then the stage whose budget left over its layers' KV per block is smallest."""
    def blocks(r: RankShare) -> float:
        w = cdiv(o.weights_bytes, o.gpus) if o.weights_bytes is not None else r.weights_bytes
        return (usable_less_fixed - w) / max(1, r.kv_bytes_per_token)

    return min(ranks.ranks, key=lambda r: (blocks(r), -r.weights_bytes))


# --------------------------------------------------------------------------- KV cache layout


def token_layer_bytes(acc: Accounting, o: ServeOptions) -> int:
    """One token of one layer on one GPU: kv heads split over tp (at least one), an MLA latent whole."""
    t = acc.spec.text
    width = KV_BYTES[o.kv_dtype]
    if t.mla is not None and t.indexer is not None:  # DeepSeek-V3.2: the latent, then vLLM's own indexer cache
        return vllm_dsa_latent_bytes(t, width) + vllm_indexer_bytes(t)
    if t.mla is not None:
        return kv_bytes_per_token_layer(t, width)
    if t.per_layer is not None:  # Gemma 4's layers differ: the widest (ASSUMED: one page size for all groups)
        return max(2 * max(1, t.layer_kv_heads(i) // o.tp) * t.layer_head_dim(i) * width for i in t.kv_layers)
    return 2 * max(1, t.num_kv_heads // o.tp) * t.head_dim * width


# vLLM keeps DeepSeek-V3.2's indexer keys in fp8 with one float32 scale per 128 values, whatever --kv-cache-dtype
# says: vllm/model_executor/models/deepseek_v2.py `Indexer.__init__` builds DeepseekV32IndexerCache(head_dim=
# head_dim + head_dim // quant_block_size * 4, dtype=torch.uint8) with quant_block_size = 128 (132 B per token
# and layer for index_head_dim 128)
VLLM_INDEXER_QUANT_BLOCK = 128
VLLM_INDEXER_SCALE_BYTES = 4


# vLLM on CUDA forces the KV block size of a model whose config has index_topk (DeepSeek Sparse Attention) to 64
# (vllm/platforms/cuda.py check_and_update_config: "Forcing kv cache block size to 64 for FlashMLASparse backend.")
SPARSE_MLA_BLOCK = 64


def sparse_mla_block(t, o: ServeOptions) -> ServeOptions:
    """`o` with vLLM's block size for a spec with a lightning indexer (64), else as it is."""
    return o._replace(block_size=SPARSE_MLA_BLOCK) if t.indexer is not None and o.block_size != SPARSE_MLA_BLOCK else o


def vllm_dsa_latent_bytes(t, width: int) -> int:
    """One token's MLA latent in one layer of vLLM's DeepSeek-V3.2 cache: (kv_lora_rank + d_rope) x the KV width,
    or with an fp8 cache vLLM's "fp8_ds_mla" layout (vllm/model_executor/models/config.py DeepseekV32ForCausalLM
    turns --kv-cache-dtype fp8* into fp8_ds_mla; flashmla_sparse.py get_kv_cache_shape: 656 B a token): the latent
    in fp8, one float32 scale per 128 of it, the RoPE key in bf16 (512 + 16 + 128 = 656 for DeepSeek-V3.2)."""
    m = t.mla
    if width == 1:
        return m.kv_lora_rank + m.kv_lora_rank // VLLM_INDEXER_QUANT_BLOCK * VLLM_INDEXER_SCALE_BYTES + \
            2 * m.qk_rope_head_dim
    return (m.kv_lora_rank + m.qk_rope_head_dim) * width


def vllm_indexer_bytes(t) -> int:
    """Bytes of one token's indexer key in one layer of vLLM's cache (fp8 values + float32 scales)."""
    d = t.indexer.head_dim
    return d + d // VLLM_INDEXER_QUANT_BLOCK * VLLM_INDEXER_SCALE_BYTES


def kv_groups(acc: Accounting, layers: tuple[int, int] | None = None) -> tuple[tuple[KvGroup, ...], int]:
    """vLLM's KV cache groups and the number of layers per group (of one pipeline stage's `layers`)."""
    t = acc.spec.text
    by_kind: dict[tuple[str, int | None], list[int]] = {}
    for i in range(*(layers or (0, t.num_layers))):
        if not t.has_attention(i):  # Gated DeltaNet / Mamba2 / short conv / MLP block: no KV
            continue
        if t.per_layer is not None and t.per_layer.is_shared(i):  # Gemma 3n / 4: reads another layer's KV
            continue
        w = None if t.mla is not None else t.window(i)
        by_kind.setdefault(("sliding", w) if w else ("full", None), []).append(i)
    if not by_kind:  # every layer keeps a state, none a KV cache (an all-Mamba stage): no KV group
        return (), 0
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


def total_weights(acc: Accounting, o: ServeOptions) -> int:
    """The model's one copy of the weights at o's widths (--weights: the stored total)."""
    if o.weights_bytes is not None:
        return o.weights_bytes
    width = entry_width(o)[0]
    return round(sum(width(e) * e.numel for e in acc.entries if e.parameter and e.stored and e.component != MTP))


def settings(o: ServeOptions, length: int) -> VllmSettings:
    return VllmSettings(
        engine=o.engine, gpu_memory_utilization=o.gpu_memory_utilization, max_model_len=length,
        max_num_batched_tokens=o.max_num_batched_tokens, max_num_seqs=o.max_num_seqs, block_size=o.block_size,
        enforce_eager=o.enforce_eager, kv_cache_memory=o.kv_cache_memory, tp=o.tp, non_torch_bytes=o.overhead_bytes,
        images_per_prompt=o.images_per_prompt, vllm_version=o.vllm_version)


def plan(acc: Accounting, gpu: Gpu, o: ServeOptions, ranks: RankPlan | None = None) -> Serving:
    """vLLM's start-up budget for `o` on `gpu`; `ranks`: the rank plan of o's layout, when already made."""
    t = acc.spec.text
    o = sparse_mla_block(t, o)  # DeepSeek-V3.2: vLLM's 64-token blocks
    check_layout(acc, o.layout)
    length = o.max_model_len or t.max_position_embeddings
    width, what, status = entry_width(o)
    if ranks is None or ranks.layout != o.layout:
        ranks = rank_plan(acc, o.layout, width, KV_BYTES[o.kv_dtype])
    dims = model_dims(acc, o)
    device, vs = Device(gpu.name, gpu.total), settings(o, length)
    free = vllm_budget(dims, vs, device, 0).kv_cache_bytes  # the budget before the weights
    rank = deciding_rank(acc, o, ranks, free) if o.kv_cache_memory is None else ranks.largest
    stage = rank.layers
    extras = o.extras(o.layout, stage if o.pp > 1 else None) if o.extras is not None else ()
    weights = weight_term(acc, o, rank, what, extras)
    budget = vllm_budget(dims, vs, device, weights.bytes)
    step, seqs = budget.max_num_batched_tokens, budget.max_num_seqs
    layer_peak, logits = prefill_terms(t, step, min(step, seqs), o.tp)
    _, all_logits = prefill_terms(t, step, step, o.tp)
    non_torch = budget.term("non_torch")
    overhead = Term("Non-torch memory (NCCL, cuBLAS workspaces)", non_torch.bytes, non_torch.source)
    groups, size = kv_groups(acc, stage)
    token_bytes = token_layer_bytes(acc, o)
    page = o.block_size * token_bytes
    available = budget.kv_cache_bytes
    o_steps = o if o.max_num_batched_tokens == step else _with_step(o, step)
    kv = _attention_kv(groups, size, page, available, length, o_steps) if groups else (page, 0, 0, 0.0, 0, 0)
    seed = _hybrid(acc, o, stage, token_bytes, length, step, available)
    if seed is not None:  # vLLM's hybrid allocator: one page size for attention blocks and state pages
        p = seed.plan
        kv = (p.page, p.num_blocks, p.kv_tokens, p.concurrency, seed.largest, p.request_bytes)
        size = p.group_size
    return Serving(
        o, gpu, length, budget.term("requested").bytes, weights, layer_peak, logits, all_logits, overhead,
        available, token_bytes, kv[0], groups, size, kv[1], kv[2], kv[3], kv[4], kv[5], budget, ranks,
        weights_status(o, status), extras, seed.plan if seed is not None else None,
    )


def _attention_kv(groups, size: int, page: int, available: int, length: int, o: ServeOptions) -> tuple:
    """(page, blocks, tokens, concurrency, largest context, bytes of one request) of the KV groups alone."""
    num_blocks = max(0, available // page // size)
    tokens = num_blocks // len(groups) * o.block_size
    return (page, num_blocks, tokens,
            tokens / length if o.engine == "vllm-v0" else concurrency(groups, size, page, num_blocks, length, o),
            largest_context(groups, page, available, o, length) if available > 0 else 0,
            request_bytes(groups, length, page, o))


def _hybrid(acc: Accounting, o: ServeOptions, stage, token_bytes: int, length: int, step: int, available: int):
    """The Serving fields of a spec with linear-attention layers, as vLLM's hybrid allocator lays them out
    (memory.native_hybrid); None for any other spec. `plan`'s other fields are recomputed by the caller."""
    from inspector.memory import native_hybrid

    inp = native_hybrid.hybrid_input(acc.spec.text, stage or (0, acc.spec.text.num_layers), token_bytes,
                                     KV_BYTES[o.kv_dtype], o.tp, length, step, o.block_size)
    if inp is None:
        return None
    return _HybridSeed(inp, native_hybrid.plan_of(inp, available), native_hybrid.largest_context(inp, available))


class _HybridSeed(NamedTuple):
    inp: Any
    plan: Any
    largest: int


def model_dims(acc: Accounting, o: ServeOptions) -> ModelDims:
    """vLLM's dimensions of the model: the text stack, and the vision tower of a vision-language model."""
    from dataclasses import replace

    dims = ModelDims.from_text_spec(acc.spec.text, kv_dtype_bytes=KV_BYTES[o.kv_dtype])
    if acc.spec.vision is None or o.largest_image is None:
        return dims
    from inspector.memory.vllm_vision import from_vision_spec

    return replace(dims, vision=from_vision_spec(acc.spec.vision, o.largest_image, acc.spec.text.hidden_size))


def _with_step(o: ServeOptions, step: int) -> ServeOptions:
    """The options with vLLM's max_num_batched_tokens filled in (sliding windows hold a step's tokens)."""
    return o._replace(max_num_batched_tokens=step)
