"""What `inspect memory --engine llama.cpp` and `inspect quant` compute for a GGUF, or a config quantized on paper.

The one entry point each command calls: :func:`llamacpp_memory` (a :class:`LlamaCppRequest` -> a
:class:`LlamaCppEstimate`: llama.cpp's buffers, :mod:`inspector.memory.llamacpp`) and :func:`quantize_model`
(MODEL, TYPE -> a :class:`~inspector.memory.llamacpp_quant.QuantPlan`, :mod:`inspector.memory.llamacpp_quant`).
A GGUF is read from its header; a config (a preset, a directory or config.json, a safetensors
checkpoint's config) goes through the project's inventory mapped to GGUF names, and for ``memory`` a
GGUF header is assembled from it: the hyperparameters llama.cpp reads (``<arch>.*`` keys) and the tensors
that llama-quantize would write. Input llama.cpp refuses becomes one :class:`InspectError` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inspector.checkpoint.gguf import GGML_TYPES, GGUF_ARCHITECTURES, GGUFFile, GGUFTensor, parse_gguf
from inspector.errors import InspectError
from inspector.memory.llamacpp import KV_TYPES, LlamaCppSettings, Prediction, predict_buffers
from inspector.memory.llamacpp_quant import FTYPES, QuantPlan, State, quantize_gguf, quantize_inventory

_TYPE_IDS = {name: i for i, (name, _, _) in GGML_TYPES.items()}


@dataclass(frozen=True)
class LlamaCppRequest:
    """`inspect memory MODEL --engine llama.cpp`: the model, an optional llama-quantize type, the settings."""

    model: str
    quant: str | None
    settings: LlamaCppSettings


@dataclass(frozen=True)
class LlamaCppEstimate:
    """The prediction, what MODEL was read as, and the notes of that reading (quantization on paper)."""

    model: str
    origin: str  # "GGUF header", "GGUF header, quantized on paper to Q4_K_M", "config, quantized on paper to ..."
    prediction: Prediction
    notes: tuple  # str


def is_gguf(model: str) -> bool:
    """MODEL names a GGUF file (its header is read as it is: any architecture, no Hugging Face config needed)."""
    from inspector.checkpoint.open import GGUF, format_of

    return Path(model).is_file() and format_of(model) is GGUF


def _known_type(target: str) -> str:
    up = target.upper()
    if up not in FTYPES:
        raise InspectError(f"unknown llama.cpp quantization type {target!r}; known: {', '.join(FTYPES)}")
    return up


# Hugging Face model_type -> llama.cpp architecture for a config quantized on paper, beyond the inverse of
# GGUF_ARCHITECTURES (the GGUF loader's table, left as it is). Only where the header synthesized below carries
# every key llama.cpp reads for that architecture's buffers and the tensors keep the llama names
# (checked: tests/test_llamacpp_config_archs.py, the config path = the GGUF path on the synthetic GGUF):
# - smollm3: llama's keys and tensor names; its NoPE layers are fixed in llama.cpp (src/models/smollm3.cpp L5:
#   n_no_rope_layer_step = 4, whatever the config's no_rope_layer_interval), nothing else read.
# - granite: llama's tensor names; the four scales as the converter writes them (GRANITE_SCALES).
# Not mapped (a key or a tensor name the synthesized header would not carry right): cohere2 (logit_scale, the
# window pattern), MoE families (stacked expert tensors), gemma2/olmo2/starcoder2/phi3/glm4 (other tensor
# names), lfm2/granitemoehybrid (shortconv/ssm keys, per-layer head_count_kv).
CONFIG_ARCHS = {"smollm3": "smollm3", "granite": "granite"}
# convert_hf_to_gguf (conversion/granite.py L38-49, llama.cpp@0c1e57098) writes each scale only when the config
# has it, non-zero: config key -> GGUF key. llama.cpp adds a scale node whenever embedding_scale/residual_scale
# is present (src/models/granite.cpp L8-9, L250, L310) and requires logit_scale (L7).
GRANITE_SCALES = {"attention_multiplier": "attention.scale", "embedding_multiplier": "embedding_scale",
                  "residual_multiplier": "residual_scale", "logits_scaling": "logit_scale"}


def _gguf_arch(model_type: str, model: str) -> str:
    for arch, facts in GGUF_ARCHITECTURES.items():
        if facts.model_type == model_type:
            return arch
    if model_type in CONFIG_ARCHS:
        return CONFIG_ARCHS[model_type]
    known = ", ".join(sorted({f.model_type for f in GGUF_ARCHITECTURES.values()} | set(CONFIG_ARCHS)))
    raise InspectError(f"{model}: model_type {model_type!r} has no llama.cpp architecture here (known: {known})")


def _plan_from_config(model: str, target: str):
    """(QuantPlan, TextSpec, GGUF arch) of a config's inventory quantized to ``target``."""
    from inspector.source import account_model

    acc = account_model(model)
    text = acc.spec.text
    if text is None:
        raise InspectError(f"{model}: no text model to quantize")
    arch = _gguf_arch(acc.spec.model_type, model)
    st = State(n_layer=text.num_layers, n_gqa=text.num_heads // text.num_kv_heads)
    return quantize_inventory(acc.entries, arch, st, target), text, arch


def quantize_model(model: str, target: str) -> QuantPlan:
    """`inspect quant MODEL TYPE`: what llama-quantize writes, from a GGUF's header or a config's inventory."""
    target = _known_type(target)
    if is_gguf(model):
        return quantize_gguf(parse_gguf(model), target)
    return _plan_from_config(model, target)[0]


def _arch_keys(model: str, text, arch: str) -> dict:
    """The keys of an architecture beyond llama's, from the raw config as the converter reads them (granite)."""
    if arch != "granite":
        return {}
    from inspector.source import resolve

    cfg = resolve(model).config
    if not cfg.get("logits_scaling"):
        raise InspectError(f"{model}: a granite config without logits_scaling: llama.cpp requires granite.logit_scale")
    if text.head_dim * text.num_heads != text.hidden_size:  # conversion/granite.py L33: head_dim is dropped
        raise InspectError(f"{model}: head_dim {text.head_dim} x {text.num_heads} heads != hidden_size "
                           f"{text.hidden_size}: llama.cpp's granite converter ignores head_dim")
    return {f"{arch}.{k}": cfg[c] for c, k in GRANITE_SCALES.items() if cfg.get(c)}


def _header_from_config(text, arch: str, plan: QuantPlan, extra: dict | None = None) -> GGUFFile:
    """The GGUF header llama.cpp would read: load_hparams' keys from the config, the plan's tensors (offsets
    from 0: the mapped range does not depend on where the data starts)."""
    meta = {"general.architecture": arch, f"{arch}.block_count": text.num_layers,
            f"{arch}.embedding_length": text.hidden_size, f"{arch}.feed_forward_length": text.intermediate_size,
            f"{arch}.attention.head_count": text.num_heads, f"{arch}.attention.head_count_kv": text.num_kv_heads,
            f"{arch}.attention.key_length": text.head_dim, f"{arch}.attention.value_length": text.head_dim,
            f"{arch}.context_length": text.max_position_embeddings, f"{arch}.vocab_size": text.vocab_size}
    if text.sliding_window:
        meta[f"{arch}.attention.sliding_window"] = text.sliding_window
    meta.update(extra or {})
    tensors = [GGUFTensor(t.name, _TYPE_IDS[t.ggml_type.upper()], t.ggml_type.upper(), t.ne, t.offset, t.nbytes)
               for t in plan.tensors]
    return GGUFFile(path="<config>", size=plan.file_bytes, version=3, alignment=32, data_offset=0,
                    metadata=meta, value_types={}, tensors=tensors)


def _read(req: LlamaCppRequest) -> tuple[GGUFFile, str, tuple]:
    """MODEL as the GGUF header llama.cpp loads, what it was read as, and notes."""
    if is_gguf(req.model):
        f = parse_gguf(req.model)
        if req.quant is None:
            return f, "GGUF header", ()
        plan = quantize_gguf(f, _known_type(req.quant))
        tensors = [GGUFTensor(t.name, _TYPE_IDS[t.ggml_type.upper()], t.ggml_type.upper(), t.ne, t.offset, t.nbytes)
                   for t in plan.tensors]
        quantized = GGUFFile(f.path, plan.file_bytes, f.version, f.alignment, f.data_offset, f.metadata,
                             f.value_types, tensors)
        return quantized, f"GGUF header, quantized on paper to {plan.target}", plan.warnings
    if req.quant is None:
        raise InspectError(f"{req.model}: not a GGUF file; give --quant TYPE (a llama.cpp type such as Q4_K_M) "
                           "to quantize its config on paper")
    plan, text, arch = _plan_from_config(req.model, _known_type(req.quant))
    header = _header_from_config(text, arch, plan, _arch_keys(req.model, text, arch))
    return header, f"config, quantized on paper to {plan.target}", plan.warnings


def llamacpp_memory(req: LlamaCppRequest) -> LlamaCppEstimate:
    """Every buffer llama.cpp prints loading MODEL with the settings (CPU only). A context over the trained
    length is refused (exit 2) with llama.cpp's own warning line."""
    for flag, typ in (("--cache-type-k", req.settings.type_k), ("--cache-type-v", req.settings.type_v)):
        if typ not in KV_TYPES:
            raise InspectError(f"{flag} {typ!r}: not a KV cache type llama.cpp takes here (known: {', '.join(KV_TYPES)})")
    if req.settings.type_v not in ("f32", "f16", "bf16") and req.settings.flash_attn == "off":
        raise InspectError(f"--cache-type-v {req.settings.type_v} with --flash-attn off: llama.cpp refuses it "
                           "(quantized V cache was requested, but this requires Flash Attention)")
    f, origin, notes = _read(req)
    try:
        pred = predict_buffers(f, req.settings)
    except (ValueError, NotImplementedError) as e:
        raise InspectError(str(e)) from None
    overflow = [w for w in pred.warnings if "n_ctx_train" in w]
    if overflow:
        raise InspectError(f"llama_context: {overflow[0]} (--ctx-size at most the trained length)")
    return LlamaCppEstimate(req.model, origin, pred, notes)


def llamacpp_plan(req: LlamaCppRequest, gpu_bytes: tuple, ram_bytes: int | None = None) -> dict:
    """The offload plan (inspector.memory.llamacpp_offload.plan) for MODEL on GPUs of ``gpu_bytes`` each; the RAM
    is not checked when ``ram_bytes`` is None. The same checks as :func:`llamacpp_memory` first."""
    return llamacpp_offload(OffloadRequest(req, tuple(gpu_bytes), ram_bytes=ram_bytes)).data


@dataclass(frozen=True)
class OffloadRequest:
    """GPU offload: the GPUs' bytes (one per GPU, named CUDA0..), their cards (preset names, for the report), the
    host RAM (None: not checked), and a placement (-ngl, -ot, ...; None: search the plan)."""

    request: LlamaCppRequest
    gpu_bytes: tuple
    cards: tuple = ()
    ram_bytes: int | None = None
    placement: object = None  # inspector.memory.llamacpp_offload.Placement


@dataclass(frozen=True)
class OffloadResult:
    """The JSON (a plan, or the buffers of a given placement), the GGUF read, and the placement (None: no fit)."""

    data: dict
    gguf: GGUFFile
    placement: object


def _devices_json(f: GGUFFile, s: LlamaCppSettings, p, limits: dict) -> dict:
    """Per-device buffers (llama.cpp's words), totals with status, whether each fits, the printout, the flags."""
    from inspector.memory.llamacpp_offload import device_buffers, device_totals, flags, offload_printout

    bufs, tot = device_buffers(f, s, p), device_totals(f, s, p)
    devices = [{"device": d.device, "bytes": d.total, "mib": f"{d.total / 2**20:.2f}", "parts": dict(d.parts),
                "status": dict(d.status), "limit_bytes": limits.get(d.device),
                "fits": None if limits.get(d.device) is None else d.total <= limits[d.device]}
               for d in tot.values()]
    # a compute buffer whose graph is not modelled: stated per device, with no size (as on the CPU report)
    missing = [{"func": "sched_reserve", "device": d.device, "kind": "compute", "mib": None, "bytes": None,
                "status": "not modelled", "source": "no graph template (see the warnings)"}
               for d in [tot[g] for g in p.gpus] + [tot["CPU"]] if d.status.get("compute") == "not modelled"]
    return {"buffers": [{"func": b.func, "device": b.device, "kind": b.kind, "mib": b.mib, "bytes": b.nbytes,
                         "status": b.status, "source": b.source} for b in bufs] + missing,
            "devices": devices, "fits": all(d["fits"] is not False for d in devices),
            "flags": flags(p, s) if p.gpus else None, "printout": offload_printout(f, s, p)}


def llamacpp_offload(o: OffloadRequest) -> OffloadResult:
    """The plan (largest -ngl that fits, :func:`inspector.memory.llamacpp_offload.plan`) or, for a given
    placement, llama.cpp's buffers per device. The same checks as :func:`llamacpp_memory` first."""
    from inspector.memory.llamacpp_offload import Hardware, plan_and_placement

    est = llamacpp_memory(o.request)
    f, s = _read(o.request)[0], o.request.settings
    names = tuple(f"CUDA{i}" for i in range(len(o.gpu_bytes)))
    head = {"model": o.request.model, "engine": "llama.cpp", "read_as": est.origin,
            "gpus": [{"device": d, "card": c, "bytes": b} for d, c, b in zip(names, o.cards or names, o.gpu_bytes)],
            "ram_checked": o.ram_bytes is not None, "ram_bytes": o.ram_bytes}
    limits = dict(zip(names, o.gpu_bytes)) | ({"CPU": o.ram_bytes} if o.ram_bytes is not None else {})
    if o.placement is None:
        data, p = plan_and_placement(f, s, Hardware(tuple(o.gpu_bytes), o.ram_bytes if o.ram_bytes is not None
                                                    else 1 << 62))
        data.update(head, mode="plan", gpu_bytes=list(o.gpu_bytes))
    else:
        p = o.placement
        data = {**head, "mode": "placement", "n_gpu_layers": p.n_gpu_layers, **_devices_json(f, s, p, limits)}
    if p is not None and o.placement is None:  # the plan's placement, line by line
        dev = _devices_json(f, s, p, limits)
        data.update(buffers=dev["buffers"], printout=dev["printout"], devices=dev["devices"])
    data["warnings"] = list(est.prediction.warnings)
    data["notes"] = list(est.notes)
    return OffloadResult(data, f, p)
