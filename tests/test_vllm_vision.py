"""vLLM's profile run of a vision encoder (issue 27 item 4): largest image, items per dummy batch,
encoder peak and cache, `--images-per-prompt`, and PR 12126's Llama-3.2-11B-Vision log (V0)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app
from inspector.image.rules import largest_image
from inspector.memory import vllm_vision as vv
from inspector.memory.vllm import GIB, Device, ModelDims, VllmSettings, vllm_budget
from inspector.source import resolve

runner = CliRunner()
LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "vllm" / "logs"


def dims(name: str) -> ModelDims:
    spec = resolve(name).spec()
    d = spec.text.hidden_size
    return replace(ModelDims.from_text_spec(spec.text), vision=vv.from_vision_spec(spec.vision, largest_image(spec.vision, d), d))


# --------------------------------------------------------------------------- the largest image


def test_largest_image_qwen_is_max_pixels():
    """Qwen2.5-VL: max_pixels 12,845,056 = 16,384 x 28 x 28: 16,384 tokens, 65,536 patches (merge 2 x 2)."""
    vd = dims("qwen2.5-vl-7b").vision
    assert vd.tokens_per_item == 16384 and vd.seq_per_item == 65536 and vd.attn_seq == 65536


def test_largest_image_mllama_is_four_tiles():
    """Mllama: 4 tiles of 560 (40 x 40 patches + class token = 1,601, padded to 1,608): 6,432 positions;
    6,404 cross-attention states (4 x 1,601), vLLM's max tokens per item."""
    vd = dims("llama-3.2-11b-vision").vision
    assert (vd.seq_per_item, vd.tokens_per_item, vd.feature_layers, vd.layers) == (6432, 6404, 5, 40)
    assert vd.enc_dec and vd.mask_per_item


# --------------------------------------------------------------------------- items per dummy batch


def test_v1_items_follow_multimodal_budget():
    """MultiModalBudget: min(encoder budget // tokens, max_num_seqs x per prompt); budget >= one item."""
    qwen = dims("qwen2.5-vl-7b").vision
    assert vv.profile_items(qwen, "vllm-v1", (8192, 1024, 32768), None).items == 1  # 16,384 > 8,192: one item
    gemma = dims("gemma-3-4b-it").vision  # 256 tokens per image
    assert vv.profile_items(gemma, "vllm-v1", (8192, 1024, 32768), None).items == 32
    assert vv.profile_items(gemma, "vllm-v1", (8192, 2, 32768), 1).items == 2
    assert vv.profile_items(gemma, "vllm-v1", (8192, 2, 32768), 4).items == 8
    assert vv.profile_items(gemma, "vllm-v1", (8192, 2, 512), None).per_prompt == 2  # max_model_len // 256


def test_v0_items():
    """V0 enc-dec (Mllama): one image set per dummy sequence; decoder-only: seqs capped by the tokens."""
    assert vv.profile_items(dims("llama-3.2-11b-vision").vision, "vllm-v0", (65536, 128, 65536), None).items == 128
    assert vv.profile_items(dims("gemma-3-4b-it").vision, "vllm-v0", (2048, 256, 2048), None).items == 8


# --------------------------------------------------------------------------- the encoder peak, by hand


def test_encoder_peak_by_hand():
    vd = vv.VisionDims(hidden=8, layers=2, heads=2, intermediate=32, gated=False, image=(4, 4), seq_per_item=10,
                       attn_seq=10, tokens_per_item=5, text_hidden=16)
    ep = vv.encoder_peak(vd, 3)
    n = 30
    assert ep.layer_peak == max(n * 6 * 8 * 2, n * (2 * 8 + 2 * 32) * 2)
    assert ep.cache == 3 * 5 * 16 * 2 and ep.kept == 0
    eager = vv.encoder_peak(replace(vd, attention="eager"), 3)
    assert eager.layer_peak == max(n * 6 * 8 * 2 + 2 * 2 * 10 * 10 * 3 * 2, n * (2 * 8 + 2 * 32) * 2)
    gated = vv.encoder_peak(replace(vd, gated=True, feature_layers=2), 3)
    assert gated.layer_peak == n * (2 * 8 + 3 * 32) * 2 and gated.kept == 2 * n * 8 * 2


