"""Vision-language models: Qwen2-VL and InternVL2 in params/config, and image-token accounting.

Independent references: transformers' Qwen2VLForConditionalGeneration and InternVLForConditionalGeneration
built on the meta device (names mapped back to the published checkpoint names), transformers'
`smart_resize`, and the numbers of seed 003's Table 2.2.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from inspector.inventory.accounting import account
from inspector.errors import InspectError
from inspector.source import load_spec
from inspector.image.rules import image_tokens
from inspector.image.tokens import closest_grid, parse_size
from conftest import REFERENCE_CONFIGS
from inspector.spec.presets import get_preset
from inspector.spec.model import from_hf_config
from inspector.inventory.model import inventory

QWEN2B, QWEN7B, INTERN2B = "Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2-VL-7B-Instruct", "OpenGVLab/InternVL2-2B"


def shared_config(model: str, name: str = "config.json") -> dict:
    return json.loads((REFERENCE_CONFIGS / model.replace("/", "__") / name).read_text())


def preset_spec(model: str):
    p = get_preset(model)
    return from_hf_config(copy.deepcopy(dict(p.config)), p.hub_id, preprocessor=p.preprocessor)


TINY_QWEN2_VL = {
    "model_type": "qwen2_vl", "architectures": ["Qwen2VLForConditionalGeneration"],
    "vocab_size": 160, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": False,
    "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
    "vision_config": {"depth": 2, "embed_dim": 32, "mlp_ratio": 2, "num_heads": 4, "in_chans": 3,
                      "hidden_size": 64, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
}


# --------------------------------------------------------------------------- Qwen2-VL vs transformers


def _transformers_saved(cfg: dict):
    """{saved name: shape} of Qwen2VLForConditionalGeneration on meta, tied keys as save_pretrained drops them."""
    torch = pytest.importorskip("torch")
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.core_model_loading import revert_weight_conversion

    with torch.device("meta"):
        model = Qwen2VLForConditionalGeneration(Qwen2VLConfig(**copy.deepcopy(cfg)))
    saved = revert_weight_conversion(model, model.state_dict())  # transformers' own in-memory -> checkpoint rules
    shapes = {k: tuple(v.shape) for k, v in saved.items()}
    tied = set()
    if cfg.get("tie_word_embeddings"):
        tied = set(revert_weight_conversion(model, {k: None for k in model._tied_weights_keys}))
    n_params = sum(p.numel() for p in model.parameters())  # shared parameters counted once
    return shapes, tied, n_params


@pytest.mark.parametrize("which", ["2B", "7B", "tiny"])
def test_qwen2_vl_matches_transformers(which):
    if which == "tiny":
        cfg, spec = TINY_QWEN2_VL, from_hf_config(copy.deepcopy(TINY_QWEN2_VL), "tiny")
    else:
        model = QWEN2B if which == "2B" else QWEN7B
        cfg = shared_config(model)
        spec = from_hf_config(copy.deepcopy(cfg), model, preprocessor=shared_config(model, "preprocessor_config.json"))
        assert preset_spec(model) == spec  # the preset carries the same facts as the real files
    shapes, tied, n_params = _transformers_saved(cfg)
    entries = inventory(spec)
    ours_all = {e.name: e.shape for e in entries}
    ours_stored = {e.name: e.shape for e in entries if e.stored}
    assert ours_all == shapes
    assert set(ours_all) - set(ours_stored) == tied
    acc = account(spec)
    assert acc.totals.total_params == n_params
    assert acc.totals.total_params_untied == sum(e.numel for e in entries)
    assert all(n.startswith(("visual.", "model.", "lm_head.")) for n in ours_all)


def test_qwen2_vl_2b_figures():
    acc = account(preset_spec(QWEN2B))
    c = acc.totals.components
    assert c["vision_encoder"] + c["projector"] == 665_271_296
    assert acc.totals.total_params == 2_208_985_600
    assert acc.totals.total_params_untied == 2_442_359_296  # seed prints 7,442,359,296 (typo)
    rows = {(r.component, r.name): (r.params, r.repeat) for r in acc.rows}
    assert rows[("vision_encoder", "Convolution")] == (1_505_280, 1)
    assert rows[("vision_encoder", "Attention layer")] == (6_558_720, 32)
    assert rows[("vision_encoder", "MLP layer")] == (13_113_600, 32)
    assert rows[("vision_encoder", "Layer norm (pre-attention)")] == (2_560, 32)
    assert rows[("projector", "Layer norm (merger)")] == (2_560, 1)
    assert rows[("projector", "Merger MLP")] == (34_085_376, 1)
    assert ("vision_encoder", "Class embedding") not in rows


# --------------------------------------------------------------------------- InternVL2


TABLE_2_2_INTERNVL = {
    ("vision_encoder", "Convolution"): (603_136, 1),
    ("vision_encoder", "Class embedding"): (1_024, 1),
    ("vision_encoder", "Positional embedding"): (1_049_600, 1),
    ("vision_encoder", "Layer norm (pre-attention)"): (2_048, 24),
    ("vision_encoder", "Attention layer"): (4_198_400, 24),
    ("vision_encoder", "Residual scale (attention)"): (1_024, 24),
    ("vision_encoder", "Layer norm (pre-MLP)"): (2_048, 24),
    ("vision_encoder", "MLP layer"): (8_393_728, 24),
    ("vision_encoder", "Residual scale (MLP)"): (1_024, 24),
    ("projector", "Layer norm (merger)"): (8_192, 1),
    ("projector", "Merger MLP"): (12_587_008, 1),
}


def test_internvl2_2b_table_2_2_rows():
    acc = account(preset_spec(INTERN2B))
    rows = {(r.component, r.name): (r.params, r.repeat) for r in acc.rows if r.component != "language_model"}
    assert rows == TABLE_2_2_INTERNVL
    c = acc.totals.components
    assert c["vision_encoder"] + c["projector"] == 316_607_488
    assert c["language_model"] == 1_889_146_880
    assert acc.totals.total_params == acc.totals.total_params_untied == 2_205_754_368
    assert f"{acc.totals.total_params / 1e9:.2f}" == "2.21"  # the published size


def test_internvl2_2b_checkpoint_names():
    names = {e.name: e.shape for e in inventory(preset_spec(INTERN2B))}
    expected = {
        "vision_model.embeddings.class_embedding": (1, 1, 1024),
        "vision_model.embeddings.patch_embedding.weight": (1024, 3, 14, 14),
        "vision_model.embeddings.patch_embedding.bias": (1024,),
        "vision_model.embeddings.position_embedding": (1, 1025, 1024),
        "vision_model.encoder.layers.23.norm1.weight": (1024,),
        "vision_model.encoder.layers.23.norm2.bias": (1024,),
        "vision_model.encoder.layers.0.attn.qkv.weight": (3072, 1024),
        "vision_model.encoder.layers.0.attn.qkv.bias": (3072,),
        "vision_model.encoder.layers.0.attn.proj.weight": (1024, 1024),
        "vision_model.encoder.layers.0.attn.proj.bias": (1024,),
        "vision_model.encoder.layers.0.ls1": (1024,),
        "vision_model.encoder.layers.0.ls2": (1024,),
        "vision_model.encoder.layers.0.mlp.fc1.weight": (4096, 1024),
        "vision_model.encoder.layers.0.mlp.fc2.bias": (1024,),
        "mlp1.0.weight": (4096,), "mlp1.0.bias": (4096,),
        "mlp1.1.weight": (2048, 4096), "mlp1.1.bias": (2048,),
        "mlp1.3.weight": (2048, 2048), "mlp1.3.bias": (2048,),
        "language_model.model.tok_embeddings.weight": (92553, 2048),
        "language_model.model.layers.0.attention.wqkv.weight": (4096, 2048),
        "language_model.model.layers.0.attention.wo.weight": (2048, 2048),
        "language_model.model.layers.0.feed_forward.w1.weight": (8192, 2048),
        "language_model.model.layers.0.feed_forward.w2.weight": (2048, 8192),
        "language_model.model.layers.0.feed_forward.w3.weight": (8192, 2048),
        "language_model.model.layers.0.attention_norm.weight": (2048,),
        "language_model.model.layers.0.ffn_norm.weight": (2048,),
        "language_model.model.norm.weight": (2048,),
        "language_model.output.weight": (92553, 2048),
    }
    assert {k: names.get(k) for k in expected} == expected
    assert not any("q_norm" in n or "bias" in n and n.startswith("language_model") for n in names)
    assert len(names) == 4 + 24 * 14 + 6 + 2 + 24 * 7 + 1


def test_internvl2_2b_preset_matches_shared_config():
    cfg = shared_config(INTERN2B)
    preset = get_preset(INTERN2B).config

    def check(p, c, path):
        for k, v in p.items():
            assert k in c, f"{path}{k}"
            if isinstance(v, dict):
                check(v, c[k], f"{path}{k}.")
            else:
                assert c[k] == v, f"{path}{k}"

    check(preset, cfg, "")
    assert preset_spec(INTERN2B) == from_hf_config(cfg, INTERN2B)


def _tiny_internvl(llm: dict, **vision) -> dict:
    v = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
         "image_size": 56, "patch_size": 14, "num_channels": 3, "qkv_bias": True, "norm_type": "layer_norm",
         "qk_normalization": False, "hidden_act": "gelu", **vision}
    return {"model_type": "internvl_chat", "architectures": ["InternVLChatModel"], "downsample_ratio": 0.5,
            "force_image_size": 56, "max_dynamic_patch": 6, "use_thumbnail": True, "dynamic_image_size": True,
            "llm_config": llm, "vision_config": v}


TINY_QWEN2_LLM = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": 128,
                  "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
                  "num_key_value_heads": 2, "tie_word_embeddings": False}


def _hf_internvl_as_original(cfg: dict) -> dict[str, tuple[int, ...]]:
    """transformers' native InternVL on meta, its names written back in the original InternVL2 layout
    (q/k/v concatenated into qkv, as the original checkpoints store them)."""
    torch = pytest.importorskip("torch")
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    v = cfg["vision_config"]
    vc = dict(hidden_size=v["hidden_size"], num_hidden_layers=v["num_hidden_layers"],
              num_attention_heads=v["num_attention_heads"], intermediate_size=v["intermediate_size"],
              image_size=[v["image_size"]] * 2, patch_size=[v["patch_size"]] * 2, attention_bias=v["qkv_bias"],
              use_qk_norm=v["qk_normalization"], norm_type=v["norm_type"], hidden_act=v["hidden_act"])
    tc = {k: val for k, val in cfg["llm_config"].items() if k != "architectures"}
    conf = InternVLConfig(vision_config=vc, text_config=tc, downsample_ratio=cfg["downsample_ratio"],
                          projector_hidden_act="gelu")
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(conf)
    rules = [  # facts of the published InternVL2 -> transformers conversion
        ("model.vision_tower.embeddings.cls_token", "vision_model.embeddings.class_embedding"),
        ("model.vision_tower.embeddings.position_embeddings", "vision_model.embeddings.position_embedding"),
        ("model.vision_tower.embeddings.patch_embeddings.projection", "vision_model.embeddings.patch_embedding"),
        ("model.vision_tower.encoder.layer.", "vision_model.encoder.layers."),
        (".lambda_1", ".ls1"), (".lambda_2", ".ls2"), (".layernorm_before", ".norm1"),
        (".layernorm_after", ".norm2"), (".attention.projection_layer", ".attn.proj"),
        (".attention.q_norm", ".attn.q_norm"), (".attention.k_norm", ".attn.k_norm"),
        (".attention.q_proj", ".attn.qkv"), (".attention.k_proj", ".attn.qkv"), (".attention.v_proj", ".attn.qkv"),
        ("model.multi_modal_projector.layer_norm", "mlp1.0"), ("model.multi_modal_projector.linear_1", "mlp1.1"),
        ("model.multi_modal_projector.linear_2", "mlp1.3"),
        ("model.language_model.", "language_model.model."), ("lm_head.", "language_model.lm_head."),
    ]
    out: dict[str, tuple[int, ...]] = {}
    for name, t in model.state_dict().items():
        for a, b in rules:
            if name.startswith(a) or (a.startswith(".") and a + "." in name + "."):
                name = name.replace(a, b, 1)
        shape = tuple(t.shape)
        if name in out:  # q, k, v -> qkv: stacked along dim 0
            shape = (out[name][0] + shape[0], *shape[1:])
        out[name] = shape
    return out


@pytest.mark.parametrize("vision", [{}, {"norm_type": "rms_norm", "qk_normalization": True, "qkv_bias": False}],
                         ids=["layer_norm", "rms_norm+qk_norm"])
def test_internvl_qwen2_llm_matches_transformers_native_internvl(vision):
    cfg = _tiny_internvl(TINY_QWEN2_LLM, **vision)
    spec = from_hf_config(copy.deepcopy(cfg), "tiny-internvl")
    ours = {e.name: e.shape for e in inventory(spec)}
    assert ours == _hf_internvl_as_original(cfg)
    assert "language_model.model.embed_tokens.weight" in ours and "language_model.lm_head.weight" in ours


def test_internvl_rms_norm_and_qk_norm_rows():
    cfg = _tiny_internvl(TINY_QWEN2_LLM, norm_type="rms_norm", qk_normalization=True)
    names = {e.name: e.shape for e in inventory(from_hf_config(cfg, "t"))}
    assert names["vision_model.encoder.layers.0.attn.q_norm.weight"] == (32,)
    assert names["vision_model.encoder.layers.0.attn.k_norm.weight"] == (32,)
    assert "vision_model.encoder.layers.0.norm1.bias" not in names
    assert "vision_model.encoder.layers.0.attn.qkv.bias" in names
    assert names["mlp1.0.bias"] == (128,)  # the projector's LayerNorm always has a bias
    assert names["vision_model.embeddings.position_embedding"] == (1, 17, 32)
    rows = {r.name: r.params for r in account(from_hf_config(cfg, "t")).rows if r.component == "vision_encoder"}
    assert rows["Attention layer"] == 3 * 32 * 32 + 96 + 32 * 32 + 32 + 2 * 32
    assert rows["RMS norm (pre-attention)"] == 32  # the row names the norm the config asks for


# --------------------------------------------------------------------------- image tokens


def test_seed_step5_224():
    it = image_tokens(preset_spec(QWEN2B).vision, 224, 224, 1536)
    assert (it.grid, it.patches, it.tokens) == ((1, 16, 16), 256, 64)


@pytest.mark.parametrize("size", ["224x224", "1080x1920", "100x3000", "20x20", "4000x4000", "5000x3000",
                                  "333x517", "56x11200"])
def test_qwen2_vl_resize_matches_transformers(size):
    # the PIL flavour of the processor module (the torchvision one needs torchvision)
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    h, w = parse_size(size)
    spec = preset_spec(QWEN2B)
    pre = get_preset(QWEN2B).preprocessor
    ref = smart_resize(h, w, factor=pre["patch_size"] * pre["merge_size"],
                       min_pixels=pre["min_pixels"], max_pixels=pre["max_pixels"])
    it = image_tokens(spec.vision, h, w, 1536)
    assert it.resized == ref
    assert it.grid == (1, ref[0] // 14, ref[1] // 14)
    assert it.tokens == ref[0] * ref[1] // (28 * 28)
    assert it.resized[0] * it.resized[1] <= pre["max_pixels"]


@pytest.mark.parametrize("size", ["224x224", "333x517", "20x90"])
def test_qwen2_vl_grid_matches_transformers_image_processor(size):
    """End to end: transformers' Qwen2-VL image processor on a blank image of that size."""
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    h, w = parse_size(size)
    pre = get_preset(QWEN2B).preprocessor
    proc = Qwen2VLImageProcessorPil(size={"shortest_edge": pre["min_pixels"], "longest_edge": pre["max_pixels"]},
                                    patch_size=14, merge_size=2, temporal_patch_size=2)
    out = proc(images=[Image.new("RGB", (w, h))], return_tensors="np")
    it = image_tokens(preset_spec(QWEN2B).vision, h, w, 1536)
    assert tuple(int(x) for x in out["image_grid_thw"][0]) == it.grid
    assert out["pixel_values"].shape == (it.patches, 3 * 2 * 14 * 14)


