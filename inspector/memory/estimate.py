"""What `inspect memory` computes: a `MemoryRequest` turned by `estimate` into an `Estimate` with its verdict.

A `MemoryRequest` (the model, the hardware, and the serving or the
training options as given) turned by `estimate` into an `Estimate`: the model's accounting and the
serving or training plan (inspector.memory.serving, inspector.memory.training), with its verdict for
the GPU (inspector.memory.fit) on demand. Each value is checked here, before any plan, with the option it came
from in the message. No torch.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from inspector.errors import InspectError
from inspector.inventory.accounting import Accounting
from inspector.memory.fit import Verdict

if TYPE_CHECKING:  # serving's modules (vllm, parallel) load only when serving, training's when training
    from inspector.memory.serving import Serving
    from inspector.memory.training import TrainOptions, Training


class Hardware(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """--gpu (a name or a size in GiB), --gpus per node, --nodes, --overhead-gib per GPU (None: 0.5 GiB
    for training, vLLM's measured non-torch memory for serving), --gpu-memory-gib (torch's total)."""

    gpu: str = "H100-80GB"
    gpus: int = 1
    nodes: int = 1
    overhead_gib: float | None = None
    gpu_memory_gib: float | None = None


class ServeRequest(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """The serving options as given (vLLM's names); --weights: a checkpoint whose stored bytes count."""

    dtype: str = "bf16"
    group_size: int = 128
    weights: Path | None = None
    kv_dtype: str = "bf16"
    block_size: int = 16
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    max_num_batched_tokens: int | None = None  # None: vLLM's default for the engine and the GPU
    max_num_seqs: int | None = None
    dtype_given: bool = False  # --dtype given: a what-if override of the stored widths
    tp: int | None = None  # None: --gpus × --nodes
    pp: int = 1
    ep: bool = False
    engine: str | None = None  # None: the release's own (--vllm-version)
    vllm_version: str | None = None  # None: the newest modelled (vllm_versions.NEWEST; LAST_V0 with --engine vllm-v0)
    enforce_eager: bool = False
    kv_cache_memory: int | None = None
    images_per_prompt: int | None = None  # vLLM's --limit-mm-per-prompt image=N (VLMs only)
    # the image layer's largest_image(vision, text_hidden) (inspector.image.rules, above memory: the CLI
    # passes it); None: a vision-language model gets no encoder profile term
    largest_image: Callable[[Any, int], Any] | None = None
    # --adapter: (accounting, the load extras of `_load_extras`) -> the same with vLLM's LoRA stacks added
    # per rank (inspector.cli.adapters ServeLora.extras); None: no LoRA
    lora: Callable[[Any, Any], Any] | None = None


class MemoryRequest(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """`inspect memory MODEL`: serving (`train` None) or fine-tuning on the hardware (the training options
    as given; their GPUs, nodes and overhead are the hardware's, filled in by `estimate`)."""

    model: str
    hardware: Hardware = Hardware()
    serve: ServeRequest = ServeRequest()
    train: TrainOptions | None = None


class Estimate(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """The accounting and the serving or the training plan (the other None)."""

    acc: Accounting
    serving: Serving | None
    training: Training | None

    @property
    def verdict(self) -> Verdict:
        """Whether it fits on the GPU and, if not, what would (a non-fit is an answer, not an error)."""
        from inspector.memory.fit import serving_verdict, training_verdict

        if self.serving is not None:
            return serving_verdict(self.acc, self.serving)
        return training_verdict(self.acc, self.training)


def estimate(request: MemoryRequest) -> Estimate:
    """The plan of `request` and whether it fits; every bad value is one InspectError line."""
    from inspector.inventory.accounting import account
    from inspector.memory.gpus import gib_bytes, gpu, gpu_memory_gib
    from inspector.source import resolve

    hw = request.hardware
    if hw.gpus < 1 or hw.nodes < 1:
        raise InspectError(f"--gpus and --nodes must be at least 1, got --gpus {hw.gpus} --nodes {hw.nodes}")
    src = resolve(request.model)
    acc = account(src.spec())
    device = gpu(hw.gpu)
    if hw.gpu_memory_gib is not None:
        device = gpu_memory_gib(hw.gpu_memory_gib, device)
    overhead = None if hw.overhead_gib is None else gib_bytes(hw.overhead_gib, "--overhead-gib")
    if request.train is None:
        from inspector.memory.serving import plan

        if request.serve.images_per_prompt is not None and acc.spec.vision is None:
            raise InspectError(f"--images-per-prompt applies to vision-language models; {request.model} has no vision tower")
        sw = _stored(acc, src)
        options = _serve_options(request.serve, hw, overhead, _weights(acc, src, request.serve, sw))
        options = options._replace(extras=_load_extras(acc, src, device.capability, request.serve.dtype_given, sw))
        if request.serve.lora is not None:
            options = options._replace(extras=request.serve.lora(acc, options.extras))
        if acc.spec.vision is not None and request.serve.largest_image is not None:
            options = options._replace(largest_image=request.serve.largest_image(acc.spec.vision,
                                                                                 acc.spec.text.hidden_size))
        return Estimate(acc, plan(acc, device, options), None)
    from inspector.memory.training import plan as train_plan

    overhead = gib_bytes(0.5, "--overhead-gib") if overhead is None else overhead
    options = replace(request.train, gpus_per_node=hw.gpus, nodes=hw.nodes, overhead_bytes=overhead)
    return Estimate(acc, None, train_plan(acc, device, options))


def _load_extras(acc: Accounting, src, capability, dtype_given: bool, sw):
    """vllm_load.load_extras bound to the model's config.json, its stored weights `sw` (None: unquantized)
    and the GPU's compute capability: what vLLM allocates at load beyond the checkpoint, per (layout,
    stage). A --dtype what-if keeps the RoPE caches only (its quantization is not the checkpoint's)."""
    cfg = src.config if isinstance(src.config, dict) else {}
    if dtype_given:
        cfg, sw = {k: v for k, v in cfg.items() if k != "quantization_config"}, None
    made: dict = {}  # per (layout, stage): the verdict's variants and layout search ask again and again

    def extras(layout, stage):
        from inspector.memory.vllm_load import load_extras

        key = (tuple(layout), stage)
        if key not in made:
            made[key] = load_extras(acc, cfg, capability, layout, stage, stored=sw)
        return made[key]

    return extras


class _Weights(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """What the serving plan counts the weights from: widths per tensor (the headers', else
    quantization_config's; None: 16 bits), or a checkpoint's total split evenly, and why."""

    stored: Any = None
    total: int | None = None
    source: str = ""
    notes: tuple[str, ...] = ()


def _weights(acc: Accounting, src, s: ServeRequest, sw) -> _Weights:
    """The checkpoint's own headers when at hand (--weights, a local checkpoint, a Hub repo; see
    inspector.memory.headers), else config.json's quantization_config; --dtype (a what-if) reads none."""
    if s.dtype_given:
        return _Weights(notes=(f"--weights {s.weights} not read: --dtype is a what-if over it",) if s.weights else ())
    if src.kind == "preset" and s.weights is None:  # no files at hand (and no header module to import)
        return _Weights(_stored_widths(acc, src, sw))
    from inspector.memory.headers import HeaderMismatch, checkpoint_at_hand, header_widths

    hand = checkpoint_at_hand(src, s.weights)
    if hand.headers is None:
        why = (f"{hand.why}: widths from config.json instead",) if hand.why else ()
        return _Weights(_stored_widths(acc, src, sw), notes=why)
    cfg = src.config if isinstance(src.config, dict) else {}
    try:
        return _Weights(header_widths(acc, cfg, hand.headers, hand.label))
    except HeaderMismatch as exc:
        if s.weights is None:  # a checkpoint MODEL holds: the config's widths, said why
            why = (f"{exc}: widths from config.json instead (`inspect verify` lists the tensors)",)
            return _Weights(_stored_widths(acc, src, sw), notes=why)
        return _Weights(None, hand.headers.total_bytes, str(s.weights),
                        (f"{exc}: its stored total is split evenly over the GPUs",))


def _stored(acc: Accounting, src):
    """config.json's quantization_config read into stored bytes per tensor (inspector.memory.stored), made
    once per estimate for the weights' widths and vLLM's load extras; None for an unquantized model."""
    cfg = src.config if isinstance(src.config, dict) else None
    if not cfg or not cfg.get("quantization_config"):
        return None
    from inspector.memory.stored import stored_weights

    return stored_weights(acc, cfg, src.where)


def _stored_widths(acc: Accounting, src, sw):
    """The bytes per element of each tensor as config.json's quantization_config stores it; None for an
    unquantized model (vLLM's --dtype auto loads it in 16 bits)."""
    if sw is None:
        return None
    from inspector.memory.serving import stored_widths

    return stored_widths(acc, src.config, sw)


def _serve_options(s: ServeRequest, hw: Hardware, overhead: int | None, weights: _Weights):
    """ServeOptions (inspector.memory.serving) of the request: the dtypes checked, tensor parallel over
    --tp (else every GPU), the stored bytes of --weights read from its headers."""
    from inspector.memory.quant import KV_DTYPES, SERVE_DTYPES, check_dtype
    from inspector.memory.serving import ServeOptions

    dtype = check_dtype(s.dtype, SERVE_DTYPES, "--dtype")
    kv_dtype = check_dtype(s.kv_dtype, KV_DTYPES, "--kv-dtype")
    from inspector.memory.vllm_versions import resolve

    release = resolve(s.vllm_version, s.engine)  # one error line for a bad or contradicting version/engine
    if s.kv_cache_memory is not None and release.engine != "vllm-v1":
        raise InspectError("--kv-cache-memory is a vLLM V1 option (kv_cache_memory_bytes): use --engine vllm-v1")
    tp = s.tp if s.tp is not None else hw.gpus * hw.nodes
    if tp < 1 or s.pp < 1:
        raise InspectError(f"--tp and --pp must be at least 1, got --tp {tp} --pp {s.pp}")
    return ServeOptions(dtype=dtype, kv_dtype=kv_dtype, group_size=s.group_size, block_size=s.block_size,
                        gpu_memory_utilization=s.gpu_memory_utilization, max_model_len=s.max_model_len,
                        max_num_batched_tokens=s.max_num_batched_tokens, max_num_seqs=s.max_num_seqs,
                        tp=tp, pp=s.pp, ep=s.ep, engine=release.engine, vllm_version=release.text,
                        enforce_eager=s.enforce_eager, kv_cache_memory=s.kv_cache_memory, overhead_bytes=overhead,
                        weights_bytes=weights.total, weights_source=weights.source, dtype_given=s.dtype_given,
                        stored=weights.stored, weights_notes=weights.notes, images_per_prompt=s.images_per_prompt)