# --------------------------------------------------------------------------- PR 12126 (V0, H100)


def test_pr12126_llama32_vision_activation():
    """`vllm serve meta-llama/Llama-3.2-11B-Vision --max-model-len 65536 --max-num-seqs 128 --enforce-eager`
    (https://github.com/vllm-project/vllm/pull/12126): activation 36.63 GiB, KV 14.65 GiB, total 79.22.
    Ours: 128 four-tile images in one encoder call, 39.31 GiB: +2.68 GiB (+3.4 % of the GPU), KV 2.68 GiB
    short. Not within the issue's 2 %; no constant is fitted to it (see notes27-vlmpeak.md)."""
    text = (LOGS / "v0-pr12126-llama32-11b-vision-h100.log").read_text()
    assert "PyTorch activation peak memory takes 36.63GiB" in text
    s = VllmSettings(engine="vllm-v0", max_model_len=65536, max_num_seqs=128, enforce_eager=True)
    b = vllm_budget(dims("llama-3.2-11b-vision"), s, Device("NVIDIA H100 80GB HBM3", int(79.22 * GIB)),
                    int(19.86 * GIB))
    act, vision = b.term("activation_peak"), b.term("vision_encoder_profile")
    assert act.bytes == vision.bytes  # the encoder is the peak
    diff = act.bytes / GIB - 36.63
    assert 2.5 < diff < 2.9, diff
    assert abs(b.kv_cache_bytes / GIB - 14.65) / 79.22 < 0.035


def test_text_models_have_no_vision_term():
    b = vllm_budget(ModelDims(vocab=1000, hidden=64, intermediate=256, layers=2, heads=4, kv_heads=4, head_dim=16),
                    VllmSettings(), Device("x", 80 * GIB), GIB)
    assert "vision_encoder_profile" not in [t.name for t in b.terms]


# --------------------------------------------------------------------------- the CLI


def _json(*args: str) -> dict:
    r = runner.invoke(app, ["memory", *args, "-f", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_cli_images_per_prompt_scales_the_term():
    one = _json("gemma-3-4b-it", "--max-num-seqs", "2", "--images-per-prompt", "1")
    four = _json("gemma-3-4b-it", "--max-num-seqs", "2", "--images-per-prompt", "4")
    assert four["vision_encoder_profile_bytes"] > 3 * one["vision_encoder_profile_bytes"]
    assert (one["images_per_prompt"], four["images_per_prompt"]) == (1, 4)
    assert four["activation_peak_bytes"] >= four["vision_encoder_profile_bytes"]
    assert any(t["name"] == "vision_encoder_profile" for t in four["terms"])


def test_cli_vlm_table_shows_the_row():
    r = runner.invoke(app, ["memory", "qwen2.5-vl-7b", "-f", "md"])
    assert r.exit_code == 0, r.output
    assert "vision encoder profile" in r.stdout


@pytest.mark.parametrize("extra", [(), ("--train", "lora")])
def test_cli_images_per_prompt_refused(extra):
    r = runner.invoke(app, ["memory", "llama-3.1-8b", "--images-per-prompt", "2", *extra])
    assert r.exit_code == 2
    assert len(r.output.strip().splitlines()) == 1, r.output


def test_no_torch_and_no_image_layer_on_text_models():
    """Pure arithmetic; serving a text model does not import the image layer (cold start)."""
    code = ("import sys; import inspector.memory.vllm_vision, inspector.memory.vllm; "
            "assert 'torch' not in sys.modules; from typer.testing import CliRunner; from inspector.cli.app import app; "
            "r = CliRunner().invoke(app, ['memory', 'llama-3.1-8b', '-f', 'json']); assert r.exit_code == 0, r.output; "
            "assert 'inspector.image.rules' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_the_image_layer_no_encoder_term():
    """memory sits below image: a caller that passes no largest_image gets the text budget only."""
    from inspector.memory.estimate import Hardware, MemoryRequest, ServeRequest, estimate

    est = estimate(MemoryRequest(model="qwen2.5-vl-7b", hardware=Hardware(), serve=ServeRequest(), train=None))
    assert "vision_encoder_profile" not in [t.name for t in est.serving.budget.terms]