def test_qwen2_vl_defaults_without_preprocessor():
    cfg = shared_config(QWEN2B)
    v = from_hf_config(cfg, QWEN2B).vision
    assert (v.image.min_pixels, v.image.max_pixels) == (3136, 12845056) and "default" in v.image.pixels_source


def test_qwen2_vl_aspect_limit():
    with pytest.raises(InspectError, match="aspect ratio"):
        image_tokens(preset_spec(QWEN2B).vision, 10, 3000, 1536)


@pytest.mark.parametrize("size,grid,tiles,tokens", [
    ("448x448", (1, 1), 1, 256),       # one tile: no thumbnail
    ("224x224", (1, 1), 1, 256),
    ("800x1300", (3, 2), 7, 1792),     # W/H = 1.625: closest allowed is 3/2 (5/3 has 15 > 12 tiles)
    ("448x896", (2, 1), 3, 768),       # 2 tiles + thumbnail
    ("1000x250", (1, 4), 5, 1280),     # tall: W/H = 0.25 = 1/4
    ("896x896", (2, 2), 5, 1280),      # tie between 1x1, 2x2, 3x3: area 802,816 > 0.5*448^2*4 -> 2x2, not 3x3
    ("3000x3000", (3, 3), 10, 2560),   # large square: the tie goes to the larger grids
])
def test_internvl_tiling(size, grid, tiles, tokens):
    h, w = parse_size(size)
    it = image_tokens(preset_spec(INTERN2B).vision, h, w, 2048)
    assert (it.tile_grid, it.tiles, it.tokens) == (grid, tiles, tokens)
    assert it.patches == tiles * 1024


