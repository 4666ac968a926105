"""llama.cpp's compute buffer on paper: the reserve graph rebuilt from hyperparameters, and ggml-alloc replayed over it.

Pure arithmetic (no llama.cpp, no torch). Sources, all in ggml-org/llama.cpp@0c1e57098 (the llama.cpp that
llama-cpp-python 0.3.36 vendors):

* what is reserved: ``llama_context::sched_reserve`` / ``graph_reserve`` (src/llama-context.cpp): the
  prompt-processing graph at ``n_tokens = min(n_ctx, n_ubatch)`` tokens, all of them outputs, with the KV
  views over every cell (``init_full``); the token-generation graph is smaller and the buffer only grows;
* the graph: the architecture's builder (src/models/<arch>.cpp) and the graph inputs, attention, MoE and
  recurrent-state helpers (src/llama-graph.cpp: ``build_qkv``, ``build_attn``, ``build_attn_mha``,
  ``build_moe_ffn``, ``build_rs``, ``llama_mul_mat_hadamard``, ``build_inp_*``), written here as one layer
  template with per-architecture switches (:data:`ARCHS`), in the order ggml's graph expansion visits the nodes;
* the allocator: ``ggml_gallocr_alloc_graph_impl`` and ``ggml_dyn_tallocr`` (ggml/src/ggml-alloc.c), one
  CPU buffer (alignment 32, no maximum size), replayed by :class:`inspector.memory.llamacpp_alloc.Allocator`.

Checked against llama.cpp's exact compute bytes (``llama_get_memory_breakdown``): all 149 recorded runs and
260 held-back settings of the two real GGUFs (llama, gemma3; tests/test_llamacpp.py), and for tiny synthetic
GGUFs of qwen2, qwen3, qwen3moe, gemma2, phi3, mistral3, olmo2, gpt-oss and lfm2 (hybrid) 14 printouts each plus
held-back random settings (fixtures/llamacpp/synth, tests/test_llamacpp_archs.py). CPU only; other
architectures (e.g. granitehybrid's Mamba-2 blocks) have no template: their compute buffer is "not modelled".
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

from inspector.memory.llamacpp_alloc import FLAG_COMPUTE, FLAG_INPUT, FLAG_OUTPUT, Allocator
from inspector.memory.llamacpp_archs import ARCHS, Arch

# bytes per element of the types the graph allocates (quantized caches are views, never allocated)
ELEMENT_BYTES = {"f32": 4, "f16": 2, "bf16": 2, "i32": 4, "i64": 8}
UNQUANTIZED = frozenset({"f32", "f16", "bf16"})


@dataclass(frozen=True)
class GraphShape:
    """What the reserve graph depends on: hyperparameters and the resolved context settings."""

    arch: str
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_vocab: int
    n_tokens: int  # tokens reserved: min(n_ctx, n_ubatch) rounded up to a multiple of n_seq_max (graph_reserve)
    n_outputs: int  # outputs reserved: min(n_ctx, n_ubatch) (n_outputs_max = n_batch >= n_ubatch)
    n_stream: int  # KV streams (1 when unified)
    cells: tuple  # (("swa", n), ("base", n)): KV cells per cache, in the order the layers first use them
    flash_attn: bool
    type_k: str
    type_v: str
    n_expert: int = 0  # MoE: experts, experts used per token, expert FFN width (0: dense FFN)
    n_expert_used: int = 0
    n_ff_exp: int = 0
    n_ff_shexp: int = 0  # the shared expert's FFN width (expert_shared_feed_forward_length, default n_ff)
    n_dense_lead: int = 0  # MoE models: the first layers with a dense FFN (leading_dense_block_count)
    n_seqs: int = 1  # sequences in the reserved ubatch (n_seq_max): the recurrent blocks work per sequence
    recurrent_layers: tuple = ()  # hybrid models: the layers with a recurrent state instead of attention
    n_embd_r: int = 0  # floats of recurrent state R per sequence (llama_hparams::n_embd_r)
    ssm: tuple = ()  # Mamba-2 layers: (d_conv, d_inner, d_state, n_group, n_ssm_head) (ssm.* keys)
    # GGUF keys that add nodes: "embedding_scale" (build_inp_embd, any arch), "residual_scale", "logit_scale" and
    # "nope" (rope.scaling.finetuned false: no RoPE, no inp_pos) where the builder reads them (Arch.granite_keys)
    extras: frozenset = frozenset()


class Tensor:
    """One graph tensor: what the allocator needs (op, type, shape, strides, flags, view source, sources)."""

    __slots__ = ("id", "op", "name", "type", "ne", "nb", "nbytes", "flags", "ext", "vs", "srcs")

    def __init__(self, op, name, typ, ne, nb, flags, vs, srcs):
        self.id, self.op, self.name, self.type = None, op, name, typ
        self.ne, self.nb, self.flags, self.vs, self.srcs = ne, nb, flags, vs, list(srcs)
        # external (weights, KV cache and their views): never allocated in the compute buffer
        self.ext = vs.ext if vs is not None else (op == "NONE" and not flags)
        size = ELEMENT_BYTES.get(typ, 1)
        self.nbytes = size * ne[0] * ne[1] * ne[2] * ne[3]


class Graph:
    """Leafs and nodes in ggml's order, built with ggml-like helpers."""

    def __init__(self):
        self.leafs, self.nodes = [], []
        self._ids = itertools.count()

    def _add(self, t: Tensor, leaf: bool) -> Tensor:
        t.id = next(self._ids)
        (self.leafs if leaf else self.nodes).append(t)
        return t

    @staticmethod
    def _strides(typ, ne):
        s = ELEMENT_BYTES.get(typ, 1)
        return (s, s * ne[0], s * ne[0] * ne[1], s * ne[0] * ne[1] * ne[2])

    def leaf(self, name, typ, ne, ext=False) -> Tensor:
        ne = tuple(ne) + (1,) * (4 - len(ne))
        return self._add(Tensor("NONE", name, typ, ne, self._strides(typ, ne), 0 if ext else FLAG_INPUT,
                                None, ()), True)

    def op(self, op, name, typ, ne, *srcs, flags=FLAG_COMPUTE) -> Tensor:
        ne = tuple(ne) + (1,) * (4 - len(ne))
        return self._add(Tensor(op, name, typ, ne, self._strides(typ, ne), flags, None, srcs), False)

    def view(self, op, name, src, ne, nb=None, srcs=None) -> Tensor:
        ne = tuple(ne) + (1,) * (4 - len(ne))
        root = src.vs if src.vs is not None else src
        t = Tensor(op, name, src.type, ne, nb or self._strides(src.type, ne), FLAG_COMPUTE, root,
                   srcs if srcs is not None else (src,))
        return self._add(t, False)

    def permute(self, name, src, axes) -> Tensor:
        """ggml_permute: dimension i of src goes to position axes[i]."""
        ne, nb = [0] * 4, [0] * 4
        for i, ax in enumerate(axes):
            ne[ax], nb[ax] = src.ne[i], src.nb[i]
        return self.view("PERMUTE", name, src, ne, nb)

    def hadamard(self, x, rot) -> Tensor:
        """llama_mul_mat_hadamard (src/llama-graph.cpp): reshape to rows of the rotation size, MUL_MAT, back."""
        n = rot.ne[0]
        numel = x.ne[0] * x.ne[1] * x.ne[2] * x.ne[3]
        r = self.view("RESHAPE", "rot in", x, (n, numel // n))
        m = self.op("MUL_MAT", "hadamard", "f32", (n, numel // n), rot, r)
        return self.view("RESHAPE", "rot out", m, x.ne)


def rotation_size(head_dim: int) -> int:
    """llama_kv_cache::build_input_k_rot: the largest power of two >= 64 that divides head_dim."""
    n = 64
    while head_dim % (n * 2) == 0:
        n *= 2
    return n


def build_inputs(g: Graph, s: GraphShape) -> dict:
    """The input leafs in the order ggml discovers them (llm_graph_input_*, src/llama-graph.cpp)."""
    T, kvd = s.n_tokens, s.n_head_kv * s.head_dim
    rot_k = s.type_k not in UNQUANTIZED and s.head_dim % 64 == 0
    rot_v = s.type_v not in UNQUANTIZED and s.head_dim % 64 == 0
    inp = {"tokens": g.leaf("inp_tokens", "i32", (T,))}
    g.leaf("inp_embd", "f32", (s.n_embd, T))  # built beside inp_tokens, unused, allocated and never freed
    mask_type = "f16" if s.flash_attn else "f32"
    rs_first = 0 in s.recurrent_layers  # rs_s_copy is discovered with the first recurrent layer
    if rs_first:
        inp["s_copy"] = g.leaf("rs_s_copy", "i32", (max(1, s.n_seqs),))
    for n, (cache, cells) in enumerate(s.cells):
        k_rot = g.leaf("attn_inp_k_rot", "f32", (rotation_size(s.head_dim),) * 2) if rot_k else None
        if n == 0:
            inp["pos"] = None if "nope" in s.extras else g.leaf("inp_pos", "i32", (T,))
        v_rot = g.leaf("attn_inp_v_rot", "f32", (64, 64)) if rot_v else None
        k_idxs = g.leaf("attn_inp_k_idxs", "i64", (T,))
        # V written transposed (no flash attention): one index per element
        v_idxs = g.leaf("attn_inp_v_idxs", "i64", (T,) if s.flash_attn else (T * kvd,))
        mask = g.leaf("attn_inp_kq_mask", mask_type, (cells, T // s.n_stream, 1, s.n_stream))
        inp[cache] = {"cells": cells, "k_rot": k_rot, "v_rot": v_rot, "k_idxs": k_idxs, "v_idxs": v_idxs,
                      "mask": mask}
    if s.recurrent_layers and not rs_first:
        inp["s_copy"] = g.leaf("rs_s_copy", "i32", (max(1, s.n_seqs),))
    inp["out_ids"] = g.leaf("out_ids", "i32", (s.n_outputs,))
    return inp


def _project(g: Graph, s: GraphShape, a: Arch, x, w, which: str, fused):
    """One of Q, K, V as build_qkv makes it, [hd, heads, T]: its own matmul (+ bias), reshaped, or a strided view
    of the fused QKV matmul."""
    T, hd = s.n_tokens, s.head_dim
    heads = s.n_head if which == "q" else s.n_head_kv
    if fused is not None:
        return g.view("VIEW", which, fused, (hd, heads, T), (4, 4 * hd, fused.nb[1], fused.nb[1] * T))
    t = g.op("MUL_MAT", which, "f32", (heads * hd, T), w, x)
    if a.qkv_bias:
        t = g.op("ADD", which + " bias", "f32", t.ne, t, w)
    if a.qk_norm_full and which != "v":
        t = g.op("MUL", which + " normed", "f32", t.ne, g.op("RMS_NORM", "norm", "f32", t.ne, t), w)
    return g.view("RESHAPE", which, t, (hd, heads, T))


def _qkv(g: Graph, s: GraphShape, a: Arch, x, ctx) -> tuple:
    """Q, K, V of one layer, roped, normed and rotated as the architecture does (in the graph's order)."""
    w, pos = ctx["w"], ctx["pos"]
    rot_k, rot_v = ctx["cache"]["k_rot"], ctx["cache"]["v_rot"]
    fused = None
    if a.fused_qkv:
        fused = g.op("MUL_MAT", "wqkv", "f32", (s.head_dim * (s.n_head + 2 * s.n_head_kv), s.n_tokens), w, x)
        if a.qkv_bias:  # wqkv_b
            fused = g.op("ADD", "wqkv_b", "f32", fused.ne, fused, w)
    out = {}
    for which in a.qkv_order:
        t = _project(g, s, a, x, w, which, fused)
        if which == "v":
            out["v"] = g.hadamard(t, rot_v) if rot_v else t
            continue
        if a.qk_norm:
            t = g.op("RMS_NORM", "norm", "f32", t.ne, t)
            t = g.op("MUL", which + " normed", "f32", t.ne, t, w)
        no_rope = (a.no_rope_step and (ctx["il"] + 1) % a.no_rope_step == 0) or (a.rope_swa_only and not ctx["swa"])
        if pos is not None and not no_rope:
            t = g.op("ROPE", which, "f32", t.ne, t, pos)
        if which == "q" and a.q_scale:
            t = g.op("SCALE", "q scaled", "f32", t.ne, t)
        out[which] = g.hadamard(t, rot_k) if rot_k else t
    return out["q"], out["k"], out["v"]


def _attn_scores(g: Graph, s: GraphShape, q, kc, vc, ctx) -> Tensor:
    """No flash attention: V stored transposed, kq = K^T Q (f32), soft_max in place, kqv, CONT."""
    T, hd, H, Hkv, ns = s.n_tokens, s.head_dim, s.n_head, s.n_head_kv, s.n_stream
    cache, n_kv, kvd = ctx["cache"], ctx["cache"]["cells"], s.n_head_kv * s.head_dim
    v = ctx["v"]
    if ctx["arch"].fused_qkv:  # a strided view of the fused projection: copied contiguous first
        v1 = g.op("CONT", "v cont", "f32", (kvd, T), v)
    else:
        v1 = g.view("RESHAPE", "v", v, (kvd, T))
    v2 = g.view("RESHAPE", "v", v1, (1, kvd * T))
    cvr = g.view("RESHAPE", "cache_v", vc, (1, kvd * n_kv))
    g.view("SET_ROWS", "cache_v set", vc, (1, kvd * n_kv), srcs=(v2, cache["v_idxs"], cvr))
    vp = g.permute("cache_v", g.view("VIEW", "cache_v", vc, (n_kv, Hkv, hd, ns)), (0, 2, 1, 3))
    kp = g.permute("cache_k", g.view("VIEW", "cache_k", kc, (hd, Hkv, n_kv, ns)), (0, 2, 1, 3))
    qp = g.permute("q", g.view("VIEW", "q", q, (hd, H, T // ns, ns)), (0, 2, 1, 3))
    kq = g.op("MUL_MAT", "kq", "f32", (n_kv, T // ns, H, ns), kp, qp)
    if ctx["arch"].attn_softcap:  # in place: ggml_scale, ggml_tanh, ggml_scale
        for op in ("SCALE", "UNARY", "SCALE"):
            kq = g.op(op, "kq softcap", "f32", kq.ne, kq)
    kq = g.op("SOFT_MAX", "kq_soft_max", "f32", kq.ne, kq, cache["mask"])
    kqv = g.op("MUL_MAT", "kqv", "f32", (hd, T // ns, H, ns), vp, kq)
    return g.op("CONT", "kqv_out", "f32", (H * hd, T), g.permute("kqv", kqv, (0, 2, 1, 3)))


def _attn_flash(g: Graph, s: GraphShape, q, kc, vc, ctx) -> Tensor:
    """Flash attention: one FLASH_ATTN_EXT; f32 caches cast to f16 (ggml_cast, every stream's view: get_k/get_v
    view all n_stream streams). (A quantized V is rotated back in build_attn, after the expanded kqv_out.)"""
    T, hd, H, Hkv, ns = s.n_tokens, s.head_dim, s.n_head, s.n_head_kv, s.n_stream
    cache, n_kv, kvd = ctx["cache"], ctx["cache"]["cells"], s.n_head_kv * s.head_dim
    v1 = g.view("VIEW", "v", ctx["v"], (kvd, T))
    g.view("SET_ROWS", "cache_v set", vc, (kvd, n_kv), srcs=(v1, cache["v_idxs"], vc))
    qp = g.permute("q", g.view("VIEW", "q", q, (hd, H, T // ns, ns)), (0, 2, 1, 3))
    kp = g.permute("cache_k", g.view("VIEW", "cache_k", kc, (hd, Hkv, n_kv, ns)), (0, 2, 1, 3))
    if s.type_k == "f32":
        kp = g.op("CPY", "k f16", "f16", kp.ne, kp)
        kp.srcs.append(kp)
    vp = g.permute("cache_v", g.view("VIEW", "cache_v", vc, (hd, Hkv, n_kv, ns)), (0, 2, 1, 3))
    if s.type_v == "f32":
        vp = g.op("CPY", "v f16", "f16", vp.ne, vp)
        vp.srcs.append(vp)
    fo = g.op("FLASH_ATTN_EXT", "fa", "f32", (hd, H, T // ns, ns), qp, kp, vp, cache["mask"])
    o = g.view("RESHAPE", "kqv_out", fo, (H * hd, T))
    return o


def _attention(g: Graph, s: GraphShape, a: Arch, il: int, x, ctx) -> Tensor:
    """build_qkv, the KV stores and build_attn (scores or flash attention) up to the output projection."""
    q, k, ctx["v"] = _qkv(g, s, a, x, ctx)
    kc, vc = ctx["k_cache"][il], ctx["v_cache"][il]
    kv_ = g.view("VIEW", "k", k, (s.n_head_kv * s.head_dim, s.n_tokens))
    g.view("SET_ROWS", "cache_k set", kc, (s.n_head_kv * s.head_dim, ctx["cache"]["cells"]),
           srcs=(kv_, ctx["cache"]["k_idxs"], kc))
    o = (_attn_flash if s.flash_attn else _attn_scores)(g, s, q, kc, vc, ctx)
    # build_attn expands the attention into the graph; the output projection joins it later (deferred)
    v_rot = ctx["cache"]["v_rot"]

    def finish():  # the rotation back of a quantized V (llama_mul_mat_hadamard), wo, wo_b
        out = g.op("MUL_MAT", "attn_out", "f32", (s.n_embd, s.n_tokens), ctx["w"], g.hadamard(o, v_rot) if v_rot else o)
        return g.op("ADD", "attn_out biased", "f32", out.ne, out, ctx["w"]) if a.wo_bias else out

    return finish


def _rs_read(g: Graph, s: GraphShape, il: int, ctx) -> Tensor:
    """llm_graph_context::build_rs: the layer's state rows gathered through rs_s_copy (the zeroing scale and the
    extra rows' copy act on the cache: no compute memory), reshaped to the conv window [d_conv, n_embd, n_seqs].
    In the graph before the block's own nodes: build_rs expands them at once."""
    S, cache = max(1, s.n_seqs), ctx["r_cache"][il]
    states = g.view("RESHAPE", "states", cache, (s.n_embd_r, S))
    g.view("SCALE", "state zero", g.view("VIEW", "state zero", states, (s.n_embd_r,)), (s.n_embd_r,))
    if "s_main" not in ctx:  # the s_copy views are made once (build_rs_inp_impl) and shared by the layers
        ctx["s_main"] = g.view("VIEW", "s_copy main", ctx["s_copy"], (S,))
    rows = g.op("GET_ROWS", "states", "f32", (s.n_embd_r, S), states, ctx["s_main"])
    if "s_extra" not in ctx:
        ctx["s_extra"] = g.view("VIEW", "s_copy extra", ctx["s_copy"], (0,))
    extra = g.op("GET_ROWS", "states extra", "f32", (s.n_embd_r, 0), states, ctx["s_extra"])
    dst = g.view("VIEW", "states extra dst", cache, (s.n_embd_r, 0))
    g.view("CPY", "states extra store", dst, (s.n_embd_r, 0), srcs=(extra, dst))
    d_conv = s.ssm[0] - 1 if s.ssm else s.n_embd_r // s.n_embd  # Mamba-2: ssm.conv_kernel; LFM2: l_cache
    return g.view("RESHAPE", "conv", rows, (d_conv, s.n_embd_r // d_conv, S))


def _shortconv(g: Graph, s: GraphShape, il: int, x, ctx) -> Tensor:
    """LFM2's short-convolution block (src/models/lfm2.cpp build_shortconv_block): in_proj split in three (b, c, x),
    b*x transposed after the conv state, the new state stored, ssm_conv, c*conv, out_proj."""
    E, S = s.n_embd, max(1, s.n_seqs)
    T, d_conv, w, conv = s.n_tokens // S, s.n_embd_r // s.n_embd, ctx["w"], ctx["conv"]
    xr = g.view("RESHAPE", "x", x, (E, T, S))
    bcx = g.op("MUL_MAT", "in_proj", "f32", (3 * E, T, S), w, xr)
    nb = (4, bcx.nb[1], bcx.nb[2], bcx.nb[3])
    b, xx = (g.view("VIEW", n, bcx, (E, T, S), nb) for n in ("b", "x"))
    bx = g.op("MUL", "bx", "f32", (E, T, S), b, xx)
    bxt = g.view("TRANSPOSE", "bx t", bx, (T, E, S), (bx.nb[1], 4, bx.nb[2], bx.nb[3]))
    cat = g.op("CONCAT", "conv in", "f32", (d_conv + T, E, S), conv, bxt)
    snap = g.view("VIEW", "conv snap", cat, (d_conv, E, S), cat.nb)
    dst = g.view("VIEW", "conv state dst", ctx["r_cache"][il], (s.n_embd_r, S))
    g.view("CPY", "conv state store", dst, (s.n_embd_r, S), srcs=(snap, dst))

    def finish():  # reached only from the block's output (the state store above was expanded at once)
        c = g.view("VIEW", "c", bcx, (E, T, S), nb)
        y = g.op("MUL", "y", "f32", (E, T, S), c, g.op("SSM_CONV", "conv", "f32", (E, T, S), cat, w))
        y = g.op("MUL_MAT", "out_proj", "f32", (E, T, S), w, y)
        return g.view("RESHAPE", "out_proj", y, (E, T * S))

    return finish


def _mamba2(g: Graph, s: GraphShape, il: int, x, ctx):
    """A Mamba-2 block (src/models/mamba-base.cpp build_mamba2_layer): ssm_in, the conv over the state and xBC
    (state stored), then build_rs on the SSM state with ssm_conv (+ bias, silu), dt (+ bias) and ssm_scan (final
    state stored); the rest (y + x*D, gated by z, grouped RMS norm, ssm_out) is reached from the block's output."""
    d_conv, d_inner, d_state, n_group, n_head = s.ssm
    S, w = max(1, s.n_seqs), ctx["w"]
    T, hd, cd = s.n_tokens // S, d_inner // n_head, d_inner + 2 * n_group * d_state
    zx = g.op("MUL_MAT", "ssm_in", "f32", (2 * d_inner + 2 * n_group * d_state + n_head, s.n_tokens), w, x)
    zx = g.view("RESHAPE", "zxBCdt", zx, (zx.ne[0], T, S))
    nb = (4, zx.nb[1], zx.nb[2], zx.nb[3])
    xbc = g.view("VIEW", "xBC", zx, (cd, T, S), nb)
    cat = g.op("CONCAT", "conv_x", "f32", (d_conv - 1 + T, cd, S), ctx["conv"],
               g.view("TRANSPOSE", "xBC t", xbc, (T, cd, S), (zx.nb[1], 4, zx.nb[2], zx.nb[3])))
    _store(g, ctx["r_cache"][il], g.view("VIEW", "last conv", cat, (d_conv - 1, cd, S), cat.nb), (s.n_embd_r, S))
    states = g.view("RESHAPE", "ssm states", ctx["s_cache"][il], (d_state * d_inner, S))
    g.view("SCALE", "state zero", g.view("VIEW", "state zero", states, (d_state * d_inner,)), (d_state * d_inner,))
    ssm = g.view("RESHAPE", "ssm", states, (d_state, hd, n_head, S))
    xbc = g.op("SSM_CONV", "ssm_conv", "f32", (cd, T, S), cat, w)
    xbc = g.op("UNARY", "silu", "f32", xbc.ne, g.op("ADD", "conv bias", "f32", xbc.ne, xbc, w))
    xs = g.view("VIEW", "x", xbc, (hd, n_head, T, S), (4, 4 * hd, xbc.nb[1], xbc.nb[2]))
    dt = g.op("CONT", "dt", "f32", (n_head, T, S), g.view("VIEW", "dt", zx, (n_head, T, S), nb))
    dt = g.op("ADD", "dt bias", "f32", dt.ne, dt, w)
    bc = [g.view("VIEW", n, xbc, (d_state, n_group, T, S), (4, 4 * d_state, xbc.nb[1], xbc.nb[2])) for n in "BC"]
    y_ssm = g.op("SSM_SCAN", "ssm_scan", "f32", (d_inner * T * S + d_state * d_inner * S,), ssm, xs, dt, w,
                 *bc, ctx["s_main"])
    extra = g.op("GET_ROWS", "states extra", "f32", (d_state * d_inner, 0), states, ctx["s_extra"])
    _store(g, ctx["s_cache"][il], extra, (d_state * d_inner, 0))
    _store(g, ctx["s_cache"][il], g.view("VIEW", "final state", y_ssm, (d_state * d_inner, S)), (d_state * d_inner, S))

    def finish():
        z = g.op("CONT", "z", "f32", (hd, n_head, T, S), g.view("VIEW", "z", zx, (hd, n_head, T, S), nb))
        y = g.view("VIEW", "y", y_ssm, (hd, n_head, T, S))
        y = g.op("ADD", "y_add_d", "f32", y.ne, y, g.op("MUL", "x D", "f32", xs.ne, xs, w))
        y = g.view("RESHAPE", "y", g.op("GLU", "y gated", "f32", y.ne, z, y), (d_inner // n_group, n_group, T, S))
        y = g.op("MUL", "ssm_norm", "f32", y.ne, g.op("RMS_NORM", "norm", "f32", y.ne, y), w)
        return g.op("MUL_MAT", "ssm_out", "f32", (s.n_embd, T * S), w, g.view("RESHAPE", "y", y, (d_inner, T * S)))

    return finish


def _store(g: Graph, cache, src, ne) -> None:
    """ggml_cpy of src into a view of a state cache (no compute memory: the destination is the cache)."""
    dst = g.view("VIEW", "state dst", cache, ne)
    g.view("CPY", "state store", dst, ne, srcs=(src, dst))


def _layer(g: Graph, s: GraphShape, a: Arch, il: int, inpL, ctx):
    """One block's head (build_norm, then build_attn or the recurrent block up to what they expand into the graph);
    returns the tail (output projection, residual, build_ffn), which the graph reaches only later: a following
    recurrent layer's state reads (build_rs) come before it."""
    x = _norm(g, a, inpL, ctx["w"]) if a.pre_norms else inpL
    if il in s.recurrent_layers:
        finish = (_mamba2 if s.ssm else _shortconv)(g, s, il, x, ctx)
    else:
        finish = _attention(g, s, a, il, x, ctx)
    if a.parallel:
        return lambda: _parallel_tail(g, s, a, il, inpL, finish, ctx, x)
    if s.n_expert and il >= s.n_dense_lead:  # build_moe_ffn's expands reach the tail up to the experts now
        return _layer_tail(g, s, a, il, inpL, finish, ctx)
    return lambda: _layer_tail(g, s, a, il, inpL, finish, ctx)()


def _parallel_tail(g: Graph, s: GraphShape, a: Arch, il: int, inpL, finish, ctx, x) -> Tensor:
    """cohere2's block: FFN of the block's norm x, plus the residual, plus the attention output (the last layer
    keeps the output rows of all three)."""
    w, rows = ctx["w"], il == s.n_layer - 1
    E, T = s.n_embd, s.n_outputs if rows else s.n_tokens
    if rows:
        x = g.op("GET_ROWS", "ffn_inp rows", "f32", (E, T), x, ctx["out_ids"])
    y = _ffn(g, s, a, x, w)
    if rows:
        inpL = g.op("GET_ROWS", "inp rows", "f32", (E, T), inpL, ctx["out_ids"])
    y = g.op("ADD", "ffn + residual", "f32", (E, T), y, inpL)
    att = finish()
    if rows:
        att = g.op("GET_ROWS", "out rows", "f32", (E, T), att, ctx["out_ids"])
    return g.op("ADD", "l_out", "f32", (E, T), y, att)


def _layer_tail(g: Graph, s: GraphShape, a: Arch, il: int, inpL, finish, ctx):
    """The block's output (finish), the last layer's output rows, post norms, residual and the FFN's norm; an MoE
    FFN too (build_moe_ffn expands its nodes into the graph at once). Returns the rest (a dense FFN, post norm,
    residual), which the graph reaches only from the next layer."""
    T, E, w = s.n_tokens, s.n_embd, ctx["w"]
    last = il == s.n_layer - 1 and not a.out_rows_at_end
    if last and a.attn_residual_first:  # ADD(residual rows, block rows): ggml visits the residual's rows first
        T = s.n_outputs
        inpL = g.op("GET_ROWS", "inp rows", "f32", (E, T), inpL, ctx["out_ids"])
        att = g.op("GET_ROWS", "out rows", "f32", (E, T), finish(), ctx["out_ids"])
        last = False
    else:
        att = finish()
    if last:  # the last layer keeps the output rows (applied even when all rows are outputs): two GET_ROWS
        T = s.n_outputs
        att = g.op("GET_ROWS", "out rows", "f32", (E, T), att, ctx["out_ids"])
    if a.post_norms:
        att = g.op("RMS_NORM", "norm", "f32", (E, T), att)
        att = g.op("MUL", "attn_post_norm", "f32", (E, T), att, w)
    if "residual_scale" in s.extras:  # granite: the block's output scaled before each residual ADD
        att = g.op("SCALE", "residual scaled", "f32", (E, T), att)
    if last:
        inpL = g.op("GET_ROWS", "inp rows", "f32", (E, T), inpL, ctx["out_ids"])
    sa = g.op("ADD", "ffn_inp", "f32", (E, T), *((inpL, att) if a.attn_residual_first else (att, inpL)))
    if a.no_ffn:  # mamba2: the residual ADD is the layer's output
        return lambda: sa
    x = _norm(g, a, sa, w) if a.pre_norms else sa
    moe = s.n_expert and il >= s.n_dense_lead
    x = _moe_ffn(g, s, a, x, w) if moe else x
    return lambda: _layer_end(g, s, a, sa, x if moe else _ffn(g, s, a, x, w), w)


def _layer_end(g: Graph, s: GraphShape, a: Arch, sa, x, w) -> Tensor:
    """After the FFN: post norm, residual scale, the residual ADD (l_out)."""
    if a.post_norms:
        x = g.op("MUL", "ffn_post_norm", "f32", x.ne, g.op("RMS_NORM", "norm", "f32", x.ne, x), w)
    if "residual_scale" in s.extras:
        x = g.op("SCALE", "residual scaled", "f32", x.ne, x)
    return g.op("ADD", "l_out", "f32", x.ne, *((sa, x) if a.residual_first else (x, sa)))


def _norm(g: Graph, a: Arch, x, w, flags=FLAG_COMPUTE) -> Tensor:
    """build_norm: RMS norm times the weight, or LayerNorm times the weight plus the bias; the last node carries
    the flags (the output norm is a graph output)."""
    if a.layer_norm:
        x = g.op("MUL", "norm_w", "f32", x.ne, g.op("NORM", "norm", "f32", x.ne, x), w,
                 flags=FLAG_COMPUTE if a.norm_bias else flags)
        return g.op("ADD", "norm_b", "f32", x.ne, x, w, flags=flags) if a.norm_bias else x
    return g.op("MUL", "norm_w", "f32", x.ne, g.op("RMS_NORM", "norm", "f32", x.ne, x), w, flags=flags)


def _ffn(g: Graph, s: GraphShape, a: Arch, x, w) -> Tensor:
    """build_ffn, gated (LLM_FFN_PAR: gate and up, GLU, down) or with gate and up fused in one matrix (SEQ), or
    plain with biases (up + b, GELU, down + b)."""
    T = x.ne[1]
    if a.ffn_plain:
        x = g.op("ADD", "ffn_up_b", "f32", (s.n_ff, T), g.op("MUL_MAT", "ffn_up", "f32", (s.n_ff, T), w, x), w)
        x = g.op("MUL_MAT", "ffn_down", "f32", (s.n_embd, T), w, g.op("UNARY", "gelu", "f32", x.ne, x))
        return g.op("ADD", "ffn_out", "f32", x.ne, x, w)
    if a.ffn_fused_up:
        x = g.op("GLU", "ffn_glu", "f32", (s.n_ff, T), g.op("MUL_MAT", "ffn_up", "f32", (2 * s.n_ff, T), w, x))
    else:
        gate = g.op("MUL_MAT", "ffn_gate", "f32", (s.n_ff, T), w, x)
        up = g.op("MUL_MAT", "ffn_up", "f32", (s.n_ff, T), w, x)
        x = g.op("GLU", "ffn_glu", "f32", (s.n_ff, T), gate, up)
    return g.op("MUL_MAT", "ffn_out", "f32", (s.n_embd, T), w, x)


def _moe_weights(g: Graph, s: GraphShape, a: Arch, x, w) -> tuple:
    """build_moe_ffn's router: logits (+ bias), top-k by argsort, the selected experts' weights (softmax over all
    experts then normalized, or softmax over the selected logits); returns (top-k view, weights [1, k, T])."""
    T, n, k = x.ne[1], s.n_expert, s.n_expert_used
    probs = g.op("MUL_MAT", "ffn_moe_logits", "f32", (n, T), w, x)
    if a.moe_bias:
        probs = g.op("ADD", "ffn_moe_logits_biased", "f32", (n, T), probs, w)
    gating = "sigmoid" if "sigmoid_gating" in s.extras else a.moe_gating
    if gating == "softmax":
        probs = g.op("SOFT_MAX", "ffn_moe_probs", "f32", (n, T), probs)
    elif gating == "sigmoid":
        probs = g.op("UNARY", "ffn_moe_probs", "f32", (n, T), probs)
    probs_r = g.view("RESHAPE", "probs", probs, (1, n, T))
    select = g.op("ADD", "ffn_moe_probs_biased", "f32", (n, T), probs, w) if a.moe_selection_bias else probs
    order = g.op("ARGSORT", "ffn_moe_argsort", "i32", (n, T), select)
    topk = g.view("VIEW", "ffn_moe_topk", order, (k, T), (4, 4 * n, 4 * n * T, 4 * n * T))
    wts = g.op("GET_ROWS", "ffn_moe_weights", "f32", (1, k, T), probs_r, topk)
    if gating == "softmax_weight":
        wts = g.op("SOFT_MAX", "ffn_moe_weights_softmax", "f32", (k, T), g.view("RESHAPE", "weights", wts, (k, T)))
        return topk, g.view("RESHAPE", "weights", wts, (1, k, T))
    if not a.moe_norm_w:
        return topk, wts
    wts = g.view("RESHAPE", "weights", wts, (k, T))
    total = g.op("CLAMP", "sum clamped", "f32", (1, T), g.op("SUM_ROWS", "ffn_moe_weights_sum", "f32", (1, T), wts))
    wts = g.op("DIV", "ffn_moe_weights_norm", "f32", (k, T), wts, total)
    return topk, g.view("RESHAPE", "weights norm", wts, (1, k, T))


def _moe_ffn(g: Graph, s: GraphShape, a: Arch, x, w) -> Tensor:
    """build_moe_ffn (src/llama-graph.cpp): the router (_moe_weights), gate/up/down MUL_MAT_ID (+ ADD_ID biases),
    GLU, weighting, then the experts' rows added up (views ordered before the adds)."""
    T, E, k, f = x.ne[1], s.n_embd, s.n_expert_used, s.n_ff_exp
    topk, wts = _moe_weights(g, s, a, x, w)
    xr = g.view("RESHAPE", "x", x, (E, 1, T))

    def expert_mm(name, rows, src):
        t = g.op("MUL_MAT_ID", name, "f32", (rows, k, T), w, src, topk)
        return g.op("ADD_ID", name + " biased", "f32", t.ne, t, w, topk) if a.moe_bias else t

    gate = expert_mm("ffn_moe_gate", f, xr)
    h = g.op("GLU", "ffn_moe_glu", "f32", (f, k, T), gate, expert_mm("ffn_moe_up", f, xr))
    y = g.op("MUL", "ffn_moe_weighted", "f32", (E, k, T), expert_mm("ffn_moe_down", E, h), wts)
    nb = (4, 4 * E * k, 4 * E * k * T, 4 * E * k * T)
    views = [g.view("VIEW", f"expert {i}", y, (E, T), nb) for i in range(k)]
    out = views[0]
    for v in views[1:]:
        out = g.op("ADD", "ffn_moe_out", "f32", (E, T), out, v)
    if a.moe_shared:  # qwen2moe: + shared FFN * sigmoid(x . w) (sigmoid as silu(g) / g)
        shared = _ffn(g, dataclasses.replace(s, n_ff=s.n_ff_shexp), a, x, w)
        gi = g.op("MUL_MAT", "ffn_shexp_gate_inp", "f32", (1, T), w, x)
        gate = g.op("DIV", "ffn_shexp_gate", "f32", (1, T), g.op("UNARY", "silu", "f32", (1, T), gi), gi)
        out = g.op("ADD", "ffn_out", "f32", (E, T), out, g.op("MUL", "ffn_shexp_out", "f32", (E, T), shared, gate))
    return out


def build_graph(s: GraphShape) -> Graph:
    """The prompt-processing reserve graph of the architecture, node for node as llama.cpp builds it."""
    a = ARCHS[s.arch]
    g = Graph()
    inp = build_inputs(g, s)
    kvd = s.n_head_kv * s.head_dim
    w = g.leaf("weights", "f32", (1,), ext=True)  # every weight: outside the compute buffer
    ctx = {"w": w, "pos": inp.get("pos"), "out_ids": inp["out_ids"], "arch": a,
           "k_cache": [g.leaf(f"cache_k_l{il}", s.type_k, (kvd, 1), ext=True) for il in range(s.n_layer)],
           "v_cache": [g.leaf(f"cache_v_l{il}", s.type_v, (kvd, 1), ext=True) for il in range(s.n_layer)],
           "r_cache": [g.leaf(f"cache_r_l{il}", "f32", (s.n_embd_r, 1), ext=True) for il in range(s.n_layer)],
           "s_cache": [g.leaf(f"cache_s_l{il}", "f32", (1, 1), ext=True) for il in range(s.n_layer)],
           "s_copy": inp.get("s_copy")}
    T, E = s.n_tokens, s.n_embd
    cur = g.op("GET_ROWS", "embd", "f32", (E, T), w, inp["tokens"])
    if "embedding_scale" in s.extras:  # build_inp_embd: f_embedding_scale
        cur = g.op("SCALE", "embd scaled", "f32", (E, T), cur)
    if a.embed_scale:
        cur = g.op("SCALE", "inp_scaled", "f32", (E, T), cur)
    tail = None
    for il in range(s.n_layer):
        swa = a.swa_pattern and (il + 1) % a.swa_pattern != 0
        ctx["cache"], ctx["il"], ctx["swa"] = inp.get("swa" if swa else "base"), il, swa
        if il in s.recurrent_layers:  # build_rs expands the state reads before the previous block's tail
            ctx["conv"] = _rs_read(g, s, il, ctx)
        cur = tail() if tail else cur
        tail = _layer(g, s, a, il, cur, ctx)
    cur = tail()
    if a.h_nextn_output:  # never freed: it stays alive below the logits
        cur.flags |= FLAG_OUTPUT
    if a.out_rows_at_end:  # one GET_ROWS on the last layer's output (openai-moe.cpp)
        cur = g.op("GET_ROWS", "out rows", "f32", (E, s.n_outputs), cur, inp["out_ids"])
    R = s.n_outputs
    x = _norm(g, a, cur, w, flags=FLAG_COMPUTE | FLAG_OUTPUT)
    logit_scale = "logit_scale" in s.extras
    out = FLAG_COMPUTE | (0 if a.final_softcap or logit_scale else FLAG_OUTPUT)
    x = g.op("MUL_MAT", "result_output", "f32", (s.n_vocab, R), w, x, flags=out)
    if logit_scale:  # granite: logits / logit_scale, in place; the scaled logits are the output
        g.op("SCALE", "result_output", "f32", x.ne, x, flags=FLAG_COMPUTE | FLAG_OUTPUT)
    if a.final_softcap:  # in place on the logits; the last one is the output
        x = g.op("SCALE", "logits scaled", "f32", x.ne, x)
        x = g.op("UNARY", "logits tanh", "f32", x.ne, x)
        g.op("SCALE", "result_output", "f32", x.ne, x, flags=FLAG_COMPUTE | FLAG_OUTPUT)
    return g


def compute_bytes(s: GraphShape) -> int:
    """llama.cpp's CPU compute buffer in bytes: the allocator replayed over the rebuilt reserve graph."""
    if s.arch not in ARCHS:
        raise ValueError(f"no llama.cpp graph template for architecture {s.arch!r} (covered: {', '.join(ARCHS)})")
    return Allocator().run(build_graph(s))
