"""`inspect params --flops`: a FLOPs column (a prefill of --seq-len tokens, as computed) in every format, equal
to the FLOPs ledger (itself equal to torch's FlopCounterMode: tests/test_flops.py) and to `inspect flops`."""

from __future__ import annotations

import csv
import io
import json

from typer.testing import CliRunner

from inspector.cli.app import app
from inspector.compute.figures import FlopsRequest, row_flops
from inspector.source import account_model

runner = CliRunner()

# Llama-3.1-8B at N = 128: 2·N·(matmul parameters) + 4·L·N²·d (issue 22; FlopCounterMode over the reference
# on meta gives the same number, tests/test_flops.py::test_llama_8b_prefill_figure).
LLAMA_8B_N128 = 1_929_782_493_184


def invoke(*args: str):
    return runner.invoke(app, list(args))


def json_of(*args: str):
    result = invoke(*args, "-f", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_rows_are_the_ledger_and_inspect_flops():
    data = json_of("params", "llama-3.1-8b", "--flops", "--seq-len", "128")
    assert data["flops"]["prefill_flops"] == LLAMA_8B_N128
    assert sum(r["prefill_flops"] for r in data["rows"]) == LLAMA_8B_N128
    ledger = row_flops(account_model("llama-3.1-8b"), FlopsRequest(seq_len=128))
    assert {(r["component"], r["name"]): r["prefill_flops"] for r in data["rows"]} == \
        {key: cell["prefill"] for key, cell in ledger.items()}
    flops = json_of("flops", "llama-3.1-8b", "--seq-len", "128")
    assert [r["prefill"] for r in flops["rows"]] == [r["prefill_flops"] for r in data["rows"]]
    assert flops["prefill_flops"] == data["flops"]["prefill_flops"]


def test_defaults_are_those_of_inspect_flops_and_batch_scales():
    one = json_of("params", "qwen3-0.6b", "--flops")
    assert one["flops"]["seq_len"] == 2048 and one["flops"]["batch"] == 1
    assert one["flops"]["prefill_flops"] == json_of("flops", "qwen3-0.6b")["prefill_flops"]
    two = json_of("params", "qwen3-0.6b", "--flops", "--batch", "2")
    assert two["flops"]["prefill_flops"] == 2 * one["flops"]["prefill_flops"]
    plain = json_of("params", "qwen3-0.6b")
    assert "flops" not in plain and "prefill_flops" not in plain["rows"][0]


def test_csv_and_markdown_carry_the_column():
    result = invoke("params", "llama-3.1-8b", "--flops", "--seq-len", "128", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sum(int(r["prefill_flops"]) for r in rows if r["section"] == "layers") == LLAMA_8B_N128
    assert {r["name"]: r["value"] for r in rows}["flops.prefill_flops"] == str(LLAMA_8B_N128)
    md = invoke("params", "llama-3.1-8b", "--flops", "--seq-len", "128", "-f", "md").stdout
    assert "FLOPs (prefill, 128 tokens)" in md and "1,929,782,493,184" in md


def test_side_by_side_and_a_vlm_text_prefill():
    """Two models: a FLOPs column each; a VLM's tower and projector run on no text prompt (0, in a note)."""
    md = invoke("params", "qwen3-0.6b", "Qwen/Qwen2-VL-2B-Instruct", "--flops", "--seq-len", "64", "-f", "md")
    assert md.exit_code == 0, md.output
    assert "Qwen/Qwen3-0.6B FLOPs" in md.stdout and "Qwen/Qwen2-VL-2B-Instruct FLOPs" in md.stdout
    assert "not in the FLOPs column (a text prompt does not run them): vision_encoder" in md.stdout
    vlm = json_of("params", "Qwen/Qwen2-VL-2B-Instruct", "--flops", "--seq-len", "64")
    assert all(r["prefill_flops"] == 0 for r in vlm["rows"] if r["component"] != "language_model")
    assert vlm["flops"]["not_counted"]


def test_seq_len_without_flops_is_one_line():
    result = invoke("params", "qwen3-0.6b", "--seq-len", "128")
    assert result.exit_code == 2
    assert "--seq-len 128" in result.stderr and "--flops" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_seq_len_past_the_model_warns():
    result = invoke("params", "gpt2", "--flops", "--seq-len", "4096", "-f", "json")
    assert result.exit_code == 0
    assert "--seq-len 4,096 is past its max_position_embeddings (1,024)" in result.stderr
