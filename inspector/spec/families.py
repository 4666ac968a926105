"""Per-family differences of decoder LLMs, as data.

One `Family` record per Hugging Face `model_type`. It holds only what differs between families:
which parts a decoder layer is made of (the attention kind, the MLP kind, the norm kind and where
the norms sit), which config keys switch biases on, the names the config uses for standard fields,
the defaults transformers' config class applies when a key is absent, and the checkpoint name of
every tensor role. A family that reuses existing parts is one entry here; nothing else in the
package branches on a family's name, it reads the spec fields these records resolve to.

Name templates use `{i}` for the layer index and `{e}` for the expert index and are relative to
the spec's `prefix` (empty for plain LLMs, `language_model.` for InternVL2's LLM). Linear roles get
".weight"/".bias" appended; roles whose template already ends in a parameter name (fused expert
tensors, attention sinks) are used as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from inspector.spec.norms import NORMS

# The parts a decoder layer can be composed of (the values of the Family fields below, checked when the
# table is built; the norm kinds, their placements and the q/k norms are the tables of inspector.spec.norms).
ATTENTION_KINDS = ("qkv", "qkv_fused", "qkv_grouped", "qkv_per_head", "mla")
# Linear-attention (token-mixer) kinds of hybrid families, for the layers `layer_types` marks
# "linear_attention": Gated DeltaNet with one fused qkvz and one fused ba projection (Qwen3-Next,
# transformers models/qwen3_next Qwen3NextGatedDeltaNet) or with four separate ones (Qwen3.5,
# transformers models/qwen3_5 Qwen3_5GatedDeltaNet: in_proj_qkv, in_proj_z, in_proj_b, in_proj_a).
LINEAR_ATTENTION_KINDS = ("", "gdn_fused", "gdn_split", "kda",  # kda: Kimi Delta Attention (Kimi Linear)
                          "mamba2", "shortconv")  # (Mamba2, LFM2: spec.ssm)
MLP_KINDS = ("gated", "gated_fused", "plain")
# How a router turns its logits into top-k weights: every rule a family may name (the reference forward
# pass, inspector.reference.moe's ROUTES, refuses in one line a rule it does not implement yet).
ROUTING_RULES = ("softmax_topk", "topk_softmax", "sigmoid_grouped", "topk_sigmoid", "sparsemixer",
                 "group_limited_greedy")
EXPERT_ACTIVATIONS = ("gated", "clamped_swiglu")


def _names(**roles: str) -> Mapping[str, str]:
    return MappingProxyType(roles)


def _extend(base: Mapping[str, str], **roles: str) -> Mapping[str, str]:
    return MappingProxyType({**base, **roles})


L = "model.layers.{i}."
LLAMA_NAMES = _names(
    embed="model.embed_tokens.weight",
    attn_norm=L + "input_layernorm",
    q=L + "self_attn.q_proj", k=L + "self_attn.k_proj", v=L + "self_attn.v_proj",
    qkv=L + "self_attn.qkv_proj", o=L + "self_attn.o_proj",
    q_norm=L + "self_attn.q_norm", k_norm=L + "self_attn.k_norm",
    mlp_norm=L + "post_attention_layernorm",
    gate=L + "mlp.gate_proj", up=L + "mlp.up_proj", gate_up=L + "mlp.gate_up_proj", down=L + "mlp.down_proj",
    final_norm="model.norm",
    lm_head="lm_head",
)
# Gemma 2/3: a norm before and after both attention and MLP ("sandwich").
GEMMA2_NAMES = _extend(
    LLAMA_NAMES,
    post_attn_norm=L + "post_attention_layernorm",
    mlp_norm=L + "pre_feedforward_layernorm",
    post_mlp_norm=L + "post_feedforward_layernorm",
)
OLMO2_NAMES = _extend(
    LLAMA_NAMES, post_attn_norm=L + "post_attention_layernorm", post_mlp_norm=L + "post_feedforward_layernorm",
)
GLM4_NAMES = _extend(
    LLAMA_NAMES, post_attn_norm=L + "post_self_attn_layernorm", post_mlp_norm=L + "post_mlp_layernorm",
)
STARCODER2_NAMES = _extend(LLAMA_NAMES, fc1=L + "mlp.c_fc", fc2=L + "mlp.c_proj")
PHI_NAMES = _extend(
    LLAMA_NAMES, o=L + "self_attn.dense", fc1=L + "mlp.fc1", fc2=L + "mlp.fc2",
    q_norm=L + "self_attn.q_layernorm", k_norm=L + "self_attn.k_layernorm", final_norm="model.final_layernorm",
)
G = "transformer.h.{i}."
GPT2_NAMES = _names(
    embed="transformer.wte.weight", pos_embed="transformer.wpe.weight",
    attn_norm=G + "ln_1", qkv=G + "attn.c_attn", o=G + "attn.c_proj",
    mlp_norm=G + "ln_2", fc1=G + "mlp.c_fc", fc2=G + "mlp.c_proj",
    final_norm="transformer.ln_f", lm_head="lm_head",
)
N = "gpt_neox.layers.{i}."
GPT_NEOX_NAMES = _names(
    embed="gpt_neox.embed_in.weight",
    attn_norm=N + "input_layernorm", qkv=N + "attention.query_key_value", o=N + "attention.dense",
    mlp_norm=N + "post_attention_layernorm", fc1=N + "mlp.dense_h_to_4h", fc2=N + "mlp.dense_4h_to_h",
    final_norm="gpt_neox.final_layer_norm", lm_head="embed_out",
)
INTERNLM2_NAMES = _names(
    embed="model.tok_embeddings.weight",
    attn_norm=L + "attention_norm", qkv=L + "attention.wqkv", o=L + "attention.wo",
    mlp_norm=L + "ffn_norm", gate=L + "feed_forward.w1", up=L + "feed_forward.w3", down=L + "feed_forward.w2",
    final_norm="model.norm", lm_head="output",
)
# Mixture of experts: the router, experts stored one by one ({e}) or fused, shared experts.
QWEN_MOE_NAMES = _extend(
    LLAMA_NAMES,
    router=L + "mlp.gate",
    expert_gate=L + "mlp.experts.{e}.gate_proj", expert_up=L + "mlp.experts.{e}.up_proj",
    expert_down=L + "mlp.experts.{e}.down_proj",
    shared_gate=L + "mlp.shared_expert.gate_proj", shared_up=L + "mlp.shared_expert.up_proj",
    shared_down=L + "mlp.shared_expert.down_proj", shared_expert_gate=L + "mlp.shared_expert_gate",
)
MIXTRAL_NAMES = _extend(
    LLAMA_NAMES,
    router=L + "block_sparse_moe.gate",
    expert_gate=L + "block_sparse_moe.experts.{e}.w1", expert_up=L + "block_sparse_moe.experts.{e}.w3",
    expert_down=L + "block_sparse_moe.experts.{e}.w2",
)
DEEPSEEK_NAMES = _extend(
    QWEN_MOE_NAMES,
    router_score_bias=L + "mlp.gate.e_score_correction_bias",
    shared_gate=L + "mlp.shared_experts.gate_proj", shared_up=L + "mlp.shared_experts.up_proj",
    shared_down=L + "mlp.shared_experts.down_proj",
    q_a=L + "self_attn.q_a_proj", q_a_norm=L + "self_attn.q_a_layernorm", q_b=L + "self_attn.q_b_proj",
    kv_a=L + "self_attn.kv_a_proj_with_mqa", kv_a_norm=L + "self_attn.kv_a_layernorm",
    kv_b=L + "self_attn.kv_b_proj",
    mtp_embed=L + "embed_tokens.weight", mtp_enorm=L + "enorm.weight", mtp_hnorm=L + "hnorm.weight",
    mtp_eh_proj=L + "eh_proj.weight", mtp_head_norm=L + "shared_head.norm.weight",
    mtp_head=L + "shared_head.head.weight",
)
GPT_OSS_NAMES = _extend(
    LLAMA_NAMES,
    sinks=L + "self_attn.sinks", router=L + "mlp.router",
    experts_gate_up=L + "mlp.experts.gate_up_proj", experts_down=L + "mlp.experts.down_proj",
    experts_gate_up_bias=L + "mlp.experts.gate_up_proj_bias", experts_down_bias=L + "mlp.experts.down_proj_bias",
)
# Qwen3-Next: gated full attention in every `full_attention_interval`-th layer, Gated DeltaNet in the
# others (transformers models/qwen3_next/modeling_qwen3_next.py, Qwen3NextGatedDeltaNet's parameters).
GDN = L + "linear_attn."
QWEN3_NEXT_NAMES = _extend(
    QWEN_MOE_NAMES,
    gdn_qkvz=GDN + "in_proj_qkvz", gdn_ba=GDN + "in_proj_ba",
    gdn_qkv=GDN + "in_proj_qkv", gdn_z=GDN + "in_proj_z", gdn_b=GDN + "in_proj_b", gdn_a=GDN + "in_proj_a",
    gdn_conv=GDN + "conv1d.weight", gdn_dt_bias=GDN + "dt_bias", gdn_a_log=GDN + "A_log",
    gdn_norm=GDN + "norm", gdn_out=GDN + "out_proj",
)
# ERNIE 4.5 MoE: Qwen's per-expert layout, shared experts under shared_experts, the selection bias in moe_statics
# (transformers conversion_mapping: mlp.moe_statics.e_score_correction_bias is the checkpoint's name)
ERNIE_MOE_NAMES = _extend(
    QWEN_MOE_NAMES, router_score_bias=L + "mlp.moe_statics.e_score_correction_bias",
    shared_gate=L + "mlp.shared_experts.gate_proj", shared_up=L + "mlp.shared_experts.up_proj",
    shared_down=L + "mlp.shared_experts.down_proj",
)
# Hunyuan-A13B (transformers hunyuan_v1_moe; its conversion mapping is qwen2_moe's): the router is mlp.gate.wg, the
# always-present shared expert mlp.shared_mlp, the q/k norms query_layernorm / key_layernorm
HUNYUAN_MOE_NAMES = _extend(
    QWEN_MOE_NAMES, router=L + "mlp.gate.wg", q_norm=L + "self_attn.query_layernorm",
    k_norm=L + "self_attn.key_layernorm", shared_gate=L + "mlp.shared_mlp.gate_proj",
    shared_up=L + "mlp.shared_mlp.up_proj", shared_down=L + "mlp.shared_mlp.down_proj",
)
# MiniMax-M2: Mixtral's block_sparse_moe layout plus the selection bias, stored beside the router (not in it)
MINIMAX_M2_NAMES = _extend(MIXTRAL_NAMES, router_score_bias=L + "block_sparse_moe.e_score_correction_bias")
# DeepSeek-V3.2: DeepSeek-V3's names plus the lightning indexer of DeepSeek Sparse Attention in every
# attention layer (transformers models/deepseek_v32 DeepseekV32Indexer: wq_b, wk, k_norm (a LayerNorm with
# bias), weights_proj; the published checkpoint stores them under self_attn.indexer.*)
IDX = L + "self_attn.indexer."
DEEPSEEK_V32_NAMES = _extend(
    DEEPSEEK_NAMES, indexer_wq_b=IDX + "wq_b", indexer_wk=IDX + "wk", indexer_k_norm=IDX + "k_norm",
    indexer_weights_proj=IDX + "weights_proj",
)
# Kimi Linear (moonshotai/Kimi-Linear-48B-A3B-Instruct's checkpoint; transformers models/kimi_linear renames the
# forget-gate tensors under forget_gate., stacks the three convs into conv1d and block_sparse_moe. into mlp.):
# Kimi Delta Attention layers and MLA layers share self_attn.q_proj/o_proj; experts are w1/w3 (gate, up), w2 (down).
KDA = L + "self_attn."
KIMI_LINEAR_NAMES = _extend(
    DEEPSEEK_NAMES,
    router=L + "block_sparse_moe.gate", router_score_bias=L + "block_sparse_moe.gate.e_score_correction_bias",
    expert_gate=L + "block_sparse_moe.experts.{e}.w1", expert_up=L + "block_sparse_moe.experts.{e}.w3",
    expert_down=L + "block_sparse_moe.experts.{e}.w2",
    shared_gate=L + "block_sparse_moe.shared_experts.gate_proj", shared_up=L + "block_sparse_moe.shared_experts.up_proj",
    shared_down=L + "block_sparse_moe.shared_experts.down_proj",
    kda_q=KDA + "q_proj", kda_k=KDA + "k_proj", kda_v=KDA + "v_proj", kda_q_conv=KDA + "q_conv1d.weight",
    kda_k_conv=KDA + "k_conv1d.weight", kda_v_conv=KDA + "v_conv1d.weight", kda_a_log=KDA + "A_log",
    kda_f_a=KDA + "f_a_proj", kda_f_b=KDA + "f_b_proj", kda_dt_bias=KDA + "dt_bias", kda_b=KDA + "b_proj",
    kda_g_a=KDA + "g_a_proj", kda_g_b=KDA + "g_b_proj", kda_norm=KDA + "o_norm", kda_out=KDA + "o_proj",
)
# Gemma 3n / Gemma 4 (transformers models/gemma3n, models/gemma4): per-layer inputs (PLE), Gemma 4's stored
# per-layer scalar, Gemma 3n's AltUp streams and LAuReL residual ({e}: the AltUp stream's projection).
GEMMA_PLE_NAMES = _extend(
    GEMMA2_NAMES,
    ple_embed="model.embed_tokens_per_layer.weight", ple_proj="model.per_layer_model_projection",
    ple_norm="model.per_layer_projection_norm", ple_gate=L + "per_layer_input_gate",
    ple_out=L + "per_layer_projection", ple_out_norm=L + "post_per_layer_input_norm", layer_scalar=L + "layer_scalar",
    altup_in="model.altup_projections.{e}", altup_out="model.altup_unembed_projections.{e}",
    altup_scale=L + "altup.correct_output_scale", altup_correct=L + "altup.correction_coefs",
    altup_predict=L + "altup.prediction_coefs", altup_router=L + "altup.modality_router",
    altup_router_norm=L + "altup.router_norm",
    laurel_left=L + "laurel.linear_left", laurel_right=L + "laurel.linear_right", laurel_norm=L + "laurel.post_laurel_norm",
    # Gemma 4 26B-A4B: experts beside the dense MLP (Gemma4TextRouter, Gemma4TextExperts, three more norms)
    g4_router=L + "router.proj", g4_router_scale=L + "router.scale", g4_expert_scale=L + "router.per_expert_scale",
    g4_gate_up=L + "experts.gate_up_proj", g4_down=L + "experts.down_proj",
    g4_norm_mlp=L + "post_feedforward_layernorm_1", g4_norm_experts=L + "post_feedforward_layernorm_2",
    g4_norm_pre=L + "pre_feedforward_layernorm_2",
)
LLAMA4_NAMES = _extend(
    LLAMA_NAMES,
    gate=L + "feed_forward.gate_proj", up=L + "feed_forward.up_proj", down=L + "feed_forward.down_proj",
    router=L + "feed_forward.router",
    experts_gate_up=L + "feed_forward.experts.gate_up_proj", experts_down=L + "feed_forward.experts.down_proj",
    shared_gate=L + "feed_forward.shared_expert.gate_proj", shared_up=L + "feed_forward.shared_expert.up_proj",
    shared_down=L + "feed_forward.shared_expert.down_proj",
)

# -- Mamba2 / short-convolution hybrids (transformers 5.25 models/nemotron_h, granitemoehybrid, falcon_h1, lfm2;
# the checkpoint names: Nemotron-H's are under backbone.* with one tensor per expert, transformers'
# conversion_mapping renames them; Granite 4.0-H stores its experts fused as block_sparse_moe.input_linear) --
def _mamba2_roles(at: str) -> dict[str, str]:
    """The Mamba2 mixer's roles under `at` (Mamba2Mixer: in_proj, conv1d, dt_bias, A_log, D, norm, out_proj)."""
    return {"ssm_in": at + "in_proj", "ssm_conv": at + "conv1d", "ssm_dt_bias": at + "dt_bias",
            "ssm_a_log": at + "A_log", "ssm_d": at + "D", "ssm_norm": at + "norm", "ssm_out": at + "out_proj"}


