"""A prefill and a decode step predicted by the FLOPs ledger through a measured machine's roofline.

The one construction `inspect run` and `inspect bench` share. A prefill of batch × tokens computes the
logits at the last position only (as generation asks) and reads the weights once and writes the KV cache
of every token; a decode step reads the weights once and each row's KV cache, at the mean context of the
steps timed (inspector.compute.figures: decode_flops, decode_bytes). Both go through the roofline of this
machine measured in the dtype the model runs in (inspector.compute.machine): achieved copy GB/s and
matmul FLOP/s, so the efficiencies are 1 (roofline.BARE). Pure arithmetic: no torch here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from inspector.compute.figures import FlopsRequest, flops_figures
from inspector.compute.hardware import DTYPE_BYTES
from inspector.compute.machine import MachineRoof, as_hardware
from inspector.compute.roofline import BARE, Request, Setup, Work, inference

STATUS = ("calibrated: measured on this machine by a copy test (bandwidth) and a matmul (FLOP/s) in the "
          "model's dtype, once per process; efficiencies 1, since these are achieved figures; FLOPs and bytes "
          "exact (the FLOPs ledger)")


class StepShape(NamedTuple):
    """What was timed: `batch` rows of `prompt_tokens` each (the padded width) prefilled, then
    `decode_steps` decode steps of one token per row."""

    batch: int
    prompt_tokens: int
    decode_steps: int


def decode_context(shape: StepShape) -> int:
    """The context a decode step is predicted at: the mean cache length of the steps timed."""
    return shape.prompt_tokens + (max(shape.decode_steps, 1) - 1) // 2


def predict(acc, shape: StepShape, roof: MachineRoof) -> dict[str, Any]:
    """The roofline of one timed shape on the machine `roof` (its dtype: the weights' and KV cache's
    bytes per element): FLOPs, bytes, predicted ms and the bound of the prefill and of a decode step."""
    b, n = shape.batch, shape.prompt_tokens
    nbytes = DTYPE_BYTES[roof.dtype]
    context = decode_context(shape)
    fig = flops_figures(acc, FlopsRequest(seq_len=n, batch=b, context=context, weight_bytes=nbytes,
                                          kv_bytes=nbytes))
    written = acc.kv_cache_bytes(n, b, nbytes) or 0
    pre = Work(fig["prefill_flops_last_logits"], fig["decode_weight_bytes"] + written)
    dec = Work(fig["decode_flops"], fig["decode_bytes"])
    inf = inference(Request(prefill=pre, prompt_tokens=b * n, decode=dec, batch=b),
                    Setup(as_hardware(roof), roof.dtype, BARE))
    return {"prefill_flops": pre.flops, "prefill_bytes": pre.bytes, "decode_flops": dec.flops,
            "decode_bytes": dec.bytes, "decode_context": context,
            "prefill_ms": inf.ttft_s * 1e3, "decode_ms_per_token": inf.tpot_s * 1e3,
            "prefill_bound": inf.prefill.bound, "decode_bound": inf.decode.bound}


def implied(pred: dict[str, Any], measured: dict[str, Any], roof: MachineRoof) -> dict[str, float]:
    """MFU and MBU the measurement implies against the machine's measured peaks, and measured/predicted."""
    pre_s, dec_s = measured["prefill_ms"] / 1e3, measured["decode_ms_per_token"] / 1e3
    flops_s, bytes_s = roof.matmul_gflops * 1e9, roof.copy_gb_s * 1e9
    return {"prefill_mfu": pred["prefill_flops"] / pre_s / flops_s,
            "prefill_mbu": pred["prefill_bytes"] / pre_s / bytes_s,
            "decode_mfu": pred["decode_flops"] / dec_s / flops_s,
            "decode_mbu": pred["decode_bytes"] / dec_s / bytes_s,
            "prefill_measured_over_predicted": measured["prefill_ms"] / pred["prefill_ms"],
            "decode_measured_over_predicted": measured["decode_ms_per_token"] / pred["decode_ms_per_token"]}


def machine_json(roof: MachineRoof) -> dict[str, Any]:
    """The measured machine as JSON: its peaks, the dtype of its matmul and how they were measured."""
    return {"device": roof.device, "copy_gb_s": roof.copy_gb_s, "matmul_gflops": roof.matmul_gflops,
            "dtype": roof.dtype, "how": roof.how, "seconds": roof.seconds}
