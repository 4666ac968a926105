"""Roofline time of a prefill, a decode step and a training run on a GPU, from their FLOPs and bytes.

The model, stated once:

- A step that does F FLOPs and moves M bytes between HBM and the chip takes
  max(F / (peak · MFU), M / (bandwidth · MBU)), plus its communication time under tensor parallelism
  (not overlapped: an upper estimate). The larger term names the bound: "compute" or "memory".
- Under TP over k GPUs each GPU does F/k and moves M/k (weights and KV heads split evenly) and, per
  layer, two all-reduces of the activations (after attention's output projection and after the
  MLP's down projection, Megatron-LM's layout, Shoeybi et al. 2019, arXiv:1909.08053 §3), each of
  b·n·d elements. A ring all-reduce sends and receives 2(k−1)/k of the message per GPU, so one takes
  2(k−1)/k · b·n·d·bytes / (link bandwidth per direction · link efficiency); the latency term
  (some µs per all-reduce) is left out.
- Decode at batch B moves the weights once plus each sequence's KV cache, and does B times the
  per-sequence FLOPs: it turns compute-bound at the ridge batch B* = R·W / (f − R·kv), where
  R = peak·MFU / (bandwidth·MBU) is the GPU's ridge intensity in FLOP per byte, W the bytes read once
  per step, f the FLOPs and kv the bytes of one more sequence; never when f ≤ R·kv (long contexts).
- Training: total FLOPs / (GPUs · FLOP/s per GPU), the FLOP/s given or peak · MFU.

Every time is "calibrated" by the efficiencies: DEFAULT_MBU and DEFAULT_MFU are measured figures
(sources below), overridable; with mfu = mbu = 1 it is the bare roofline, a bound.
"""

from __future__ import annotations

from typing import NamedTuple

from inspector.compute.hardware import DTYPE_BYTES, HARDWARE, Hardware, dtype_key, link_for, peak_tflops
from inspector.errors import InspectError

# gpt-fast (pytorch-labs/gpt-fast README, "Benchmarks"): Llama-2-7B bf16, batch 1, one A100-80GB
# power-limited to 330 W, torch.compile: 104.9 tok/s at 1,397.31 GB/s achieved; over the A100 80GB
# SXM datasheet's 2,039 GB/s that is an MBU of 0.685 (decode, weight-read bound; a full-power card
# would do somewhat better, so this is a conservative default).
GPT_FAST_GB_S, A100_80GB_GB_S = 1397.31, 2039.0
DEFAULT_MBU = GPT_FAST_GB_S / A100_80GB_GB_S
MBU_SOURCE = ("gpt-fast README (github.com/pytorch-labs/gpt-fast): Llama-2-7B bf16 batch 1 on an A100-80GB "
              "power-limited to 330 W, 1,397.31 GB/s achieved / 2,039 GB/s peak")
# Megatron-LM (Narayanan et al. 2021, arXiv:2104.04473, Table 2): GPT-3 175B trained with PTD parallelism
# on 1,536 A100s at 141 TFLOP/s per GPU, 45% of the A100's 312 dense bf16 TFLOP/s (end-to-end training
# with activation recomputation, counted as 8·T·P FLOPs). Used for prefill too (large GEMMs, as training).
MEGATRON_TFLOPS, A100_BF16_TFLOPS = 141.0, 312.0
DEFAULT_MFU = MEGATRON_TFLOPS / A100_BF16_TFLOPS
MFU_SOURCE = ("Megatron-LM (Narayanan et al. 2021, arXiv:2104.04473) Table 2: GPT-3 175B on 1,536 A100s at "
              "141 TFLOP/s per GPU / 312 peak")
# NCCL all-reduce bus bandwidth against the link's figure: no published per-card figure is used; 1.0 is
# the bare link (assumed; --link-efficiency changes it).
DEFAULT_LINK_EFFICIENCY = 1.0
SECONDS_PER_DAY = 86_400.0
COMPUTE, MEMORY = "compute", "memory"


class Work(NamedTuple):
    """What one step does: FLOPs and bytes moved to and from HBM (the FLOPs ledger's output)."""

    flops: float
    bytes: float


class Efficiency(NamedTuple):
    """Fractions of the datasheet peaks a kernel reaches: MFU of the FLOP/s, MBU of the bandwidth, and
    of the interconnect; `source` says where they come from ("given" when the user set them)."""

    mfu: float = DEFAULT_MFU
    mbu: float = DEFAULT_MBU
    link: float = DEFAULT_LINK_EFFICIENCY
    source: str = f"calibrated: MFU {MFU_SOURCE}; MBU {MBU_SOURCE}"


BARE = Efficiency(1.0, 1.0, 1.0, "bare roofline: datasheet peaks (a bound)")


class Setup(NamedTuple):
    """Where a model runs: a GPU, the dtype its matmuls use, the efficiencies, tensor parallelism."""

    hardware: Hardware
    dtype: str = "bf16"
    efficiency: Efficiency = Efficiency()
    tp: int = 1


