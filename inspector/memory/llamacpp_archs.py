"""The llama.cpp architectures the reserve-graph builder covers, as data: one record of switches per architecture.

Each entry says how ``src/models/<arch>.cpp`` (ggml-org/llama.cpp@0c1e57098, the llama.cpp llama-cpp-python
0.3.36 vendors) builds its graph beyond the shared template of :mod:`inspector.memory.llamacpp_graph`; each was
checked against llama.cpp's own graph, printouts and exact bytes (the two real GGUFs, fixtures/llamacpp, and
synthetic GGUFs, fixtures/llamacpp/synth). :func:`unmodelled` names the GGUF keys that would make llama.cpp build
another graph (then the compute buffer is "not modelled", not guessed); :func:`graph_extras` the keys that add
nodes the template knows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arch:
    """The switches of one architecture's layer template (its src/models/<arch>.cpp builder)."""

    embed_scale: bool  # inp_scaled = embd * sqrt(n_embd) (gemma3)
    qk_norm: bool  # per-head RMS norm of Q and K before RoPE (gemma3)
    q_scale: bool  # Q scaled after RoPE (gemma3: by 1/sqrt(query_pre_attn_scalar))
    qkv_order: str  # the order the projections are built in: "qvk" (llama) or "qkv" (gemma3)
    post_norms: bool  # post-attention and post-FFN RMS norms (gemma3)
    swa_pattern: int  # every swa_pattern-th layer is full attention (0: no SWA); llama-model.cpp load_hparams
    qkv_bias: bool = False  # Q, K, V biases added after each projection (build_qkv, wq_b/wk_b/wv_b: qwen2)
    attn_softcap: bool = False  # kq scaled, tanh, scaled back before soft_max without flash attention (build_attn_mha,
    #                             hparams.attn_soft_cap; with flash attention it is an op parameter: no node)
    final_softcap: bool = False  # logits scaled, tanh, scaled back (gemma2: final_logit_softcapping)
    swa_default: int = 0  # n_swa when the GGUF has no attention.sliding_window key (load_arch_hparams)
    fused_qkv: bool = False  # one attn_qkv projection, Q/K/V strided views of it (build_qkv's fused path: phi3);
    #                          V is then not contiguous: ggml_cont before the transposed V store (no flash attention)
    ffn_fused_up: bool = False  # ffn_up gives gate and up in one 2*n_ff matrix, GLU splits it (LLM_FFN_SEQ: phi3)
    residual_first: bool = False  # the block's last ADD takes the residual as its first source (phi3)
    attn_residual_first: bool = False  # the attention/mixer residual ADD takes the residual first (lfm2)
    pre_norms: bool = True  # RMS norm before attention and before the FFN (olmo2 has none: post norms only)
    wo_bias: bool = False  # attention output projection bias added (build_attn wo_b: gpt-oss)
    out_rows_at_end: bool = False  # output rows selected once after the last layer, not inside it (gpt-oss)
    no_ffn: bool = False  # the block is the mixer and its residual only, no FFN (mamba2)
    h_nextn_output: bool = False  # the last layer's output is a graph output (res->t_h_nextn, set_outputs: gpt-oss)
    moe_gating: str = "softmax"  # build_moe_ffn gating: softmax over all experts then normalized top-k weights
    #                              (qwen3moe), or "softmax_weight": softmax over the top-k logits only (gpt-oss)
    moe_bias: bool = False  # router and expert biases (ADD, ADD_ID: gpt-oss)
    moe: bool = False  # experts (expert_count > 0) modelled for this architecture (checked on a synthetic GGUF)
    moe_norm_w: bool = True  # softmax gating: the top-k weights normalized to sum 1 (build_moe_ffn norm_w)
    moe_selection_bias: bool = False  # exp_probs_b added to the gate probabilities for the top-k choice (lfm2moe)
    moe_shared: bool = False  # a shared expert FFN gated by sigmoid(x . gate_inp_shexp), added (qwen2moe)
    n_ff_exp_from_used: bool = False  # no expert_feed_forward_length: n_ff / n_expert_used (qwen3moe), else n_ff
    # keys (under the arch prefix) that change the graph when present and nonzero; not modelled: "not modelled"
    # (expert_gating_func other than softmax (1) / sigmoid (2) is checked in unmodelled)
    unmodelled_keys: tuple = ("attention.sliding_window_pattern", "expert_shared_feed_forward_length",
                              "leading_dense_block_count")
    false_keys: tuple = ()  # keys that change the graph when present and false
    layer_norm: bool = False  # LayerNorm with bias (NORM, MUL, ADD) for the pre-norms and the output norm (starcoder2)
    ffn_plain: bool = False  # ungated FFN with biases: up (+b), GELU, down (+b) (LLM_FFN_GELU, LLM_FFN_SEQ: starcoder2)
    norm_bias: bool = True  # the LayerNorms add a bias (cohere2's do not)
    parallel: bool = False  # attention and FFN both from the block's norm, added to the residual (cohere2)
    rope_swa_only: bool = False  # RoPE on the sliding-window layers only (cohere2)
    logit_scale_key: bool = False  # logits scaled by the logit_scale key (cohere2; granite via granite_keys)
    no_rope_step: int = 0  # every no_rope_step-th layer skips RoPE (smollm3: n_no_rope_layer_step 4)
    granite_keys: bool = False  # residual_scale, logit_scale and rope.scaling.finetuned read (granite family)
    qk_norm_full: bool = False  # Q and K RMS-normed over their full width before the per-head reshape (olmo2)


