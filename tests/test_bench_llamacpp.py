"""benchmarks/bench_llamacpp.py's pieces, in seconds: our side on SmolLM2 with 3 new tokens (the rates are
`inspect run`'s own, from its generate_all), the arithmetic of llama.cpp's counters and of the ratios,
and llama.cpp's side only where an interpreter with `llama_cpp` is at hand ($LLAMA_PYTHON, or this one
importing it). Timings are never asserted: they depend on the machine and its load."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_llamacpp.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_llamacpp", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_llamacpp"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _llama_python() -> str | None:
    if os.environ.get("LLAMA_PYTHON"):
        return os.environ["LLAMA_PYTHON"]
    return None if importlib.util.find_spec("llama_cpp") is None else "python"


def test_ours_only_runs_and_reports(bench, tmp_path, capsys):
    out = tmp_path / "runs.json"
    cells = bench.main(["--models", "smollm2", "--threads", "1", "--reps", "1", "--new-tokens", "3",
                        "--ours-only", "--json", str(out)])
    assert [(c.model, c.threads, len(c.ours), len(c.llama)) for c in cells] == [("smollm2", 1, 1, 0)]
    run = cells[0].ours[0]
    assert len(run["tokens"]) == 3 and run["text"]  # greedy SmolLM2 does not stop within 3 tokens
    assert run["decode_tok_s"] == pytest.approx(2 / run["decode_s"])  # run's definition: tokens after the first
    assert run["prefill_tok_s"] == pytest.approx(5 / run["prefill_s"])  # 5 prompt tokens
    printed = capsys.readouterr().out
    assert "| SmolLM2-135M-Instruct Q4_1 | 1 |" in printed and "not run (--ours-only)" in printed
    assert json.loads(out.read_text())["cells"][0]["model"] == "smollm2"


def test_counters_and_ratios(bench):
    rec = {"tokens": [1, 2, 3, 4, 5], "n_eval": 4, "t_eval_ms": 80.0, "n_p_eval": 6, "t_p_eval_ms": 30.0,
           "wall_decode_s": 0.1}
    assert bench.llama_rates(rec) == {"decode_tok_s": 50.0, "prefill_tok_s": 200.0, "wall_decode_tok_s": 40.0}
    cell = bench.Cell("gemma3", 2, [2, 3], ours=[{"decode_tok_s": v} for v in (10.0, 12.0, 11.0)],
                      llama=[{"decode_tok_s": v, "wall_decode_tok_s": v} for v in (50.0, 40.0, 55.0)])
    assert bench.paired(cell, "decode_tok_s").values == [0.2, 0.3, 0.2]
    row = bench.rate_rows([cell], "decode_tok_s")[0]
    assert row.startswith("| Gemma 3 270M Q4_K_M | 2 | 11.0 ") and "0.20 (" in row and row.endswith("| 3 |")
    assert "the machine was busy" in row  # spreads of 18% and 27%: no ratio of medians


@pytest.mark.parametrize("a, b, first", [([1, 2, 3], [1, 2, 3], None), ([1, 2, 3], [1, 5, 3], 1),
                                         ([1, 2], [1, 2, 3], 2)], ids=["same", "differs", "shorter"])
def test_first_difference(bench, a, b, first):
    assert bench.first_difference(a, b) == first


@pytest.mark.skipif(_llama_python() is None, reason="no Python with llama_cpp (set LLAMA_PYTHON)")
def test_llama_side_agrees_on_smollm2(bench, capsys):
    cells = bench.main(["--models", "smollm2", "--threads", "1", "--reps", "1", "--new-tokens", "3",
                        "--llama-python", _llama_python()])
    ours, theirs = cells[0].ours[0], cells[0].llama[0]
    assert theirs["tokens"] == ours["tokens"] and theirs["own_ids"] == cells[0].ids
    assert (theirs["n_p_eval"], theirs["n_eval"]) == (5, 2)  # the prompt once, then tokens after the first
    assert "| SmolLM2-135M-Instruct Q4_1 | 3 / 3 | yes | same |" in capsys.readouterr().out
