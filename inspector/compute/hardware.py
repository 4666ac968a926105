"""Datasheet peaks of each GPU preset: dense TFLOP/s per dtype, memory bandwidth and interconnect, with sources.

One record per preset of inspector.memory.gpus (the same names). Every figure is what the vendor's
datasheet or architecture whitepaper states, converted to one convention:

- TFLOP/s are *dense*. NVIDIA's data-center datasheets (H100, H200, L4, L40, A10) print the Tensor
  Core figures "with sparsity" (an asterisk: 2:4 structured sparsity doubles them; "specifications
  are one-half lower without sparsity"); those are halved here and the sparse figure is kept in the
  note. A100, the GeForce whitepapers and AMD's MI300X sheet print dense and sparse side by side.
- "fp32" is the non-Tensor-Core FP32 rate (a float32 matmul without TF32), "tf32" the Tensor Core one.
- GeForce cards (RTX 4090, RTX 3090) run FP16/BF16 Tensor Core math at half rate with FP32
  accumulation; the figures below are the FP32-accumulate ones, what cuBLAS uses for a bf16/fp16
  GEMM in torch. The FP16-accumulate figures are twice as high (in the note).
- Bandwidths are GB/s (10^9 B/s). Interconnects are per direction: NVIDIA quotes NVLink and PCIe
  as the sum of both directions ("900 GB/s", "PCIe Gen4 x16: 64 GB/s bidirectional"), so half of it
  is what one GPU can send while it receives as much.
"""

from __future__ import annotations

from typing import NamedTuple

from inspector.errors import InspectError

DTYPES = ("bf16", "fp16", "fp8", "int8", "tf32", "fp32")
_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "bf16/fp16": "bf16", "float8": "fp8",
            "float8_e4m3fn": "fp8", "e4m3": "fp8", "float32": "fp32", "float": "fp32"}
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "tf32": 4, "fp32": 4}


class Link(NamedTuple):
    """A GPU-to-GPU path: `gb_s` per direction; `stated` is how the datasheet prints it; `max_gpus`
    how many GPUs it joins at that rate (an NVLink bridge joins 2; None: any number, as PCIe)."""

    kind: str
    gb_s: float
    stated: str
    max_gpus: int | None = None


class Hardware(NamedTuple):
    """One GPU's peaks: `tflops` dense per dtype (a dtype missing: no Tensor Core support for it),
    `memory_gb_s` the HBM/GDDR bandwidth, `links` the fastest GPU-to-GPU path first, `source` the
    datasheet URL, `note` what the datasheet prints (sparse figures, accumulate modes)."""

    name: str
    tflops: dict[str, float]
    memory_gb_s: float
    links: tuple[Link, ...]
    source: str
    note: str


_PCIE4 = Link("PCIe Gen4 x16", 32.0, "64 GB/s bidirectional")
_PCIE5 = Link("PCIe Gen5 x16", 64.0, "128 GB/s")
_NVLINK4 = Link("NVLink 4 (NVSwitch)", 450.0, "900 GB/s", 8)
_NVLINK3 = Link("NVLink 3 (NVSwitch)", 300.0, "600 GB/s", 8)
_HOPPER = {"bf16": 989.5, "fp16": 989.5, "fp8": 1979.0, "int8": 1979.0, "tf32": 494.5, "fp32": 67.0}
_HOPPER_NOTE = ("SXM5; datasheet prints Tensor Core figures with sparsity: BF16/FP16 1,979*, FP8 3,958*, "
                "INT8 3,958* TOPS, TF32 989*; '*' halves without sparsity. FP32 67 (no sparsity)")
_A100 = {"bf16": 312.0, "fp16": 312.0, "int8": 624.0, "tf32": 156.0, "fp32": 19.5}
_A100_NOTE = ("SXM4; datasheet prints dense | sparse: BF16/FP16 312 | 624*, INT8 624 | 1,248* TOPS, "
              "TF32 156 | 312*, FP32 19.5; no FP8 Tensor Cores (Ampere)")