NB = "backbone.layers.{i}."
NX = NB + "mixer."
NEMOTRON_H_NAMES = _names(
    embed="backbone.embeddings.weight", attn_norm=NB + "norm",
    q=NX + "q_proj", k=NX + "k_proj", v=NX + "v_proj", o=NX + "o_proj", fc1=NX + "up_proj", fc2=NX + "down_proj",
    router=NX + "gate", router_score_bias=NX + "gate.e_score_correction_bias",
    expert_up=NX + "experts.{e}.up_proj", expert_down=NX + "experts.{e}.down_proj",
    shared_up=NX + "shared_experts.up_proj", shared_down=NX + "shared_experts.down_proj",
    moe_latent_in=NX + "fc1_latent_proj", moe_latent_out=NX + "fc2_latent_proj",
    final_norm="backbone.norm_f", lm_head="lm_head", **_mamba2_roles(NX),
)
GRANITE_HYBRID_NAMES = _extend(
    LLAMA_NAMES, gate_up=L + "shared_mlp.input_linear", down=L + "shared_mlp.output_linear",
    shared_gate_up=L + "shared_mlp.input_linear", shared_down=L + "shared_mlp.output_linear",
    router=L + "block_sparse_moe.router.layer", experts_gate_up=L + "block_sparse_moe.input_linear.weight",
    experts_down=L + "block_sparse_moe.output_linear.weight", **_mamba2_roles(L + "mamba."),
)
FALCON_H1_NAMES = _extend(
    LLAMA_NAMES, mlp_norm=L + "pre_ff_layernorm", gate=L + "feed_forward.gate_proj", up=L + "feed_forward.up_proj",
    down=L + "feed_forward.down_proj", final_norm="model.final_layernorm", **_mamba2_roles(L + "mamba."),
)
LFM2_NAMES = _extend(
    LLAMA_NAMES, attn_norm=L + "operator_norm", mlp_norm=L + "ffn_norm", o=L + "self_attn.out_proj",
    q_norm=L + "self_attn.q_layernorm", k_norm=L + "self_attn.k_layernorm", gate=L + "feed_forward.w1",
    up=L + "feed_forward.w3", down=L + "feed_forward.w2", final_norm="model.embedding_norm",
    ssm_in=L + "conv.in_proj", ssm_conv=L + "conv.conv", ssm_out=L + "conv.out_proj",
)


