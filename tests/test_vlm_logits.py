"""Tiny random Qwen2.5-VL and Gemma 3 against transformers, with an image: same logits.

transformers builds each tiny model with random weights (norms and biases nudged so every tensor
matters) and saves it; our reference VLM loads the saved safetensors by inventory name and runs the
same ids and pixels. The pixels come from our preprocessing and are checked against transformers'
own image processor first. Qwen2.5-VL exercises window attention with a full-attention block,
RMSNorm and the gated vision MLP; Gemma 3 SigLIP, average pooling, the (1 + w) soft-embedding norm,
embeddings scaled by sqrt(d), sandwich norms, sliding layers and the bidirectional image block.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
torch.set_num_threads(1)

from inspector.image.rules import image_pixels, image_tokens  # noqa: E402
from inspector.reference.vlm import load_vlm  # noqa: E402

TOL = 1e-4


def _nudge(model, seed: int = 0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_q" in name or name.endswith(".bias") or "gate" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def photo():
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    return Image.fromarray(skdata.chelsea())  # 451 x 300 RGB


# --------------------------------------------------------------------------- Qwen2.5-VL

QWEN25 = dict(
    model_type="qwen2_5_vl", vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2,
    rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}, image_token_id=250, vision_start_token_id=251,
    vision_end_token_id=252, video_token_id=253, tie_word_embeddings=False,
    vision_config=dict(depth=3, hidden_size=32, intermediate_size=48, num_heads=4, out_hidden_size=64,
                       patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                       fullatt_block_indexes=[1], hidden_act="silu"),
)
PRE25 = {"min_pixels": 3136, "max_pixels": 112 * 112 * 2, "patch_size": 14, "merge_size": 2,
         "temporal_patch_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
         "image_std": [0.26862954, 0.26130258, 0.27577711]}


@pytest.fixture(scope="module")
def qwen25(tmp_path_factory):
    import json

    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

    cfg = dict(QWEN25)
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    torch.manual_seed(0)
    hf = _nudge(Qwen2_5_VLForConditionalGeneration(config))
    path = tmp_path_factory.mktemp("qwen25")
    hf.save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(PRE25))
    return hf, load_vlm(path)


def test_qwen2_5_vl_window_attention_tower_matches(qwen25, photo):
    hf, ours = qwen25
    pv, grid, _ = image_pixels(photo, ours.spec.vision)
    assert grid.tolist()[0][1:] != [4, 4]  # more than one 4x4-merge-group window: windows matter
    with torch.no_grad():
        want = hf.model.visual(pv, grid_thw=grid).pooler_output
        got = ours.vision(pv, grid)
    assert got.shape == want.shape
    assert (got - want).abs().max() < TOL


def test_qwen2_5_vl_logits_match(qwen25, photo):
    hf, ours = qwen25
    v = ours.spec.vision
    pv, grid, _ = image_pixels(photo, v)
    n = image_tokens(v, photo.size[1], photo.size[0], 64).tokens
    ids = torch.tensor([[1, 17, 33, 251] + [250] * n + [252, 40, 41, 42, 2]])
    with torch.no_grad():
        want = hf(input_ids=ids, pixel_values=pv, image_grid_thw=grid, mm_token_type_ids=(ids == 250).int()).logits
        got = ours(ids, pv, grid, 250)
    assert got.shape == want.shape == (1, ids.shape[1], 256)
    assert (got - want).abs().max() < TOL


def test_qwen2_5_vl_pixels_match_transformers(photo):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from inspector.spec.model import from_hf_config

    v = from_hf_config(dict(QWEN25), "t", preprocessor=PRE25).vision
    proc = Qwen2VLImageProcessorPil(size={"shortest_edge": PRE25["min_pixels"], "longest_edge": PRE25["max_pixels"]},
                                    patch_size=14, merge_size=2, temporal_patch_size=2)
    out = proc(images=[photo], return_tensors="pt")
    pv, grid, _ = image_pixels(photo, v)
    assert torch.equal(grid, out["image_grid_thw"]) and (pv - out["pixel_values"]).abs().max() < 1e-5


# --------------------------------------------------------------------------- Gemma 3

GEMMA3 = dict(
    model_type="gemma3", mm_tokens_per_image=4, boi_token_index=250, eoi_token_index=251, image_token_index=252,
    tie_word_embeddings=True,
    text_config=dict(model_type="gemma3_text", vocab_size=256, hidden_size=64, intermediate_size=96,
                     num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                     sliding_window=4, sliding_window_pattern=3, query_pre_attn_scalar=16, rms_norm_eps=1e-6,
                     rope_theta=10000.0, rope_local_base_freq=1000.0, max_position_embeddings=128,
                     tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0),
    vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=48,
                       num_hidden_layers=2, num_attention_heads=4, image_size=56, patch_size=14,
                       vision_use_head=False),
)
PRE3 = {"size": {"height": 56, "width": 56}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}


@pytest.fixture(scope="module")
def gemma3(tmp_path_factory):
    import json

    from transformers import AutoConfig, Gemma3ForConditionalGeneration

    cfg = dict(GEMMA3)
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    torch.manual_seed(0)
    hf = Gemma3ForConditionalGeneration._from_config(config, attn_implementation="eager")
    hf = _nudge(hf)
    path = tmp_path_factory.mktemp("gemma3")
    hf.save_pretrained(path)
    _published_layout(path / "model.safetensors")
    (path / "preprocessor_config.json").write_text(json.dumps(PRE3))
    return hf, load_vlm(path)


def _published_layout(file) -> None:
    """transformers 5 saves SigLIP as `vision_tower.*`; the published Gemma 3 checkpoints (and our
    inventory) name it `vision_tower.vision_model.*`. Same tensors, renamed."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(file)
    renamed = {("vision_tower.vision_model." + k.removeprefix("vision_tower.")) if k.startswith("vision_tower.")
               else k: v for k, v in tensors.items()}
    save_file(renamed, file, metadata={"format": "pt"})


