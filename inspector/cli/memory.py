"""`inspect memory`: will a model fit for serving (vLLM-style) or fine-tuning (full/ZeRO, LoRA, QLoRA)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli.adapters import AdapterOpt, MaxCpuOpt, MaxLorasOpt, MaxRankOpt
from inspector.cli.options import OutOpt, command, given_options, output_format

HARDWARE = "Hardware (serving and training)"
LLAMACPP = "llama.cpp (--engine llama.cpp)"
SERVE = "Serving (the default)"
TRAIN = "Training (--train)"
LORA = "LoRA / QLoRA"


class Train(str, Enum):
    full = "full"
    lora = "lora"
    qlora = "qlora"


class Zero(str, Enum):  # DeepSpeed's ZeRO stages, read as numbers
    none = "0"
    optimizer = "1"
    gradients = "2"
    params = "3"


class Offload(str, Enum):
    none = "none"
    optimizer = "optimizer"
    optimizer_params = "optimizer+params"


class Optimizer(str, Enum):
    adamw = "adamw"
    adamw_fp32 = "adamw-fp32"
    adam8bit = "adam8bit"
    sgd = "sgd"


class Recompute(str, Enum):
    none = "none"
    selective = "selective"
    full = "full"


class Attention(str, Enum):
    flash = "flash"
    eager = "eager"


class Engine(str, Enum):
    v1 = "vllm-v1"
    v0 = "vllm-v0"
    llama_cpp = "llama.cpp"


class FlashAttn(str, Enum):  # llama.cpp's --flash-attn
    on = "on"
    off = "off"
    auto = "auto"


class Precision(str, Enum):
    mixed = "mixed"
    autocast = "autocast"
    bf16 = "bf16"


class MemoryFormat(str, Enum):
    table = "table"
    md = "md"
    json = "json"
    csv = "csv"
    deepspeed = "deepspeed"


def _opt(kind, default_help: str, *names: str, panel: str = SERVE, **kw):
    return Annotated[kind, typer.Option(*names, help=default_help, rich_help_panel=panel, **kw)]


ModelArg = Annotated[str, typer.Argument(help="Preset, local directory / config.json, or Hub id.", show_default=False,
                                              metavar="MODEL")]
TrainOpt = _opt(Optional[Train], "Fine-tune instead of serving (default: serve).", "--train", panel=TRAIN)
GpuOpt = _opt(str, "H100-80GB, H200-141GB, A100-80GB, A100-40GB, L4-24GB, RTX4090-24GB (also RTX3090-24GB, "
              "A10-24GB, L40-48GB, MI300X-192GB), or a size in GiB (--engine llama.cpp: several, comma-separated).",
              "--gpu", panel=HARDWARE)
GpusOpt = _opt(int, "GPUs per node (serving: the tensor parallel size unless --tp).", "--gpus", panel=HARDWARE)
GpuGibOpt = _opt(Optional[float], "The GPU's total as torch reports it (torch.cuda.mem_get_info()[1]), in GiB: "
                 "any other card.", "--gpu-memory-gib", panel=HARDWARE, show_default=False)
CheckOpt = _opt(bool, "Exit 1 when it does not fit (for scripts); without it a non-fit is an answer (exit 0).",
                "--check", panel=HARDWARE)
TpOpt = _opt(Optional[int], "Tensor parallel size (default: --gpus × --nodes).", "--tp", show_default=False)
PpOpt = _opt(int, "Pipeline parallel size.", "--pp")
EpOpt = _opt(bool, "vLLM's --enable-expert-parallel: whole experts per rank (EP = TP).", "--ep")
EngineOpt = _opt(Optional[Engine], "vLLM engine whose start-up arithmetic to follow (default: the release's own; "
                 "V0 before 0.8.0, V1 from it, V1 only from 0.11.0), or llama.cpp: the buffers it allocates for a "
                 "GGUF (or MODEL's config with --quant), in its own words.", "--engine", show_default=False)
VersionOpt = _opt(Optional[str], "vLLM release whose start-up arithmetic to follow (engine, batch defaults, "
                  "non-torch accounting, CUDA-graph profiling from 0.21.0); default 0.27.1, the newest modelled "
                  "(0.10.2 with --engine vllm-v0).", "--vllm-version", metavar="X.Y[.Z]", show_default=False)
EagerOpt = _opt(bool, "vLLM's --enforce-eager: no CUDA graphs.", "--enforce-eager")
KvMemOpt = _opt(Optional[int], "vLLM's --kv-cache-memory: a fixed KV budget in bytes per GPU (V1).",
                "--kv-cache-memory", metavar="BYTES", min=1, show_default=False)
ImagesOpt = _opt(Optional[int], "Images per prompt for a vision-language model (vLLM's --limit-mm-per-prompt; "
                 "default: vLLM's, 999 in V1, 1 in V0): the profile run encodes that many largest images.",
                 "--images-per-prompt", min=1, show_default=False)
PrecisionOpt = _opt(Precision, "mixed: fp32 masters and states; autocast: LoRA adapters read 16-bit inputs; "
                    "bf16: pure bf16 AdamW.", "--precision", panel=TRAIN)
NodesOpt = _opt(int, "Nodes.", "--nodes", panel=HARDWARE)
DtypeOpt = _opt(str, "Weights, as a what-if (default: as the checkpoint stores them).", "--dtype",
               metavar="[bf16|fp16|fp8|int8|int4]")
GroupOpt = _opt(int, "int4 scale group size (--dtype int4).", "--group-size", min=1)
WeightsOpt = _opt(Optional[Path], "A checkpoint (safetensors file, index or directory, or GGUF) whose headers give "
                  "each tensor's stored bytes (default: MODEL's own, when it holds or is one).", "--weights")
KvOpt = _opt(str, "KV cache.", "--kv-dtype", metavar="[bf16|fp16|fp8|int8]")
BlockOpt = _opt(int, "Tokens per KV block (vLLM).", "--block-size", min=1)
UtilOpt = _opt(float, "Share of GPU memory vLLM may use.", "--gpu-memory-utilization", min=0.01, max=1.0)
LenOpt = _opt(Optional[int], "Context per request (default: max_position_embeddings).", "--max-model-len", min=1)
BatchedOpt = _opt(Optional[int], "Tokens per scheduler step (the profiled prefill; default: vLLM's for the engine "
                  "and GPU).", "--max-num-batched-tokens", min=1, show_default=False)
SeqsOpt = _opt(Optional[int], "Sequences per step (rows of sampled logits; default: vLLM's).", "--max-num-seqs",
               min=1, show_default=False)
OverheadOpt = _opt(Optional[float], "Non-torch memory per GPU (training: CUDA context allowance, default 0.5; "
                   "serving: default vLLM's measured figure).", "--overhead-gib", min=0.0, panel=HARDWARE,
                   show_default=False)
OptimOpt = _opt(Optimizer, "adamw is mixed precision (--train full).", "--optimizer", panel=TRAIN)
ZeroOpt = _opt(Zero, "DeepSpeed ZeRO stage (--train full).", "--zero", panel=TRAIN)
OffloadOpt = _opt(Offload, "DeepSpeed offload to CPU (--train full).", "--offload", panel=TRAIN)
InitOpt = _opt(bool, "ZeRO-3 zero.Init (--train full --zero 3).", "--zero-init/--no-zero-init", panel=TRAIN)
SeqOpt = _opt(int, "Training sequence length s.", "--seq-len", panel=TRAIN, min=1)
MicroOpt = _opt(int, "Micro-batch b per GPU.", "--micro-batch", panel=TRAIN, min=1)
RecomputeOpt = _opt(Recompute, "Activation recomputation.", "--recompute", panel=TRAIN)
AttnOpt = _opt(Attention, "flash keeps no s² scores.", "--attention", panel=TRAIN)
RankOpt = _opt(int, "LoRA rank r.", "--lora-rank", panel=LORA)
AlphaOpt = _opt(int, "LoRA alpha.", "--lora-alpha", panel=LORA)
TargetsOpt = _opt(Optional[str], "Comma-separated module names, or all-linear (default: peft's default for the "
                  "family).", "--lora-targets", panel=LORA)
DoraOpt = _opt(bool, "DoRA (adds a magnitude vector per matrix).", "--dora", panel=LORA)
BiasOpt = _opt(bool, "peft's lora_bias (a bias on B).", "--lora-bias", panel=LORA)
DqOpt = _opt(bool, "QLoRA double quantization (--train qlora).", "--double-quant/--no-double-quant", panel=LORA)
QuantOpt = _opt(Optional[str], "A llama-quantize type (Q4_K_M, Q8_0, ...): MODEL's tensors as llama-quantize would "
                "write them (a config's, or a GGUF's requantized).", "--quant", panel=LLAMACPP, metavar="TYPE",
                show_default=False)
CtxSizeOpt = _opt(int, "llama.cpp's --ctx-size (0: the trained length); padded to 256 as llama.cpp does.", "--ctx-size",
                  panel=LLAMACPP, min=0)
LBatchOpt = _opt(int, "llama.cpp's --batch-size (logical batch; capped by the context).", "--batch-size",
                 panel=LLAMACPP, min=1)
UBatchOpt = _opt(int, "llama.cpp's --ubatch-size (physical batch: the compute buffer's token count).",
                 "--ubatch-size", panel=LLAMACPP, min=1)
ParallelOpt = _opt(int, "llama.cpp's --parallel: sequences (n_seq_max).", "--parallel", panel=LLAMACPP, min=1)
UnifiedOpt = _opt(bool, "llama.cpp's --kv-unified: one KV stream for all sequences (default off, the C API's).",
                  "--kv-unified/--no-kv-unified", panel=LLAMACPP)
FlashOpt = _opt(FlashAttn, "llama.cpp's --flash-attn; auto resolves to on for the CPU backend.", "--flash-attn",
                panel=LLAMACPP)
CacheKOpt = _opt(str, "llama.cpp's --cache-type-k.", "--cache-type-k", panel=LLAMACPP,
                 metavar="[f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|iq4_nl]")
CacheVOpt = _opt(str, "llama.cpp's --cache-type-v (a quantized V needs flash attention).", "--cache-type-v",
                 panel=LLAMACPP, metavar="[f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|iq4_nl]")
SwaFullOpt = _opt(bool, "llama.cpp's --swa-full: SWA caches as large as the context. Default off, llama-server's; the "
                  "C API (llama_context_default_params) and llama-cpp-python default to on.",
                  "--swa-full/--no-swa-full", panel=LLAMACPP)
NoMmapOpt = _opt(bool, "llama.cpp's --no-mmap: weights read into an allocated CPU buffer.", "--no-mmap",
                 panel=LLAMACPP)
NglOpt = _opt(Optional[str], "llama.cpp's -ngl: N layers counted from the output layer, all (or -1), or auto (the "
              "offload plan: the largest N that fits). Needs a GPU (--gpu / --gpu-memory-gib); without one it has "
              "no effect, as on llama.cpp's CPU build.", "--n-gpu-layers", "-ngl", "--gpu-layers", panel=LLAMACPP,
              metavar="N|all|auto", show_default=False)
OtOpt = _opt(Optional[list[str]], "llama.cpp's -ot PATTERN=DEVICE[,...] (repeatable): weights whose name the regex "
             "finds go to CPU or CUDA<i>; first match wins.", "--override-tensor", "-ot", panel=LLAMACPP,
             show_default=False)
CpuMoeOpt = _opt(Optional[int], "llama.cpp's --n-cpu-moe N: the MoE expert weights of layers 0..N-1 stay on the CPU.",
                 "--n-cpu-moe", "-ncmoe", panel=LLAMACPP, min=0, show_default=False)
SplitOpt = _opt(Optional[str], "llama.cpp's -ts: proportions of the offloaded layers per GPU, e.g. 3,1 (default: "
                "by each GPU's memory).", "--tensor-split", "-ts", panel=LLAMACPP, show_default=False)
RamOpt = _opt(Optional[float], "Host RAM in GiB (llama.cpp offload): the CPU side must fit it (default: not checked).",
              "--ram-gib", panel=LLAMACPP, min=0.0, show_default=False)
RamBwOpt = _opt(Optional[float], "Host memory bandwidth in GB/s for the decode tokens/s bound (default: assumed 51.2, "
                "two channels of DDR4-3200).", "--ram-bandwidth-gbs", panel=LLAMACPP, min=0.001, show_default=False)
MbuOpt = _opt(float, "Memory-bandwidth utilization for the decode tokens/s bound (1.0: the roofline bound).", "--mbu",
              panel=LLAMACPP, min=0.01, max=1.0)
MemFormatOpt = Annotated[Optional[MemoryFormat], typer.Option(
    "--format", "-f", help="table, md, json, csv, or deepspeed (DeepSpeed's own printout; --train full --zero 2|3). "
                           "Default: from -o's extension (.md, .json, .csv), else table.", show_default=False)]


@command
def memory(
    ctx: typer.Context, model: ModelArg, gpu: GpuOpt = "H100-80GB", gpus: GpusOpt = 1, nodes: NodesOpt = 1,
    gpu_memory_gib: GpuGibOpt = None, overhead_gib: OverheadOpt = None, check: CheckOpt = False, train: TrainOpt = None,
    tp: TpOpt = None, pp: PpOpt = 1, ep: EpOpt = False, engine: EngineOpt = None, vllm_version: VersionOpt = None,
    enforce_eager: EagerOpt = False, kv_cache_memory: KvMemOpt = None, images_per_prompt: ImagesOpt = None,
    dtype: DtypeOpt = "bf16", group_size: GroupOpt = 128, weights: WeightsOpt = None, kv_dtype: KvOpt = "bf16",
    block_size: BlockOpt = 16, gpu_memory_utilization: UtilOpt = 0.9, max_model_len: LenOpt = None,
    max_num_batched_tokens: BatchedOpt = None, max_num_seqs: SeqsOpt = None, precision: PrecisionOpt = Precision.mixed,
    optimizer: OptimOpt = Optimizer.adamw, zero: ZeroOpt = Zero.none, offload: OffloadOpt = Offload.none,
    zero_init: InitOpt = True, seq_len: SeqOpt = 2048, micro_batch: MicroOpt = 1,
    recompute: RecomputeOpt = Recompute.none, attention: AttnOpt = Attention.flash, lora_rank: RankOpt = 16,
    lora_alpha: AlphaOpt = 32, lora_targets: TargetsOpt = None, dora: DoraOpt = False, lora_bias: BiasOpt = False,
    double_quant: DqOpt = True, quant: QuantOpt = None, ctx_size: CtxSizeOpt = 4096, batch_size: LBatchOpt = 2048,
    ubatch_size: UBatchOpt = 512, parallel: ParallelOpt = 1, kv_unified: UnifiedOpt = False,
    flash_attn: FlashOpt = FlashAttn.auto, cache_type_k: CacheKOpt = "f16", cache_type_v: CacheVOpt = "f16",
    swa_full: SwaFullOpt = False, no_mmap: NoMmapOpt = False, n_gpu_layers: NglOpt = None,
    override_tensor: OtOpt = None, n_cpu_moe: CpuMoeOpt = None, mbu: MbuOpt = 1.0, tensor_split: SplitOpt = None,
    ram_gib: RamOpt = None, ram_bandwidth_gbs: RamBwOpt = None, adapter: AdapterOpt = None,
    max_loras: MaxLorasOpt = None, max_lora_rank: MaxRankOpt = None, max_cpu_loras: MaxCpuOpt = None,
    format: MemFormatOpt = None, output: OutOpt = None) -> None:
    """Will it fit? GPU memory for serving (vLLM-style paged KV cache) or fine-tuning.

    Serving follows vLLM's start-up arithmetic: torch's GPU total × utilization, the weights per
    rank as the checkpoint stores them, the profile-run peak and non-torch memory, the KV cache in
    vLLM's blocks, and the lines vLLM logs; each term is marked exact, calibrated or assumed.
    Training prints model states (DeepSpeed's ZeRO estimators to the byte), activations, the loss
    peak and, for LoRA/QLoRA, peft's trainable-parameter line. Every scenario ends with a verdict
    (a non-fit exits 0; --check makes it exit 1) and what would make it fit. No torch is imported.
    An option of another mode (--zero without --train full, --dtype with --train) is refused.
    --engine llama.cpp: llama.cpp's buffers for a GGUF, per device with --gpu -ngl; the offload plan (docs/llamacpp.md).

    Examples:
      inspect memory Qwen/Qwen2.5-7B-Instruct --gpu L4-24GB
      inspect memory qwen2.5-7b-instruct --dtype int4 --kv-dtype fp8 --max-model-len 16384
      inspect memory deepseek-ai/DeepSeek-V3 --gpu H200-141GB --tp 8 --check
      inspect memory llama-3.1-8b --train full --zero 3 --gpus 8 --format deepspeed
      inspect memory llama-3.2-1b --train lora --lora-rank 8 --lora-targets q_proj
      inspect memory llama-3.1-8b --train qlora --lora-targets all-linear --gpu RTX4090-24GB
      inspect memory $SMOL --engine llama.cpp --ctx-size 8192 --cache-type-k q8_0 --flash-attn on
      inspect memory $SMOL --engine llama.cpp --gpu RTX4090-24GB -ngl 20
    """
    format = output_format(format, output, MemoryFormat)
    if engine == Engine.llama_cpp:  # llama.cpp's modules load only on this path (cold start of vLLM serving)
        return _emit_llamacpp(ctx, dict(locals()), format, output)
    if _transformers_path(model):  # no native family: transformers' own cache on meta (the `hf` extra)
        return _emit_transformers(ctx, dict(locals()), format, output)
    from inspector.memory.estimate import Hardware, MemoryRequest, ServeRequest
    given = check_modes(ctx, train.value if train is not None else "serve", zero.value, dtype)
    _check_together(given, tp, (gpus, nodes), format, train)
    request = MemoryRequest(
        model=model, hardware=Hardware(gpu=gpu, gpus=gpus, nodes=nodes, overhead_gib=overhead_gib,
                                       gpu_memory_gib=gpu_memory_gib),
        serve=ServeRequest(dtype=dtype, group_size=group_size, weights=weights, kv_dtype=kv_dtype,
                           block_size=block_size, gpu_memory_utilization=gpu_memory_utilization,
                           max_model_len=max_model_len, max_num_batched_tokens=max_num_batched_tokens,
                           max_num_seqs=max_num_seqs, dtype_given="dtype" in given, tp=tp, pp=pp, ep=ep,
                           engine=engine and engine.value, vllm_version=vllm_version, enforce_eager=enforce_eager, kv_cache_memory=kv_cache_memory,
                           images_per_prompt=images_per_prompt, largest_image=largest_image),
        train=_training(dict(locals())) if train is not None else None)
    _exit_on_check(_emit(request, format, output, _adapter(dict(locals()), given)), check)


# What applies to a model served through transformers' measure (inspector.runtime.hf_answer); others are refused.
TRANSFORMERS_PATH = ("gpu", "gpu_memory_gib", "overhead_gib", "check", "engine", "vllm_version", "enforce_eager",
                     "kv_cache_memory", "kv_dtype", "block_size", "gpu_memory_utilization", "max_model_len",
                     "max_num_batched_tokens", "max_num_seqs", "format", "output")


def _transformers_path(model: str) -> bool:
    """Whether MODEL has no native family (then transformers answers, `inspector.runtime.hf_answer`)."""
    from inspector.inventory.load import is_native
    from inspector.source import resolve

    return not is_native(resolve(model).config)


def _emit_transformers(ctx, o: dict, format: MemoryFormat, output) -> None:
    """`memory` through transformers on meta: vLLM V1 serving only, the options that apply checked first;
    exit 1 with --check when vLLM would not start."""
    from inspector.errors import InspectError
    from inspector.reports.render import emit
    from inspector.runtime.hf_answer import HfServe, hf_memory, memory_report
    from inspector.source import account_model, resolve

    other = [opt for name, opt in given_options(ctx).items() if name not in TRANSFORMERS_PATH]
    if other:
        raise InspectError(f"{', '.join(other)}: {o['model']} has no native family; served through transformers' "
                           "measure, only vLLM V1 serving options apply")
    if format not in (MemoryFormat.table, MemoryFormat.md, MemoryFormat.json):
        raise InspectError(f"--format {format.value}: a model with no native family is written as table, md or json")
    serve = HfServe(**{k: o[k] for k in HfServe._fields if k != "engine"}, engine=o["engine"] and o["engine"].value)
    src = resolve(o["model"])
    result = hf_memory(src.config, account_model(o["model"]), src.where, serve)
    emit(memory_report(result), format.value, output)
    _exit_on_check(result.fits, o["check"])


def _exit_on_check(fits: bool, check: bool) -> None:
    """--check: exit 1 when it does not fit."""
    if check and not fits:
        raise typer.Exit(1)


def _training(o: dict):
    """--train: the command's arguments (`o`, by name) as TrainOptions; training's modules load only for
    training (cold start of serving)."""
    from inspector.memory.lora import LoraOptions
    from inspector.memory.training import TrainOptions

    return TrainOptions(
        mode=o["train"].value, optimizer=o["optimizer"].value, zero=int(o["zero"].value), offload=o["offload"].value,
        zero_init=o["zero_init"], seq_len=o["seq_len"], micro_batch=o["micro_batch"], recompute=o["recompute"].value,
        attention=o["attention"].value, lora=_adapter_lora(o) or LoraOptions(
            rank=o["lora_rank"], alpha=o["lora_alpha"], targets=_targets(o["lora_targets"]), dora=o["dora"],
            bias=o["lora_bias"]),
        double_quant=o["double_quant"], precision=o["precision"].value)


LORA_FLAGS = ("lora_rank", "lora_alpha", "lora_targets", "dora", "lora_bias")
VLLM_LORA = ("max_loras", "max_lora_rank", "max_cpu_loras")


def _adapter(o: dict, given: dict):
    """--adapter: serving, a ServeLora (vLLM's LoRA memory added to the report); training, None (the adapter
    sets r, alpha and the targets in `_training`). Flags that contradict it are refused in one line."""
    from inspector.errors import InspectError

    if o["adapter"] is None:
        extra = [given[k] for k in VLLM_LORA if k in given]
        if extra:
            raise InspectError(f"{', '.join(extra)}: vLLM's LoRA flags apply with --adapter DIR")
        return None
    from inspector.cli.adapters import AdapterRequest, ServeLora

    if o["train"] is not None:
        clash = [given[k] for k in LORA_FLAGS + VLLM_LORA if k in given]
        if clash:
            raise InspectError(f"{', '.join(clash)} and --adapter: the adapter's config sets r, alpha and the targets")
        return None
    flags = ServeLora(AdapterRequest(o["adapter"], o["model"]), o["max_loras"], o["max_lora_rank"], o["max_cpu_loras"])
    return flags.prepare()


def _adapter_lora(o: dict):
    """--adapter with --train lora|qlora: the adapter's LoraOptions, else None."""
    if o.get("adapter") is None:
        return None
    from inspector.cli.adapters import AdapterRequest, train_lora

    return train_lora(AdapterRequest(o["adapter"], o["model"]))


def _check_together(given: dict, tp: int | None, gpus: tuple[int, int], format: MemoryFormat,
                    train: Train | None) -> None:
    """Options that contradict each other: --tp against --gpus × --nodes (`gpus`), --format deepspeed
    without --train full."""
    from inspector.errors import InspectError

    if "tp" in given and "gpus" in given and tp != gpus[0] * gpus[1]:
        raise InspectError(f"--tp {tp} and --gpus {gpus[0]}: serving, --gpus is the tensor parallel size; give one")
    if format == MemoryFormat.deepspeed and train != Train.full:
        raise InspectError("--format deepspeed is DeepSpeed's ZeRO printout: pass --train full --zero 2 or 3")


PLACEMENT = ("n_gpu_layers", "override_tensor", "n_cpu_moe", "tensor_split")  # llama.cpp's offload flags
GPU_NAMED = ("gpu", "gpus", "gpu_memory_gib")


def _llamacpp_options(ctx, format: MemoryFormat) -> dict:
    """One line for an option that does not apply to --engine llama.cpp (vLLM's, training's); the options given."""
    from inspector.errors import InspectError

    given = given_options(ctx)
    other = [opt for name, opt in given.items()
             if name not in LLAMACPP_ONLY + GPU_NAMED + ("engine", "format", "output")]
    if other:
        raise InspectError(f"{', '.join(other)} {'does' if len(other) == 1 else 'do'} not apply to --engine llama.cpp")
    if format not in (MemoryFormat.table, MemoryFormat.md, MemoryFormat.json):
        raise InspectError(f"--format {format.value}: --engine llama.cpp writes table, md or json")
    return given


def _emit_llamacpp(ctx, opts: dict, format: MemoryFormat, output) -> None:
    """--engine llama.cpp: the options (`opts`: the command's arguments by name) as LlamaCppSettings; the CPU
    report, or with a GPU named / an offload flag / --ram-gib, the offload report (cli.llamacpp_offload)."""
    from inspector.memory.llamacpp import LlamaCppSettings
    from inspector.memory.llamacpp_model import LlamaCppRequest, llamacpp_memory
    from inspector.reports.llamacpp import llamacpp_report
    from inspector.reports.render import emit

    given = _llamacpp_options(ctx, format)
    settings = LlamaCppSettings(
        n_ctx=opts["ctx_size"], n_batch=opts["batch_size"], n_ubatch=opts["ubatch_size"], n_seq_max=opts["parallel"],
        kv_unified=opts["kv_unified"], flash_attn=opts["flash_attn"].value, type_k=opts["cache_type_k"],
        type_v=opts["cache_type_v"], swa_full=opts["swa_full"], use_mmap=not opts["no_mmap"])
    request = LlamaCppRequest(model=opts["model"], quant=opts["quant"], settings=settings)
    if set(given) & set(PLACEMENT + GPU_NAMED + ("ram_gib", "ram_bandwidth_gbs", "mbu")):
        from inspector.cli.llamacpp_offload import emit_offload

        return emit_offload(request, opts, given, format.value, output)
    emit(llamacpp_report(llamacpp_memory(request)), format.value, output)


def largest_image(vision, text_hidden: int):
    """The image layer's largest image for a vision-language model (imported only when one is served)."""
    from inspector.image.rules import largest_image as largest

    return largest(vision, text_hidden)


def _targets(text: str | None) -> tuple[str, ...] | None:
    """--lora-targets q_proj,v_proj -> the names; None: peft's default for the family."""
    return tuple(x.strip() for x in text.split(",") if x.strip()) if text else None


# llama.cpp's options: refused on the vLLM and training paths; offload ones refused on llama.cpp's (not modelled)
LLAMACPP_ONLY = ("quant", "ctx_size", "batch_size", "ubatch_size", "parallel", "kv_unified", "flash_attn",
                 "cache_type_k", "cache_type_v", "swa_full", "no_mmap", "n_gpu_layers", "override_tensor",
                 "n_cpu_moe", "tensor_split", "ram_gib", "ram_bandwidth_gbs", "mbu")
# The modes each option applies to; an option given on the command line for another mode is refused.
TRAINING = ("full", "lora", "qlora")
SERVING_ONLY = ("dtype", "group_size", "weights", "kv_dtype", "block_size", "gpu_memory_utilization",
                "max_model_len", "max_num_batched_tokens", "max_num_seqs", "tp", "pp", "ep", "engine", "vllm_version",
                "enforce_eager", "kv_cache_memory", "images_per_prompt")
OPTION_MODES = {
    **{name: ("serve",) for name in SERVING_ONLY},
    **{name: TRAINING for name in ("optimizer", "seq_len", "micro_batch", "recompute", "attention", "precision")},
    **{name: ("full",) for name in ("zero", "offload", "zero_init")},
    **{name: ("lora", "qlora") for name in ("lora_rank", "lora_alpha", "lora_targets", "dora", "lora_bias")},
    "double_quant": ("qlora",),
    **{name: ("llama.cpp",) for name in LLAMACPP_ONLY},
}
MODE_NAMES = {"serve": "serving", "full": "--train full", "lora": "--train lora", "qlora": "--train qlora",
              "llama.cpp": "--engine llama.cpp"}


def check_modes(ctx, mode: str, zero: str, dtype: str) -> dict:
    """Refuse the options given for a mode other than `mode` in one line; warn where a sub-option
    of the chosen mode goes unused (--zero-init without --zero 3, --group-size without int4).
    Returns the options given on the command line."""
    from inspector.errors import InspectError, warn

    given = given_options(ctx)
    wrong = [f"{opt} ({' or '.join(MODE_NAMES[m] for m in OPTION_MODES[name])})" for name, opt in given.items()
             if name in OPTION_MODES and mode not in OPTION_MODES[name]]
    if wrong:
        verb, them = ("does", "it") if len(wrong) == 1 else ("do", "them")
        raise InspectError(f"{', '.join(wrong)} {verb} not apply to {MODE_NAMES[mode]}; drop {them} or choose "
                           "that mode")
    if "zero_init" in given and zero != "3":
        warn(f"--zero-init applies to --zero 3 only; ignored with --zero {zero}")
    if "group_size" in given and dtype != "int4":
        warn(f"--group-size applies to --dtype int4 only; ignored with --dtype {dtype}")
    return given


def _emit(request, format: MemoryFormat, output, serve_lora=None) -> bool:
    """Print the report; whether it fits (the DeepSpeed printout: True). `serve_lora` (cli.adapters.PreparedLora)
    adds vLLM's LoRA stacks to the serving estimate and their table to its report."""
    from inspector.memory.estimate import estimate
    from inspector.reports.render import emit

    if serve_lora is not None:
        request = request._replace(serve=request.serve._replace(lora=serve_lora))

    est = estimate(request)
    if format == MemoryFormat.deepspeed:  # --train full (checked by `memory`)
        from inspector.files import write_atomic
        from inspector.memory.zero import deepspeed_printout

        tr, o = est.training, est.training.options
        text = deepspeed_printout(tr.params, tr.largest_layer, o.gpus_per_node, o.nodes, o.zero)
        if output is not None:
            write_atomic(output, text)
        else:
            typer.echo(text, nl=False)
        return True
    verdict = est.verdict
    if est.serving is not None:
        from inspector.reports.memory import serving_report

        report = serving_report(est.acc, est.serving, verdict)
        emit(serve_lora.add_to(report, est) if serve_lora else report, format.value, output)
    else:
        from inspector.reports.memory import training_report

        emit(training_report(est.acc, est.training, verdict), format.value, output)
    return verdict.fits
