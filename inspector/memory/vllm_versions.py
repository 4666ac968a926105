"""vLLM's start-up arithmetic by release: which engine, batch defaults, non-torch accounting and CUDA-graph profiling.

One table, ``EPOCHS``: each row is the first release whose start-up arithmetic differs from the row
before, with the source that shows the change. ``resolve(version, engine)`` picks the row for a
``--vllm-version`` and checks an explicit ``--engine`` against the engines that release has.
Pure data and lookups (no torch).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from inspector.errors import InspectError

V0, V1 = "vllm-v0", "vllm-v1"

# Non-torch accounting epochs (what "non_torch_memory" measured; /work/notes27/a5.md has the reading).
FROM_ZERO = "from-zero"  # v0.6.3/0.6.4: (device used - torch allocated) after the profile run, CUDA context included
PR10511 = "pr10511"  # Dec 2024: used since init_device (before NCCL) - weights - torch *allocated* change
PR12126 = "pr12126"  # Jan 2025 on: MemorySnapshot, (used - torch reserved) increase since init_device
V1_SNAPSHOT = "v1-snapshot"  # V1: the same snapshot, taken after NCCL is initialised

# V1 batch defaults (vllm/engine/arg_utils.py _set_default_args_v1, later get_batch_defaults), by release:
FLAT = "flat"  # serve 2048 / LLM class 8192 tokens, 256 sequences on every GPU
BY_NAME = "h100-h200"  # PR 12369: "h100"/"h200" in the device name -> serve 8192 / LLM 16384 tokens, 1024 sequences
BY_MEMORY = "70gib"  # PR 17073: any GPU of >= 70 GiB (A100-80GB included) gets the larger defaults
BY_DEVICE = "70gib-not-a100"  # PR 17885: >= 70 GiB and not A100

VLLM = "https://github.com/vllm-project/vllm"


class Epoch(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """The first vLLM release of one start-up arithmetic, and what that arithmetic is."""

    since: tuple[int, int, int]
    engines: tuple[str, ...]  # the engines this release has; the first is its default
    non_torch_v0: str  # V0's non-torch accounting in this release
    v0_chunked_tokens: int  # V0's max_num_batched_tokens when chunked prefill is on
    v1_batch: str  # V1's batch-default rule in this release
    graphs_profiled: bool  # CUDA-graph memory estimated before the KV cache and taken off it (V1)
    source: str

    @property
    def text(self) -> str:
        return ".".join(map(str, self.since))


EPOCHS: tuple[Epoch, ...] = (
    Epoch((0, 6, 3), (V0,), FROM_ZERO, 512, FLAT, False,
          f"{VLLM}/pull/9352 (v0.6.3/0.6.4 'Memory profiling results: ... non_torch_memory' counted from zero; "
          f"case A6, {VLLM}/issues/10517); chunked prefill 512 tokens (docs 'Performance and Tuning')"),
    Epoch((0, 6, 5), (V0,), PR10511, 2048, FLAT, False,
          f"{VLLM}/pull/10511 (Dec 2024: baseline at init_device before NCCL, torch's allocated bytes; case A5); "
          f"{VLLM}/pull/10544 (chunked prefill 512 -> 2048 tokens, Nov 2024)"),
    Epoch((0, 7, 0), (V0, V1), PR12126, 2048, BY_NAME, False,
          f"{VLLM}/pull/11809 and {VLLM}/pull/12126 (Jan 2025: reserved bytes, MemorySnapshot); V1 opt-in "
          f"(VLLM_USE_V1=1); {VLLM}/pull/12369 (Jan 2025: larger V1 defaults on H100/H200 by name)"),
    Epoch((0, 8, 0), (V1, V0), PR12126, 2048, BY_NAME, False,
          "vLLM v0.8.0 release notes: V1 on by default (VLLM_USE_V1=0 for V0)"),
    Epoch((0, 8, 5), (V1, V0), PR12126, 2048, BY_MEMORY, False,
          f"{VLLM}/pull/17073 (Apr 2025: the larger defaults for every GPU of >= 70 GiB; first release assumed 0.8.5)"),
    Epoch((0, 9, 0), (V1, V0), PR12126, 2048, BY_DEVICE, False,
          f"{VLLM}/pull/17885 (May 2025: not on A100, whatever its memory; first release assumed 0.9.0)"),
    Epoch((0, 11, 0), (V1,), PR12126, 2048, BY_DEVICE, False,
          "vLLM v0.11.0: V0 removed (V1 only); llm-d's H100 table (cases A1, A2) ran v0.11.0"),
    Epoch((0, 21, 0), (V1,), PR12126, 2048, BY_DEVICE, True,
          "vllm/v1/worker/gpu_worker.py log 'CUDA graph memory profiling is enabled (default since v0.21.0)' "
          f"(fixtures/vllm/logs v1-club3090-104, v1-lmcache3430); profile_cudagraph_memory from {VLLM}/pull/30515; "
          "VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0 turns it off"),
)

# The newest release modelled (the default of --vllm-version): the newest whose start-up log was read,
# gpustack/runner pull request 251 (vLLM 0.27.1: "Profiling CUDA graph memory: PIECEWISE=16 (largest=16)",
# "Estimated CUDA graph memory: 0.36 GiB total"): the v0.21.0 row still holds.
NEWEST = "0.27.1"
NEWEST_SOURCE = "https://github.com/gpustack/runner/pull/251 (a vLLM 0.27.1 start-up log)"
# The last release with V0 (V0 removed in 0.11.0): the version --engine vllm-v0 alone stands for.
LAST_V0 = "0.10.2"


class VllmVersion(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """A vLLM release as modelled: its number, the epoch it falls in, and the engine used."""

    text: str
    number: tuple[int, int, int]
    epoch: Epoch
    engine: str
    given: bool  # --vllm-version was given (else the default for the engine)

    @property
    def graphs_profiled(self) -> bool:
        return self.engine == V1 and self.epoch.graphs_profiled


def parse_version(text: str) -> tuple[int, int, int]:
    """``0.12``, ``v0.11.0``, ``0.21.0rc1``, ``0.11.0+cu128`` -> (major, minor, patch); one-line error otherwise."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+.]?[A-Za-z0-9.+-]*)?", text.strip())
    if not match:
        raise InspectError(f"--vllm-version {text!r}: expected X.Y or X.Y.Z (e.g. 0.11.0)")
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def epoch_of(number: tuple[int, int, int]) -> Epoch:
    """The table's row for a release: the last row at or before it."""
    rows = [e for e in EPOCHS if e.since <= number]
    if not rows:
        first = EPOCHS[0].text
        raise InspectError(f"--vllm-version {'.'.join(map(str, number))}: releases before {first} are not modelled "
                           f"(their profiler predates {VLLM}/pull/9352)")
    return rows[-1]


