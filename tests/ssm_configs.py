"""Tiny configs of the Mamba2 / short-convolution hybrid families (nemotron_h, granitemoehybrid, falcon_h1, lfm2):
TINY_SSM switch every option on (names, shapes and totals against transformers on meta, tests/test_families.py);
SSM_FORWARD are the ones the reference forward runs (logits against transformers, FLOPs against FlopCounterMode)."""

from conftest import tiny_config
SSM_NEMO = dict(mamba_num_heads=8, mamba_head_dim=8, n_groups=2, ssm_state_size=8, conv_kernel=4, head_dim=8,
                layer_norm_epsilon=1e-5, chunk_size=8)
MAMBA = dict(mamba_n_heads=8, mamba_d_head=8, mamba_n_groups=2, mamba_d_state=8, mamba_d_conv=4, mamba_chunk_size=8)
TINY_SSM = {
    "nemotron_h": tiny_config("nemotron_h", hybrid_override_pattern="M*-ME", n_routed_experts=4, num_experts_per_tok=2,
                              moe_intermediate_size=24, moe_shared_expert_intermediate_size=40, n_group=2, topk_group=1,
                              **SSM_NEMO),
    "nemotron_h-latent-moe-bias": tiny_config("nemotron_h", hybrid_override_pattern="ME*E", n_routed_experts=4,
                                              num_experts_per_tok=2, moe_intermediate_size=24, moe_latent_size=16,
                                              moe_shared_expert_intermediate_size=40, mlp_bias=True, **SSM_NEMO),
    "nemotron_h-bias": tiny_config("nemotron_h", hybrid_override_pattern="M-*", use_conv_bias=False, use_bias=True,
                                   attention_bias=True, mlp_bias=True, **SSM_NEMO),
    "granitemoehybrid": tiny_config("granitemoehybrid", layer_types=["mamba", "attention", "mamba"], num_hidden_layers=3,
                                    num_local_experts=4, num_experts_per_tok=2, shared_intermediate_size=40,
                                    mamba_expand=2, **MAMBA),
    "granitemoehybrid-dense": tiny_config("granitemoehybrid", layer_types=["linear_attention", "full_attention"],
                                          num_local_experts=0, shared_intermediate_size=40, mamba_conv_bias=False,
                                          mamba_proj_bias=True, attention_bias=True, position_embedding_type="rope",
                                          **MAMBA),
    "falcon_h1": tiny_config("falcon_h1", head_dim=8, mamba_d_ssm=48, mamba_n_heads=6, mamba_d_head=8, mamba_n_groups=2,
                             mamba_d_state=8, mamba_d_conv=4, mamba_chunk_size=8, mamba_rms_norm=True),
    "falcon_h1-bias": tiny_config("falcon_h1", head_dim=8, mamba_d_ssm=None, mamba_n_heads=8, mamba_d_head=8, mamba_n_groups=1,
                                  mamba_d_state=8, mamba_d_conv=4, mamba_conv_bias=False, mamba_proj_bias=True,
                                  projectors_bias=True, attention_bias=True, mlp_bias=True, mamba_chunk_size=8),
    "lfm2": tiny_config("lfm2", num_hidden_layers=4, layer_types=["conv", "full_attention", "conv", "full_attention"],
                        norm_eps=1e-5, block_multiple_of=16, tie_word_embeddings=True),
    "lfm2-idxs-bias": tiny_config("lfm2", num_hidden_layers=3, full_attn_idxs=[1], conv_bias=True, conv_L_cache=4,
                                  block_auto_adjust_ff_dim=False),
}

SSM_FORWARD = {
    "nemotron_moe": tiny_config("nemotron_h", hybrid_override_pattern="M*EM-E", n_routed_experts=4, num_experts_per_tok=2,
                                moe_intermediate_size=24, moe_shared_expert_intermediate_size=40, n_group=2,
                                topk_group=1, routed_scaling_factor=1.5, **SSM_NEMO),
    "lfm2": tiny_config("lfm2", num_hidden_layers=4, layer_types=["conv", "full_attention", "conv", "full_attention"],
                        norm_eps=1e-5, block_multiple_of=16),
    "granitemoehybrid": tiny_config("granitemoehybrid", layer_types=["mamba", "attention", "mamba"], num_hidden_layers=3,
                                    num_local_experts=0, shared_intermediate_size=40, embedding_multiplier=2.0,
                                    attention_multiplier=0.2, residual_multiplier=0.5, logits_scaling=4.0, **MAMBA),
    "nemotron_h-latent-moe": tiny_config("nemotron_h", hybrid_override_pattern="ME*E", n_routed_experts=4,
                                         num_experts_per_tok=2, moe_intermediate_size=24, moe_latent_size=16,
                                         moe_shared_expert_intermediate_size=40, mlp_bias=True, n_group=2, topk_group=1,
                                         **SSM_NEMO),
    "granitemoehybrid-moe-rope": tiny_config("granitemoehybrid", layer_types=["mamba", "attention", "mamba"],
                                             num_hidden_layers=3, num_local_experts=4, num_experts_per_tok=2,
                                             shared_intermediate_size=40, position_embedding_type="rope",
                                             residual_multiplier=0.5, **MAMBA),
    # every muP multiplier away from 1; the gated norm of y * SiLU(z) (mamba_norm_before_gate default true: norm first)
    "falcon_h1": tiny_config("falcon_h1", head_dim=8, mamba_d_ssm=48, mamba_n_heads=6, mamba_d_head=8,
                             mamba_n_groups=2, mamba_d_state=8, mamba_d_conv=4, mamba_chunk_size=8, mamba_rms_norm=True,
                             embedding_multiplier=1.5, lm_head_multiplier=0.5, key_multiplier=0.7,
                             attention_in_multiplier=1.2, attention_out_multiplier=0.8, ssm_in_multiplier=0.9,
                             ssm_out_multiplier=1.1, ssm_multipliers=[1.1, 0.9, 1.2, 0.8, 1.3],
                             mlp_multipliers=[0.7, 1.4]),
    "falcon_h1-gate-first": tiny_config("falcon_h1", head_dim=8, mamba_d_ssm=None, mamba_n_heads=8, mamba_d_head=8,
                                        mamba_n_groups=1, mamba_d_state=8, mamba_d_conv=4, mamba_chunk_size=8,
                                        mamba_norm_before_gate=False, mamba_rms_norm=True),
}
