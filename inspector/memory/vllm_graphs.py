"""vLLM's CUDA-graph memory estimate (v0.21.0 on): capture sizes, graph modes and the two-sample extrapolation.

What vLLM does (vllm/v1/worker/gpu_model_runner.py ``profile_cudagraph_memory``, read in the code index; the
fixtures under fixtures/vllm/logs show its two INFO lines): before the KV cache is sized it captures, per
graph mode, the two LARGEST capture sizes into a scratch pool, measuring ``torch.cuda.mem_get_info`` free
memory before and after each (warm-up runs included); then

    estimate = max over modes(first capture) + sum over modes((graphs in the mode - 1) x second capture)

(the second capture at least 1 MiB, "driver overhead"), logged "Estimated CUDA graph memory: X GiB total"
and taken off the KV budget (gpu_worker.py: "CUDA graph memory profiling is enabled (default since
v0.21.0)"). Capture sizes (vllm/config/vllm.py ``_set_cudagraph_sizes``): [1, 2, 4] + 8..248 step 8 +
256..max step 16, max = min(2 x max_num_seqs, 512, max_num_batched_tokens). FULL_AND_PIECEWISE (the default
mode where the attention backend supports full decode graphs): PIECEWISE graphs for every size, FULL graphs
for the uniform-decode sizes up to max_num_seqs.

Pure arithmetic (no torch).
"""

from __future__ import annotations

from typing import NamedTuple

MIB = 2**20
GIB = 2**30

RUNNER = "vllm gpu_model_runner.py profile_cudagraph_memory"
SIZES = "vllm config/vllm.py _set_cudagraph_sizes"

# The second capture's cost (vLLM's per-graph figure): the CUDA graphs' own driver memory and the buffers a
# captured graph keeps, since a smaller size reuses the first capture's pool blocks. Not derivable from the
# model's dimensions here. Calibrated on the one public log that shows the graph counts, the estimate and a
# dense model whose config is known: LMCache issue 3430 (https://github.com/LMCache/LMCache/issues/3430,
# fixtures/vllm/logs/v1-lmcache3430-qwen3-8b.log): Qwen3-8B on a 24 GB card, "PIECEWISE=51 (largest=512),
# FULL=35 (largest=256)", "Estimated CUDA graph memory: 0.52 GiB total": (0.52 GiB - first capture 48 MiB
# [a forward over 512 tokens]) / (50 + 34) = 5.77 MiB. So it holds for dense attention models (assumed beyond
# Qwen3-8B). Hybrid models with speculative decoding cost 4 to 6 times more a graph (drafter graphs, Gated
# DeltaNet kernels): club-3090 issue 104 "PIECEWISE=5 (largest=16)", 0.13 GiB (<= 33 MiB a graph), club-3090
# PR 44 "PIECEWISE=7 (largest=32)", 0.17 GiB (<= 29 MiB), gpustack/runner PR 251 (vLLM 0.27.1) "PIECEWISE=16
# (largest=16)", 0.36 GiB (<= 24.6 MiB), vLLM issue 50780 (~24 MiB a FULL graph): not modelled (fixtures/vllm/
# graphs.json lists them).
PER_GRAPH_BYTES = int(5.77 * MIB)
PER_GRAPH_SOURCE = "LMCache issue 3430, Qwen3-8B: 84 graphs, 0.52 GiB; dense attention models"
DRIVER_FLOOR = MIB  # vLLM: "Use at least 1 MiB per graph for driver overhead"


def capture_sizes(max_num_seqs: int, max_num_batched_tokens: int) -> tuple[int, ...]:
    """vLLM's default cudagraph_capture_sizes, largest last."""
    top = min(2 * max_num_seqs, 512, max_num_batched_tokens)
    grid = [1, 2, 4, *range(8, 256, 8), *range(256, 513, 16)]
    return tuple(s for s in grid if s <= top)


class GraphPlan(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """The graphs vLLM captures: per mode, how many and the largest size."""

    piecewise: tuple[int, ...]
    full: tuple[int, ...]  # uniform-decode sizes (FULL_AND_PIECEWISE); () for PIECEWISE only

    def modes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return tuple((m, s) for m, s in (("PIECEWISE", self.piecewise), ("FULL", self.full)) if s)

    def log_line(self) -> str:
        """The words vLLM logs for this plan."""
        parts = (f"{m}={len(s)} (largest={max(s)})" for m, s in self.modes())
        return "Profiling CUDA graph memory: " + ", ".join(parts)


def graph_plan(max_num_seqs: int, max_num_batched_tokens: int, full: bool = True) -> GraphPlan:
    """PIECEWISE for every capture size; FULL for the decode sizes up to max_num_seqs when ``full``."""
    sizes = capture_sizes(max_num_seqs, max_num_batched_tokens)
    return GraphPlan(sizes, tuple(s for s in sizes if s <= max_num_seqs) if full else ())


def graph_estimate(plan: GraphPlan, first_capture: dict[str, int], per_graph: int = PER_GRAPH_BYTES) -> int:
    """vLLM's extrapolation: the largest first capture plus (graphs - 1) x the per-graph figure, every mode."""
    if not plan.modes():
        return 0
    shared = max(first_capture[m] for m, _ in plan.modes())
    return shared + sum((len(s) - 1) * max(per_graph, DRIVER_FLOOR) for _, s in plan.modes())