def resolve(version: str | None, engine: str | None) -> VllmVersion:
    """The release and engine to follow: --vllm-version (default: the newest modelled, or the last with V0
    when only --engine vllm-v0 is given) and --engine (default: the release's own), checked together."""
    if engine is not None and engine not in (V0, V1):
        raise InspectError(f"--engine {engine!r} is not one of {V1}, {V0}")
    given = version is not None
    text = version.strip().removeprefix("v") if given else (LAST_V0 if engine == V0 else NEWEST)
    number = parse_version(text)
    epoch = epoch_of(number)
    if engine is not None and engine not in epoch.engines:
        has = " and ".join(e.removeprefix("vllm-").upper() for e in epoch.engines)
        raise InspectError(f"--engine {engine} contradicts --vllm-version {text}: that release has {has} only "
                           f"(V1 from 0.7.0, the default from 0.8.0; V0 until 0.10)")
    return VllmVersion(text, number, epoch, engine or epoch.engines[0], given)


def from_log(version: str | None, engine: str | None, graph_line: bool, sized_without_graphs: bool = False) -> VllmVersion:
    """The release a log shows: its version line; else >= 0.21 when it logs CUDA-graph memory profiling;
    else, for a V1 log that sizes its KV cache without that line, the last row before 0.21; else the newest
    release of its engine. Never an error: a log's own version is what it is."""
    number = None
    if version is not None:
        try:
            number = parse_version(version)
            epoch = epoch_of(number)
        except InspectError:
            number = None
    if number is not None:
        use = engine if engine in epoch.engines else epoch.engines[0]
        return VllmVersion(version, number, epoch, use, True)
    graphs = next(e for e in EPOCHS if e.graphs_profiled)
    if graph_line:
        return VllmVersion(f">= {graphs.text}", graphs.since, graphs, V1, True)
    if sized_without_graphs and engine != V0:
        before = EPOCHS[EPOCHS.index(graphs) - 1]
        return VllmVersion(f"< {graphs.text}", before.since, before, V1, True)
    return resolve(None, engine)


def release_of_log(log, engine: str) -> tuple[VllmVersion, str]:
    """The release a read log (inspector.memory.vllm_log.VllmLog) follows, and where that came from: its
    version line; the CUDA-graph profiling line (>= 0.21); a V1 KV-cache line without it (< 0.21); a V0
    log's profiling wording; else the newest release modelled with the engine."""
    m = log.memory
    graph_line = m.cuda_graph_estimated_gib or m.utilization_without_graphs
    sized = (m.available_kv_gib or m.kv_cache_tokens) if engine == V1 and graph_line is None else None
    version = str(log.version.value) if log.version else None
    release = from_log(version, engine, graph_line is not None, sized is not None)
    if version is not None and release.text == version:
        return release, f"log line {log.version.line}"
    if graph_line is not None:
        return release, f"log line {graph_line.line} (CUDA graph memory profiling: default since v0.21.0)"
    if sized is not None:
        return release, (f"assumed: log line {sized.line} sizes the KV cache with no CUDA-graph profiling line, "
                         "so before v0.21.0")
    v0 = _v0_wording(m) if engine == V0 and version is None else None
    if v0 is not None:
        return resolve(v0[0], engine), v0[1]
    return release, "assumed: the newest release modelled with the engine (--vllm-version in `inspect memory`)"


def _v0_wording(m) -> tuple[str, str] | None:
    """A V0 log without a version line: the release its profiling lines' wording belongs to (the log formats
    by version are in the vlog helper's notes: the 0.6.4 one-liner, PR 10511's block, PR 12126's summary)."""
    if m.peak_torch_gib is not None:
        return "0.6.4", (f"assumed: log line {m.peak_torch_gib.line} is the 'Memory profiling results: ... "
                         "peak_torch_memory' one-liner of v0.6.3/0.6.4 (PR 9352)")
    weights, act = m.profiled_weights_gib, m.activation_peak_gib
    if weights is None or act is None:
        return None
    if weights.line != act.line:
        return "0.6.5", (f"assumed: log lines {weights.line}-{act.line} are the 'Memory profiling results:' block "
                         "with one figure a line of PR 10511's build (Dec 2024)")
    return "0.7.0", (f"assumed: log line {act.line} is the one-line summary 'model weights take ...; non_torch_memory "
                     "takes ...' of PR 12126 on (v0.7.0)")
