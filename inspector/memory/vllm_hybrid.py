"""vLLM's hybrid KV-cache allocator over measured layers: attention pages, Mamba/linear state pages, groups, blocks.

Pure arithmetic (no torch) over what a caller measured per layer: the KV elements one token costs in an
attention layer (and its sliding window), and the state tensors (name, shape, dtype) a Mamba, Gated
DeltaNet or linear-attention layer keeps for one sequence as transformers holds them. vLLM (V1, the
hybrid allocator, `mamba_cache_mode` "none", no speculative decoding, tensor parallel 1) sizes them so:

- a state layer is one `MambaSpec` page per sequence, whatever the context: its shapes come from
  vllm/model_executor/layers/mamba/mamba_utils.py `MambaStateShapeCalculator`, whose conv state keeps
  `conv_kernel - 1` past inputs where transformers keeps `conv_kernel` (its conv states' last axis), and
  whose widths come from `MambaStateDtypeCalculator`: the conv state in the model's dtype
  (`--mamba-cache-dtype auto`), the temporal/recurrent state in `--mamba-ssm-cache-dtype` (auto: the
  conv state's dtype), except Kimi's KDA whose recurrent state is always float32 (`kda_state_dtype`);
  `MambaSpec.page_size_bytes` sums them (vllm/v1/kv_cache_interface.py);
- `Platform._align_hybrid_block_size` (vllm/platforms/interface.py) raises the attention block size to
  `align * cdiv(mamba_page, align * attention_page_of_one_token)` with `align = max(16, --block-size)`
  (16: FlashAttention's `get_supported_kernel_block_sizes() == [MultipleOf(16)]`) when that is larger
  than --block-size, then pads the Mamba page to exactly one attention page, so every layer has one page
  size;
- layers of one spec form groups of equally many layers (the repo's `serving.kv_groups` rule, from
  vllm/v1/core/kv_cache_utils.py `_get_kv_cache_groups_uniform_page_size`); `num_blocks = available //
  page // group_size`; a request needs `cdiv(len, block)` pages per full-attention layer, a sliding
  layer `cdiv(min(window - 1 + step, len), block) + 1` (`SlidingWindowSpec.max_memory_usage_bytes`) and
  a state layer one page (`MambaSpec.max_memory_usage_bytes`, mode "none").
"""

from __future__ import annotations

import math
from typing import NamedTuple

FLASH_ALIGN = 16  # vllm/v1/attention/backends/flash_attn.py get_supported_kernel_block_sizes: [MultipleOf(16)]
WIDTHS = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "float8_e4m3fn": 1, "int8": 1}
MAMBA_SSM_DTYPES = {"auto": None, "float32": 4, "float16": 2, "bfloat16": 2}  # vLLM's MambaDType values


class AttnLayer(NamedTuple):
    """An attention layer: KV elements of one token (keys + values, or MLA's latent), its window."""

    index: int
    token_elements: int
    window: int | None = None


class StateLayer(NamedTuple):
    """A state layer's tensors for one sequence as transformers holds them: (name, shape, dtype)."""

    index: int
    tensors: tuple[tuple[str, tuple[int, ...], str], ...]


class HybridInput(NamedTuple):
    """The measured layers and vLLM's options that size their pages."""

    attention: tuple[AttnLayer, ...]
    states: tuple[StateLayer, ...]
    max_model_len: int
    max_num_batched_tokens: int
    block_size: int = 16  # --block-size
    kv_dtype_bytes: int = 2  # --kv-cache-dtype
    model_dtype_bytes: int = 2  # --dtype (bf16): the conv state's width with --mamba-cache-dtype auto
    ssm_dtype: str = "auto"  # --mamba-ssm-cache-dtype (a config's mamba_ssm_cache_dtype where it names one)
    fp32_recurrent: bool = False  # KDA (kimi_linear): vLLM's kda_state_dtype keeps the recurrent state in float32


class Group(NamedTuple):
    kind: str  # "full" | "sliding" | "state"
    window: int | None
    layers: tuple[int, ...]


