"""Command-line options: usage errors in one line, values that cannot be meant, work before checks.

Root causes of issue 17 covered here: 8 (`run` did the prefill before checking the context length),
9 (allocations sized by options: --layers, --image-size), 13 (--seed 1e23, --temperatures 0,nan),
14 (usage errors printed as 5-line boxes), 15 (the context error named max_new_tokens for
--decode-steps). All cases run through the CLI in one memory-capped subprocess.
"""

from __future__ import annotations

import json

import pytest
from conftest import smollm2_gguf_path, tiny_config
from harden import assert_refused, run_cases

USAGE = {  # args -> words of the one-line usage error
    "format-xml": (["params", "qwen2.5-0.5b", "--format", "xml"], "'xml' is not one of"),
    "n-0": (["run", "hi", "-n", "0"], "--max-new-tokens"),
    "top-k-0": (["run", "hi", "--top-k", "0"], "--top-k"),
    "temperature-negative": (["run", "hi", "--temperature", "-1"], "--temperature"),
    "trials-0": (["run", "hi", "--trials", "0"], "--trials"),
    "context-0": (["params", "qwen2.5-0.5b", "--context", "0"], "--context"),
    "decode-steps-negative": (["trace", "hi", "--decode-steps", "-1"], "--decode-steps"),
    "image-dir": (["trace", "hi", "-m", "qwen2-vl-2b", "--image", "."], "--image"),
    "output-dir": (["params", "qwen2.5-0.5b", "-o", "."], "--output"),
    "seed-1e23": (["run", "hi", "--seed", "1e23"], "--seed"),
    "seed-too-big": (["run", "hi", "--seed", str(10**23)], "--seed"),
    "unknown-command": (["paramz", "qwen2.5-0.5b"], "No such command"),
    "unknown-option": (["params", "qwen2.5-0.5b", "--bogus"], "--bogus"),
    "missing-argument": (["params"], "Missing argument"),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("harden-cli")
    tiny = root / "tiny"
    tiny.mkdir()
    (tiny / "config.json").write_text(json.dumps(tiny_config("llama", vocab_size=49152, max_position_embeddings=64)))
    gguf = str(smollm2_gguf_path())
    cases = [{"id": case_id, "args": args} for case_id, (args, _) in USAGE.items()]
    cases += [
        {"id": "temperatures-nan", "args": ["run", "hi", "-m", gguf, "--temperatures", "0,nan"]},
        {"id": "temperatures-inf", "args": ["run", "hi", "-m", gguf, "--temperatures", "inf"]},
        # 9,000 tokens for an 8,192 context: refused before the weights load and before any prefill
        {"id": "run-past-context", "args": ["run", "hello " * 9000, "-m", gguf, "--device", "cpu"]},
        {"id": "trace-past-context", "args": ["trace", "one two three four five six seven eight nine ten " * 7,
                                              "-m", str(tiny), "--tokenizer", gguf, "--decode-steps", "3"]},
        {"id": "layers-billion", "args": ["trace", "hi", "-m", str(tiny), "--tokenizer", gguf,
                                          "--layers", "0-1000000000"]},
        {"id": "layers-backwards", "args": ["trace", "hi", "-m", str(tiny), "--tokenizer", gguf, "--layers", "5-2"]},
        {"id": "image-size-huge", "args": ["trace", "hi", "-m", "qwen2-vl-2b", "--device", "meta",
                                           "--image-size", "20000x20000"]},
        {"id": "tokens-image-size-huge", "args": ["tokens", "qwen2-vl-2b", "--image-size", "2000000x2"]},
    ]
    return run_cases(cases, budget_mb=1024, timeout=30)


@pytest.mark.parametrize("case_id", list(USAGE))
def test_usage_errors_are_one_line(batch, case_id):
    result = batch[case_id]
    assert_refused(result, USAGE[case_id][1], "--help")
    assert "╭" not in result.stderr and "Usage:" not in result.stderr


@pytest.mark.parametrize("case_id,words", [("temperatures-nan", "finite"), ("temperatures-inf", "finite")])
def test_temperatures_must_be_finite(batch, case_id, words):
    assert_refused(batch[case_id], "--temperatures", words)


def test_run_checks_the_context_before_any_work(batch):
    result = batch["run-past-context"]
    assert_refused(result, "max_position_embeddings = 8192", "max_new_tokens (32)")
    assert result.seconds < 5  # no weights loaded, no 9,000-token prefill (a 2.9 GB score tensor)


def test_trace_context_error_names_decode_steps(batch):
    result = batch["trace-past-context"]
    assert_refused(result, "decode_steps (3)", "max_position_embeddings = 64")
    assert "max_new_tokens" not in result.stderr


def test_layers_are_ranges_not_sets(batch):
    """--layers 0-1000000000 answers at once (it built a set of a billion ints): refused in one line because
    the model has 2 layers; a range that ends before it starts is refused too."""
    assert_refused(batch["layers-billion"], "--layers", "no layer 1000000000")
    assert batch["layers-billion"].seconds < 10
    assert_refused(batch["layers-backwards"], "--layers", "5-2")


def test_image_size_bounded(batch):
    assert_refused(batch["image-size-huge"], "--image-size", "20000x20000")
    assert_refused(batch["tokens-image-size-huge"], "--image-size", "2000000x2")
