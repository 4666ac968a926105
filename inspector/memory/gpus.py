"""The GPUs a verdict is for: named presets with their memory, or a size in GiB.

A preset carries two totals. `bytes` is what `nvidia-smi` prints as the board's total (kept as the
figure the verdicts used so far). `torch_bytes` is what `torch.cuda.mem_get_info()[1]` returns in
the serving process, the total vLLM multiplies by `--gpu-memory-utilization` ("Memory profiling
takes ... total_gpu_memory"); the CUDA context and the driver keep the difference, about half a GiB.
Every torch figure is marked: "calibrated" (read from a public log or PyTorch out-of-memory message
of that card; the source is named), "assumed" (no public figure found: nvidia-smi's total minus
TORCH_RESERVE_GIB; `--gpu-memory-gib X` overrides it), or "given" (the user's own figure).
The logs print GiB with two decimals, so a calibrated figure holds to ±0.005 GiB (±5 MiB).
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from inspector.errors import InspectError, printable

GIB = 2**30
MIB = 2**20
MAX_GIB = 100_000  # no GPU (and no allowance) reaches 100,000 GiB; past it a size cannot be meant

CALIBRATED, ASSUMED, GIVEN = "calibrated", "assumed", "given"

# nvidia-smi's total minus torch's total on the cards with both figures below: H100 0.47 GiB, A100-40GB
# 0.50, RTX 4090 0.35, H200 0.60, L40 0.59 GiB. Half a GiB is the reserve an "assumed" card gets.
TORCH_RESERVE_GIB = 0.5
OVERRIDE_FLAG = "--gpu-memory-gib"


def gib_bytes(value: float, option: str) -> int:
    """A size in GiB given on the command line, as bytes: a finite number in [0, MAX_GIB]."""
    if not isinstance(value, (int, float)) or not (math.isfinite(value) and 0 <= value <= MAX_GIB):
        raise InspectError(f"{option}: expected a size in GiB from 0 to {MAX_GIB:,}, got {printable(value, 40)}")
    return int(value * GIB)


class Gpu(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """A GPU: `bytes` is nvidia-smi's total, `torch_bytes` torch's (None for a bare size, where the
    one figure given is both); `torch_status` is CALIBRATED, ASSUMED or GIVEN, `torch_source` says why."""

    name: str
    bytes: int
    source: str = ""
    torch_bytes: int | None = None
    torch_source: str = ""
    torch_status: str = ""
    capability: tuple[int, int] | None = None  # CUDA compute capability (major, minor); None: not known

    @property
    def total(self) -> int:
        """What vLLM multiplies by gpu_memory_utilization: torch's total where known, else `bytes`."""
        return self.torch_bytes if self.torch_bytes is not None else self.bytes


