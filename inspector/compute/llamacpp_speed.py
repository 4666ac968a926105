"""The decode tokens/s bound of a llama.cpp placement: bytes read per token on each device over its bandwidth.

A roofline upper bound, not a prediction. Decoding one token runs the layers in sequence (llama.cpp's
layer split is a pipeline: one device works at a time for one sequence), and each device reads, per token,
the weights of the layers it holds and those layers' KV cache at the context. So the time per token is at
least sum over devices of bytes_d / (bandwidth_d * MBU), and tokens/s at most its inverse. Left out (each
makes the real rate lower): compute time, kernel launches, the activations copied between devices, caches.

Bytes read per token (per device, from :func:`inspector.memory.llamacpp_offload.tensor_devices`):

- every weight of a layer on that device, whole; an input-layer tensor (token_embd, always on the CPU)
  only one row (``ggml_get_rows``); a tied output (no output.weight) reads token_embd whole on the output
  layer's device;
- an MoE expert tensor (``LLM_FFN_EXPS_REGEX``) expert_used_count / expert_count of it (one token picks that
  many experts: **assumed**, batch 1, no expert shared across devices);
- each layer's K and V over the cells of one sequence's stream at the context (the whole allocated stream:
  llama.cpp attends over all used cells, and at the full context all are used).

Bandwidths: a GPU preset's datasheet figure (:data:`inspector.compute.hardware.HARDWARE`, with its source); a
GPU given only as a size has none (no bound; name a preset). The CPU's is an assumption: CPU_GB_S_DEFAULT
unless ``--ram-bandwidth-gbs`` gives it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from inspector.checkpoint.gguf import GGUFFile
from inspector.memory.llamacpp import LlamaCppSettings, hparams, resolve_context
from inspector.memory.llamacpp_offload import (FFN_EXPS_REGEX, Placement, layer_devices, layer_kv, layer_rs,
                                               tensor_devices, tensor_layer)

# Two channels of DDR4-3200 (a common desktop): 3,200 MT/s x 8 bytes per transfer (a 64-bit channel) x 2
# channels = 51.2 GB/s peak (JEDEC JESD79-4 DDR4 speed bins: DDR4-3200 = 3200 MT/s). An assumption about the
# user's machine: `--ram-bandwidth-gbs` gives the real one.
CPU_GB_S_DEFAULT = 3200e6 * 8 * 2 / 1e9
CPU_SOURCE = ("assumed: two channels of DDR4-3200, 3,200 MT/s x 8 B x 2 = 51.2 GB/s peak (JEDEC JESD79-4 speed "
              "bin); --ram-bandwidth-gbs gives your machine's")
WHAT = ("upper bound (roofline): 1 / sum over devices of bytes read per token / (bandwidth x MBU); compute, "
        "transfers between devices and launch overheads left out")


@dataclass(frozen=True)
class Bandwidth:
    """One device's memory bandwidth in GB/s (None: unknown), its status (datasheet / given / assumed) and source."""

    device: str
    gb_s: float | None
    status: str
    source: str


def bandwidths(gpu_cards: tuple, ram_gb_s: float | None = None) -> dict[str, Bandwidth]:
    """CPU and CUDA0.. by card name (a preset of inspector.memory.gpus, or None for a GPU given as a size)."""
    from inspector.compute.hardware import HARDWARE

    by_name = {k.lower(): h for k, h in HARDWARE.items()}
    out = {"CPU": Bandwidth("CPU", CPU_GB_S_DEFAULT, "assumed", CPU_SOURCE) if ram_gb_s is None
           else Bandwidth("CPU", ram_gb_s, "given", f"--ram-bandwidth-gbs {ram_gb_s:g}")}
    for i, card in enumerate(gpu_cards):
        hw = by_name.get((card or "").lower())
        out[f"CUDA{i}"] = (Bandwidth(f"CUDA{i}", hw.memory_gb_s, "datasheet", f"{hw.name}: {hw.source}") if hw
                           else Bandwidth(f"CUDA{i}", None, "unknown", f"{card or 'a size'}: no datasheet "
                                          "bandwidth (name a GPU preset with --gpu)"))
    return out


def _expert_share(f: GGUFFile) -> float:
    arch = f.metadata["general.architecture"]
    used, n = f.metadata.get(f"{arch}.expert_used_count"), f.metadata.get(f"{arch}.expert_count")
    return used / n if used and n else 1.0


def weight_bytes_read(f: GGUFFile, p: Placement) -> dict[str, int]:
    """Per device, the weight bytes one decoded token reads (the rules in the module docstring)."""
    n_layer = hparams(f).n_layer
    where, out_dev = tensor_devices(f, p), layer_devices(n_layer, p)[-1]
    tied = not any(t.name == "output.weight" for t in f.tensors)
    exps, share = re.compile(FFN_EXPS_REGEX), _expert_share(f)
    out: dict[str, int] = {}
    for t in f.tensors:
        if tensor_layer(t.name, n_layer) < 0:  # the input layer: one row per token (a 1-D tensor: whole)
            n = t.nbytes // max(math.prod(t.stored_shape[1:]), 1)
            if tied and t.name == "token_embd.weight":  # the output matmul reads the whole matrix there
                out[out_dev] = out.get(out_dev, 0) + t.nbytes
        else:
            n = int(t.nbytes * share) if exps.search(t.name) else t.nbytes
        out[where[t.name]] = out.get(where[t.name], 0) + n
    return out


def kv_bytes_read(f: GGUFFile, s: LlamaCppSettings, p: Placement) -> dict[str, int]:
    """Per device, the K and V bytes one sequence's token reads at the context: each layer's stream, whole."""
    devs = layer_devices(hparams(f).n_layer, p)
    out: dict[str, int] = {}
    for il, _, c in layer_kv(f, s):
        out[devs[il]] = out.get(devs[il], 0) + (c.k_bytes + c.v_bytes) // (c.layers * c.n_stream)
    for il, r, st in layer_rs(f, replace(s, n_seq_max=1)):  # a recurrent layer: one sequence's R and S state
        out[devs[il]] = out.get(devs[il], 0) + r + st
    return out


def decode_bound(f: GGUFFile, s: LlamaCppSettings, p: Placement, bw: dict[str, Bandwidth],
                 mbu: float = 1.0) -> dict:
    """The tokens/s bound of placement ``p`` (JSON): per device bytes read, bandwidth and seconds per token."""
    weights, kv = weight_bytes_read(f, p), kv_bytes_read(f, s, p)
    rows, seconds, missing = [], 0.0, []
    for dev in ("CPU",) + tuple(p.gpus):
        b, nbytes = bw[dev], weights.get(dev, 0) + kv.get(dev, 0)
        sec = None if b.gb_s is None else nbytes / (b.gb_s * 1e9 * mbu)
        if sec is None and nbytes:
            missing.append(f"{dev}: {b.source}")
        seconds += sec or 0.0
        rows.append({"device": dev, "weights_bytes": weights.get(dev, 0), "kv_bytes": kv.get(dev, 0),
                     "bytes": nbytes, "gb_s": b.gb_s, "bandwidth_status": b.status, "bandwidth_source": b.source,
                     "seconds_per_token": sec})
    tps = None if missing or not seconds else 1.0 / seconds
    return {"tokens_per_s": tps, "status": "upper bound", "what": WHAT, "mbu": mbu,
            "mbu_status": "given (--mbu)" if mbu != 1.0 else "bound (MBU 1.0)",
            "n_ctx_seq": resolve_context(hparams(f), s).n_ctx_seq,
            "devices": rows, "reason": "; ".join(missing) or None}