class Shape(NamedTuple):
    """What the TP all-reduces carry: layers, hidden size, activation bytes per element."""

    layers: int
    hidden: int
    bytes_per_element: int = 2


class StepTime(NamedTuple):
    """A step's roofline: its time in seconds and the parts (compute, memory, communication), the bound,
    the step's arithmetic intensity (FLOP/byte) and the GPU's ridge intensity at these efficiencies."""

    seconds: float
    compute_s: float
    memory_s: float
    comm_s: float
    bound: str
    intensity: float
    ridge: float


class Phase(NamedTuple):
    """Prefill or decode: the step and the throughput it gives (tokens per second over all sequences)."""

    step: StepTime
    tokens: int
    tokens_per_s: float


class Training(NamedTuple):
    """A training run's wall time: seconds, days, GPU-hours, at the FLOP/s per GPU it assumed (and why)."""

    seconds: float
    days: float
    gpu_hours: float
    tflops_per_gpu: float
    source: str


def _positive(value: float, what: str) -> float:
    if not (isinstance(value, (int, float)) and value > 0):
        raise InspectError(f"{what}: expected a number above 0, got {value!r}")
    return float(value)


def ridge_intensity(setup: Setup) -> float:
    """FLOP per byte where compute time equals memory time on this GPU, dtype and efficiencies."""
    e = setup.efficiency
    return peak_tflops(setup.hardware, setup.dtype) * 1e12 * e.mfu / (setup.hardware.memory_gb_s * 1e9 * e.mbu)


def allreduce_s(message_bytes: float, gpus: int, link_gb_s: float, efficiency: float = 1.0) -> float:
    """One ring all-reduce of `message_bytes` over `gpus`: 2(k−1)/k of it each way, at the link's rate."""
    if gpus <= 1:
        return 0.0
    return 2 * (gpus - 1) / gpus * message_bytes / (link_gb_s * 1e9 * efficiency)


def tp_comm_s(tokens: int, shape: Shape, setup: Setup) -> float:
    """Communication of one forward under TP: two all-reduces per layer of tokens·d activations
    (`tokens` = batch × tokens in the step: N for a prefill, 1 per sequence for a decode step)."""
    if setup.tp <= 1:
        return 0.0
    link = link_for(setup.hardware, setup.tp)
    message = tokens * shape.hidden * shape.bytes_per_element
    return 2 * shape.layers * allreduce_s(message, setup.tp, link.gb_s, setup.efficiency.link)


def step_time(work: Work, setup: Setup, comm_s: float = 0.0) -> StepTime:
    """The roofline of one step on one GPU of the TP group (work split evenly over setup.tp GPUs)."""
    hw, e, k = setup.hardware, setup.efficiency, max(1, setup.tp)
    for value, what in ((e.mfu, "MFU"), (e.mbu, "MBU"), (e.link, "link efficiency")):
        _positive(value, what)
    compute_s = work.flops / k / (peak_tflops(hw, setup.dtype) * 1e12 * e.mfu)
    memory_s = work.bytes / k / (hw.memory_gb_s * 1e9 * e.mbu)
    intensity = work.flops / work.bytes if work.bytes else float("inf")
    return StepTime(max(compute_s, memory_s) + comm_s, compute_s, memory_s, comm_s,
                    COMPUTE if compute_s >= memory_s else MEMORY, intensity, ridge_intensity(setup))


def prefill(work: Work, tokens: int, setup: Setup, shape: Shape | None = None) -> Phase:
    """Time to first token: a prefill of `tokens` prompt tokens over all sequences (batch × N) doing
    `work`; tokens_per_s is prompt tokens per second. `shape` adds the TP all-reduces."""
    comm = tp_comm_s(tokens, shape, setup) if shape is not None else 0.0
    step = step_time(work, setup, comm)
    return Phase(step, tokens, tokens / step.seconds)


def decode(work: Work, batch: int, setup: Setup, shape: Shape | None = None) -> Phase:
    """Time per output token: one decode step of `batch` sequences doing `work` (at context T);
    tokens_per_s is the batch's output tokens per second (batch / TPOT)."""
    comm = tp_comm_s(batch, shape, setup) if shape is not None else 0.0
    step = step_time(work, setup, comm)
    return Phase(step, batch, batch / step.seconds)


class DecodeLine(NamedTuple):
    """A decode step as a line in the batch B: bytes = fixed_bytes + B·bytes_per_seq (weights once,
    KV cache per sequence), flops = B·flops_per_seq."""

    fixed_bytes: float
    bytes_per_seq: float
    flops_per_seq: float


def decode_line(at_1: Work, at_2: Work) -> DecodeLine:
    """The line through two decode steps at batch 1 and batch 2 (same context): the ledger's output."""
    per_seq = at_2.bytes - at_1.bytes
    return DecodeLine(at_1.bytes - per_seq, per_seq, at_2.flops - at_1.flops)


def ridge_batch(line: DecodeLine, setup: Setup) -> float | None:
    """The batch from which a decode step is compute-bound: R·W / (f − R·kv); None when it never is
    (each sequence's KV reads cost more time than its FLOPs, R·kv ≥ f)."""
    r = ridge_intensity(setup)
    margin = line.flops_per_seq - r * line.bytes_per_seq
    if margin <= 0:
        return None
    return r * line.fixed_bytes / margin