def test_internvl_tie_rule_directly():
    assert closest_grid(448, 448, 448, 1, 12) == (1, 1)
    assert closest_grid(900, 900, 448, 1, 12) == (2, 2)  # 810,000 > 0.5*448^2*4 = 401,408 but < 903,168 (3x3)
    assert closest_grid(1400, 1400, 448, 1, 12) == (3, 3)


# --------------------------------------------------------------------------- CLI


def _run(args):
    from typer.testing import CliRunner

    from inspector.cli.app import app

    return CliRunner().invoke(app, args)


def test_cli_params_side_by_side_md_and_json():
    r = _run(["params", QWEN2B, INTERN2B, "--format", "md"])
    assert r.exit_code == 0, r.output
    for text in ("### Vision encoder", "### Projector / merger", "### Language model", "665,271,296",
                 "316,607,488", "2,208,985,600", "2,442,359,296", "2,205,754,368", "vision_model.embeddings.class_embedding"):
        assert text in r.output
    # Table 2.2's row order survives the side-by-side merge
    order = [r.output.index(f"| {name}") for name in
             ("Convolution", "Class embedding", "Positional embedding", "Layer norm (pre-attention)",
              "Attention layer", "Residual scale (attention)", "Layer norm (pre-MLP)", "MLP layer",
              "Residual scale (MLP)", "Layer norm (merger)", "Merger MLP")]
    assert order == sorted(order)
    r = _run(["params", QWEN2B, INTERN2B, "--format", "json"])
    data = json.loads(r.output)
    assert [sorted(d["components"]) for d in data] == [["language_model", "projector", "vision_encoder"]] * 2
    assert data[0]["components"]["vision_encoder"] + data[0]["components"]["projector"] == 665_271_296
    assert data[1]["total_params"] == 2_205_754_368


