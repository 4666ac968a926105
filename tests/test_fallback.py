"""Every causal-LM architecture transformers can build: `inspect params DIR` gives transformers' total.

DIR holds the config.json transformers itself writes for the architecture's default config
(`save_pretrained`, so only the values that differ from the class defaults). Native families are
counted by our own inventory; every other model_type goes through transformers on the meta device.
Either way the reference is transformers' own model built from the same DIR on the meta device,
`sum(p.numel() for p in model.parameters())` (tied weights once). Configs with many layers are
shrunk to LAYERS_CAP layers (lists of per-layer values cut to match) when transformers can still
build the shrunk one, to keep the test fast; both sides read the same file. Architectures that
transformers itself cannot build from their default config must give one line and exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import lru_cache

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app
from inspector.spec.wrappers import WRAPPERS

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES  # noqa: E402
from transformers.models.auto.modeling_auto import (  # noqa: E402
    MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING as IMAGE_TEXT_TO_TEXT,
)

runner = CliRunner()
LAYERS_CAP = 4
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
LAYER_INDEX_LISTS = ("moe_layers", "mlp_only_layers")


def _shrunk(cfg: dict) -> dict:
    """Fewer layers; every list with one value per layer cut to match, layer-index lists filtered."""
    out = dict(cfg)
    for key in LAYER_KEYS:
        layers = out.get(key)
        if isinstance(layers, int) and layers > LAYERS_CAP:
            out[key] = LAYERS_CAP
            for name, value in cfg.items():
                if name in LAYER_INDEX_LISTS and isinstance(value, list):
                    out[name] = [i for i in value if isinstance(i, int) and i < LAYERS_CAP]
                elif isinstance(value, list) and len(value) == layers:
                    out[name] = value[:LAYERS_CAP]
    return out


def _build(config):
    """The causal LM, or for a fallback config with a vision part the whole vision-language model
    (native llama4 and mllama are checked against their language model below)."""
    auto = transformers.AutoModelForCausalLM
    if (getattr(config, "vision_config", None) is not None and type(config) in IMAGE_TEXT_TO_TEXT
            and config.model_type not in WRAPPERS):
        auto = transformers.AutoModelForImageTextToText
    with torch.device("meta"):
        return auto.from_config(config)


@lru_cache(maxsize=None)
def reference(model_type: str, directory: str) -> tuple[int | None, str]:
    """(transformers' total or None, why not) for the default config, shrunk when possible; the
    config.json transformers writes for it lands in `directory`."""
    transformers.logging.set_verbosity_error()
    try:
        config = transformers.AutoConfig.for_model(model_type)
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"
    for cfg in (_shrunk(config.to_dict()), None):
        try:
            candidate = config if cfg is None else type(config).from_dict(cfg)
            candidate.save_pretrained(directory)
            saved = transformers.AutoConfig.from_pretrained(directory)
            return sum(p.numel() for p in _build(saved).parameters()), ""
        except Exception as e:
            why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None, why


# Native families whose class-default config the two sides read differently (issue 24, helper moe4), each checked
# on its published configs in tests/test_moe_families.py instead:
DEFAULT_CONFIG_DIFFERS = {
    # HunYuanMoEV1Config: head_dim None, which transformers 5.25's own RoPE init cannot use (it cannot build its
    # default); we read hidden / heads
    "hunyuan_v1_moe": "answered",
}


@pytest.mark.parametrize("model_type", sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES))
def test_params_equals_transformers(model_type, tmp_path_factory):
    directory = tmp_path_factory.mktemp(model_type)
    total, why = reference(model_type, str(directory))
    result = runner.invoke(app, ["params", str(directory), "--format", "json"])
    if model_type in DEFAULT_CONFIG_DIFFERS:
        refused = DEFAULT_CONFIG_DIFFERS[model_type] == "refused"
        assert (total is None) != refused, why  # transformers builds exactly the one we refuse
        assert result.exit_code == (2 if refused else 0), result.output
        assert not refused or result.stderr.count("\n") == 1, result.stderr
        return
    if total is None:  # transformers cannot build it either: we say so in one line
        assert result.exit_code == 2, (why, result.output)
        assert result.stderr.count("\n") == 1, result.stderr
        return
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    if model_type in WRAPPERS and not MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type].endswith("ForConditionalGeneration"):
        # native VLMs whose causal-LM class in transformers is the language model alone (llama4, mllama)
        assert data["components"]["language_model"] == total
    else:
        assert data["total_params"] == total
    native = "inventory" not in data
    assert native == (json.loads((directory / "config.json").read_text())["model_type"]
                      in __import__("inspector.spec.model", fromlist=["x"]).supported_model_types())


def test_fallback_rows_add_up_and_are_labelled(tmp_path):
    config = transformers.AutoConfig.for_model("falcon", num_hidden_layers=2)
    config.save_pretrained(tmp_path)
    result = runner.invoke(app, ["params", str(tmp_path), "--format", "json"])
    data = json.loads(result.stdout)
    assert data["inventory"]["source"].startswith("inventory from transformers ")
    assert data["inventory"]["source"].endswith(" on the meta device (no native family)")
    assert sum(r["params_total"] for r in data["rows"] if r["stored"]) == data["total_params"]
    table = runner.invoke(app, ["params", str(tmp_path), "--format", "md"]).stdout
    assert "inventory from transformers" in table and "no native family" in table


def test_without_transformers_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "falcon", "hidden_size": 64}))
    code = ("import sys; sys.modules['transformers'] = None\n"
            "from typer.testing import CliRunner; from inspector.cli.app import app\n"
            f"r = CliRunner().invoke(app, ['params', {str(tmp_path)!r}])\n"
            "print(r.exit_code); print(r.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("2\n") and "model_type 'falcon' has no native family" in out
    assert 'pip install "llm-inspector[hf]"' in out and out.count("\n") == 3


def test_unknown_to_transformers_too(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no_such_model", "auto_map": {"x": "y"}}))
    result = runner.invoke(app, ["params", str(tmp_path)])
    assert result.exit_code == 2 and "never run" in result.stderr and result.stderr.count("\n") == 1


def test_native_params_never_import_torch_or_transformers():
    code = ("import sys; from typer.testing import CliRunner; from inspector.cli.app import app\n"
            "r = CliRunner().invoke(app, ['params', 'deepseek-ai/DeepSeek-V3', 'gpt-oss-20b']); assert r.exit_code == 0\n"
            "print([m for m in ('torch', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


TINY_INKLING2 = dict(num_hidden_layers=2, hidden_size=64, n_routed_experts=4, moe_intermediate_size=32,
                     vocab_size=1000, unpadded_vocab_size=900, num_attention_heads=4, num_key_value_heads=2,
                     head_dim=16, swa_num_attention_heads=4, swa_num_key_value_heads=2, swa_head_dim=16,
                     eos_token_id=1)


@pytest.mark.parametrize("model_type", ["inkling2_text", "inkling2_loop_text"])
def test_counts_come_from_the_built_shapes_not_the_saved_ones(model_type):
    """Inkling2 saves its LM head padded to vocab_size (1000 rows) but builds it with
    unpadded_vocab_size (900): params counts the built model, verify expects the saved tensor."""
    from inspector.checkpoint.verify import expected_of
    from inspector.inventory.transformers_meta import meta_account

    config = transformers.AutoConfig.for_model(model_type, **TINY_INKLING2)
    with torch.device("meta"):
        total = sum(p.numel() for p in transformers.AutoModelForCausalLM.from_config(config).parameters())
    acc = meta_account(config.to_dict(), model_type, "config.json")
    assert acc.totals.total_params == total
    head = next(e for e in acc.entries if e.name == "lm_head.weight")
    assert head.shape == (900, 64)
    assert "saves it as model.llm.unembed.weight (1,000, 64)" in acc.spec.notes[0]
    expected, note = expected_of(config.to_dict(), model_type, "config.json")
    names = {e.name: e.shape for e in expected.entries}
    assert names["model.llm.unembed.weight"] == (1000, 64) and "lm_head.weight" not in names
    assert "counted as built in memory" in note
