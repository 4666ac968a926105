"""Every vision-language wrapper against transformers on the meta device: names, shapes, totals.

Tiny configs switch each option on (window attention, DeepStack, SigLIP's pooling head, CLIP instead
of SigLIP, q/k norms, mean pooling, projector biases, cross-attention layers, gated global layers).
Our inventory names what published checkpoints store; transformers' own load-time renaming
(tests/hf_vlm.load_names) turns them into its parameter names. transformers 5 reads a VLM's tie flag
at the top level (the published files keep it in text_config), so the tiny configs state it there too;
the rule itself (class defaults, text_config's True forwarded by some) is checked on the default configs.
"""

from __future__ import annotations

import copy

import pytest

from inspector.inventory.accounting import account
from inspector.inventory.model import inventory
from inspector.spec.model import from_hf_config

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from hf_vlm import compare, hf_vlm  # noqa: E402
from transformers.models.auto.configuration_auto import CONFIG_MAPPING  # noqa: E402
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING  # noqa: E402

from inspector.spec.wrappers import WRAPPERS  # noqa: E402

LLM = dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=2, tie_word_embeddings=False, max_position_embeddings=256)
SIGLIP = dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=48, num_hidden_layers=2,
              num_attention_heads=4, image_size=56, patch_size=14, vision_use_head=False)
CLIP = dict(SIGLIP, model_type="clip_vision_model")
del CLIP["vision_use_head"]


def _vlm(model_type: str, text: dict | None, vision: dict, **top) -> dict:
    cfg = {"model_type": model_type, "vision_config": vision, **top}
    if text is not None:
        cfg["text_config"] = text
        cfg.setdefault("tie_word_embeddings", text.get("tie_word_embeddings", False))
    return cfg


QWEN_VISION = dict(depth=2, hidden_size=32, intermediate_size=48, num_heads=4, out_hidden_size=64, patch_size=14,
                   spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
TINY = {
    "qwen2_5_vl": {"model_type": "qwen2_5_vl", **LLM, "vision_config": dict(
        QWEN_VISION, window_size=56, fullatt_block_indexes=[1]), "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
    "qwen3_vl": _vlm("qwen3_vl", dict(LLM, model_type="qwen3_vl_text", head_dim=16), dict(
        QWEN_VISION, depth=3, patch_size=16, num_position_embeddings=16, deepstack_visual_indexes=[0, 2],
        hidden_act="gelu_pytorch_tanh")),
    "gemma3": _vlm("gemma3", dict(LLM, model_type="gemma3_text", head_dim=16, tie_word_embeddings=True,
                                  num_hidden_layers=6, sliding_window=8), dict(SIGLIP), mm_tokens_per_image=4),
    "gemma3-siglip-head": _vlm("gemma3", dict(LLM, model_type="gemma3_text", head_dim=16, tie_word_embeddings=True),
                               {k: v for k, v in SIGLIP.items() if k != "vision_use_head"}, mm_tokens_per_image=16),
    "llava_onevision": _vlm("llava_onevision", dict(LLM, model_type="qwen2"), dict(SIGLIP)),
    "llava_onevision-clip-no-bias": _vlm("llava_onevision", dict(LLM, model_type="qwen2"), dict(CLIP),
                                         multimodal_projector_bias=False),
    "llava_next": _vlm("llava_next", dict(LLM, model_type="llama"), dict(CLIP)),
    "internvl": _vlm("internvl", dict(LLM, model_type="qwen2"), dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, image_size=[56, 56],
        patch_size=[14, 14])),
    "internvl-qk-norm-bias-no-pooling": _vlm("internvl", dict(LLM, model_type="qwen3", head_dim=16), dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, image_size=[56, 56],
        patch_size=[14, 14], use_qk_norm=True, attention_bias=True, use_mean_pooling=False, norm_type="rms_norm",
        use_mask_token=True)),
    "idefics3": _vlm("idefics3", dict(LLM, model_type="llama"), dict(SIGLIP, model_type="idefics3_vision"),
                     scale_factor=2),
    "smolvlm": _vlm("smolvlm", dict(LLM, model_type="llama"), dict(SIGLIP, model_type="smolvlm_vision"),
                    scale_factor=2),
    "mllama": _vlm("mllama", dict(LLM, model_type="mllama_text_model", num_hidden_layers=3, cross_attention_layers=[1],
                                  bos_token_id=1, eos_token_id=2, pad_token_id=3),
                   dict(hidden_size=32, num_hidden_layers=2, num_global_layers=1, attention_heads=4,
                        intermediate_size=48, image_size=56, patch_size=14, max_num_tiles=2,
                        intermediate_layers_indices=[0], supported_aspect_ratios=[[1, 1], [1, 2], [2, 1]],
                        vision_output_dim=64)),
    "mistral3": _vlm("mistral3", dict(LLM, model_type="mistral", head_dim=16), dict(
        model_type="pixtral", hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        head_dim=8, image_size=56, patch_size=14), spatial_merge_size=2),
    "mistral3-projector-bias": _vlm("mistral3", dict(LLM, model_type="mistral"), dict(
        model_type="pixtral", hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        head_dim=8, image_size=56, patch_size=14), spatial_merge_size=2, multimodal_projector_bias=True),
    "llama4": _vlm("llama4", dict(LLM, model_type="llama4_text", head_dim=16, intermediate_size_mlp=96,
                                  num_local_experts=2, num_experts_per_tok=1, interleave_moe_layer_step=2), dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=56,
        patch_size=14, pixel_shuffle_ratio=0.5, projector_input_dim=64, projector_output_dim=64,
        vision_output_dim=64)),
}


