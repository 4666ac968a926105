"""A config quantized on paper for llama.cpp (`inspect memory CONFIG --engine llama.cpp --quant T`, `inspect quant
CONFIG T`) for the architectures mapped beyond the GGUF loader's table (llamacpp_model.CONFIG_ARCHS).

Oracle: llama.cpp's exact bytes for the synthetic GGUFs (fixtures/llamacpp/synth, recorded with
llama-cpp-python 0.3.36): a config with the synthetic file's hyperparameters must give the recorded KV, output
and compute bytes (the model buffer differs: the synthetic file's weights are all Q4_0, the config's are
quantized as llama-quantize would), and its tensors the synthetic file's GGUF names and shapes. An unmapped
model_type keeps its one-line error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app
from inspector.memory.llamacpp import LlamaCppSettings
from inspector.memory.llamacpp_model import LlamaCppRequest, llamacpp_memory
from llamacpp_records import SYN, synth_gguf
from llamacpp_records import settings as _settings

# smollm3 (-tiny and -wide: head_dim 128 with 4 heads of a 256 hidden); granite -tiny only (its converter drops
# head_dim, so granite-wide's 4 x 128 heads on a 256 hidden has no config)
RUNS = sorted(p for p in (SYN / "runs").glob("*.json") if p.name.startswith(("smollm3-", "granite-tiny-")))
# the synthetic GGUF's granite keys -> the config keys convert_hf_to_gguf reads them from (conversion/granite.py)
GRANITE = {"attention.scale": "attention_multiplier", "embedding_scale": "embedding_multiplier",
           "residual_scale": "residual_multiplier", "logit_scale": "logits_scaling"}
CLASSES = {"smollm3": "SmolLM3ForCausalLM", "granite": "GraniteForCausalLM"}


def _config(folder: Path, f) -> Path:
    """A config.json with the synthetic GGUF's hyperparameters (convert_hf_to_gguf's key for each)."""
    meta = f.metadata
    arch = meta["general.architecture"]
    a = arch + "."
    n_layer = meta[a + "block_count"]
    cfg = {"architectures": [CLASSES[arch]], "model_type": arch,
           "hidden_size": meta[a + "embedding_length"], "num_hidden_layers": n_layer,
           "num_attention_heads": meta[a + "attention.head_count"],
           "num_key_value_heads": meta[a + "attention.head_count_kv"],
           "intermediate_size": meta[a + "feed_forward_length"],
           "vocab_size": next(t for t in f.tensors if t.name == "token_embd.weight").stored_shape[1],
           "max_position_embeddings": meta[a + "context_length"], "tie_word_embeddings": True,
           "rms_norm_eps": 1e-6, "rope_theta": meta[a + "rope.freq_base"], "bos_token_id": 1, "eos_token_id": 2,
           "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "torch_dtype": "bfloat16"}
    if a + "attention.key_length" in meta:
        cfg["head_dim"] = meta[a + "attention.key_length"]
    if arch == "smollm3":
        cfg.update(no_rope_layer_interval=4, no_rope_layers=[0 if (i + 1) % 4 == 0 else 1 for i in range(n_layer)])
    cfg.update({c: meta[a + k] for k, c in GRANITE.items() if a + k in meta})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """(parsed synthetic GGUF, its config folder) per synthetic model, once each."""
    root, cache = tmp_path_factory.mktemp("synth"), {}

    def get(name: str):
        if name not in cache:
            f = synth_gguf(root, name)
            cache[name] = f, _config(root / name, f)
        return cache[name]

    return get



@pytest.mark.parametrize("run", RUNS, ids=[p.stem for p in RUNS])
def test_config_path_equals_llamacpp_exact_bytes(run, synth):
    rec = json.loads(run.read_text())
    _, folder = synth(rec["model"])
    est = llamacpp_memory(LlamaCppRequest(str(folder), "Q4_0", _settings(rec["settings"])))
    got = {b.kind: b for b in est.prediction.buffers}
    by = rec["exact_bytes"]["by_buffer_type"]
    assert got["kv"].nbytes == by["CPU"]["context"] and got["compute"].nbytes == by["CPU"]["compute"]
    assert got["output"].mib == next(b["mib"] for b in rec["buffers"] if b["kind"] == "output")
    assert {b.status for b in est.prediction.buffers} == {"exact"} and est.origin.startswith("config")


@pytest.mark.parametrize("name", ["smollm3-tiny", "smollm3-wide", "granite-tiny"])
def test_quant_from_config_names_the_gguf_tensors(name, synth):
    f, folder = synth(name)
    result = CliRunner().invoke(app, ["quant", str(folder), "Q4_0", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted((t["name"], tuple(t["ne"])) for t in data["tensors"]) == \
        sorted((t.name, tuple(t.stored_shape)) for t in f.tensors)


def test_granite_header_carries_the_converters_scales(synth):
    """The synthesized granite header holds the four scales under llama.cpp's keys, as the synthetic GGUF does."""
    from inspector.memory.llamacpp_model import _read

    f, folder = synth("granite-tiny")
    header = _read(LlamaCppRequest(str(folder), "Q4_0", LlamaCppSettings()))[0]
    keys = [f"granite.{k}" for k in GRANITE]
    assert {k: header.metadata[k] for k in keys} == {k: f.metadata[k] for k in keys}


@pytest.mark.parametrize("change,what", [({"logits_scaling": None}, "logits_scaling"),
                                         ({"head_dim": 128}, "ignores head_dim")])
def test_granite_configs_llamacpp_would_not_load_are_one_line(change, what, synth, tmp_path):
    _, folder = synth("granite-tiny")
    cfg = {k: v for k, v in {**json.loads((folder / "config.json").read_text()), **change}.items() if v is not None}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    result = CliRunner().invoke(app, ["memory", str(tmp_path), "--engine", "llama.cpp", "--quant", "Q4_0"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and what in result.stderr


def test_unmapped_model_type_is_one_line(tmp_path):
    """cohere2 is modelled on a GGUF but not mapped from a config (logit_scale, its window pattern): one line,
    exit 2, naming the mapped model_types."""
    cfg = {"architectures": ["Cohere2ForCausalLM"], "model_type": "cohere2", "hidden_size": 128,
           "num_hidden_layers": 4, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 256,
           "vocab_size": 320, "max_position_embeddings": 4096, "bos_token_id": 1, "eos_token_id": 2,
           "sliding_window": 512}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    result = CliRunner().invoke(app, ["memory", str(tmp_path), "--engine", "llama.cpp", "--quant", "Q4_0"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "model_type 'cohere2' has no llama.cpp architecture" in result.stderr
    assert "smollm3" in result.stderr and "granite" in result.stderr
