"""The image trace of every VLM preset on the meta device: every step's shape from pixels to logits.

On meta nothing is allocated, so the real sizes run in seconds. The reference tower's projector must
produce exactly the number of image tokens the image-token rule (and so transformers' processor)
gives, for very wide and very tall images (tiny ones are checked against the processors in
test_vlm_tokens); the whole trace at 600x1000 must end in (1, n, vocabulary) logits.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from inspector.errors import InspectError  # noqa: E402
from inspector.image.layout import ImageLayout  # noqa: E402
from inspector.image.preprocess import synthetic_image  # noqa: E402
from inspector.image.rules import image_pixels, image_tokens  # noqa: E402
from inspector.reference.vision import build_vision  # noqa: E402
from inspector.runtime.prepare import ModelChoice  # noqa: E402
from inspector.runtime.tracing import TraceOptions, trace_model  # noqa: E402
from inspector.source import load_spec  # noqa: E402
from inspector.steps import collapse_steps  # noqa: E402

PRESETS = ["Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen3-VL-8B-Instruct", "google/gemma-3-4b-it",
           "llava-hf/llava-onevision-qwen2-7b-ov-hf", "OpenGVLab/InternVL3-2B-hf", "HuggingFaceTB/SmolVLM-Instruct",
           "meta-llama/Llama-3.2-11B-Vision-Instruct", "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
           "meta-llama/Llama-4-Scout-17B-16E-Instruct"]
SIZES = ["300x2400", "2400x300"]  # very wide, very tall (the trace test runs 600x1000; tiny sizes: test_vlm_tokens)


def image_trace(model: str, prompt: str, image_size: str, device: str = "meta"):
    """(spec, logits, step log) of `inspect trace PROMPT -m MODEL --image-size HxW --device meta`."""
    done = trace_model(ModelChoice(model, device=device), TraceOptions(prompts=(prompt,), image_size=image_size))
    return done.spec, done.logits, done.log


@pytest.fixture(scope="module")
def towers():
    return {}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("model", PRESETS)
def test_projector_rows_equal_the_token_rule(model, size, towers):
    spec = load_spec(model)
    v = spec.vision
    if model not in towers:
        towers[model] = build_vision(v, device="meta")
    h, w = (int(x) for x in size.split("x"))
    image = synthetic_image(h, w)
    try:
        it = image_tokens(v, h, w, spec.text.hidden_size)
    except InspectError:  # Pixtral refuses images smaller than one merged patch, as its processor does
        return
    pv, grid, layout = image_pixels(image, v)
    pv = pv.to("meta")  # the tower was built on meta: shapes only
    with torch.no_grad():
        feats = towers[model].features(pv, layout, grid)
    rows = feats.reshape(-1, spec.text.hidden_size).shape[0]
    assert rows == (it.cross_states or it.tokens)


@pytest.mark.parametrize("model", [m for m in PRESETS if "Llama-4" not in m])
def test_meta_trace_pixels_to_logits(model):
    spec, logits, log = image_trace(model, "Describe the image.", image_size="600x1000", device="meta")
    n = log.shape("tokens.expanded")[1]
    assert logits.shape == (1, n, spec.text.vocab_size)
    names = [r.name for r in collapse_steps(log.steps)]
    assert names[0] == "image.rgb" and names[-1] == "text.lm_head"
    assert any(x.startswith("vision.blocks.1-") for x in names) or spec.vision.encoder.depth == 1
    assert "image_features" in names


def test_llama4_language_model_waits_for_the_moe_reference():
    """Llama 4's tower runs (above); its LLM is mixture-of-experts, which the text reference model
    builds once it has an MoE forward: until then the trace says so in one line."""
    try:
        image_trace("meta-llama/Llama-4-Scout-17B-16E-Instruct", "hi", image_size="336x336", device="meta")
    except InspectError as exc:
        assert "mixture-of-experts" in str(exc)


def test_gemma3_trace_shows_pooling_and_scaled_embeddings():
    _, _, log = image_trace("google/gemma-3-4b-it", "hi", image_size="896x896", device="meta")
    assert log.shape("image.normalize") == (1, 3, 896, 896)
    assert log.shape("vision.patches") == (1, 4096, 1152)
    assert log.shape("vision.merger.grouped") == (1, 256, 1152)  # 64x64 patches pooled 4x4
    assert log.shape("image_features") == (256, 2560)


def test_qwen2_5_vl_trace_shows_windows_and_gated_mlp():
    _, _, log = image_trace("Qwen/Qwen2.5-VL-7B-Instruct", "hi", image_size="448x448", device="meta")
    assert log.shape("vision.windows") == (1024, 1280)
    assert log.shape("vision.blocks.0.mlp.gate") == (1, 1024, 3420)
    assert log.shape("image_features") == (256, 3584)


def test_mllama_trace_cross_attends():
    _, _, log = image_trace("meta-llama/Llama-3.2-11B-Vision-Instruct", "hi", image_size="800x1300", device="meta")
    assert log.shape("vision.selected") == (4, 1601, 7680)  # last + 5 intermediate layers
    assert log.shape("text.layers.3.attn.probs")[-1] == 4 * 1601  # text tokens over the image states
    assert log.shape("tokens.expanded") == log.shape("tokens.template")  # one <|image|> token


def test_layout_default_is_harmless():
    assert ImageLayout((1, 1)).tile_count == 1