def test_cli_config_table_2_1():
    r = _run(["config", QWEN2B, INTERN2B, "--format", "json"])
    assert r.exit_code == 0, r.output
    q, i = (d["vision"] for d in json.loads(r.output))
    assert (q["hidden_size"], q["class_token"], q["learned_pos"], q["patch_size"], q["temporal_patch_size"],
            q["merge_size"], q["depth"], q["layer_scale"]) == (1280, False, False, 14, 2, 2, 32, False)
    assert (i["hidden_size"], i["class_token"], i["learned_pos"], i["patch_size"], i["temporal_patch_size"],
            i["merge_size"], i["depth"], i["layer_scale"]) == (1024, True, True, 14, 1, 2, 24, True)
    md = _run(["config", QWEN2B, INTERN2B, "--format", "md"]).output
    assert "Table 2.1 of Implementations of Large Language Models" in md and "Scaling residual" in md


def test_cli_tokens():
    r = _run(["tokens", QWEN2B, INTERN2B, "--image-size", "224x224", "--format", "json"])
    assert r.exit_code == 0, r.output
    q, i = json.loads(r.output)
    assert (q["patches"], q["tokens"], i["tokens"]) == (256, 64, 256)
    r = _run(["tokens", QWEN2B, "--image-size", "224by224"])
    assert r.exit_code == 2 and "--image-size" in r.output