class Preset(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """One card: nvidia-smi's total in MiB with its source, and torch's total in GiB (two decimals,
    as logged) with its source; torch_gib None: no public figure found (status "assumed")."""

    smi_mib: int
    smi_source: str
    torch_gib: float | None = None
    torch_source: str = ""


_ISSUE = "https://github.com/{}/issues/{}"
_H100_SMI = "H100 80GB HBM3 (SXM): 81,559 MiB (nvidia-smi in " + _ISSUE.format("vllm-project/vllm", 55169) + ")"

# The presets verdicts iterate (fit.py suggests the larger ones), in this order; unchanged names.
_PRESETS: dict[str, Preset] = {
    "H100-80GB": Preset(81559, _H100_SMI, 79.18,
                        "vLLM V1 log, Llama-3.1-8B on H100: total 79.18 GiB (llm-d/llm-d-benchmark "
                        "config_explorer/empirical-vllm-memory-results.md); the same card logs 79.22 in "
                        + _ISSUE.format("vllm-project/vllm", 10511).replace("issues", "pull")
                        + " and 79.11 in " + _ISSUE.format("vllm-project/vllm", 27508)),
    "H200-141GB": Preset(143771, "H200 141GB HBM3e: 143,771 MiB", 139.80,
                         "PyTorch out-of-memory messages on 8×H200 runs: 'total capacity of 139.80 GiB' "
                         "(139.81 in others); public logs in the code corpus, no issue URL"),
    "A100-80GB": Preset(81920, "A100 80GB: 81,920 MiB"),
    "A100-40GB": Preset(40960, "A100 40GB: 40,960 MiB", 39.50,
                        "PyTorch OOM on one A100 40GB: 'total capacity of 39.50 GiB', "
                        + _ISSUE.format("TianheWu/CoSeR", 10)),
    "L4-24GB": Preset(23034, "L4: 23,034 MiB"),
    "RTX4090-24GB": Preset(24564, "GeForce RTX 4090: 24,564 MiB (nvidia-smi in "
                           + _ISSUE.format("vllm-project/vllm", 7553) + ")", 23.64,
                           "PyTorch OOM on an RTX 4090: 'total capacity of 23.64 GiB', "
                           + _ISSUE.format("3DTopia/Phidias-Diffusion", 8)
                           + " (23.68 with the 2023 driver of " + _ISSUE.format("zai-org/CogVideo", 36) + ")"),
}
GPU_PRESETS = tuple(_PRESETS)

# Cards a name reaches (`--gpu RTX3090-24GB`) that the verdicts do not iterate yet: adding them to
# GPU_PRESETS changes which larger GPU `fit` suggests, which the integrator decides.
_MORE_PRESETS: dict[str, Preset] = {
    "RTX3090-24GB": Preset(24576, "GeForce RTX 3090: 24 GiB board, 24,576 MiB (no nvidia-smi print found)", 23.58,
                           "vLLM log on an RTX 3090: total 23.58 GiB, " + _ISSUE.format("vllm-project/vllm", 10517)),
    "A10-24GB": Preset(22731, "A10: 22,731 MiB (nvidia-smi in " + _ISSUE.format("OpenBMB/MiniCPM-V", 369) + ")",
                       22.06, "vLLM OOM on an A10: '22.06 GiB total capacity', "
                       + _ISSUE.format("vllm-project/vllm", 928) + " (22.18 in "
                       + _ISSUE.format("OpenBMB/MiniCPM-V", 640) + ")"),
    "L40-48GB": Preset(46068, "L40: 46,068 MiB (48 GB GDDR6 with ECC; no nvidia-smi print found)", 44.40,
                       "PyTorch OOM on one L40: 'total capacity of 44.40 GiB', "
                       + _ISSUE.format("QwenLM/Qwen3-VL", 2097)),
    "MI300X-192GB": Preset(196608, "MI300X: 192 GiB HBM3 (rocm-smi; no print found)", 191.98,
                           "PyTorch HIP OOM on MI300X: 'total capacity of 191.98 GiB' (191.69 in other "
                           "logs); public logs in the code corpus, no issue URL"),
}
ALL_PRESETS = GPU_PRESETS + tuple(_MORE_PRESETS)

# CUDA compute capability of each card (what torch.cuda.get_device_capability() returns), from NVIDIA's
# table https://developer.nvidia.com/cuda-gpus: H100 and H200 9.0 (Hopper), A100 8.0 and A10 / RTX 3090
# 8.6 (Ampere), L4 / L40 / RTX 4090 8.9 (Ada). vLLM picks kernels by it (FP8 natively from 8.9, the MXFP4
# MoE backend: Marlin below 9.0, Triton on 9.x). MI300X is ROCm (gfx942): no CUDA capability, None.
# A bare size or `--gpu-memory-gib` alone names no card: None (inspector.memory.vllm_load assumes 9.0).
CAPABILITIES: dict[str, tuple[int, int]] = {
    "H100-80GB": (9, 0), "H200-141GB": (9, 0), "A100-80GB": (8, 0), "A100-40GB": (8, 0),
    "L4-24GB": (8, 9), "RTX4090-24GB": (8, 9), "RTX3090-24GB": (8, 6), "A10-24GB": (8, 6), "L40-48GB": (8, 9),
}
CAPABILITY_SOURCE = "NVIDIA's compute-capability table, https://developer.nvidia.com/cuda-gpus"
_SIZE = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,12})?)\s*(?:gib|gb|g)?\s*$", re.IGNORECASE)


def torch_total(p: Preset) -> tuple[int, str, str]:
    """Torch's total of a preset in bytes, its status and its source."""
    if p.torch_gib is not None:
        return round(p.torch_gib * GIB), CALIBRATED, p.torch_source
    smi = p.smi_mib * MIB
    return (smi - int(TORCH_RESERVE_GIB * GIB), ASSUMED,
            f"no public torch figure found: nvidia-smi's {smi / GIB:.2f} GiB minus a {TORCH_RESERVE_GIB} GiB reserve "
            f"(what the CUDA context keeps on the cards with both figures); {OVERRIDE_FLAG} X gives the real one")


def _preset(key: str, p: Preset) -> Gpu:
    total, status, source = torch_total(p)
    return Gpu(key, p.smi_mib * MIB, p.smi_source, total, source, status, CAPABILITIES.get(key))


def gpu(name: str) -> Gpu:
    """A preset (case-insensitive) or a size in GiB such as "24" or "24GiB"."""
    for key, p in (_PRESETS | _MORE_PRESETS).items():
        if key.lower() == name.strip().lower():
            return _preset(key, p)
    m = _SIZE.match(name)
    if m and float(m.group(1)) > 0:
        size = float(m.group(1))
        return Gpu(f"{size:g} GiB", gib_bytes(size, f"--gpu {printable(repr(name), 40)}"), "a size given in GiB")
    raise InspectError(f"--gpu {printable(repr(name), 60)} is neither a preset ({', '.join(ALL_PRESETS)}) "
                       "nor a size in GiB")


def gpu_memory_gib(value: float, base: Gpu | None = None) -> Gpu:
    """`--gpu-memory-gib X`: the card's total as torch reports it, given by the user (GiB = 2^30 B).

    With `base` (the --gpu preset) the name and nvidia-smi's figure stay; torch's total becomes X."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (math.isfinite(value) and value > 0):
        raise InspectError(f"{OVERRIDE_FLAG}: expected a size in GiB above 0, got {printable(value, 40)}")
    total = gib_bytes(value, OVERRIDE_FLAG)
    source = f"{OVERRIDE_FLAG} {value:g}: torch.cuda.mem_get_info()[1] as given"
    if base is None:
        return Gpu(f"{value:g} GiB", total, source, total, source, GIVEN)
    return Gpu(base.name, base.bytes, base.source, total, source, GIVEN, base.capability)


def gpu_presets() -> list[Gpu]:
    return [gpu(name) for name in GPU_PRESETS]
