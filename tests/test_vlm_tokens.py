"""`inspect tokens` for every VLM rule equals what transformers' own processor inserts.

For each preset, transformers' processor class is built offline with the published preprocessor
settings (tests/hf_processors.py) and run on blank images of several sizes: square, landscape,
portrait, very wide, very tall and tiny. The number of image tokens and of every marker token must
equal our walkthrough's.
"""

from __future__ import annotations

import copy

import pytest

from inspector.errors import InspectError
from inspector.image.rules import RULES, image_tokens
from inspector.image.tokens import parse_size
from inspector.spec.model import from_hf_config
from inspector.spec.presets import get_preset

pytest.importorskip("transformers")
import hf_processors as hp  # noqa: E402

SIZES = ["224x224", "800x1300", "1080x1920", "300x4000", "4000x300", "100x3000", "20x20"]


def spec_of(model: str, **pre_overrides):
    p = get_preset(model)
    pre = dict(p.preprocessor or {}, **pre_overrides)
    return from_hf_config(copy.deepcopy(dict(p.config)), p.hub_id, preprocessor=pre), p


def ours(model: str, size: str, **pre_overrides):
    spec, _ = spec_of(model, **pre_overrides)
    h, w = parse_size(size)
    return image_tokens(spec.vision, h, w, spec.text.hidden_size)


def specials(it) -> dict[str, int]:
    return dict(it.specials)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("pan_and_scan", [False, True], ids=["plain", "pan-and-scan"])
def test_gemma3(size, pan_and_scan):
    model = "google/gemma-3-4b-it"
    it = ours(model, size, do_pan_and_scan=pan_and_scan)
    ref = hp.count_gemma3(get_preset(model).preprocessor, *parse_size(size), pan_and_scan=pan_and_scan)
    assert it.tokens == ref["<image_soft_token>"]
    assert specials(it) == {"<start_of_image>": ref["<start_of_image>"], "<end_of_image>": ref["<end_of_image>"]}
    assert it.tiles == ref["_out"]["pixel_values"].shape[0]


@pytest.mark.parametrize("size", SIZES)
def test_llava_onevision(size):
    model = "llava-hf/llava-onevision-qwen2-7b-ov-hf"
    p = get_preset(model)
    ref = hp.count_llava_onevision(p.config, p.preprocessor, *parse_size(size))
    it = ours(model, size)
    assert it.tokens == ref["<image>"]
    assert it.tiles == ref["_out"]["pixel_values"].shape[1]


@pytest.mark.parametrize("size", SIZES)
def test_smolvlm(size):
    model = "HuggingFaceTB/SmolVLM-Instruct"
    spec, p = spec_of(model)
    it = ours(model, size)
    per_tile = it.tokens // it.tiles
    ref = hp.count_idefics3(p.preprocessor, per_tile, *parse_size(size))
    assert per_tile == 81  # the published processor_config.json's image_seq_len
    assert it.tokens == ref["<image>"]
    s = specials(it)
    assert (s["<fake_token_around_image>"], s["<row_r_col_c>"], s["<global-img>"]) == \
        (ref["<fake_token_around_image>"], ref["<row_r_col_c>"], ref["<global-img>"])
    assert it.tiles == ref["_out"]["pixel_values"].shape[1]


@pytest.mark.parametrize("size", SIZES)
def test_mllama(size):
    model = "meta-llama/Llama-3.2-11B-Vision-Instruct"
    ref = hp.count_mllama(get_preset(model).preprocessor, *parse_size(size))
    it = ours(model, size)
    assert (it.tokens, it.tiles) == (ref["<|image|>"], ref["tiles"])
    assert it.cross_states == ref["_out"]["pixel_values"].shape[2] * ((560 // 14) ** 2 + 1)  # tiles * (patches + cls)


@pytest.mark.parametrize("size", SIZES)
def test_mistral3_pixtral(size):
    model = "mistralai/Mistral-Small-3.1-24B-Instruct-2503"
    p = get_preset(model)
    h, w = parse_size(size)
    try:
        ref = hp.count_pixtral(p.preprocessor, p.config["spatial_merge_size"], h, w)
    except IndexError:  # the processor cannot expand an image smaller than one merged patch
        with pytest.raises(InspectError, match="patch merger"):
            ours(model, size)
        return
    it = ours(model, size)
    assert it.tokens == ref["[IMG]"]
    assert specials(it) == {"[IMG_BREAK]": ref["[IMG_BREAK]"], "[IMG_END]": ref["[IMG_END]"]}


@pytest.mark.parametrize("size", SIZES)
def test_llama4(size):
    model = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
    p = get_preset(model)
    v = p.config["vision_config"]
    ref = hp.count_llama4(p.preprocessor, v["pixel_shuffle_ratio"], v["patch_size"], *parse_size(size))
    it = ours(model, size)
    assert it.resized == ref["canvas"]
    assert it.tokens == ref["<|patch|>"]
    assert specials(it) == {k: ref[k] for k in specials(it)}


@pytest.mark.parametrize("size", SIZES)
def test_internvl3(size):
    model = "OpenGVLab/InternVL3-2B-hf"
    ref = hp.count_internvl(get_preset(model).preprocessor, *parse_size(size))
    it = ours(model, size)
    assert it.tokens == ref["<IMG_CONTEXT>"]
    assert specials(it) == {"<img>": ref["<img>"], "</img>": ref["</img>"]}


@pytest.mark.parametrize("size", SIZES[:-2] + ["56x56"])
@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen3-VL-8B-Instruct"])
def test_qwen_resize(model, size):
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    spec, p = spec_of(model)
    v = spec.vision
    pre = p.preprocessor
    h, w = parse_size(size)
    proc = Qwen2VLImageProcessorPil(size={"shortest_edge": v.image.min_pixels, "longest_edge": v.image.max_pixels},
                                    patch_size=pre["patch_size"], merge_size=pre["merge_size"], temporal_patch_size=2)
    out = proc(images=[Image.new("RGB", (w, h))], return_tensors="np")
    it = image_tokens(v, h, w, spec.text.hidden_size)
    assert tuple(int(x) for x in out["image_grid_thw"][0]) == it.grid
    assert it.tokens == out["pixel_values"].shape[0] // v.projector.merge_size ** 2


def test_every_rule_has_a_checked_preset():
    checked = {"qwen2_vl_resize", "internvl_tiles", "gemma3_pan_and_scan", "llava_anyres", "idefics3_split",
               "mllama_tiles", "pixtral_rows", "llama4_tiles",
               "gemma4_resize"}  # checked against its processor in tests/test_gemma4_vlm.py
    assert set(RULES) == checked
