"""`inspect flops` through the CLI: the JSON keys issue 22 asks for, one-line errors (exit 2), the roofline
with --gpu, and the published figures (fixtures/compute/*.json, sources there) reproduced end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "compute"
runner = CliRunner()


def _json(*args: str) -> dict:
    result = runner.invoke(app, ["flops", *args, "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _config(tmp_path: Path, fixture: str, key: str) -> str:
    path = tmp_path / f"{key}.json"
    path.write_text(json.dumps(json.loads((FIXTURES / fixture).read_text())[key]["config"]))
    return str(path)


def test_json_keys_and_the_llama_figure():
    d = _json("llama-3.1-8b", "--seq-len", "128", "--train-tokens", "1e9")
    # issue 22: 2·N·(matmul params) + 4·L·N²·d, equal to FlopCounterMode (tests/test_flops.py)
    assert d["prefill_flops"] == 1_929_782_493_184
    assert d["prefill_flops_last_logits"] < d["prefill_flops"]
    for key in ("decode_flops", "train_flops_6nd", "train_flops", "decode_bytes", "decode_intensity", "rows"):
        assert key in d
    assert "ttft_s" not in d and "train_days" not in d
    assert d["train_flops_6nd"] == 6 * 8_030_261_248 * 10**9


def test_gpu_adds_the_roofline():
    d = _json("llama-3.1-8b", "--batch", "4", "--context", "512", "--gpu", "H100-80GB")
    for key in ("ttft_s", "tpot_s", "tokens_per_s"):
        assert d[key] > 0
    assert d["tokens_per_s"] == pytest.approx(4 / d["tpot_s"])
    assert d["roofline"]["decode_bound"] == "memory" and d["roofline"]["ridge_batch"] > 4
    table = runner.invoke(app, ["flops", "llama-3.1-8b", "--gpu", "H100-80GB", "-f", "md"])
    assert table.exit_code == 0 and "Roofline on H100-80GB" in table.stdout and "calibrated" in table.stdout


def test_gpt_fast_decode_is_bounded_by_the_roofline(tmp_path):
    """gpt-fast: Llama-2-7B bf16 batch 1 decodes at 104.9 tok/s at 1,397.31 GB/s achieved on an A100-80GB; the
    default MBU is that figure over 2,039 GB/s, so the decode rate at the mean context (5 + 200/2) bounds it.
    The ledger's decode bytes (input embedding table left out, one row read) and the roofline's agree."""
    fast = json.loads((FIXTURES / "roofline.json").read_text())["gpt_fast"]
    d = _json(_config(tmp_path, "roofline.json", "gpt_fast"), "--seq-len", "5", "--context", "105",
              "--gpu", "A100-80GB")
    assert d["decode_weight_bytes"] == (fast["published_params"] - 32000 * 4096 + 4096) * 2
    assert fast["tokens_per_s"] <= d["tokens_per_s"] <= fast["tokens_per_s"] * 1.03


def test_published_training_figures(tmp_path):
    pub = json.loads((FIXTURES / "published.json").read_text())
    palm = pub["palm_540b"]
    d = _json(_config(tmp_path, "published.json", "palm_540b"), "--train-tokens", str(palm["tokens"]))
    assert d["train_flops_6nd"] == pytest.approx(palm["train_flops"], rel=0.03)
    meg = pub["megatron_gpt3_175b"]
    d = _json(_config(tmp_path, "published.json", "megatron_gpt3_175b"), "--train-tokens", "300e9",
              "--gpus", str(meg["gpus"]), "--tflops", str(meg["tflops_per_gpu"]), "--recompute", "full")
    assert d["train_days"] == pytest.approx(meg["days"], rel=0.03)
    assert d["train_days_conventions"]["8TP"] == pytest.approx(meg["days"], rel=0.03)


@pytest.mark.parametrize("args,names", [
    (["--gpu", "X100"], "X100"),
    (["--gpu", "H100-80GB", "--mfu", "1.5"], "--mfu 1.5"),
    (["--train-tokens", "1.5"], "--train-tokens '1.5'"),
    (["--train-tokens", "ten"], "--train-tokens 'ten'"),
    (["--gpus", "8"], "--gpus"),
    (["--train-tokens", "1e9", "--gpus", "8"], "--gpus needs --tflops"),
    (["--tp", "2"], "--tp"),
    (["--recompute", "full"], "--recompute full"),
    (["--seq-len", "0"], "--seq-len"),
    (["--gpu", "A100-80GB", "--dtype", "fp8"], "fp8"),
], ids=["gpu", "mfu", "tokens-fraction", "tokens-word", "gpus-alone", "gpus-no-rate", "tp-no-gpu",
        "recompute-no-training", "seq-len", "dtype"])
def test_bad_input_is_one_line_exit_2(args, names):
    result = runner.invoke(app, ["flops", "llama-3.2-1b", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], result.stderr
