"""The roofline (inspector/compute/roofline.py, hardware.py, machine.py) against published figures.

Sources of every figure: fixtures/compute/README.md, section "Roofline figures". The bytes and FLOPs
here come from our inventory of the published config or from the papers' own formulas (the FLOPs
ledger is not used, so these tests hold whatever it counts).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from inspector.compute import hardware as hwmod
from inspector.compute.machine import as_hardware, measure_machine
from inspector.compute.roofline import (
    BARE, COMPUTE, DEFAULT_MBU, DEFAULT_MFU, MEMORY, DecodeLine, Efficiency, Request, Setup, Shape, Work,
    achieved_mbu, allreduce_s, decode, decode_line, inference, inference_json, per_gpu, prefill, ridge_batch,
    train_time,
)
from inspector.errors import InspectError
from inspector.inventory.accounting import account
from inspector.memory.gpus import ALL_PRESETS
from inspector.spec.model import from_hf_config

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "compute" / "roofline.json").read_text())


def test_every_gpu_preset_has_datasheet_peaks():
    """One record per preset of inspector.memory.gpus, same names; bf16 and fp32 always; a URL each."""
    assert tuple(hwmod.HARDWARE) == ALL_PRESETS
    for hw in hwmod.HARDWARE.values():
        assert {"bf16", "fp16", "int8", "tf32", "fp32"} <= set(hw.tflops), hw.name
        assert hw.source.startswith("https://") and hw.memory_gb_s > 0 and hw.links, hw.name
        assert hw.tflops["bf16"] > hw.tflops["fp32"] or hw.name.startswith("RTX"), hw.name


@pytest.mark.parametrize("name,bf16,fp8", [("H100-80GB", 989.5, 1979.0), ("L4-24GB", 121.0, 242.5),
                                           ("L40-48GB", 181.05, 362.0), ("MI300X-192GB", 1307.4, 2614.9)],
                         ids=["H100", "L4", "L40", "MI300X"])
def test_dense_is_half_the_sparse_datasheet_figure(name, bf16, fp8):
    """Datasheets print 1,979* / 242* / 362.1* / 2,614.9 (with sparsity) for bf16: dense is half."""
    hw = hwmod.hardware(name)
    assert hwmod.peak_tflops(hw, "bfloat16") == bf16 and hwmod.peak_tflops(hw, "fp8") == fp8


def test_ampere_has_no_fp8_and_links_join_what_they_can():
    with pytest.raises(InspectError, match="no fp8"):
        hwmod.peak_tflops(hwmod.hardware("A100-80GB"), "fp8")
    rtx3090 = hwmod.hardware("RTX3090-24GB")
    assert hwmod.link_for(rtx3090, 2).kind.startswith("NVLink") and hwmod.link_for(rtx3090, 4).kind.startswith("PCIe")
    assert hwmod.link_for(hwmod.hardware("H100-80GB"), 8).gb_s == 450.0  # 900 GB/s stated, both ways


def _llama2_7b():
    g = FIXTURE["gpt_fast"]
    acc = account(from_hf_config(g["config"], g["model"], g["config_source"]))
    embedding = sum(r.params for r in acc.rows if r.name == "Embedding")  # the input table only
    return g, acc.totals, embedding


def test_gpt_fast_decode_is_bounded_by_the_roofline_at_its_bandwidth():
    """gpt-fast, A100 at 330 W, batch 1: 104.9 tok/s at 1,397.31 GB/s. A decode step reads every weight
    but the input embedding table (one row is gathered) and the KV cache at the run's mean context
    (5 + 200/2 = 105): the bare roofline at 1,397.31 GB/s must not be beaten."""
    g, totals, embedding = _llama2_7b()
    assert totals.total_params == g["published_params"]
    context = g["prompt_tokens"] + g["new_tokens"] / 2
    row = embedding // g["config"]["vocab_size"] * 2  # the one embedding row gathered per token
    read = (totals.total_params - embedding) * 2 + row
    step_bytes = read + context * totals.kv_cache_bytes_per_token  # 32 layers · 2 · 4096 · 2 B per token
    flops = 2 * (totals.total_params - embedding)  # matmul FLOPs per token (2N): compute stays far below
    a100 = hwmod.hardware(g["gpu"])
    measured_bw = a100._replace(memory_gb_s=g["achieved_gb_s"])
    phase = decode(Work(flops, step_bytes), 1, Setup(measured_bw, "bf16", BARE))
    assert phase.step.bound == MEMORY
    assert g["tokens_per_s"] <= phase.tokens_per_s <= g["tokens_per_s"] * 1.03  # bounds it, and tightly
    # The MBU the measurement implies, over the A100 80GB datasheet's 2,039 GB/s: about 0.69.
    mbu = achieved_mbu(g["tokens_per_s"], step_bytes, a100)
    assert mbu == pytest.approx(g["expected_mbu"], rel=0.03)
    assert DEFAULT_MBU == pytest.approx(g["achieved_gb_s"] / a100.memory_gb_s)
    # All weights read (embedding table included) would put the bound under the measurement.
    assert g["achieved_gb_s"] * 1e9 / (totals.total_params * 2) < g["tokens_per_s"]


def test_megatron_gpt3_training_days():
    """Table 2: 174.6B parameters on 300B tokens, 1,536 A100s at 141 TFLOP/s: 23 days by 8·T·P/(n·X)
    (6 FLOPs per parameter and token, plus a forward recomputed: 8)."""
    m = FIXTURE["megatron"]
    s = m["gpt3_shape"]
    l, h = s["layers"], s["hidden"]
    params = 12 * l * h * h * (1 + 13 / (12 * h) + (s["vocab"] + s["seq"]) / (12 * l * h))
    assert params == pytest.approx(m["params"], rel=1e-3)  # the paper's own formula gives its 174.6B
    for row in m["rows"]:
        run = train_time(8 * m["tokens"] * m["params"], row["gpus"], tflops_per_gpu=row["tflops_per_gpu"])
        assert run.days == pytest.approx(row["days"], rel=0.03), row
        assert run.gpu_hours == pytest.approx(run.days * 24 * row["gpus"])
    a100 = Setup(hwmod.hardware("A100-80GB"), "bf16", Efficiency(mfu=141 / 312))
    at_mfu = train_time(8 * m["tokens"] * m["params"], m["gpus"], a100)
    assert at_mfu.tflops_per_gpu == pytest.approx(141) and at_mfu.days == pytest.approx(m["days"], rel=0.03)
    assert DEFAULT_MFU == pytest.approx(m["tflops_per_gpu"] / 312)


@pytest.mark.parametrize("name,ridge", [("A100-80GB", 312e12 / 2039e9), ("H100-80GB", 989.5e12 / 3350e9),
                                        ("L4-24GB", 121e12 / 300e9)], ids=["A100", "H100", "L4"])
def test_ridge_batch_and_bound_labels(name, ridge):
    """Weights only (no KV): a bf16 model of P parameters reads 2P bytes once per step and does 2P FLOPs
    per sequence, so decode turns compute-bound at B* = peak / bandwidth (A100: 312e12 / 2.039e12 = 153.0,
    H100: 989.5e12 / 3.35e12 = 295.4, L4: 121e12 / 300e9 = 403.3) on the bare roofline."""
    p = 7e9
    setup = Setup(hwmod.hardware(name), "bf16", BARE)
    line = DecodeLine(2 * p, 0.0, 2 * p)
    assert ridge_batch(line, setup) == pytest.approx(ridge)
    below, above = math.floor(ridge) - 1, math.ceil(ridge) + 1
    assert decode(Work(below * 2 * p, 2 * p), below, setup).step.bound == MEMORY
    assert decode(Work(above * 2 * p, 2 * p), above, setup).step.bound == COMPUTE
    # The line through two decode steps recovers the same shape.
    assert decode_line(Work(2 * p, 2 * p), Work(4 * p, 2 * p)) == line
    # Each sequence's KV read (attention does ~1 FLOP per KV byte in bf16) keeps it memory-bound for ever.
    assert ridge_batch(DecodeLine(2 * p, 2 * p / ridge, 2 * p), setup) is None


def test_prefill_time_and_tp_communication():
    """Prefill of 2·P·N FLOPs at N = 4096 on an H100 is compute-bound: TTFT = 2PN / (peak · MFU).
    Under TP 8 (NVLink 450 GB/s each way) each layer adds two ring all-reduces of N·d·2 bytes, each
    2·7/8 of the message over the link."""
    p, n, d, layers = 8e9, 4096, 4096, 32
    hw = hwmod.hardware("H100-80GB")
    setup = Setup(hw, "bf16", Efficiency(mfu=0.5, mbu=0.8))
    phase = prefill(Work(2 * p * n, 2 * p), n, setup)
    assert phase.step.bound == COMPUTE
    assert phase.step.seconds == pytest.approx(2 * p * n / (989.5e12 * 0.5))
    assert phase.tokens_per_s == pytest.approx(n / phase.step.seconds)
    one = allreduce_s(n * d * 2, 8, 450.0)
    assert one == pytest.approx(2 * 7 / 8 * n * d * 2 / 450e9)
    tp = prefill(Work(2 * p * n, 2 * p), n, setup._replace(tp=8), Shape(layers, d, 2))
    assert tp.step.comm_s == pytest.approx(2 * layers * one)
    assert tp.step.seconds == pytest.approx(phase.step.seconds / 8 + 2 * layers * one)


def test_machine_roofline_is_positive_and_quick():
    """Measured once per process; positive figures; no timing is asserted beyond 'returns'."""
    t0 = time.perf_counter()
    roof = measure_machine()
    assert roof.copy_gb_s > 0 and roof.matmul_gflops > 0 and roof.how
    assert measure_machine() is roof  # kept for the process
    hw = as_hardware(roof)
    assert hw.memory_gb_s == roof.copy_gb_s and hw.tflops["fp32"] > 0
    step = decode(Work(2e9, 2e9), 1, Setup(hw, "float32", BARE)).step  # 1 FLOP per byte: memory-bound on a CPU
    assert step.seconds == pytest.approx(max(2e9 / (roof.copy_gb_s * 1e9), 2e9 / (roof.matmul_gflops * 1e9)))
    assert time.perf_counter() - t0 < 30  # a generous cap: this only catches a runaway loop


def test_inference_on_every_preset_and_its_json():
    """The entry point `inspect flops --gpu` calls: TTFT, TPOT, tokens/s per preset; fp8 skips the cards
    without FP8 Tensor Cores (A100, A10, RTX 3090: Ampere). Hand arithmetic on an A100, bare roofline:
    a 7B bf16 model, prompt 512, batch 4 at KV 1 MB per sequence: TPOT = (14e9 + 4e6) B / 2,039 GB/s."""
    p, kv = 7e9, 1e6
    at_b = Work(4 * 2 * p, 2 * p + 4 * kv)
    request = Request(Work(2 * p * 512, 2 * p), 512, at_b, 4, Work(5 * 2 * p, 2 * p + 5 * kv))
    a100 = inference(request, Setup(hwmod.hardware("A100-80GB"), "bf16", BARE))
    assert a100.tpot_s == pytest.approx((2 * p + 4 * kv) / 2039e9)
    assert a100.tokens_per_s == pytest.approx(4 / a100.tpot_s)
    assert a100.ttft_s == pytest.approx(2 * p * 512 / 312e12)
    r = 312e12 / 2039e9
    assert a100.ridge_batch == pytest.approx(r * 2 * p / (2 * p - r * kv))
    keys = inference_json(a100)
    assert {"ttft_s", "tpot_s", "tokens_per_s", "prefill_bound", "decode_bound", "ridge_batch"} <= set(keys)
    assert (keys["prefill_bound"], keys["decode_bound"]) == (COMPUTE, MEMORY)
    done, skipped = per_gpu(request, "fp8")
    assert set(skipped) == {"A100-80GB", "A100-40GB", "A10-24GB", "RTX3090-24GB"}
    assert [d.gpu for d in done] == [n for n in ALL_PRESETS if n not in skipped]
    h100, h200 = done[0], done[1]
    assert h100.ttft_s == pytest.approx(h200.ttft_s) and h200.tpot_s < h100.tpot_s  # same compute, more bandwidth
