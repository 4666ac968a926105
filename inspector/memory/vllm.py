"""vLLM's own start-up arithmetic: usable memory, profile-run peak, non-torch memory, KV blocks and tokens.

Pure arithmetic (no torch). Every term of the result carries a status: "exact" (vLLM's formula,
no measurement involved), "calibrated" (a published measurement, cited), "assumed" (a modelling
choice, with the setting that changes it) or "input" (given by the caller, e.g. weights).

vLLM read for this model (file paths in vllm-project/vllm):
- V1: vllm/v1/worker/gpu_worker.py ``determine_available_memory`` (requested = total x util;
  available = requested - weights - torch peak increase - non-torch increase; a set
  ``kv_cache_memory_bytes`` returns that figure and skips the arithmetic, PR 21489),
  vllm/v1/worker/gpu_model_runner.py ``profile_run`` / ``_dummy_run`` / ``_dummy_sampler_run``,
  vllm/utils (``memory_profiling``, ``MemorySnapshot``), vllm/v1/core/kv_cache_utils.py
  (page size per layer, blocks = available // page // layers, max concurrency),
  vllm/engine/arg_utils.py ``get_batch_defaults`` (max_num_batched_tokens / max_num_seqs).
- V0: vllm/worker/worker.py ``determine_num_available_blocks`` (PRs 9352, 10511, 12126),
  vllm/worker/model_runner.py ``profile_run``, vllm/worker/cache_engine.py ``get_cache_block_size``,
  vllm/config.py ``SchedulerConfig`` (max_num_batched_tokens defaults).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from inspector.memory import vllm_versions
from inspector.memory.vllm_graphs import PER_GRAPH_BYTES, PER_GRAPH_SOURCE, RUNNER, SIZES, graph_estimate, graph_plan

if TYPE_CHECKING:  # the vision tower's arithmetic loads only for a vision-language model (cold start)
    from inspector.memory.vllm_vision import VisionDims

GIB = 2**30

EXACT = "exact"
CALIBRATED = "calibrated"
ASSUMED = "assumed"
INPUT = "input"

LLMD_TABLE = (
    "https://github.com/llm-d/llm-d-benchmark/blob/04be4178aaa80c7f759d96f41f3db3207a1658a1/"
    "config_explorer/empirical-vllm-memory-results.md"
)
PR_12126 = "https://github.com/vllm-project/vllm/pull/12126"
PR_21489 = "https://github.com/vllm-project/vllm/pull/21489"
ARG_UTILS = "vllm-project/vllm vllm/engine/arg_utils.py EngineArgs.get_batch_defaults"
# V0: max(max_model_len, 2048) without chunked prefill; with it 512 up to v0.6.4 (vLLM docs, "Performance and
# Tuning": "512 is the default max_num_batched_tokens for chunked prefill"), 2048 from PR 10544 (Nov 2024)
# on (vllm_versions.EPOCHS' v0_chunked_tokens).
V0_SCHEDULER = "vllm-project/vllm vllm/config.py SchedulerConfig"

# Bytes per vocab-wide logit of the sampler warm-up (V1 ``_dummy_sampler_run``: max_num_seqs rows,
# temperature, top-k = vocab-1 and top-p, so the sort path: bf16 and fp32 logits, sorted values,
# int64 indices, softmax, cumulative sum, masks, scatter, exponential draw). Calibrated on llm-d's
# H100 table (vLLM v0.11.0, 1024 rows, 8192 batched tokens), rows that are NOT cases A1/A2:
#   Qwen3-32B 5.64 GiB (vocab 151,936, hidden 5120) -> 38.38 B; Llama-3.3-70B-FP8 TP2 4.84 GiB
#   (vocab 128,256, hidden 8192) -> 38.55 B; gpt-oss-20b and gpt-oss-120b 7.38 GiB (vocab 201,088,
#   hidden 2880) -> 38.25 B each, after the batch's final hidden states are taken off; mean 38.36.
# The "MoE is higher" of llm-d's table is the larger vocabulary. Not covered: Mistral-Small-3.2
# (vision-language, mistral tokenizer mode), 2.12 GiB, i.e. 17 B per logit.
SAMPLER_BYTES_PER_LOGIT = 38.36

# Non-torch memory (cuBLAS/NCCL workspaces and the like, outside torch's allocator), per GPU, GiB.
# V1 (llm-d table, vLLM v0.11.0, H100), rows other than A1/A2: TP1 gpt-oss-20b 0.13, gpt-oss-120b
# 0.13, Qwen3-32B 0.14, Mistral-Small-3.2 0.14 (median 0.135); TP2 Llama-3.3-70B-FP8 0.55,
# Qwen3-32B 0.54 (mean 0.545; TP > 2 assumed the same).
V1_NON_TORCH_GIB = {1: 0.135, 2: 0.545}
# V0 after PR 12126 (Jan 2025, the last V0 profiler): 0.16 GiB, Llama-3.2-11B-Vision on H100, TP1.
# Earlier V0 builds measured a different quantity, so their logged figure is not this one (no public
# log of those builds other than the cases themselves, hence no default per build):
# - v0.6.3/0.6.4 (PR 9352): (device used - torch allocated) after the profile run, from zero: the
#   CUDA context counts (A6: 0.35 GiB on an RTX 3090).
# - Dec 2024 (PR 10511's branch, v0.6.5): device used after the profile (after gc + empty_cache)
#   - the used memory at init_device (taken BEFORE init_worker_distributed_environment) - weights
#   - the profile's change in torch's *allocated* bytes. So it counts the caching allocator's
#   reserved-but-free bytes (PR 11809: "allocated_bytes.all.current does not include ... cudaMalloc
#   but cannot be released"; fixed to memory_reserved), torch tensors allocated outside load_model,
#   cuBLAS/lazily loaded kernels, and under TP the NCCL/custom all-reduce set-up. A5 logs 1.79 GiB
#   (TP2 3.58). Later builds take the snapshot after NCCL init ("Now take memory snapshot after NCCL
#   is initialized", vllm/v1/worker/gpu_worker.py init_device), so NCCL is not counted at all.
V0_NON_TORCH_GIB = 0.16
PR_10511 = "https://github.com/vllm-project/vllm/pull/10511"
PR_11809 = "https://github.com/vllm-project/vllm/pull/11809"


class Term(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """One line of vLLM's budget: bytes, how we know them, and where from."""

    name: str
    bytes: int
    status: str
    source: str

    @property
    def gib(self) -> float:
        return self.bytes / GIB


