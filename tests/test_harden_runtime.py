"""Allocations and thread pools sized by options, prompt files and stdin are bounded (cause 5 of the
hardening issue): --threads and OMP_NUM_THREADS at the usable cores, --num-beams and --seq-len by
inspector.limits, a long --prompts file in batches (greedy results as one batch), a chat line on
stdin read at most MAX_STDIN_LINE characters."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from conftest import tiny_config
from harden import assert_refused, run_cases

from inspector import limits
from inspector.errors import InspectError, InspectWarning
from inspector.runtime import threads as cores

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_are_capped_at_the_usable_cores(threads, monkeypatch):
    monkeypatch.setattr(cores.os, "sched_getaffinity", lambda pid: {0, 1})
    with pytest.warns(InspectWarning, match="100,000 is more than the 2 usable cores"):
        assert cores.use_threads(100_000) == 2
    assert torch.get_num_threads() <= 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1000000")
    assert cores.use_threads(None) == 2
    with pytest.raises(InspectError, match="--threads must be at least 1"):
        cores.use_threads(0)


@pytest.mark.parametrize("value, expected", [("1000000", "2"), ("abc", "2"), ("0", "2"), ("-3", "2"), ("1", "1"),
                                             (" 2 ", " 2 "), ("9" * 40, "2"), ("\u00b2", "2")])
def test_thread_variables_are_sanitised_before_torch_reads_them(monkeypatch, value, expected):
    monkeypatch.setattr(cores.os, "sched_getaffinity", lambda pid: {0, 1})
    for name in cores.THREAD_VARIABLES:
        monkeypatch.setenv(name, value)
    cores.sanitize_thread_env()
    assert all(cores.os.environ[name] == expected for name in cores.THREAD_VARIABLES)


def test_beams_seq_len_and_threads_on_the_command_line():
    """One line, exit 2, before any model is built (the preset has no weights here)."""
    model = ["-m", "qwen2.5-0.5b"]
    cases = [
        {"id": "beams", "args": ["run", "hi", *model, "--num-beams", "100000"]},
        {"id": "beams-0", "args": ["run", "hi", *model, "--num-beams", "0"]},
        {"id": "seq-len", "args": ["trace", *model, "--device", "meta", "--seq-len", str(10**9)]},
        {"id": "seq-len-0", "args": ["trace", *model, "--device", "meta", "--seq-len", "0"]},
        {"id": "trace-prompts", "args": ["trace", *(["hi"] * (limits.PROMPT_BATCH + 1)), *model, "--device", "meta"]},
    ]
    results = run_cases(cases, timeout=20)
    assert_refused(results["beams"], "--num-beams", f"{limits.MAX_BEAMS}", "100,000")
    assert_refused(results["beams-0"], "--num-beams")
    assert_refused(results["seq-len"], "--seq-len", f"{limits.MAX_SEQ_LEN:,}")
    assert_refused(results["seq-len-0"], "--seq-len")
    assert_refused(results["trace-prompts"], "one batch", f"at most {limits.PROMPT_BATCH}")
    assert all(r.seconds < 15 for r in results.values()), {k: r.seconds for k, r in results.items()}


def test_a_long_prompt_list_runs_in_batches_with_the_same_greedy_results(tmp_path):
    from hf_reference import hf_tiny

    from inspector.generations import RunPlan
    from inspector.reference.load import load_model
    from inspector.runtime.run import generate_all

    cfg = tiny_config("llama", vocab_size=101, max_position_embeddings=64)
    hf_tiny(cfg, seed=3).save_pretrained(tmp_path, safe_serialization=True)
    model = load_model(tmp_path)
    tok = SimpleNamespace(eos_ids=[1], decode=lambda ids, skip_special_tokens=True: " ".join(map(str, ids)))
    runtime = SimpleNamespace(tokenizer=tok, model=model, spec=SimpleNamespace(name="tiny", text=model.spec))
    rows = [[(7 * i + j) % 100 + 2 for j in range(1 + i % 5)] for i in range(7)]
    prompts = [f"p{i}" for i in range(7)]

    def run(size: int):
        return generate_all(runtime, RunPlan(tuple(prompts), max_new_tokens=5), encoded=rows, batch_size=size)

    whole, chunked = run(256), run(3)
    assert [g.token_ids for g in whole] == [g.token_ids for g in chunked]
    assert [g.prompt for g in chunked] == prompts
    assert {g.batch for g in whole} == {7} and [g.batch for g in chunked] == [3, 3, 3, 3, 3, 3, 1]


def test_temperatures_and_trials_sharing_a_batch_draw_what_batches_of_their_own_draw(tmp_path):
    """generate_all puts several (temperature, trial) runs of a prompt chunk in one batch, each run's rows
    sampled with its own generator: the tokens equal those of one batch per run (batch_size = the prompts),
    sampled and greedy alike, whether all runs share one batch or two share each."""
    from hf_reference import hf_tiny

    from inspector.generations import RunPlan
    from inspector.reference.load import load_model
    from inspector.runtime.batch import Batch, RowGroup, generate_batch
    from inspector.runtime.run import generate_all
    from inspector.runtime.sampling import SamplingSettings

    cfg = tiny_config("llama", vocab_size=101, max_position_embeddings=64)
    hf_tiny(cfg, seed=5).save_pretrained(tmp_path, safe_serialization=True)
    model = load_model(tmp_path)
    tok = SimpleNamespace(eos_ids=[1], decode=lambda ids, skip_special_tokens=True: " ".join(map(str, ids)))
    runtime = SimpleNamespace(tokenizer=tok, model=model, spec=SimpleNamespace(name="tiny", text=model.spec))
    rows = [[(5 * i + j) % 100 + 2 for j in range(2 + 2 * i)] for i in range(3)]
    plan = RunPlan(("a", "b", "c"), max_new_tokens=8, temperatures=(0.0, 1.5, 3.0), trials=2, top_k=50, seed=11)

    def run(size: int):
        return generate_all(runtime, plan, encoded=rows, batch_size=size)

    alone, shared, pairs = run(3), run(256), run(6)
    assert [g.token_ids for g in shared] == [g.token_ids for g in alone] == [g.token_ids for g in pairs]
    assert {g.batch for g in alone} == {3} and {g.batch for g in shared} == {18} and {g.batch for g in pairs} == {6}
    sampled = {g.token_ids for g in alone if g.temperature == 3.0 and g.prompt == "a"}
    assert len(sampled) == 2  # the two trials differ: each run has its own seed
    with pytest.raises(InspectError, match=r"row groups of \[2, 2\] rows do not cover a batch of 3 rows"):
        generate_batch(model, Batch(rows), 2, groups=[RowGroup(SamplingSettings(), 2)] * 2)


def test_a_chat_line_on_stdin_is_bounded(monkeypatch):
    from inspector.cli.chat import _typed

    monkeypatch.setattr("sys.stdin", io.StringIO("x" * (limits.MAX_STDIN_LINE + 10) + "\nnext\n"))
    with pytest.raises(InspectError, match="stdin: a line of more than 1,048,576 characters"):
        list(_typed())
    monkeypatch.setattr("sys.stdin", io.StringIO("y" * limits.MAX_STDIN_LINE + "\nsecond\n\nnot read\n"))
    assert [len(m) for m in _typed()] == [limits.MAX_STDIN_LINE, 6]
