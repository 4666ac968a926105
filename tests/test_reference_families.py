"""The composed reference model against transformers for the families added as data (dense, mixture of
experts, latent attention, attention sinks): tiny random models, logits within 1e-4 (fp32), and
KV-cached decoding equal to recomputation."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from hf_reference import hf_tiny
from inspector.reference.load import load_model

pytest.importorskip("transformers")

CASES = {
    "gemma": tiny_config("gemma", head_dim=8, hidden_act="gelu_pytorch_tanh"),
    "gemma-untied-bias": tiny_config("gemma", head_dim=8, attention_bias=True, tie_word_embeddings=False),
    "gemma2": tiny_config("gemma2", head_dim=8, num_hidden_layers=4, sliding_window=4,
                          attn_logit_softcapping=5.0, final_logit_softcapping=3.0, query_pre_attn_scalar=12),
    "gemma3_text": tiny_config("gemma3_text", head_dim=8, num_hidden_layers=6, sliding_window=4,
                               rope_local_base_freq=100.0, query_pre_attn_scalar=8),
    "olmo2": tiny_config("olmo2"),
    "granite": tiny_config("granite", embedding_multiplier=3.0, attention_multiplier=0.2, residual_multiplier=0.5,
                           logits_scaling=4.0),
    "starcoder2": tiny_config("starcoder2", hidden_act="gelu_pytorch_tanh", norm_epsilon=1e-5),
    "gpt2": dict(model_type="gpt2", vocab_size=101, n_embd=32, n_layer=2, n_head=4, n_positions=64),
    "gpt_neox": tiny_config("gpt_neox", num_key_value_heads=4, rotary_pct=0.5, hidden_act="gelu"),
    "gpt_neox-sequential": tiny_config("gpt_neox", num_key_value_heads=4, use_parallel_residual=False,
                                       hidden_act="gelu"),
    "phi": tiny_config("phi", num_key_value_heads=4, partial_rotary_factor=0.5, hidden_act="gelu_new"),
    "phi-qk-layernorm": tiny_config("phi", num_key_value_heads=4, qk_layernorm=True, hidden_act="gelu_new"),
    "smollm3": tiny_config("smollm3", num_hidden_layers=4, no_rope_layers=[1, 1, 1, 0], pad_token_id=0),
    # RoPE on interleaved pairs: GLM-4 (partial), Cohere 2 (sliding layers only, logit scale)
    "glm4": tiny_config("glm4", partial_rotary_factor=0.5, pad_token_id=0),
    "cohere2": tiny_config("cohere2", num_hidden_layers=4, sliding_window=4, layer_norm_eps=1e-5, logit_scale=0.5,
                           pad_token_id=0, bos_token_id=1, eos_token_id=2),
    # mixture of experts, one routing rule each
    "mixtral": tiny_config("mixtral", num_local_experts=4, num_experts_per_tok=2),
    "qwen3_moe": tiny_config("qwen3_moe", head_dim=8, num_experts=8, num_experts_per_tok=3, moe_intermediate_size=16,
                             norm_topk_prob=True, num_hidden_layers=3, mlp_only_layers=[1]),
    "qwen2_moe": tiny_config("qwen2_moe", num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                             shared_expert_intermediate_size=24),
    "olmoe": tiny_config("olmoe", num_experts=6, num_experts_per_tok=2, pad_token_id=0, eos_token_id=1),
    "phimoe": tiny_config("phimoe", num_local_experts=4, num_experts_per_tok=2, router_jitter_noise=0.5),
    "deepseek_v3": tiny_config("deepseek_v3", num_hidden_layers=3, first_k_dense_replace=1, n_routed_experts=8,
                               num_experts_per_tok=3, n_group=4, topk_group=2, moe_intermediate_size=16,
                               n_shared_experts=1, routed_scaling_factor=2.5, kv_lora_rank=16, q_lora_rank=24,
                               qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=6, num_key_value_heads=4,
                               pad_token_id=0),
    "deepseek_v3-no-q-latent-yarn": tiny_config(
        "deepseek_v3", num_hidden_layers=2, first_k_dense_replace=1, n_routed_experts=4, num_experts_per_tok=2,
        n_group=1, topk_group=1, moe_intermediate_size=16, n_shared_experts=2, kv_lora_rank=16, q_lora_rank=None,
        qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, num_key_value_heads=4, rope_interleave=False,
        rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16, "mscale": 1.0,
                      "mscale_all_dim": 1.0, "beta_fast": 32, "beta_slow": 1}, pad_token_id=0),
    # DeepSeek-V2: softmax routing, grouped (its topk_method "group_limited_greedy") or not (V2-Lite's "greedy")
    "deepseek_v2": tiny_config("deepseek_v2", num_hidden_layers=3, first_k_dense_replace=1, n_routed_experts=8,
                               num_experts_per_tok=3, topk_method="group_limited_greedy", n_group=4, topk_group=2,
                               moe_intermediate_size=16, n_shared_experts=2, routed_scaling_factor=2.5,
                               kv_lora_rank=16, q_lora_rank=24, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=6,
                               num_key_value_heads=4, pad_token_id=0),
    "deepseek_v2-greedy": tiny_config("deepseek_v2", num_hidden_layers=2, first_k_dense_replace=1, n_routed_experts=4,
                                      num_experts_per_tok=2, topk_method="greedy", n_group=2, topk_group=1,
                                      moe_intermediate_size=16, n_shared_experts=1, kv_lora_rank=16,
                                      q_lora_rank=None, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
                                      num_key_value_heads=4, pad_token_id=0),
    "gpt_oss": tiny_config("gpt_oss", head_dim=8, num_local_experts=4, num_experts_per_tok=2, sliding_window=4,
                           num_hidden_layers=4, swiglu_limit=0.5),
    "llama4_text": tiny_config("llama4_text", head_dim=8, num_hidden_layers=4, num_local_experts=4,
                               num_experts_per_tok=1, intermediate_size_mlp=40, interleave_moe_layer_step=2,
                               attention_chunk_size=4, floor_scale=3, attn_scale=0.5, pad_token_id=0),
}
# issue 24 (helper moe4): 2025-26 MoE families
CASES.update({
    # GLM-4.5: DeepSeek-V3's biased sigmoid routing (two groups here) over GQA with q/k/v biases and q/k norms,
    # rotate-half RoPE over half of each head
    "glm4_moe": tiny_config("glm4_moe", head_dim=8, num_hidden_layers=3, first_k_dense_replace=1, n_routed_experts=8,
                            num_experts_per_tok=3, n_group=2, topk_group=1, moe_intermediate_size=16,
                            n_shared_experts=1, routed_scaling_factor=2.5, use_qk_norm=True, attention_bias=True,
                            partial_rotary_factor=0.5, pad_token_id=0),
    # MiniMax-M2: biased sigmoid routing without groups, q/k norms over all heads, RoPE over rotary_dim of d_h
    "minimax_m2": tiny_config("minimax_m2", head_dim=8, num_local_experts=6, num_experts_per_tok=2, rotary_dim=4,
                              intermediate_size=16, pad_token_id=0, bos_token_id=1, eos_token_id=2),
    # ERNIE 4.5: softmax routing with a selection bias for the choice only, shared experts with biases (use_bias),
    # experts in layers 1-2 of 4, interleaved RoPE, LM head bias
    "ernie4_5_moe": tiny_config("ernie4_5_moe", num_hidden_layers=4, moe_num_experts=6, moe_k=2, moe_intermediate_size=16,
                                moe_num_shared_experts=1, moe_layer_start_index=1, moe_layer_end_index=2,
                                use_bias=True, pad_token_id=0),
    # Hunyuan-A13B: softmax top-k plus an always-on shared expert, q/k norms after RoPE, NTK-alpha RoPE, biases
    "hunyuan_v1_moe": tiny_config("hunyuan_v1_moe", head_dim=8, num_experts=6, moe_topk=[2, 2], intermediate_size=16,
                                  attention_bias=True, rope_scaling={"type": "dynamic", "alpha": 100.0, "factor": 1.0},
                                  pad_token_id=0),
    # OLMo 3: OLMo 2's layer, 3 sliding-window : 1 full layers, YaRN (legacy rope_scaling) on the full layers only
    "olmo3": tiny_config("olmo3", num_hidden_layers=4, sliding_window=4, rope_theta=500000.0,
                         rope_scaling={"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 8,
                                       "attention_factor": 1.2, "beta_fast": 32.0, "beta_slow": 1.0},
                         pad_token_id=0),
})


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_logits_match_transformers(case, tmp_path):
    cfg = CASES[case]
    hf = hf_tiny(cfg)
    hf.save_pretrained(tmp_path, safe_serialization=True)
    ours = load_model(tmp_path)
    ids = torch.randint(0, cfg["vocab_size"], (2, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = hf(ids).logits, ours(ids)
        assert (expected - got).abs().max().item() < 1e-4
        cache = ours.new_cache()  # prefill 7, then 4 cached steps: the same logits as recomputation
        steps = [ours(ids[:, :7], cache)[:, -1]] + [ours(ids[:, j:j + 1], cache)[:, -1] for j in range(7, 11)]
        assert (torch.stack(steps, 1) - got[:, 6:]).abs().max().item() < 1e-4


def test_experts_saved_in_transformers_fused_layout(tmp_path):
    """transformers 5 can save a per-expert family in its internal fused layout; the loader splits it."""
    cfg = CASES["qwen3_moe"]
    hf = hf_tiny(cfg)
    hf.save_pretrained(tmp_path, safe_serialization=True, save_original_format=False)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert "model.layers.0.mlp.experts.gate_up_proj" in f.keys()
        assert not any(".experts.0." in k for k in f.keys())
    ours = load_model(tmp_path)
    ids = torch.randint(0, cfg["vocab_size"], (1, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (hf(ids).logits - ours(ids)).abs().max().item() < 1e-4
