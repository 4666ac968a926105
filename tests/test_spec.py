"""Config -> spec: every real config parses, presets equal the real configs, bad input is one line."""

from __future__ import annotations

import json

import pytest

from conftest import REFERENCE_CONFIGS, reference_config_dirs, tiny_config
from inspector.errors import InspectError
from inspector.source import load_spec, resolve
from inspector.spec.presets import all_presets, find_preset
from inspector.spec.model import from_hf_config

REAL = reference_config_dirs()


@pytest.mark.parametrize("directory", REAL, ids=[p.name for p in REAL])
def test_every_reference_config_parses(directory):
    spec = load_spec(str(directory))
    assert spec.text.num_layers > 0 and spec.text.head_dim * spec.text.num_heads == spec.text.q_dim


def test_reference_configs_are_in_the_repository():
    assert REFERENCE_CONFIGS.is_dir() and len(REAL) == 23


ARCH_FIELDS = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "tie_word_embeddings", "rms_norm_eps", "rope_theta",
               "max_position_embeddings", "rope_scaling", "attention_bias", "mlp_bias", "model_type",
               "bos_token_id", "eos_token_id", "sliding_window", "use_sliding_window"]


@pytest.mark.parametrize("directory", REAL, ids=[p.name for p in REAL])
def test_preset_matches_reference_config(directory):
    """A preset's facts equal the official config.json field by field (no copy of the file is shipped)."""
    preset = find_preset(directory.name.replace("__", "/"))
    if preset is None:
        pytest.skip(f"no preset for {directory.name}")
    real = json.loads((directory / "config.json").read_text())
    for key in ARCH_FIELDS:
        if key in real:
            assert preset.config.get(key) == real[key], key
    assert from_hf_config(dict(preset.config), "p").text == from_hf_config(real, "r").text


def test_presets_addressable_by_id_case_insensitive_and_alias():
    for name in ["meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B",
                 "Qwen/Qwen3-0.6B", "Qwen/Qwen3-0.6B-Base", "microsoft/Phi-3-mini-4k-instruct",
                 "HuggingFaceTB/SmolLM2-135M-Instruct"]:
        assert find_preset(name) is not None, name
        assert find_preset(name.upper()) is find_preset(name)
    assert find_preset("qwen2.5-1.5b").hub_id == "Qwen/Qwen2.5-1.5B"
    assert all(p.source for p in all_presets())


def test_derived_values_and_family_flags():
    q3 = load_spec("Qwen/Qwen3-0.6B").text
    assert (q3.head_dim, q3.q_dim, q3.kv_dim, q3.kv_groups, q3.qk_norm, q3.qkv_bias) == (128, 2048, 1024, 2, True, False)
    q25 = load_spec("Qwen/Qwen2.5-1.5B").text
    assert (q25.head_dim, q25.kv_groups, q25.qkv_bias, q25.o_bias) == (128, 6, True, False)
    phi = load_spec("phi-3-mini").text
    assert phi.fused_qkv and phi.fused_gate_up and not phi.tie_embeddings and phi.sliding_window == 2047


BAD = [
    ("missing-field", {k: v for k, v in tiny_config("llama").items() if k != "hidden_size"}, "'hidden_size' is missing"),
    ("wrong-type", tiny_config("llama", num_hidden_layers="two"), "'num_hidden_layers' must be an integer"),
    ("bool-as-int", tiny_config("llama", vocab_size=True), "'vocab_size' must be an integer"),
    ("bad-bool", tiny_config("llama", tie_word_embeddings="yes"), "'tie_word_embeddings' must be true or false"),
    ("unknown-type", tiny_config("no_such_family"), "model_type 'no_such_family' is not supported (supported: "),
    ("no-model-type", {"hidden_size": 8}, "'model_type' is missing"),
    ("heads-not-divisible", tiny_config("llama", num_key_value_heads=3), "not a multiple of num_key_value_heads"),
    ("hidden-not-divisible", tiny_config("llama", hidden_size=30), "not a multiple of num_attention_heads"),
    ("not-object", [1, 2], "must be a JSON object"),
]


@pytest.mark.parametrize("cfg,message", [(c, m) for _, c, m in BAD], ids=[i for i, _, _ in BAD])
def test_bad_config_one_line_naming_file_and_field(tmp_path, cfg, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(InspectError) as exc:
        load_spec(str(path))
    text = str(exc.value)
    assert message in text and "\n" not in text
    assert str(path) in text


def test_unreadable_inputs(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "latin1.json").write_bytes(b"\xff\xfe{}")
    (tmp_path / "empty").mkdir()
    cases = {
        str(tmp_path / "bad.json"): "not valid JSON",
        str(tmp_path / "latin1.json"): "not UTF-8",
        str(tmp_path / "empty"): "no config.json in this directory",
        "no-such-thing": "is not a preset, a local path or a Hub id",
        "Qwen/Definitely-Not-Cached": "HF_HUB_OFFLINE is set",
    }
    for model, message in cases.items():
        with pytest.raises(InspectError, match=message):
            resolve(model)


def test_unknown_keys_are_recorded_not_dropped():
    spec = from_hf_config(tiny_config("llama", some_new_knob=3), "t")
    assert "some_new_knob" in spec.ignored_keys