def _write_cfg(tmp_path, cfg) -> str:
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return str(tmp_path)


@pytest.mark.parametrize("mutate,needle", [
    (lambda c: c["vision_config"].pop("depth"), "vision_config.depth' is missing"),
    (lambda c: c["vision_config"].__setitem__("depth", "32"), "vision_config.depth' must be an integer"),
    (lambda c: c.__setitem__("vision_config", [1, 2]), "vision_config must be a JSON object"),
    (lambda c: c.pop("vision_config"), "vision_config' is missing"),
])
def test_cli_malformed_qwen2_vl(tmp_path, mutate, needle):
    cfg = copy.deepcopy(TINY_QWEN2_VL)
    mutate(cfg)
    r = _run(["params", _write_cfg(tmp_path, cfg)])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "config.json" in lines[0], r.output


def test_cli_merger_wider_or_narrower_than_the_llm_warns(tmp_path):
    """transformers builds a merger whose output width differs from the LLM's (Qwen2-VL's default config
    does): counted as built, with a one-line warning."""
    cfg = copy.deepcopy(TINY_QWEN2_VL)
    cfg["vision_config"]["hidden_size"] = 999
    r = _run(["params", _write_cfg(tmp_path, cfg), "--format", "json"])
    assert r.exit_code == 0, r.output
    warning = [line for line in r.stderr.splitlines() if "vision_config.hidden_size" in line]
    assert len(warning) == 1 and "(999) differs from the LLM hidden_size" in warning[0]


