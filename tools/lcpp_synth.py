"""Write tiny synthetic GGUFs (zero weights, small dims, valid hyperparameters) for llama.cpp architectures.

Used as llama.cpp oracle inputs for the buffer predictor (fixtures/llamacpp/synth/, README there):

    python tools/lcpp_synth.py /tmp/lcpp-synth          # one <name>.gguf per entry of SPECS

Runs in the project's Python with the ``gguf`` package (0.19.0). The files are not committed; their headers
(everything before the tensor data, gzip) are, as fixtures/llamacpp/synth/headers/<name>.gguf.head.gz.
Deterministic: zero weights, fixed metadata, so the same command writes the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import gguf

E, H, HKV, HD, F, V = 128, 2, 1, 64, 256, 320  # hidden, heads, KV heads, head dim, FFN, vocab
Q, KV = H * HD, HKV * HD


def _vocab(w: gguf.GGUFWriter, V: int) -> None:
    """A SentencePiece-style vocabulary of V pieces: <unk>, <s>, </s>, the 256 byte tokens, then filler pieces."""
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["<|endoftext|>"]
    toks += [f"tok{i}" for i in range(V - len(toks))]  # (phi3's vocab loader looks <|endoftext|> up by name)
    types = [2, 3, 3] + [6] * 256 + [3] + [1] * (V - 260)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([0.0] * V)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)


def _dense(n: int, extra=()) -> list:
    """token_embd, output_norm and n llama-style blocks (+ per-layer extras (suffix, ne))."""
    t = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,))]
    for i in range(n):
        b = f"blk.{i}."
        t += [(b + "attn_norm.weight", (E,)), (b + "attn_q.weight", (E, Q)), (b + "attn_k.weight", (E, KV)),
              (b + "attn_v.weight", (E, KV)), (b + "attn_output.weight", (Q, E)), (b + "ffn_norm.weight", (E,)),
              (b + "ffn_gate.weight", (E, F)), (b + "ffn_up.weight", (E, F)), (b + "ffn_down.weight", (F, E))]
        t += [(b + s, ne) for s, ne in extra]
    return t


def _common(arch: str, n_layer: int, **kv) -> dict:
    d = {"context_length": 8192, "embedding_length": E, "block_count": n_layer, "feed_forward_length": F,
         "attention.head_count": H, "attention.head_count_kv": HKV, "attention.layer_norm_rms_epsilon": 1e-6,
         "rope.freq_base": 10000.0}
    if H * HD != E:  # head dim not n_embd / n_head (the -wide files): say it
        d.update({"attention.key_length": HD, "attention.value_length": HD})
    d.update(kv)
    return d


def _lfm2() -> tuple:
    kinds = [0, 1, 0, 1]  # KV heads per layer: 0 = short-convolution (recurrent) layer
    t = [("token_embd.weight", (E, V)), ("token_embd_norm.weight", (E,))]
    for i, hk in enumerate(kinds):
        b = f"blk.{i}."
        t += [(b + "attn_norm.weight", (E,)), (b + "ffn_norm.weight", (E,)), (b + "ffn_gate.weight", (E, F)),
              (b + "ffn_up.weight", (E, F)), (b + "ffn_down.weight", (F, E))]
        if hk:
            t += [(b + "attn_q_norm.weight", (HD,)), (b + "attn_k_norm.weight", (HD,)), (b + "attn_q.weight", (E, Q)),
                  (b + "attn_k.weight", (E, KV)), (b + "attn_v.weight", (E, KV)), (b + "attn_output.weight", (Q, E))]
        else:
            t += [(b + "shortconv.conv.weight", (3, E)), (b + "shortconv.in_proj.weight", (E, 3 * E)),
                  (b + "shortconv.out_proj.weight", (E, E))]
    return _common("lfm2", 4, **{"attention.head_count_kv": kinds, "shortconv.l_cache": 3}), t


def _granite_hybrid() -> tuple:
    """Mamba-2 layers (n_head_kv 0) and attention layers; d_inner 256, d_state 16, 1 group, 4 SSM heads, d_conv 4."""
    kinds, di, ds, nh, dc = [0, 1, 0, 1], 2 * E, 16, 4, 4  # granite-hybrid.cpp asserts d_inner = 2 n_embd
    t = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,))]
    for i, hk in enumerate(kinds):
        b = f"blk.{i}."
        t += [(b + "attn_norm.weight", (E,)), (b + "ffn_norm.weight", (E,)), (b + "ffn_gate.weight", (E, F)),
              (b + "ffn_up.weight", (E, F)), (b + "ffn_down.weight", (F, E))]
        if hk:
            t += [(b + "attn_q.weight", (E, Q)), (b + "attn_k.weight", (E, KV)), (b + "attn_v.weight", (E, KV)),
                  (b + "attn_output.weight", (Q, E))]
        else:
            t += [(b + "ssm_in.weight", (E, 2 * di + 2 * ds + nh)), (b + "ssm_conv1d.weight", (dc, di + 2 * ds)),
                  (b + "ssm_conv1d.bias", (di + 2 * ds,)), (b + "ssm_dt.bias", (nh,)), (b + "ssm_a", (1, nh)),
                  (b + "ssm_d", (1, nh)), (b + "ssm_norm.weight", (di, 1)), (b + "ssm_out.weight", (di, E))]
    return _common("granitehybrid", 4, **{"attention.head_count_kv": kinds, "ssm.conv_kernel": dc,
                                          "ssm.inner_size": di, "ssm.state_size": ds, "ssm.time_step_rank": nh,
                                          "ssm.group_count": 1}), t


def _gpt_oss() -> tuple:
    """gpt-oss (openai-moe): SWA every other layer (n_swa 64), Q/K/V/O biases, attention sinks, 4 experts with
    biases (2 used, expert FFN 64), untied output, 4 layers."""
    n, f = 4, 64
    t = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,)), ("output.weight", (E, V))]
    for i in range(4):
        b = f"blk.{i}."
        t += [(b + "attn_norm.weight", (E,)), (b + "post_attention_norm.weight", (E,)), (b + "attn_q.weight", (E, Q)),
              (b + "attn_k.weight", (E, KV)), (b + "attn_v.weight", (E, KV)), (b + "attn_q.bias", (Q,)),
              (b + "attn_k.bias", (KV,)), (b + "attn_v.bias", (KV,)), (b + "attn_output.weight", (Q, E)),
              (b + "attn_output.bias", (E,)), (b + "attn_sinks.weight", (H,)), (b + "ffn_gate_inp.weight", (E, n)),
              (b + "ffn_gate_inp.bias", (n,)), (b + "ffn_gate_exps.weight", (E, f, n)),
              (b + "ffn_gate_exps.bias", (f, n)),
              (b + "ffn_up_exps.weight", (E, f, n)), (b + "ffn_up_exps.bias", (f, n)),
              (b + "ffn_down_exps.weight", (f, E, n)), (b + "ffn_down_exps.bias", (E, n))]
    return ("gpt-oss", _common("gpt-oss", 4, **{"attention.key_length": HD, "attention.value_length": HD,
                                                 "attention.sliding_window": 64, "expert_count": n,
                                                 "expert_used_count": 2, "expert_feed_forward_length": f}), t, "q8_0")


def _lfm2moe() -> tuple:
    """LFM2-MoE: lfm2's layers, layer 0 dense (leading_dense_block_count 1), the others 4 experts (2 used, 64 wide)
    with sigmoid gating (expert_gating_func 2) and a selection bias (exp_probs_b)."""
    kv, t = _lfm2()
    moe = []
    for name, ne in t:
        i = int(name.split(".")[1]) if name.startswith("blk.") else -1
        if i >= 1 and name.endswith(("ffn_gate.weight", "ffn_up.weight", "ffn_down.weight")):
            continue
        moe.append((name, ne))
    for i in range(1, 4):
        b = f"blk.{i}."
        moe += [(b + "ffn_gate_inp.weight", (E, 4)), (b + "ffn_gate_exps.weight", (E, 64, 4)),
                (b + "ffn_up_exps.weight", (E, 64, 4)), (b + "ffn_down_exps.weight", (64, E, 4)),
                (b + "exp_probs_b.bias", (4,))]
    kv = dict(kv, **{"leading_dense_block_count": 1, "expert_count": 4, "expert_used_count": 2,
                     "expert_feed_forward_length": 64, "expert_gating_func": 2})
    return kv, moe


def _mamba2() -> tuple:
    """Pure Mamba-2 (recurrent only, no attention, no FFN), keys as convert_hf_to_gguf writes them (head_count 0,
    feed_forward_length 0): d_inner 2 x hidden, d_state 16, 1 group, 4 SSM heads, d_conv 4, 3 layers."""
    di, ds, nh, dc = 2 * E, 16, 4, 4
    t = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,))]
    for i in range(3):
        b = f"blk.{i}."
        t += [(b + "attn_norm.weight", (E,)), (b + "ssm_in.weight", (E, 2 * di + 2 * ds + nh)),
              (b + "ssm_conv1d.weight", (dc, di + 2 * ds)), (b + "ssm_conv1d.bias", (di + 2 * ds,)),
              (b + "ssm_dt.bias", (nh,)), (b + "ssm_a", (1, nh)), (b + "ssm_d", (1, nh)),
              (b + "ssm_norm.weight", (di, 1)), (b + "ssm_out.weight", (di, E))]
    kv = {"context_length": 8192, "embedding_length": E, "block_count": 3, "feed_forward_length": 0,
          "attention.head_count": 0, "attention.layer_norm_rms_epsilon": 1e-5, "ssm.conv_kernel": dc,
          "ssm.inner_size": di, "ssm.state_size": ds, "ssm.time_step_rank": nh, "ssm.group_count": 1}
    return kv, t


def _ssm_tensors(b: str, di: int, ds: int, ng: int, nh: int, dc: int) -> list:
    """A Mamba-2 mixer's tensors (src/models/nemotron-h.cpp / falcon-h1.cpp load_arch_tensors): in_proj
    (z | xBC | dt), the depthwise conv over xBC with its bias, dt bias, A, D, the grouped norm (d_inner / n_group,
    n_group) and out_proj."""
    xbc = di + 2 * ng * ds
    return [(b + "ssm_in.weight", (E, di + xbc + nh)), (b + "ssm_conv1d.weight", (dc, xbc)),
            (b + "ssm_conv1d.bias", (xbc,)), (b + "ssm_dt.bias", (nh,)), (b + "ssm_a", (1, nh)), (b + "ssm_d", (1, nh)),
            (b + "ssm_norm.weight", (di // ng, ng)), (b + "ssm_out.weight", (di, E))]


def _nemotron_h() -> tuple:
    """Nemotron-H: one block per layer, a Mamba-2 mixer (head_count_kv 0, feed_forward_length 0), attention
    (head_count_kv > 0) or a ReLU^2 MLP (feed_forward_length > 0, up/down only), as src/models/nemotron-h.cpp
    reads them: layers M, *, -, M; d_inner 256, d_state 16, 2 groups, 4 SSM heads, d_conv 4; tied output."""
    kinds, di, ds, ng, nh, dc = "M*-M", 2 * E, 16, 2, 4, 4
    t = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,))]
    for i, k in enumerate(kinds):
        b = f"blk.{i}."
        t.append((b + "attn_norm.weight", (E,)))
        if k == "M":
            t += _ssm_tensors(b, di, ds, ng, nh, dc)
        elif k == "*":
            t += [(b + "attn_q.weight", (E, Q)), (b + "attn_k.weight", (E, KV)), (b + "attn_v.weight", (E, KV)),
                  (b + "attn_output.weight", (Q, E))]
        else:
            t += [(b + "ffn_up.weight", (E, F)), (b + "ffn_down.weight", (F, E))]
    kv = _common("nemotron_h", 4, **{
        "attention.head_count_kv": [HKV if k == "*" else 0 for k in kinds],
        "feed_forward_length": [F if k == "-" else 0 for k in kinds], "attention.layer_norm_epsilon": 1e-5,
        "ssm.conv_kernel": dc, "ssm.inner_size": di, "ssm.state_size": ds, "ssm.time_step_rank": nh,
        "ssm.group_count": ng})
    return kv, t


def _falcon_h1() -> tuple:
    """Falcon-H1: every layer a Mamba-2 mixer and attention in parallel, then a SwiGLU FFN (src/models/falcon-h1.cpp:
    every layer recurrent and in the attention cache); d_inner 256, d_state 16, 1 group, 4 SSM heads, d_conv 4;
    the FFN norm is named without .weight, as its loader asks (tn(LLM_TENSOR_FFN_NORM, i)); 3 layers."""
    di, ds, ng, nh, dc = 2 * E, 16, 1, 4, 4
    t = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,))]
    for i in range(3):
        b = f"blk.{i}."
        t += _ssm_tensors(b, di, ds, ng, nh, dc)
        t += [(b + "attn_norm.weight", (E,)), (b + "attn_q.weight", (E, Q)), (b + "attn_k.weight", (E, KV)),
              (b + "attn_v.weight", (E, KV)), (b + "attn_output.weight", (Q, E)), (b + "ffn_norm", (E,)),
              (b + "ffn_gate.weight", (E, F)), (b + "ffn_up.weight", (E, F)), (b + "ffn_down.weight", (F, E))]
    kv = _common("falcon-h1", 3, **{"ssm.conv_kernel": dc, "ssm.inner_size": di, "ssm.state_size": ds,
                                    "ssm.time_step_rank": nh, "ssm.group_count": ng})
    return kv, t


def specs() -> dict:
    """name -> (arch, {key: value} under the arch prefix, [(tensor, ne)], matrix type)."""
    out = {}
    qkv_b = [("attn_q.bias", (Q,)), ("attn_k.bias", (KV,)), ("attn_v.bias", (KV,))]
    out["qwen2-tiny"] = ("qwen2", _common("qwen2", 3), _dense(3, qkv_b) + [("output.weight", (E, V))], "q8_0")
    qk_norm = [("attn_q_norm.weight", (HD,)), ("attn_k_norm.weight", (HD,))]
    out["qwen3-tiny"] = ("qwen3", _common("qwen3", 3, **{"attention.key_length": HD, "attention.value_length": HD}),
                         _dense(3, qk_norm), "q4_0")
    post = [("post_attention_norm.weight", (E,)), ("post_ffw_norm.weight", (E,))]
    out["gemma2-tiny"] = ("gemma2", _common("gemma2", 4, **{
        "attention.key_length": HD, "attention.value_length": HD, "attention.sliding_window": 64,
        "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0}), _dense(4, post), "f16")
    phi = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,)), ("output.weight", (E, V))]
    for i in range(3):
        b = f"blk.{i}."
        phi += [(b + "attn_norm.weight", (E,)), (b + "attn_qkv.weight", (E, Q + 2 * KV)),
                (b + "attn_output.weight", (Q, E)), (b + "ffn_norm.weight", (E,)),
                (b + "ffn_up.weight", (E, 2 * F)), (b + "ffn_down.weight", (F, E))]
    out["phi3-tiny"] = ("phi3", _common("phi3", 3, **{"rope.dimension_count": HD}), phi, "q8_0")
    moe = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,))]
    for i in range(3):
        b = f"blk.{i}."
        moe += [(b + "attn_norm.weight", (E,)), (b + "attn_q.weight", (E, Q)), (b + "attn_k.weight", (E, KV)),
                (b + "attn_v.weight", (E, KV)), (b + "attn_output.weight", (Q, E)), (b + "attn_q_norm.weight", (HD,)),
                (b + "attn_k_norm.weight", (HD,)), (b + "ffn_norm.weight", (E,)), (b + "ffn_gate_inp.weight", (E, 4)),
                (b + "ffn_gate_exps.weight", (E, 64, 4)), (b + "ffn_up_exps.weight", (E, 64, 4)),
                (b + "ffn_down_exps.weight", (64, E, 4))]
    out["qwen3moe-tiny"] = ("qwen3moe", _common("qwen3moe", 3, **{
        "attention.key_length": HD, "attention.value_length": HD, "expert_count": 4, "expert_used_count": 2,
        "expert_feed_forward_length": 64}), moe, "q4_0")
    out["mistral3-tiny"] = ("mistral3", _common("mistral3", 3), _dense(3), "q4_0")
    olmo = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,)), ("output.weight", (E, V))]
    for i in range(3):
        b = f"blk.{i}."
        olmo += [(b + "attn_q.weight", (E, Q)), (b + "attn_k.weight", (E, KV)), (b + "attn_v.weight", (E, KV)),
                 (b + "attn_output.weight", (Q, E)), (b + "attn_q_norm.weight", (Q,)),
                 (b + "attn_k_norm.weight", (KV,)),
                 (b + "post_attention_norm.weight", (E,)), (b + "ffn_gate.weight", (E, F)),
                 (b + "ffn_up.weight", (E, F)), (b + "ffn_down.weight", (F, E)), (b + "post_ffw_norm.weight", (E,))]
    out["olmo2-tiny"] = ("olmo2", _common("olmo2", 3), olmo, "f16")
    out["gpt-oss-tiny"] = _gpt_oss()
    mix = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,)), ("output.weight", (E, V))]
    for i in range(3):
        b = f"blk.{i}."
        mix += [(b + "attn_norm.weight", (E,)), (b + "attn_q.weight", (E, Q)), (b + "attn_k.weight", (E, KV)),
                (b + "attn_v.weight", (E, KV)), (b + "attn_output.weight", (Q, E)), (b + "ffn_norm.weight", (E,)),
                (b + "ffn_gate_inp.weight", (E, 4)), (b + "ffn_gate_exps.weight", (E, 64, 4)),
                (b + "ffn_up_exps.weight", (E, 64, 4)), (b + "ffn_down_exps.weight", (64, E, 4))]
    # Mixtral-style: arch llama with experts; the expert width is feed_forward_length (llama.cpp's llama loader)
    out["llama-moe-tiny"] = ("llama", _common("llama", 3, **{"feed_forward_length": 64, "expert_count": 4,
                                                            "expert_used_count": 2}), mix, "q8_0")
    out["granite-tiny"] = ("granite", _common("granite", 3, **{
        "logit_scale": 8.0, "residual_scale": 0.22, "embedding_scale": 12.0, "attention.scale": 0.0078125}),
        _dense(3), "q4_0")
    q2m = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,)), ("output.weight", (E, V))]
    for i in range(3):
        b = f"blk.{i}."
        q2m += [(b + "attn_norm.weight", (E,)), (b + "attn_q.weight", (E, Q)), (b + "attn_k.weight", (E, KV)),
                (b + "attn_v.weight", (E, KV)), (b + "attn_q.bias", (Q,)), (b + "attn_k.bias", (KV,)),
                (b + "attn_v.bias", (KV,)), (b + "attn_output.weight", (Q, E)), (b + "ffn_norm.weight", (E,)),
                (b + "ffn_gate_inp.weight", (E, 4)), (b + "ffn_gate_exps.weight", (E, 64, 4)),
                (b + "ffn_up_exps.weight", (E, 64, 4)), (b + "ffn_down_exps.weight", (64, E, 4)),
                (b + "ffn_gate_inp_shexp.weight", (E,)), (b + "ffn_gate_shexp.weight", (E, 128)),
                (b + "ffn_up_shexp.weight", (E, 128)), (b + "ffn_down_shexp.weight", (128, E))]
    out["qwen2moe-tiny"] = ("qwen2moe", _common("qwen2moe", 3, **{
        "expert_count": 4, "expert_used_count": 2, "expert_feed_forward_length": 64,
        "expert_shared_feed_forward_length": 128}), q2m, "q8_0")
    out["smollm3-tiny"] = ("smollm3", _common("smollm3", 4), _dense(4), "q4_0")  # layer 3: no RoPE
    olmoe = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,)), ("output.weight", (E, V))]
    for i in range(3):  # multi-head attention (2 KV heads): the K norm is n_embd wide
        b = f"blk.{i}."
        olmoe += [(b + "attn_norm.weight", (E,)), (b + "attn_q.weight", (E, Q)), (b + "attn_k.weight", (E, Q)),
                  (b + "attn_v.weight", (E, Q)), (b + "attn_output.weight", (Q, E)), (b + "attn_q_norm.weight", (E,)),
                  (b + "attn_k_norm.weight", (E,)), (b + "ffn_norm.weight", (E,)), (b + "ffn_gate_inp.weight", (E, 4)),
                  (b + "ffn_gate_exps.weight", (E, 64, 4)), (b + "ffn_up_exps.weight", (E, 64, 4)),
                  (b + "ffn_down_exps.weight", (64, E, 4))]
    out["olmoe-tiny"] = ("olmoe", _common("olmoe", 3, **{"attention.head_count_kv": 2, "feed_forward_length": 64,
                                                        "expert_count": 4, "expert_used_count": 2}), olmoe, "q8_0")
    sc2 = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,)), ("output_norm.bias", (E,))]
    for i in range(3):
        b = f"blk.{i}."
        sc2 += [(b + "attn_norm.weight", (E,)), (b + "attn_norm.bias", (E,)), (b + "attn_q.weight", (E, Q)),
                (b + "attn_k.weight", (E, KV)), (b + "attn_v.weight", (E, KV)), (b + "attn_q.bias", (Q,)),
                (b + "attn_k.bias", (KV,)), (b + "attn_v.bias", (KV,)), (b + "attn_output.weight", (Q, E)),
                (b + "attn_output.bias", (E,)), (b + "ffn_norm.weight", (E,)), (b + "ffn_norm.bias", (E,)),
                (b + "ffn_up.weight", (E, F)), (b + "ffn_up.bias", (F,)), (b + "ffn_down.weight", (F, E)),
                (b + "ffn_down.bias", (E,))]
    out["starcoder2-tiny"] = ("starcoder2", _common("starcoder2", 3, **{"attention.layer_norm_epsilon": 1e-5}),
                              sc2, "q8_0")
    glm = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,)), ("output.weight", (E, V))]
    for i in range(3):
        b = f"blk.{i}."
        glm += [(b + "attn_norm.weight", (E,)), (b + "attn_qkv.weight", (E, Q + 2 * KV)),
                (b + "attn_qkv.bias", (Q + 2 * KV,)), (b + "attn_output.weight", (Q, E)),
                (b + "post_attention_norm.weight", (E,)), (b + "ffn_norm.weight", (E,)),
                (b + "ffn_up.weight", (E, 2 * F)), (b + "ffn_down.weight", (F, E)), (b + "post_ffw_norm.weight", (E,))]
    out["glm4-tiny"] = ("glm4", _common("glm4", 3, **{"rope.dimension_count": HD}), glm, "q8_0")
    coh = [("token_embd.weight", (E, V)), ("output_norm.weight", (E,))]
    for i in range(4):
        b = f"blk.{i}."
        coh += [(b + "attn_norm.weight", (E,)), (b + "attn_q.weight", (E, Q)), (b + "attn_k.weight", (E, KV)),
                (b + "attn_v.weight", (E, KV)), (b + "attn_output.weight", (Q, E)), (b + "ffn_gate.weight", (E, F)),
                (b + "ffn_up.weight", (E, F)), (b + "ffn_down.weight", (F, E))]
    out["cohere2-tiny"] = ("cohere2", _common("cohere2", 4, **{  # layers 0-2 SWA (RoPE), 3 full (no RoPE)
        "attention.sliding_window": 64, "logit_scale": 0.25, "attention.layer_norm_epsilon": 1e-5}), coh, "q8_0")
    kv, t = _granite_hybrid()
    out["granitehybrid-tiny"] = ("granitehybrid", kv, t, "f16")
    # as Granite 4.0-H GGUFs are: embedding, residual, logit and attention scales set, no RoPE (NoPE)
    scaled = dict(kv, **{"embedding_scale": 12.0, "residual_scale": 0.22, "logit_scale": 8.0,
                         "attention.scale": 0.0078125, "rope.scaling.finetuned": False})
    out["granitehybrid-scaled-tiny"] = ("granitehybrid", scaled, t, "f16")
    kv, t = _lfm2()
    out["lfm2-tiny"] = ("lfm2", kv, t, "f16")
    kv, t = _lfm2moe()
    out["lfm2moe-tiny"] = ("lfm2moe", kv, t, "f16")
    kv, t = _mamba2()
    out["mamba2-tiny"] = ("mamba2", kv, t, "f16")
    kv, t = _nemotron_h()
    out["nemotron_h-tiny"] = ("nemotron_h", kv, t, "f16")
    kv, t = _falcon_h1()
    out["falcon-h1-tiny"] = ("falcon-h1", kv, t, "f16")
    return out


def _with_dims(dims: dict, names: tuple) -> dict:
    """specs() built with other dimensions (hidden, heads, KV heads, head dim, FFN, vocab), the chosen entries
    renamed <arch>-wide: checks that nothing was tuned to the tiny dims (Q width != hidden, GQA 4, head dim 128,
    a larger vocabulary)."""
    g = globals()
    saved = {k: g[k] for k in ("E", "H", "HKV", "HD", "F", "V", "Q", "KV")}
    g.update(dims)
    g.update(Q=g["H"] * g["HD"], KV=g["HKV"] * g["HD"])
    try:
        built = specs()
    finally:
        g.update(saved)
    return {n.replace("-tiny", "-wide"): built[n] for n in names}


WIDE = dict(E=256, H=4, HKV=1, HD=128, F=512, V=2048)  # Q = 512 != hidden 256
WIDE_Q = dict(E=256, H=2, HKV=1, HD=128, F=512, V=2048)  # Q = hidden, for builders that require it


def wide_specs() -> dict:
    out = _with_dims(WIDE, ("qwen3-tiny", "gemma2-tiny", "gpt-oss-tiny"))
    out.update(_with_dims(WIDE_Q, ("lfm2-tiny",)))
    return out


def wide_specs_2() -> dict:
    """The other architectures at the wide dimensions (added after wide_specs; own held-back seed)."""
    out = _with_dims(WIDE, ("qwen3moe-tiny", "glm4-tiny", "granite-tiny", "smollm3-tiny", "mistral3-tiny",
                            "llama-moe-tiny", "granitehybrid-tiny"))
    out.update(_with_dims(WIDE_Q, ("phi3-tiny", "olmo2-tiny", "qwen2-tiny", "qwen2moe-tiny", "starcoder2-tiny",
                                   "cohere2-tiny", "olmoe-tiny")))
    return out


def _add(w: gguf.GGUFWriter, name: str, ne: tuple, mtype: str) -> None:
    shape = tuple(reversed(ne))  # numpy order: ne0 last
    qt = {"q8_0": gguf.GGMLQuantizationType.Q8_0, "q4_0": gguf.GGMLQuantizationType.Q4_0}.get(mtype)
    f32 = name.endswith((".bias", "ssm_a", "ssm_d", "ssm_norm.weight")) or "conv.weight" in name or "conv1d" in name
    if len(ne) == 1 or f32:
        w.add_tensor(name, np.zeros(shape, np.float32))
    elif qt is not None and ne[0] % 32 == 0:
        w.add_tensor(name, gguf.quants.quantize(np.zeros(shape, np.float32), qt), raw_dtype=qt)
    else:
        w.add_tensor(name, np.zeros(shape, np.float16))


def write(name: str, spec: tuple, folder: Path) -> Path:
    arch, kv, tensors, mtype = spec
    path = folder / f"{name}.gguf"
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(name)
    for k, v in kv.items():
        key = f"{arch}.{k}"
        if isinstance(v, bool):
            w.add_bool(key, v)
        elif isinstance(v, list):
            w.add_array(key, v)
        elif isinstance(v, float):
            w.add_float32(key, v)
        else:
            w.add_uint32(key, v)
    _vocab(w, next(ne[1] for n, ne in tensors if n == "token_embd.weight"))
    for tname, ne in tensors:
        _add(w, tname, ne, mtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def header_bytes(path: Path) -> bytes:
    """Everything before the tensor data (the data offset, as gguf.GGUFReader reads it)."""
    r = gguf.GGUFReader(str(path))
    return path.read_bytes()[:r.data_offset]


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/lcpp-synth")
    folder.mkdir(parents=True, exist_ok=True)
    heads = Path(__file__).resolve().parent.parent / "fixtures" / "llamacpp" / "synth" / "headers"
    heads.mkdir(parents=True, exist_ok=True)
    index = {}
    for name, spec in {**specs(), **wide_specs(), **wide_specs_2()}.items():
        p = write(name, spec, folder)
        (heads / f"{name}.gguf.head.gz").write_bytes(gzip.compress(header_bytes(p), mtime=0))
        index[name] = {"arch": spec[0], "file_bytes": p.stat().st_size,
                       "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        print(name, p, p.stat().st_size)
    (heads.parent / "files.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
