"""`inspect memory GGUF --engine llama.cpp` with GPUs or offload flags: buffers per device or the plan, a speed bound.

The flags are llama.cpp's (common/arg.cpp of ggml-org/llama.cpp@0c1e57098): ``-ngl N|all|auto`` (a negative
N other than -1 refused), ``-ot PATTERN=DEVICE,...``, ``--n-cpu-moe N``, ``-ts a,b`` (split on ``[,/]+``).
GPUs: ``--gpu`` presets or sizes (comma-separated, or one repeated ``--gpus N`` times), each card's total as
torch reports it (``--gpu-memory-gib`` replaces it). With GPUs and no placement flag (or ``-ngl auto``): the
offload plan. Every GPU rule is read from llama.cpp's source, not measured on a GPU.
"""

from __future__ import annotations

import re

from inspector.errors import InspectError, printable, warn

PLACEMENT_FLAGS = {"n_gpu_layers": "--n-gpu-layers", "override_tensor": "--override-tensor",
                   "n_cpu_moe": "--n-cpu-moe", "tensor_split": "--tensor-split"}


def parse_ngl(value: str | None) -> int | None:
    """-ngl as llama.cpp reads it: a count >= 0, all or -1 (every layer and the output layer: -1), auto (None:
    the plan's). Any other negative count is refused (llama.cpp's stoi would take -2.. as 'all')."""
    if value is None or value.strip().lower() == "auto":
        return None
    v = value.strip().lower()
    if v == "all":
        return -1
    if not re.fullmatch(r"-?\d{1,9}", v):
        raise InspectError(f"--n-gpu-layers {printable(repr(value), 40)}: expected a count, all or auto")
    if int(v) < -1:
        raise InspectError(f"--n-gpu-layers {v}: a negative count other than -1 (all layers) is not a number of "
                           "layers; give N >= 0, all or auto")
    return int(v)


def parse_split(value: str, n_gpus: int) -> tuple:
    """-ts a,b,...: proportions split on [,/]+ (common/arg.cpp), one per GPU at most; missing ones are 0."""
    parts = [x for x in re.split(r"[,/]+", value.strip()) if x]
    try:
        split = [float(x) for x in parts]
    except ValueError:
        raise InspectError(f"--tensor-split {printable(repr(value), 40)}: expected proportions such as 3,1") from None
    if not split or any(not (x >= 0) or x == float("inf") for x in split) or not sum(split):
        raise InspectError(f"--tensor-split {printable(repr(value), 40)}: proportions must be >= 0, not all 0")
    if len(split) > n_gpus:
        raise InspectError(f"--tensor-split {value}: {len(split)} proportions for {n_gpus} GPU(s) named (--gpu)")
    return tuple(split) + (0.0,) * (n_gpus - len(split))


def parse_overrides(values: list[str] | None, devices: tuple) -> tuple:
    """-ot PATTERN=DEVICE[,...] (repeatable): ((regex, device), ...); the device must be CPU or a GPU named."""
    out = []
    for value in values or ():
        for item in (x for x in value.split(",") if x):
            pattern, eq, dev = item.partition("=")
            if not eq or not pattern:
                raise InspectError(f"--override-tensor {printable(repr(item), 60)}: expected PATTERN=DEVICE")
            if dev not in ("CPU",) + devices:
                raise InspectError(f"--override-tensor {printable(repr(item), 60)}: unknown buffer type {dev!r} "
                                   f"(devices: {', '.join(('CPU',) + devices)})")
            try:
                re.compile(pattern)
            except re.error as e:
                raise InspectError(f"--override-tensor {printable(repr(pattern), 60)}: not a regex ({e})") from None
            out.append((pattern, dev))
    return tuple(out)