ARCHS = {
    # src/models/llama.cpp (graph dumped in fixtures/llamacpp/graphs/smollm2-*)
    # (the llama entry also covers Mixtral-style experts: build_moe_ffn, softmax, normalized; synthetic GGUF)
    "llama": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=False,
                  swa_pattern=0, moe=True),
    # src/models/gemma3.cpp; set_swa_pattern(6) in llama-model.cpp (LLM_ARCH_GEMMA3)
    "gemma3": Arch(embed_scale=True, qk_norm=True, q_scale=True, qkv_order="qkv", post_norms=True,
                   swa_pattern=6),
    # src/models/gemma2.cpp: gemma3's block without the Q/K norms, attention and final logit soft-capping;
    # load_swa_pattern(ml, 2), n_swa 4096 unless the GGUF says (graph dumped from a synthetic GGUF)
    "gemma2": Arch(embed_scale=True, qk_norm=False, q_scale=True, qkv_order="qkv", post_norms=True,
                   swa_pattern=2, attn_softcap=True, final_softcap=True, swa_default=4096),
    # src/models/phi3.cpp: fused QKV, Q scaled after RoPE, fused up/gate FFN (synthetic GGUF, ditto)
    "phi3": Arch(embed_scale=False, qk_norm=False, q_scale=True, qkv_order="qvk", post_norms=False,
                 swa_pattern=0, fused_qkv=True, ffn_fused_up=True, residual_first=True),
    # src/models/qwen3moe.cpp: qwen3's attention, build_moe_ffn (softmax gating, normalized top-k weights)
    "qwen3moe": Arch(embed_scale=False, qk_norm=True, q_scale=False, qkv_order="qvk", post_norms=False,
                     swa_pattern=0, moe=True, n_ff_exp_from_used=True),
    # src/models/lfm2.cpp: hybrid, short-convolution blocks (recurrent layers: n_head_kv 0) and qwen3-like
    # attention (Q/K norms), both residual ADDs residual-first (synthetic GGUF, ditto)
    "lfm2": Arch(embed_scale=False, qk_norm=True, q_scale=False, qkv_order="qvk", post_norms=False,
                 swa_pattern=0, residual_first=True, attn_residual_first=True,
                 unmodelled_keys=Arch.unmodelled_keys + ("attention.sliding_window", "expert_count")),
    # src/models/mistral3.cpp: llama's block (no attention temperature scaling unless the GGUF sets it)
    "mistral3": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=False,
                     swa_pattern=0, unmodelled_keys=Arch.unmodelled_keys + ("attention.temperature_scale",)),
    # src/models/olmo2.cpp: no pre-norms, Q/K normed over the full width (build_qkv reshape=false), post norms
    "olmo2": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=True,
                  swa_pattern=0, pre_norms=False, qk_norm_full=True,
                  unmodelled_keys=Arch.unmodelled_keys + ("attention.sliding_window",)),  # olmo3: iSWA
    # src/models/openai-moe.cpp: SWA every other layer, Q/K/V/O biases, sinks (no node), biased experts with
    # softmax over the selected logits, output rows taken after the last layer (synthetic GGUF, ditto)
    "gpt-oss": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qkv", post_norms=False,
                    swa_pattern=2, qkv_bias=True, wo_bias=True, out_rows_at_end=True, h_nextn_output=True,
                    moe_gating="softmax_weight",
                    moe_bias=True, moe=True),
    # src/models/granite-hybrid.cpp: Mamba-2 blocks (n_head_kv 0: build_mamba2_layer, src/models/mamba-base.cpp)
    # and llama-like attention blocks; residual and logit scales, NoPE (synthetic GGUFs with and without them)
    "granitehybrid": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=False,
                          swa_pattern=0, unmodelled_keys=Arch.unmodelled_keys + ("expert_count",),
                          granite_keys=True),
    # src/models/granite.cpp: llama's block with the granite scales (embedding, residual, logit: required key)
    "granite": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=False,
                    swa_pattern=0, granite_keys=True, unmodelled_keys=Arch.unmodelled_keys + ("deepstack_mapping",)),
    # src/models/qwen2moe.cpp: qwen2's attention (Q/K/V biases), experts with softmax gating and unnormalized
    # top-k weights, a sigmoid-gated shared expert (synthetic GGUF, ditto)
    "qwen2moe": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=False,
                     swa_pattern=0, qkv_bias=True, moe=True, n_ff_exp_from_used=True, moe_norm_w=False,
                     moe_shared=True,
                     unmodelled_keys=("attention.sliding_window_pattern", "leading_dense_block_count")),
    # src/models/smollm3.cpp: llama's block without RoPE on every 4th layer (synthetic GGUF, ditto)
    "smollm3": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=False,
                    swa_pattern=0, no_rope_step=4),
    # src/models/olmoe.cpp: pre-norms, Q/K normed over the full width, experts (softmax, unnormalized top-k,
    # expert width n_ff) (synthetic GGUF, ditto)
    "olmoe": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=False,
                  swa_pattern=0, qk_norm_full=True, moe=True, moe_norm_w=False),
    # src/models/starcoder2.cpp: LayerNorms with bias, Q/K/V/O biases, plain GELU FFN with biases (synthetic GGUF)
    "starcoder2": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=False,
                       swa_pattern=0, qkv_bias=True, wo_bias=True, layer_norm=True, ffn_plain=True),
    # src/models/glm4.cpp: fused QKV with bias, pre- and post-norms, fused gate/up FFN (synthetic GGUF, ditto);
    # M-RoPE (rope.dimension_sections) and NextN layers not modelled
    "glm4": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=True,
                 swa_pattern=0, fused_qkv=True, qkv_bias=True, ffn_fused_up=True,
                 unmodelled_keys=Arch.unmodelled_keys + ("rope.dimension_sections", "nextn_predict_layers")),
    # src/models/cohere2.cpp: LayerNorm without bias, parallel attention and FFN, SWA every 4th layer full with
    # RoPE on the SWA layers only, logits scaled (synthetic GGUF, ditto)
    "cohere2": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qkv", post_norms=False,
                    swa_pattern=4, layer_norm=True, norm_bias=False, parallel=True, rope_swa_only=True,
                    logit_scale_key=True),
    # src/models/lfm2moe.cpp (lfm2's graph): leading dense layers, then experts with the GGUF's gating function
    # (sigmoid here), a selection bias and normalized weights (synthetic GGUF, ditto)
    "lfm2moe": Arch(embed_scale=False, qk_norm=True, q_scale=False, qkv_order="qvk", post_norms=False,
                    swa_pattern=0, residual_first=True, attn_residual_first=True, moe=True,
                    moe_selection_bias=True,
                    unmodelled_keys=("attention.sliding_window_pattern", "expert_shared_feed_forward_length",
                                     "attention.sliding_window")),
    # src/models/mamba.cpp (LLM_ARCH_MAMBA2 branch): recurrent only, each block a norm, a Mamba-2 mixer
    # (build_mamba2_layer) and the residual (synthetic GGUF, ditto)
    "mamba2": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=False,
                   swa_pattern=0, no_ffn=True),
    # src/models/qwen2.cpp: llama's block with Q/K/V biases (graph dumped from a synthetic GGUF,
    # fixtures/llamacpp/synth)
    "qwen2": Arch(embed_scale=False, qk_norm=False, q_scale=False, qkv_order="qvk", post_norms=False,
                  swa_pattern=0, qkv_bias=True),
    # src/models/qwen3.cpp: llama's block with per-head Q/K RMS norms before RoPE (synthetic GGUF, ditto)
    "qwen3": Arch(embed_scale=False, qk_norm=True, q_scale=False, qkv_order="qvk", post_norms=False,
                  swa_pattern=0),
}


