"""The buffers llama.cpp allocates for a GGUF (model, repack, KV, output, compute), predicted from its header.

Pure arithmetic (no llama.cpp, no torch): the input is the project's parsed GGUF header
(:class:`inspector.checkpoint.gguf.GGUFFile`) and a :class:`LlamaCppSettings`; the output is one
:class:`Buffer` per line llama.cpp prints, per device, in its own words, with the exact bytes, the MiB
as printed (two decimals) and the llama.cpp function each rule comes from.

Sources: ggml-org/llama.cpp@0c1e57098, the llama.cpp that llama-cpp-python 0.3.36 vendors (paths
relative to it). Every rule was checked against llama.cpp's printouts and exact bytes
(``llama_get_memory_breakdown``) for 151 settings of two real GGUFs and for synthetic GGUFs of more
architectures (fixtures/llamacpp, fixtures/llamacpp/synth; READMEs there): every figure below is **exact** on
CPU. This module predicts the CPU build's buffers (what llama.cpp allocates with no GPU, where -ngl has no
effect); GPU offload (-ngl, -ot, --n-cpu-moe, --tensor-split: buffers per device, read from the source) is
:mod:`inspector.memory.llamacpp_offload`, built on :func:`pad`, :func:`repacked` and :data:`BUFFER_LINE` here,
so the ``n_gpu_layers``/``override_tensor``/``n_cpu_moe`` fields of :class:`LlamaCppSettings` must stay at
their defaults in :func:`predict_buffers`. The compute buffer covers the architectures of
:data:`inspector.memory.llamacpp_graph.ARCHS` only; the recurrent state those of
:data:`inspector.memory.llamacpp_recurrent.RECURRENT` (others of :data:`RECURRENT_ARCHS` get a warning).
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.checkpoint.gguf import GGUFFile
from inspector.memory.llamacpp_archs import ARCHS, graph_extras, unmodelled
from inspector.memory.llamacpp_graph import GraphShape, compute_bytes
from inspector.memory.llamacpp_recurrent import SRC_RS, Recurrent, recurrent, rs_cache, rs_lines

MIB = 1 << 20
CPU_ALIGNMENT = 32  # ggml-cpu's buffer type alignment (TENSOR_ALIGNMENT, ggml/src/ggml-impl.h)
CTX_PAD = 256  # GGML_PAD(n_ctx, 256), src/llama-context.cpp (PR 17046)
# ggml-cpu/repack.cpp ggml_repack_get_optimal_repack_type: the weight types with a repacked layout, by CPU
REPACK_TYPES = {
    "x86-avx512": frozenset({"Q4_0", "Q4_K", "IQ4_NL", "MXFP4", "Q2_K"}),
    "x86-avx2": frozenset({"Q4_0", "Q4_K", "IQ4_NL", "MXFP4"}),
    "arm-i8mm": frozenset({"Q4_0", "Q4_K", "Q5_K", "Q6_K", "Q8_0", "IQ4_NL", "MXFP4", "Q1_0"}),
    "none": frozenset(),
}
REPACK_ROWS = 8  # extra_buffer_type::supports_op: ne[1] % 8 == 0 (the 8x8 interleaved layouts)
# KV cache types: (elements per block, bytes per block), ggml type traits
KV_TYPES = {"f32": (1, 4), "f16": (1, 2), "bf16": (1, 2), "q8_0": (32, 34), "q4_0": (32, 18), "q4_1": (32, 20),
            "q5_0": (32, 22), "q5_1": (32, 24), "iq4_nl": (32, 18)}
SRC_MODEL = "src/llama-model.cpp load_tensors; src/llama-model-loader.cpp select_weight_buft"
SRC_KV = "src/llama-kv-cache.cpp llama_kv_cache::llama_kv_cache; src/llama-kv-cache-iswa.cpp"
SRC_OUTPUT = "src/llama-context.cpp llama_context::output_reserve"
SRC_COMPUTE = ("src/llama-context.cpp sched_reserve/graph_reserve; the architecture's graph "
               "(src/models/<arch>.cpp); ggml/src/ggml-alloc.c ggml_gallocr (replayed)")


@dataclass(frozen=True)
class LlamaCppSettings:
    """The context and load settings that change the buffers (llama_context_params, llama_model_params)."""

    n_ctx: int = 4096  # 0: the trained length
    n_batch: int = 2048  # llama_context_default_params()
    n_ubatch: int = 512
    n_seq_max: int = 1  # --parallel
    kv_unified: bool = False
    flash_attn: str = "auto"  # on/off/auto; auto resolves to on for the CPU backend (resolve_fused_ops)
    type_k: str = "f16"
    type_v: str = "f16"
    swa_full: bool = False  # llama-server's default; the C API's llama_context_default_params() has true
    use_mmap: bool = True
    cpu: str = "x86-avx512"  # which weight types CPU_REPACK takes (REPACK_TYPES)
    # the CPU build's buffers take these defaults (else NotImplementedError); offload: llamacpp_offload.Placement
    n_gpu_layers: int = 0
    override_tensor: tuple = ()
    n_cpu_moe: int = 0


@dataclass(frozen=True)
class Buffer:
    """One buffer line as llama.cpp prints it: ``<func>: <device> <kind> buffer size = <mib> MiB``."""

    func: str  # load_tensors, llama_kv_cache, llama_context, sched_reserve
    device: str  # CPU_Mapped, CPU_REPACK, CPU
    kind: str  # model, repack, kv, output, compute
    nbytes: int
    source: str
    status: str = "exact"

    @property
    def mib(self) -> str:
        return f"{self.nbytes / MIB:.2f}"


@dataclass(frozen=True)
class KVCache:
    """One ``llama_kv_cache: size = ...`` line: cells per stream, layers, K and V bytes."""

    swa: str  # "SWA", "non-SWA" or "" (a model without sliding-window layers)
    cells: int
    layers: int
    n_seq_max: int
    n_stream: int
    type_k: str
    type_v: str
    k_bytes: int
    v_bytes: int

    @property
    def nbytes(self) -> int:
        return self.k_bytes + self.v_bytes

    def mib(self, which: str = "") -> str:
        n = {"k": self.k_bytes, "v": self.v_bytes}.get(which, self.nbytes)
        return f"{n / MIB:.2f}"


@dataclass(frozen=True)
class HParams:
    """What the buffers need from the GGUF header (llama_model::load_hparams, src/llama-model.cpp)."""

    arch: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    n_ctx_train: int
    n_swa: int
    recurrent: Recurrent | None = None  # the recurrent layers of a hybrid model (llamacpp_recurrent)
    n_expert: int = 0  # MoE: expert_count, expert_used_count, expert_feed_forward_length (0: dense)
    n_expert_used: int = 0
    n_ff_exp: int = 0
    n_ff_shexp: int = 0  # expert_shared_feed_forward_length (0: absent)
    n_dense_lead: int = 0  # leading_dense_block_count
    extras: frozenset = frozenset()  # GGUF keys that add graph nodes (llamacpp_graph.graph_extras)


# llm_arch_is_recurrent / llm_arch_is_hybrid (src/llama-arch.cpp): a recurrent state beside (or instead of) the KV
# cache; only the architectures of llamacpp_recurrent.RECURRENT have it modelled
RECURRENT_ARCHS = frozenset({"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7", "jamba", "falcon-h1",
                             "plamo2", "granitehybrid", "lfm2", "lfm2moe", "nemotron_h", "nemotron_h_moe",
                             "qwen3next", "kimi-linear", "bailingmoe3", "qwen35", "qwen35moe", "minimax-01"})


def _scalar(v, default):
    """A per-layer array key (e.g. lfm2's head_count_kv) as its largest value (n_embd_v_gqa_max), else the value."""
    if v is None:
        return default
    return max(v) if isinstance(v, (list, tuple)) else v


def hparams(f: GGUFFile) -> HParams:
    """load_hparams: ``<arch>.*`` keys; head dims default to n_embd / n_head; n_vocab = token_embd's rows."""
    m, arch = f.metadata, f.metadata["general.architecture"]

    def key(k, default=None):
        return m.get(f"{arch}.{k}", default)

    n_embd, n_head = key("embedding_length"), key("attention.head_count")
    embd = next(t for t in f.tensors if t.name == "token_embd.weight")
    return HParams(arch=arch, n_layer=key("block_count"), n_embd=n_embd, n_ff=key("feed_forward_length"),
                   n_head=n_head, n_head_kv=_scalar(key("attention.head_count_kv"), n_head),
                   head_dim_k=key("attention.key_length", n_embd // n_head if n_head else 0),
                   head_dim_v=key("attention.value_length", n_embd // n_head if n_head else 0),
                   n_vocab=key("vocab_size", embd.stored_shape[1]), n_ctx_train=key("context_length"),
                   n_swa=key("attention.sliding_window", ARCHS[arch].swa_default)
                   if ARCHS.get(arch) and ARCHS[arch].swa_pattern else 0,
                   recurrent=recurrent(m, arch, key("block_count"), n_embd),
                   n_expert=key("expert_count", 0), n_expert_used=key("expert_used_count", 0),
                   n_ff_exp=_scalar(key("expert_feed_forward_length"), 0), extras=graph_extras(arch, m),
                   n_ff_shexp=key("expert_shared_feed_forward_length", 0),
                   n_dense_lead=key("leading_dense_block_count", 0))


def pad(n: int, a: int) -> int:
    """n rounded up to a multiple of a (GGML_PAD)."""
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class Context:
    """The resolved context sizes (llama_context::llama_context, src/llama-context.cpp), in its order."""

    n_ctx: int
    n_ctx_seq: int
    n_batch: int
    n_ubatch: int
    n_stream: int
    flash_attn: bool


def resolve_context(hp: HParams, s: LlamaCppSettings) -> Context:
    """n_batch capped by the unpadded n_ctx, n_ubatch by n_batch, then n_ctx padded to 256 (and per stream)."""
    n_ctx = s.n_ctx or hp.n_ctx_train
    n_batch = min(n_ctx, s.n_batch)  # causal attention
    n_ubatch = min(n_batch, s.n_ubatch or n_batch)
    n_ctx = pad(n_ctx, CTX_PAD)
    if s.kv_unified:
        n_ctx_seq, n_stream = n_ctx, 1
    else:
        n_ctx_seq, n_stream = pad(n_ctx // s.n_seq_max, CTX_PAD), s.n_seq_max
        n_ctx = n_ctx_seq * s.n_seq_max
    return Context(n_ctx, n_ctx_seq, n_batch, n_ubatch, n_stream, s.flash_attn in ("on", "auto"))


def _repackable(t, s: LlamaCppSettings) -> bool:
    """A 2-D weight (MUL_MAT) or 3-D expert weight (MUL_MAT_ID) of a type with a repacked layout for this CPU and
    rows a multiple of 8 (extra_buffer_type::supports_op, ggml-cpu/repack.cpp)."""
    return (len(t.stored_shape) in (2, 3) and t.quant in REPACK_TYPES[s.cpu]
            and t.stored_shape[1] % REPACK_ROWS == 0)


def repacked(t, s: LlamaCppSettings) -> bool:
    """CPU_REPACK takes a 2-D weight used by MUL_MAT (not token_embd: GET_ROWS) of a repackable type."""
    return t.name != "token_embd.weight" and _repackable(t, s)


def _tied_output(f: GGUFFile, s: LlamaCppSettings) -> list:
    """A file without output.weight uses token_embd as the output matrix: created a second time with
    TENSOR_DUPLICATED, whose buffer type is chosen as the output's (MUL_MAT, llama_model_loader::create_tensor,
    src/llama-model-loader.cpp), so a repackable token_embd also gets a copy in CPU_REPACK (the GET_ROWS copy stays)."""
    names = {t.name for t in f.tensors}
    if "output.weight" in names:
        return []
    return [t for t in f.tensors if t.name == "token_embd.weight" and _repackable(t, s)]


def model_buffers(f: GGUFFile, s: LlamaCppSettings) -> list[Buffer]:
    """CPU_Mapped (the file range of the tensors it holds) or CPU (no mmap: each tensor padded), then CPU_REPACK."""
    repack = [t for t in f.tensors if repacked(t, s)] + _tied_output(f, s)
    rest = [t for t in f.tensors if not repacked(t, s)]
    out = []
    if s.use_mmap:  # buffer_from_host_ptr over [min offset, max end) (get_mapping_range)
        size = max(t.offset + t.nbytes for t in rest) - min(t.offset for t in rest)
        out.append(Buffer("load_tensors", "CPU_Mapped", "model", size, SRC_MODEL + " (mmap range)"))
    else:  # ggml_backend_alloc_ctx_tensors_from_buft
        size = sum(pad(t.nbytes, CPU_ALIGNMENT) for t in rest)
        out.append(Buffer("load_tensors", "CPU", "model", size, SRC_MODEL + " (allocated, no mmap)"))
    if repack:
        out.append(Buffer("load_tensors", "CPU_REPACK", "repack", sum(pad(t.nbytes, CPU_ALIGNMENT) for t in repack),
                          "ggml/src/ggml-cpu/repack.cpp ggml_repack_get_optimal_repack_type; " + SRC_MODEL))
    return out


def _row_bytes(typ: str, n: int) -> int:
    """ggml_row_size."""
    blck, size = KV_TYPES[typ]
    return n // blck * size


def kv_caches(hp: HParams, ctx: Context, s: LlamaCppSettings, ubatch: int) -> list[KVCache]:
    """llama_model::create_memory: one cache, or (iSWA) the non-SWA cache then the SWA cache."""
    kd, vd = hp.n_head_kv * hp.head_dim_k, hp.n_head_kv * hp.head_dim_v

    def cache(swa, cells, layers):
        k = _row_bytes(s.type_k, kd) * cells * ctx.n_stream * layers
        v = _row_bytes(s.type_v, vd) * cells * ctx.n_stream * layers
        return KVCache(swa, cells, layers, s.n_seq_max, ctx.n_stream, s.type_k, s.type_v, k, v)

    n_attn = hp.n_layer - (len(hp.recurrent.layers) if hp.recurrent else 0)
    if hp.recurrent and hp.recurrent.kv_layers is not None:  # Nemotron-H's MLP blocks, Falcon-H1's parallel layers
        n_attn = hp.recurrent.kv_layers
    if not n_attn:  # a recurrent model (llm_arch_is_recurrent): llama_memory_recurrent only, no KV cache
        return []
    if not hp.n_swa:  # a hybrid model's attention cache holds only its attention layers (filter_attn)
        return [cache("", ctx.n_ctx_seq, n_attn)]
    pattern = ARCHS[hp.arch].swa_pattern
    n_swa_layers = sum(1 for il in range(hp.n_layer) if (il + 1) % pattern != 0)
    base = ctx.n_ctx_seq
    # llama_kv_cache_iswa: size_swa = PAD(min(size_base, n_swa * (unified ? n_seq_max : 1) + n_ubatch), 256)
    swa = base if s.swa_full else pad(min(base, hp.n_swa * (s.n_seq_max if s.kv_unified else 1) + ubatch), CTX_PAD)
    return [cache("non-SWA", base, hp.n_layer - n_swa_layers), cache("SWA", swa, n_swa_layers)]


def graph_shape(hp: HParams, ctx: Context, caches: list[KVCache], s: LlamaCppSettings, n_out: int) -> GraphShape:
    """One reserve graph's inputs: n_out outputs, n_tokens = n_out rounded up to a multiple of n_seq_max
    (graph_reserve), the caches in the order layer 0 onward uses them."""
    by = {c.swa: c.cells for c in caches}
    if hp.n_swa:
        pattern = ARCHS[hp.arch].swa_pattern
        first = "swa" if (0 + 1) % pattern != 0 else "base"
        cells = ((first, by["SWA" if first == "swa" else "non-SWA"]),) + (
            (("base", by["non-SWA"]),) if first == "swa" else (("swa", by["SWA"]),))
    else:
        cells = (("base", by[""]),) if by else ()
    return GraphShape(arch=hp.arch, n_layer=hp.n_layer, n_embd=hp.n_embd, n_ff=hp.n_ff, n_head=hp.n_head,
                      n_head_kv=hp.n_head_kv, head_dim=hp.head_dim_k, n_vocab=hp.n_vocab,
                      n_tokens=-(-n_out // s.n_seq_max) * s.n_seq_max, n_outputs=n_out, n_stream=ctx.n_stream,
                      cells=cells, flash_attn=ctx.flash_attn, type_k=s.type_k, type_v=s.type_v,
                      n_expert=hp.n_expert, n_expert_used=hp.n_expert_used,
                      n_ff_exp=hp.n_ff_exp or (hp.n_ff // hp.n_expert_used if ARCHS[hp.arch].n_ff_exp_from_used
                                               and hp.n_expert_used else hp.n_ff),
                      n_seqs=s.n_seq_max, recurrent_layers=hp.recurrent.layers if hp.recurrent else (),
                      n_embd_r=hp.recurrent.n_embd_r if hp.recurrent else 0,
                      ssm=hp.recurrent.ssm if hp.recurrent else (), extras=hp.extras,
                      n_ff_shexp=hp.n_ff_shexp or hp.n_ff, n_dense_lead=hp.n_dense_lead)


@dataclass(frozen=True)
class Prediction:
    """Everything llama.cpp prints about memory for one load, in its print order."""

    context: Context
    buffers: tuple  # Buffer, in llama.cpp's print order
    kv_caches: tuple  # KVCache
    warnings: tuple  # str
    rs_caches: tuple = ()  # RSCache: the recurrent state of a hybrid model (llama_memory_recurrent)


def _check(hp: HParams, s: LlamaCppSettings, ctx: Context) -> list[str]:
    if s.n_gpu_layers or s.override_tensor or s.n_cpu_moe:
        raise NotImplementedError("predict_buffers is the CPU build's buffers: GPU offload (-ngl, -ot, "
                                  "--n-cpu-moe) is llamacpp_offload.device_buffers")
    for t in (s.type_k, s.type_v):
        if t not in KV_TYPES:
            raise ValueError(f"unknown KV cache type {t!r} (known: {', '.join(KV_TYPES)})")
    if s.type_v not in ("f32", "f16", "bf16") and not ctx.flash_attn:
        raise ValueError("quantized V cache was requested, but this requires Flash Attention")  # llama-context.cpp
    warn = []
    if hp.n_ctx_train and ctx.n_ctx_seq > hp.n_ctx_train:
        warn.append(f"n_ctx_seq ({ctx.n_ctx_seq}) > n_ctx_train ({hp.n_ctx_train}) -- "
                    "possible training context overflow")
    return warn


def predict_buffers(f: GGUFFile, s: LlamaCppSettings) -> Prediction:
    """The entry point: every buffer llama.cpp prints loading ``f`` with settings ``s`` (CPU only)."""
    hp = hparams(f)
    ctx = resolve_context(hp, s)
    warn = _check(hp, s, ctx)
    caches = kv_caches(hp, ctx, s, ctx.n_ubatch)
    out = model_buffers(f, s)
    # output_reserve(n_seq_max): n_vocab floats per output (no embeddings output)
    out.append(Buffer("llama_context", "CPU", "output", hp.n_vocab * s.n_seq_max * 4, SRC_OUTPUT))
    kv_status = _kv_status(hp.arch, f.metadata, warn)
    out += [Buffer("llama_kv_cache", "CPU", "kv", _pad_kv(c), SRC_KV, kv_status) for c in caches]
    rs = [rs_cache(hp.recurrent, hp.n_layer, s.n_seq_max)] if hp.recurrent else []
    # the recurrent state is part of the model's memory beside the KV cache (the kind "kv"); its function
    # (llama_memory_recurrent) tells it apart, and llama.cpp prints it as an "RS buffer"
    out += [Buffer("llama_memory_recurrent", "CPU", "kv", c.buffer_bytes, SRC_RS) for c in rs]
    if hp.arch in RECURRENT_ARCHS and not hp.recurrent:
        warn.append(f"recurrent state: not modelled for architecture {hp.arch!r} "
                    "(modelled: lfm2, lfm2moe, granitehybrid, mamba2); "
                    "the KV cache counts every layer")
    why = unmodelled(hp.arch, f.metadata, hp.n_expert)
    if not why:
        # sched_reserve: the pp graph (min(n_ctx, n_ubatch) tokens and outputs), the tg graph (n_seq_max of
        # each), pp again; the buffer only grows: the largest of the allocations
        pp = compute_bytes(graph_shape(hp, ctx, caches, s, min(ctx.n_ctx, ctx.n_ubatch)))
        tg = compute_bytes(graph_shape(hp, ctx, caches, s, s.n_seq_max))
        out.append(Buffer("sched_reserve", "CPU", "compute", max(pp, tg), SRC_COMPUTE))
    else:
        warn.append(f"compute buffer: {why}")
    return Prediction(ctx, tuple(out), tuple(caches), tuple(warn), tuple(rs))


def _kv_status(arch: str, meta: dict, warn: list) -> str:
    """exact (an architecture checked against llama.cpp), not modelled (a key makes llama.cpp split the cache
    otherwise) or assumed (an architecture never checked: the generic single cache); warnings say why."""
    why = _kv_unmodelled(arch, meta)
    if why:
        warn.append(f"KV cache: {why}")
        return "not modelled"
    if arch not in ARCHS and arch not in RECURRENT_ARCHS:
        warn.append(f"KV cache: architecture {arch!r} not checked against llama.cpp: assumed one cache over "
                    "every layer, n_head_kv x head dim wide (MLA, KV sharing or sliding windows would differ)")
        return "assumed"
    return "exact"


def _kv_unmodelled(arch: str, meta: dict) -> str:
    """A window or layer pattern that makes llama.cpp split the KV cache differently from the modelled one."""
    a = ARCHS.get(arch)
    if a is None:
        return ""
    swa = f"{arch}.attention.sliding_window"
    if "attention.sliding_window" in a.unmodelled_keys and meta.get(swa):  # olmo3, lfm2 with a window: iSWA
        return (f"{swa} = {meta[swa]}: llama.cpp splits the cache into SWA and non-SWA caches for this "
                "architecture, not modelled; the single cache shown is not its size")
    why = unmodelled(arch, {k: v for k, v in meta.items() if k.endswith("sliding_window_pattern")}, 0)
    return f"{why}: the SWA/non-SWA layer counts shown assume the architecture's own pattern" if why else ""


def _pad_kv(c: KVCache) -> int:
    """The KV buffer: each layer's K and V tensors padded to 32 B (equal to the sum for these shapes)."""
    per_k, per_v = c.k_bytes // c.layers, c.v_bytes // c.layers
    return c.layers * (pad(per_k, CPU_ALIGNMENT) + pad(per_v, CPU_ALIGNMENT))


# the formats of the lines printed (LLAMA_LOG_INFO in load_tensors, llama_context, llama_kv_cache(_iswa),
# sched_reserve; the same files as above)
BUFFER_LINE = {"model": "{func}: {device:>12} model buffer size = {mib:>8} MiB",
                "repack": "{func}: {device:>12} model buffer size = {mib:>8} MiB",
                "output": "{func}: {device:>10}  output buffer size = {mib:>8} MiB",
                "kv": "{func}: {device:>10} KV buffer size = {mib:>8} MiB",
                "compute": "{func}: {device:>10} compute buffer size = {mib:>8} MiB"}


def kv_line(c: KVCache) -> str:
    """``llama_kv_cache: size = ...``: cells per stream, layers, n_seq_max/n_stream, K and V."""
    return (f"llama_kv_cache: size = {c.mib():>7} MiB ({c.cells:6d} cells, {c.layers:3d} layers, "
            f"{c.n_seq_max:2d}/{c.n_stream} seqs), K ({c.type_k}): {c.mib('k'):>7} MiB, "
            f"V ({c.type_v}): {c.mib('v'):>7} MiB")


def printout(pred: Prediction) -> list[str]:
    """The memory lines llama.cpp prints for this load, in its order and words (CPU only)."""
    lines, caches, states = [], list(pred.kv_caches), list(pred.rs_caches)
    for b in pred.buffers:
        if b.func == "llama_memory_recurrent":
            lines += rs_lines(states.pop(0), b.device)
        elif b.kind == "kv":
            c = caches.pop(0)
            if c.swa:
                label = "non-SWA" if c.swa == "non-SWA" else "    SWA"
                lines.append(f"llama_kv_cache_iswa: creating {label} KV cache, size = {c.cells} cells")
            lines.append(BUFFER_LINE["kv"].format(func=b.func, device=b.device, mib=b.mib))
            lines.append(kv_line(c))
        else:
            lines.append(BUFFER_LINE[b.kind].format(func=b.func, device=b.device, mib=b.mib))
    return lines


def to_json(pred: Prediction) -> dict:
    """The JSON of the issue: ``buffers`` (device, kind, mib as printed, bytes, status, source), the KV caches,
    the resolved context and the warnings."""
    return {"buffers": [{"func": b.func, "device": b.device, "kind": b.kind, "mib": b.mib, "bytes": b.nbytes,
                         "status": b.status, "source": b.source} for b in pred.buffers],
            "kv_caches": [{"cache": c.swa or "KV", "cells": c.cells, "layers": c.layers,
                           "seqs": f"{c.n_seq_max}/{c.n_stream}", "type_k": c.type_k, "k_bytes": c.k_bytes,
                           "type_v": c.type_v, "v_bytes": c.v_bytes, "mib": c.mib()} for c in pred.kv_caches],
            "rs_caches": [{"cells": c.cells, "layers": c.layers, "seqs": c.n_seq_max, "type_r": "f32",
                           "r_bytes": c.r_bytes, "type_s": "f32", "s_bytes": c.s_bytes, "mib": c.mib()}
                          for c in pred.rs_caches],
            "context": {"n_ctx": pred.context.n_ctx, "n_ctx_seq": pred.context.n_ctx_seq,
                        "n_batch": pred.context.n_batch, "n_ubatch": pred.context.n_ubatch,
                        "n_stream": pred.context.n_stream, "flash_attn": pred.context.flash_attn},
            "warnings": list(pred.warnings)}
