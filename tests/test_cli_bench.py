"""`inspect bench` on the smallest real model (SmolLM2-135M Q4_1 GGUF) with tiny settings: the calibration
row's keys, measured and predicted both present and positive, the prediction by hand from the row's own
roofline. Timings are never asserted (they depend on the machine and its load)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import smollm2_gguf_path
from inspector.cli.app import app

runner = CliRunner()


def _bench(tmp_path, *args: str) -> dict:
    out = tmp_path / "calibration.json"
    result = runner.invoke(app, ["bench", str(smollm2_gguf_path()), "--batch", "1", "--context", "16",
                                 "--new-tokens", "4", *args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def row(tmp_path_factory) -> dict:
    return _bench(tmp_path_factory.mktemp("bench"), "--device", "cpu")


def test_calibration_row_keys(row):
    for key in ("model", "device", "device_name", "dtype", "roofline", "points", "timing", "peak_memory_how"):
        assert key in row
    assert row["device"] == "cpu" and row["dtype"] == "fp32"  # auto: float32 on a CPU (the measured matmul's dtype)
    assert row["roofline"]["copy_gb_s"] > 0 and row["roofline"]["matmul_gflops"] > 0
    assert [(p["batch"], p["context"], p["new_tokens"]) for p in row["points"]] == [(1, 16, 4)]


def test_measured_and_predicted_present_and_positive(row):
    p = row["points"][0]
    for key in ("prefill_ms", "decode_ms_per_token"):
        assert p["measured"][key] > 0 and p["predicted"][key] > 0
    assert p["measured"]["peak_memory_bytes"] > 0
    for key in ("prefill_mfu", "prefill_mbu", "decode_mfu", "decode_mbu"):
        assert p["implied"][key] > 0


def test_prediction_by_hand_from_the_row(row):
    """The roofline with efficiencies 1: max(FLOPs / measured FLOP/s, bytes / measured B/s)."""
    roof, pred = row["roofline"], row["points"][0]["predicted"]
    flops_s, bytes_s = roof["matmul_gflops"] * 1e9, roof["copy_gb_s"] * 1e9
    for step, ms in (("prefill", "prefill_ms"), ("decode", "decode_ms_per_token")):
        want = max(pred[f"{step}_flops"] / flops_s, pred[f"{step}_bytes"] / bytes_s) * 1e3
        assert pred[ms] == pytest.approx(want, rel=1e-9)
    assert pred["decode_context"] == 16 + (4 - 1) // 2


@pytest.mark.parametrize("flag, value", [("--batch", "0"), ("--context", "x")])
def test_bad_sizes_one_line(flag, value):
    result = runner.invoke(app, ["bench", "model.gguf", flag, value])
    assert result.exit_code == 2
    assert flag in result.output


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no cuda device here")
def test_cuda_row(tmp_path):
    row = _bench(tmp_path, "--device", "cuda")
    assert row["device"].startswith("cuda") and row["dtype"] == "bf16"
    p = row["points"][0]
    assert p["measured"]["prefill_ms"] > 0 and p["predicted"]["prefill_ms"] > 0


def test_machine_record_in_the_model_dtype():
    """measure_device keeps one record per (device, dtype); as_hardware keys its peak by that dtype."""
    from inspector.compute.hardware import peak_tflops
    from inspector.compute.machine import MachineRoof, as_hardware, measure_device

    roof = MachineRoof(10.0, 500.0, "torch", "by hand", 0.0, "cuda", "bf16")
    assert peak_tflops(as_hardware(roof), "bf16") == 0.5
    assert measure_device("cpu", "fp32", budget_s=0.05) is measure_device("cpu", "fp32")
