"""Vision-language `model_type`s as data: which LLM, which vision encoder and projector, and where.

One `Wrapper` record per model_type holds what differs: the nested key of the LLM config (and the
family when it does not say), the checkpoint names of the LLM (a prefix, or a rewrite of the family's
templates), the encoder and projector kinds (inspector.spec.vision_kinds) with their checkpoint
prefixes, where the merge factor lives, the config key of the image token, and the facts record of
its image-token rule (inspector.spec.image_facts; the rule itself: inspector.image.rules.RULES). A new
VLM that reuses existing parts is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from inspector.spec.image_facts import (
    Gemma3PanAndScan, Gemma4Resize, Idefics3Split, InternVLTiles, Llama4Tiles, LlavaAnyres, MllamaTiles, PixtralRows, QwenResize,
    RuleFacts,
)

# Nested LLM configs often carry their own wrapper-specific model_type: the family they are.
TEXT_MODEL_TYPE_ALIASES: Mapping[str, str] = MappingProxyType({
    "qwen2_vl_text": "qwen2", "qwen2_5_vl_text": "qwen2", "qwen3_vl_text": "qwen3",
    "mllama_text_model": "llama",
})

# transformers' Gemma3TextConfig defaults: gemma-3-4b-it's config.json leaves these out.
GEMMA3_TEXT_DEFAULTS: Mapping[str, Any] = MappingProxyType({
    "vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-6, "rope_theta": 1_000_000.0,
    "rope_local_base_freq": 10_000.0, "query_pre_attn_scalar": 256, "sliding_window": 4096,
    "sliding_window_pattern": 6, "attention_bias": False, "tie_word_embeddings": True,
    "bos_token_id": 2, "eos_token_id": 1,
})

# Mllama's cross-attention decoder layers (relative to the LLM's prefix; {i} = layer index).
X = "model.layers.{i}."
CROSS_NAMES: Mapping[str, str] = MappingProxyType({
    "x_attn_gate": X + "cross_attn_attn_gate", "x_mlp_gate": X + "cross_attn_mlp_gate",
    "x_norm": X + "input_layernorm", "x_q": X + "cross_attn.q_proj", "x_k": X + "cross_attn.k_proj",
    "x_v": X + "cross_attn.v_proj", "x_o": X + "cross_attn.o_proj", "x_q_norm": X + "cross_attn.q_norm",
    "x_k_norm": X + "cross_attn.k_norm", "x_mlp_norm": X + "post_attention_layernorm",
    "x_gate": X + "mlp.gate_proj", "x_up": X + "mlp.up_proj", "x_down": X + "mlp.down_proj",
})


@dataclass(frozen=True)
class Merge:
    """Where the n_merge factor is: `scope` "vision" (vision_config) or "top"; `how` "n" (the value is
    n), "ratio" (the value is 1/n), "pool" (the value is tokens per image: n = grid side / sqrt)."""

    scope: str
    key: str
    how: str = "n"
    default: float | None = None


@dataclass(frozen=True)
class Wrapper:
    """A vision-language `model_type` wrapping a decoder LLM, a vision encoder and a projector."""

    model_type: str
    description: str
    text_keys: tuple[str, ...]  # nested key(s) holding the LLM config; () = top level
    text_model_type: str | None  # family of the LLM when the nested config does not say
    prefix: str  # checkpoint prefix of the LLM's tensors
    encoder: str
    projector: str
    image: type[RuleFacts]  # the image-token rule's facts (inspector.spec.image_facts); rules in inspector.image.rules
    vision_prefix: str = ""
    projector_prefix: str = ""
    merge: Merge | None = None
    text_rename: tuple[tuple[str, str], ...] = ()  # (old, new) prefixes of the family's templates
    text_defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    image_token_keys: tuple[str, ...] = ("image_token_id", "image_token_index")
    projector_bias: bool | tuple[str, bool] = True  # fixed, or (top-level key, its default)
    feature_layer_key: str = ""  # top-level key of the encoder layer(s) whose output the projector reads
    embed_extra: int = 0  # Mllama: 8 more embedding rows than the LM head
    cross_layers_key: str = ""  # Mllama: text-config key listing the cross-attention layers
    image_defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)  # published processor values
    encoders: Mapping[str, str] = field(default_factory=dict, hash=False)  # vision_config.model_type -> encoder
    image_attention: str = "causal"  # "bidirectional": an image's tokens attend to each other both ways (Gemma 3)
    marker_keys: tuple[str, str] = ("vision_start_token_id", "vision_end_token_id")  # ids around the image tokens
    prompt_template: str = ""  # "qwen": Qwen's chat template with the embedded tokenizer; "": stand-in text ids
    # transformers 5 ties the LM head to the embeddings when the TOP-level tie_word_embeddings says so
    # (PreTrainedModel.get_expanded_tied_weights_keys reads the wrapper's own config): its config
    # class's default when the file leaves it out; `tie_from_text`: the config class also turns it on
    # when text_config says True (configuration_*.py: qwen2_vl, qwen2_5_vl, llava_onevision).
    # None: not a transformers class (remote code); the LLM config's own flag decides.
    tie_default: bool | None = False
    tie_from_text: bool = False
    # Gemma 4: the towers are optional (a config without vision_config / audio_config has none, and is
    # its LLM under the wrapper's names); `audio` names the audio encoder kind (inspector.spec.audio)
    vision_optional: bool = False
    audio: str = ""
    audio_prefix: str = ""
    audio_projector_prefix: str = ""

    def encoder_for(self, vision_model_type: str | None) -> str:
        """The encoder kind: the one the vision config's own model_type names, else the wrapper's."""
        return self.encoders.get(vision_model_type or "", self.encoder)


_LLAVA = dict(prefix="language_model.", vision_prefix="vision_tower.vision_model",
              projector_prefix="multi_modal_projector")
_CLIP_OR_SIGLIP = MappingProxyType({"clip_vision_model": "clip", "siglip_vision_model": "siglip"})

WRAPPERS: Mapping[str, Wrapper] = MappingProxyType({w.model_type: w for w in (
    Wrapper("qwen2_vl", "Qwen2-VL (ViT with 2D RoPE + patch merger, Qwen2 LLM)", ("text_config",), "qwen2", "",
            "qwen2_vl", "merger", QwenResize, "visual", "visual",
            Merge("vision", "spatial_merge_size", default=2), prompt_template="qwen", tie_from_text=True),
    Wrapper("qwen2_5_vl", "Qwen2.5-VL (window-attention ViT with RMSNorm and gated MLP, patch merger, Qwen2 LLM)",
            ("text_config",), "qwen2", "", "qwen2_5_vl", "merger_rms", QwenResize, "visual", "visual",
            Merge("vision", "spatial_merge_size", default=2), prompt_template="qwen", tie_from_text=True),
    Wrapper("qwen3_vl", "Qwen3-VL (ViT with learned + 2D RoPE positions, DeepStack mergers, Qwen3 LLM)",
            ("text_config",), "qwen3", "", "qwen3_vl", "merger_deepstack", QwenResize, "model.visual",
            "model.visual", Merge("vision", "spatial_merge_size", default=2),
            text_rename=(("model.", "model.language_model."),), prompt_template="qwen"),
    # Qwen3.5 / Qwen3.6: Qwen3-VL's vision tower without DeepStack before a hybrid Gated DeltaNet LLM
    # (transformers models/qwen3_5, models/qwen3_5_moe).
    Wrapper("qwen3_5", "Qwen3.5 (Qwen3-VL's ViT and merger, hybrid Gated DeltaNet LLM)",
            ("text_config",), "qwen3_5_text", "", "qwen3_5", "merger_deepstack", QwenResize, "model.visual",
            "model.visual", Merge("vision", "spatial_merge_size", default=2),
            text_rename=(("model.", "model.language_model."),), prompt_template="qwen"),
    Wrapper("qwen3_5_moe", "Qwen3.5 MoE (Qwen3-VL's ViT and merger, hybrid Gated DeltaNet MoE LLM)",
            ("text_config",), "qwen3_5_moe_text", "", "qwen3_5", "merger_deepstack", QwenResize, "model.visual",
            "model.visual", Merge("vision", "spatial_merge_size", default=2),
            text_rename=(("model.", "model.language_model."),), prompt_template="qwen"),
    Wrapper("internvl_chat", "InternVL2 (InternViT + MLP projector, InternLM2/Qwen2/LLaMA LLM)", ("llm_config",),
            None, "language_model.", "internvit", "pixel_shuffle", InternVLTiles, "vision_model", "",
            Merge("top", "downsample_ratio", "ratio", 0.5), tie_default=None),
    Wrapper("internvl", "InternVL3/3.5 in transformers' layout (InternViT, pixel-shuffle MLP projector, Qwen2/3 LLM)",
            ("text_config",), "qwen2", "", "internvl_vision", "pixel_shuffle_hf", InternVLTiles,
            "model.vision_tower", "model.multi_modal_projector", Merge("top", "downsample_ratio", "ratio", 0.5),
            text_rename=(("model.", "model.language_model."),), feature_layer_key="vision_feature_layer",
            image_defaults={"dynamic_image_size": True, "use_thumbnail": True}, tie_default=True),
    Wrapper("gemma3", "Gemma 3 (SigLIP, average pooling to 256 tokens, Gemma 3 LLM)", ("text_config",),
            "gemma3_text", encoder="siglip", projector="avg_pool", image=Gemma3PanAndScan,
            merge=Merge("top", "mm_tokens_per_image", "pool", 256), text_defaults=GEMMA3_TEXT_DEFAULTS,
            image_attention="bidirectional", marker_keys=("boi_token_index", "eoi_token_index"), tie_default=True,
            **_LLAVA),
    Wrapper("llava_onevision", "LLaVA-OneVision (SigLIP, anyres tiles, 2-layer MLP, image_newline, Qwen2 LLM)",
            ("text_config",), "qwen2", encoder="siglip", projector="mlp", image=LlavaAnyres,
            projector_bias=("multimodal_projector_bias", True), feature_layer_key="vision_feature_layer",
            encoders=_CLIP_OR_SIGLIP, tie_from_text=True, **_LLAVA),
    Wrapper("llava_next", "LLaVA-NeXT (CLIP/SigLIP, anyres tiles, 2-layer MLP, image_newline)", ("text_config",),
            "llama", encoder="clip", projector="mlp", image=LlavaAnyres,
            projector_bias=("multimodal_projector_bias", True), feature_layer_key="vision_feature_layer",
            encoders=_CLIP_OR_SIGLIP, **_LLAVA),
    Wrapper("idefics3", "Idefics3 / SmolVLM (SigLIP, pixel-shuffle connector, image splitting, Llama LLM)",
            ("text_config",), "llama", "", "idefics3", "shuffle_linear", Idefics3Split, "model.vision_model",
            "model.connector", Merge("top", "scale_factor", default=2),
            text_rename=(("model.", "model.text_model."),)),
    Wrapper("smolvlm", "SmolVLM 2 (SigLIP, pixel-shuffle connector, image splitting, Llama LLM)", ("text_config",),
            "llama", "", "idefics3", "shuffle_linear", Idefics3Split, "model.vision_model", "model.connector",
            Merge("top", "scale_factor", default=2), text_rename=(("model.", "model.text_model."),)),
    Wrapper("mllama", "Llama 3.2 Vision (tiled ViT with gated global layers, cross-attention layers in the LLM)",
            ("text_config",), "llama", "language_model.", "mllama", "linear", MllamaTiles, "vision_model",
            "multi_modal_projector", embed_extra=8, cross_layers_key="cross_attention_layers"),
    Wrapper("mistral3", "Mistral 3 (Pixtral ViT with 2D RoPE, patch merger, Mistral LLM)", ("text_config",),
            "mistral", "language_model.", "pixtral", "patch_merger", PixtralRows, "vision_tower",
            "multi_modal_projector", Merge("top", "spatial_merge_size", default=2),
            projector_bias=("multimodal_projector_bias", False), feature_layer_key="vision_feature_layer",
            tie_default=True),
    Wrapper("llama4", "Llama 4 (ViT with 2D RoPE, pixel-shuffle adapter, MoE Llama 4 LLM)", ("text_config",),
            "llama4_text", "language_model.", "llama4", "llama4_adapter", Llama4Tiles, "vision_model", "",
            Merge("vision", "pixel_shuffle_ratio", "ratio", 0.5), marker_keys=("boi_token_index", "eoi_token_index")),
    # Gemma 4 (transformers 5.25 models/gemma4, Gemma4ForConditionalGeneration): Gemma 4's own ViT with a
    # 2-D position table, pooled kernel x kernel and projected by embed_vision; an optional USM conformer
    # audio tower projected by embed_audio; the LLM under model.language_model. (Gemma4Config class defaults:
    # tie_word_embeddings true, pooling_kernel_size 3.) No native forward of the towers (EncoderKind tower
    # "none"): text traces run natively, image traces are refused in one line.
    Wrapper("gemma4", "Gemma 4 (its own ViT with a 2-D position table, pooled soft tokens; USM conformer audio; "
            "Gemma 4 LLM)", ("text_config",), "gemma4_text", "", "gemma4_vision", "gemma4_embed", Gemma4Resize,
            "model.vision_tower", "model.embed_vision", Merge("vision", "pooling_kernel_size", default=3),
            text_rename=(("model.", "model.language_model."),), marker_keys=("boi_token_id", "eoi_token_id"),
            tie_default=True, vision_optional=True,
            audio="gemma4_audio", audio_prefix="model.audio_tower", audio_projector_prefix="model.embed_audio"),
)})
