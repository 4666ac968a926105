"""llama.cpp's GPU offload rules (-ngl, --n-cpu-moe, -ot, --tensor-split) as data, and a plan that fits them to GPUs.

Pure arithmetic on the parsed GGUF header, like :mod:`inspector.memory.llamacpp`. Sources: the llama.cpp that
llama-cpp-python 0.3.36 vendors (ggml-org/llama.cpp@0c1e57098; paths relative to it). Read from the source
only: this machine has no GPU, so the GPU figures are not checked against a printout. Status of each figure:

- **exact** (checked on CPU, where -ngl has no effect): every CPU figure, equal to llama.cpp's exact bytes;
- **source** (read from the source, not measured): which device each weight and KV layer goes to; the CUDA
  model and KV buffer bytes (ggml/src/ggml-cuda/ggml-cuda.cu: alignment 128, quantized rows padded to 512);
- **assumed**: the compute buffer of a GPU (``Placement.gpu_compute``, default: the CPU compute buffer of the
  same settings; the graph is the same, its allocation on CUDA is not modelled), the CPU compute buffer beside
  a partial offload (the same figure), the CUDA_Host compute buffer (not modelled, not counted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from bisect import bisect_right

from inspector.checkpoint.gguf import GGML_TYPES, GGUFFile
from inspector.memory.llamacpp import (BUFFER_LINE, CPU_ALIGNMENT, Buffer, LlamaCppSettings, hparams, kv_caches,
                                       kv_line, pad, predict_buffers, repacked, resolve_context)
from inspector.memory.llamacpp_graph import ARCHS
from inspector.memory.llamacpp_recurrent import rs_cache, rs_lines

# common/common.h LLM_FFN_EXPS_REGEX: the MoE expert tensors (--cpu-moe, --n-cpu-moe)
FFN_EXPS_REGEX = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"
# common/common.h llm_ffn_block_regex: --n-cpu-moe N adds "blk\.<i><FFN_EXPS_REGEX>" = CPU for i in 0..N-1
NCMOE_PATTERN = r"blk\.{i}" + FFN_EXPS_REGEX
CUDA_ALIGNMENT = 128  # ggml-cuda.cu ggml_backend_cuda_buffer_type_get_alignment
CUDA_ROW_PADDING = 512  # ggml-cuda/common.cuh MATRIX_ROW_PADDING (get_alloc_size pads quantized rows to it)
# src/llama-arch.cpp tensor table: LLM_TENSOR_LAYER_INPUT (always on the CPU: load_tensors "dev_input") and
# LLM_TENSOR_LAYER_OUTPUT (on the device of layer n_layer) names; all blk.N.* are REPEATING (layer N)
INPUT_TENSORS = ("token_embd", "token_embd_norm", "token_types", "position_embd", "per_layer_token_embd")
OUTPUT_TENSORS = ("output", "output_norm", "cls", "cls_out")
SRC_PLACE = "src/llama-model.cpp load_tensors (i_gpu_start, act_gpu_layers, splits); src/llama-model-loader.cpp"
SRC_KV = "src/llama-kv-cache.cpp: with offload_kqv each layer's K/V on model.dev_layer(il)"
SRC_RS_DEV = "src/llama-memory-recurrent.cpp L77-96: with offload_kqv each recurrent layer's R/S on model.dev_layer(i)"


@dataclass(frozen=True)
class Placement:
    """The offload flags: -ngl, the GPUs' names, -ts proportions, -ot (pattern, device) pairs, --n-cpu-moe."""

    n_gpu_layers: int = 0  # -ngl; -1: all (llama_model::n_gpu_layers: n_layer + 1)
    gpus: tuple = ()  # device names, e.g. ("CUDA0",); () = a CPU-only build: -ngl has no effect
    tensor_split: tuple = ()  # -ts; () = by free memory (load_tensors), here: equal
    overrides: tuple = ()  # -ot, ((regex, device), ...), checked first, in order (first match wins)
    n_cpu_moe: int = 0
    gpu_compute: tuple = ()  # assumed compute buffer per GPU (bytes); () = the CPU compute buffer each


