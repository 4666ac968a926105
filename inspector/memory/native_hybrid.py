"""vLLM's hybrid allocator for a native spec with Gated DeltaNet layers: state pages, raised block size, groups.

The spec's layers are handed to inspector.memory.vllm_hybrid (the arithmetic the transformers path uses):
attention layers by their KV elements per token on one GPU, linear-attention layers by the state tensors
transformers keeps for one sequence (conv_states (conv_dim, kernel), recurrent_states (value_heads,
key_head_dim, value_head_dim)). Under tensor parallelism vLLM splits the GDN heads over the GPUs
(vllm/model_executor/layers/mamba/mamba_utils.py `gated_delta_net_state_shape` divides the conv dim and
the value heads by tp_world_size), so the state tensors are divided by tp here (exact for head counts tp divides).
Kimi Delta Attention layers likewise (`kda_state_shape`: three convs of num_heads x head_dim / tp channels and
kernel - 1 positions, the recurrent state num_heads / tp x head_dim x head_dim, in float32: `kda_state_dtype`).
Mamba2 layers (Nemotron-H, Granite 4.0-H, Falcon-H1) enter with transformers' conv_states (inner + 2 n_groups
state, kernel) and ssm states (heads, head_dim, state) (`MambaStateShapeCalculator.mamba2_state_shape`: conv
(kernel - 1, conv_dim / tp), temporal (heads / tp, head_dim, state); at tp > 1 the n_groups tp does not divide
are replicated to tp groups first, `extra_groups_for_head_shards`), LFM2's short convolutions with their
conv state alone (`short_conv_state_shape`: (kernel - 1, hidden / tp)). A Falcon-H1 layer is both an attention
layer and a state layer.
"""

from __future__ import annotations

from inspector.memory.vllm_hybrid import AttnLayer, HybridInput, HybridPlan, StateLayer, hybrid_plan

SOURCE_VLLM = ("vllm/platforms/interface.py _align_hybrid_block_size; vllm/v1/kv_cache_interface.py MambaSpec; "
               "vllm/model_executor/layers/mamba/mamba_utils.py MambaStateShapeCalculator/DtypeCalculator")

# vLLM's `--mamba-cache-dtype auto` keeps the states in the model's dtype (MambaStateDtypeCalculator); the model
# dtype is taken as 16-bit (assumed: --dtype bf16/fp16, the width vLLM loads an unquantized checkpoint at)
MODEL_DTYPE_BYTES = 2


def hybrid_input(t, stage: tuple[int, int], token_bytes: int, kv_width: int, tp: int, length: int,
                 step: int, block_size: int) -> HybridInput | None:
    """The stage's layers as vLLM's hybrid allocator sees them (None: the stage has no linear layer)."""
    g = t.linear
    if g is None or not any(t.is_linear_layer(i) for i in range(*stage)):
        return None
    elements = token_bytes // kv_width
    attention = tuple(AttnLayer(i, elements, None if t.mla is not None else t.window(i))
                      for i in range(*stage) if t.has_attention(i))
    conv = (max(1, _conv_dim(g, tp) // tp), g.conv_kernel)
    tensors = (("conv_states", conv, "bfloat16"),)
    if g.recurrent_shape():  # a short convolution (LFM2) keeps none
        heads, *rest = g.recurrent_shape()
        tensors += (("recurrent_states", (max(1, heads // tp), *rest), "bfloat16"),)
    states = tuple(StateLayer(i, tensors) for i in range(*stage) if t.is_linear_layer(i))
    # Kimi's KDA: vLLM keeps its recurrent state in float32 whatever the model's dtype (mamba_utils.py kda_state_dtype)
    return HybridInput(attention, states, length, step, block_size, kv_width, MODEL_DTYPE_BYTES,
                       fp32_recurrent=g.kind == "kda")


def _conv_dim(g, tp: int) -> int:
    """The conv channels vLLM shards over tp: Mamba2 replicates groups tp does not divide
    (mamba_utils.py extra_groups_for_head_shards: tp - n_groups more), so each rank keeps its heads' B and C."""
    if g.kind != "mamba2" or g.key_heads % tp == 0:
        return g.conv_dim
    return g.value_dim + 2 * tp * g.key_head_dim  # n_groups + (tp - n_groups) = tp groups of B and C


def largest_context(inp: HybridInput, available: int) -> int:
    """The longest request (up to max_model_len) whose pages fit in `available` (vLLM's binary search)."""
    def need(length: int) -> int:
        return hybrid_plan(inp._replace(max_model_len=length), available).request_bytes

    if available <= 0 or need(1) > available:
        return 0
    lo, hi = 1, inp.max_model_len
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if need(mid) <= available else (lo, mid - 1)
    return lo


def plan_of(inp: HybridInput, available: int) -> HybridPlan:
    return hybrid_plan(inp, available)
