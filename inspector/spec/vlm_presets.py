"""Embedded presets of today's vision-language models: config.json and preprocessor facts as data.

Each entry is a `Preset` with its preprocessor facts. The numbers are those of the public files
named in `source`; where the test machine holds a copy of the file, the tests compare the preset
with it field by field. inspector.spec.presets registers them.
"""

from __future__ import annotations

from typing import Any

from inspector.spec.preset_configs import QWEN_BPE, Preset

HF = "https://huggingface.co/{}/blob/main/{}"
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
HALF = [0.5, 0.5, 0.5]


def _src(repo: str, *files: str, shared: bool = False) -> str:
    """The public URLs of the files the numbers come from (`shared`: the tests also hold a copy)."""
    return ", ".join(HF.format(repo, f) for f in files)


QWEN2_5_VL_7B: dict[str, Any] = {
    "model_type": "qwen2_5_vl", "architectures": ["Qwen2_5_VLForConditionalGeneration"],
    "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656, "hidden_act": "silu",
    "hidden_size": 3584, "intermediate_size": 18944, "max_position_embeddings": 128000, "max_window_layers": 28,
    "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "use_sliding_window": False, "vocab_size": 152064,
    "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "mrope"},
    "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
                      "num_heads": 16, "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14,
                      "spatial_merge_size": 2, "spatial_patch_size": 14, "window_size": 112,
                      "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2, "temporal_patch_size": 2},
}
QWEN2_5_VL_PRE = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
                  "merge_size": 2, "image_mean": CLIP_MEAN, "image_std": CLIP_STD}

QWEN3_VL_8B: dict[str, Any] = {
    "model_type": "qwen3_vl", "architectures": ["Qwen3VLForConditionalGeneration"], "image_token_id": 151655,
    "video_token_id": 151656, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "tie_word_embeddings": False,
    "text_config": {"model_type": "qwen3_vl_text", "attention_bias": False, "bos_token_id": 151643,
                    "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 4096,
                    "intermediate_size": 12288, "max_position_embeddings": 262144, "num_attention_heads": 32,
                    "num_hidden_layers": 36, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
                    "rope_scaling": {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"},
                    "rope_theta": 5000000, "vocab_size": 151936, "dtype": "bfloat16"},
    "vision_config": {"model_type": "qwen3_vl", "deepstack_visual_indexes": [8, 16, 24], "depth": 27,
                      "hidden_act": "gelu_pytorch_tanh", "hidden_size": 1152, "in_channels": 3,
                      "intermediate_size": 4304, "num_heads": 16, "num_position_embeddings": 2304,
                      "out_hidden_size": 4096, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2},
}
QWEN3_VL_PRE = {"size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16,
                "temporal_patch_size": 2, "merge_size": 2, "image_mean": HALF, "image_std": HALF}

GEMMA3_4B: dict[str, Any] = {  # the sparse Hub file: transformers' class defaults fill the rest
    "model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999,
    "eoi_token_index": 256000, "eos_token_id": [1, 106], "image_token_index": 262144, "mm_tokens_per_image": 256,
    "torch_dtype": "bfloat16",
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                    "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                    "sliding_window": 1024},
    "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
                      "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
                      "patch_size": 14, "vision_use_head": False},
}
GEMMA3_PRE = {"size": {"height": 896, "width": 896}, "image_seq_length": 256, "image_mean": HALF, "image_std": HALF}