@dataclass(frozen=True)
class MoEFamily:
    """How a family's mixture-of-experts blocks are built and stored.

    `fused`: the checkpoint stores all experts of a layer as one tensor (E, ...), gate and up
    interleaved in one (gpt-oss, Llama 4); otherwise one set of tensors per expert. `shared_expert`:
    always one shared expert as wide as a routed one (Llama 4); other families size their shared
    experts from config keys. `score_bias`: the router's `e_score_correction_bias` (a buffer that
    checkpoints store, not a parameter).
    """

    fused: bool = False
    fused_out_in: bool = False  # fused experts stored (E, out, in) like Linear weights (Granite), not (E, in, out)
    gated: bool = True  # False: up/down experts with a plain activation (Nemotron-H's relu2)
    shared_key: str = ""  # the config key of the shared expert's width, when it is neither of the usual ones
    latent_key: str = ""  # Nemotron-H's moe_latent_size: the routed experts work in a latent width (fc1/fc2 around)
    shared_expert: bool = False
    shared_expert_gate: bool = False
    router_bias: bool = False
    expert_bias: bool = False
    score_bias: bool = False
    # -- routing, read by the reference forward pass only (spec.layers.RoutingSpec) --
    routing: str = "softmax_topk"  # ROUTING_RULES
    expert_act: str = "gated"  # EXPERT_ACTIVATIONS; clamped_swiglu: gpt-oss, gate/up interleaved
    weight_input: bool = False  # Llama 4: the routing weight scales the expert's input, not its output
    # -- issue 24 (helper moe4) --
    shared_bias: bool = False  # the shared experts carry the MLP's biases (ERNIE 4.5's use_bias)
    score_bias_param: bool = False  # ERNIE 4.5: the selection bias is a frozen (1, E) parameter, not an (E,) buffer

    def __post_init__(self) -> None:
        _one_of("routing", self.routing, ROUTING_RULES)
        _one_of("expert_act", self.expert_act, EXPERT_ACTIVATIONS)


def _one_of(part: str, value: str, kinds: tuple[str, ...]) -> None:
    """A family entry naming a part that does not exist fails when the table is built, not in a forward pass."""
    if value not in kinds:
        raise ValueError(f"family part {part!r}: {value!r} is not one of {', '.join(kinds)}")


# Config keys of the standard fields, first found wins; a family's `keys` replace them.
STANDARD_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "vocab_size": ("vocab_size",), "hidden_size": ("hidden_size",), "intermediate_size": ("intermediate_size",),
    "num_layers": ("num_hidden_layers",), "num_heads": ("num_attention_heads",),
    "num_kv_heads": ("num_key_value_heads",), "norm_eps": ("rms_norm_eps",), "hidden_act": ("hidden_act",),
    "max_position_embeddings": ("max_position_embeddings",),
    "num_experts": ("num_experts", "num_local_experts", "n_routed_experts"),
    "top_k": ("num_experts_per_tok", "experts_per_token"),
    "expert_intermediate": ("moe_intermediate_size",),
    "dense_intermediate": ("intermediate_size",),
})


