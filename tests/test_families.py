"""Every native family against transformers on the meta device: names, shapes and totals.

For each family: transformers' default config (its config class's defaults, as `save_pretrained`
writes them) and tiny configs that switch every option on. Our inventory names what published
checkpoints store (per-expert tensors, `block_sparse_moe`, `embed_out`); transformers' own load-time
conversions (its conversion_mapping) turn those names into its parameter names, so the comparison
uses transformers' mapping, not ours.
"""

from __future__ import annotations

import pytest

from conftest import tiny_config
from hf_reference import hf_meta, to_transformers_names
from ssm_configs import TINY_SSM
from inspector.inventory.accounting import account
from inspector.inventory.entry import MTP
from inspector.inventory.model import inventory
from inspector.spec.families import FAMILIES
from inspector.spec.model import from_hf_config

transformers = pytest.importorskip("transformers")

NATIVE = sorted(FAMILIES)
REMOTE_CODE = {"internlm2"}  # transformers builds it only with the repo's own code, which we never run
# Default configs small enough to build on meta in well under a second each are used whole; the
# others keep every field and have fewer layers (the per-layer parts are what is compared).
LAYERS_CAP = 6


def default_config(model_type: str) -> dict:
    cfg = transformers.AutoConfig.for_model(model_type).to_dict()
    for key in ("num_hidden_layers", "n_layer"):
        if cfg.get(key) and cfg[key] > LAYERS_CAP:
            cfg[key] = LAYERS_CAP
    for key in ("layer_types", "no_rope_layers", "mlp_layer_types"):
        if isinstance(cfg.get(key), list):
            cfg[key] = cfg[key][:LAYERS_CAP]
    if isinstance(cfg.get("moe_layers"), list):
        cfg["moe_layers"] = [i for i in cfg["moe_layers"] if i < LAYERS_CAP]
    if cfg.get("first_k_dense_replace"):
        cfg["first_k_dense_replace"] = min(cfg["first_k_dense_replace"], 2)
    cfg.update(DEFAULT_CONFIG_FIXES.get(model_type, {}))
    # Gemma 3n / 4: per-layer lists and overrides cut to the kept layers, one KV-shared layer kept
    for key in ("intermediate_size", "activation_sparsity_pattern"):
        if isinstance(cfg.get(key), list):
            cfg[key] = cfg[key][:LAYERS_CAP]
    if isinstance(cfg.get("per_layer_config"), dict):
        cfg["per_layer_config"] = {k: v for k, v in cfg["per_layer_config"].items() if int(k) < LAYERS_CAP}
    if cfg.get("num_kv_shared_layers"):
        cfg["num_kv_shared_layers"] = 1
    return cfg


# Glm4MoeConfig's defaults have 96 heads of hidden 4096 and no head_dim: transformers floors 4096 / 96 to 42
# (q_proj 4032 wide), which we refuse (not a multiple); every published GLM-4.5/4.6/4.7 config gives head_dim 128.
# HunYuanMoEV1Config's default head_dim is None, which its attention reads as is (getattr finds the attribute):
# transformers 5.25 cannot build its own default config; 4096 / 32 = 128 is what a None head_dim means elsewhere.
DEFAULT_CONFIG_FIXES = {"glm4_moe": {"head_dim": 128}, "hunyuan_v1_moe": {"head_dim": 128}}


def assert_matches_transformers(cfg: dict) -> None:
    model = hf_meta(cfg)
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    spec = from_hf_config(cfg, "test")
    entries = [e for e in inventory(spec) if e.component != MTP]  # a tied head is in state_dict too
    ours = to_transformers_names({e.name: e.shape for e in entries}, model)
    missing, extra = sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs))
    assert not missing and not extra, f"missing {missing[:6]}, extra {extra[:6]}"
    for name, shape in ours.items():
        assert shape == theirs[name], f"tensor '{name}': expected {theirs[name]}, found {shape}"
    assert account(spec).totals.total_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("model_type", sorted(set(NATIVE) - REMOTE_CODE))
