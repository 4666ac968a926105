"""The reference vision towers and the whole VLM.

Independent reference: transformers' Qwen2VLForConditionalGeneration with tiny random weights, saved
with save_pretrained and loaded into ours by inventory names. Hand-checked cases for InternVL2's
pixel shuffle; full-size meta shapes against seed 003 section 2.1 and InternVL2's published design.
Real image: scikit-image's sample photo of a cat (skimage.data.chelsea).
"""

from __future__ import annotations

import re

import pytest
import torch

from inspector.errors import InspectError
from inspector.source import load_spec
from inspector.image.preprocess import StepLog, qwen2_vl_pixels, synthetic_image
from inspector.image.preprocess import load_image as load_image_rgb
from inspector.reference.vision import TileViT, load_vision_weights
from inspector.reference.vision_blocks import pixel_shuffle
from inspector.reference.vlm import VLM, load_vlm, mrope_positions
from inspector.runtime.vlm_inputs import build_inputs
from inspector.runtime.prepare import ModelChoice, load_runtime
from inspector.runtime.tracing import TraceOptions, trace_model
from inspector.runtime.vlm_trace import trace_vlm

IMAGE, START, END, VIDEO = 250, 251, 252, 253


def _tiny_qwen2_vl_config() -> dict:
    text = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, bos_token_id=1, eos_token_id=2, rms_norm_eps=1e-6,
                rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]})
    vision = dict(depth=2, embed_dim=32, num_heads=4, mlp_ratio=2, hidden_size=64, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2)
    return dict(text_config=text, vision_config=vision, image_token_id=IMAGE, vision_start_token_id=START,
                vision_end_token_id=END, video_token_id=VIDEO)


