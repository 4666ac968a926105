"""Options shared by `trace`, `run` and `chat`: the model and where it runs, the tokenizer, sampling, threads.

Sampling options come in Appendix C's order: temperature, top-k, top-p, min-p.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Preset, checkpoint directory, .gguf file or Hub id.")]
WeightsOpt = Annotated[Optional[str], typer.Option("--weights", "-w", help="Safetensors file/directory or .gguf "
                                                   "holding the weights (default: beside MODEL's config).")]
DeviceOpt = Annotated[str, typer.Option("--device", metavar="[auto|cpu|cuda|meta]",
                                        help="auto: cuda, else cpu; meta (shapes only) when there are no weights.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", metavar="[auto|float32|bfloat16|float16]",
                                       help="auto: bfloat16 on cuda, float32 on cpu.")]
TokOpt = Annotated[Optional[str], typer.Option("--tokenizer", help="Directory / tokenizer.json / .gguf / Hub id to "
                                                "tokenize with, or a packaged kind: qwen2-bpe, llama3, smollm2, gemma3.")]
ChatOpt = Annotated[bool, typer.Option("--chat", help="Wrap the prompt in the model's chat template.")]
TempOpt = Annotated[float, typer.Option("--temperature", "-t", help="0 = greedy (argmax).", min=0.0)]
TopKOpt = Annotated[Optional[int], typer.Option("--top-k", help="Keep the k most likely tokens.", min=1)]
TopPOpt = Annotated[Optional[float], typer.Option("--top-p", help="Keep the smallest set reaching probability p.", min=0.0, max=1.0)]
MinPOpt = Annotated[Optional[float], typer.Option("--min-p", help="Keep tokens at least min_p times as likely as "
                                                  "the most likely one (after top-k and top-p).", min=0.0, max=1.0)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the sampling generator.", min=0, max=2**63 - 1)]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch (default: OMP_NUM_THREADS, "
                                                   "else half the cores, which holds up when other processes are busy).",
                                                   min=1)]