def gpus_named(opts: dict, given: dict) -> list:
    """The GPUs (inspector.memory.gpus.Gpu) named by --gpu (comma-separated; one repeated --gpus times) or by
    --gpu-memory-gib alone (--gpus of that size); [] when none is named."""
    from inspector.memory.gpus import gpu, gpu_memory_gib

    if "gpu" in given:
        cards = [gpu(x) for x in opts["gpu"].split(",") if x.strip()]
        if "gpus" in given and len(cards) > 1 and opts["gpus"] != len(cards):
            raise InspectError(f"--gpus {opts['gpus']} and --gpu {opts['gpu']}: {len(cards)} GPUs named; give one")
        cards = cards * opts["gpus"] if len(cards) == 1 else cards
        if opts["gpu_memory_gib"] is not None:
            cards = [gpu_memory_gib(opts["gpu_memory_gib"], c) for c in cards]
        return cards
    if opts["gpu_memory_gib"] is not None:
        return [gpu_memory_gib(opts["gpu_memory_gib"])] * opts["gpus"]
    if "gpus" in given:
        raise InspectError("--gpus with --engine llama.cpp: name the GPU (--gpu PRESET or --gpu-memory-gib GiB)")
    return []


def placement(opts: dict, given: dict, gpus: list):
    """The Placement the flags ask for, or None for the plan (GPUs named, no placement flag or -ngl auto)."""
    from inspector.memory.llamacpp_offload import Placement

    names = tuple(f"CUDA{i}" for i in range(len(gpus)))
    ngl = parse_ngl(opts["n_gpu_layers"])
    ot = parse_overrides(opts["override_tensor"], names)
    flags = [PLACEMENT_FLAGS[k] for k in PLACEMENT_FLAGS if k in given]
    if not gpus:
        if flags:
            warn(f"{', '.join(flags)}: no GPU named (--gpu PRESET or --gpu-memory-gib GiB), so no effect, as on "
                 "llama.cpp's CPU build (load_tensors offloads nothing without a GPU device); the CPU buffers")
        return Placement()
    split = (parse_split(opts["tensor_split"], len(gpus)) if opts["tensor_split"] is not None
             else tuple(g.total for g in gpus) if len(gpus) > 1 else ())
    others = [f for f in flags if f != "--n-gpu-layers"]
    if ngl is None:
        if not others:
            return None
        if opts["n_gpu_layers"] is not None:
            raise InspectError(f"--n-gpu-layers auto with {', '.join(others)}: the plan chooses the placement "
                               "itself; give -ngl N or all")
        ngl = -1  # llama_model_params' default (-1: every layer); llama-server's --fit would lower it: not modelled
    return Placement(n_gpu_layers=ngl, gpus=names, tensor_split=split, overrides=ot,
                     n_cpu_moe=opts["n_cpu_moe"] or 0)


def emit_offload(request, opts: dict, given: dict, fmt: str, output) -> None:
    """The offload report: per-device buffers of the placement (or the plan), RAM checked when given, and the
    decode tokens/s bound of that placement (inspector.compute.llamacpp_speed)."""
    from inspector.compute.llamacpp_speed import bandwidths, decode_bound
    from inspector.memory.gpus import gib_bytes
    from inspector.memory.llamacpp_model import OffloadRequest, llamacpp_offload
    from inspector.reports.llamacpp import offload_report
    from inspector.reports.render import emit

    gpus = gpus_named(opts, given)
    p = placement(opts, given, gpus)
    ram = None if opts["ram_gib"] is None else gib_bytes(opts["ram_gib"], "--ram-gib")
    if ram == 0:
        raise InspectError("--ram-gib 0: expected the host RAM in GiB, above 0")
    res = llamacpp_offload(OffloadRequest(request, tuple(g.total for g in gpus), tuple(g.name for g in gpus), ram, p))
    if res.placement is not None:
        bw = bandwidths(tuple(g.name for g in gpus), opts["ram_bandwidth_gbs"])
        res.data["decode"] = decode_bound(res.gguf, request.settings, res.placement, bw, opts["mbu"])
    emit(offload_report(res.data), fmt, output)
