"""The `--adapter DIR` option of verify, params and memory: the adapter read, its base resolved and counted.

The base is `-m BASE` (a preset, a path or a Hub id), else the `base_model_name_or_path` of the
adapter's adapter_config.json; a GGUF LoRA names no base, so it needs `-m`. Every failure is one
line (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from inspector.errors import InspectError

if TYPE_CHECKING:
    from inspector.memory.adapter_verify import AdapterResult

AdapterOpt = Annotated[Optional[str], typer.Option(
    "--adapter", help="A LoRA adapter: a peft directory (adapter_config.json + adapter_model.safetensors), a "
                      "GGUF LoRA file, or a Hub id (its safetensors header read by range); checked against its base (verify), its rows beside the base's (params), served or "
                      "trained with the base (memory).", show_default=False)]
BaseOpt = Annotated[Optional[str], typer.Option(
    "--base", "-m", help="The adapter's base model (a preset, a path or a Hub id); default: the "
                         "base_model_name_or_path of adapter_config.json.", show_default=False)]


@dataclass(frozen=True)
class AdapterRequest:
    """What the command line asks of an adapter: where it is, and the base it was given (or None)."""

    adapter: str
    base: str | None = None


def check(request: AdapterRequest) -> AdapterResult:
    """The adapter read (headers only) and checked against its base's inventory."""
    from inspector.checkpoint.adapter import read_adapter
    from inspector.memory.adapter_verify import check_adapter
    from inspector.source import account_model

    files = read_adapter(request.adapter)
    base = request.base or files.base
    if base is None:
        what = "a GGUF LoRA names no base model" if files.format == "gguf" else \
            "adapter_config.json has no base_model_name_or_path"
        raise InspectError(f"--adapter {request.adapter}: {what}; give the base with -m BASE")
    try:
        acc = account_model(base)
    except InspectError as e:
        source = "-m" if request.base else "base_model_name_or_path"
        raise InspectError(f"the adapter's base ({source} {base!r}) cannot be resolved: {e}") from None
    return check_adapter(files, acc, base)


__all__ = ["AdapterOpt", "AdapterRequest", "BaseOpt", "check"]


MaxLorasOpt = Annotated[Optional[int], typer.Option(
    "--max-loras", help="vLLM's --max-loras with --adapter: adapters in one batch [default: 1, vLLM's].",
    show_default=False)]
MaxRankOpt = Annotated[Optional[int], typer.Option(
    "--max-lora-rank", help="vLLM's --max-lora-rank with --adapter [default: 16, vLLM's].", show_default=False)]
MaxCpuOpt = Annotated[Optional[int], typer.Option(
    "--max-cpu-loras", help="vLLM's --max-cpu-loras with --adapter [default: --max-loras].", show_default=False)]


@dataclass(frozen=True)
class ServeLora:
    """`memory MODEL --adapter DIR` serving: the adapter and vLLM's LoRA flags as given (None: vLLM's default)."""

    request: AdapterRequest
    max_loras: int | None = None
    max_lora_rank: int | None = None
    max_cpu_loras: int | None = None

    def options(self, tp: int = 1):
        from inspector.memory.vllm_lora import VllmLoraOptions

        given = (("max_loras", self.max_loras), ("max_lora_rank", self.max_lora_rank),
                 ("max_cpu_loras", self.max_cpu_loras))
        return VllmLoraOptions(**{k: v for k, v in given if v is not None}, tp=tp)

    def prepare(self) -> PreparedLora:
        """The adapter read and checked against its base once, and vLLM's flags checked against its rank."""
        from inspector.memory.vllm_lora import vllm_lora

        result = check(self.request)
        rank = max((p.rank for p in result.planned if p.rank), default=0)
        vllm_lora([], rank, 0, self.options())  # refuses a rank above --max-lora-rank, bad flags
        return PreparedLora(self, result, rank)


@dataclass(frozen=True)
class PreparedLora:
    """A checked adapter to serve: called as ServeRequest.lora, it adds vLLM's LoRA stacks to each rank's
    load extras (so the KV cache and the verdict count them); `add_to` adds their table to the report."""

    flags: ServeLora
    result: AdapterResult
    rank: int

    def __call__(self, acc, base_extras):
        from inspector.memory.modules import runtime_modules
        from inspector.memory.vllm_lora import load_extra, vllm_lora

        modules = runtime_modules(acc)

        def extras(layout, stage):
            base = tuple(base_extras(layout, stage)) if base_extras is not None else ()
            lora = vllm_lora(modules, self.rank, self.result.trainable, self.flags.options(layout.tp), stage)
            return base + (load_extra(lora),)

        return extras

    def add_to(self, report, est):
        """The serving report with vLLM's LoRA stacks per module and the CPU adapter cache beside."""
        from inspector.memory.modules import runtime_modules
        from inspector.memory.vllm_lora import vllm_lora
        from inspector.reports.adapter import with_vllm_lora

        tp = est.serving.ranks.layout.tp
        lora = vllm_lora(runtime_modules(est.acc), self.rank, self.result.trainable, self.flags.options(tp))
        return with_vllm_lora(report, self.result, lora)


def train_lora(request: AdapterRequest):
    """`memory MODEL --adapter DIR --train lora|qlora`: the adapter's r, alpha, targets, DoRA and lora_bias
    as LoraOptions (what it leaves out, rank_pattern and modules_to_save, is said in a warning)."""
    from inspector.checkpoint.adapter import read_adapter
    from inspector.errors import warn
    from inspector.memory.adapter import parse_config
    from inspector.memory.lora import ALL_LINEAR, LoraOptions

    files = read_adapter(request.adapter)
    c = parse_config(files.config)
    if isinstance(c.targets, str) and c.targets != ALL_LINEAR:
        raise InspectError(f"--adapter {request.adapter}: target_modules is a regex ({c.targets!r}); --train counts "
                           "a list of names (see `inspect verify --adapter` for what it adapts)")
    left = [k for k, v in (("rank_pattern", c.rank_pattern), ("alpha_pattern", c.alpha_pattern),
                           ("modules_to_save", c.modules_to_save), ("target_parameters", c.target_parameters)) if v]
    if left:
        warn(f"--adapter {request.adapter}: the training estimate uses r={c.rank} everywhere and leaves out "
             f"{', '.join(left)}; `inspect verify --adapter` counts them")
    targets = (ALL_LINEAR,) if c.targets == ALL_LINEAR else tuple(c.targets or ())
    return LoraOptions(rank=c.rank, alpha=int(c.alpha), targets=targets or None, dora=c.dora, bias=c.lora_bias)