def test_default_config_equals_transformers(model_type):
    assert_matches_transformers(default_config(model_type))


MOE = dict(num_local_experts=4, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24)
MLA = dict(kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, n_routed_experts=4,
           n_shared_experts=1, first_k_dense_replace=1, num_experts_per_tok=2, moe_intermediate_size=24,
           n_group=2, topk_group=1, head_dim=4)

KIMI_IDS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)  # Kimi's class defaults lie past a tiny vocabulary

TINY = {
    "gemma": tiny_config("gemma", head_dim=8, hidden_act="gelu_pytorch_tanh"),
    "gemma-untied-bias": tiny_config("gemma", head_dim=8, attention_bias=True, tie_word_embeddings=False),
    "gemma2": tiny_config("gemma2", head_dim=8, num_hidden_layers=4, sliding_window=8),
    "gemma3_text": tiny_config("gemma3_text", head_dim=8, num_hidden_layers=6, sliding_window=8),
    "olmo2": tiny_config("olmo2"),
    "olmo2-bias": tiny_config("olmo2", attention_bias=True),
    "granite": tiny_config("granite", embedding_multiplier=12.0, attention_multiplier=0.1, logits_scaling=8.0),
    "granite-bias": tiny_config("granite", attention_bias=True, mlp_bias=True),
    "starcoder2": tiny_config("starcoder2", hidden_act="gelu_pytorch_tanh"),
    "starcoder2-no-bias": tiny_config("starcoder2", use_bias=False, tie_word_embeddings=False),
    "gpt2": dict(model_type="gpt2", vocab_size=101, n_embd=32, n_layer=2, n_head=4, n_positions=64),
    "gpt2-inner": dict(model_type="gpt2", vocab_size=101, n_embd=32, n_layer=2, n_head=4, n_positions=64, n_inner=40),
    "gpt_neox": tiny_config("gpt_neox", num_key_value_heads=4, rotary_pct=0.5),
    "gpt_neox-sequential": tiny_config("gpt_neox", num_key_value_heads=4, use_parallel_residual=False,
                                       attention_bias=False),
    "phi": tiny_config("phi", num_key_value_heads=4, partial_rotary_factor=0.5),
    "phi-qk-layernorm": tiny_config("phi", num_key_value_heads=4, qk_layernorm=True),
    "smollm3": tiny_config("smollm3", num_hidden_layers=4, no_rope_layers=[1, 1, 1, 0], pad_token_id=0),
    "glm4": tiny_config("glm4", partial_rotary_factor=0.5, head_dim=8, pad_token_id=0),
    "cohere2": tiny_config("cohere2", num_hidden_layers=4, sliding_window=8, head_dim=8),
    "mixtral": tiny_config("mixtral", **MOE),
    "qwen2_moe": tiny_config("qwen2_moe", shared_expert_intermediate_size=40, **MOE),
    "qwen2_moe-sparse-step": tiny_config("qwen2_moe", num_hidden_layers=4, decoder_sparse_step=2,
                                         shared_expert_intermediate_size=40, **MOE),
    "qwen3_5_text": tiny_config("qwen3_5_text", head_dim=8, num_hidden_layers=4, linear_num_key_heads=2,
                                linear_num_value_heads=4, linear_key_head_dim=8, linear_value_head_dim=8,
                                layer_types=["linear_attention", "full_attention"] * 2),
    "qwen3_5_moe_text": tiny_config("qwen3_5_moe_text", head_dim=8, num_hidden_layers=4, linear_num_key_heads=2,
                                    linear_num_value_heads=4, linear_key_head_dim=8, linear_value_head_dim=8,
                                    shared_expert_intermediate_size=40, **MOE),
    "qwen3_moe": tiny_config("qwen3_moe", head_dim=8, **MOE),
    "qwen3_moe-mlp-only": tiny_config("qwen3_moe", head_dim=8, num_hidden_layers=3, mlp_only_layers=[0, 2], **MOE),
    "olmoe": tiny_config("olmoe", **MOE),
    "qwen3_next": tiny_config("qwen3_next", head_dim=8, num_hidden_layers=4, linear_num_key_heads=2,
                              linear_num_value_heads=4, linear_key_head_dim=8, linear_value_head_dim=8,
                              shared_expert_intermediate_size=40, **MOE),
    "phimoe": tiny_config("phimoe", **MOE),
    "phimoe-head-bias": tiny_config("phimoe", lm_head_bias=True, attention_bias=True, **MOE),
    "deepseek_v3": tiny_config("deepseek_v3", num_hidden_layers=3, q_lora_rank=12, **MLA),
    "deepseek_v3-bias": tiny_config("deepseek_v3", num_hidden_layers=3, q_lora_rank=12, attention_bias=True, **MLA),
    "deepseek_v2-no-q-lora": tiny_config("deepseek_v2", num_hidden_layers=3, q_lora_rank=None, **MLA),
    # -- issue 24 (helper dsa): DeepSeek-V3.2's indexer
    "deepseek_v32": tiny_config("deepseek_v32", num_hidden_layers=3, q_lora_rank=12, index_n_heads=2,
                                index_head_dim=8, index_topk=4, **MLA),
    "deepseek_v32-bias-listed": tiny_config("deepseek_v32", num_hidden_layers=3, q_lora_rank=12, attention_bias=True,
                                            index_n_heads=2, index_head_dim=8, mlp_layer_types=["sparse", "dense", "sparse"],
                                            **MLA),
    # -- issue 24 (helper dsa): Kimi Linear (KDA + NoPE MLA), its checkpoint's linear_attn_config and listed types
    "kimi_linear": tiny_config("kimi_linear", num_hidden_layers=4, q_lora_rank=None, **KIMI_IDS, kv_lora_rank=16,
                               qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, num_experts=4,
                               num_experts_per_token=2, moe_intermediate_size=24, num_shared_experts=1,
                               linear_attn_config={"kda_layers": [1, 2, 4], "full_attn_layers": [3], "head_dim": 8,
                                                   "num_heads": 2, "short_conv_kernel_size": 3}),
    "kimi_linear-listed": tiny_config("kimi_linear", num_hidden_layers=3, q_lora_rank=None, **KIMI_IDS, kv_lora_rank=16,
                                      qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, num_experts=4,
                                      num_experts_per_token=2, moe_intermediate_size=24, linear_head_dim=8,
                                      linear_num_heads=2, mlp_layer_types=["sparse", "dense", "sparse"],
                                      layer_types=["full_attention", "linear_attention", "linear_attention"]),
    "gpt_oss": tiny_config("gpt_oss", head_dim=8, num_hidden_layers=2, sliding_window=8, **MOE),
    # Gemma 4 / Gemma 3n (helper gem): sliding, full and KV-shared layers of each type
    "gemma4_text": tiny_config("gemma4_text", head_dim=8, num_hidden_layers=6, sliding_window=8,
                               layer_types=["sliding_attention", "sliding_attention", "full_attention"] * 2,
                               num_kv_shared_layers=2, use_double_wide_mlp=True, attention_k_eq_v=True,
                               num_global_key_value_heads=1, global_head_dim=16, hidden_size_per_layer_input=4,
                               vocab_size_per_layer_input=101),  # (Gemma 4 looks every id up: no smaller table)
    "gemma4_text-moe": tiny_config("gemma4_text", head_dim=8, num_hidden_layers=2, sliding_window=8,
                                   layer_types=["sliding_attention", "full_attention"], enable_moe_block=True,
                                   num_experts=4, top_k_experts=2, moe_intermediate_size=16,
                                   attention_k_eq_v=True, num_global_key_value_heads=1, hidden_size_per_layer_input=0),
    "gemma3n_text": tiny_config("gemma3n_text", head_dim=8, num_hidden_layers=6, sliding_window=8,
                                layer_types=["sliding_attention", "sliding_attention", "full_attention"] * 2,
                                num_kv_shared_layers=2, intermediate_size=[48, 40, 48, 40, 48, 64], laurel_rank=4,
                                hidden_size_per_layer_input=4, vocab_size_per_layer_input=50, altup_num_inputs=3,
                                activation_sparsity_pattern=[0.95, 0.95, 0.0, 0.0, 0.0, 0.0]),
    "llama4_text": tiny_config("llama4_text", head_dim=8, num_hidden_layers=4, interleave_moe_layer_step=2,
                               intermediate_size_mlp=64, **MOE),
}
# issue 24 (helper moe4): 2025-26 MoE families
TINY.update({
    "glm4_moe": tiny_config("glm4_moe", head_dim=8, num_hidden_layers=3, first_k_dense_replace=1, n_routed_experts=4,
                            num_experts_per_tok=2, moe_intermediate_size=24, n_shared_experts=2),
    "glm4_moe-qk-norm-bias": tiny_config("glm4_moe", head_dim=8, num_hidden_layers=2, first_k_dense_replace=0,
                                         n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=24,
                                         use_qk_norm=True, attention_bias=True, n_group=2, topk_group=1),
    "minimax_m2": tiny_config("minimax_m2", head_dim=8, num_local_experts=4, num_experts_per_tok=2, rotary_dim=4),
    "ernie4_5_moe": tiny_config("ernie4_5_moe", num_hidden_layers=4, moe_num_experts=4, moe_k=2, moe_intermediate_size=24,
                                moe_num_shared_experts=1, moe_layer_start_index=1, moe_layer_end_index=2),
    "ernie4_5_moe-bias-interval": tiny_config("ernie4_5_moe", num_hidden_layers=4, moe_num_experts=4, moe_k=2,
                                              moe_intermediate_size=24, moe_layer_start_index=0, moe_layer_interval=2,
                                              use_bias=True, tie_word_embeddings=True),
    "hunyuan_v1_moe": tiny_config("hunyuan_v1_moe", head_dim=8, num_experts=4, moe_topk=2,
                                  rope_scaling={"type": "dynamic", "alpha": 1000.0, "factor": 1.0}),
    "hunyuan_v1_moe-lists-bias": tiny_config("hunyuan_v1_moe", head_dim=8, num_experts=4, moe_topk=[2, 2],
                                             attention_bias=True, tie_word_embeddings=True),
    "olmo3": tiny_config("olmo3", num_hidden_layers=4, sliding_window=8),
    "olmo3-bias-listed": tiny_config("olmo3", num_hidden_layers=3, sliding_window=8, attention_bias=True,
                                     layer_types=["full_attention", "sliding_attention", "full_attention"]),
})
TINY.update(TINY_SSM)  # Mamba2 / short-convolution hybrids (tests/ssm_configs.py)