@dataclass(frozen=True)
class Family:
    """What one `model_type` does differently; see the module docstring.

    `qkv_bias` / `o_bias` / `mlp_bias` are either a bool (fixed by the architecture) or the name of
    the config key that switches the bias on (read with default False). `keys` lists config keys of
    standard fields this family names differently (gpt2's `n_embd`); `defaults` holds transformers'
    class defaults for keys a sparse config.json may omit.
    """

    model_type: str
    description: str
    names: Mapping[str, str] = field(default_factory=lambda: LLAMA_NAMES, hash=False)
    attention: str = "qkv"  # ATTENTION_KINDS
    mlp: str = "gated"  # MLP_KINDS
    norm: str = "rms"  # norms.NORMS; rms_offset is Gemma's x * (1 + w)
    placement: str = "pre"  # norms.PLACEMENTS
    learned_positions: bool = False
    qkv_bias: bool | str = False
    o_bias: bool | str = False
    mlp_bias: bool | str = False
    lm_head_bias: bool | str = False
    qk_norm: str = ""  # "" or norms.QK_NORMS: "head" (over d_h) | "full" (over all heads)
    qk_norm_switch: str = ""  # the config key that turns qk_norm on, when it is optional
    attention_sinks: bool = False
    transposed_linears: bool = False  # GPT-2's Conv1D stores (in, out)
    embed_scale: bool = False  # Gemma multiplies embeddings by sqrt(d)
    sliding_pattern: int = 0  # every n-th layer full attention when no layer_types are given
    moe: MoEFamily | None = None
    # -- attention details the reference forward pass reads (spec.text.TextSpec) --
    rope_interleaved: bool | str = False  # RoPE rotates pairs (2i, 2i+1), not (i, i + d/2); str: config switch
    # Without head_dim, d_h = hidden // heads even when heads do not divide hidden (transformers' modeling code
    # floors, e.g. models/glm4_moe Glm4MoeAttention: getattr(config, "head_dim", hidden_size // num_attention_heads));
    # False: such a config is refused in one line
    head_dim_floor: bool = False
    rope_on: str = "all"  # "all" | "sliding": Cohere 2's full-attention layers have no RoPE | "none": Kimi Linear
    qk_l2_norm: str = ""  # config switch of Llama 4's weightless L2 norm of q and k (RoPE layers only)
    temperature_tuning: bool = False  # Llama 4: queries of NoPE layers scaled up with the position
    chunked_attention: bool = False  # Llama 4: RoPE layers attend within chunks of attention_chunk_size
    qk_norm_after_rope: bool = False  # Hunyuan: the per-head q/k norms come after RoPE, not before
    sliding_rope_plain: bool = False  # OLMo 3: rope_scaling is the full-attention layers'; sliding ones rotate plainly
    # -- hybrid linear attention (Qwen3-Next, Qwen3.5) --
    linear_attention: str = ""  # LINEAR_ATTENTION_KINDS; "" = every layer is softmax attention
    attn_output_gate: bool = False  # q_proj also yields a per-channel gate: o_proj(attn * sigmoid(gate))
    # Qwen3-Next / Qwen3.5 checkpoints store a multi-token-prediction module under mtp.* (vLLM
    # model_executor/models/qwen3_next_mtp.py: fc, pre_fc_norm_hidden, pre_fc_norm_embedding, layers.{j}, norm);
    # its layer count is the first of these keys, else 1 (vLLM's default for num_nextn_predict_layers)
    mtp_keys: tuple[str, ...] = ()
    # DeepSeek Sparse Attention (DeepSeek-V3.2): a lightning indexer picks each query's top index_topk keys
    indexer: bool = False
    # -- Gemma 3n / Gemma 4: layers not all alike (inspector.spec.per_layer) --
    per_layer: bool = False  # per-layer sizes, KV sharing, per-layer inputs, unscaled scores, v norm
    global_heads: bool = False  # Gemma 4: full-attention layers' global_head_dim, attention_k_eq_v, double-wide MLP
    altup: bool = False  # Gemma 3n: AltUp streams, LAuReL, activation sparsity
    layer_scalar: bool = False  # Gemma 4: a stored (1,) scale of each layer's output
    # -- Mamba2 / short-convolution hybrids (inspector.spec.ssm) --
    single_block: bool = False  # Nemotron-H: each layer is one block (Mamba2, attention, MLP or experts) behind one norm
    parallel_linear: bool = False  # Falcon-H1: attention and the Mamba2 mixer side by side in every layer
    auto_ff_dim: bool = False  # LFM2: the MLP width is derived from the configured one (spec.ssm.ff_width)
    mup: bool = False  # Falcon-H1: muP multipliers on attention, Mamba2 and MLP (spec.ssm.MupSpec)
    nope_unless_rope: bool = False  # RoPE only when position_embedding_type is "rope" (Granite 4.0-H; Nemotron-H,
    # whose attention has no RoPE, never sets it)
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _one_of("attention", self.attention, ATTENTION_KINDS)
        _one_of("mlp", self.mlp, MLP_KINDS)
        _one_of("linear_attention", self.linear_attention, LINEAR_ATTENTION_KINDS)

    def config_keys(self, fieldname: str) -> tuple[str, ...]:
        """The config keys holding a standard field: the family's own names replace the usual ones."""
        return self.keys.get(fieldname) or STANDARD_KEYS.get(fieldname, (fieldname,))