@pytest.fixture(scope="module")
def tiny_qwen2_vl(tmp_path_factory):
    """(transformers model, our VLM loaded from its save_pretrained directory, spec)."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    torch.manual_seed(0)
    hf = Qwen2VLForConditionalGeneration(Qwen2VLConfig(**_tiny_qwen2_vl_config())).eval()
    with torch.no_grad():  # random, non-trivial norms and biases so that every tensor matters
        for name, p in hf.named_parameters():
            if "norm" in name or "ln_q" in name or name.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.1)
    path = tmp_path_factory.mktemp("qwen2vl")
    hf.save_pretrained(path)
    ours = load_vlm(path)
    return hf, ours, ours.spec


@pytest.fixture(scope="module")
def chelsea():
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    return Image.fromarray(skdata.chelsea())  # 451 x 300 RGB photo


def _small(image, height, width):
    from PIL import Image

    return image.resize((width, height), Image.Resampling.BICUBIC)


def test_qwen2_vl_vision_tower_and_merger_match_transformers(tiny_qwen2_vl, chelsea):
    hf, ours, spec = tiny_qwen2_vl
    pv, grid = qwen2_vl_pixels(_small(chelsea, 56, 84), spec.vision)  # grid 4 x 6
    assert grid.tolist() == [[1, 4, 6]] and pv.shape == (24, 3 * 2 * 14 * 14)
    with torch.no_grad():
        want = hf.model.visual(pv, grid_thw=grid)
        blocks = ours.vision.encode(pv, grid)
        merged = ours.vision.merge(blocks)
    assert (blocks - want.last_hidden_state).abs().max() < 1e-4
    assert merged.shape == (6, 64)
    assert (merged - want.pooler_output).abs().max() < 1e-4


def test_qwen2_vl_two_images_attend_separately(tiny_qwen2_vl, chelsea):
    hf, ours, spec = tiny_qwen2_vl
    a, ga = qwen2_vl_pixels(_small(chelsea, 56, 84), spec.vision)
    b, gb = qwen2_vl_pixels(_small(chelsea, 84, 56), spec.vision)
    pv, grid = torch.cat([a, b]), torch.cat([ga, gb])
    with torch.no_grad():
        want = hf.model.visual(pv, grid_thw=grid).pooler_output
        got = ours.vision(pv, grid)
        alone = ours.vision(b, gb)
    assert (got - want).abs().max() < 1e-4
    assert (got[6:] - alone).abs().max() < 1e-5  # the second image does not see the first


def _ids(n_image: int) -> torch.Tensor:
    return torch.tensor([[1, 17, 33, START] + [IMAGE] * n_image + [END, 40, 41, 42, 2]])


def test_qwen2_vl_mrope_positions_match_transformers(tiny_qwen2_vl):
    hf, ours, spec = tiny_qwen2_vl
    ids = torch.tensor([[1, 5, START] + [IMAGE] * 6 + [END, 7, START] + [IMAGE] * 4 + [END, 9]])
    grid = torch.tensor([[1, 4, 6], [1, 4, 4]])
    want, want_delta = hf.model.get_rope_index(ids, mm_token_type_ids=(ids == IMAGE).int(), image_grid_thw=grid)
    got, delta = mrope_positions(ids, grid, IMAGE, 2)
    assert torch.equal(got, want) and delta.tolist() == want_delta.flatten().tolist()
    # the first image's tokens: t = 3, rows 3..4, columns 3..5 (offset = 3 text tokens before it)
    assert got[:, 0, 3:9].tolist() == [[3] * 6, [3, 3, 3, 4, 4, 4], [3, 4, 5, 3, 4, 5]]


def test_qwen2_vl_whole_model_logits_match_transformers(tiny_qwen2_vl, chelsea):
    hf, ours, spec = tiny_qwen2_vl
    pv, grid = qwen2_vl_pixels(_small(chelsea, 56, 84), spec.vision)
    ids = _ids(6)
    with torch.no_grad():
        want = hf(input_ids=ids, pixel_values=pv, image_grid_thw=grid, mm_token_type_ids=(ids == IMAGE).int()).logits
        got = ours(ids, pv, grid, IMAGE)
    assert got.shape == (1, ids.shape[1], 256)
    assert (got - want).abs().max() < 1e-4
    # and M-RoPE matters: plain 1D positions give different logits
    with torch.no_grad():
        plain = ours(ids, pv, grid, IMAGE, positions=torch.arange(ids.shape[1]))
    assert (plain - want).abs().max() > 1e-3


def test_image_token_count_mismatch_is_one_line(tiny_qwen2_vl, chelsea):
    _, ours, spec = tiny_qwen2_vl
    pv, grid = qwen2_vl_pixels(_small(chelsea, 56, 84), spec.vision)
    with pytest.raises(InspectError, match=r"image tokens in the prompt \(5\) differ from image features \(6\)"):
        ours(_ids(5), pv, grid, IMAGE)


def test_vision_weights_missing_and_shape_errors(tiny_qwen2_vl, tmp_path):
    from safetensors.torch import save_file

    from inspector.checkpoint.tensors import open_source
    from inspector.reference.vision import build_vision

    _, ours, spec = tiny_qwen2_vl
    tensors = {"visual.patch_embed.proj.weight": torch.zeros(32, 3, 2, 14, 14)}
    save_file(tensors, tmp_path / "v.safetensors")
    model = build_vision(spec.vision, device="meta")
    with pytest.raises(InspectError, match="vision tensor\\(s\\) missing from the checkpoint: visual.blocks.0.norm1.weight"):
        load_vision_weights(model, open_source(tmp_path / "v.safetensors"), torch.float32)


# --------------------------------------------------------------------------- InternVL2


def test_pixel_shuffle_hand_checked():
    # one tile, a 4 x 4 grid of patches, 1 channel holding 10*row + column
    grid = torch.tensor([[10.0 * r + c for c in range(4)] for r in range(4)]).view(1, 4, 4, 1)
    out = pixel_shuffle(grid, 2)
    assert out.shape == (1, 4, 4)
    # token (i, j) holds window rows 2i, 2i+1 by columns 2j, 2j+1, row-major
    assert out[0].tolist() == [[0, 1, 10, 11], [2, 3, 12, 13], [20, 21, 30, 31], [22, 23, 32, 33]]


def test_pixel_shuffle_keeps_channels_together():
    x = torch.arange(2 * 2 * 2 * 3, dtype=torch.float32).view(2, 2, 2, 3)  # 2 tiles, 2x2 grid, 3 channels
    out = pixel_shuffle(x, 2)
    assert out.shape == (2, 1, 12)
    assert torch.equal(out[1, 0], x[1].reshape(12))  # one window = the whole tile, rows then columns


# transformers' native InternVL names -> the original InternVL2 checkpoint names (facts of the
# published conversion; q/k/v are concatenated back into qkv below)
_NATIVE_TO_ORIGINAL = [
    ("model.vision_tower.embeddings.cls_token", "vision_model.embeddings.class_embedding"),
    ("model.vision_tower.embeddings.position_embeddings", "vision_model.embeddings.position_embedding"),
    ("model.vision_tower.embeddings.patch_embeddings.projection", "vision_model.embeddings.patch_embedding"),
    ("model.vision_tower.encoder.layer.", "vision_model.encoder.layers."), (".lambda_1", ".ls1"),
    (".lambda_2", ".ls2"), (".layernorm_before", ".norm1"), (".layernorm_after", ".norm2"),
    (".attention.projection_layer", ".attn.proj"), (".attention.q_norm", ".attn.q_norm"),
    (".attention.k_norm", ".attn.k_norm"), ("model.multi_modal_projector.layer_norm", "mlp1.0"),
    ("model.multi_modal_projector.linear_1", "mlp1.1"), ("model.multi_modal_projector.linear_2", "mlp1.3"),
]


class _DictSource:
    def __init__(self, tensors):
        self.tensors = tensors

    def names(self):
        return set(self.tensors)

    def shape(self, name):
        return tuple(self.tensors[name].shape)

    def get(self, name):
        return self.tensors[name]


def _original_vision_tensors(state: dict) -> dict:
    out, qkv = {}, {}
    for name, t in state.items():
        if not name.startswith(("model.vision_tower", "model.multi_modal_projector")):
            continue
        for a, b in _NATIVE_TO_ORIGINAL:
            name = name.replace(a, b, 1)
        part = next((p for p in ("q_proj", "k_proj", "v_proj") if f".attention.{p}." in name), None)
        if part:
            qkv.setdefault(name.replace(f".attention.{part}.", ".attn.qkv."), {})[part] = t
        else:
            out[name] = t
    for name, parts in qkv.items():
        out[name] = torch.cat([parts["q_proj"], parts["k_proj"], parts["v_proj"]])  # (3 d, d) or (3 d,)
    return out


@pytest.mark.parametrize("vision", [{}, {"norm_type": "rms_norm", "qk_normalization": True, "qkv_bias": False}],
                         ids=["layer_norm", "rms_norm+qk_norm"])
def test_internvit_and_mlp1_match_transformers_native_internvl(vision):
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    from inspector.spec.model import from_hf_config

    v = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
         "image_size": 56, "patch_size": 14, "num_channels": 3, "qkv_bias": True, "norm_type": "layer_norm",
         "qk_normalization": False, "hidden_act": "gelu", **vision}
    llm = {"model_type": "qwen2", "vocab_size": 128, "hidden_size": 64, "intermediate_size": 96,
           "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2}
    cfg = {"model_type": "internvl_chat", "downsample_ratio": 0.5, "force_image_size": 56, "max_dynamic_patch": 6,
           "use_thumbnail": True, "dynamic_image_size": True, "llm_config": llm, "vision_config": v}
    native = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  image_size=[56, 56], patch_size=[14, 14], attention_bias=v["qkv_bias"],
                  use_qk_norm=v["qk_normalization"], norm_type=v["norm_type"], hidden_act="gelu")
    torch.manual_seed(0)
    hf = InternVLForConditionalGeneration(InternVLConfig(
        vision_config=native, text_config={k: x for k, x in llm.items()}, downsample_ratio=0.5,
        projector_hidden_act="gelu")).eval()
    with torch.no_grad():  # move every weight off its init (layer scales, norms, biases included)
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    spec = from_hf_config(cfg, "tiny-internvl")
    ours = TileViT(spec.vision, device="meta")
    load_vision_weights(ours, _DictSource(_original_vision_tensors(hf.state_dict())), torch.float32)
    pixels = torch.randn(3, 3, 56, 56)  # 3 tiles
    with torch.no_grad():
        want = hf.model.get_image_features(pixels)
        got = ours(pixels)
    want = getattr(want, "pooler_output", want)
    assert got.shape == (3, 4, 64)  # (56/14)^2 / 4 = 4 tokens per tile
    assert (got - want.reshape(got.shape)).abs().max() < 1e-4


def test_internvit_position_embedding_interpolates_other_grids():
    spec = load_spec("OpenGVLab/InternVL2-2B")
    model = TileViT(spec.vision, device="meta")
    assert model.position_embedding(32, 32).shape == (1, 1025, 1024)
    assert model.position_embedding(16, 24).shape == (1, 1 + 16 * 24, 1024)


def test_internvl2_2b_meta_trace_shapes():
    spec = load_spec("OpenGVLab/InternVL2-2B")
    logits, log = trace_vlm(VLM(spec, device="meta"), "What is this?", synthetic_image(448, 448))
    assert log.shape("image.normalize") == (1, 3, 448, 448)
    assert log.shape("vision.patches") == (1, 1024, 1024)
    assert log.shape("vision.embedded") == (1, 1025, 1024)
    assert [s.name for s in log.steps if re.fullmatch(r"vision\.blocks\.\d+", s.name)] == [f"vision.blocks.{i}" for i in range(24)]
    assert log.shape("vision.blocks.0.attn.qkv") == (1, 1025, 3072)  # block 0's sub-steps are shown
    assert log.shape("vision.blocks.0.attn.probs") == (1, 16, 1025, 1025)
    from inspector.steps import collapse_steps

    assert not any(r.name.startswith("vision.blocks.1.") for r in collapse_steps(log.steps))  # folded
    assert log.shape("vision.selected") == (1, 1024, 1024)  # class token dropped
    assert log.shape("vision.merger.grouped") == (1, 256, 4096)  # 256 tokens per 448x448 tile
    assert log.shape("vision.merger.out") == (1, 256, 2048)
    n = log.shape("tokens.expanded")[1]
    assert log.shape("tokens.expanded")[1] - log.shape("tokens.template")[1] == 255
    assert logits.shape == (1, n, 92553)
    assert "positions" not in log.names()  # InternLM2 uses plain 1D RoPE


def test_internvl2_2b_tiles_with_thumbnail_meta():
    spec = load_spec("OpenGVLab/InternVL2-2B")
    inputs = build_inputs(spec, "x", synthetic_image(500, 1000))  # aspect 2 -> 2x1 grid + thumbnail
    assert inputs.pixel_values.shape == (3, 3, 448, 448)
    assert inputs.image_tokens == 3 * 256 and inputs.placeholder_ids


# --------------------------------------------------------------------------- Qwen2-VL full size on meta


def test_qwen2_vl_2b_meta_trace_matches_seed_224():
    spec = load_spec("Qwen/Qwen2-VL-2B-Instruct")
    logits, log = trace_vlm(VLM(spec, device="meta"), "Describe this image.", synthetic_image(224, 224))
    assert log.shape("image.normalize") == (3, 224, 224)
    assert log.shape("image.temporal") == (2, 3, 224, 224)
    assert log.shape("image.reshape") == (1, 2, 3, 8, 2, 14, 8, 2, 14)
    assert log.shape("image.transpose") == (1, 8, 8, 2, 2, 3, 2, 14, 14)
    assert log.shape("image.patches") == (256, 1176)  # seed Step 4 / 6
    assert log.shape("vision.embedded") == (256, 1280)  # Step 6: (n_img, d_img)
    assert log.shape("vision.rope") == (1, 256, 80)  # d_h = 80 for the 2B model
    assert sum(bool(re.fullmatch(r"vision\.blocks\.\d+", s.name)) for s in log.steps) == 32  # Step 10
    assert log.shape("vision.blocks.0.attn.qkv")[-1] == 3 * 1280  # Step 8: W_qkv (3840, 1280)
    assert log.shape("vision.blocks.0.mlp.fc1")[-1] == 5120  # Step 9: W_1 (5120, 1280)
    assert log.shape("text.layers.0.attn.probs")[-2:] == (log.shape("tokens.expanded")[1],) * 2
    assert log.shape("vision.merger.grouped") == (64, 5120)
    assert log.shape("vision.merger.out") == (64, 1536)  # Step 11
    n = log.shape("tokens.expanded")[1]
    assert n - log.shape("tokens.template")[1] == 63  # one placeholder became 64
    assert log.shape("positions") == (3, 1, n)
    assert logits.shape == (1, n, 151936)


def test_text_only_model_refuses_image():
    spec = load_spec("Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(InspectError, match="text-only model"):
        build_inputs(spec, "hi", synthetic_image(28, 28))


def test_recorder_costs_nothing_when_absent(tiny_qwen2_vl, chelsea):
    _, ours, spec = tiny_qwen2_vl
    log = StepLog()
    a = qwen2_vl_pixels(_small(chelsea, 56, 84), spec.vision, log)[0]
    b = qwen2_vl_pixels(_small(chelsea, 56, 84), spec.vision)[0]
    assert torch.equal(a, b) and len(log.steps) == 7
    assert not any(m._forward_hooks for m in ours.modules())  # trace hooks are gone after tracing


# --------------------------------------------------------------------------- the trace entry point


def test_collapse_steps_folds_blocks():
    from inspector.steps import collapse_steps

    spec = load_spec("Qwen/Qwen2-VL-2B-Instruct")
    log = trace_model(ModelChoice("Qwen/Qwen2-VL-2B-Instruct", device="meta"),
                      TraceOptions(prompts=("hi",), image_size="224x224")).log
    rows = collapse_steps(log.steps)
    names = [r.name for r in rows]
    assert "vision.blocks.1-31" in names and "text.layers.1-27" in names and "vision.blocks.5" not in names
    assert "vision.blocks.0.attn.probs" in names  # block 0 in full, as the text trace shows layer 0
    row = rows[names.index("vision.blocks.1-31")]
    assert row.shape == (1, 256, 1280) and row.text.startswith("31 x ")
    assert spec.text.num_layers == 28


class _TinyTokenizer:
    """Stand-in for a tokenizer of the tiny model's 256-id vocabulary: one id per character."""

    def encode(self, text, add_special_tokens=False):
        for tag, tid in (("<|vision_start|>", START), ("<|image_pad|>", IMAGE), ("<|vision_end|>", END)):
            text = text.replace(tag, chr(tid))
        return [ord(c) % 256 if ord(c) in (START, IMAGE, END) else ord(c) % 200 for c in text]