def test_gemma3_pixels_match_transformers(gemma3, photo):
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    _, ours = gemma3
    proc = Gemma3ImageProcessorPil(size=PRE3["size"], image_mean=PRE3["image_mean"], image_std=PRE3["image_std"])
    want = proc(images=[photo], return_tensors="pt")["pixel_values"]
    got = image_pixels(photo, ours.spec.vision)[0]
    assert got.shape == want.shape == (1, 3, 56, 56) and (got - want).abs().max() < 1e-5


def test_gemma3_tower_and_projector_match(gemma3, photo):
    hf, ours = gemma3
    pv, _, layout = image_pixels(photo, ours.spec.vision)
    with torch.no_grad():
        want = hf.model.get_image_features(pixel_values=pv).pooler_output
        got = ours.vision.features(pv, layout, None)
    assert got.reshape(want.shape).shape == want.shape and (got.reshape(want.shape) - want).abs().max() < TOL


def test_gemma3_logits_match_with_bidirectional_image(gemma3, photo):
    hf, ours = gemma3
    pv, _, layout = image_pixels(photo, ours.spec.vision)
    ids = torch.tensor([[1, 17, 33, 250] + [252] * 4 + [251, 40, 41, 42, 43, 44, 45, 2]])  # longer than the window
    token_types = (ids == 252).int()
    with torch.no_grad():
        want = hf(input_ids=ids, pixel_values=pv, token_type_ids=token_types).logits
        got = ours(ids, pv, None, 252, layout=layout)
        ours.text._bidirectional = False
        causal = ours(ids, pv, None, 252, layout=layout)
        ours.text._bidirectional = True
    assert got.shape == want.shape == (1, ids.shape[1], 256)
    assert (got - want).abs().max() < TOL
    assert (causal - want).abs().max() > 1e-3  # the image block's two-way attention matters
