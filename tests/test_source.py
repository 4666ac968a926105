"""inspector.source: every kind of MODEL to one ModelSource (preset, directory, config.json, a
safetensors file with its config beside it, a GGUF file parsed once, a Hub id), and bad input as
one line."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_config
from gguf_bytes import tiny_llama

import inspector.checkpoint.gguf as gguf_reader
from inspector.errors import InspectError
from inspector.source import account_model, load_spec, resolve, verify, verify_inputs

ROOT = Path(__file__).resolve().parents[1]


def _safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> Path:
    """A safetensors file of zeros: name -> (dtype, shape)."""
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        size = {"F32": 4, "F16": 2}[dtype]
        for d in shape:
            size *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return path


def _model_dir(root: Path, tokenizer: bool = False) -> Path:
    root.mkdir()
    (root / "config.json").write_text(json.dumps(tiny_config("llama")))
    if tokenizer:
        (root / "tokenizer.json").write_text("{}")
    return root


def test_a_preset():
    src = resolve("qwen2.5-0.5b")
    assert (src.kind, src.name, src.where, src.hub_id) == ("preset", "Qwen/Qwen2.5-0.5B", "preset Qwen/Qwen2.5-0.5B",
                                                           "Qwen/Qwen2.5-0.5B")
    assert src.directory is None and src.checkpoint is None and src.tokenizer == "qwen2-bpe"
    assert src.spec() == load_spec("Qwen/Qwen2.5-0.5B")


def test_a_directory_and_its_config_json(tmp_path):
    d = _model_dir(tmp_path / "m")
    src = resolve(str(d))
    assert (src.kind, src.name, src.where, src.directory) == ("local", str(d), str(d / "config.json"), d)
    assert src.checkpoint is None and src.tokenizer is None and src.hub_id is None
    by_file = resolve(str(d / "config.json"))
    assert (by_file.kind, by_file.where, by_file.directory, by_file.config) == ("local", str(d / "config.json"), d,
                                                                                src.config)
    assert resolve(str(_model_dir(tmp_path / "t", tokenizer=True))).tokenizer == str(tmp_path / "t")


def test_a_safetensors_file_with_its_config_beside_it(tmp_path):
    d = _model_dir(tmp_path / "m")
    weights = _safetensors(d / "model.safetensors", {"a": ("F32", [2, 3]), "b": ("F16", [4])})
    src = resolve(str(weights))
    assert (src.kind, src.where, src.checkpoint) == ("local", str(d / "config.json"), weights)
    stored = account_model(str(weights)).stored
    assert stored.file == str(weights) and stored.nbytes == 32 and stored.dtypes == (("F32", 1, 6, 24), ("F16", 1, 4, 8))
    alone = _safetensors(tmp_path / "alone.safetensors", {"a": ("F32", [1])})
    with pytest.raises(InspectError, match="holds weights, not a config, and there is no config.json beside it"):
        resolve(str(alone))


def test_a_gguf_file_is_parsed_once(tmp_path, monkeypatch):
    path = tmp_path / "tiny.gguf"
    path.write_bytes(tiny_llama())
    calls = []
    real = gguf_reader.parse_gguf
    monkeypatch.setattr(gguf_reader, "parse_gguf", lambda p: calls.append(p) or real(p))
    src = resolve(str(path))
    assert (src.kind, src.name, src.where, src.checkpoint, src.tokenizer) == ("gguf", "tiny.gguf", str(path), path,
                                                                             str(path))
    assert src.config["model_type"] == "llama" and src.opened.headers.format == "gguf" and len(calls) == 1
    calls.clear()
    result = verify(str(path))  # config and headers from one parse
    assert result.format == "gguf" and result.checkpoint == str(path) and len(calls) == 1
    calls.clear()
    assert account_model(str(path)).stored.file == str(path) and len(calls) == 1


def test_a_gguf_model_traces_on_the_same_parse(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from inspector.checkpoint.tensors import GGUFSource
    from inspector.source import locate

    path = tmp_path / "tiny.gguf"
    path.write_bytes(tiny_llama())
    config = resolve(str(path)).config
    calls = []
    real = gguf_reader.parse_gguf
    monkeypatch.setattr(gguf_reader, "parse_gguf", lambda p: calls.append(p) or real(p))
    spec, weights, tokenizer = locate(str(path), None)  # the spec and the tensor source from one parse
    assert isinstance(weights, GGUFSource) and weights.config == config and len(calls) == 1
    assert spec.name == "tiny.gguf" and tokenizer == str(path)


def test_verify_inputs_with_weights(tmp_path):
    gguf = tmp_path / "w.gguf"
    gguf.write_bytes(tiny_llama())
    inputs = verify_inputs(None, str(gguf))  # the config from the GGUF's own metadata
    assert (inputs.label, inputs.name, inputs.where, inputs.config["model_type"]) == (str(gguf), "w.gguf", str(gguf),
                                                                                      "llama")
    bare = tmp_path / "bare"
    bare.mkdir()
    _safetensors(bare / "model.safetensors", {"a": ("F32", [1])})
    inputs = verify_inputs(None, str(bare))
    assert inputs.config is None and inputs.notes == (f"no config.json beside {bare}: listing the checkpoint's "
                                                      "tensors only",)
    inputs = verify_inputs("qwen2.5-0.5b", str(bare))  # the config from MODEL
    assert inputs.name == "Qwen/Qwen2.5-0.5B" and inputs.label == str(bare)


def test_a_hub_id(tmp_path):
    from hubserver import HubServer

    repo = tmp_path / "hub" / "org" / "cfg"
    repo.mkdir(parents=True)
    cfg = tiny_config("llama")
    (repo / "config.json").write_text(json.dumps(cfg))
    code = ("import json; from inspector.source import resolve; s = resolve('org/cfg'); "
            "print(json.dumps([s.kind, s.name, s.where, s.hub_id, s.config, (s.directory / 'config.json').is_file()]))")
    with HubServer(tmp_path / "hub") as server:
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=server.env(tmp_path / "home"),
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["hub", "org/cfg", "org/cfg/config.json", "org/cfg", cfg, True]


@pytest.mark.parametrize("model, message", [
    ("no-such-model", "'no-such-model' is not a preset, a local path or a Hub id (owner/name)."),
    ("./missing/config.json", "./missing/config.json: file not found"),
    ("EMPTY", ": no config.json in this directory"),
    ("x\0y", "a path cannot hold a NUL byte"),
])
def test_bad_models_are_one_line(tmp_path, model, message):
    model = str(tmp_path) if model == "EMPTY" else model
    with pytest.raises(InspectError) as exc:
        resolve(model)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_verify_needs_a_model_or_weights():
    with pytest.raises(InspectError, match=r"^give MODEL \(a directory, \.gguf file, preset or Hub id\) or "
                                           r"--weights PATH$"):
        verify(None, None)