@pytest.mark.parametrize("mutate,needle", [
    (lambda c: c["llm_config"].pop("hidden_size"), "llm_config.hidden_size' is missing"),
    (lambda c: c.pop("llm_config"), "llm_config' is missing"),
    (lambda c: c["vision_config"].__setitem__("norm_type", "batch_norm"), "vision_config.norm_type"),
    (lambda c: c["vision_config"].__setitem__("qkv_bias", "yes"), "vision_config.qkv_bias"),
    (lambda c: c["vision_config"].pop("image_size"), "vision_config.image_size' is missing"),
    (lambda c: c.__setitem__("downsample_ratio", 0.3), "downsample_ratio"),
])
def test_cli_malformed_internvl(tmp_path, mutate, needle):
    cfg = _tiny_internvl(dict(TINY_QWEN2_LLM))
    mutate(cfg)
    r = _run(["config", _write_cfg(tmp_path, cfg)])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.output


def test_local_dir_reads_preprocessor(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"min_pixels": 3136, "max_pixels": 200_704, "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}))
    spec = load_spec(_write_cfg(tmp_path, TINY_QWEN2_VL))
    assert spec.vision.image.max_pixels == 200_704
    it = image_tokens(spec.vision, 1080, 1920, 64)
    assert it.resized[0] * it.resized[1] <= 200_704
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"patch_size": 16}))
    with pytest.raises(InspectError, match="patch_size"):
        load_spec(str(tmp_path))


def test_internvl_with_llama_llm():
    llm = {"model_type": "llama", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "tie_word_embeddings": False}
    spec = from_hf_config(_tiny_internvl(llm), "tiny-llama-internvl")
    names = {e.name: e.shape for e in inventory(spec)}
    assert names["language_model.model.embed_tokens.weight"] == (100, 64)
    assert names["language_model.model.layers.1.self_attn.q_proj.weight"] == (64, 64)
    assert names["language_model.lm_head.weight"] == (100, 64)
    assert names["mlp1.1.weight"] == (64, 128) and names["mlp1.3.weight"] == (64, 64)
    assert not any(k.startswith("language_model.model.layers.0.self_attn.q_proj.bias") for k in names)


def test_qwen2_vl_transformers5_saved_config_layout():
    """transformers 5 writes the LLM fields into text_config (tie flag at the top level): same model."""
    from transformers import Qwen2VLConfig

    cfg = shared_config(QWEN2B)
    saved = Qwen2VLConfig(**copy.deepcopy(cfg)).to_dict()
    assert "text_config" in saved and "tie_word_embeddings" not in saved["text_config"]
    ours = from_hf_config(saved, QWEN2B)
    assert inventory(ours) == inventory(from_hf_config(cfg, QWEN2B))
    assert account(ours).totals.total_params == 2_208_985_600
