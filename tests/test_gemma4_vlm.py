"""Gemma 4's multimodal wrapper (`gemma4`): its ViT, audio tower and projections against transformers 5.25 on
the meta device (names, shapes, parameter totals), its image-token rule against transformers' own resize
function, google/gemma-4-31B-it's preset against its published checkpoint statistics, and the commands that
answer natively (params, config, memory, report, tokens, verify, a text trace) or refuse in one line (an
image trace: the towers have no native forward)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app
from inspector.inventory.accounting import account
from inspector.spec.model import from_hf_config

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
g4 = pytest.importorskip("transformers.models.gemma4")

LAYERS = ["sliding_attention", "full_attention"]
TINY_TEXT = dict(vocab_size=101, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=8, global_head_dim=16, layer_types=LAYERS, sliding_window=4,
                 hidden_size_per_layer_input=4, vocab_size_per_layer_input=101, max_position_embeddings=64)
# Every switch off its default: clipped linears and standardize on in the ViT, kv heads below heads, d_h not
# d / heads; the audio tower's clipping off, other channels and kernel
TINY_VISION = dict(hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=6, patch_size=4, position_embedding_size=32,
                   use_clipped_linears=True, standardize=True)
TINY_AUDIO = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, subsampling_conv_channels=[8, 4],
                  conv_kernel_size=3, output_proj_dims=12, use_clipped_linears=False)


def _configs() -> dict:
    c = g4
    return {
        "default": c.Gemma4Config(),
        "vision-audio-defaults": c.Gemma4Config(vision_config=c.Gemma4VisionConfig().to_dict(),
                                                audio_config=c.Gemma4AudioConfig().to_dict()),
        "tiny-options": c.Gemma4Config(text_config=TINY_TEXT, vision_config=TINY_VISION, audio_config=TINY_AUDIO),
    }


def as_file(config) -> dict:
    """The config.json transformers writes for a config object."""
    return json.loads(config.to_json_string())


@pytest.mark.parametrize("label", ["default", "vision-audio-defaults", "tiny-options"])
def test_names_shapes_and_totals_equal_transformers_on_meta(label):
    config = _configs()[label]
    with torch.device("meta"):
        model = transformers.Gemma4ForConditionalGeneration(config)
    theirs = {name: tuple(t.shape) for name, t in model.state_dict().items() if name != "lm_head.weight"}
    acc = account(from_hf_config(as_file(config), label))
    ours = {e.name: tuple(e.shape) for e in acc.entries if e.stored}
    assert ours == theirs
    assert acc.totals.total_params == sum(p.numel() for p in model.parameters())
    assert not acc.spec.ignored_keys
    buffers = {e.name for e in acc.entries if not e.parameter}
    assert buffers <= set(theirs) and not buffers & {n for n, _ in model.named_parameters()}


@pytest.mark.parametrize("height, width, budget", [(224, 224, 280), (800, 1300, 280), (4000, 3000, 280),
                                                   (1080, 1920, 70), (16, 4000, 280), (4000, 20, 1120),
                                                   (333, 517, 560)])
def test_image_tokens_equal_the_image_processor(height, width, budget):
    """Gemma 4's image tokens: transformers' own image processor (PIL backend, patch 16, pooling 3) on a blank
    image of each size, its num_soft_tokens_per_image and patch count."""
    from PIL import Image
    from transformers.models.gemma4.image_processing_pil_gemma4 import Gemma4ImageProcessorPil

    from inspector.image.rules import image_tokens

    cfg = as_file(_configs()["vision-audio-defaults"])
    cfg["vision_soft_tokens_per_image"] = budget
    spec = from_hf_config(cfg, "gemma4")
    out = Gemma4ImageProcessorPil(max_soft_tokens=budget)(images=[Image.new("RGB", (width, height))],
                                                          return_tensors="np")
    it = image_tokens(spec.vision, height, width, spec.text.hidden_size)
    assert it.tokens == int(out["num_soft_tokens_per_image"][0]) <= budget
    assert it.patches == int((out["image_position_ids"][0] >= 0).all(-1).sum())


def test_gemma_4_31b_preset_equals_its_published_checkpoint():
    """google/gemma-4-31B-it (preset from the public model-information report that prints its config and
    checkpoint statistics): 1,188 stored tensors and 31,273,088,876 elements, as published; its parameters
    are those less the 60 layer scalars and the two standardization vectors (buffers)."""
    from inspector.source import resolve

    acc = account(resolve("google/gemma-4-31B-it").spec())
    stored = [e for e in acc.entries if e.stored]
    assert len(stored) == 1188 and sum(e.numel for e in stored) == 31_273_088_876
    assert acc.totals.total_params == 31_273_088_876 - 60 - 2 * 1152
    assert not acc.spec.ignored_keys


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """The tiny config with both towers, saved by transformers (config.json + safetensors)."""
    path = tmp_path_factory.mktemp("gemma4")
    torch.manual_seed(0)
    model = transformers.Gemma4ForConditionalGeneration(_configs()["tiny-options"])
    model.save_pretrained(path, safe_serialization=True)
    return str(path)


def test_native_commands_on_a_gemma4_checkpoint(tiny_checkpoint, tmp_path):
    runner = CliRunner()
    for args in (["params", tiny_checkpoint, "-f", "json"], ["config", tiny_checkpoint],
                 ["memory", tiny_checkpoint, "--gpu", "H100-80GB"], ["verify", tiny_checkpoint],
                 ["tokens", tiny_checkpoint, "--image-size", "800x1300"],
                 ["report", tiny_checkpoint, "-o", str(tmp_path / "g4.html")],
                 ["trace", "-m", tiny_checkpoint, "--device", "meta", "--seq-len", "8"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output[-2000:])
        if args[0] == "params":
            components = json.loads(result.stdout)["components"]
            assert set(components) == {"vision_encoder", "projector", "audio_encoder", "language_model"}
        if args[0] == "config":
            assert "(2, 32, 16)" in result.output and "USM conformer" in result.output
    result = runner.invoke(app, ["trace", "Hi", "-m", tiny_checkpoint, "--device", "meta",
                                 "--image-size", "64x64"])
    assert result.exit_code == 2 and "no native forward of its vision tower" in result.output


def test_verify_accepts_the_kv_shared_layers_k_v_that_checkpoints_store(tmp_path):
    """Published Gemma 4 E-series checkpoints store k_proj / v_proj / k_norm of their KV-shared layers, which
    transformers drops on load (Gemma4TextModel._keys_to_ignore_on_load_unexpected): verify takes them as
    optional, absent (a transformers save) or present with the shapes of the layer's own projections."""
    from safetensors.torch import load_file, save_file

    text = {**TINY_TEXT, "num_hidden_layers": 4, "layer_types": LAYERS * 2, "num_kv_shared_layers": 2}
    model = transformers.Gemma4ForConditionalGeneration(g4.Gemma4Config(text_config=text))
    model.save_pretrained(tmp_path, safe_serialization=True)
    ignored = set(model.model.language_model._keys_to_ignore_on_load_unexpected)
    runner = CliRunner()
    result = runner.invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 0 and "6 optional tensors" in result.output, result.output[-1500:]
    weights = load_file(tmp_path / "model.safetensors")
    for i, kind in ((2, 0), (3, 1)):  # layer i shares with layer kind (same type)
        for name in ("k_proj", "v_proj", "k_norm"):
            assert f"layers.{i}.self_attn.{name}" in ignored
            weights[f"model.language_model.layers.{i}.self_attn.{name}.weight"] = \
                weights[f"model.language_model.layers.{kind}.self_attn.{name}.weight"].clone()
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    result = runner.invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 0 and "optional tensors" not in result.output, result.output[-1500:]


@pytest.mark.parametrize("audio, message", [
    ({"num_attention_heads": 3}, "num_attention_heads' \\(3\\) does not divide 'audio_config.hidden_size' \\(16\\)"),
    ({"subsampling_conv_channels": [8]}, "subsampling_conv_channels' must be two positive channel counts"),
    ({"use_clipped_linears": "yes"}, "use_clipped_linears' must be true or false"),
], ids=["heads", "channels", "clip-switch"])
def test_bad_audio_config_one_line(audio, message):
    from inspector.errors import InspectError

    cfg = as_file(_configs()["tiny-options"])
    cfg["audio_config"].update(audio)
    with pytest.raises(InspectError, match=message):
        from_hf_config(cfg, "bad")