class HybridPlan(NamedTuple):
    """vLLM's cache layout for the layers, and what `available` bytes buy."""

    block_size: int  # attention tokens per block after the alignment
    attention_page: int  # one block of one attention layer, before padding (0: none)
    state_page: int  # one sequence's state of one layer at vLLM's shapes and widths, before padding (0: none)
    page: int  # the one page size every layer uses
    groups: tuple[Group, ...]
    group_size: int
    num_blocks: int
    kv_tokens: int  # "GPU KV cache size: N tokens" (num_blocks // groups x block_size)
    request_bytes: int  # one request of max_model_len
    concurrency: float  # "Maximum concurrency for L tokens per request"
    notes: tuple[str, ...]


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def state_bytes(layer: StateLayer, inp: HybridInput) -> int:
    """One sequence's state of `layer` at vLLM's shapes (conv: the kernel less one) and widths."""
    ssm = MAMBA_SSM_DTYPES[inp.ssm_dtype] or inp.model_dtype_bytes
    total = 0
    for name, shape, _dtype in layer.tensors:
        elements = math.prod(shape)
        if name.startswith("conv_states") and shape and shape[-1] > 1:
            total += elements // shape[-1] * (shape[-1] - 1) * inp.model_dtype_bytes
        else:
            total += elements * (4 if inp.fp32_recurrent else ssm)
    return total


def _pages(inp: HybridInput) -> tuple[int, int, int, int, list[str]]:
    """(block_size, attention page, state page, the common page, notes) as vLLM aligns them."""
    notes: list[str] = []
    token = max((a.token_elements for a in inp.attention), default=0) * inp.kv_dtype_bytes
    if len({a.token_elements for a in inp.attention}) > 1:
        notes.append("attention layers differ in KV per token: the largest page taken for all (assumed)")
    state = max((state_bytes(s, inp) for s in inp.states), default=0)
    block = inp.block_size
    if not state:
        return block, block * token, 0, block * token, notes
    if not token:  # no attention layer: vLLM sets mamba_block_size to max_model_len; the page is the state
        return inp.max_model_len, 0, state, state, notes
    align = max(FLASH_ALIGN, block)
    raised = align * cdiv(state, align * token)
    if raised > block:
        notes.append(f"vLLM logs: Setting attention block size to {raised:,} tokens to ensure that attention "
                     "page size is >= mamba page size")
        block = raised
    page = block * token
    if page > state:
        notes.append(f"vLLM logs: Padding mamba page size by {100 * (page - state) / state:.2f}% to ensure that "
                     "mamba page size and attention page size are exactly equal")
    return block, block * token, state, page, notes


def groups(inp: HybridInput) -> tuple[tuple[Group, ...], int]:
    """vLLM's KV cache groups: layers of one spec, cut into groups of equally many layers."""
    by_kind: dict[tuple[str, int | None], list[int]] = {}
    for a in inp.attention:
        by_kind.setdefault(("sliding", a.window) if a.window else ("full", None), []).append(a.index)
    for s in inp.states:
        by_kind.setdefault(("state", None), []).append(s.index)
    if not by_kind:
        return (), 0
    sizes = [len(v) for v in by_kind.values()]
    size = max(sizes) if max(sizes) < min(sizes) * 1.25 else min(sizes)
    out = [Group(kind, w, tuple(layers[i:i + size])) for (kind, w), layers in by_kind.items()
           for i in range(0, len(layers), size)]
    return tuple(out), size


def _layer_bytes(g: Group, page: int, block: int, inp: HybridInput) -> int:
    """What one layer of `g` needs for one request of max_model_len tokens."""
    if g.kind == "state":
        return page
    if g.kind == "sliding":
        tokens = min(g.window - 1 + inp.max_num_batched_tokens, inp.max_model_len)
        return (cdiv(tokens, block) + 1) * page
    return cdiv(inp.max_model_len, block) * page


def hybrid_plan(inp: HybridInput, available: int) -> HybridPlan:
    """vLLM's pages, groups and blocks for `inp` in `available` bytes (one GPU, tensor parallel 1)."""
    block, attention_page, state_page, page, notes = _pages(inp)
    found, size = groups(inp)
    if not found or not page:
        return HybridPlan(block, 0, 0, 0, (), 0, 0, 0, 0, 0.0, ("no layer keeps a KV cache or a state",))
    num_blocks = max(0, available // page // size)
    per_request = size * sum(_layer_bytes(g, page, block, inp) for g in found)
    blocks = cdiv(per_request, page * size)
    tokens = num_blocks // len(found) * block
    if num_blocks < blocks:
        notes.append(f"vLLM refuses to start: one request of {inp.max_model_len:,} tokens needs {blocks:,} blocks, "
                     f"the cache holds {num_blocks:,}")
    request = sum(len(g.layers) * _layer_bytes(g, page, block, inp) for g in found)
    return HybridPlan(block, attention_page, state_page, page, found, size, num_blocks, tokens, request,
                      num_blocks / blocks, tuple(notes))