def _keys(**fields: tuple[str, ...]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType(fields)


_QWEN_MTP_KEYS = ("mtp_num_hidden_layers", "num_nextn_predict_layers")
_EXPERTS_AT_INTERMEDIATE = _keys(expert_intermediate=("intermediate_size",))
_GEMMA_DEFAULTS = MappingProxyType({"tie_word_embeddings": True, "hidden_act": "gelu_pytorch_tanh", "head_dim": 256})
_GELU_TANH = _keys(hidden_act=("hidden_activation", "hidden_act"))

FAMILIES: Mapping[str, Family] = MappingProxyType({f.model_type: f for f in (
    Family("llama", "LLaMA 2/3/3.1/3.2, SmolLM2", qkv_bias="attention_bias", o_bias="attention_bias",
           mlp_bias="mlp_bias"),
    Family("mistral", "Mistral"),
    Family("qwen2", "Qwen2, Qwen2.5 (q/k/v biases)", qkv_bias=True),
    Family("qwen3", "Qwen3 (q/k RMSNorm, explicit head_dim)", qkv_bias="attention_bias",
           o_bias="attention_bias", qk_norm="head"),
    Family("phi3", "Phi-3 (fused qkv_proj and gate_up_proj)", attention="qkv_fused", mlp="gated_fused"),
    Family("internlm2", "InternLM2 (fused, grouped wqkv; InternVL2's LLM)", names=INTERNLM2_NAMES,
           attention="qkv_grouped", qkv_bias="bias", o_bias="bias"),
    Family("smollm3", "SmolLM3 (LLaMA layout, RoPE left out on every 4th layer)", qkv_bias="attention_bias",
           o_bias="attention_bias", mlp_bias="mlp_bias",
           defaults={"tie_word_embeddings": True, "bos_token_id": 128000}),  # (past a small vocabulary: accepted)
    Family("granite", "Granite (LLaMA layout with embedding, attention, residual and logit multipliers)",
           qkv_bias="attention_bias", o_bias="attention_bias", mlp_bias="mlp_bias"),
    Family("gemma", "Gemma (GeGLU, (1 + w) RMSNorm, embeddings scaled by sqrt(d), tied head)",
           norm="rms_offset", embed_scale=True, keys=_GELU_TANH, defaults=_GEMMA_DEFAULTS,
           qkv_bias="attention_bias", o_bias="attention_bias"),
    Family("gemma2", "Gemma 2 (sandwich norms, soft-capping, alternating sliding window)", names=GEMMA2_NAMES,
           norm="rms_offset", placement="sandwich", embed_scale=True, keys=_GELU_TANH,
           defaults=_GEMMA_DEFAULTS, sliding_pattern=2, qkv_bias="attention_bias", o_bias="attention_bias"),
    Family("gemma3_text", "Gemma 3 text (sandwich norms, q/k norms, 5 local : 1 global layers)",
           names=GEMMA2_NAMES, norm="rms_offset", placement="sandwich", embed_scale=True, qk_norm="head",
           keys=_GELU_TANH, defaults=_GEMMA_DEFAULTS, sliding_pattern=6, qkv_bias="attention_bias",
           o_bias="attention_bias"),
    Family("olmo2", "OLMo 2 (norms after attention and MLP, q/k norms over all heads)", names=OLMO2_NAMES,
           placement="post", qk_norm="full", qkv_bias="attention_bias", o_bias="attention_bias"),
    Family("glm4", "GLM-4 (sandwich norms, fused gate_up, q/k/v biases, partial RoPE)", names=GLM4_NAMES,
           placement="sandwich", mlp="gated_fused", qkv_bias="attention_bias", defaults={"attention_bias": True},
           rope_interleaved=True),
    Family("cohere2", "Cohere 2 (parallel attention and MLP after one LayerNorm without bias)",
           norm="layer_no_bias", placement="parallel", sliding_pattern=4, qkv_bias="attention_bias",
           o_bias="attention_bias", keys=_keys(norm_eps=("layer_norm_eps",)),
           defaults={"tie_word_embeddings": True}, rope_interleaved=True, rope_on="sliding"),
    Family("starcoder2", "StarCoder2 (LayerNorm with bias, GELU MLP, biases everywhere)",
           names=STARCODER2_NAMES, mlp="plain", norm="layer", qkv_bias="use_bias", o_bias="use_bias",
           mlp_bias="use_bias", keys=_keys(norm_eps=("norm_epsilon",)),
           # Starcoder2Config's own bos (50256) lies past its vocabulary (49152): a config saved from
           # the class carries it, so it is accepted (spec/text.py `_bos_id`)
           defaults={"tie_word_embeddings": True, "use_bias": True, "hidden_act": "gelu_pytorch_tanh",
                     "bos_token_id": 50256}),
    Family("phi", "Phi-1/2 (parallel attention and MLP, partial RoPE, LM head bias)", names=PHI_NAMES,
           mlp="plain", norm="layer", placement="parallel", qkv_bias=True, o_bias=True, mlp_bias=True,
           lm_head_bias=True, qk_norm="head", qk_norm_switch="qk_layernorm",
           keys=_keys(norm_eps=("layer_norm_eps",)), defaults={"hidden_act": "gelu_new"}),
    Family("gpt2", "GPT-2 (learned positions, fused c_attn, Conv1D weights stored (in, out))",
           names=GPT2_NAMES, attention="qkv_fused", mlp="plain", norm="layer", learned_positions=True,
           qkv_bias=True, o_bias=True, mlp_bias=True, transposed_linears=True,
           keys=_keys(hidden_size=("n_embd",), num_layers=("n_layer",), num_heads=("n_head",), num_kv_heads=("n_head",),
                      intermediate_size=("n_inner",), max_position_embeddings=("n_positions",),
                      norm_eps=("layer_norm_epsilon",), hidden_act=("activation_function",)),
           defaults={"tie_word_embeddings": True, "activation_function": "gelu_new", "bos_token_id": 50256}),
    Family("gpt_neox", "GPT-NeoX, Pythia (parallel residual, per-head fused query_key_value)",
           names=GPT_NEOX_NAMES, attention="qkv_per_head", mlp="plain", norm="layer",
           placement="parallel_two_norms", qkv_bias="attention_bias", o_bias="attention_bias", mlp_bias=True,
           keys=_keys(norm_eps=("layer_norm_eps",), num_kv_heads=("num_attention_heads",)),
           defaults={"attention_bias": True, "hidden_act": "gelu"}),
    Family("mixtral", "Mixtral (8 experts, top-2, in block_sparse_moe)", names=MIXTRAL_NAMES, keys=_EXPERTS_AT_INTERMEDIATE,
           moe=MoEFamily(routing="topk_softmax")),
    Family("qwen2_moe", "Qwen1.5/2 MoE (shared expert with a sigmoid gate, q/k/v biases)",
           names=QWEN_MOE_NAMES, qkv_bias=True, moe=MoEFamily(shared_expert_gate=True)),
    Family("qwen3_moe", "Qwen3 MoE (q/k norms, decoder_sparse_step, mlp_only_layers)", names=QWEN_MOE_NAMES,
           qk_norm="head", qkv_bias="attention_bias", o_bias="attention_bias", moe=MoEFamily()),
    # Qwen3-Next: zero-centred RMS norms ((1 + w), weights stored as offsets), gated attention with
    # per-head q/k norms over a quarter of head_dim rotated, Gated DeltaNet in 3 of 4 layers, 512
    # experts plus a gated shared expert. Class defaults: transformers Qwen3NextConfig (5.25).
    Family("qwen3_next", "Qwen3-Next (hybrid: Gated DeltaNet + gated attention, zero-centred norms, MoE)",
           names=QWEN3_NEXT_NAMES, norm="rms_offset", qk_norm="head", qkv_bias="attention_bias",
           o_bias="attention_bias", moe=MoEFamily(shared_expert_gate=True), linear_attention="gdn_fused",
           attn_output_gate=True, mtp_keys=_QWEN_MTP_KEYS,
           defaults={"full_attention_interval": 4, "norm_topk_prob": True, "head_dim": 256,
                     "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
                     "linear_num_key_heads": 16, "linear_num_value_heads": 32}),
    # Qwen3.5 text models (the language models of Qwen3.5 / Qwen3.6): Qwen3-Next's layout with the Gated
    # DeltaNet's projections stored as four (in_proj_qkv, in_proj_z, in_proj_b, in_proj_a); dense or MoE.
    # Class defaults: transformers Qwen3_5TextConfig / Qwen3_5MoeTextConfig (5.25); the MoE router always
    # renormalises its top-k (Qwen3_5MoeTopKRouter).
    Family("qwen3_5_text", "Qwen3.5 text (hybrid: Gated DeltaNet with split projections + gated attention)",
           names=QWEN3_NEXT_NAMES, norm="rms_offset", qk_norm="head", qkv_bias="attention_bias",
           o_bias="attention_bias", linear_attention="gdn_split", attn_output_gate=True, mtp_keys=_QWEN_MTP_KEYS,
           defaults={"full_attention_interval": 4, "head_dim": 256, "linear_conv_kernel_dim": 4,
                     "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_num_key_heads": 16,
                     "linear_num_value_heads": 32}),
    Family("qwen3_5_moe_text", "Qwen3.5 MoE text (hybrid Gated DeltaNet + gated attention, experts in every layer)",
           names=QWEN3_NEXT_NAMES, norm="rms_offset", qk_norm="head", qkv_bias="attention_bias",
           o_bias="attention_bias", moe=MoEFamily(shared_expert_gate=True), linear_attention="gdn_split",
           attn_output_gate=True, mtp_keys=_QWEN_MTP_KEYS,  # no dense MLP: its config class has no intermediate_size
           defaults={"full_attention_interval": 4, "norm_topk_prob": True, "head_dim": 256, "intermediate_size": 0,
                     "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
                     "linear_num_key_heads": 16, "linear_num_value_heads": 32}),
    Family("olmoe", "OLMoE (q/k norms over all heads, 64 experts)", names=QWEN_MOE_NAMES, keys=_EXPERTS_AT_INTERMEDIATE, qk_norm="full",
           qkv_bias="attention_bias", o_bias="attention_bias", moe=MoEFamily()),
    Family("phimoe", "Phi-3.5-MoE (LayerNorm with bias, 16 experts)", names=_extend(MIXTRAL_NAMES), keys=_EXPERTS_AT_INTERMEDIATE,
           norm="layer", qkv_bias="attention_bias", o_bias="attention_bias", lm_head_bias="lm_head_bias",
           moe=MoEFamily(routing="sparsemixer"), defaults={"router_jitter_noise": 0.01}),
    Family("deepseek_v2", "DeepSeek-V2 (multi-head latent attention, shared + routed experts)",
           names=DEEPSEEK_NAMES, attention="mla", qkv_bias="attention_bias", o_bias="attention_bias",
           moe=MoEFamily(routing="group_limited_greedy"),
           rope_interleaved=True),  # transformers' DeepseekV2 rotates (2i, 2i+1) pairs as complex numbers
    Family("deepseek_v3", "DeepSeek-V3/R1 (MLA, 1 shared + 256 routed experts, biased top-k routing)",
           names=DEEPSEEK_NAMES, attention="mla", qkv_bias="attention_bias", o_bias="attention_bias",
           moe=MoEFamily(score_bias=True, routing="sigmoid_grouped"), rope_interleaved="rope_interleave",
           defaults={"n_group": 8, "topk_group": 4, "routed_scaling_factor": 2.5, "norm_topk_prob": True,
                     "rope_interleave": True}),
    Family("gpt_oss", "gpt-oss (attention sinks, biases everywhere, fused experts with biases)",
           names=GPT_OSS_NAMES, qkv_bias="attention_bias", o_bias="attention_bias", attention_sinks=True,
           sliding_pattern=2, defaults={"attention_bias": True}, keys=_EXPERTS_AT_INTERMEDIATE,
           moe=MoEFamily(fused=True, router_bias=True, expert_bias=True, routing="topk_softmax",
                         expert_act="clamped_swiglu")),
    # -- issue 24 (helper dsa): Kimi Linear. Class defaults: transformers KimiLinearConfig (5.25), whose
    # attribute_map names n_group num_expert_group, norm_topk_prob moe_renormalize, num_experts_per_tok
    # num_experts_per_token, n_shared_experts num_shared_experts, max_position_embeddings model_max_length;
    # its MLA layers use no RoPE (KimiLinearModel has no rotary embedding: "mla_use_nope").
    Family("kimi_linear", "Kimi Linear (hybrid: Kimi Delta Attention + MLA without RoPE, DeepSeek-V3 MoE)",
           names=KIMI_LINEAR_NAMES, attention="mla", qkv_bias="attention_bias", o_bias="attention_bias",
           moe=MoEFamily(score_bias=True, routing="sigmoid_grouped"), linear_attention="kda", rope_on="none",
           keys=_keys(top_k=("num_experts_per_token", "num_experts_per_tok"),
                      max_position_embeddings=("model_max_length", "max_position_embeddings"),
                      n_group=("num_expert_group", "n_group"), norm_topk_prob=("moe_renormalize", "norm_topk_prob"),
                      n_shared_experts=("num_shared_experts", "n_shared_experts")),
           defaults={"num_expert_group": 1, "topk_group": 1, "routed_scaling_factor": 2.446, "moe_renormalize": True,
                     "num_shared_experts": 1, "first_k_dense_replace": 1, "linear_num_heads": 32,
                     "linear_head_dim": 128, "linear_conv_kernel_dim": 4, "bos_token_id": 163584}),
    # -- issue 24 (helper dsa): DeepSeek-V3.2. Class defaults: transformers DeepseekV32Config (5.25); its MLA
    # always rotates interleaved pairs (no rope_interleave key), its indexer rotate-half pairs.
    Family("deepseek_v32", "DeepSeek-V3.2 (MLA + lightning indexer picking the top-k keys, DeepSeek-V3 MoE)",
           names=DEEPSEEK_V32_NAMES, attention="mla", qkv_bias="attention_bias", o_bias="attention_bias",
           moe=MoEFamily(score_bias=True, routing="sigmoid_grouped"), rope_interleaved=True, indexer=True,
           defaults={"n_group": 8, "topk_group": 4, "routed_scaling_factor": 2.5, "norm_topk_prob": True,
                     "index_topk": 2048, "index_head_dim": 128, "index_n_heads": 64, "first_k_dense_replace": 3}),
    # -- Gemma 4 / Gemma 3n (helper gem, issue 24): class defaults from transformers 5.25 Gemma4TextConfig /
    # Gemma3nTextConfig; norms x * w in float32 (Gemma4RMSNorm, Gemma3nRMSNorm: no 1 + w offset)
    Family("gemma4_text", "Gemma 4 text (per-layer inputs, shared KV, wide global heads, proportional RoPE)",
           names=GEMMA_PLE_NAMES, norm="rms_f32", placement="sandwich", embed_scale=True, qk_norm="head",
           keys=_keys(hidden_act=("hidden_activation", "hidden_act"), top_k=("top_k_experts",)),
           qkv_bias="attention_bias", o_bias="attention_bias", sliding_pattern=6,
           per_layer=True, global_heads=True, layer_scalar=True, moe=MoEFamily(fused=True),  # (enable_moe_block)
           defaults={**_GEMMA_DEFAULTS, "hidden_size_per_layer_input": 256, "vocab_size_per_layer_input": 262144,
                     "num_kv_shared_layers": 0, "norm_topk_prob": True, "sliding_window": 512, "vocab_size": 262144,
                     "max_position_embeddings": 131072,
                     "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                         "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                                            "rope_theta": 1000000.0}}}),
    Family("gemma3n_text", "Gemma 3n text (AltUp, LAuReL, per-layer inputs, shared KV, activation sparsity)",
           names=GEMMA_PLE_NAMES, norm="rms_f32", placement="sandwich", embed_scale=True, qk_norm="head",
           keys=_GELU_TANH, qkv_bias="attention_bias", o_bias="attention_bias", sliding_pattern=5,
           per_layer=True, altup=True,
           defaults={**_GEMMA_DEFAULTS, "hidden_size_per_layer_input": 256, "vocab_size_per_layer_input": 262144,
                     "num_kv_shared_layers": 15, "altup_num_inputs": 4, "laurel_rank": 64, "sliding_window": 512,
                     "final_logit_softcapping": 30.0, "vocab_size": 262400, "max_position_embeddings": 32768,
                     "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0}),  # Gemma3nTextConfig.default_theta
    Family("llama4_text", "Llama 4 text (interleaved MoE layers, a shared expert, fused experts)",
           names=LLAMA4_NAMES, qkv_bias="attention_bias", o_bias="attention_bias",
           keys=_keys(expert_intermediate=("intermediate_size",), dense_intermediate=("intermediate_size_mlp",)),
           moe=MoEFamily(fused=True, shared_expert=True, routing="topk_sigmoid", weight_input=True),
           rope_interleaved=True, qk_l2_norm="use_qk_norm", temperature_tuning=True, chunked_attention=True,
           defaults={"use_qk_norm": True, "no_rope_layer_interval": 4, "attention_chunk_size": 8192,
                     "attn_temperature_tuning": True, "floor_scale": 8192, "attn_scale": 0.1}),
    # --- issue 24 (helper moe4): 2025-26 MoE families, one block ---
    # GLM-4.5/4.6/4.7 (transformers models/glm4_moe, 5.25): DeepSeek-V3's router (sigmoid scores, selection
    # bias, grouped top-k, scaled) and shared experts after first_k_dense_replace dense layers, over plain
    # GQA attention with q/k/v biases (attention_bias), o_proj without, optional per-head q/k norms
    # (use_qk_norm), rotate-half RoPE over half of each head (partial_rotary_factor 0.5, its class default).
    # Checkpoints store the MTP layer as model.layers.{L}.* (DeepSeek's layout). Defaults: Glm4MoeConfig.
    Family("glm4_moe", "GLM-4.5/4.6/4.7 MoE (sigmoid routing with selection bias, shared experts, partial RoPE)",
           names=DEEPSEEK_NAMES, qkv_bias="attention_bias", qk_norm="head", qk_norm_switch="use_qk_norm",
           moe=MoEFamily(score_bias=True, routing="sigmoid_grouped"),
           defaults={"n_group": 1, "topk_group": 1, "routed_scaling_factor": 1.0, "norm_topk_prob": True,
                     "first_k_dense_replace": 1, "n_shared_experts": 1, "partial_rotary_factor": 0.5},
           head_dim_floor=True),  # the class default (4096 wide, 96 heads, no head_dim): d_h 42, as transformers
    # MiniMax-M2 (transformers models/minimax_m2, 5.25): every layer MoE (experts as wide as intermediate_size,
    # no shared expert), sigmoid scores with a selection bias, top-k renormalised (no groups, no scaling); q/k RMS
    # norms over the full projected width (all heads at once, as OLMo 2); rotate-half RoPE over `rotary_dim` of
    # each head (the released configs' legacy field: partial factor rotary_dim / head_dim). Defaults:
    # MiniMaxM2Config.
    Family("minimax_m2", "MiniMax-M2 (sigmoid routing with selection bias, q/k norms over all heads, partial RoPE)",
           names=MINIMAX_M2_NAMES, qk_norm="full", moe=MoEFamily(score_bias=True, routing="sigmoid_grouped"),
           keys=_keys(expert_intermediate=("intermediate_size",), rotary_dim=("rotary_dim",)),
           defaults={"norm_topk_prob": True, "head_dim": 128, "bos_token_id": 200034}),
    # ERNIE 4.5 MoE (transformers models/ernie4_5_moe, 5.25): softmax router whose top-k is chosen with a selection
    # bias added (moe_statics, a frozen (1, E) parameter) and renormalised; experts from moe_layer_start_index to
    # moe_layer_end_index (-1: the last layer) every moe_layer_interval-th layer, moe_num_shared_experts shared
    # experts as wide as a routed one; use_bias switches biases on q/k/v/o, the MLPs (shared experts too) and the
    # LM head; RoPE on interleaved pairs (GLM style, in float32). Defaults: Ernie4_5_MoeConfig.
    Family("ernie4_5_moe", "ERNIE 4.5 MoE (softmax routing with selection bias, shared experts, interleaved RoPE)",
           names=ERNIE_MOE_NAMES, qkv_bias="use_bias", o_bias="use_bias", mlp_bias="use_bias",
           lm_head_bias="use_bias", rope_interleaved=True,
           moe=MoEFamily(score_bias=True, shared_bias=True, score_bias_param=True),
           keys=_keys(num_experts=("moe_num_experts",), top_k=("moe_k",), n_shared_experts=("moe_num_shared_experts",)),
           defaults={"tie_word_embeddings": True, "norm_topk_prob": True, "moe_num_shared_experts": 2,
                     "moe_layer_start_index": 1, "moe_layer_end_index": -1, "moe_layer_interval": 1,
                     "bos_token_id": 1}),
    # Hunyuan-A13B (transformers models/hunyuan_v1_moe, 5.25): every layer MoE, experts and the one shared
    # expert (shared_mlp) as wide as intermediate_size (transformers reads neither moe_intermediate_size nor
    # num_shared_expert), softmax top-k renormalised; per-head q/k RMS norms applied after RoPE; attention_bias
    # on q/k/v/o; num_experts / moe_topk may be per-layer lists (equal values read as one). RoPE "dynamic" with
    # a fixed NTK alpha: base * alpha^(d/(d-2)). Defaults: HunYuanMoEV1Config.
    Family("hunyuan_v1_moe", "Hunyuan-A13B MoE (shared expert, q/k norms after RoPE, NTK-alpha RoPE)",
           names=HUNYUAN_MOE_NAMES, qkv_bias="attention_bias", o_bias="attention_bias", qk_norm="head",
           qk_norm_after_rope=True, moe=MoEFamily(shared_expert=True),
           keys=_keys(top_k=("moe_topk",), expert_intermediate=("intermediate_size",)),
           defaults={"norm_topk_prob": True, "num_experts": 1, "moe_topk": 1, "bos_token_id": 1}),
    # OLMo 3 (transformers models/olmo3, 5.25): OLMo 2's layer (norms after attention and MLP, q/k norms over all
    # heads) with sliding-window layers, every 4th layer full when layer_types is absent; a legacy rope_scaling
    # (YaRN in the released configs) applies to the full-attention layers only, the sliding ones rotate with the
    # plain rope_theta (Olmo3Config.convert_rope_params_to_dict). Defaults: Olmo3Config.
    Family("olmo3", "OLMo 3 (OLMo 2 layout, 3 sliding-window : 1 full layers, YaRN on the full layers)",
           names=OLMO2_NAMES, placement="post", qk_norm="full", qkv_bias="attention_bias", o_bias="attention_bias",
           sliding_pattern=4, sliding_rope_plain=True),
    # -- Mamba2 / short-convolution hybrids (spec.ssm reads their mixers; class defaults: transformers 5.25's
    # NemotronHConfig, GraniteMoeHybridConfig, FalconH1Config, Lfm2Config) --
    Family("nemotron_h", "Nemotron-H (one block per layer: Mamba2, attention, relu2 MLP or relu2 experts)",
           names=NEMOTRON_H_NAMES, mlp="plain", placement="single", single_block=True, nope_unless_rope=True, linear_attention="mamba2", mlp_bias="mlp_bias",
           moe=MoEFamily(gated=False, score_bias=True, routing="sigmoid_grouped",
                         shared_key="moe_shared_expert_intermediate_size", latent_key="moe_latent_size"),
           keys=_keys(num_experts=("n_routed_experts", "num_local_experts"), norm_eps=("layer_norm_epsilon",),
                      hidden_act=("mlp_hidden_act",), ssm_heads=("mamba_num_heads",), ssm_head_dim=("mamba_head_dim",),
                      ssm_groups=("n_groups", "mamba_n_groups"), ssm_state=("ssm_state_size",),
                      ssm_conv_kernel=("conv_kernel", "mamba_d_conv"),
                      ssm_conv_bias=("use_conv_bias", "mamba_conv_bias"), ssm_proj_bias=("use_bias",),
                      ssm_out_bias=("use_bias",)),
           defaults={"mlp_hidden_act": "relu2", "head_dim": 128, "num_key_value_heads": 8, "n_routed_experts": 8,
                     "num_experts_per_tok": 2, "moe_intermediate_size": 7688, "intermediate_size": 21504,
                     "moe_shared_expert_intermediate_size": 7688, "n_group": 1, "topk_group": 1,
                     "norm_topk_prob": True, "routed_scaling_factor": 1.0, "mamba_num_heads": 128,
                     "mamba_head_dim": 64, "n_groups": 8, "ssm_state_size": 128, "conv_kernel": 4,
                     "use_conv_bias": True, "use_bias": False, "layer_norm_epsilon": 1e-5,
                     "max_position_embeddings": 4096, "vocab_size": 131072, "hidden_size": 4096,
                     "num_attention_heads": 32}),
    Family("granitemoehybrid", "Granite 4.0-H (Mamba2 or attention, then a shared MLP and optional fused experts)",
           names=GRANITE_HYBRID_NAMES, mlp="gated_fused", linear_attention="mamba2", nope_unless_rope=True,
           qkv_bias="attention_bias", o_bias="attention_bias",
           moe=MoEFamily(fused=True, fused_out_in=True, routing="topk_softmax", shared_key="shared_intermediate_size"),
           keys=_keys(expert_intermediate=("intermediate_size",), dense_intermediate=("shared_intermediate_size",),
                      intermediate_size=("shared_intermediate_size",),
                      ssm_heads=("mamba_n_heads",), ssm_head_dim=("mamba_d_head",), ssm_groups=("mamba_n_groups",),
                      ssm_state=("mamba_d_state",), ssm_conv_kernel=("mamba_d_conv",), ssm_expand=("mamba_expand",),
                      ssm_conv_bias=("mamba_conv_bias",), ssm_proj_bias=("mamba_proj_bias",),
                      ssm_out_bias=("mamba_proj_bias",)),
           defaults={"num_local_experts": 8, "num_experts_per_tok": 2, "shared_intermediate_size": 1024,
                     "mamba_n_heads": 128, "mamba_n_groups": 1, "mamba_d_state": 256, "mamba_d_conv": 4,
                     "mamba_expand": 2, "mamba_conv_bias": True, "mamba_proj_bias": False}),
    Family("falcon_h1", "Falcon-H1 (attention and Mamba2 side by side in every layer, muP multipliers)",
           names=FALCON_H1_NAMES, linear_attention="mamba2", parallel_linear=True, qkv_bias="attention_bias",
           o_bias="attention_bias", mlp_bias="mlp_bias",
           keys=_keys(ssm_heads=("mamba_n_heads",), ssm_head_dim=("mamba_d_head",), ssm_groups=("mamba_n_groups",),
                      ssm_state=("mamba_d_state",), ssm_conv_kernel=("mamba_d_conv",), ssm_inner=("mamba_d_ssm",),
                      ssm_expand=("mamba_expand",), ssm_conv_bias=("mamba_conv_bias",),
                      ssm_proj_bias=("mamba_proj_bias",), ssm_out_bias=("projectors_bias",), ssm_norm=("mamba_rms_norm",),
                      ssm_norm_before_gate=("mamba_norm_before_gate",)),
           defaults={"mamba_n_heads": 128, "mamba_n_groups": 1, "mamba_d_state": 256, "mamba_d_conv": 4,
                     "mamba_expand": 2, "mamba_conv_bias": True, "mamba_proj_bias": False, "projectors_bias": False,
                     "mamba_rms_norm": False, "mamba_norm_before_gate": True}, mup=True),
    Family("lfm2", "LFM2 (gated short-convolution layers and GQA attention layers with q/k norms)",
           names=LFM2_NAMES, qk_norm="head", linear_attention="shortconv", auto_ff_dim=True,
           keys=_keys(norm_eps=("norm_eps",), intermediate_size=("block_ff_dim", "intermediate_size"),
                      ssm_conv_kernel=("conv_L_cache",), ssm_conv_bias=("conv_bias",)),
           defaults={"tie_word_embeddings": True, "conv_L_cache": 3, "conv_bias": False, "intermediate_size": 12288,
                     "norm_eps": 1e-5}),
)})


# --------------------------------------------------------------------------- GGUF architectures


@dataclass(frozen=True)
class GGUFArch:
    """What a llama.cpp `general.architecture` is on the Hugging Face side (llama.cpp's
    convert_hf_to_gguf.py and transformers' GGUF loader are the sources of these facts)."""

    model_type: str
    architecture: str
    permuted_qk: bool = False  # attn_q/attn_k rows interleaved by llama.cpp's converter for its RoPE
    layer_names: Mapping[str, str] = field(default_factory=dict, hash=False)  # GGUF -> HF suffixes unlike llama's
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)  # config values the file does not carry
    sliding_window: bool = False  # the file's `{arch}.attention.sliding_window` is the model's

    @property
    def norm_plus_one(self) -> bool:
        """llama.cpp's converter stores the weight of a (1 + w) norm (Gemma's) as 1 + w; the model wants w."""
        return NORMS[FAMILIES[self.model_type].norm].offset


GGUF_ARCHITECTURES: Mapping[str, GGUFArch] = MappingProxyType({
    "llama": GGUFArch("llama", "LlamaForCausalLM", permuted_qk=True),
    "mistral": GGUFArch("mistral", "MistralForCausalLM"),
    "qwen2": GGUFArch("qwen2", "Qwen2ForCausalLM"),
    "qwen3": GGUFArch("qwen3", "Qwen3ForCausalLM"),
    # Gemma 3: four norms per layer under their own names; no base for the sliding layers' RoPE in
    # the file (llama.cpp and transformers both take 10000)
    "gemma3": GGUFArch("gemma3_text", "Gemma3ForCausalLM", sliding_window=True,
                       layer_names=MappingProxyType({
                           "ffn_norm.weight": "pre_feedforward_layernorm.weight",
                           "post_attention_norm.weight": "post_attention_layernorm.weight",
                           "post_ffw_norm.weight": "post_feedforward_layernorm.weight"}),
                       config=MappingProxyType({"rope_local_base_freq": 10000.0})),
})