def train_time(total_flops: float, gpus: int, setup: Setup | None = None,
               tflops_per_gpu: float | None = None) -> Training:
    """Days and GPU-hours of `total_flops` on `gpus` GPUs, at `tflops_per_gpu` (achieved, e.g. Megatron's
    141) or, without it, at the setup's peak × MFU."""
    _positive(gpus, "GPUs")
    if tflops_per_gpu is not None:
        rate, source = _positive(tflops_per_gpu, "TFLOP/s per GPU"), f"given: {tflops_per_gpu:g} TFLOP/s per GPU"
    elif setup is not None:
        peak = peak_tflops(setup.hardware, setup.dtype)
        rate = peak * setup.efficiency.mfu
        source = (f"{setup.hardware.name} {dtype_key(setup.dtype)} peak {peak:g} TFLOP/s × MFU "
                  f"{setup.efficiency.mfu:.3f} ({setup.efficiency.source})")
    else:
        raise InspectError("training time needs a TFLOP/s per GPU or a GPU and an MFU")
    seconds = total_flops / (gpus * rate * 1e12)
    return Training(seconds, seconds / SECONDS_PER_DAY, seconds * gpus / 3600.0, rate, source)


def achieved_mbu(tokens_per_s: float, bytes_per_step: float, hw: Hardware, batch: int = 1) -> float:
    """The MBU a measured decode rate implies: bytes moved per second over the datasheet bandwidth."""
    return tokens_per_s / batch * bytes_per_step / (hw.memory_gb_s * 1e9)


def achieved_mfu(tokens_per_s: float, flops_per_token: float, hw: Hardware, dtype: str = "bf16") -> float:
    """The MFU a measured rate implies: FLOP/s done over the datasheet's dense peak for `dtype`."""
    return tokens_per_s * flops_per_token / (peak_tflops(hw, dtype) * 1e12)


def activation_bytes(dtype: str) -> int:
    """Bytes per element of a dtype (what the TP all-reduces carry)."""
    return DTYPE_BYTES[dtype_key(dtype)]


class Request(NamedTuple):
    """What `inspect flops --gpu` asks of the roofline: the prefill's work over `prompt_tokens` (batch × N),
    one decode step's work at `batch` and context T, optionally the decode step at batch + 1 (same T,
    for the ridge batch) and the shape the TP all-reduces carry."""

    prefill: Work
    prompt_tokens: int
    decode: Work
    batch: int = 1
    decode_next: Work | None = None
    shape: Shape | None = None


class Inference(NamedTuple):
    """The roofline answer on one GPU: TTFT, TPOT, output tokens/s, each phase's step, the ridge batch
    (None: never compute-bound at this context, or not asked) and the efficiencies' source."""

    gpu: str
    ttft_s: float
    tpot_s: float
    tokens_per_s: float
    prefill: StepTime
    decode: StepTime
    ridge_batch: float | None
    efficiency: str


def inference(request: Request, setup: Setup) -> Inference:
    """Prefill and decode of `request` on `setup`; the ridge batch from the two decode steps when given."""
    first = prefill(request.prefill, request.prompt_tokens, setup, request.shape)
    step = decode(request.decode, request.batch, setup, request.shape)
    ridge = None
    if request.decode_next is not None:
        per_seq = request.decode_next.bytes - request.decode.bytes
        fixed = request.decode.bytes - request.batch * per_seq
        line = DecodeLine(fixed, per_seq, request.decode_next.flops - request.decode.flops)
        ridge = ridge_batch(line, setup)
    return Inference(setup.hardware.name, first.step.seconds, step.step.seconds, step.tokens_per_s,
                     first.step, step.step, ridge, setup.efficiency.source)


def inference_json(result: Inference) -> dict[str, object]:
    """The JSON keys of issue 22 (`ttft_s`, `tpot_s`, `tokens_per_s`) and the bounds beside them."""
    return {"gpu": result.gpu, "ttft_s": result.ttft_s, "tpot_s": result.tpot_s, "tokens_per_s": result.tokens_per_s,
            "prefill_bound": result.prefill.bound, "decode_bound": result.decode.bound,
            "ridge_batch": result.ridge_batch, "ridge_intensity": result.decode.ridge,
            "decode_intensity": result.decode.intensity, "efficiency": result.efficiency}


def per_gpu(request: Request, dtype: str = "bf16", efficiency: Efficiency = Efficiency(),
            tp: int = 1) -> tuple[list[Inference], dict[str, str]]:
    """The roofline on every GPU preset, in the table's order; the presets skipped, with why (no Tensor
    Core peak for the dtype, no interconnect for `tp` GPUs)."""
    done, skipped = [], {}
    for name, hw in HARDWARE.items():
        try:
            done.append(inference(request, Setup(hw, dtype, efficiency, tp)))
        except InspectError as e:
            skipped[name] = str(e)
    return done, skipped
