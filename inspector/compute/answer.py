"""The whole answer of `inspect flops`: the ledger's figures, the roofline on a GPU and the training time.

Pure arithmetic over inspector.compute.figures (FLOPs and bytes) and .roofline (times). Every figure
carries a status: "exact" (counted, equal to torch's FlopCounterMode, or a formula's value),
"calibrated" (a published measurement, named) or "assumed" (the option that changes it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from inspector.compute.figures import FlopsRequest, flops_figures, row_flops
from inspector.compute.hardware import hardware
from inspector.compute.roofline import (DEFAULT_MBU, DEFAULT_MFU, MBU_SOURCE, MFU_SOURCE, Efficiency, Request, Setup,
                                        Shape, Work, activation_bytes, inference, inference_json, train_time)
from inspector.errors import InspectError


@dataclass(frozen=True)
class Roof:
    """Where the roofline runs: a GPU preset, its dtype, the efficiencies (None: the calibrated defaults), TP."""

    gpu: str | None = None
    dtype: str = "bf16"
    mfu: float | None = None
    mbu: float | None = None
    tp: int = 1


@dataclass(frozen=True)
class Run:
    """A training run's hardware: GPUs and the FLOP/s each achieves (given, or the roof's peak × MFU)."""

    gpus: int | None = None
    tflops: float | None = None


def setup(roof: Roof) -> Setup:
    """The roofline's Setup for `roof`; the efficiencies' source says which are given and which calibrated."""
    mfu = DEFAULT_MFU if roof.mfu is None else roof.mfu
    mbu = DEFAULT_MBU if roof.mbu is None else roof.mbu
    source = "; ".join([f"MFU {mfu:.3f} " + ("given (--mfu)" if roof.mfu is not None else f"calibrated: {MFU_SOURCE}"),
                        f"MBU {mbu:.3f} " + ("given (--mbu)" if roof.mbu is not None else f"calibrated: {MBU_SOURCE}")])
    return Setup(hardware(roof.gpu), roof.dtype, Efficiency(mfu, mbu, 1.0, source), roof.tp)


def _roofline(acc, req: FlopsRequest, figures: dict, roof: Roof) -> dict[str, Any]:
    """TTFT, TPOT, tokens/s, the bounds and the ridge batch on `roof.gpu` (the decode at batch + 1 gives the
    ridge: the bytes and FLOPs one more sequence adds)."""
    nxt = flops_figures(acc, replace(req, batch=req.batch + 1, train_tokens=None, images=()))
    t = acc.spec.text
    shape = Shape(t.num_layers, t.hidden_size, activation_bytes(roof.dtype)) if roof.tp > 1 else None
    # a prefill reads the weights once and writes the KV cache of its batch x N tokens
    written = acc.kv_cache_bytes(req.seq_len, req.batch, req.kv_bytes)
    request = Request(prefill=Work(figures["prefill_flops_last_logits"], figures["decode_weight_bytes"] + written),
                      prompt_tokens=req.batch * req.seq_len,
                      decode=Work(figures["decode_flops"], figures["decode_bytes"]), batch=req.batch,
                      decode_next=Work(nxt["decode_flops"], nxt["decode_bytes"]), shape=shape)
    out = inference_json(inference(request, setup(roof)))
    out["tp"] = roof.tp
    out["status"] = "calibrated" if roof.mfu is None and roof.mbu is None else "assumed (--mfu/--mbu)"
    return out


def _training(figures: dict, roof: Roof, run: Run) -> dict[str, Any]:
    """Days and GPU-hours of the exact training count (and of each convention) on `run.gpus` GPUs."""
    if run.tflops is not None:
        kwargs, status = {"tflops_per_gpu": run.tflops}, "assumed (--tflops)"
    elif roof.gpu is not None:
        kwargs = {"setup": setup(roof)}
        status = "assumed (--mfu)" if roof.mfu is not None else "calibrated (Megatron-LM Table 2 MFU)"
    else:
        raise InspectError("--gpus needs --tflops X, or --gpu G (with --mfu M or the calibrated MFU)")
    main = train_time(figures["train_flops"], run.gpus, **kwargs)
    return {"train_days": main.days, "train_gpu_hours": main.gpu_hours, "train_seconds": main.seconds,
            "train_tflops_per_gpu": main.tflops_per_gpu, "train_rate_source": main.source, "gpus": run.gpus,
            "train_days_status": status,
            "train_days_conventions": {name: train_time(flops, run.gpus, **kwargs).days
                                       for name, flops in figures["train_conventions"].items()}}


def answer(acc, req: FlopsRequest, roof: Roof = Roof(), run: Run = Run()) -> dict[str, Any]:
    """Every figure of `inspect flops` as plain numbers (the JSON payload)."""
    if run.gpus is not None and req.train_tokens is None:
        raise InspectError("--gpus is the training run's GPU count: give --train-tokens D with it")
    if run.tflops is not None and run.gpus is None:
        raise InspectError("--tflops is a training run's rate per GPU: give --train-tokens D --gpus G with it")
    out = flops_figures(acc, req)
    out["model"] = acc.spec.name or acc.spec.model_type
    out["rows"] = [{"component": c, "name": name, **cells} for (c, name), cells in row_flops(acc, req).items()]
    out["decode_bytes_status"] = ("assumed (uniform routing: experts touched E(1-(1-k/E)^B))"
                                  if acc.spec.text.moe is not None and req.batch > 1 else "exact")
    if roof.gpu is not None:
        out["roofline"] = _roofline(acc, req, out, roof)
        out.update({k: out["roofline"][k] for k in ("ttft_s", "tpot_s", "tokens_per_s")})
    if run.gpus is not None:
        out.update(_training(out, roof, run))
    return out
