"""The GPU and CPU memory vLLM reserves to serve LoRA adapters (`--enable-lora`), from its source.

vLLM wraps every linear layer of the language model, whichever modules an adapter targets
(vllm/lora/utils.py `get_supported_lora_modules`: "In vLLM, all linear layers support LoRA";
vllm/lora/model_manager.py `_create_lora_modules` replaces each module `_match_target_modules`
accepts), and each wrapper allocates zeroed stacks when the model is loaded, before the KV cache is
sized (vllm/lora/layers/base_linear.py `create_lora_weights`): per slice of the layer, A
(max_loras, 1, max_lora_rank, in) and B (max_loras, 1, out, max_lora_rank), in lora_dtype ("auto":
the model's dtype). A fused qkv_proj or gate_up_proj has one slice per original module, so the sum
over the original modules (q, k, v, ...) is the same: max_loras × max_lora_rank × (in + out) each.
Defaults (vllm/config/lora.py LoRAConfig): max_lora_rank 16 (one of 1, 8, 16, 32, 64, 128, 256,
320, 512), max_loras 1, max_cpu_loras = max_loras; an adapter of a rank above max_lora_rank is
refused when loaded. The CPU cache holds up to max_cpu_loras adapters as loaded (their tensors in
lora_dtype). Not counted here: the embedding and LM-head wrappers of models that declare
`embedding_modules`, the fused-MoE experts' LoRA stacks, and the profile run's dummy adapters.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.errors import InspectError
from inspector.inventory.entry import LM
from inspector.memory.modules import LINEAR, ROUTER_KIND, Module

MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vllm/config/lora.py MaxLoRARanks
DEFAULT_MAX_LORA_RANK = 16  # vllm/config/lora.py LoRAConfig.max_lora_rank
DEFAULT_MAX_LORAS = 1  # vllm/config/lora.py LoRAConfig.max_loras
# The linear layers vLLM's model files build as RowParallelLinear (the projections back to the hidden size:
# vllm/model_executor/models/llama.py o_proj and down_proj; phi/gpt-neox dense, opt out_proj/fc2, gpt2 c_proj,
# ...). Under tensor parallelism their LoRA A holds in/tp columns (vllm/lora/layers/row_parallel_linear.py:
# input_size = input_size_per_partition) and B the whole out; every other layer is column-parallel: A the whole
# in, B out/tp (vllm/lora/layers/base_linear.py: output_size per partition).
ROW_PARALLEL = frozenset({"o_proj", "down_proj", "dense", "out_proj", "fc2", "c_proj", "dense_4h_to_h", "w2", "wo"})


@dataclass(frozen=True)
class VllmLoraOptions:
    """vLLM's LoRA flags; `dtype_bytes` is lora_dtype's width (auto: the model's), `tp` the tensor parallel size."""

    max_loras: int = DEFAULT_MAX_LORAS
    max_lora_rank: int = DEFAULT_MAX_LORA_RANK
    max_cpu_loras: int | None = None  # None: max_loras
    dtype_bytes: int = 2
    tp: int = 1


@dataclass(frozen=True)
class LoraBufferRow:
    target: str  # the module's last name
    modules: int
    in_features: int  # per rank: a row-parallel layer's in / tp
    out_features: int  # per rank: a column-parallel layer's out / tp
    nbytes: int  # all of them, on one rank


@dataclass(frozen=True)
class VllmLora:
    options: VllmLoraOptions
    rows: tuple[LoraBufferRow, ...]
    gpu_bytes: int  # per GPU
    cpu_bytes: int  # the CPU cache: max_cpu_loras adapters of this one's size
    adapter_rank: int


def _check(o: VllmLoraOptions, adapter_rank: int) -> int:
    if o.max_lora_rank not in MAX_LORA_RANKS:
        raise InspectError(f"--max-lora-rank {o.max_lora_rank}: vLLM accepts {', '.join(map(str, MAX_LORA_RANKS))}")
    if o.max_loras < 1:
        raise InspectError(f"--max-loras {o.max_loras}: must be at least 1")
    cpu = o.max_loras if o.max_cpu_loras is None else o.max_cpu_loras
    if cpu < o.max_loras:
        raise InspectError(f"--max-cpu-loras {cpu}: vLLM requires at least --max-loras ({o.max_loras})")
    if adapter_rank > o.max_lora_rank:
        allowed = next((r for r in MAX_LORA_RANKS if r >= adapter_rank), None)
        raise InspectError(f"the adapter's rank {adapter_rank} is above --max-lora-rank {o.max_lora_rank}: vLLM refuses "
                           f"to load it{f'; pass --max-lora-rank {allowed}' if allowed else ''}")
    return cpu


def vllm_lora(modules: list[Module], adapter_rank: int, adapter_params: int, o: VllmLoraOptions,
              stage: tuple[int, int] | None = None) -> VllmLora:
    """vLLM's LoRA stacks for a base of `modules` serving adapters of rank up to o.max_lora_rank;
    `adapter_params` (one adapter's tensors) sizes the CPU cache; `stage`: a pipeline rank's [start, end)
    layers (None: all)."""
    cpu = _check(o, adapter_rank)
    rows: dict[tuple[str, int, int], int] = {}
    for m in modules:
        if stage is not None and (m.layer is None or not stage[0] <= m.layer < stage[1]):
            continue
        if m.kind in (LINEAR, ROUTER_KIND) and not m.output_embedding and m.component == LM and m.experts == 1:
            row = m.leaf in ROW_PARALLEL
            key = (m.leaf, -(-m.in_features // o.tp) if row else m.in_features,
                   m.out_features if row else -(-m.out_features // o.tp))
            rows[key] = rows.get(key, 0) + 1
    out = tuple(LoraBufferRow(leaf, count, i, f, count * o.max_loras * o.max_lora_rank * (i + f) * o.dtype_bytes)
                for (leaf, i, f), count in rows.items())
    return VllmLora(o, out, sum(r.nbytes for r in out), cpu * adapter_params * o.dtype_bytes, adapter_rank)


def load_extra(lora: VllmLora):
    """The stacks as one rank's vllm_load.LoadExtra record (counted in the weights term of `memory`)."""
    from inspector.memory.vllm_load import ASSUMED, EXACT, LoadExtra

    o = lora.options
    known = all(r.target in ROW_PARALLEL or r.target.endswith("_proj") for r in lora.rows)
    return LoadExtra(f"LoRA stacks (--max-loras {o.max_loras} × --max-lora-rank {o.max_lora_rank}, every linear "
                     "layer)", lora.gpu_bytes, EXACT if o.tp == 1 or known else ASSUMED,
                     "vllm/lora/layers/base_linear.py create_lora_weights, row_parallel_linear.py" +
                     ("" if o.tp == 1 or known else "; the tensor-parallel split of unfamiliar layer names assumed"))


__all__ = ["load_extra", "DEFAULT_MAX_LORAS", "DEFAULT_MAX_LORA_RANK", "MAX_LORA_RANKS", "LoraBufferRow", "VllmLora",
           "VllmLoraOptions", "vllm_lora"]