def test_image_trace_local_weights(tiny_qwen2_vl, chelsea, tmp_path):
    from inspector.steps import collapse_steps

    hf, _, _ = tiny_qwen2_vl
    path = tmp_path / "m"
    hf.save_pretrained(path)
    photo = tmp_path / "cat.png"
    _small(chelsea, 56, 84).save(photo)
    rt = load_runtime(ModelChoice(str(path), device="cpu"), image=True)
    logits, log = trace_vlm(rt.model, "hi", load_image_rgb(photo), _TinyTokenizer())
    ids = torch.tensor([_TinyTokenizer().encode(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|>" + "<|image_pad|>" * 6 + "<|vision_end|>hi<|im_end|>\n<|im_start|>assistant\n")])
    pv, grid = qwen2_vl_pixels(load_image_rgb(photo), load_spec(str(path)).vision)
    with torch.no_grad():
        want = hf(input_ids=ids, pixel_values=pv, image_grid_thw=grid, mm_token_type_ids=(ids == IMAGE).int()).logits
    assert rt.dtype == torch.float32  # auto: an image trace runs in float32 on every device
    assert logits.shape == want.shape and (logits - want).abs().max() < 1e-4
    assert log.shape("vision.merger.out") == (6, 64) and log.shape("positions") == (3, 1, ids.shape[1])
    assert len(collapse_steps(log.steps)) < len(log.steps)
    # the embedded Qwen tokenizer's ids do not fit this model: one clear line
    with pytest.raises(InspectError, match="image_token_id 250"):
        trace_model(ModelChoice(str(path), device="cpu"), TraceOptions(prompts=("hi",), image=str(photo)))


def test_image_trace_honours_dtype(tiny_qwen2_vl, chelsea, tmp_path):
    """--dtype bfloat16 on the image path: the VLM is loaded in bfloat16 and its logits follow
    transformers' model in bfloat16."""
    import copy

    hf, _, _ = tiny_qwen2_vl
    path = tmp_path / "m"
    hf.save_pretrained(path)
    image = _small(chelsea, 56, 84)
    rt = load_runtime(ModelChoice(str(path), device="cpu", dtype="bfloat16"), image=True)
    assert rt.dtype == torch.bfloat16 and {p.dtype for p in rt.model.parameters()} == {torch.bfloat16}
    logits, log = trace_vlm(rt.model, "hi", image, _TinyTokenizer())
    assert log.steps[-1].dtype == "bfloat16"
    ids = torch.tensor([_TinyTokenizer().encode(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|>" + "<|image_pad|>" * 6 + "<|vision_end|>hi<|im_end|>\n<|im_start|>assistant\n")])
    pv, grid = qwen2_vl_pixels(image, load_spec(str(path)).vision)
    half = copy.deepcopy(hf).to(torch.bfloat16)
    with torch.no_grad():
        want = half(input_ids=ids, pixel_values=pv.to(torch.bfloat16), image_grid_thw=grid,
                    mm_token_type_ids=(ids == IMAGE).int()).logits.float()
        full = hf(input_ids=ids, pixel_values=pv, image_grid_thw=grid, mm_token_type_ids=(ids == IMAGE).int()).logits
    err = (logits.float() - want).abs().max()
    assert err < 0.1 and err < 2 * (want - full).abs().max() + 1e-2, (err, (want - full).abs().max())


@pytest.mark.parametrize("kwargs,needle", [
    (dict(model="Qwen/Qwen2.5-0.5B-Instruct", image_size="224x224"), "text-only model"),
    (dict(model="Qwen/Qwen2-VL-2B-Instruct", image="/nonexistent/cat.jpg"), "cat.jpg: image file not found"),
    (dict(model="Qwen/Qwen2-VL-2B-Instruct", image="a.png", image_size="224x224"), "exactly one of --image"),
    (dict(model="Qwen/Qwen2-VL-2B-Instruct", image_size="224by224"), "--image-size: expected HEIGHTxWIDTH"),
    (dict(model="Qwen/Qwen2-VL-2B-Instruct", image_size="224x224", device="cpu"), "use --device meta"),
])
def test_image_trace_errors(kwargs, needle):
    image = {k: kwargs.pop(k) for k in ("image", "image_size") if k in kwargs}
    with pytest.raises(InspectError, match=re.escape(needle)):
        trace_model(ModelChoice(**{"device": "meta", **kwargs}), TraceOptions(prompts=("hi",), **image))
