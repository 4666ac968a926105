"""`inspect quant MODEL TYPE`: the ggml type and bytes llama-quantize gives each tensor, the file size and bits per weight."""

from __future__ import annotations

from typing import Annotated

import typer

from inspector.cli.options import FormatOpt, OutOpt, command, output_format

QuantModelArg = Annotated[str, typer.Argument(help="A GGUF file, or a preset, local directory / config.json (a "
                                                   "safetensors checkpoint's config) or Hub id.",
                                              show_default=False, metavar="MODEL")]
TypeArg = Annotated[str, typer.Argument(help="A llama-quantize type: Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, IQ4_XS, ...",
                                        show_default=False, metavar="TYPE")]


@command
def quant(model: QuantModelArg, type: TypeArg, format: FormatOpt = None, output: OutOpt = None) -> None:
    """Quantization on paper: what `llama-quantize MODEL out.gguf TYPE` writes, tensor by tensor.

    Per tensor the ggml type llama-quantize chooses (the per-layer exceptions for attn_v, ffn_down, the
    output and embedding tensors, the fall-backs when a row is not a multiple of the block size) and its
    bytes; the counts by type, the file's bytes and its bits per weight. The rules are llama.cpp's
    src/llama-quant.cpp (ggml-org/llama.cpp@0c1e57098); no importance matrix, default options. From a
    config the GGUF header (metadata, tokenizer) is not known: the file's bytes are the tensor data.

    Examples:
      inspect quant $SMOL Q4_K_M
      inspect quant smollm2-135m Q8_0 --format json
    """
    from inspector.memory.llamacpp_model import quantize_model
    from inspector.reports.llamacpp import quant_report
    from inspector.reports.render import emit

    format = output_format(format, output)
    if format.value == "csv":
        from inspector.errors import InspectError

        raise InspectError("--format csv: `inspect quant` writes table, md or json")
    emit(quant_report(model, quantize_model(model, type)), format.value, output)