LLAMA4_SCOUT: dict[str, Any] = {
    "model_type": "llama4", "architectures": ["Llama4ForConditionalGeneration"], "boi_token_index": 200080,
    "eoi_token_index": 200081, "image_token_index": 200092, "torch_dtype": "bfloat16",
    "text_config": {"model_type": "llama4_text", "attention_bias": False, "attention_chunk_size": 8192,
                    "bos_token_id": 200000, "eos_token_id": [200001, 200007, 200008], "head_dim": 128,
                    "hidden_act": "silu", "hidden_size": 5120, "interleave_moe_layer_step": 1,
                    "intermediate_size": 8192, "intermediate_size_mlp": 16384, "max_position_embeddings": 10485760,
                    "no_rope_layers": [], "num_attention_heads": 40, "num_experts_per_tok": 1,
                    "num_hidden_layers": 48, "num_key_value_heads": 8, "num_local_experts": 16,
                    "pad_token_id": 200018, "rms_norm_eps": 1e-05,
                    "rope_scaling": {"factor": 16.0, "high_freq_factor": 1.0, "low_freq_factor": 1.0,
                                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                    "rope_theta": 500000.0, "use_qk_norm": True, "vocab_size": 202048},
    "vision_config": {"model_type": "llama4_vision_model", "hidden_act": "gelu", "hidden_size": 1408,
                      "image_size": 336, "intermediate_size": 5632, "multi_modal_projector_bias": False,
                      "norm_eps": 1e-05, "num_attention_heads": 16, "num_channels": 3, "num_hidden_layers": 34,
                      "patch_size": 14, "pixel_shuffle_ratio": 0.5, "projector_input_dim": 4096,
                      "projector_output_dim": 4096, "rope_theta": 10000, "vision_feature_layer": -1,
                      "vision_feature_select_strategy": "default", "vision_output_dim": 4096},
}
LLAMA4_PRE = {"size": {"height": 336, "width": 336}, "max_patches": 16, "resize_to_max_canvas": False,
              "image_mean": HALF, "image_std": HALF}

LLAMA32_11B_VISION: dict[str, Any] = {
    "model_type": "mllama", "architectures": ["MllamaForConditionalGeneration"], "image_token_index": 128256,
    "torch_dtype": "bfloat16",
    "text_config": {"model_type": "mllama_text_model", "bos_token_id": 128000,
                    "cross_attention_layers": [3, 8, 13, 18, 23, 28, 33, 38], "eos_token_id": [128001, 128008, 128009],
                    "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
                    "max_position_embeddings": 131072, "num_attention_heads": 32, "num_hidden_layers": 40,
                    "num_key_value_heads": 8, "pad_token_id": 128004, "rms_norm_eps": 1e-05,
                    "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                    "rope_theta": 500000.0, "tie_word_embeddings": False, "vocab_size": 128256},
    "vision_config": {"model_type": "mllama_vision_model", "attention_heads": 16, "hidden_act": "gelu",
                      "hidden_size": 1280, "image_size": 560, "intermediate_layers_indices": [3, 7, 15, 23, 30],
                      "intermediate_size": 5120, "max_num_tiles": 4, "norm_eps": 1e-05, "num_channels": 3,
                      "num_global_layers": 8, "num_hidden_layers": 32, "patch_size": 14,
                      "supported_aspect_ratios": [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]],
                      "vision_output_dim": 7680},
}
MLLAMA_PRE = {"size": {"height": 560, "width": 560}, "max_image_tiles": 4, "image_mean": CLIP_MEAN,
              "image_std": CLIP_STD}

LLAVA_ONEVISION_7B: dict[str, Any] = {
    "model_type": "llava_onevision", "architectures": ["LlavaOnevisionForConditionalGeneration"],
    "image_grid_pinpoints": [[384 * h, 384 * w] for h in range(1, 7) for w in range(1, 7)],
    "image_token_index": 151646, "projector_hidden_act": "gelu", "tie_word_embeddings": False,
    "use_image_newline_parameter": True, "video_token_index": 151647, "vision_aspect_ratio": "anyres_max_9",
    "vision_feature_layer": -1, "vision_feature_select_strategy": "full",
    "text_config": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643,
                    "eos_token_id": 151645, "hidden_size": 3584, "intermediate_size": 18944,
                    "max_position_embeddings": 32768, "max_window_layers": 28, "num_attention_heads": 28,
                    "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
                    "rope_theta": 1000000.0, "sliding_window": 131072, "use_sliding_window": False,
                    "tie_word_embeddings": False, "vocab_size": 152128},
    "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "image_size": 384,
                      "intermediate_size": 4304, "num_attention_heads": 16, "num_hidden_layers": 26,
                      "patch_size": 14, "vision_use_head": False},
}
LLAVA_ONEVISION_PRE = {"size": {"height": 384, "width": 384}, "image_mean": HALF, "image_std": HALF,
                       "image_grid_pinpoints": LLAVA_ONEVISION_7B["image_grid_pinpoints"]}