def layer_devices(n_layer: int, p: Placement) -> list[str]:
    """The device of layers 0..n_layer (index n_layer: the output layer), as load_tensors assigns them."""
    ngl = n_layer + 1 if p.n_gpu_layers < 0 else p.n_gpu_layers
    i_gpu_start = max(n_layer + 1 - ngl, 0)  # the last ngl layers, the output layer counted as one
    act = min(ngl, n_layer + 1) if p.gpus else 0
    split = list(p.tensor_split) or [1.0] * len(p.gpus)
    total, cum = sum(split), []
    for x in split:
        cum.append((cum[-1] if cum else 0.0) + x)
    cum = [c / total for c in cum] if p.gpus else []
    out = []
    for il in range(n_layer + 1):
        if il < i_gpu_start or il - i_gpu_start >= act:
            out.append("CPU")
        else:  # std::upper_bound over the normalized cumulative splits
            out.append(p.gpus[min(bisect_right(cum, (il - i_gpu_start) / act), len(p.gpus) - 1)])
    return out


def all_overrides(p: Placement) -> list[tuple[str, str]]:
    """-ot pairs then --n-cpu-moe's (common/arg.cpp adds them in argument order; we paste -ot first)."""
    return list(p.overrides) + [(NCMOE_PATTERN.format(i=i), "CPU") for i in range(p.n_cpu_moe)]


def tensor_layer(name: str, n_layer: int) -> int:
    """The layer a weight belongs to: blk.N -> N; the output tensors -> n_layer; the input tensors -> -1 (CPU)."""
    m = re.match(r"blk\.(\d+)\.", name)
    if m:
        return int(m.group(1))
    return n_layer if name.rsplit(".", 1)[0] in OUTPUT_TENSORS else -1


def tensor_devices(f: GGUFFile, p: Placement) -> dict[str, str]:
    """Each weight's device: the first -ot / --n-cpu-moe pattern that std::regex_search finds, else its layer's."""
    n_layer = hparams(f).n_layer
    devs, ovr = layer_devices(n_layer, p), [(re.compile(a), d) for a, d in all_overrides(p)]
    out = {}
    for t in f.tensors:
        dev = next((d for rx, d in ovr if rx.search(t.name)), None)
        if dev is None:
            il = tensor_layer(t.name, n_layer)
            dev = "CPU" if il < 0 else devs[il]
        out[t.name] = dev
    return out


def cuda_alloc_size(t) -> int:
    """ggml_backend_cuda_buffer_type_get_alloc_size: a quantized tensor gets its last row padded to 512 elements."""
    _, blck, size = GGML_TYPES[t.ggml_type]
    ne0 = t.stored_shape[0]
    extra = 0
    if blck > 1 and ne0 % CUDA_ROW_PADDING:
        extra = (CUDA_ROW_PADDING - ne0 % CUDA_ROW_PADDING) // blck * size
    return t.nbytes + extra


@dataclass
class DeviceTotal:
    """One device's bytes by kind (model, repack, kv, output, compute) with each kind's status."""

    device: str
    parts: dict = field(default_factory=dict)  # kind -> bytes
    status: dict = field(default_factory=dict)  # kind -> exact / source / assumed
    kv_caches: dict = field(default_factory=dict)  # cache ("" / "SWA" / "non-SWA") -> KV bytes on this device

    def add(self, kind: str, nbytes: int, status: str) -> None:
        self.parts[kind] = self.parts.get(kind, 0) + nbytes
        self.status[kind] = status

    @property
    def total(self) -> int:
        return sum(self.parts.values())


