"""Vision towers and projectors of vision-language models, as data.

A VLM's image side is an encoder kind (`ENCODERS`: a ViT's parts and where its config keeps each
field) followed by a projector kind (`PROJECTORS`: the layers that turn encoder features into LLM
token embeddings). Each record holds only what differs: which parts exist (class token, learned or
rotary positions, norms before and after the blocks, fused or separate q/k/v, plain or gated MLP,
layer scale, gated global layers), the config keys of each field with transformers' class defaults
for a sparse config.json, and the checkpoint name of every tensor role relative to the prefix the
wrapper (inspector.spec.wrappers) puts it under. Nothing else in the package branches on a kind's
name: it reads the EncoderSpec and ProjectorSpec fields these records resolve to (inspector.spec.vision).

A part switched by the config is written as a key name ("use_mean_pooling"), negated with "!";
the key's default sits in `defaults`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping


def _m(**kw: Any) -> Mapping[str, Any]:
    return MappingProxyType(kw)


# --------------------------------------------------------------------------- encoders


@dataclass(frozen=True)
class EncoderKind:
    """One kind of vision encoder: its parts, config keys, class defaults and tensor names."""

    kind: str
    description: str
    names: Mapping[str, str] = field(hash=False)  # role -> template, "{}" = block index
    keys: Mapping[str, tuple[str, ...]] = field(hash=False)  # field -> vision_config keys, first found wins
    defaults: Mapping[str, Any] = field(hash=False)  # field or key -> transformers' class default
    patch_embed: str = "conv"  # "conv" (Conv2d/Conv3d) | "linear" (unfolded patches, Llama 4)
    conv_bias: bool | str = True
    class_token: str = ""  # "" | "param" (1, 1, d) | "vector" (d,)
    positions: str = ""  # "" | "param" (1, n, d) | "table" (n, d) | "embedding" (n, d) .weight | "gated_tiles"
    learned_pos: bool | str = True  # switch for `positions`
    rope: str = ""  # "" | "qwen2_vl" | "pixtral" | "llama4": 2D RoPE in attention, nothing stored
    pre_norm: bool = False
    post_norm: bool | str = False
    edge_norm: str = ""  # the norm type before/after the blocks: "" = the blocks' own
    attention: str = "fused"  # "fused" qkv | "separate" q, k, v
    o_bias: bool = True
    mlp: str = "plain"  # "plain" fc1/act/fc2 | "gated" gate/up/down
    mlp_bias: bool = True
    layer_scale: bool = False
    mask_token: bool | str = False  # InternVL native: an unused (1, 1, d) mask token
    head: bool | str = False  # SigLIP's attention-pooling head (unused by the VLMs)
    window_attention: bool = False  # Qwen2.5-VL: attention within windows except in full blocks
    tower: str = "tiles"  # the reference forward: "packed" patches (Qwen) | "tiles" | "image" (Pixtral) | "mllama"
    class_at_end: bool = False  # Llama 4 appends its class token after the patches
    # Gemma 4's ViT (transformers models/gemma4): q/k norms over d_h, not the width; q/k/v widths from
    # heads x d_h and kv heads x d_h; four norms per block (a post-norm after each branch); every block
    # linear a ClippableLinear ("linear" sub-module, and when the switch is on four scalar clip buffers);
    # two buffers that standardize the pooled output (std_bias, std_scale)
    qk_norm_width: str = "hidden"  # "hidden" (InternViT) | "head"
    head_widths: bool = False
    sandwich: bool = False
    clip: bool | str = False
    standardize: bool | str = False


_QWEN_KEYS = _m(hidden_size=("hidden_size",), depth=("depth",), num_heads=("num_heads",),
                intermediate_size=("intermediate_size",), mlp_ratio=("mlp_ratio",), patch_size=("patch_size",),
                temporal_patch_size=("temporal_patch_size",), merge_size=("spatial_merge_size",),
                in_channels=("in_chans", "in_channels"), out_hidden_size=("out_hidden_size",),
                hidden_act=("hidden_act",), window_size=("window_size",),
                fullatt_blocks=("fullatt_block_indexes",), deepstack=("deepstack_visual_indexes",),
                num_positions=("num_position_embeddings",))
_QWEN_BLOCKS = _m(patch_embed="patch_embed.proj", pos_embed="pos_embed", norm1="blocks.{}.norm1",
                  qkv="blocks.{}.attn.qkv", proj="blocks.{}.attn.proj", norm2="blocks.{}.norm2",
                  fc1="blocks.{}.mlp.fc1", fc2="blocks.{}.mlp.fc2", gate="blocks.{}.mlp.gate_proj",
                  up="blocks.{}.mlp.up_proj", down="blocks.{}.mlp.down_proj")
# Keys of SigLIP / CLIP / Idefics3 / Pixtral / Llama 4 / InternVL vision configs.
_VIT_KEYS = _m(hidden_size=("hidden_size",), depth=("num_hidden_layers",),
               num_heads=("num_attention_heads", "attention_heads"), intermediate_size=("intermediate_size",),
               patch_size=("patch_size",), image_size=("image_size",), in_channels=("num_channels",),
               hidden_act=("hidden_act",), norm_eps=("layer_norm_eps", "norm_eps"), head_dim=("head_dim",),
               norm_type=("norm_type",), qkv_bias=("attention_bias", "qkv_bias"),
               qk_norm=("use_qk_norm", "qk_normalization"), global_depth=("num_global_layers",),
               max_num_tiles=("max_num_tiles",), feature_layers=("intermediate_layers_indices",),
               aspect_ratios=("supported_aspect_ratios",))
_SIGLIP_NAMES = _m(
    patch_embed="embeddings.patch_embedding", pos_embed="embeddings.position_embedding",
    norm1="encoder.layers.{}.layer_norm1", q="encoder.layers.{}.self_attn.q_proj",
    k="encoder.layers.{}.self_attn.k_proj", v="encoder.layers.{}.self_attn.v_proj",
    proj="encoder.layers.{}.self_attn.out_proj", norm2="encoder.layers.{}.layer_norm2",
    fc1="encoder.layers.{}.mlp.fc1", fc2="encoder.layers.{}.mlp.fc2", post_norm="post_layernorm",
    head_probe="head.probe", head_in="head.attention.in_proj", head_out="head.attention.out_proj",
    head_norm="head.layernorm", head_fc1="head.mlp.fc1", head_fc2="head.mlp.fc2",
)
_SIGLIP_DEFAULTS = _m(hidden_size=768, intermediate_size=3072, depth=12, num_heads=12, in_channels=3,
                      image_size=224, patch_size=16, hidden_act="gelu_pytorch_tanh", norm_eps=1e-6,
                      norm_type="layer_norm", qkv_bias=True, qk_norm=False, vision_use_head=True)
_MLLAMA_LAYER = _m(norm1="{}.input_layernorm", q="{}.self_attn.q_proj", k="{}.self_attn.k_proj",
                   v="{}.self_attn.v_proj", proj="{}.self_attn.o_proj", norm2="{}.post_attention_layernorm",
                   fc1="{}.mlp.fc1", fc2="{}.mlp.fc2", gate_attn="{}.gate_attn", gate_ffn="{}.gate_ffn")


def _under(prefix: str, names: Mapping[str, str], role_prefix: str = "") -> dict[str, str]:
    return {role_prefix + role: prefix + t for role, t in names.items()}


ENCODERS: Mapping[str, EncoderKind] = MappingProxyType({e.kind: e for e in (
    EncoderKind(
        "qwen2_vl", "Qwen2-VL ViT: 3D-conv patch embed (no bias), 2D RoPE, LayerNorm blocks, QuickGELU MLP",
        # Qwen2-VL's vision_config names the ViT width embed_dim and the LLM's width hidden_size
        _QWEN_BLOCKS, _QWEN_KEYS | {"hidden_size": ("embed_dim",), "out_hidden_size": ("hidden_size",)},
        _m(hidden_act="quick_gelu", in_channels=3, temporal_patch_size=2, merge_size=2, norm_type="layer_norm",
           qkv_bias=True, qk_norm=False, norm_eps=1e-6,
           image_mean=(0.48145466, 0.4578275, 0.40821073), image_std=(0.26862954, 0.26130258, 0.27577711)),
        conv_bias=False, learned_pos=False, rope="qwen2_vl", tower="packed",
    ),
    EncoderKind(
        "qwen2_5_vl", "Qwen2.5-VL ViT: 3D-conv patch embed (no bias), 2D RoPE, window attention except in "
        "the full-attention blocks, RMSNorm blocks, gated SiLU MLP with biases",
        _QWEN_BLOCKS, _QWEN_KEYS,
        _m(hidden_act="silu", in_channels=3, temporal_patch_size=2, merge_size=2, norm_type="rms_norm",
           qkv_bias=True, qk_norm=False, norm_eps=1e-6, depth=32, hidden_size=3584, intermediate_size=3420,
           num_heads=16, patch_size=14, window_size=112, fullatt_blocks=(7, 15, 23, 31),
           image_mean=(0.48145466, 0.4578275, 0.40821073), image_std=(0.26862954, 0.26130258, 0.27577711)),
        conv_bias=False, learned_pos=False, rope="qwen2_vl", mlp="gated", window_attention=True, tower="packed",
    ),
    EncoderKind(
        "qwen3_vl", "Qwen3-VL ViT: 3D-conv patch embed with bias, learned position embedding (interpolated) plus "
        "2D RoPE, LayerNorm blocks, GELU (tanh) MLP; DeepStack taps at several blocks",
        _QWEN_BLOCKS | {"fc1": "blocks.{}.mlp.linear_fc1", "fc2": "blocks.{}.mlp.linear_fc2"}, _QWEN_KEYS,
        _m(hidden_act="gelu_pytorch_tanh", in_channels=3, temporal_patch_size=2, merge_size=2,
           norm_type="layer_norm", qkv_bias=True, qk_norm=False, norm_eps=1e-6, depth=27, hidden_size=1152,
           intermediate_size=4304, num_heads=16, patch_size=16, num_positions=2304, deepstack=(8, 16, 24),
           out_hidden_size=3584, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5)),
        positions="embedding", rope="qwen2_vl", tower="packed",
    ),
    # Qwen3.5's tower (transformers models/qwen3_5 Qwen3_5VisionModel): Qwen3-VL's without DeepStack mergers;
    # the config class still carries deepstack_visual_indexes, which the model does not read.
    EncoderKind(
        "qwen3_5", "Qwen3.5 ViT: Qwen3-VL's (3D-conv patch embed with bias, learned + 2D RoPE positions, "
        "LayerNorm blocks, GELU (tanh) MLP), no DeepStack taps",
        _QWEN_BLOCKS | {"fc1": "blocks.{}.mlp.linear_fc1", "fc2": "blocks.{}.mlp.linear_fc2"},
        _m(**{k: v for k, v in _QWEN_KEYS.items() if k != "deepstack"}),
        _m(hidden_act="gelu_pytorch_tanh", in_channels=3, temporal_patch_size=2, merge_size=2,
           norm_type="layer_norm", qkv_bias=True, qk_norm=False, norm_eps=1e-6, depth=27, hidden_size=1152,
           intermediate_size=4304, num_heads=16, patch_size=16, num_positions=2304, deepstack=(),
           out_hidden_size=3584, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5)),
        positions="embedding", rope="qwen2_vl", tower="packed",
    ),
    EncoderKind(
        "internvit", "InternViT: conv patch embed with bias, class token, learned position embedding, "
        "layer scale (ls1/ls2)",
        _under("", _m(class_embed="embeddings.class_embedding", pos_embed="embeddings.position_embedding",
                      patch_embed="embeddings.patch_embedding", norm1="encoder.layers.{}.norm1",
                      qkv="encoder.layers.{}.attn.qkv", q_norm="encoder.layers.{}.attn.q_norm",
                      k_norm="encoder.layers.{}.attn.k_norm", proj="encoder.layers.{}.attn.proj",
                      ls1="encoder.layers.{}.ls1", norm2="encoder.layers.{}.norm2",
                      fc1="encoder.layers.{}.mlp.fc1", fc2="encoder.layers.{}.mlp.fc2", ls2="encoder.layers.{}.ls2")),
        _VIT_KEYS,
        _m(hidden_act="gelu", in_channels=3, norm_type="layer_norm", qkv_bias=True, qk_norm=False, norm_eps=1e-6,
           image_mean=(0.485, 0.456, 0.406), image_std=(0.229, 0.224, 0.225)),
        class_token="param", positions="param", layer_scale=True,
    ),
    EncoderKind(
        "internvl_vision", "InternViT in transformers' layout: conv patch embed with bias, class token, learned "
        "position embedding, separate q/k/v, layer scale (lambda_1/lambda_2)",
        _m(class_embed="embeddings.cls_token", mask_token="embeddings.mask_token",
           patch_embed="embeddings.patch_embeddings.projection", pos_embed="embeddings.position_embeddings",
           norm1="encoder.layer.{}.layernorm_before", q="encoder.layer.{}.attention.q_proj",
           k="encoder.layer.{}.attention.k_proj", v="encoder.layer.{}.attention.v_proj",
           q_norm="encoder.layer.{}.attention.q_norm", k_norm="encoder.layer.{}.attention.k_norm",
           proj="encoder.layer.{}.attention.projection_layer", ls1="encoder.layer.{}.lambda_1",
           norm2="encoder.layer.{}.layernorm_after", fc1="encoder.layer.{}.mlp.fc1", fc2="encoder.layer.{}.mlp.fc2",
           ls2="encoder.layer.{}.lambda_2", post_norm="layernorm"),
        _VIT_KEYS,
        _m(hidden_size=1024, depth=24, num_heads=16, intermediate_size=4096, hidden_act="gelu", in_channels=3,
           norm_type="layer_norm", qkv_bias=False, qk_norm=False, norm_eps=1e-6, image_size=448, patch_size=14,
           use_mean_pooling=True, use_mask_token=False, use_absolute_position_embeddings=True,
           image_mean=(0.485, 0.456, 0.406), image_std=(0.229, 0.224, 0.225)),
        class_token="param", positions="param", learned_pos="use_absolute_position_embeddings",
        layer_scale=True, post_norm="!use_mean_pooling", edge_norm="layer_norm", attention="separate", mask_token="use_mask_token",
    ),
    EncoderKind(
        "siglip", "SigLIP ViT: conv patch embed with bias, learned position embedding, LayerNorm blocks with "
        "separate q/k/v, GELU (tanh) MLP, final LayerNorm",
        _SIGLIP_NAMES, _VIT_KEYS, _SIGLIP_DEFAULTS | {"image_mean": (0.5, 0.5, 0.5), "image_std": (0.5, 0.5, 0.5)},
        positions="embedding", post_norm=True, attention="separate", head="vision_use_head",
    ),
    EncoderKind(
        "clip", "CLIP ViT: conv patch embed (no bias), class token, learned position embedding, LayerNorm before "
        "the blocks, separate q/k/v, QuickGELU MLP, final LayerNorm",
        _SIGLIP_NAMES | {"class_embed": "embeddings.class_embedding", "pre_norm": "pre_layrnorm"}, _VIT_KEYS,
        _SIGLIP_DEFAULTS | {"patch_size": 32, "hidden_act": "quick_gelu", "norm_eps": 1e-5, "vision_use_head": False,
                            "image_mean": (0.48145466, 0.4578275, 0.40821073),
                            "image_std": (0.26862954, 0.26130258, 0.27577711)},
        conv_bias=False, class_token="vector", positions="embedding", pre_norm=True, post_norm=True,
        attention="separate",
    ),
    EncoderKind(
        "idefics3", "SigLIP ViT as Idefics3/SmolVLM configure it: conv patch embed with bias, learned position "
        "embedding, separate q/k/v, final LayerNorm",
        _SIGLIP_NAMES, _VIT_KEYS,
        _SIGLIP_DEFAULTS | {"hidden_size": 1152, "intermediate_size": 3072, "num_heads": 16, "patch_size": 32,
                            "image_mean": (0.5, 0.5, 0.5), "image_std": (0.5, 0.5, 0.5)},
        positions="embedding", post_norm=True, attention="separate",
    ),
    EncoderKind(
        "pixtral", "Pixtral ViT: conv patch embed (no bias), RMSNorm before the blocks, 2D RoPE, RMSNorm blocks "
        "without biases, gated SiLU MLP",
        _m(patch_embed="patch_conv", pre_norm="ln_pre", norm1="transformer.layers.{}.attention_norm",
           q="transformer.layers.{}.attention.q_proj", k="transformer.layers.{}.attention.k_proj",
           v="transformer.layers.{}.attention.v_proj", proj="transformer.layers.{}.attention.o_proj",
           norm2="transformer.layers.{}.ffn_norm", gate="transformer.layers.{}.feed_forward.gate_proj",
           up="transformer.layers.{}.feed_forward.up_proj", down="transformer.layers.{}.feed_forward.down_proj"),
        _VIT_KEYS,
        _m(hidden_size=1024, intermediate_size=4096, depth=24, num_heads=16, in_channels=3, image_size=1024,
           patch_size=16, hidden_act="gelu", norm_eps=1e-5, norm_type="rms_norm", qkv_bias=False, qk_norm=False,
           image_mean=(0.48145466, 0.4578275, 0.40821073), image_std=(0.26862954, 0.26130258, 0.27577711)),
        conv_bias=False, learned_pos=False, rope="pixtral", pre_norm=True, attention="separate", o_bias=False,
        mlp="gated", mlp_bias=False, tower="image",
    ),
    EncoderKind(
        "mllama", "Mllama ViT: conv patch embed (no bias), class token, gated position and tile embeddings, "
        "LayerNorm before and after, local blocks, then gated global blocks; intermediate layers concatenated",
        _m(patch_embed="patch_embedding", class_embed="class_embedding",
           pos_embed="gated_positional_embedding.embedding", pos_gate="gated_positional_embedding.gate",
           tile_pos="gated_positional_embedding.tile_embedding",
           pre_tile="pre_tile_positional_embedding.embedding", pre_tile_gate="pre_tile_positional_embedding.gate",
           post_tile="post_tile_positional_embedding.embedding",
           post_tile_gate="post_tile_positional_embedding.gate", pre_norm="layernorm_pre", post_norm="layernorm_post",
           **_under("transformer.layers.", _MLLAMA_LAYER), **_under("global_transformer.layers.", _MLLAMA_LAYER, "g_")),
        _VIT_KEYS,
        _m(hidden_size=1280, depth=32, global_depth=8, num_heads=16, in_channels=3, intermediate_size=5120,
           image_size=448, patch_size=14, norm_eps=1e-5, max_num_tiles=4, hidden_act="gelu",
           feature_layers=(3, 7, 15, 23, 30), norm_type="layer_norm", qkv_bias=False, qk_norm=False,
           aspect_ratios=((1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (3, 1), (4, 1)),
           image_mean=(0.48145466, 0.4578275, 0.40821073), image_std=(0.26862954, 0.26130258, 0.27577711)),
        conv_bias=False, class_token="vector", positions="gated_tiles", pre_norm=True, post_norm=True,
        attention="separate", o_bias=False, tower="mllama",
    ),
    EncoderKind(
        "llama4", "Llama 4 ViT: unfolded patches through a linear (no bias), class token, learned position "
        "embedding plus 2D RoPE, LayerNorm before and after, LayerNorm blocks with biases, GELU MLP",
        _m(patch_embed="patch_embedding.linear", class_embed="class_embedding", pos_embed="positional_embedding_vlm",
           pre_norm="layernorm_pre", post_norm="layernorm_post",
           **_under("model.layers.", {k: v for k, v in _MLLAMA_LAYER.items() if not k.startswith("gate_")})),
        _VIT_KEYS,
        _m(hidden_size=768, depth=34, num_heads=16, in_channels=3, intermediate_size=5632, image_size=448,
           patch_size=14, norm_eps=1e-5, hidden_act="gelu", norm_type="layer_norm", qkv_bias=True, qk_norm=False,
           image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5)),
        patch_embed="linear", conv_bias=False, class_token="vector", positions="table", rope="llama4",
        pre_norm=True, post_norm=True, attention="separate", class_at_end=True,
    ),
    # Gemma 4's ViT: transformers 5.25 models/gemma4 (Gemma4VisionConfig class defaults; the blocks of
    # Gemma4VisionEncoderLayer, Gemma4VisionPatchEmbedder's input_proj and (2, positions, d) table)
    EncoderKind(
        "gemma4_vision", "Gemma 4 ViT: unfolded patches through a linear (no bias), learned 2-D position table "
        "(x and y rows summed) plus 2-D RoPE, RMSNorm sandwich blocks without biases, q/k RMSNorm over d_h, "
        "gated GELU (tanh) MLP, clippable linears",
        _m(patch_embed="patch_embedder.input_proj", pos_embed="patch_embedder.position_embedding_table",
           norm1="encoder.layers.{}.input_layernorm", post_attn_norm="encoder.layers.{}.post_attention_layernorm",
           q="encoder.layers.{}.self_attn.q_proj.linear", k="encoder.layers.{}.self_attn.k_proj.linear",
           v="encoder.layers.{}.self_attn.v_proj.linear", proj="encoder.layers.{}.self_attn.o_proj.linear",
           q_norm="encoder.layers.{}.self_attn.q_norm", k_norm="encoder.layers.{}.self_attn.k_norm",
           norm2="encoder.layers.{}.pre_feedforward_layernorm",
           post_mlp_norm="encoder.layers.{}.post_feedforward_layernorm",
           gate="encoder.layers.{}.mlp.gate_proj.linear", up="encoder.layers.{}.mlp.up_proj.linear",
           down="encoder.layers.{}.mlp.down_proj.linear", std_bias="std_bias", std_scale="std_scale"),
        _VIT_KEYS | {"hidden_act": ("hidden_activation",), "norm_eps": ("rms_norm_eps",),
                     "num_positions": ("position_embedding_size",), "kv_heads": ("num_key_value_heads",)},
        _m(hidden_size=768, intermediate_size=3072, depth=16, num_heads=12, head_dim=64, in_channels=3,
           patch_size=16, hidden_act="gelu_pytorch_tanh", norm_eps=1e-6, norm_type="rms_norm", qkv_bias=False,
           qk_norm=True, num_positions=10240, use_clipped_linears=False, standardize=False,
           image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5)),  # the model's 2 (x - 0.5)
        patch_embed="linear", conv_bias=False, positions="axes", rope="gemma4", attention="separate", o_bias=False,
        mlp="gated", mlp_bias=False, tower="none", qk_norm_width="head", head_widths=True, sandwich=True,
        clip="use_clipped_linears", standardize="standardize",
    ),
)})


# --------------------------------------------------------------------------- projectors

MERGE_LN, MERGE_MLP = "Layer norm (merger)", "Merger MLP"
DEEPSTACK, NEWLINE, PATCH_MERGER, ADAPTER = "DeepStack mergers", "Image newline", "Patch merger", "Pixel-shuffle MLP"


@dataclass(frozen=True)
class ProjLayer:
    """One stored layer of a projector. `out`/`inp` are dimension symbols (see ProjectorSpec.dims):
    d (d_img), m2d (n_merge^2 d_img), out (LLM d), inter (encoder MLP width), feat (concatenated
    encoder features), p_in / p_out (Llama 4's adapter widths), v_out (its output width).
    `op`: norm | linear | matrix (a bare (inp, out) weight) | vector (a bare (out,) parameter).
    `bias`: None = the model's projector bias switch. `per`: "deepstack" repeats it per tap."""

    role: str
    op: str
    out: str
    inp: str = ""
    bias: bool | None = True
    row: str = MERGE_MLP
    per: str = ""


@dataclass(frozen=True)
class ProjectorKind:
    kind: str
    description: str  # a template over the dims, for Table 2.1
    names: Mapping[str, str] = field(hash=False)  # relative to the wrapper's projector prefix; "/x" = model root
    layers: tuple[ProjLayer, ...]
    norm: str = "layer_norm"  # layer_norm | rms_norm | rms_offset (Gemma's (1 + w))
    act: str = "gelu"
    norm_eps: float | str = 1e-6  # or "vision" / "text": the encoder's or the LLM's norm eps


_MERGER_NAMES = _m(proj_norm="merger.ln_q", proj_fc1="merger.mlp.0", proj_fc2="merger.mlp.2")
_MERGER = (ProjLayer("proj_norm", "norm", "d", row=MERGE_LN), ProjLayer("proj_fc1", "linear", "m2d", "m2d"),
           ProjLayer("proj_fc2", "linear", "out", "m2d"))

PROJECTORS: Mapping[str, ProjectorKind] = MappingProxyType({p.kind: p for p in (
    ProjectorKind("merger", "LayerNorm({d}) -> concat {m}x{m} -> Linear {m2d}->{m2d} -> GELU -> Linear {m2d}->{out}",
                  _MERGER_NAMES, _MERGER),
    ProjectorKind("merger_rms", "RMSNorm({d}) -> concat {m}x{m} -> Linear {m2d}->{m2d} -> GELU -> Linear {m2d}->{out}",
                  _MERGER_NAMES, _MERGER, norm="rms_norm"),
    ProjectorKind(
        "merger_deepstack", "LayerNorm({d}) -> concat {m}x{m} -> Linear {m2d}->{m2d} -> GELU -> Linear {m2d}->{out}; "
        "DeepStack: {taps} more mergers (concat, LayerNorm({m2d}), same MLP) on blocks {deepstack}",
        _m(proj_norm="merger.norm", proj_fc1="merger.linear_fc1", proj_fc2="merger.linear_fc2",
           deep_norm="deepstack_merger_list.{}.norm", deep_fc1="deepstack_merger_list.{}.linear_fc1",
           deep_fc2="deepstack_merger_list.{}.linear_fc2"),
        _MERGER + (ProjLayer("deep_norm", "norm", "m2d", row=DEEPSTACK, per="deepstack"),
                   ProjLayer("deep_fc1", "linear", "m2d", "m2d", row=DEEPSTACK, per="deepstack"),
                   ProjLayer("deep_fc2", "linear", "out", "m2d", row=DEEPSTACK, per="deepstack"))),
    ProjectorKind(
        "pixel_shuffle", "pixel shuffle {ratio} (concat {m}x{m}) -> LayerNorm({m2d}) -> Linear {m2d}->{out} -> GELU "
        "-> Linear {out}->{out}",
        _m(proj_norm="mlp1.0", proj_fc1="mlp1.1", proj_fc2="mlp1.3"),
        (ProjLayer("proj_norm", "norm", "m2d", row=MERGE_LN), ProjLayer("proj_fc1", "linear", "out", "m2d"),
         ProjLayer("proj_fc2", "linear", "out", "out")), norm_eps=1e-5),
    ProjectorKind(
        "pixel_shuffle_hf", "pixel shuffle {ratio} (concat {m}x{m}) -> LayerNorm({m2d}) -> Linear {m2d}->{out} -> "
        "GELU -> Linear {out}->{out}",
        _m(proj_norm="layer_norm", proj_fc1="linear_1", proj_fc2="linear_2"),
        (ProjLayer("proj_norm", "norm", "m2d", row=MERGE_LN), ProjLayer("proj_fc1", "linear", "out", "m2d"),
         ProjLayer("proj_fc2", "linear", "out", "out")), norm_eps=1e-5),
    ProjectorKind(
        "avg_pool", "average pool {m}x{m} -> RMSNorm({d}, 1 + w) -> x W ({d} x {out}, no bias)",
        _m(proj_norm="mm_soft_emb_norm", proj_weight="mm_input_projection_weight"),
        (ProjLayer("proj_norm", "norm", "d", row=MERGE_LN), ProjLayer("proj_weight", "matrix", "out", "d")),
        norm="rms_offset", norm_eps="vision"),
    ProjectorKind(
        "mlp", "Linear {d}->{out} -> GELU -> Linear {out}->{out}; image_newline ({out},) after each row of patches",
        _m(proj_fc1="linear_1", proj_fc2="linear_2", newline="/image_newline"),
        (ProjLayer("proj_fc1", "linear", "out", "d", None), ProjLayer("proj_fc2", "linear", "out", "out", None),
         ProjLayer("newline", "vector", "out", row=NEWLINE))),
    ProjectorKind(
        "shuffle_linear", "pixel shuffle (concat {m}x{m}) -> Linear {m2d}->{out} (no bias)",
        _m(proj_fc1="modality_projection.proj"), (ProjLayer("proj_fc1", "linear", "out", "m2d", False),)),
    ProjectorKind(
        "linear", "concat the last layer and {taps} intermediate layers ({feat}) -> Linear {feat}->{out}",
        _m(proj_fc1=""), (ProjLayer("proj_fc1", "linear", "out", "feat"),)),
    ProjectorKind(
        "patch_merger", "RMSNorm({d}) -> concat {m}x{m} -> Linear {m2d}->{d} (no bias) -> Linear {d}->{out} -> GELU "
        "-> Linear {out}->{out}",
        _m(proj_norm="norm", proj_merge="patch_merger.merging_layer", proj_fc1="linear_1", proj_fc2="linear_2"),
        (ProjLayer("proj_norm", "norm", "d", row=MERGE_LN), ProjLayer("proj_merge", "linear", "d", "m2d", False,
                                                                         row=PATCH_MERGER),
         ProjLayer("proj_fc1", "linear", "out", "d", None), ProjLayer("proj_fc2", "linear", "out", "out", None)),
        norm="rms_norm", norm_eps="text"),
    ProjectorKind(
        "llama4_adapter", "pixel shuffle {ratio} (concat {m}x{m}) -> Linear {inter}->{p_in} -> GELU -> "
        "Linear {p_out}->{p_out} -> GELU -> Linear {v_out}->{out} (no biases)",
        _m(adapt_fc1="vision_model.vision_adapter.mlp.fc1", adapt_fc2="vision_model.vision_adapter.mlp.fc2",
           proj_fc1="multi_modal_projector.linear_1"),
        (ProjLayer("adapt_fc1", "linear", "p_in", "inter", False, row=ADAPTER),
         ProjLayer("adapt_fc2", "linear", "p_out", "p_out", False, row=ADAPTER),
         ProjLayer("proj_fc1", "linear", "out", "v_out", False))),
    # Gemma 4 (transformers models/gemma4 Gemma4MultimodalEmbedder): a weightless RMSNorm, then one linear
    ProjectorKind(
        "gemma4_embed", "average pool {m}x{m} (x sqrt({d})) -> RMSNorm({d}, no weight) -> Linear {d}->{out} (no bias)",
        _m(proj_fc1="embedding_projection"), (ProjLayer("proj_fc1", "linear", "out", "d", False),),
        norm="rms_norm", norm_eps="vision"),
)})