@pytest.mark.parametrize("cfg", list(TINY.values()), ids=list(TINY))
def test_tiny_config_every_option_equals_transformers(cfg):
    assert_matches_transformers(cfg)


def test_every_native_family_has_a_tiny_config():
    covered = {cfg["model_type"] for cfg in TINY.values()}
    old = {"llama", "mistral", "qwen2", "qwen3", "phi3", "internlm2"}  # covered in test_weights.py
    assert set(NATIVE) - covered - old == set()


@pytest.mark.parametrize("model_type", sorted(set(NATIVE) - REMOTE_CODE))
def test_family_defaults_are_transformers_class_defaults(model_type):
    """A sparse config.json leaves keys out: what we assume for them is what transformers assumes."""
    family = FAMILIES[model_type]
    theirs = transformers.AutoConfig.for_model(model_type).to_dict()
    switches = {s for s in (family.qkv_bias, family.o_bias, family.mlp_bias, family.lm_head_bias,
                            family.qk_norm_switch) if isinstance(s, str) and s}
    for key in switches | {"tie_word_embeddings"}:
        assert bool(family.defaults.get(key, False)) == bool(theirs.get(key, False)), key
    act_keys = family.config_keys("hidden_act")
    act = next((theirs[k] for k in act_keys if theirs.get(k) is not None), "silu")  # LFM2's class: no key, SiLU
    assert family.defaults.get(next(iter(act_keys)), family.defaults.get("hidden_act", "silu")) == act
