"""What `inspect memory` computes: a `MemoryRequest` turned by `estimate` into an `Estimate` with its verdict.

A `MemoryRequest` (the model, the hardware, and the serving or the
training options as given) turned by `estimate` into an `Estimate`: the model's accounting and the
serving or training plan (inspector.memory.serving, inspector.memory.training), with its verdict for
the GPU (inspector.memory.fit) on demand. Each value is checked here, before any plan, with the option it came
from in the message. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from inspector.errors import InspectError
from inspector.inventory.accounting import Accounting
from inspector.memory.fit import Verdict
from inspector.memory.serving import Serving
from inspector.memory.training import TrainOptions, Training


@dataclass(frozen=True)
class Hardware:
    """--gpu (a name or a size in GiB), --gpus per node, --nodes, --overhead-gib per GPU."""

    gpu: str = "H100-80GB"
    gpus: int = 1
    nodes: int = 1
    overhead_gib: float = 0.5


@dataclass(frozen=True)
class ServeRequest:
    """The serving options as given (vLLM's names); --weights: a checkpoint whose stored bytes count."""

    dtype: str = "bf16"
    group_size: int = 128
    weights: Path | None = None
    kv_dtype: str = "bf16"
    block_size: int = 16
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 256


@dataclass(frozen=True)
class MemoryRequest:
    """`inspect memory MODEL`: serving (`train` None) or fine-tuning on the hardware (the training options
    as given; their GPUs, nodes and overhead are the hardware's, filled in by `estimate`)."""

    model: str
    hardware: Hardware = field(default_factory=Hardware)
    serve: ServeRequest = field(default_factory=ServeRequest)
    train: TrainOptions | None = None


@dataclass(frozen=True)
class Estimate:
    """The accounting and the serving or the training plan (the other None)."""

    acc: Accounting
    serving: Serving | None
    training: Training | None

    @property
    def verdict(self) -> Verdict:
        """Whether it fits on the GPU and, if not, what would (an InspectError when not even one
        token of the KV cache fits: vLLM would not start)."""
        from inspector.memory.fit import serving_verdict, training_verdict

        if self.serving is not None:
            return serving_verdict(self.acc, self.serving)
        return training_verdict(self.acc, self.training)


def estimate(request: MemoryRequest) -> Estimate:
    """The plan of `request` and whether it fits; every bad value is one InspectError line."""
    from inspector.inventory.accounting import account
    from inspector.memory.gpus import gib_bytes, gpu
    from inspector.source import load_spec

    hw = request.hardware
    if hw.gpus < 1 or hw.nodes < 1:
        raise InspectError(f"--gpus and --nodes must be at least 1, got --gpus {hw.gpus} --nodes {hw.nodes}")
    acc = account(load_spec(request.model))
    device = gpu(hw.gpu)
    overhead = gib_bytes(hw.overhead_gib, "--overhead-gib")
    if request.train is None:
        from inspector.memory.serving import plan

        return Estimate(acc, plan(acc, device, _serve_options(request.serve, hw, overhead)), None)
    from inspector.memory.training import plan as train_plan

    options = replace(request.train, gpus_per_node=hw.gpus, nodes=hw.nodes, overhead_bytes=overhead)
    return Estimate(acc, None, train_plan(acc, device, options))


def _serve_options(s: ServeRequest, hw: Hardware, overhead: int):
    """ServeOptions (inspector.memory.serving) of the request: the dtypes checked, tensor parallel over
    every GPU, the stored bytes of --weights read from its headers."""
    from inspector.memory.quant import KV_DTYPES, SERVE_DTYPES, check_dtype
    from inspector.memory.serving import ServeOptions

    dtype = check_dtype(s.dtype, SERVE_DTYPES, "--dtype")
    kv_dtype = check_dtype(s.kv_dtype, KV_DTYPES, "--kv-dtype")
    stored = None
    if s.weights is not None:
        from inspector.checkpoint.open import open_checkpoint

        stored = open_checkpoint(s.weights).total_bytes
    return ServeOptions(dtype=dtype, kv_dtype=kv_dtype, group_size=s.group_size, block_size=s.block_size,
                        gpu_memory_utilization=s.gpu_memory_utilization, max_model_len=s.max_model_len,
                        max_num_batched_tokens=s.max_num_batched_tokens, max_num_seqs=s.max_num_seqs,
                        tp=hw.gpus * hw.nodes, overhead_bytes=overhead, weights_bytes=stored,
                        weights_source=str(s.weights or ""))
