"""`inspect explain LOG`: a vLLM start-up log's memory figures, reproduced term by term with our formula."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from inspector.cli.options import OutOpt, command, output_format


class ExplainFormat(str, Enum):
    table = "table"
    md = "md"
    json = "json"


LogArg = Annotated[Path, typer.Argument(help="A vLLM start-up log (the output of `vllm serve` or of vllm.LLM).",
                                        show_default=False, metavar="LOG")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="The model the log ran (a preset, a directory with config.json, or a Hub id); default: "
                          "the one the log names, when it is a preset or a directory here.", show_default=False)]
GpuOpt = Annotated[Optional[str], typer.Option(
    "--gpu", help="The GPU, when the log does not print torch's total: a preset (H100-80GB, RTX3090-24GB, ...) or "
                  "a size in GiB.", show_default=False)]
GpuGibOpt = Annotated[Optional[float], typer.Option(
    "--gpu-memory-gib", help="torch's total of the GPU in GiB (torch.cuda.mem_get_info()[1]), when the log does "
                             "not print it.", show_default=False)]
TpOpt = Annotated[Optional[int], typer.Option(
    "--tp", help="Tensor parallel size, when the log does not state it.", min=1, show_default=False)]
LenOpt = Annotated[Optional[int], typer.Option(
    "--max-model-len", help="Context per request, when the log does not state it.", min=1, show_default=False)]
SeqsOpt = Annotated[Optional[int], typer.Option(
    "--max-num-seqs", help="vLLM's max_num_seqs, when the log does not state it (the sampler warm-up's rows, a "
                           "vision model's dummy images).", min=1, show_default=False)]
BatchedOpt = Annotated[Optional[int], typer.Option(
    "--max-num-batched-tokens", help="vLLM's max_num_batched_tokens, when the log does not state it.", min=1,
    show_default=False)]
ImagesOpt = Annotated[Optional[int], typer.Option(
    "--images-per-prompt", help="A vision-language model's images per prompt (vLLM's --limit-mm-per-prompt "
                                "image=N; default: vLLM's).", min=1, show_default=False)]
FormatOpt = Annotated[Optional[ExplainFormat], typer.Option(
    "--format", "-f", help="table, md or json (default: from -o's extension, else table).", show_default=False)]


@command
def explain(log: LogArg, model: ModelOpt = None, gpu: GpuOpt = None, gpu_memory_gib: GpuGibOpt = None,
            tp: TpOpt = None, max_model_len: LenOpt = None, max_num_seqs: SeqsOpt = None,
            max_num_batched_tokens: BatchedOpt = None, images_per_prompt: ImagesOpt = None,
            format: FormatOpt = None, output: OutOpt = None) -> None:
    """Reproduce a vLLM start-up log's memory figures term by term, and say where we differ and why.

    Reads the log's version, engine, settings, GPU total and memory lines (usable memory, weights,
    activation peak, non-torch, available KV cache, blocks, tokens, max concurrency, per rank under
    TP), computes each with `inspect memory`'s vLLM arithmetic, and shows logged, ours, the difference
    (in GiB and in % of the GPU's total), our status (exact, calibrated with its source, assumed)
    and a one-line reason where they differ; then checks the logged figures against one another
    (usable = total x utilization, KV = usable - the rest, blocks from the KV bytes). A term that
    needs the model's config or the GPU's total is listed as such (exit 0). Exit 2: the file is
    missing, binary or holds no vLLM line.

    Examples:
      inspect explain ./vllm-serve.log
      inspect explain ./vllm-serve.log --model meta-llama/Llama-3.1-8B --gpu H100-80GB --format md
      inspect explain ./vllm-serve.log --model meta-llama/Llama-3.2-11B-Vision --max-num-seqs 128
    """
    from inspector.memory.explain import ExplainRequest, explain_log
    from inspector.reports.explain import explain_report
    from inspector.reports.render import emit

    fmt = output_format(format, output, ExplainFormat)
    from inspector.cli.memory import largest_image

    found = explain_log(ExplainRequest(
        log=str(log), model=model, gpu=gpu, gpu_memory_gib=gpu_memory_gib, tp=tp, max_model_len=max_model_len,
        max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens,
        images_per_prompt=images_per_prompt, largest_image=largest_image))
    emit(explain_report(found), fmt.value, output)
