"""Per-family differences of decoder LLMs, as data.

One `Family` record per Hugging Face `model_type`. It holds only what differs between families:
which config keys switch biases on, whether q/k carry an RMSNorm, whether q/k/v and gate/up are
fused into one matrix, and the checkpoint name of every tensor role. Nothing else in the package
branches on a family's name; it reads these fields.

Name templates use `{}` for the layer index and are relative to the spec's `prefix`
(empty for plain LLMs, `language_model.` for InternVL2's LLM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

# Roles of the tensors a decoder LLM can have. Linear roles get ".weight"/".bias" appended.
LLAMA_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "embed": "model.embed_tokens.weight",
        "attn_norm": "model.layers.{}.input_layernorm.weight",
        "q": "model.layers.{}.self_attn.q_proj",
        "k": "model.layers.{}.self_attn.k_proj",
        "v": "model.layers.{}.self_attn.v_proj",
        "qkv": "model.layers.{}.self_attn.qkv_proj",
        "o": "model.layers.{}.self_attn.o_proj",
        "q_norm": "model.layers.{}.self_attn.q_norm.weight",
        "k_norm": "model.layers.{}.self_attn.k_norm.weight",
        "mlp_norm": "model.layers.{}.post_attention_layernorm.weight",
        "gate": "model.layers.{}.mlp.gate_proj",
        "up": "model.layers.{}.mlp.up_proj",
        "gate_up": "model.layers.{}.mlp.gate_up_proj",
        "down": "model.layers.{}.mlp.down_proj",
        "final_norm": "model.norm.weight",
        "lm_head": "lm_head.weight",
    }
)

INTERNLM2_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "embed": "model.tok_embeddings.weight",
        "attn_norm": "model.layers.{}.attention_norm.weight",
        "qkv": "model.layers.{}.attention.wqkv",
        "o": "model.layers.{}.attention.wo",
        "mlp_norm": "model.layers.{}.ffn_norm.weight",
        "gate": "model.layers.{}.feed_forward.w1",
        "up": "model.layers.{}.feed_forward.w3",
        "down": "model.layers.{}.feed_forward.w2",
        "final_norm": "model.norm.weight",
        "lm_head": "output.weight",
    }
)


@dataclass(frozen=True)
class Family:
    """What one `model_type` does differently.

    `qkv_bias` / `o_bias` / `mlp_bias` are either a bool (fixed by the architecture) or the
    name of the config key that switches the bias on (read with default False).
    """

    model_type: str
    description: str
    names: Mapping[str, str] = field(default_factory=lambda: LLAMA_NAMES, hash=False)
    qkv_bias: bool | str = False
    o_bias: bool | str = False
    mlp_bias: bool | str = False
    qk_norm: bool = False
    fused_qkv: bool = False
    fused_gate_up: bool = False
    # InternLM2 interleaves q/k/v per kv group inside wqkv; Phi-3 stacks them [q; k; v].
    qkv_layout: str = "stacked"


FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        "llama": Family(
            "llama",
            "LLaMA 2/3/3.1/3.2, SmolLM2",
            qkv_bias="attention_bias",
            o_bias="attention_bias",
            mlp_bias="mlp_bias",
        ),
        "mistral": Family("mistral", "Mistral"),
        "qwen2": Family("qwen2", "Qwen2, Qwen2.5 (q/k/v biases)", qkv_bias=True),
        "qwen3": Family(
            "qwen3",
            "Qwen3 (q/k RMSNorm, explicit head_dim)",
            qkv_bias="attention_bias",
            o_bias="attention_bias",
            qk_norm=True,
        ),
        "phi3": Family(
            "phi3", "Phi-3 (fused qkv_proj and gate_up_proj)", fused_qkv=True, fused_gate_up=True
        ),
        "internlm2": Family(
            "internlm2",
            "InternLM2 (fused, grouped wqkv; InternVL2's LLM)",
            names=INTERNLM2_NAMES,
            qkv_bias="bias",
            o_bias="bias",
            fused_qkv=True,
            qkv_layout="grouped",
        ),
    }
)