_A100_URL = ("https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
             "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf")

# The table (data, not branches). Sources: the vendor's datasheet or whitepaper at each URL.
HARDWARE: dict[str, Hardware] = {h.name: h for h in (
    Hardware("H100-80GB", _HOPPER, 3350.0, (_NVLINK4, _PCIE5),
             "https://www.nvidia.com/en-us/data-center/h100/ (H100 SXM datasheet)",
             _HOPPER_NOTE + "; GPU memory bandwidth 3.35 TB/s; NVLink 900 GB/s, PCIe Gen5 128 GB/s"),
    Hardware("H200-141GB", _HOPPER, 4800.0, (_NVLINK4, _PCIE5),
             "https://www.nvidia.com/en-us/data-center/h200/ (H200 SXM datasheet)",
             _HOPPER_NOTE + " (same Hopper compute as H100 SXM); GPU memory bandwidth 4.8 TB/s; "
             "NVLink 900 GB/s, PCIe Gen5 128 GB/s"),
    Hardware("A100-80GB", _A100, 2039.0, (_NVLINK3, _PCIE4), _A100_URL,
             _A100_NOTE + "; A100 80GB SXM: GPU memory bandwidth 2,039 GB/s; NVLink 600 GB/s, PCIe Gen4 64 GB/s"),
    Hardware("A100-40GB", _A100, 1555.0, (_NVLINK3, _PCIE4), _A100_URL,
             _A100_NOTE + "; A100 40GB SXM: GPU memory bandwidth 1,555 GB/s; NVLink 600 GB/s, PCIe Gen4 64 GB/s"),
    Hardware("L4-24GB", {"bf16": 121.0, "fp16": 121.0, "fp8": 242.5, "int8": 242.5, "tf32": 60.0, "fp32": 30.3},
             300.0, (_PCIE4,), "https://www.nvidia.com/en-us/data-center/l4/ (L4 datasheet)",
             "datasheet prints with sparsity: BF16/FP16 242*, FP8 485*, INT8 485* TOPS, TF32 120*; FP32 30.3; "
             "300 GB/s GDDR6; PCIe Gen4 x16 64 GB/s; no NVLink"),
    Hardware("RTX4090-24GB", {"bf16": 165.2, "fp16": 165.2, "fp8": 330.3, "int8": 660.6, "tf32": 82.6, "fp32": 82.6},
             1008.0, (_PCIE4,),
             "https://images.nvidia.com/aem-dam/Solutions/geforce/ada/nvidia-ada-gpu-architecture.pdf "
             "(Ada whitepaper, appendix: GeForce RTX 4090)",
             "whitepaper prints dense / sparse: FP16 and BF16 with FP32 accumulate 165.2 / 330.4 (FP16 accumulate "
             "330.3 / 660.6), FP8 with FP32 accumulate 330.3 / 660.6, INT8 660.6 / 1,321.2 TOPS, TF32 82.6 / 165.2, "
             "FP32 82.6; 1,008 GB/s GDDR6X; PCIe Gen4 x16; no NVLink"),
    Hardware("RTX3090-24GB", {"bf16": 71.0, "fp16": 71.0, "int8": 284.0, "tf32": 35.6, "fp32": 35.6},
             936.0, (Link("NVLink bridge (3rd gen)", 56.25, "112.5 GB/s total between two GPUs", 2), _PCIE4),
             "https://www.nvidia.com/content/PDF/nvidia-ampere-ga-102-gpu-architecture-whitepaper-v2.pdf "
             "(GA102 whitepaper, appendix A: GeForce RTX 3090)",
             "whitepaper prints dense / sparse: FP16 and BF16 with FP32 accumulate 71 / 142 (FP16 accumulate "
             "142 / 284), INT8 284 / 568 TOPS, TF32 35.6 / 71, FP32 35.6; no FP8; 936 GB/s GDDR6X; NVLink "
             "bridge 112.5 GB/s total (56.25 per direction) between two cards; PCIe Gen4 x16"),
    Hardware("A10-24GB", {"bf16": 125.0, "fp16": 125.0, "int8": 250.0, "tf32": 62.5, "fp32": 31.2},
             600.0, (_PCIE4,),
             "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a10/pdf/datasheet-new/"
             "nvidia-a10-datasheet.pdf",
             "datasheet prints dense | sparse: BF16/FP16 125 | 250*, INT8 250 | 500* TOPS, TF32 62.5 | 125*, "
             "FP32 31.2; no FP8; 600 GB/s GDDR6; PCIe Gen4 64 GB/s; no NVLink"),
    Hardware("L40-48GB", {"bf16": 181.05, "fp16": 181.05, "fp8": 362.0, "int8": 362.0, "tf32": 90.5, "fp32": 90.5},
             864.0, (_PCIE4,), "https://images.nvidia.com/content/Solutions/data-center/vgpu-L40-datasheet.pdf",
             "datasheet prints dense | sparse: BF16/FP16 181.05 | 362.1*, FP8 362 | 724*, INT8 362 | 724* TOPS, "
             "TF32 90.5 | 181*, FP32 90.5; 864 GB/s GDDR6; PCIe Gen4 x16 64 GB/s bidirectional; no NVLink"),
    Hardware("MI300X-192GB", {"bf16": 1307.4, "fp16": 1307.4, "fp8": 2614.9, "int8": 2614.9, "tf32": 653.7,
                              "fp32": 163.4},
             5300.0, (Link("Infinity Fabric (7 links)", 448.0, "7 links x 128 GB/s = 896 GB/s aggregate", 8), _PCIE5),
             "https://www.amd.com/content/dam/amd/en/documents/instinct-tech-docs/data-sheets/"
             "amd-instinct-mi300x-data-sheet.pdf",
             "data sheet prints dense and with structured sparsity: FP16/BF16 1,307.4 / 2,614.9, FP8 2,614.9 / "
             "5,229.8, INT8 2,614.9 / 5,229.8 TOPS, TF32 653.7 / 1,307.4, FP32 matrix 163.4; 5.3 TB/s HBM3; "
             "7 Infinity Fabric links of 128 GB/s (896 GB/s aggregate; assumed half each way); PCIe Gen5 x16"),
)}