def _cpu_model_bytes(f: GGUFFile, s: LlamaCppSettings, cpu: list, gpu_build: bool, tot: dict) -> None:
    """The CPU-side weights. CPU-only build: CPU_Mapped (mmap range) or CPU (padded sum), and CPU_REPACK.

    A GPU build puts the GPU's host buffer type (CUDA_Host) first in the CPU list (make_cpu_buft_list), so
    select_weight_buft never reaches CPU_REPACK; with mmap the loader swaps the host type for the plain CPU type
    ("avoid using a host buffer when using mmap", llama_model_loader::create_tensor): CPU_Mapped, no repack;
    without mmap: CUDA_Host, allocated (the CPU type's alignment 32 and alloc size, ggml-cuda.cu)."""
    rep = [t for t in cpu if not gpu_build and repacked(t, s)]
    rest = [t for t in cpu if t not in rep]
    status = "source" if gpu_build else "exact"
    if rest:
        n = (max(t.offset + t.nbytes for t in rest) - min(t.offset for t in rest) if s.use_mmap
             else sum(pad(t.nbytes, CPU_ALIGNMENT) for t in rest))
        tot["CPU"].add("model", n, status)
    if rep:
        tot["CPU"].add("repack", sum(pad(t.nbytes, CPU_ALIGNMENT) for t in rep), status)


def _model_bytes(f: GGUFFile, s: LlamaCppSettings, p: Placement, tot: dict) -> None:
    """CPU weights (above); a GPU's weights: each CUDA alloc size padded to 128 (ggml_backend_alloc_ctx_tensors).

    A tied output matrix (no output.weight: token_embd created again with TENSOR_DUPLICATED as the output layer's
    tensor) is a second copy when the output layer's buffer type differs from token_embd's: on the GPU at
    -ngl > n_layer (llama_model_loader::create_tensor: the duplicate is shared only within one buffer type)."""
    where = tensor_devices(f, p)
    _cpu_model_bytes(f, s, [t for t in f.tensors if where[t.name] == "CPU"], bool(p.gpus), tot)
    for t in f.tensors:
        if where[t.name] != "CPU":
            tot[where[t.name]].add("model", pad(cuda_alloc_size(t), CUDA_ALIGNMENT), "source")
    names = {t.name for t in f.tensors}
    out_dev = layer_devices(hparams(f).n_layer, p)[-1]
    if "output.weight" not in names and out_dev != "CPU" and "token_embd.weight" in names:
        embd = next(t for t in f.tensors if t.name == "token_embd.weight")
        tot[out_dev].add("model", pad(cuda_alloc_size(embd), CUDA_ALIGNMENT), "source")


def layer_kv(f: GGUFFile, s: LlamaCppSettings) -> list:
    """Each attention layer's KV cache as (il, cache key, KVCache): iSWA's SWA layers are those with
    (il + 1) % pattern != 0 (key "SWA"), the others "non-SWA"; a model without SWA: key "". A hybrid's
    recurrent layers have none (llama_memory_hybrid's attention filter: Nemotron-H's MLP blocks have none either,
    every Falcon-H1 layer has one; llamacpp_recurrent.Recurrent.attention_layers); a recurrent-only model: []."""
    hp = hparams(f)
    ctx = resolve_context(hp, s)
    caches = {c.swa: c for c in kv_caches(hp, ctx, s, ctx.n_ubatch)}
    if not caches:
        return []
    attn = set(hp.recurrent.attention_layers(hp.n_layer) if hp.recurrent else range(hp.n_layer))
    pattern = ARCHS[hp.arch].swa_pattern if hp.n_swa else 0
    keys = ["" if not pattern else ("SWA" if (il + 1) % pattern else "non-SWA") for il in range(hp.n_layer)]
    return [(il, k, caches[k]) for il, k in enumerate(keys) if il in attn]