def graph_extras(arch: str, meta: dict) -> frozenset:
    """The GGUF keys that add nodes to the graph (GraphShape.extras)."""
    a, out = ARCHS.get(arch), set()
    if meta.get(f"{arch}.embedding_scale"):
        out.add("embedding_scale")
    if a is not None and (a.granite_keys or a.logit_scale_key) and meta.get(f"{arch}.logit_scale"):
        out.add("logit_scale")
    if a is not None and a.granite_keys:
        out |= {k for k in ("residual_scale",) if meta.get(f"{arch}.{k}")}
        if meta.get(f"{arch}.rope.scaling.finetuned", True) is False:
            out.add("nope")
    if a is not None and a.moe and meta.get(f"{arch}.expert_gating_func") == 2:  # ..._GATING_FUNC_TYPE_SIGMOID
        out.add("sigmoid_gating")
    return frozenset(out)


def unmodelled(arch: str, meta: dict, n_expert: int) -> str:
    """Why this GGUF's graph is not modelled ("" when it is): no template, experts where none are modelled, or a
    key that changes the graph (Arch.unmodelled_keys)."""
    a = ARCHS.get(arch)
    if a is None:
        return f"no graph template for architecture {arch!r} (covered: {', '.join(ARCHS)})"
    if n_expert and not a.moe:
        return f"experts (expert_count {n_expert}) are not modelled for architecture {arch!r}"
    for k in a.unmodelled_keys:
        v = meta.get(f"{arch}.{k}")
        if v and not (k == "attention.sliding_window_pattern" and _default_pattern(a, v)):
            return f"{arch}.{k} = {v} changes the graph and is not modelled"
    if meta.get(f"{arch}.expert_gating_func", 1) not in (1, 2) or (
            meta.get(f"{arch}.expert_gating_func") == 2 and not a.moe_selection_bias):
        return f"{arch}.expert_gating_func = {meta.get(f'{arch}.expert_gating_func')} is not modelled for {arch!r}"
    for k in a.false_keys:
        if meta.get(f"{arch}.{k}", True) is False:
            return f"{arch}.{k} = false changes the graph and is not modelled"
    return ""


def _default_pattern(a: Arch, v) -> bool:
    """load_swa_pattern: a sliding_window_pattern key equal to the architecture's own pattern (an int, or the
    per-layer flags it gives) changes nothing."""
    if isinstance(v, (list, tuple)):
        return a.swa_pattern > 0 and [bool(x) for x in v] == [(il + 1) % a.swa_pattern != 0 for il in range(len(v))]
    return v == a.swa_pattern
