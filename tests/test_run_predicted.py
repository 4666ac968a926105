"""`inspect run` shows the measured prefill and decode step beside this machine's roofline (issue 22 item 5).

A fixed machine record is put in the process's cache of measurements first, so the predictions are
deterministic; they are recomputed here from that record and the FLOPs ledger's own figures
(`flops_figures`, `kv_cache_bytes`) by the roofline's arithmetic, max(FLOPs / FLOP/s, bytes / B/s).
Timings are never asserted (they depend on the machine and its load), only that they are there.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from conftest import smollm2_gguf_path
from inspector.cli.app import app

torch = pytest.importorskip("torch")
runner = CliRunner()

PROMPTS = ("The capital of France is", "Hello")  # one left-padded batch of 2 rows
FAKE = dict(copy_gb_s=12.5, matmul_gflops=40.0)  # a made-up machine: any positive figures do


def fake_machine(dtype: str = "fp32"):
    from inspector.compute.machine import MachineRoof

    return MachineRoof(FAKE["copy_gb_s"], FAKE["matmul_gflops"], "torch", "fixed by the test", 0.0, "cpu", dtype)


@pytest.fixture(scope="module")
def run_json() -> dict:
    from inspector.compute import machine

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(machine._CACHE, "torch:cpu:fp32", fake_machine())
        result = runner.invoke(app, ["run", *PROMPTS, "-m", str(smollm2_gguf_path()), "-n", "3", "--device", "cpu",
                                     "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def by_hand(batch: int, tokens: int, steps: int) -> dict[str, tuple[float, float, float, str]]:
    """(FLOPs, bytes, ms, bound) of the prefill and of a decode step, from the ledger and the fake machine."""
    from inspector.compute.figures import FlopsRequest, flops_figures
    from inspector.source import account_model

    acc = account_model(str(smollm2_gguf_path()))
    context = tokens + (steps - 1) // 2  # the mean cache length of the decode steps timed
    fig = flops_figures(acc, FlopsRequest(seq_len=tokens, batch=batch, context=context, weight_bytes=4, kv_bytes=4))
    steps_of = {"prefill": (fig["prefill_flops_last_logits"],
                            fig["decode_weight_bytes"] + acc.kv_cache_bytes(tokens, batch, 4)),
                "decode": (fig["decode_flops"], fig["decode_bytes"])}
    out = {}
    for step, (flops, nbytes) in steps_of.items():
        compute_s, memory_s = flops / (FAKE["matmul_gflops"] * 1e9), nbytes / (FAKE["copy_gb_s"] * 1e9)
        out[step] = (flops, nbytes, max(compute_s, memory_s) * 1e3, "compute" if compute_s > memory_s else "memory")
    return out


def test_predicted_beside_measured_in_json(run_json):
    roof = run_json["roofline"]
    assert roof["status"].startswith("calibrated: measured on this machine by a copy test")
    assert (roof["machine"]["copy_gb_s"], roof["machine"]["matmul_gflops"]) == (12.5, 40.0)
    gens = run_json["generations"]
    steps = max(g["tokens"] for g in gens) - 1
    width = max(g["prompt_tokens"] for g in gens)
    pre, dec = roof["prefill"], roof["decode"]
    assert (pre["batch"], pre["tokens"], dec["batch"], dec["steps"]) == (2, width, 2, steps)
    want = by_hand(2, width, steps)
    for step, got in (("prefill", pre), ("decode", dec)):
        flops, nbytes, ms, bound = want[step]
        assert (got["flops"], got["bytes"], got["bound"]) == (flops, nbytes, bound)
        assert got["predicted_ms"] == pytest.approx(ms, rel=1e-12)
        assert got["measured_ms"] > 0
        assert got["measured_over_predicted"] == pytest.approx(got["measured_ms"] / ms, rel=1e-12)
        assert got["of_roofline"] == pytest.approx(ms / got["measured_ms"], rel=1e-12)
    assert dec["context"] == width + (steps - 1) // 2
    assert pre["predicted_tokens_per_s"] == pytest.approx(2 * width / (want["prefill"][2] / 1e3), rel=1e-12)


def test_both_columns_in_the_table(run_json):
    from inspector.generations import ModelRun
    from inspector.reports.render import to_markdown as render_md
    from inspector.reports.run import run_report

    run = ModelRun(run_json["model"], "cpu", "float32", None, roofline=run_json["roofline"])
    md = render_md(run_report([run]))
    assert "### Measured beside the roofline of this machine (cpu, fp32: copy 12.5 GB/s, matmul 40.0 GFLOP/s)" in md
    assert "| Measured (ms) " in md and "| Predicted (ms) " in md and "| Measured / predicted " in md
    pre = run_json["roofline"]["prefill"]
    assert f"{pre['predicted_ms']:.2f}" in md and f"{pre['measured_ms']:.2f}" in md


def _batches(steps: int):
    from inspector.runtime.batch import BatchResult

    return [(0, 5, BatchResult([[1] * (steps + 1)], prefill_s=0.02, decode_s=0.01 * steps, steps=steps)),
            (0, 5, BatchResult([[1] * (steps + 1)], prefill_s=0.01, decode_s=0.03 * steps, steps=steps)),
            (1, 3, BatchResult([[1]], prefill_s=0.001))]  # a second chunk: not the first batch


def test_first_batch_fastest_runs_and_no_decode_step(monkeypatch):
    from inspector.compute import machine
    from inspector.runtime.run import first_batch, roofline_beside

    assert first_batch(_batches(4)) == ((1, 5, 4), 0.01, pytest.approx(0.01), 2)
    monkeypatch.setitem(machine._CACHE, "torch:cpu:fp32", fake_machine())
    rt = SimpleNamespace(device=torch.device("cpu"), dtype_name="float32")
    roof = roofline_beside(rt, str(smollm2_gguf_path()), _batches(0))  # one new token: no decode step ran
    assert roof["prefill"]["measured_ms"] == pytest.approx(10.0)
    assert roof["decode"]["measured_ms"] is None and roof["decode"]["of_roofline"] is None
    assert roof["decode"]["predicted_ms"] == pytest.approx(by_hand(1, 5, 1)["decode"][2], rel=1e-12)


def test_no_prediction_says_why(monkeypatch):
    """A dtype with no matmul measurement, and a model the ledger cannot count: a status, not a failure."""
    import inspector.source
    from inspector.generations import ModelRun
    from inspector.reports.render import to_markdown as render_md
    from inspector.reports.run import run_report
    from inspector.runtime.run import roofline_beside

    rt = SimpleNamespace(device=torch.device("cpu"), dtype_name="float64")
    got = roofline_beside(rt, str(smollm2_gguf_path()), _batches(2))
    assert got == {"status": "no prediction: dtype 'float64': expected one of bf16, fp16, fp8, int8, tf32, fp32"}
    no_family = SimpleNamespace(spec=SimpleNamespace(name="some/model", text=None))
    monkeypatch.setattr(inspector.source, "account_model", lambda model: no_family)
    got = roofline_beside(SimpleNamespace(device=torch.device("cpu"), dtype_name="float32"), "some/model",
                          _batches(2))
    assert got["status"].startswith("no prediction: some/model: no FLOPs without a native family")
    md = render_md(run_report([ModelRun("some/model", "cpu", "float32", None, roofline=got)]))
    assert "no prediction: some/model" in md and "### Measured beside" not in md


def test_no_predict_is_refused_with_beams():
    result = runner.invoke(app, ["run", "Hi", "--num-beams", "2", "--no-predict"])
    assert result.exit_code == 2 and "--no-predict" in result.output


@pytest.mark.parametrize("flags, predict", [((), True), (("--no-predict",), False)])
def test_no_predict_reaches_the_run(monkeypatch, flags, predict):
    """--no-predict turns the machine measurement off (the run itself replaced: no model is loaded)."""
    import inspector.runtime.run
    from inspector.generations import ModelRun

    seen = {}

    def fake_run_models(plan, choice, on_token=None, predict=True):
        seen["predict"] = predict
        return [ModelRun("m", "cpu", "float32", None)]

    monkeypatch.setattr(inspector.runtime.run, "run_models", fake_run_models)
    result = runner.invoke(app, ["run", "Hi", *flags, "-f", "json"])
    assert result.exit_code == 0, result.output
    assert seen == {"predict": predict} and "roofline" not in json.loads(result.stdout)
