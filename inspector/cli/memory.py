"""`inspect memory`: will a model fit for serving (vLLM-style) or fine-tuning (full/ZeRO, LoRA, QLoRA)?"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli.options import OutOpt

SERVE = "Serving (the default)"
TRAIN = "Training (--train)"
LORA = "LoRA / QLoRA"


class MemoryFormat(str, Enum):
    table = "table"
    md = "md"
    json = "json"
    csv = "csv"
    deepspeed = "deepspeed"


def _opt(*names: str, help: str, panel: str = SERVE, **kw):
    return typer.Option(*names, help=help, rich_help_panel=panel, **kw)


def memory(
    model: Annotated[str, typer.Argument(help="Preset, local directory / config.json, or Hub id.", show_default=False)],
    train: Annotated[Optional[str], _opt("--train", help="full | lora | qlora (default: serve).", panel=TRAIN)] = None,
    gpu: Annotated[str, _opt("--gpu", help="H100-80GB, A100-80GB, A100-40GB, L4-24GB, RTX4090-24GB, or a size in GiB.")]
    = "H100-80GB",
    gpus: Annotated[int, _opt("--gpus", help="GPUs per node (serving: tensor parallel size).")] = 1,
    nodes: Annotated[int, _opt("--nodes", help="Nodes (training).", panel=TRAIN)] = 1,
    dtype: Annotated[str, _opt("--dtype", help="Weights: bf16, fp16, fp8, int8, int4.")] = "bf16",
    group_size: Annotated[int, _opt("--group-size", help="int4 scale group size.", min=1)] = 128,
    weights: Annotated[Optional[Path], _opt("--weights", help="A real checkpoint or GGUF: use its stored bytes.")]
    = None,
    kv_dtype: Annotated[str, _opt("--kv-dtype", help="KV cache: bf16, fp16, fp8, int8.")] = "bf16",
    block_size: Annotated[int, _opt("--block-size", help="Tokens per KV block (vLLM).", min=1)] = 16,
    utilization: Annotated[float, _opt("--gpu-memory-utilization", help="Share of GPU memory vLLM may use.",
                                       min=0.01, max=1.0)] = 0.9,
    max_model_len: Annotated[Optional[int], _opt("--max-model-len", help="Context per request (default: the "
                                                 "config's max_position_embeddings).", min=1)] = None,
    batched: Annotated[int, _opt("--max-num-batched-tokens", help="Tokens per scheduler step (the profiled "
                                 "prefill).", min=1)] = 8192,
    seqs: Annotated[int, _opt("--max-num-seqs", help="Sequences per step (rows of sampled logits).", min=1)] = 256,
    overhead: Annotated[float, _opt("--overhead-gib", help="Non-torch allowance per GPU (CUDA context...).",
                                    min=0.0)] = 0.5,
    optimizer: Annotated[str, _opt("--optimizer", help="adamw (mixed precision), adamw-fp32, adam8bit, sgd.",
                                   panel=TRAIN)] = "adamw",
    zero: Annotated[int, _opt("--zero", help="DeepSpeed ZeRO stage 0-3.", panel=TRAIN)] = 0,
    offload: Annotated[str, _opt("--offload", help="none | optimizer | optimizer+params.", panel=TRAIN)] = "none",
    zero_init: Annotated[bool, _opt("--zero-init/--no-zero-init", help="ZeRO-3 zero.Init.", panel=TRAIN)] = True,
    seq_len: Annotated[int, _opt("--seq-len", help="Training sequence length s.", panel=TRAIN, min=1)] = 2048,
    micro_batch: Annotated[int, _opt("--micro-batch", help="Micro-batch b per GPU.", panel=TRAIN, min=1)] = 1,
    recompute: Annotated[str, _opt("--recompute", help="none | selective | full.", panel=TRAIN)] = "none",
    attention: Annotated[str, _opt("--attention", help="flash (no s² scores) | eager.", panel=TRAIN)] = "flash",
    rank: Annotated[int, _opt("--lora-rank", help="LoRA rank r.", panel=LORA)] = 16,
    alpha: Annotated[int, _opt("--lora-alpha", help="LoRA alpha.", panel=LORA)] = 32,
    targets: Annotated[Optional[str], _opt("--lora-targets", help="Comma-separated module names, or all-linear "
                                           "(default: peft's default for the family).", panel=LORA)] = None,
    dora: Annotated[bool, _opt("--dora", help="DoRA (adds a magnitude vector per matrix).", panel=LORA)] = False,
    lora_bias: Annotated[bool, _opt("--lora-bias", help="peft's lora_bias (a bias on B).", panel=LORA)] = False,
    double_quant: Annotated[bool, _opt("--double-quant/--no-double-quant", help="QLoRA double quantization.",
                                       panel=LORA)] = True,
    format: Annotated[MemoryFormat, typer.Option("--format", "-f", help="table, md, json, csv, or deepspeed "
                                                 "(DeepSpeed's own printout; --train full --zero 2|3).")]
    = MemoryFormat.table,
    output: OutOpt = None,
) -> None:
    """Will it fit? GPU memory for serving (vLLM-style paged KV cache) or fine-tuning.

    Serving prints the weights, the activation peak, the KV cache in vLLM's blocks and the lines
    vLLM logs at start-up. Training prints model states (DeepSpeed's ZeRO estimators to the byte),
    activations (Korthikanti et al.) and, for LoRA/QLoRA, peft's trainable-parameter line. Every
    scenario ends with a verdict for --gpu and what would make it fit. No torch is imported.

    Examples:
      inspect memory Qwen/Qwen2.5-7B-Instruct --gpu L4-24GB
      inspect memory qwen2.5-7b-instruct --dtype int4 --kv-dtype fp8 --max-model-len 16384
      inspect memory llama-3.1-8b --train full --zero 3 --gpus 8 --format deepspeed
      inspect memory llama-3.2-1b --train lora --lora-rank 8 --lora-targets q_proj
      inspect memory llama-3.1-8b --train qlora --lora-targets all-linear --gpu RTX4090-24GB
    """
    from inspector.errors import InspectError
    from inspector.inventory.accounting import account
    from inspector.memory.gpus import GIB
    from inspector.memory.gpus import gpu as find_gpu
    from inspector.spec.resolve import load_spec

    if gpus < 1 or nodes < 1:
        raise InspectError(f"--gpus and --nodes must be at least 1, got --gpus {gpus} --nodes {nodes}")
    acc = account(load_spec(model))
    device = find_gpu(gpu)
    if train is None:
        from inspector.memory.quant import KV_DTYPES, SERVE_DTYPES, check_dtype
        from inspector.memory.serving import ServeOptions

        stored = _stored_bytes(weights) if weights is not None else None
        o = ServeOptions(check_dtype(dtype, SERVE_DTYPES, "--dtype"), check_dtype(kv_dtype, KV_DTYPES, "--kv-dtype"),
                         group_size, block_size, utilization, max_model_len, batched, seqs, gpus * nodes,
                         int(overhead * GIB), stored, str(weights) if weights else "")
        _serve(acc, device, o, format, output)
        return
    from inspector.memory.lora import LoraOptions
    from inspector.memory.training import TrainOptions

    lora = LoraOptions(rank, alpha, tuple(x.strip() for x in targets.split(",") if x.strip()) if targets else None,
                       dora, lora_bias)
    o = TrainOptions(train, optimizer, zero, offload, zero_init, gpus, nodes, seq_len, micro_batch, recompute,
                     attention, lora, double_quant, int(overhead * GIB))
    _train(acc, device, o, format, output)


def _stored_bytes(path: Path) -> int:
    from inspector.checkpoint.open import open_checkpoint

    return open_checkpoint(path).total_bytes


def _serve(acc, device, o, format: MemoryFormat, output) -> None:
    from inspector.errors import InspectError
    from inspector.memory.fit import serving_verdict
    from inspector.memory.serving import plan
    from inspector.reports.memory import serving_report
    from inspector.reports.render import emit

    if format == MemoryFormat.deepspeed:
        raise InspectError("--format deepspeed is DeepSpeed's ZeRO printout: pass --train full --zero 2 or 3")
    s = plan(acc, device, o)
    emit(serving_report(acc, s, serving_verdict(acc, s)), format.value, output)


def _train(acc, device, o, format: MemoryFormat, output) -> None:
    from inspector.memory.fit import training_verdict
    from inspector.memory.training import plan
    from inspector.reports.memory import training_report
    from inspector.reports.render import emit

    tr = plan(acc, device, o)
    if format == MemoryFormat.deepspeed:
        _deepspeed(tr, output)
        return
    emit(training_report(acc, tr, training_verdict(acc, tr)), format.value, output)


def _deepspeed(tr, output) -> None:
    from inspector.errors import InspectError
    from inspector.files import write_atomic
    from inspector.memory.zero import deepspeed_printout

    o = tr.options
    if o.mode != "full":
        raise InspectError("--format deepspeed is DeepSpeed's ZeRO printout: pass --train full --zero 2 or 3")
    text = deepspeed_printout(tr.params, tr.largest_layer, o.gpus_per_node, o.nodes, o.zero)
    if output is not None:
        write_atomic(output, text)
    else:
        typer.echo(text, nl=False)
