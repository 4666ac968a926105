"""Model states of full fine-tuning: the Hugging Face memory-anatomy count and DeepSpeed's ZeRO estimators.

The anatomy count has no ZeRO; the ZeRO estimators are restated to the byte, plus a ZeRO-1 row in the same
accounting.

Without ZeRO (the Hugging Face "Model training anatomy" guide): mixed-precision AdamW keeps fp32 and
16-bit weights (6 B), fp32 gradients (4 B) and two fp32 Adam states (8 B): 18 B per parameter; fp32
AdamW 4 + 4 + 8 = 16 B; 8-bit Adam 6 + 4 + 2 = 12 B; SGD with momentum 6 + 4 + 4 = 14 B.

DeepSpeed splits the same states its own way (deepspeed.runtime.zero.stage_1_and_2 and stage3,
`estimate_zero2_model_states_mem_needs` and `estimate_zero3_model_states_mem_needs`): 16-bit
parameters (2 B), and 18 B per parameter that ZeRO partitions: 16-bit gradients (2), fp32 gradients
(4), fp32 parameters (4) and Adam's momentum and variance (8). ZeRO-1, which its estimators lack
(DeepSpeed issue #5102), partitions only the fp32 states (16 B) and keeps the 16-bit gradients
whole: 2 + 2 + 16/N. Other optimizers replace Adam's 8 B by their own state bytes k. The same
integer truncations as DeepSpeed's code are kept, so the figures match its functions exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from inspector.errors import InspectError
from inspector.units import n

BUFFER_FACTOR = 1.5  # DeepSpeed's additional_buffer_factor
# optimizer -> (weight bytes, gradient bytes, state bytes) per parameter, Hugging Face's count
OPTIMIZERS = {"adamw": (6, 4, 8), "adamw-fp32": (4, 4, 8), "adam8bit": (6, 4, 2), "sgd": (6, 4, 4)}
OPTIMIZER_NAMES = {"adamw": "mixed-precision AdamW", "adamw-fp32": "fp32 AdamW", "adam8bit": "8-bit Adam",
                   "sgd": "SGD with momentum"}
OFFLOADS = ("none", "optimizer", "optimizer+params")


@dataclass(frozen=True)
class ZeroLayout:
    stage: int
    offload: str
    gpus_per_node: int
    nodes: int
    zero_init: bool = True

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_node * self.nodes


@dataclass(frozen=True)
class ModelStates:
    gpu: int
    cpu: int
    formula: str
    largest_layer_memory: int = 0


def check_layout(z: ZeroLayout, optimizer: str) -> None:
    if z.offload not in OFFLOADS:
        raise InspectError(f"--offload {z.offload!r} is not one of {', '.join(OFFLOADS)}")
    if z.stage not in (0, 1, 2, 3):
        raise InspectError(f"--zero {z.stage} is not one of 0, 1, 2, 3")
    if z.stage == 0 and z.offload != "none":
        raise InspectError(f"--offload {z.offload} needs ZeRO: pass --zero 1, 2 or 3")
    if z.offload == "optimizer+params" and z.stage != 3:
        raise InspectError(f"--offload optimizer+params needs --zero 3 (ZeRO-{z.stage} keeps the parameters on the GPU)")
    if z.stage and optimizer == "adamw-fp32":
        raise InspectError("--zero 1/2/3 counts DeepSpeed's mixed-precision states; fp32 AdamW is counted with --zero 0")


def zero0(params: int, optimizer: str) -> ModelStates:
    w, g, k = OPTIMIZERS[optimizer]
    return ModelStates(params * (w + g + k), 0, f"{n(params)} × ({w} + {g} + {k}) B (weights + gradients + states)")


def zero1(params: int, z: ZeroLayout, k: int = 8) -> ModelStates:
    """2 B 16-bit weights + 2 B 16-bit gradients whole, (8 + k) B fp32 states partitioned."""
    g = z.total_gpus
    if z.offload == "optimizer":
        cpu = params * max(4 * g, 8 + k) * BUFFER_FACTOR
        return ModelStates(4 * params, int(cpu), f"4·P on the GPU; P·max(4·{g}, {8 + k})·1.5 on the CPU")
    gpu = 4 * params + int((8 + k) * params / g)
    return ModelStates(gpu, int(params * 4 * z.gpus_per_node * BUFFER_FACTOR), f"2·P + 2·P + int({8 + k}·P / {g})")


def zero2(params: int, z: ZeroLayout, k: int = 8) -> ModelStates:
    """deepspeed.runtime.zero.stage_1_and_2.estimate_zero2_model_states_mem_needs, k = 8 for Adam."""
    g = z.total_gpus
    if z.offload == "optimizer":
        cpu = params * max(4 * g, 8 + k) * BUFFER_FACTOR
        return ModelStates(2 * params, int(cpu), f"2·P on the GPU; P·max(4·{g}, {8 + k})·1.5 on the CPU")
    gpu = 2 * params + int((10 + k) * params / g)
    return ModelStates(gpu, int(params * 4 * z.gpus_per_node * BUFFER_FACTOR), f"2·P + int({10 + k}·P / {g})")


def zero3(params: int, largest: int, z: ZeroLayout, k: int = 8) -> ModelStates:
    """deepspeed.runtime.zero.stage3.estimate_zero3_model_states_mem_needs, k = 8 for Adam."""
    g, per_node = z.total_gpus, z.gpus_per_node
    gpus_factor = 1 / z.nodes
    layer = 4 * largest
    full, states = 10 + k, 8 + k
    if z.offload == "optimizer+params":
        if z.zero_init:
            cpu = params * full * gpus_factor * BUFFER_FACTOR
        else:
            cpu = params * max(4 * per_node, full * gpus_factor) * BUFFER_FACTOR
        return ModelStates(layer, int(cpu), f"4·L on the GPU; P·{_cpu_factor(full, z)}·1.5 on the CPU", layer)
    if z.offload == "optimizer":
        if z.zero_init:
            cpu = params * states * gpus_factor * BUFFER_FACTOR
        else:
            cpu = params * max(4 * per_node, states * gpus_factor) * BUFFER_FACTOR
        return ModelStates(layer + int(2 * params / g), int(cpu),
                           f"4·L + int(2·P / {g}); P·{_cpu_factor(states, z)}·1.5 on the CPU", layer)
    cpu = largest * 4 * per_node * BUFFER_FACTOR if z.zero_init else params * 4 * per_node * BUFFER_FACTOR
    return ModelStates(layer + int(full * params / g), int(cpu), f"4·L + int({full}·P / {g})", layer)


def _cpu_factor(bytes_: int, z: ZeroLayout) -> str:
    share = f"{bytes_}/{z.nodes}" if z.nodes > 1 else str(bytes_)
    return share if z.zero_init else f"max(4·{z.gpus_per_node}, {share})"


def model_states(params: int, largest: int, z: ZeroLayout, optimizer: str) -> ModelStates:
    check_layout(z, optimizer)
    k = OPTIMIZERS[optimizer][2]
    if z.stage == 0:
        return zero0(params, optimizer)
    if z.stage == 1:
        return zero1(params, z, k)
    if z.stage == 2:
        return zero2(params, z, k)
    return zero3(params, largest, z, k)


# --------------------------------------------------------------------------- DeepSpeed's printout


class OffloadDeviceEnum(str, Enum):
    """DeepSpeed's own definition (deepspeed.runtime.zero.offload_config). Its printout shows the CPU
    device as `f'{OffloadDeviceEnum.cpu:4}'`, which Python 3.11 and later format as
    "OffloadDeviceEnum.cpu" and older Pythons as "cpu "; formatting the same enum keeps us identical."""

    none = "none"
    cpu = "cpu"
    nvme = "nvme"


def _cpu_label() -> str:
    return f"{OffloadDeviceEnum.cpu:4}"


def deepspeed_printout(params: int, largest: int, gpus_per_node: int, nodes: int, stage: int) -> str:
    """DeepSpeed's `estimate_zero{2,3}_model_states_mem_needs_all_cold` output, line for line."""
    if stage not in (2, 3):
        raise InspectError(f"--format deepspeed reproduces DeepSpeed's ZeRO-2 and ZeRO-3 estimators; "
                           f"it has none for ZeRO-{stage} (pass --zero 2 or 3)")
    cpu = _cpu_label()
    nodes_str = "nodes" if nodes > 1 else "node"
    gpus_str = "GPUs" if gpus_per_node > 1 else "GPU"
    sw = f"SW: Model with {int(params / 1e6)}M total params"
    sw += f", {int(largest / 1e6)}M largest layer params." if stage == 3 else "."
    lines = ["Estimated memory needed for params, optim states and gradients for a:",
             f"HW: Setup with {nodes} {nodes_str}, {gpus_per_node} {gpus_str} per node.", sw,
             "  per CPU  |  per GPU |   Options"]
    if stage == 2:
        for offload in (True, False):
            s = zero2(params, ZeroLayout(2, "optimizer" if offload else "none", gpus_per_node, nodes))
            lines.append(f" {s.cpu / 2**30:7.2f}GB | {s.gpu / 2**30:6.2f}GB | "
                         f"offload_optimizer={cpu if offload else 'none'}")
        return "\n".join(lines) + "\n"
    for offload, params_off in ((True, True), (True, False), (False, False)):
        for init in (True, False):
            mode = "optimizer+params" if params_off else "optimizer" if offload else "none"
            s = zero3(params, largest, ZeroLayout(3, mode, gpus_per_node, nodes, init))
            options = (f"offload_param={cpu if params_off else 'none'}, "
                       f"offload_optimizer={cpu if offload else 'none'}, zero_init={1 if init else 0}")
            lines.append(f" {s.cpu / 2**30:7.2f}GB | {s.gpu / 2**30:6.2f}GB | {options}")
    return "\n".join(lines) + "\n"