def dtype_key(dtype: str) -> str:
    """A dtype name ("bfloat16", "bf16", "float16", ...) as a key of DTYPES."""
    key = dtype.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DTYPES:
        raise InspectError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    return key


def hardware(name: str) -> Hardware:
    """The datasheet record of a GPU preset (case-insensitive, the names of inspector.memory.gpus)."""
    for key, hw in HARDWARE.items():
        if key.lower() == name.strip().lower():
            return hw
    raise InspectError(f"no datasheet peaks for GPU {name!r} (known: {', '.join(HARDWARE)})")


def peak_tflops(hw: Hardware, dtype: str) -> float:
    """The dense peak of `hw` for `dtype` in TFLOP/s; an error where the card has no Tensor Cores for it
    (FP8 on Ampere: FP8 weights are computed in bf16 there, so ask for bf16)."""
    key = dtype_key(dtype)
    if key not in hw.tflops:
        raise InspectError(f"{hw.name} has no {key} Tensor Core peak (its datasheet: {', '.join(hw.tflops)})")
    return hw.tflops[key]


def link_for(hw: Hardware, gpus: int) -> Link:
    """The fastest path that joins `gpus` GPUs at its rate (an NVLink bridge joins two, PCIe any)."""
    for link in hw.links:
        if link.max_gpus is None or gpus <= link.max_gpus:
            return link
    raise InspectError(f"{hw.name}: no interconnect joins {gpus} GPUs ({', '.join(k.kind for k in hw.links)})")