@dataclass(frozen=True)
class ModelDims:
    """The few model dimensions vLLM's arithmetic needs (per model, before tensor parallelism)."""

    vocab: int
    hidden: int
    intermediate: int  # the MLP width a token goes through (MoE: the activated experts' width)
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int = 2  # activations and logits (bf16/fp16)
    kv_dtype_bytes: int = 2  # --kv-cache-dtype (fp8: 1)
    experts_top_k: int = 0  # MoE: routed experts per token (0: dense MLP)
    expert_intermediate: int = 0  # MoE: one expert's width
    mla_width: int = 0  # MLA: kv_lora_rank + qk_rope_head_dim, one latent "head" cached per token
    vision: VisionDims | None = None  # a vision-language model's tower (vllm_vision.from_vision_spec)

    @classmethod
    def from_text_spec(cls, spec, dtype_bytes: int = 2, kv_dtype_bytes: int = 2) -> ModelDims:
        """Dimensions from the project's TextSpec (inspector/spec/text.py)."""
        moe, mla = spec.moe, spec.mla
        return cls(
            vocab=spec.vocab_size, hidden=spec.hidden_size, intermediate=spec.intermediate_size,
            layers=spec.num_layers, heads=spec.num_heads, kv_heads=spec.num_kv_heads, head_dim=spec.head_dim,
            dtype_bytes=dtype_bytes, kv_dtype_bytes=kv_dtype_bytes,
            experts_top_k=(moe.top_k or 0) if moe else 0, expert_intermediate=moe.expert_intermediate if moe else 0,
            mla_width=(mla.kv_lora_rank + mla.qk_rope_head_dim) if mla else 0,
        )

    def kv_heads_per_rank(self, tp: int) -> int:
        """KV heads one rank holds: split by TP, replicated when there are fewer heads than ranks."""
        return max(1, self.kv_heads // tp)


class Device(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """The GPU as torch sees it: name and ``torch.cuda.mem_get_info()[1]`` in bytes."""

    name: str
    total_bytes: int

    @property
    def big(self) -> bool:
        """vLLM's larger batch defaults: >= 70 GiB and not an A100 (arg_utils, PR 17885)."""
        return self.total_bytes >= 70 * GIB and "a100" not in self.name.lower()


class VllmSettings(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """The vLLM flags that size the KV cache; None means vLLM's default for engine, usage and GPU."""

    engine: str = "vllm-v1"  # "vllm-v1" | "vllm-v0"
    gpu_memory_utilization: float = 0.9
    max_model_len: int = 4096
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    block_size: int = 16
    enforce_eager: bool = False
    kv_cache_memory: int | None = None  # --kv-cache-memory BYTES (kv_cache_memory_bytes)
    tp: int = 1
    usage: str = "serve"  # "serve" (OpenAI server) | "llm" (the LLM class)
    enable_chunked_prefill: bool | None = None  # V0 only; V1 always chunks
    non_torch_bytes: int | None = None  # a measured figure, e.g. read from a log
    images_per_prompt: int | None = None  # --limit-mm-per-prompt image=N; None: 1 (V0), 999 (V1)
    vllm_version: str | None = None  # --vllm-version; None: the newest release modelled that has the engine

    @property
    def release(self) -> vllm_versions.VllmVersion:
        """The vLLM release whose arithmetic applies (vllm_versions.EPOCHS), checked against the engine."""
        return vllm_versions.resolve(self.vllm_version, self.engine)


class VllmBudget(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """What vLLM would log at start-up, term by term."""

    settings: VllmSettings
    max_num_batched_tokens: int
    max_num_seqs: int
    terms: tuple[Term, ...]
    kv_cache_bytes: int
    page_bytes: int  # one block of one layer (V1 page size); V0's block spans all layers
    num_gpu_blocks: int
    kv_cache_tokens: int
    max_concurrency: float
    notes: tuple[str, ...] = ()

    def term(self, name: str) -> Term:
        return next(t for t in self.terms if t.name == name)

    def json_fields(self) -> dict[str, int | float]:
        """The per-GPU keys issue 27 adds to `inspect memory --json`."""
        return {
            "gpu_total_bytes": self.term("gpu_total").bytes,
            "weights_bytes": self.term("weights").bytes,
            "activation_peak_bytes": self.term("activation_peak").bytes,
            "non_torch_bytes": self.term("non_torch").bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_concurrency": round(self.max_concurrency, 2),
        }


def batch_defaults(settings: VllmSettings, device: Device) -> tuple[int, int, str]:
    """max_num_batched_tokens and max_num_seqs as vLLM picks them, with the rule that picked them."""
    epoch = settings.release.epoch
    if settings.engine == "vllm-v1":
        big, why = v1_large_defaults(epoch.v1_batch, device)
        llm = settings.usage == "llm"
        if big:
            tokens, seqs = (16384, 1024) if llm else (8192, 1024)
        else:
            tokens, seqs = (8192, 256) if llm else (2048, 256)
        rule = f"{ARG_UTILS} (vLLM {epoch.text}: {why}), usage {settings.usage}"
    else:
        seqs = 256
        if v0_chunked(settings):
            tokens = epoch.v0_chunked_tokens
            rule = f"{V0_SCHEDULER}: chunked prefill -> {tokens} (vLLM {epoch.text})"
        else:
            tokens, rule = max(settings.max_model_len, 2048), f"{V0_SCHEDULER}: max(max_model_len, 2048)"
    tokens = settings.max_num_batched_tokens or tokens
    seqs = settings.max_num_seqs or seqs
    return tokens, seqs, rule


def v1_large_defaults(rule: str, device: Device) -> tuple[bool, str]:
    """Whether V1's larger batch defaults apply on ``device`` under a release's rule (vllm_versions), and why."""
    name = device.name.lower()
    if rule == vllm_versions.BY_NAME:
        return "h100" in name or "h200" in name, "H100/H200 by name, PR 12369"
    if rule == vllm_versions.BY_MEMORY:
        return device.total_bytes >= 70 * GIB, ">= 70 GiB, PR 17073"
    if rule == vllm_versions.BY_DEVICE:
        return device.big, ">= 70 GiB, not A100, PR 17885" + ("" if device.big else ": other GPUs")
    return False, "one rule for every GPU"


def v0_chunked(settings: VllmSettings) -> bool:
    """V0 turns chunked prefill on by itself past a 32K context (arg_utils ``_set_default_args_v0``: > 32768)."""
    if settings.enable_chunked_prefill is not None:
        return settings.enable_chunked_prefill
    return settings.max_model_len > 32768


def forward_peak_bytes(dims: ModelDims, tokens: int, tp: int) -> int:
    """The dummy forward's peak over ``tokens`` tokens: inside one layer's MLP, at its down projection.

    vLLM's gated MLPs (vllm/model_executor/models/llama.py ``LlamaMLP.forward`` and its copies) bind
    the gate/up output to a name that lives until the method returns, so during ``down_proj`` these
    are live per token: the residual and the MLP's input (hidden each), gate/up (2 x I / tp), the
    activation output (I / tp) and the down projection's output (hidden). MoE layers (vLLM's
    fused_moe): top_k x (gate/up 2N/tp + activation N/tp + per-expert output hidden) instead.
    Assumed: torch's caching allocator reuses every other activation (attention's scratch is
    smaller for GQA models); the figure is the increase of ``allocated_bytes.all.peak``.
    """
    if dims.experts_top_k:
        per_token = 2 * dims.hidden + dims.experts_top_k * (3 * dims.expert_intermediate // tp + dims.hidden)
    else:
        per_token = 3 * dims.hidden + 3 * dims.intermediate // tp
    return tokens * per_token * dims.dtype_bytes


def sampler_peak_bytes(dims: ModelDims, rows: int, tokens: int) -> int:
    """The sampler warm-up: ``rows`` vocab-wide logits through the sort path, plus the batch's hidden states."""
    logits = rows * dims.vocab * SAMPLER_BYTES_PER_LOGIT
    return int(logits) + tokens * dims.hidden * dims.dtype_bytes


def activation_term(dims: ModelDims, settings: VllmSettings, tokens: int, seqs: int) -> Term:
    """The profile run's torch peak increase: the larger of the dummy forward and the sampler warm-up.

    V1 ``profile_run``: ``_dummy_run(max_num_tokens)`` then ``_dummy_sampler_run`` over the last token
    of each of min(max_num_seqs, tokens) dummy requests. V0 ``profile_run``: max_num_seqs dummy
    sequences sharing max_num_batched_tokens, sampled with top_p 0.99 and top_k vocab - 1. The
    sampler's bytes per logit are measured on V1 only; for V0 they are assumed the same.
    """
    rows = min(seqs, tokens)
    forward = forward_peak_bytes(dims, tokens, settings.tp)
    sampler = sampler_peak_bytes(dims, rows, tokens)
    by_sampler = sampler > forward
    if not by_sampler:
        status = ASSUMED
    else:
        status = CALIBRATED if settings.engine == "vllm-v1" else ASSUMED
    source = (
        f"max(dummy forward over {tokens:,} tokens = {forward / GIB:.2f} GiB [assumed: MLP peak; "
        f"--max-num-batched-tokens], sampler warm-up over {rows:,} rows = {sampler / GIB:.2f} GiB "
        f"[{SAMPLER_BYTES_PER_LOGIT} B/logit calibrated on vLLM V1, {LLMD_TABLE}, rows other than A1/A2"
        f"{'; assumed the same in V0' if settings.engine == 'vllm-v0' else ''}; --max-num-seqs]); "
        f"peak at the {'sampler warm-up' if by_sampler else 'forward'}"
    )
    text_peak = max(forward, sampler)
    if dims.vision is None:
        return Term("activation_peak", text_peak, status, source)
    vision = vision_term(dims, settings, (tokens, seqs))
    cache = vision_profile(dims, settings, (tokens, seqs))[1].cache
    peak = max(vision.bytes, cache + text_peak)
    source = (f"max(vision encoder profile {vision.bytes / GIB:.2f} GiB, encoder cache {cache / GIB:.2f} GiB + "
              f"text peak {text_peak / GIB:.2f} GiB); text peak = {source}")
    return Term("activation_peak", peak, ASSUMED if peak == vision.bytes else status, source)


def vision_profile(dims: ModelDims, settings: VllmSettings, batch: tuple[int, int]):
    """(ItemCount, EncoderPeak) of the profile run's dummy image batch; batch = (max_num_batched_tokens, max_num_seqs)."""
    from inspector.memory.vllm_vision import encoder_peak, profile_items

    count = profile_items(dims.vision, settings.engine, (batch[0], batch[1], settings.max_model_len),
                          settings.images_per_prompt)
    return count, encoder_peak(dims.vision, count.items)


def vision_term(dims: ModelDims, settings: VllmSettings, batch: tuple[int, int]) -> Term:
    """The vision encoder's profile-run peak: the largest image times the items vLLM encodes at once."""
    vd = dims.vision
    count, ep = vision_profile(dims, settings, batch)
    source = (
        f"{count.items} image(s) of {vd.image[0]}x{vd.image[1]} (the largest the processor accepts: "
        f"{vd.seq_per_item:,} encoder positions, {vd.tokens_per_item:,} tokens each) [{count.rule}; "
        f"--images-per-prompt]; encoder peak = kept {ep.kept / GIB:.2f} GiB + largest block "
        f"{ep.layer_peak / GIB:.2f} GiB ({vd.attention} attention) [assumed]; then {ep.cache / GIB:.2f} GiB of merged "
        f"embeddings stay in the encoder cache through the text dummy run"
    )
    return Term("vision_encoder_profile", ep.peak, ASSUMED, source)


def non_torch_term(settings: VllmSettings) -> Term:
    """Memory outside torch's allocator that the profile run adds (CUDA/NCCL workspaces)."""
    if settings.non_torch_bytes is not None:
        return Term("non_torch", settings.non_torch_bytes, INPUT, "given (e.g. read from the log)")
    if settings.engine == "vllm-v1":
        gib = V1_NON_TORCH_GIB[1] if settings.tp == 1 else V1_NON_TORCH_GIB[2]
        status = CALIBRATED if settings.tp <= 2 else ASSUMED
        return Term("non_torch", int(gib * GIB), status, f"{LLMD_TABLE} (TP{min(settings.tp, 2)}, rows other than A1/A2)")
    epoch = settings.release.epoch
    source = f"{PR_12126} (V0 after PR 12126: Llama-3.2-11B-Vision, H100, TP1)" + V0_ACCOUNTING[epoch.non_torch_v0]
    calibrated = settings.tp == 1 and epoch.non_torch_v0 == vllm_versions.PR12126
    return Term("non_torch", int(V0_NON_TORCH_GIB * GIB), CALIBRATED if calibrated else ASSUMED, source)


# What V0's non-torch figure measured in each accounting epoch (vllm_versions.EPOCHS), for the term's source.
V0_ACCOUNTING = {
    vllm_versions.FROM_ZERO: ("; vLLM 0.6.3/0.6.4 measured it from zero (device used - torch allocated after the "
                              "profile), so it also counts the CUDA context: assumed the same figure (--overhead-gib)"),
    vllm_versions.PR10511: (f"; the Dec 2024 build ({PR_10511}) subtracted torch's allocated, not reserved, bytes and "
                            f"counted NCCL ({PR_11809}): it logged far more; assumed the same figure (--overhead-gib)"),
    vllm_versions.PR12126: "",
}


def cuda_graph_term(settings: VllmSettings, dims: ModelDims | None = None, batch: tuple[int, int] | None = None) -> Term:
    """CUDA-graph memory taken off the KV budget: vLLM's estimate from v0.21.0 on (``vllm_graphs``), none before.

    ``batch`` = (max_num_batched_tokens, max_num_seqs). Without ``dims`` or ``batch`` the v0.21+ figure
    cannot be formed and the term is 0, marked assumed.
    """
    if settings.enforce_eager:
        return Term("cuda_graphs", 0, EXACT, "--enforce-eager: no CUDA graphs")
    release = settings.release
    if not release.graphs_profiled:
        return Term(
            "cuda_graphs", 0, EXACT,
            f"vLLM {release.text}: graphs captured after the KV cache is allocated, inside the util budget's slack "
            "(llm-d table column 'CUDA Graph': -0.88 to +1.03 GiB, not subtracted from KV); "
            "profiled and subtracted from v0.21.0 (--vllm-version)",
        )
    if dims is None or batch is None:
        return Term("cuda_graphs", 0, ASSUMED, f"vLLM {release.text} subtracts its CUDA-graph estimate; "
                    "not formed here (no model dimensions)")
    plan = graph_plan(batch[1], batch[0])
    first = {mode: forward_peak_bytes(dims, max(sizes), settings.tp) for mode, sizes in plan.modes()}
    estimate = graph_estimate(plan, first)
    graphs = sum(len(s) - 1 for _, s in plan.modes())
    source = (
        f"vLLM {release.text} (>= 0.21.0: estimated before the KV cache, {RUNNER}): {plan.log_line()} "
        f"[{SIZES}, max_num_seqs {batch[1]:,}; FULL_AND_PIECEWISE assumed]; first capture "
        f"{max(first.values()) / GIB:.2f} GiB [assumed: a forward over the largest size] + {graphs} x "
        f"{PER_GRAPH_BYTES / 2**20:.2f} MiB a graph [calibrated: {PER_GRAPH_SOURCE}]; --enforce-eager: 0"
    )
    dense = not dims.experts_top_k and dims.vision is None  # the per-graph figure was measured on a dense model
    return Term("cuda_graphs", estimate, CALIBRATED if dense else ASSUMED, source)


def page_bytes(dims: ModelDims, settings: VllmSettings) -> int:
    """One KV block of one layer on one rank: block_size x (K and V) x kv heads x head dim x dtype.

    vllm/v1/kv_cache_interface.py ``FullAttentionSpec.page_size_bytes`` (V0: cache_engine.py
    ``get_cache_block_size``, the same times the layers). MLA caches one latent per token, no K/V pair,
    the same on every rank (``MLAAttentionSpec``).
    """
    if dims.mla_width:
        return settings.block_size * dims.mla_width * dims.kv_dtype_bytes
    return settings.block_size * 2 * dims.kv_heads_per_rank(settings.tp) * dims.head_dim * dims.kv_dtype_bytes


def kv_blocks(kv_bytes: int, dims: ModelDims, settings: VllmSettings) -> int:
    """vLLM's block count: available // page // layers (V1), available // (page x layers) (V0): the same floor."""
    if kv_bytes <= 0:
        return 0
    return int(kv_bytes // page_bytes(dims, settings) // dims.layers)


def max_concurrency(blocks: int, settings: VllmSettings) -> float:
    """Requests of max_model_len tokens the cache holds, as vLLM logs it."""
    if settings.engine == "vllm-v1":
        return blocks / math.ceil(settings.max_model_len / settings.block_size)
    return blocks * settings.block_size / settings.max_model_len


def budget_terms(dims: ModelDims, settings: VllmSettings, device: Device, weights_bytes: int) -> tuple[Term, ...]:
    """Requested memory and everything taken off it before the KV cache."""
    tokens, seqs, rule = batch_defaults(settings, device)
    requested = int(device.total_bytes * settings.gpu_memory_utilization)
    return (
        Term("gpu_total", device.total_bytes, INPUT, "torch.cuda.mem_get_info()[1]"),
        Term("requested", requested, EXACT, f"gpu_total x gpu_memory_utilization {settings.gpu_memory_utilization}"),
        Term("weights", weights_bytes, INPUT, "bytes loaded per rank (checkpoint as stored)"),
        activation_term(dims, settings, tokens, seqs),
        *((vision_term(dims, settings, (tokens, seqs)),) if dims.vision is not None else ()),
        non_torch_term(settings),
        cuda_graph_term(settings, dims, (tokens, seqs)),
        Term("batch_defaults", tokens, EXACT if settings.max_num_batched_tokens is None else INPUT,
             f"max_num_batched_tokens {tokens:,}, max_num_seqs {seqs:,}: {rule}"),
    )


def vllm_budget(dims: ModelDims, settings: VllmSettings, device: Device, weights_bytes: int) -> VllmBudget:
    """vLLM's KV budget at start-up: available KV bytes, blocks, tokens and max concurrency."""
    if settings.engine not in ("vllm-v1", "vllm-v0"):
        raise ValueError(f"engine: expected vllm-v1 or vllm-v0, got {settings.engine!r}")
    terms = budget_terms(dims, settings, device, weights_bytes)
    tokens, seqs, _ = batch_defaults(settings, device)
    notes: list[str] = []
    if settings.kv_cache_memory is not None:
        if settings.engine != "vllm-v1":
            raise ValueError("--kv-cache-memory is a vLLM V1 option (kv_cache_memory_bytes, PR 21489)")
        kv = settings.kv_cache_memory
        terms += (Term("kv_cache", kv, INPUT, f"--kv-cache-memory: fixed KV budget, util and profiling skipped ({PR_21489})"),)
    else:
        by = {t.name: t.bytes for t in terms}
        kv = by["requested"] - by["weights"] - by["activation_peak"] - by["non_torch"] - by["cuda_graphs"]
        terms += (Term("kv_cache", kv, CALIBRATED, "requested - weights - activation_peak - non_torch - cuda_graphs"),)
    graphs = next(t for t in terms if t.name == "cuda_graphs").bytes
    if graphs and settings.kv_cache_memory is None:
        util = settings.gpu_memory_utilization
        notes.append(f"vLLM {settings.release.text} logs: --gpu-memory-utilization={util:.4f} is equivalent to "
                     f"{util - graphs / device.total_bytes:.4f} without CUDA graph memory profiling")
    blocks = kv_blocks(kv, dims, settings)
    kv_tokens = blocks * settings.block_size
    if kv_tokens < settings.max_model_len:
        notes.append(
            f"vLLM refuses to start: max_model_len {settings.max_model_len:,} > {kv_tokens:,} tokens of KV cache"
        )
    return VllmBudget(
        settings=settings, max_num_batched_tokens=tokens, max_num_seqs=seqs, terms=terms, kv_cache_bytes=kv,
        page_bytes=page_bytes(dims, settings), num_gpu_blocks=blocks, kv_cache_tokens=kv_tokens,
        max_concurrency=max_concurrency(blocks, settings), notes=tuple(notes),
    )


def blocks_for_logged_gib(logged_gib: float, dims: ModelDims, settings: VllmSettings) -> range:
    """Block counts consistent with a KV size vLLM logged rounded to 2 decimals (GiB = 2^30 B)."""
    low = kv_blocks(math.ceil((logged_gib - 0.005) * GIB), dims, settings)
    high = kv_blocks(math.floor((logged_gib + 0.005) * GIB) - 1, dims, settings)
    return range(low, high + 1)


def with_kv_cache_memory(settings: VllmSettings, kv_bytes: int) -> VllmSettings:
    """The same settings with ``--kv-cache-memory BYTES``."""
    return settings._replace(kv_cache_memory=kv_bytes)
