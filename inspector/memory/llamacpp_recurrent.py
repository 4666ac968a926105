"""The recurrent state llama.cpp keeps for hybrid and recurrent models (``llama_memory_recurrent``): R and S per layer.

Pure arithmetic. Sources, in ggml-org/llama.cpp@0c1e57098 (the llama.cpp llama-cpp-python 0.3.36 vendors):

* which layers are recurrent: the architecture's ``load_arch_hparams`` (src/models/lfm2.cpp:
  ``is_recr_impl[il] = n_head_kv(il) == 0``, the per-layer ``attention.head_count_kv`` array);
* the widths: ``llama_hparams::n_embd_r`` / ``n_embd_s`` (src/llama-hparams.cpp): LFM2's short convolution keeps
  ``n_embd * (shortconv.l_cache - 1)`` floats of R per cell and no S (``ssm_d_state * ssm_d_inner = 0``); a Mamba-2
  layer (granitehybrid) ``(d_conv - 1) * (d_inner + 2 n_group d_state)`` of R and ``d_state * d_inner`` of S
  (the same for nemotron_h, whose recurrent layers are those with head_count_kv and feed_forward_length 0,
  src/models/nemotron-h.cpp, and falcon-h1, all of whose layers are, src/models/falcon-h1.cpp; which layers join
  the attention cache: llama_model::create_memory's filter_attn in src/llama-model.cpp);
* the sizes: ``llama_memory_recurrent::llama_memory_recurrent`` (src/llama-memory-recurrent.cpp): per recurrent
  layer an R tensor ``[n_embd_r, mem_size * (1 + n_rs_seq)]`` and an S tensor ``[n_embd_s, ...]`` (f32, the types
  ``llama_model::create_memory`` passes), ``mem_size = max(1, n_seq_max)`` cells; one CPU buffer per buffer type,
  each tensor padded to 32 B; its size line counts every layer of the model.

Checked against llama.cpp's printouts and exact bytes for synthetic LFM2, Granite-hybrid, Mamba-2, Nemotron-H and
Falcon-H1 GGUFs (fixtures/llamacpp/synth, tests/test_llamacpp_archs.py; the per-device split,
tests/test_llamacpp_offload_recurrent.py).
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20
F32 = 4
ALIGN = 32  # the CPU buffer type's alignment (ggml_backend_alloc_ctx_tensors_from_buft pads each tensor)
SRC_RS = ("src/llama-memory-recurrent.cpp llama_memory_recurrent::llama_memory_recurrent; "
          "src/llama-hparams.cpp n_embd_r/n_embd_s")


@dataclass(frozen=True)
class Recurrent:
    """Which layers keep a recurrent state and how wide it is (per cell, in floats)."""

    layers: tuple  # indices of the recurrent layers
    n_embd_r: int
    n_embd_s: int
    ssm: tuple = ()  # Mamba-2: (d_conv, d_inner, d_state, n_group, n_ssm_head), for the graph
    kv_layers: int | None = None  # layers in the attention cache when not "all the others" (Nemotron-H, Falcon-H1)
    kv_layer_ids: tuple | None = None  # which ones (filter_attn), when kv_layers is given

    def attention_layers(self, n_layer: int) -> tuple:
        """The layers llama_model::create_memory's filter_attn keeps in the attention cache: the given ones
        (Nemotron-H's attention blocks, every Falcon-H1 layer), else every layer that is not recurrent."""
        if self.kv_layer_ids is not None:
            return self.kv_layer_ids
        recr = set(self.layers)
        return tuple(il for il in range(n_layer) if il not in recr)


@dataclass(frozen=True)
class RSCache:
    """One ``llama_memory_recurrent: size = ...`` line: cells, layers (all of the model's), R and S bytes."""

    cells: int
    layers: int
    n_seq_max: int
    n_rs_seq: int
    r_bytes: int
    s_bytes: int
    buffer_bytes: int  # the RS buffer: each layer's R and S tensors padded to 32 B

    @property
    def nbytes(self) -> int:
        return self.r_bytes + self.s_bytes

    def mib(self, which: str = "") -> str:
        n = {"r": self.r_bytes, "s": self.s_bytes, "p": 0}.get(which, self.nbytes)
        return f"{n / MIB:.2f}"


def _shortconv(arch: str):
    """LFM2 / LFM2-MoE: short-convolution layers where head_count_kv is 0; R = n_embd * (l_cache - 1), no S."""

    def rule(meta: dict, n_layer: int, n_embd: int) -> Recurrent:
        kv = meta.get(f"{arch}.attention.head_count_kv")
        heads = list(kv) if isinstance(kv, (list, tuple)) else [kv] * n_layer
        return Recurrent(layers=tuple(il for il, h in enumerate(heads) if h == 0),
                         n_embd_r=n_embd * (meta[f"{arch}.shortconv.l_cache"] - 1), n_embd_s=0)

    return rule


def _per_layer(meta: dict, key: str, n_layer: int) -> list:
    v = meta.get(key)
    return list(v) if isinstance(v, (list, tuple)) else [v] * n_layer


def _mamba2_hybrid(arch: str, pure: bool = False, layout: str = "kv0"):
    """Mamba-2 layers where head_count_kv is 0 (src/models/granite-hybrid.cpp: ``is_recr_impl[i] = n_head_kv(i) == 0``),
    or every layer (``pure``: mamba2, llm_arch_is_recurrent): R = (d_conv - 1) * (d_inner + 2 * n_group * d_state)
    (the conv states), S = d_state * d_inner (the SSM states). `layout` "nemotron": recurrent where head_count_kv
    and feed_forward_length are both 0 (src/models/nemotron-h.cpp), the attention cache on the other layers with
    feed_forward_length 0 (llama_model::create_memory's filter_attn: the MLP/MoE blocks hold neither); "parallel"
    (Falcon-H1): every layer recurrent and every layer in the attention cache (both filters always true)."""

    def rule(meta: dict, n_layer: int, n_embd: int) -> Recurrent:
        heads = [0] * n_layer if pure or layout == "parallel" else \
            _per_layer(meta, f"{arch}.attention.head_count_kv", n_layer)
        ffs = _per_layer(meta, f"{arch}.feed_forward_length", n_layer) if layout == "nemotron" else [0] * n_layer
        d_conv, d_inner = meta[f"{arch}.ssm.conv_kernel"], meta[f"{arch}.ssm.inner_size"]
        d_state, n_group = meta[f"{arch}.ssm.state_size"], meta.get(f"{arch}.ssm.group_count", 0)
        ids = {"nemotron": tuple(il for il, (h, f) in enumerate(zip(heads, ffs)) if h and not f),
               "parallel": tuple(range(n_layer))}.get(layout)
        return Recurrent(layers=tuple(il for il, (h, f) in enumerate(zip(heads, ffs)) if h == 0 and not f),
                         n_embd_r=(d_conv - 1) * (d_inner + 2 * n_group * d_state) if d_conv else 0,
                         n_embd_s=d_state * d_inner,
                         ssm=(d_conv, d_inner, d_state, n_group, meta.get(f"{arch}.ssm.time_step_rank", 0)),
                         kv_layers=None if ids is None else len(ids), kv_layer_ids=ids)

    return rule


# architectures whose recurrent layers are modelled (llm_arch_is_hybrid / llm_arch_is_recurrent, src/llama-arch.cpp)
RECURRENT = {"lfm2": _shortconv("lfm2"), "lfm2moe": _shortconv("lfm2moe"),
             "granitehybrid": _mamba2_hybrid("granitehybrid"), "mamba2": _mamba2_hybrid("mamba2", pure=True),
             # from the source (src/models/nemotron-h.cpp L15, falcon-h1.cpp L14, llama-model.cpp create_memory
             # L2688-2697); nemotron_h and falcon-h1 checked against llama.cpp's printouts and exact bytes of
             # synthetic GGUFs (fixtures/llamacpp/synth nemotron_h-tiny, falcon-h1-tiny); nemotron_h_moe not run
             "nemotron_h": _mamba2_hybrid("nemotron_h", layout="nemotron"),
             "nemotron_h_moe": _mamba2_hybrid("nemotron_h_moe", layout="nemotron"),
             "falcon-h1": _mamba2_hybrid("falcon-h1", layout="parallel")}


def recurrent(meta: dict, arch: str, n_layer: int, n_embd: int) -> Recurrent | None:
    """The recurrent layout of a hybrid/recurrent architecture, or None (no recurrent state, or not modelled)."""
    rule = RECURRENT.get(arch)
    return rule(meta, n_layer, n_embd) if rule else None


def _pad(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def rs_cache(rec: Recurrent, n_layer: int, n_seq_max: int, n_rs_seq: int = 0) -> RSCache:
    """llama_memory_recurrent: max(1, n_seq_max) cells, (1 + n_rs_seq) rows per cell, f32 R and S per layer."""
    cells = max(1, n_seq_max)
    rows = cells * (1 + n_rs_seq)
    r, s = rec.n_embd_r * rows * F32, rec.n_embd_s * rows * F32
    n = len(rec.layers)
    return RSCache(cells=cells, layers=n_layer, n_seq_max=n_seq_max, n_rs_seq=n_rs_seq, r_bytes=n * r, s_bytes=n * s,
                   buffer_bytes=n * (_pad(r) + _pad(s)))


def rs_lines(c: RSCache, device: str = "CPU") -> list[str]:
    """The two lines llama_memory_recurrent prints (buffer, then size with R, S and P)."""
    return [f"llama_memory_recurrent: {device:>10} RS buffer size = {c.buffer_bytes / MIB:8.2f} MiB",
            f"llama_memory_recurrent: size = {c.mib():>7} MiB ({c.cells:6d} cells, {c.layers:3d} layers, "
            f"{c.n_seq_max:2d} seqs {c.n_rs_seq:2d} rs_seq), R (f32): {c.mib('r'):>7} MiB, "
            f"S (f32): {c.mib('s'):>7} MiB, P (f32): {c.mib('p'):>7} MiB"]