INTERNVL3_2B: dict[str, Any] = {
    "model_type": "internvl", "architectures": ["InternVLForConditionalGeneration"], "downsample_ratio": 0.5,
    "image_seq_length": 256, "image_token_id": 151667, "projector_hidden_act": "gelu", "torch_dtype": "bfloat16",
    "vision_feature_layer": -1, "vision_feature_select_strategy": "default",
    "tie_word_embeddings": False,  # not in the Hub file; see UNTIED_HEADS
    "text_config": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643,
                    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 1536, "intermediate_size": 8960,
                    "max_position_embeddings": 32768, "max_window_layers": 70, "num_attention_heads": 12,
                    "num_hidden_layers": 28, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
                    "rope_theta": 1000000.0, "sliding_window": None, "use_sliding_window": False,
                    "tie_word_embeddings": False, "vocab_size": 151674},
    "vision_config": {"model_type": "internvl_vision", "attention_bias": True, "hidden_act": "gelu",
                      "hidden_size": 1024, "image_size": [448, 448], "intermediate_size": 4096,
                      "layer_scale_init_value": 0.1, "norm_type": "layer_norm", "num_attention_heads": 16,
                      "num_hidden_layers": 24, "patch_size": [14, 14], "use_absolute_position_embeddings": True,
                      "use_mask_token": False, "use_mean_pooling": True, "use_qk_norm": False},
}
INTERNVL3_PRE = {"size": {"height": 448, "width": 448}, "min_patches": 1, "max_patches": 12,
                 "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}

SMOLVLM_INSTRUCT: dict[str, Any] = {
    "model_type": "idefics3", "architectures": ["Idefics3ForConditionalGeneration"], "image_token_id": 49153,
    "scale_factor": 3, "tie_word_embeddings": False, "vocab_size": 49155,
    "text_config": {"model_type": "llama", "bos_token_id": 1, "eos_token_id": 2, "head_dim": 64,
                    "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 8192,
                    "max_position_embeddings": 16384, "num_attention_heads": 32, "num_hidden_layers": 24,
                    "num_key_value_heads": 32, "pad_token_id": 2, "rms_norm_eps": 1e-05, "rope_theta": 273768.0,
                    "tie_word_embeddings": False, "vocab_size": 49155},
    "vision_config": {"model_type": "idefics3", "hidden_size": 1152, "image_size": 384, "intermediate_size": 4304,
                      "num_attention_heads": 16, "num_hidden_layers": 27, "patch_size": 14},
}
SMOLVLM_PRE = {"size": {"longest_edge": 1536}, "max_image_size": {"longest_edge": 384}, "do_image_splitting": True,
               "image_mean": HALF, "image_std": HALF}

MISTRAL_SMALL_31: dict[str, Any] = {
    "model_type": "mistral3", "architectures": ["Mistral3ForConditionalGeneration"], "image_token_index": 10,
    "multimodal_projector_bias": False, "projector_hidden_act": "gelu", "spatial_merge_size": 2,
    "torch_dtype": "bfloat16", "vision_feature_layer": -1,
    "tie_word_embeddings": False,  # not in the Hub file; see UNTIED_HEADS
    "text_config": {"model_type": "mistral", "head_dim": 128, "hidden_act": "silu", "hidden_size": 5120,
                    "intermediate_size": 32768, "max_position_embeddings": 131072, "num_attention_heads": 32,
                    "num_hidden_layers": 40, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
                    "rope_theta": 1000000000.0, "sliding_window": None, "vocab_size": 131072},
    "vision_config": {"model_type": "pixtral", "head_dim": 64, "hidden_act": "silu", "hidden_size": 1024,
                      "image_size": 1540, "intermediate_size": 4096, "num_attention_heads": 16, "num_channels": 3,
                      "num_hidden_layers": 24, "patch_size": 14, "rope_theta": 10000.0},
}
PIXTRAL_PRE = {"size": {"longest_edge": 1540}, "patch_size": {"height": 14, "width": 14},
               "image_mean": CLIP_MEAN, "image_std": CLIP_STD}

# Presets whose Hub config.json leaves the top-level tie_word_embeddings out while transformers 5's
# config class defaults it to True (InternVLConfig, Mistral3Config since transformers PR #43429), so
# transformers would tie a head that the published checkpoint stores: the presets say False, as the
# checkpoints hold it. Evidence: both Hub pages give the safetensors size with an untied head
# (InternVL3-2B-hf 2.09B = 2,088,957,440 untied vs 1,855,986,176 tied; Mistral-Small-3.1 24.0B =
# 24,011,361,280 untied vs 23,340,272,640 tied), and vllm-project/vllm#51063 reports Mistral-Small-3.1's
# real language_model.lm_head.weight (131072 x 5120) discarded by the top-level default. The
# model.safetensors.index.json files themselves were not read here (no Hub access).
UNTIED_HEADS = ("OpenGVLab/InternVL3-2B-hf", "mistralai/Mistral-Small-3.1-24B-Instruct-2503")

VLM_PRESETS: list[Preset] = [
    Preset("Qwen/Qwen2.5-VL-7B-Instruct", ("qwen2.5-vl-7b", "qwen2.5-vl-7b-instruct"),
     _src("Qwen/Qwen2.5-VL-7B-Instruct", "config.json", "preprocessor_config.json", shared=True),
     QWEN2_5_VL_7B, QWEN2_5_VL_PRE, QWEN_BPE),
    Preset("Qwen/Qwen3-VL-8B-Instruct", ("qwen3-vl-8b", "qwen3-vl-8b-instruct"),
     _src("Qwen/Qwen3-VL-8B-Instruct", "config.json", "preprocessor_config.json", shared=True),
     QWEN3_VL_8B, QWEN3_VL_PRE, QWEN_BPE),
    Preset("google/gemma-3-4b-it", ("gemma-3-4b-it", "gemma3-4b"),
     _src("google/gemma-3-4b-it", "config.json", "preprocessor_config.json", shared=True), GEMMA3_4B, GEMMA3_PRE,
     None),
    Preset("meta-llama/Llama-4-Scout-17B-16E-Instruct", ("llama-4-scout", "llama4-scout"),
     _src("meta-llama/Llama-4-Scout-17B-16E-Instruct", "config.json", "preprocessor_config.json", shared=True),
     LLAMA4_SCOUT, LLAMA4_PRE, None),
    Preset("meta-llama/Llama-3.2-11B-Vision-Instruct", ("llama-3.2-11b-vision", "llama3.2-11b-vision"),
     _src("meta-llama/Llama-3.2-11B-Vision-Instruct", "config.json", "preprocessor_config.json"),
     LLAMA32_11B_VISION, MLLAMA_PRE, None),
    Preset("llava-hf/llava-onevision-qwen2-7b-ov-hf", ("llava-onevision-7b", "llava-onevision-qwen2-7b-ov"),
     _src("llava-hf/llava-onevision-qwen2-7b-ov-hf", "config.json", "preprocessor_config.json"),
     LLAVA_ONEVISION_7B, LLAVA_ONEVISION_PRE, None),
    Preset("OpenGVLab/InternVL3-2B-hf", ("internvl3-2b", "internvl3-2b-hf"),
     _src("OpenGVLab/InternVL3-2B-hf", "config.json", "preprocessor_config.json"), INTERNVL3_2B, INTERNVL3_PRE, None),
    Preset("HuggingFaceTB/SmolVLM-Instruct", ("smolvlm-instruct", "smolvlm-2b"),
     _src("HuggingFaceTB/SmolVLM-Instruct", "config.json", "preprocessor_config.json"), SMOLVLM_INSTRUCT,
     SMOLVLM_PRE, None),
    Preset("mistralai/Mistral-Small-3.1-24B-Instruct-2503", ("mistral-small-3.1", "mistral-small-3.1-24b"),
     _src("mistralai/Mistral-Small-3.1-24B-Instruct-2503", "config.json", "preprocessor_config.json"),
     MISTRAL_SMALL_31, PIXTRAL_PRE, None),
]


# google/gemma-4-31B-it: no copy of its config.json was reachable. Source: a public model-information report
# (Markdown, found with the code search's find_string on "language_model.layers.29.self_attn.k_proj.weight";
# stored file id 62810419502, its repository not shown) that prints the checkpoint's Gemma4Config as transformers
# 5.7.0 wrote it, its module tree and its checkpoint statistics (2 safetensors files, 1,188 tensors,
# 31,273,088,876 parameters). Kept: the keys a config.json holds; left out: the keys transformers' printout adds
# to every sub-config (_name_or_path, architectures null, id2label / label2id, chunk_size_feed_forward,
# is_encoder_decoder, output_attentions, output_hidden_states, problem_type, return_dict). layer_types is the
# printed list (5 sliding + 1 full, ten times), written as that product. Also fixtures/gemma/gemma-4-31B-it.json.
GEMMA4_31B: dict[str, Any] = {
    "architectures": ["Gemma4ForConditionalGeneration"], "audio_config": None, "audio_token_id": 258881,
    "boa_token_id": 256000, "boi_token_id": 255999, "dtype": "bfloat16", "eoa_token_id": 258883,
    "eoa_token_index": 258883, "eoi_token_id": 258882, "eos_token_id": [1, 106], "image_token_id": 258880,
    "initializer_range": 0.02, "model_type": "gemma4",
    "text_config": {
        "attention_bias": False, "attention_dropout": 0.0, "attention_k_eq_v": True, "bos_token_id": 2,
        "dtype": "bfloat16", "enable_moe_block": False, "eos_token_id": 1, "expert_intermediate_size": None,
        "final_logit_softcapping": 30.0, "global_head_dim": 512, "head_dim": 256,
        "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 5376, "hidden_size_per_layer_input": 0,
        "initializer_range": 0.02, "intermediate_size": 21504,
        "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 10,
        "max_position_embeddings": 262144, "model_type": "gemma4_text", "moe_intermediate_size": None,
        "num_attention_heads": 32, "num_experts": None, "num_global_key_value_heads": 4, "num_hidden_layers": 60,
        "num_key_value_heads": 16, "num_kv_shared_layers": 0, "pad_token_id": 0, "rms_norm_eps": 1e-06,
        "rope_parameters": {"full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1000000.0,
                                               "rope_type": "proportional"},
                            "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}},
        "sliding_window": 1024, "tie_word_embeddings": True, "top_k_experts": None,
        "use_bidirectional_attention": "vision", "use_cache": True, "use_double_wide_mlp": False,
        "vocab_size": 262144, "vocab_size_per_layer_input": 262144},
    "tie_word_embeddings": True, "transformers_version": "5.7.0", "video_token_id": 258884,
    "vision_config": {
        "attention_bias": False, "attention_dropout": 0.0, "default_output_length": 280, "dtype": "bfloat16",
        "global_head_dim": 72, "head_dim": 72, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 1152,
        "initializer_range": 0.02, "intermediate_size": 4304, "max_position_embeddings": 131072,
        "model_type": "gemma4_vision", "num_attention_heads": 16, "num_hidden_layers": 27, "num_key_value_heads": 16,
        "patch_size": 16, "pooling_kernel_size": 3, "position_embedding_size": 10240, "rms_norm_eps": 1e-06,
        "rope_parameters": {"rope_theta": 100.0, "rope_type": "default"}, "standardize": True,
        "use_clipped_linears": False},
    "vision_soft_tokens_per_image": 280,
}
GEMMA4_REPORT = ("a public model-information report (GitHub code search, stored file id 62810419502) printing "
                 "google/gemma-4-31B-it's Gemma4Config and its checkpoint statistics")
VLM_PRESETS.append(Preset("google/gemma-4-31B-it", ("gemma-4-31b-it", "gemma4-31b"), GEMMA4_REPORT, GEMMA4_31B))