def layer_rs(f: GGUFFile, s: LlamaCppSettings) -> list:
    """Each recurrent layer's state as (il, R bytes, S bytes): llama_memory_recurrent's per-layer f32 tensors
    ``[n_embd_r, mem_size]`` and ``[n_embd_s, mem_size]``, mem_size = max(1, n_seq_max) (n_rs_seq 0)."""
    hp = hparams(f)
    if not hp.recurrent:
        return []
    rows = max(1, s.n_seq_max)
    return [(il, hp.recurrent.n_embd_r * rows * 4, hp.recurrent.n_embd_s * rows * 4) for il in hp.recurrent.layers]


def _kv_bytes(f: GGUFFile, s: LlamaCppSettings, devs: list, tot: dict) -> None:
    """Each cache's per-layer K+V bytes on that layer's device; each recurrent layer's R+S bytes on its device
    (cache key "RS"): src/llama-memory-recurrent.cpp L77-96, with offload_kqv a layer's R/S tensors go to the
    buffer type of model.dev_layer(i), one buffer per buffer type, each tensor padded to its alignment."""
    for il, key, c in layer_kv(f, s):
        align = CPU_ALIGNMENT if devs[il] == "CPU" else CUDA_ALIGNMENT
        n = pad(c.k_bytes // c.layers, align) + pad(c.v_bytes // c.layers, align)
        tot[devs[il]].add("kv", n, "exact" if devs[il] == "CPU" else "source")
        tot[devs[il]].kv_caches[key] = tot[devs[il]].kv_caches.get(key, 0) + n
    for il, r, st in layer_rs(f, s):
        align = CPU_ALIGNMENT if devs[il] == "CPU" else CUDA_ALIGNMENT
        n = pad(r, align) + pad(st, align)
        tot[devs[il]].add("kv", n, "exact" if devs[il] == "CPU" else "source")
        tot[devs[il]].kv_caches["RS"] = tot[devs[il]].kv_caches.get("RS", 0) + n


def device_totals(f: GGUFFile, s: LlamaCppSettings, p: Placement) -> dict[str, DeviceTotal]:
    """Per device (CPU first, then the GPUs): model, repack, KV, output and compute bytes for this placement."""
    base = replace(s, n_gpu_layers=0, override_tensor=(), n_cpu_moe=0)
    pred = predict_buffers(f, base)
    tot = {d: DeviceTotal(d) for d in ("CPU",) + tuple(p.gpus)}
    devs = layer_devices(hparams(f).n_layer, p)
    _model_bytes(f, s, p, tot)
    _kv_bytes(f, s, devs, tot)
    kv = next((b.status for b in pred.buffers if b.kind == "kv"), "exact")  # assumed / not modelled: kept
    for t in tot.values():
        if "kv" in t.status and kv != "exact":
            t.status["kv"] = kv
    for b in pred.buffers:  # the output buffer lives in host memory (the output device's host buffer type)
        if b.kind == "output":
            tot["CPU"].add("output", b.nbytes, "exact")
    _compute(pred, p, devs, tot)
    return tot


def _compute(pred, p: Placement, devs: list, tot: dict) -> None:
    """The compute buffer per device; a graph not modelled (no CPU compute buffer predicted): no bytes, the
    status "not modelled" on each device that would hold one (the prediction's warning says why)."""
    compute = next((b.nbytes for b in pred.buffers if b.kind == "compute"), None)

    def put(t: DeviceTotal, nbytes: int, status: str) -> None:
        if compute is None:
            t.status["compute"] = "not modelled"
        else:
            t.add("compute", nbytes, status)

    if not p.gpus:
        put(tot["CPU"], compute, "exact")
    elif any(d == "CPU" for d in devs[:-1]):  # layers left on the CPU run there: assumed the same buffer
        put(tot["CPU"], compute, "assumed")
    for i, g in enumerate(p.gpus):  # a GPU without layers: assumed none (llama.cpp may still reserve a little)
        if g in devs:
            put(tot[g], p.gpu_compute[i] if p.gpu_compute else compute, "assumed")


SRC_HOST = ("src/llama-model.cpp make_cpu_buft_list (the GPU's host type first); llama-model-loader.cpp "
            "create_tensor (mmap: the plain CPU type instead)")
SRC_GPU_MODEL = "ggml-cuda.cu ggml_backend_cuda_buffer_type: alignment 128, quantized rows padded to 512 elements"
SRC_OUTPUT_HOST = "src/llama-context.cpp output_reserve: the output device's host buffer type (CUDA_Host on a GPU)"
SRC_GPU_COMPUTE = "assumed: the CPU compute buffer of the same settings (a GPU's graph allocation is not modelled)"


def _cpu_buffer_lines(s: LlamaCppSettings, t: DeviceTotal, gpu_build: bool) -> list[Buffer]:
    """The CPU side's model buffers by name: CPU_Mapped / CPU and CPU_REPACK (CPU build), CPU_Mapped or
    CUDA_Host (a GPU build: no repack)."""
    out = []
    if "model" in t.parts:
        name = "CPU_Mapped" if s.use_mmap else ("CUDA_Host" if gpu_build else "CPU")
        out.append(Buffer("load_tensors", name, "model", t.parts["model"], SRC_HOST if gpu_build else SRC_PLACE,
                          t.status["model"]))
    if "repack" in t.parts:
        out.append(Buffer("load_tensors", "CPU_REPACK", "repack", t.parts["repack"], SRC_PLACE, t.status["repack"]))
    return out


_CACHE_ORDER = {"": 0, "non-SWA": 0, "SWA": 1, "RS": 2}  # llama_kv_cache_iswa: base then SWA; hybrid: KV then RS


def _kv_buffers(tot: dict, gpus: list) -> list[tuple[str, Buffer]]:
    """(cache key, buffer) per cache (the non-SWA cache first, the recurrent state "RS" last), per device in
    the order of each cache's buft -> context map (std::map by buffer type name, strcmp: "CPU" < "CUDA0";
    src/llama-kv-cache.cpp L104-110, src/llama-memory-recurrent.cpp L41-47)."""
    keys = sorted(dict.fromkeys(k for t in tot.values() for k in t.kv_caches), key=_CACHE_ORDER.get)
    devs = sorted(gpus + [tot["CPU"]], key=lambda t: t.device)
    return [(key, Buffer("llama_memory_recurrent" if key == "RS" else "llama_kv_cache", t.device, "kv",
                         t.kv_caches[key], SRC_RS_DEV if key == "RS" else SRC_KV, t.status["kv"]))
            for key in keys for t in devs if key in t.kv_caches]


def device_buffers(f: GGUFFile, s: LlamaCppSettings, p: Placement) -> list[Buffer]:
    """Every buffer line llama.cpp would print for this placement, per device, in its words: model (GPUs, then
    the CPU side), output (CPU, or CUDA_Host when the output layer is on a GPU), KV per cache per device, compute
    per device. With no GPU this is the CPU printout (-ngl has no effect). The order of the lines within a
    kind follows llama.cpp's buffer-type maps and is not verified on a GPU."""
    tot = device_totals(f, s, p)
    gpus = [tot[g] for g in p.gpus]
    out = [Buffer("load_tensors", g.device, "model", g.parts["model"], SRC_GPU_MODEL, g.status["model"])
           for g in gpus if "model" in g.parts]
    out += _cpu_buffer_lines(s, tot["CPU"], bool(p.gpus))
    on_gpu = layer_devices(hparams(f).n_layer, p)[-1] != "CPU"
    out.append(Buffer("llama_context", "CUDA_Host" if on_gpu else "CPU", "output", tot["CPU"].parts["output"],
                      SRC_OUTPUT_HOST, "source" if on_gpu else "exact"))
    out += [b for _, b in _kv_buffers(tot, gpus)]
    for t in gpus + [tot["CPU"]]:
        if "compute" in t.parts:
            src = SRC_GPU_COMPUTE if t.status["compute"] == "assumed" else "sched_reserve (CPU graph)"
            out.append(Buffer("sched_reserve", t.device, "compute", t.parts["compute"], src, t.status["compute"]))
    return out


@dataclass(frozen=True)
class Hardware:
    """What the plan fits into: each GPU's memory and the host RAM, in bytes, and the GPUs' names."""

    gpu_bytes: tuple  # one entry per GPU
    ram_bytes: int
    names: tuple = ()  # () = CUDA0, CUDA1, ... (ggml-cuda's device names)

    def gpu_names(self) -> tuple:
        return self.names or tuple(f"CUDA{i}" for i in range(len(self.gpu_bytes)))


def is_moe(f: GGUFFile) -> bool:
    """Whether the file has expert tensors that --n-cpu-moe can keep on the CPU (LLM_FFN_EXPS_REGEX)."""
    rx = re.compile(FFN_EXPS_REGEX)
    return any(rx.search(t.name) for t in f.tensors)


def _placement(hw: Hardware, ngl: int, ncmoe: int) -> Placement:
    split = tuple(hw.gpu_bytes) if len(hw.gpu_bytes) > 1 else ()
    return Placement(n_gpu_layers=ngl, gpus=hw.gpu_names(), tensor_split=split, n_cpu_moe=ncmoe)


def fits(tot: dict, hw: Hardware) -> bool:
    """Every GPU's total within its memory and the CPU's within the RAM."""
    gpus = dict(zip(hw.gpu_names(), hw.gpu_bytes))
    return tot["CPU"].total <= hw.ram_bytes and all(tot[g].total <= b for g, b in gpus.items())


def search(f: GGUFFile, s: LlamaCppSettings, hw: Hardware) -> tuple:
    """The largest -ngl that fits (more layers first); for an MoE file at full offload, the smallest --n-cpu-moe.

    Returns (Placement, totals) or (None, the totals of -ngl 0) when not even the CPU placement fits."""
    n_layer = hparams(f).n_layer
    tries = [(n_layer + 1, 0)]
    if is_moe(f):
        tries += [(n_layer + 1, n) for n in range(1, n_layer + 1)]
    tries += [(n, n_layer if is_moe(f) else 0) for n in range(n_layer, -1, -1)]
    for ngl, ncmoe in tries:
        p = _placement(hw, ngl, ncmoe)
        tot = device_totals(f, s, p)
        if fits(tot, hw):
            return p, tot
    return None, device_totals(f, s, _placement(hw, 0, 0))


def flags(p: Placement, s: LlamaCppSettings) -> list[str]:
    """The llama-server / llama-cli flags of this placement and settings (common/arg.cpp spellings: -c L1639,
    -b L1669, -ub L1676, --swa-full L1690, -kvu L1724, -fa L1754, -ctk/-ctv L2437/L2450, -np L2544,
    -lm/--load-mode L2691: this llama.cpp has no --no-mmap)."""
    out = ["-c", str(s.n_ctx), "-b", str(s.n_batch), "-ub", str(s.n_ubatch), "-np", str(s.n_seq_max),
           "-fa", s.flash_attn, "-ctk", s.type_k, "-ctv", s.type_v]
    out += (["-kvu"] if s.kv_unified else []) + (["--swa-full"] if s.swa_full else [])
    out += [] if s.use_mmap else ["-lm", "none"]
    out += ["-ngl", "all" if p.n_gpu_layers < 0 else str(p.n_gpu_layers)]  # arg.cpp: -1 is 'auto' (--fit)
    if p.n_cpu_moe:
        out += ["--n-cpu-moe", str(p.n_cpu_moe)]
    if p.tensor_split:  # -ts N0,N1,...: proportions (std::stof each)
        low = min(x for x in p.tensor_split if x > 0)
        out += ["-ts", ",".join(f"{x / low:g}" for x in p.tensor_split)]
    if p.overrides:  # -ot <tensor name pattern>=<buffer type>,...
        out += ["-ot", ",".join(f"{a}={d}" for a, d in p.overrides)]
    return out


def plan(f: GGUFFile, s: LlamaCppSettings, hw: Hardware) -> dict:
    """The JSON plan: flags to paste, layers offloaded, per-device totals with each part's status."""
    return plan_and_placement(f, s, hw)[0]


def plan_and_placement(f: GGUFFile, s: LlamaCppSettings, hw: Hardware) -> tuple:
    """(the JSON plan, its Placement or None when nothing fits)."""
    p, tot = search(f, s, hw)
    n_layer = hparams(f).n_layer
    devices = [{"device": d.device, "bytes": d.total, "mib": f"{d.total / (1 << 20):.2f}",
                "parts": dict(d.parts), "status": dict(d.status)} for d in tot.values()]
    if p is None:
        return {"fits": False, "devices": devices, "flags": None,
                "reason": "not even -ngl 0 fits the RAM given"}, None
    return {"fits": True, "flags": flags(p, s), "n_gpu_layers": p.n_gpu_layers, "n_layer": n_layer,
            "output_layer_on_gpu": p.n_gpu_layers > n_layer if p.gpus else False,
            "n_cpu_moe": p.n_cpu_moe, "moe": is_moe(f), "devices": devices,
            "sources": {"placement": SRC_PLACE, "kv": SRC_KV,
                        "gpu_compute": "assumed: the CPU compute buffer of the same settings (not modelled)"}}, p



def offload_printout(f: GGUFFile, s: LlamaCppSettings, p: Placement) -> list[str]:
    """The lines llama.cpp would print for :func:`device_buffers`, in its formats (the CPU printout's; the
    offload lines of src/llama-model.cpp load_tensors). The order of lines within a kind is not verified."""
    hp, lines = hparams(f), []
    if p.gpus:  # load_tensors, with llama_supports_gpu_offload(): n_gpu = min(ngl, n_layer)
        ngl = hp.n_layer + 1 if p.n_gpu_layers < 0 else p.n_gpu_layers
        n_gpu = min(ngl, hp.n_layer)
        lines += ["load_tensors: offloading output layer to GPU"] if n_gpu > 0 else []
        lines.append(f"load_tensors: offloading {max(n_gpu - 1, 0)} repeating layers to GPU")
        lines.append(f"load_tensors: offloaded {min(ngl, hp.n_layer + 1)}/{hp.n_layer + 1} layers to GPU")
    line = BUFFER_LINE
    lines += [line[b.kind].format(func=b.func, device=b.device, mib=b.mib) for b in device_buffers(f, s, p)
              if b.kind in ("model", "repack", "output")]
    ctx = resolve_context(hp, s)
    caches = {c.swa: c for c in kv_caches(hp, ctx, s, ctx.n_ubatch)}
    tot = device_totals(f, s, p)
    kv = _kv_buffers(tot, [tot[g] for g in p.gpus])
    for key in dict.fromkeys(k for k, _ in kv):
        if key == "RS":  # llama_memory_recurrent: one RS buffer line per device, then its size line
            rs = rs_cache(hp.recurrent, hp.n_layer, s.n_seq_max)
            lines += [rs_lines(replace(rs, buffer_bytes=b.nbytes), b.device)[0] for k, b in kv if k == key]
            lines.append(rs_lines(rs)[1])
            continue
        if key:
            label = "non-SWA" if key == "non-SWA" else "    SWA"
            lines.append(f"llama_kv_cache_iswa: creating {label} KV cache, size = {caches[key].cells} cells")
        lines += [line["kv"].format(func=b.func, device=b.device, mib=b.mib) for k, b in kv if k == key]
        lines.append(kv_line(caches[key]))
    lines += [line[b.kind].format(func=b.func, device=b.device, mib=b.mib) for b in device_buffers(f, s, p)
              if b.kind == "compute"]
    return lines