@pytest.mark.parametrize("which", sorted(TINY))
def test_tiny_vlm_equals_transformers(which):
    cfg = TINY[which]
    model = hf_vlm(cfg)
    spec = from_hf_config(copy.deepcopy(cfg), which)
    compare(inventory(spec), model)
    acc = account(spec)
    assert acc.totals.total_params == sum(p.numel() for p in model.parameters())
    assert sum(r.total for r in acc.rows if r.stored and r.parameter) == acc.totals.total_params
    assert set(acc.totals.components) == {"vision_encoder", "projector", "language_model"}


def test_parts_switched_by_the_config_appear():
    rows = {w: {r.name for r in account(from_hf_config(copy.deepcopy(TINY[w]), w)).rows} for w in TINY}
    assert "Attention-pooling head (unused)" in rows["gemma3-siglip-head"] and \
        "Attention-pooling head (unused)" not in rows["gemma3"]
    assert "DeepStack mergers" in rows["qwen3_vl"] and "Image newline" in rows["llava_onevision"]
    assert {"Cross-attention layer", "Gated global layer", "Tile position embeddings"} <= rows["mllama"]
    assert "Layer norm (post-encoder)" in rows["internvl-qk-norm-bias-no-pooling"]
    assert "Layer norm (post-encoder)" not in rows["internvl"]
    assert "Patch merger" in rows["mistral3"] and "Pixel-shuffle MLP" in rows["llama4"]


# --------------------------------------------------------------------------- presets (real models)

from inspector.spec.presets import all_presets  # noqa: E402

VLM_PRESETS = [p for p in all_presets() if "vision_config" in p.config and p.config["model_type"] != "internvl_chat"]
PUBLISHED = {  # the model cards' and Hub pages' parameter counts, in billions (rounded as published)
    "Qwen/Qwen2.5-VL-7B-Instruct": 8.29, "Qwen/Qwen3-VL-8B-Instruct": 8.77, "google/gemma-3-4b-it": 4.3,
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": 109, "meta-llama/Llama-3.2-11B-Vision-Instruct": 10.7,
    "llava-hf/llava-onevision-qwen2-7b-ov-hf": 8.03, "OpenGVLab/InternVL3-2B-hf": 2.09,
    "HuggingFaceTB/SmolVLM-Instruct": 2.25, "mistralai/Mistral-Small-3.1-24B-Instruct-2503": 24.0,
}


@pytest.mark.parametrize("preset", VLM_PRESETS, ids=[p.hub_id for p in VLM_PRESETS])
def test_preset_equals_transformers(preset):
    # transformers 5's own rule, untouched: presets whose checkpoints store a head that the wrapper's class
    # default would tie carry the top-level flag themselves (inspector.spec.vlm_presets.UNTIED_HEADS)
    cfg = copy.deepcopy(dict(preset.config))
    model = hf_vlm(cfg)
    spec = from_hf_config(copy.deepcopy(dict(preset.config)), preset.hub_id, preprocessor=preset.preprocessor)
    compare(inventory(spec), model)
    total = account(spec).totals.total_params
    assert total == sum(p.numel() for p in model.parameters())
    if preset.hub_id in PUBLISHED:
        assert float(f"{total / 1e9:.3g}") == PUBLISHED[preset.hub_id], total


def test_every_new_model_type_has_a_preset():
    types = {p.config["model_type"] for p in VLM_PRESETS}
    assert {"qwen2_5_vl", "qwen3_vl", "gemma3", "llava_onevision", "internvl", "idefics3", "mllama", "mistral3",
            "llama4"} <= types


NATIVE_IN_TRANSFORMERS = sorted(mt for mt in WRAPPERS if mt in CONFIG_MAPPING)


def _meta_total(cfg: dict) -> int:
    config = CONFIG_MAPPING[cfg["model_type"]].from_dict({k: v for k, v in cfg.items() if k != "model_type"})
    with torch.device("meta"):
        model = MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING[type(config)]._from_config(config)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.filterwarnings("ignore::inspector.errors.InspectWarning")  # qwen defaults: merger wider than the LLM
@pytest.mark.parametrize("model_type", NATIVE_IN_TRANSFORMERS)
def test_default_config_equals_transformers(model_type):
    """Each native VLM's default config (transformers' class defaults, to_dict) gives transformers' meta total:
    the tie rule, and Qwen's default merger output (3584) narrower than the default LLM (8192, 4096)."""
    cfg = CONFIG_MAPPING[model_type]().to_dict()
    assert account(from_hf_config(copy.deepcopy(cfg), model_type)).totals.total_params == _meta_total(cfg)


# (model_type, top-level flag or None for absent, text_config's flag, tied?) from configuration_*.py
TIE_CASES = {
    "mistral3-class-default-ties": ("mistral3", None, False, True),
    "internvl-top-false-wins": ("internvl", False, True, False),
    "qwen2_5_vl-text-true-forwarded": ("qwen2_5_vl", None, True, True),
    "llava_onevision-text-true-forwarded": ("llava_onevision", False, True, True),
    "llava_next-text-true-ignored": ("llava_next", None, True, False),
    "qwen3_vl-text-true-ignored": ("qwen3_vl", None, True, False),
}


@pytest.mark.filterwarnings("ignore::inspector.errors.InspectWarning")
@pytest.mark.parametrize("model_type,top,text,tied", list(TIE_CASES.values()), ids=list(TIE_CASES))
def test_tie_rule_is_transformers(model_type, top, text, tied):
    cfg = CONFIG_MAPPING[model_type]().to_dict()
    cfg.pop("tie_word_embeddings", None)
    if top is not None:
        cfg["tie_word_embeddings"] = top
    cfg["text_config"]["tie_word_embeddings"] = text
    spec = from_hf_config(copy.deepcopy(cfg), model_type)
    assert spec.text.tie_embeddings is tied
    assert account(spec).totals.total_params == _meta_total(cfg)
