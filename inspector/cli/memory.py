"""`inspect memory`: will a model fit for serving (vLLM-style) or fine-tuning (full/ZeRO, LoRA, QLoRA)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli.options import OutOpt, command, given_options, output_format

HARDWARE = "Hardware (serving and training)"
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
GpuOpt = _opt(str, "H100-80GB, H200-141GB, A100-80GB, A100-40GB, L4-24GB, RTX4090-24GB, or a size in GiB.", "--gpu",
              panel=HARDWARE)
GpusOpt = _opt(int, "GPUs per node (serving: the tensor parallel size).", "--gpus", panel=HARDWARE)
NodesOpt = _opt(int, "Nodes.", "--nodes", panel=HARDWARE)
DtypeOpt = _opt(str, "Weights.", "--dtype", metavar="[bf16|fp16|fp8|int8|int4]")
GroupOpt = _opt(int, "int4 scale group size (--dtype int4).", "--group-size", min=1)
WeightsOpt = _opt(Optional[Path], "A real checkpoint or GGUF: use its stored bytes.", "--weights")
KvOpt = _opt(str, "KV cache.", "--kv-dtype", metavar="[bf16|fp16|fp8|int8]")
BlockOpt = _opt(int, "Tokens per KV block (vLLM).", "--block-size", min=1)
UtilOpt = _opt(float, "Share of GPU memory vLLM may use.", "--gpu-memory-utilization", min=0.01, max=1.0)
LenOpt = _opt(Optional[int], "Context per request (default: max_position_embeddings).", "--max-model-len", min=1)
BatchedOpt = _opt(int, "Tokens per scheduler step (the profiled prefill).", "--max-num-batched-tokens", min=1)
SeqsOpt = _opt(int, "Sequences per step (rows of sampled logits).", "--max-num-seqs", min=1)
OverheadOpt = _opt(float, "Non-torch allowance per GPU (CUDA context...).", "--overhead-gib", min=0.0, panel=HARDWARE)
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
MemFormatOpt = Annotated[Optional[MemoryFormat], typer.Option(
    "--format", "-f", help="table, md, json, csv, or deepspeed (DeepSpeed's own printout; --train full --zero 2|3). "
                           "Default: from -o's extension (.md, .json, .csv), else table.", show_default=False)]


@command
def memory(
    ctx: typer.Context, model: ModelArg, gpu: GpuOpt = "H100-80GB", gpus: GpusOpt = 1, nodes: NodesOpt = 1,
    overhead_gib: OverheadOpt = 0.5, train: TrainOpt = None,
    dtype: DtypeOpt = "bf16", group_size: GroupOpt = 128, weights: WeightsOpt = None, kv_dtype: KvOpt = "bf16",
    block_size: BlockOpt = 16, gpu_memory_utilization: UtilOpt = 0.9, max_model_len: LenOpt = None,
    max_num_batched_tokens: BatchedOpt = 8192, max_num_seqs: SeqsOpt = 256,
    optimizer: OptimOpt = Optimizer.adamw, zero: ZeroOpt = Zero.none, offload: OffloadOpt = Offload.none,
    zero_init: InitOpt = True, seq_len: SeqOpt = 2048, micro_batch: MicroOpt = 1,
    recompute: RecomputeOpt = Recompute.none, attention: AttnOpt = Attention.flash,
    lora_rank: RankOpt = 16, lora_alpha: AlphaOpt = 32, lora_targets: TargetsOpt = None, dora: DoraOpt = False,
    lora_bias: BiasOpt = False, double_quant: DqOpt = True, format: MemFormatOpt = None,
    output: OutOpt = None,
) -> None:
    """Will it fit? GPU memory for serving (vLLM-style paged KV cache) or fine-tuning.

    Serving prints the weights, the activation peak, the KV cache in vLLM's blocks and the lines
    vLLM logs at start-up. Training prints model states (DeepSpeed's ZeRO estimators to the byte),
    activations (Korthikanti et al.) and, for LoRA/QLoRA, peft's trainable-parameter line. Every
    scenario ends with a verdict for --gpu and what would make it fit. No torch is imported.
    An option of another mode (--zero without --train full, --dtype with --train) is refused.

    Examples:
      inspect memory Qwen/Qwen2.5-7B-Instruct --gpu L4-24GB
      inspect memory qwen2.5-7b-instruct --dtype int4 --kv-dtype fp8 --max-model-len 16384
      inspect memory llama-3.1-8b --train full --zero 3 --gpus 8 --format deepspeed
      inspect memory llama-3.2-1b --train lora --lora-rank 8 --lora-targets q_proj
      inspect memory llama-3.1-8b --train qlora --lora-targets all-linear --gpu RTX4090-24GB
    """
    from inspector.errors import InspectError
    from inspector.memory.estimate import Hardware, MemoryRequest, ServeRequest
    from inspector.memory.lora import LoraOptions
    from inspector.memory.training import TrainOptions

    format = output_format(format, output, MemoryFormat)
    check_modes(ctx, train.value if train is not None else "serve", zero.value, dtype)
    if format == MemoryFormat.deepspeed and train != Train.full:
        raise InspectError("--format deepspeed is DeepSpeed's ZeRO printout: pass --train full --zero 2 or 3")
    training = None if train is None else TrainOptions(
        mode=train.value, optimizer=optimizer.value, zero=int(zero.value), offload=offload.value, zero_init=zero_init,
        seq_len=seq_len, micro_batch=micro_batch, recompute=recompute.value, attention=attention.value,
        lora=LoraOptions(rank=lora_rank, alpha=lora_alpha, targets=_targets(lora_targets), dora=dora,
                         bias=lora_bias),
        double_quant=double_quant)
    request = MemoryRequest(
        model=model, hardware=Hardware(gpu=gpu, gpus=gpus, nodes=nodes, overhead_gib=overhead_gib),
        serve=ServeRequest(dtype=dtype, group_size=group_size, weights=weights, kv_dtype=kv_dtype,
                           block_size=block_size, gpu_memory_utilization=gpu_memory_utilization,
                           max_model_len=max_model_len, max_num_batched_tokens=max_num_batched_tokens,
                           max_num_seqs=max_num_seqs),
        train=training)
    _emit(request, format, output)


def _targets(text: str | None) -> tuple[str, ...] | None:
    """--lora-targets q_proj,v_proj -> the names; None: peft's default for the family."""
    return tuple(x.strip() for x in text.split(",") if x.strip()) if text else None


# The modes each option applies to; an option given on the command line for another mode is refused.
TRAINING = ("full", "lora", "qlora")
SERVING_ONLY = ("dtype", "group_size", "weights", "kv_dtype", "block_size", "gpu_memory_utilization",
                "max_model_len", "max_num_batched_tokens", "max_num_seqs")
OPTION_MODES = {
    **{name: ("serve",) for name in SERVING_ONLY},
    **{name: TRAINING for name in ("optimizer", "seq_len", "micro_batch", "recompute", "attention")},
    **{name: ("full",) for name in ("zero", "offload", "zero_init")},
    **{name: ("lora", "qlora") for name in ("lora_rank", "lora_alpha", "lora_targets", "dora", "lora_bias")},
    "double_quant": ("qlora",),
}
MODE_NAMES = {"serve": "serving", "full": "--train full", "lora": "--train lora", "qlora": "--train qlora"}


def check_modes(ctx, mode: str, zero: str, dtype: str) -> None:
    """Refuse the options given for a mode other than `mode` in one line; warn where a sub-option
    of the chosen mode goes unused (--zero-init without --zero 3, --group-size without int4)."""
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


def _emit(request, format: MemoryFormat, output) -> None:
    from inspector.memory.estimate import estimate
    from inspector.reports.render import emit

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
        return
    if est.serving is not None:
        from inspector.reports.memory import serving_report

        emit(serving_report(est.acc, est.serving, est.verdict), format.value, output)
    else:
        from inspector.reports.memory import training_report

        emit(training_report(est.acc, est.training, est.verdict), format.value, output)
