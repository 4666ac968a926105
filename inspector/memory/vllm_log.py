"""A vLLM start-up log read into a record: the version, engine, settings, GPU and every memory figure it logs.

`read_vllm_log(path)` reads the head of a log file (bounded by ``LIMITS["log"]``, through
:mod:`inspector.files`) and returns a :class:`VllmLog`. Every value is a :class:`Logged`: the value as
the log prints it and the 1-based line it came from. Nothing here computes a figure; the figures are
those vLLM printed, in the units it printed them (GiB where it says GiB; V0's "GB" of
"Loading model weights took 14.9888 GB" is GiB too: vllm/worker/model_runner.py divides by 2**30).

Which lines vLLM writes, by version, is written down in notes27-vlog.md (the fixtures under
fixtures/vllm/logs/ are public logs of each wording). Figures are kept per process: a tensor-parallel
run logs one line per worker, prefixed "(VllmWorkerProcess pid=N)" (V0), "(VllmWorker rank=N pid=M)"
(V1 up to 0.10), "(Worker_TPn pid=M)" (V1 later), "(RayWorkerWrapper pid=N, ip=A)" (Ray); lines
without a prefix come from the driver (V0's rank 0) or the only process. When one process logs a
figure twice (a log with two start-ups), the first one is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from inspector.errors import InspectError, printable
from inspector.files import LIMITS, local_path, open_regular, read_exact

MAX_LINE = 256 * 1024  # characters of one line that are searched (config lines are a few KB)


@dataclass(frozen=True)
class Logged:
    """One value as the log prints it, and the 1-based line number it came from."""

    value: Any
    line: int


@dataclass(frozen=True)
class Settings:
    """The engine settings a log states (the config line, the non-default args, other lines)."""

    model: Logged | None = None
    dtype: Logged | None = None
    quantization: Logged | None = None
    tensor_parallel_size: Logged | None = None
    pipeline_parallel_size: Logged | None = None
    max_model_len: Logged | None = None
    gpu_memory_utilization: Logged | None = None
    max_num_batched_tokens: Logged | None = None
    max_num_seqs: Logged | None = None
    block_size: Logged | None = None
    enforce_eager: Logged | None = None
    kv_cache_dtype: Logged | None = None


@dataclass(frozen=True)
class Figures:
    """The memory figures one process logged (GiB unless the name says seconds, bytes, tokens, blocks)."""

    weights_gib: Logged | None = None  # "Loading model weights took X GB" / "Model loading took X GiB"
    weights_seconds: Logged | None = None  # "... and Y seconds"
    weights_read_seconds: Logged | None = None  # "Loading weights took Y seconds" (the loader alone)
    profile_seconds: Logged | None = None  # "Memory profiling takes Y seconds" / "duration=Y seconds"
    total_gpu_gib: Logged | None = None  # torch's total (mem_get_info()[1])
    free_on_startup_gib: Logged | None = None  # "Free memory on device (F/T GiB)", "Initial free memory"
    gpu_memory_utilization: Logged | None = None  # the utilization the memory lines state
    requested_gib: Logged | None = None  # total x utilization
    initial_memory_gib: Logged | None = None  # 0.6.4: initial_memory_usage
    peak_torch_gib: Logged | None = None  # 0.6.4: peak_torch_memory (weights included)
    post_profile_gib: Logged | None = None  # 0.6.4: memory_usage_post_profile
    profiled_weights_gib: Logged | None = None  # "model weights take", "weights memory:", "for weight"
    consumed_gib: Logged | None = None  # "for consumed memory (weights + non-torch)"
    non_torch_gib: Logged | None = None
    activation_peak_gib: Logged | None = None  # "PyTorch activation peak memory", "torch peak memory increase"
    non_kv_cache_gib: Logged | None = None  # "Total non KV cache memory"
    free_after_profile_gib: Logged | None = None  # "Free memory after profiling: X GiB (total)"
    available_kv_gib: Logged | None = None  # "Available KV cache memory", "kv_cache_size", "reserved for KV Cache"
    kv_needed_gib: Logged | None = None  # "(X GiB KV cache is needed, ...)" when the engine refuses
    estimated_max_model_len: Logged | None = None  # "the estimated maximum model length is N"
    kv_tokens_limit: Logged | None = None  # V0: "maximum number of tokens that can be stored in KV cache (N)"
    gpu_blocks: Logged | None = None  # "# GPU blocks: N" / "# CUDA blocks: N" / "num_gpu_blocks is: N"
    cpu_blocks: Logged | None = None
    kv_cache_tokens: Logged | None = None  # "GPU KV cache size: N tokens"
    concurrency_tokens: Logged | None = None  # L of "Maximum concurrency for L tokens per request: Cx"
    max_concurrency: Logged | None = None  # C
    cuda_graph_gib: Logged | None = None  # "Graph capturing finished in S secs, took X GiB", "... for CUDAGraph memory"
    cuda_graph_seconds: Logged | None = None
    cuda_graph_estimated_gib: Logged | None = None  # "Estimated CUDA graph memory: X GiB total"
    utilization_without_graphs: Logged | None = None  # "... is equivalent to --gpu-memory-utilization=U without ..."
    kv_cache_memory_fit_bytes: Logged | None = None  # "--kv-cache-memory=N ... to fit into requested memory"
    kv_cache_memory_full_bytes: Logged | None = None  # "--kv-cache-memory=N ... to fully utilize gpu memory"
    kv_cache_in_use_gib: Logged | None = None  # "Current kv cache memory in use is X GiB"
    kv_cache_in_use_bytes: Logged | None = None  # "... is N bytes" (0.10)


@dataclass(frozen=True)
class Process:
    """The lines of one process: its prefix ("" when the lines have none), its role, rank and figures."""

    label: str  # "VllmWorkerProcess pid=507", "Worker_TP1 pid=238", "" (no prefix)
    role: str  # "worker", "engine" (EngineCore), "api" (APIServer) or "main" (no prefix)
    rank: int | None  # from "rank=N" or "_TPn"; None when the prefix does not say
    pid: int | None
    figures: Figures


@dataclass(frozen=True)
class VllmLog:
    """What a vLLM start-up log says: version, engine, settings, GPU and the memory figures per process."""

    path: str
    version: Logged | None
    engine: Logged | None  # "V0" or "V1", with the line that shows it
    settings: Settings
    gpu_name: Logged | None
    processes: tuple[Process, ...]
    lines: int  # lines read
    truncated: bool  # True when the file is longer than the limit and only its head was read

    @property
    def memory(self) -> Figures:
        """Each figure's first occurrence in the log, whichever process logged it."""
        merged: dict[str, Logged] = {}
        for proc in self.processes:
            for f in fields(Figures):
                got = getattr(proc.figures, f.name)
                if got is not None and (f.name not in merged or got.line < merged[f.name].line):
                    merged[f.name] = got
        return Figures(**merged)

    @property
    def ranks(self) -> tuple[Process, ...]:
        """The processes that hold a GPU: the workers, with the unprefixed driver (V0's rank 0) first
        when it logged figures too; a single-process log's one process otherwise."""
        workers = [p for p in self.processes if p.role == "worker"]
        holders = [p for p in self.processes if p.role != "api" and _has_figures(p.figures)]
        if not workers:
            return tuple(p for p in holders if p.role in ("main", "engine"))[:1] or tuple(holders[:1])
        main = [p for p in holders if p.role == "main" and _has_worker_figures(p.figures)]
        return tuple(main + workers)

    def per_rank(self, name: str) -> tuple[tuple[Process, Logged], ...]:
        """(process, figure) for each rank that logged figure `name` (a field of Figures)."""
        out = []
        for proc in self.ranks:
            got = getattr(proc.figures, name)
            if got is not None:
                out.append((proc, got))
        return tuple(out)

    @property
    def gpu_total_gib(self) -> Logged | None:
        """torch's total memory of the GPU, as the log prints it (first occurrence)."""
        return self.memory.total_gpu_gib


_ENGINE_WIDE = {"gpu_blocks", "cpu_blocks", "kv_cache_tokens", "concurrency_tokens", "max_concurrency",
                "kv_tokens_limit"}


def _has_figures(figs: Figures) -> bool:
    return any(getattr(figs, f.name) is not None for f in fields(Figures))


def _has_worker_figures(figs: Figures) -> bool:
    return any(getattr(figs, f.name) is not None for f in fields(Figures) if f.name not in _ENGINE_WIDE)


# --------------------------------------------------------------------------- line anatomy

# "(VllmWorkerProcess pid=521) ", "(VllmWorker rank=1 pid=2728139) ", "(Worker_TP0 pid=223) ",
# "(EngineCore_DP0 pid=1980) ", "(RayWorkerWrapper pid=123, ip=10.0.0.2) ", "(APIServer pid=1) "
_PREFIX = re.compile(r"\((?P<name>[A-Za-z_][\w]*)(?: rank=(?P<rank>\d+))? pid=(?P<pid>\d+)(?:, ip=[^)]*)?\)")
# "INFO 12-13 19:54:18 worker.py:243] " (V0 until 0.7) and "INFO 04-12 08:21:19 [worker.py:267] " (later)
_HEADER = re.compile(r"\b(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? "
                     r"(?:\[[^\]\s]*\]|[\w./-]+:\d+\])\s?")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TP_RANK = re.compile(r"_TP(\d+)")


def _split_prefix(line: str) -> tuple[re.Match | None, str]:
    """The process prefix of a line (if any) and the message after it and after the level/time header."""
    head = line[:400]
    header = _HEADER.search(head)
    stop = header.start() if header else len(head)
    prefix = _PREFIX.search(head, 0, stop) if "pid=" in head[:stop] else None
    if header:
        return prefix, line[header.end():]
    return prefix, line[prefix.end():].lstrip() if prefix else line.strip()


def _role(name: str) -> str:
    if name.startswith("EngineCore"):
        return "engine"
    if name.startswith("APIServer"):
        return "api"
    return "worker" if "Worker" in name or "Ray" in name else "main"


def _rank(match: re.Match) -> int | None:
    if match.group("rank") is not None:
        return int(match.group("rank"))
    tp = _TP_RANK.search(match.group("name"))
    return int(tp.group(1)) if tp else None


# --------------------------------------------------------------------------- figures

_N = r"(-?\d+(?:\.\d+)?)"  # a number as vLLM prints it ("%.2f" of a negative CUDA-graph delta is "-0.45")
_I = r"(\d{1,3}(?:,\d{3})+|\d+)"  # an integer, with thousands separators where vLLM puts them ("1,131,008")


@dataclass(frozen=True)
class _Pattern:
    needle: str  # a substring every matching message holds (a cheap test before the regex)
    regex: re.Pattern
    names: tuple[str, ...]  # the Figures field of each group, in order


def _p(needle: str, regex: str, *names: str, flags: int = 0) -> _Pattern:
    return _Pattern(needle, re.compile(regex, flags), names)


_FIGURE_PATTERNS: tuple[_Pattern, ...] = (
    # V0 (model_runner.py, until 0.7): "Loading model weights took 14.9888 GB"
    _p("Loading model weights took", rf"Loading model weights took {_N} ?GB", "weights_gib"),
    # V0 0.8 "Model loading took 19.5904 GB and 724.575245 seconds"; V1 "... GiB and 5.149193 seconds";
    # later V1 "Model loading took 12.66 GiB memory and 31.657031 seconds"
    _p("Model loading took", rf"Model loading took {_N} ?Gi?B(?: memory)?(?: and {_N} ?s)?",
       "weights_gib", "weights_seconds"),
    _p("Loading weights took", rf"Loading weights took {_N} ?s", "weights_read_seconds"),
    _p("Memory profiling takes", rf"Memory profiling takes {_N} seconds", "profile_seconds"),
    # V0 0.7-0.8 (worker.py): the two-line summary
    _p("the current vLLM instance can use total_gpu_memory",
       rf"total_gpu_memory \({_N} ?GiB\) x gpu_memory_utilization \({_N}\) = {_N} ?GiB",
       "total_gpu_gib", "gpu_memory_utilization", "requested_gib"),
    _p("model weights take", rf"model weights take {_N} ?GiB; non_torch_memory takes {_N} ?GiB; PyTorch "
       rf"activation peak memory takes {_N} ?GiB; the rest of the memory reserved for KV Cache is {_N} ?GiB",
       "profiled_weights_gib", "non_torch_gib", "activation_peak_gib", "available_kv_gib"),
    # V0 at PR 10511 (0.6.5): one "name<tab>value" line per figure after "Memory profiling results:"
    _p("duration", rf"^\s*duration\s+{_N} seconds\s*$", "profile_seconds"),
    _p("total_gpu_memory", rf"^\s*total_gpu_memory\s+{_N} ?GiB\s*$", "total_gpu_gib"),
    _p("gpu_memory_utilization", rf"^\s*gpu_memory_utilization\s+{_N}\s*$", "gpu_memory_utilization"),
    _p("the current vLLM instance can use", rf"^\s*the current vLLM instance can use\s+{_N} ?GiB\s*$",
       "requested_gib"),
    _p("model weights take", rf"^\s*model weights take\s+{_N} ?GiB\s*$", "profiled_weights_gib"),
    _p("non_torch_memory", rf"^\s*non_torch_memory\s+{_N} ?GiB\s*$", "non_torch_gib"),
    _p("PyTorch activation peak memory", rf"^\s*PyTorch activation peak memory\s+{_N} ?GiB\s*$",
       "activation_peak_gib"),
    _p("available_kv_cache_memory", rf"^\s*available_kv_cache_memory\s+{_N} ?GiB\s*$", "available_kv_gib"),
    # V1 (gpu_worker.py)
    _p("Available KV cache memory", rf"Available KV cache memory: {_N} ?GiB", "available_kv_gib"),
    _p("Initial free memory", rf"Initial free memory: {_N} ?GiB; Requested memory: {_N} \(util\), {_N} ?GiB",
       "free_on_startup_gib", "gpu_memory_utilization", "requested_gib"),
    _p("Free memory after profiling", rf"Free memory after profiling: {_N} ?GiB \(total\)", "free_after_profile_gib"),
    _p("Total non KV cache memory", rf"Total non KV cache memory: {_N} ?GiB; torch peak memory increase: {_N} ?GiB; "
       rf"non-torch forward increase memory: {_N} ?GiB; weights memory: {_N} ?GiB",
       "non_kv_cache_gib", "activation_peak_gib", "non_torch_gib", "profiled_weights_gib"),
    _p("Free memory on device", rf"Free memory on device(?: \S+)? \({_N}/{_N} ?GiB\) on startup",
       "free_on_startup_gib", "total_gpu_gib"),
    _p("GPU memory utilization", rf"desired GPU memory utilization(?: is)? \({_N}, {_N} ?GiB\)",
       "gpu_memory_utilization", "requested_gib", flags=re.I),
    _p("GiB for weight", rf"{_N} ?GiB for weight", "profiled_weights_gib"),
    _p("for consumed memory", rf"{_N} ?GiB for consumed memory", "consumed_gib"),
    _p("for peak activation", rf"{_N} ?GiB for peak activation", "activation_peak_gib"),
    _p("for non-torch memory", rf"{_N} ?GiB for non-torch memory", "non_torch_gib"),
    _p("for CUDAGraph memory", rf"{_N} ?GiB for CUDAGraph memory", "cuda_graph_gib"),
    _p("to fit into requested memory", r"--kv-cache-memory=(\d+)`?(?: \([\d.]+ ?GiB\))? to fit into requested",
       "kv_cache_memory_fit_bytes"),
    _p("to fully utilize gpu memory", r"--kv-cache-memory=(\d+)`?(?: \([\d.]+ ?GiB\))? to fully utilize",
       "kv_cache_memory_full_bytes"),
    _p("Current kv cache memory in use is", rf"Current kv cache memory in use is {_N} ?GiB", "kv_cache_in_use_gib"),
    _p("Current kv cache memory in use is", r"Current kv cache memory in use is (\d+) bytes", "kv_cache_in_use_bytes"),
    _p("without CUDA graph memory profiling", rf"is equivalent to --gpu-memory-utilization={_N} without",
       "utilization_without_graphs"),
    _p("CUDA graph memory profiling is enabled", rf"The current --gpu-memory-utilization={_N} is equivalent",
       "gpu_memory_utilization"),
    # the KV cache, in blocks and tokens
    _p("blocks:", rf"(?:GPU|CUDA) blocks: {_I}(?:, # CPU blocks: {_I})?", "gpu_blocks", "cpu_blocks"),
    _p("num_gpu_blocks is:", rf"num_gpu_blocks is: {_I}", "gpu_blocks"),
    _p("GPU KV cache size", rf"GPU KV cache size: {_I} tokens", "kv_cache_tokens"),
    _p("Maximum concurrency for", rf"Maximum concurrency for {_I} tokens per request: {_N}x",
       "concurrency_tokens", "max_concurrency"),
    _p("maximum number of tokens that can be stored in KV cache",
       rf"maximum number of tokens that can be stored in KV cache \({_I}\)", "kv_tokens_limit"),
    _p("KV cache is needed", rf"\({_N} ?GiB KV cache is needed, which is larger than the available KV cache "
       rf"memory \({_N} ?GiB\)", "kv_needed_gib", "available_kv_gib"),
    _p("estimated maximum model length", rf"estimated maximum model length is {_I}", "estimated_max_model_len"),
    # CUDA graphs
    _p("Graph capturing finished in", rf"Graph capturing finished in {_N} secs?(?:, took {_N} ?GiB)?",
       "cuda_graph_seconds", "cuda_graph_gib"),
    _p("Estimated CUDA graph memory", rf"Estimated CUDA graph memory: {_N} ?GiB", "cuda_graph_estimated_gib"),
    _p("CUDA graph pool memory", rf"CUDA graph pool memory: {_N} ?GiB \(actual\), {_N} ?GiB \(estimated\)",
       "cuda_graph_gib", "cuda_graph_estimated_gib"),
)

# 0.6.4 and 0.6.5-dev: "Memory profiling results: total_gpu_memory=23.58GiB initial_memory_usage=15.34GiB ..."
# ("duration=71.88 seconds, ..." and commas in the later one)
_RESULT_KEYS = {
    "duration": "profile_seconds", "total_gpu_memory": "total_gpu_gib", "initial_memory_usage": "initial_memory_gib",
    "peak_torch_memory": "peak_torch_gib", "memory_usage_post_profile": "post_profile_gib",
    "non_torch_memory": "non_torch_gib", "kv_cache_size": "available_kv_gib",
    "gpu_memory_utilization": "gpu_memory_utilization",
}
_RESULT_PAIR = re.compile(rf"\b(\w+)={_N}")


def _number(name: str, text: str) -> int | float:
    """A figure's text as a number: counts (blocks, tokens, bytes, lengths) as int, the rest as float."""
    if name.endswith(("_blocks", "_tokens", "_bytes", "_limit", "_len")):
        return int(text.replace(",", ""))
    return float(text)


def _figures_of(message: str, line: int, found: dict[str, Logged]) -> None:
    """Every figure `message` states, added to `found` (a figure already there is kept)."""
    for pat in _FIGURE_PATTERNS:
        if pat.needle not in message:
            continue
        match = pat.regex.search(message)
        if match is None:
            continue
        for name, text in zip(pat.names, match.groups()):
            if text is not None and name not in found:
                found[name] = Logged(_number(name, text), line)
    if "Memory profiling results:" in message:
        for key, text in _RESULT_PAIR.findall(message.split("Memory profiling results:", 1)[1]):
            name = _RESULT_KEYS.get(key)
            if name is not None and name not in found:
                found[name] = Logged(_number(name, text), line)


_NEEDLES = re.compile("|".join(sorted({re.escape(p.needle) for p in _FIGURE_PATTERNS}
                                      | {"Memory profiling results:"})))


# --------------------------------------------------------------------------- settings, version, engine, GPU

_SETTING_KEYS: dict[str, tuple[str, ...]] = {  # Settings field -> the keys vLLM prints it under
    "model": ("model",),
    "dtype": ("dtype",),
    "quantization": ("quantization",),
    "tensor_parallel_size": ("tensor_parallel_size",),
    "pipeline_parallel_size": ("pipeline_parallel_size",),
    "max_model_len": ("max_model_len", "max_seq_len"),  # the config line says max_seq_len
    "gpu_memory_utilization": ("gpu_memory_utilization",),
    "max_num_batched_tokens": ("max_num_batched_tokens",),
    "max_num_seqs": ("max_num_seqs",),
    "block_size": ("block_size",),
    "enforce_eager": ("enforce_eager",),
    "kv_cache_dtype": ("kv_cache_dtype",),
}
_INT_SETTINGS = {"tensor_parallel_size", "pipeline_parallel_size", "max_model_len", "max_num_batched_tokens",
                 "max_num_seqs", "block_size"}


def _key_regex(key: str) -> re.Pattern:
    # "key=value" (config line, Namespace) or "'key': value" (non-default args); not "kv_cache_dtype" for
    # "dtype", not "max_seq_len_to_capture" for "max_seq_len", not "model_tag" for "model"
    return re.compile(rf"(?<![\w.]){key}'?\s*[:=]\s*(?:'([^']*)'|\"([^\"]*)\"|([^,\s}})]+))")


_KEY_REGEXES = {name: tuple(_key_regex(k) for k in keys) for name, keys in _SETTING_KEYS.items()}

# Lines that state one setting in words: (needle, regex, Settings field)
_SETTING_LINES: tuple[tuple[str, re.Pattern, str], ...] = (
    ("Using max model len", re.compile(r"Using max model len (\d+)"), "max_model_len"),
    ("max seq len (", re.compile(r"max seq len \((\d+)\)"), "max_model_len"),
    ("Chunked prefill is enabled", re.compile(r"max_num_batched_tokens=(\d+)"), "max_num_batched_tokens"),
    ("Setting attention block size", re.compile(r"Setting attention block size to (\d+) tokens"), "block_size"),
    ("Starting to load model", re.compile(r"Starting to load model (\S+?)(?:\.\.\.)?\s*$"), "model"),
)
_CONFIG_NEEDLES = ("with config:", "non-default args:", "args: Namespace(")

_VERSIONS = (
    re.compile(r"LLM engine \(v?([^)\s]+)\) with config"),
    re.compile(r"vLLM API server version (\S+)"),
    re.compile(r"[█▄▀]\s+version (\d+\.\d+[\w.+-]*)"),  # the start-up banner of later versions
)
_ENGINE_LINE = re.compile(r"Initializing an? (?:(V[01]) )?LLM engine")
# Lines only one engine writes, for logs without the config line (vllm/worker/* is V0, vllm/v1/* is V1)
_ENGINE_MARKERS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"EngineCore|[\s\[/]gpu_worker\.py:|kv_cache_utils\.py:|gpu_model_runner\.py:|\(Worker_TP\d"
                r"|Available KV cache memory|GPU KV cache size|Model loading took [\d.]+ GiB"), "V1"),
    (re.compile(r"VllmWorkerProcess|[\s\[]worker\.py:|[\s\[]model_runner\.py:|Memory profiling results"
                r"|the current vLLM instance can use|# (?:GPU|CUDA) blocks|GPU blocks: \d+, # CPU"
                r"|Loading model weights took|Model loading took [\d.]+ GB\b"), "V0"),
)
_GPU_NAMES = (
    re.compile(r"\bGPU \d+(?:-\d+)?: (NVIDIA [^(|]+?|AMD [^(|]+?)\s*(?:\(|$)"),  # collect_env, nvidia-smi -L
    re.compile(r"\|\s+\d+\s+(NVIDIA [^|]+?)\s+(?:On|Off)\s+\|"),  # the nvidia-smi table
)


def _setting_value(name: str, text: str) -> Any:
    """A setting as printed ("torch.bfloat16", "None", "True", "0.9") as a value."""
    if text == "None":
        return None
    if name in _INT_SETTINGS:
        return int(text) if text.isdigit() else text
    if name == "gpu_memory_utilization":
        try:
            return float(text)
        except ValueError:
            return text
    if name == "enforce_eager":
        return {"True": True, "False": False}.get(text, text)
    return text.removeprefix("torch.") if name == "dtype" else text


class _State:
    """What has been read so far: figures per process, settings with their rank of source."""

    def __init__(self) -> None:
        self.figures: dict[str, dict[str, Logged]] = {}
        self.process: dict[str, tuple[str, int | None, int | None]] = {}
        self.settings: dict[str, tuple[int, Logged]] = {}
        self.version: Logged | None = None
        self.engine: Logged | None = None
        self.engine_hint: Logged | None = None
        self.gpu_name: Logged | None = None

    def figures_of(self, prefix: re.Match | None) -> dict[str, Logged]:
        label = "" if prefix is None else prefix.group(0)[1:-1]
        if label not in self.process:
            self.process[label] = ("main", None, None) if prefix is None else (
                _role(prefix.group("name")), _rank(prefix), int(prefix.group("pid")))
            self.figures[label] = {}
        return self.figures[label]

    def setting(self, name: str, value: Any, line: int, rank: int) -> None:
        """Keep the first value of the most trusted source: the config line (0), the args (1), a sentence (2)."""
        if name not in self.settings or rank < self.settings[name][0]:
            self.settings[name] = (rank, Logged(value, line))


def _settings_of(message: str, line: int, state: _State) -> None:
    """The settings `message` states: a config or arguments line, or a sentence naming one."""
    source = next((i for i, needle in enumerate(_CONFIG_NEEDLES) if needle in message), None)
    if source is not None:
        rank = min(source, 1)
        body = message.split(_CONFIG_NEEDLES[source], 1)[1]
        for name, regexes in _KEY_REGEXES.items():
            for regex in regexes:
                match = regex.search(body)
                if match is not None:
                    value = _setting_value(name, next(g for g in match.groups() if g is not None))
                    if value is not None or rank == 0:  # an argument left None is the default, not a value
                        state.setting(name, value, line, rank)
                    break
    for needle, regex, name in _SETTING_LINES:
        if needle in message:
            match = regex.search(message)
            if match is not None:
                state.setting(name, _setting_value(name, match.group(1)), line, 2)


def _identity_of(message: str, line: int, state: _State) -> None:
    """The version, the engine and the GPU's name, where `message` states them (first occurrence kept)."""
    if state.version is None:
        for regex in _VERSIONS:
            match = regex.search(message)
            if match is not None:
                state.version = Logged(match.group(1).removeprefix("v"), line)
                break
    if state.engine is None and "LLM engine" in message:
        match = _ENGINE_LINE.search(message)
        if match is not None:  # "Initializing an LLM engine (v0.6.4)": before V1 there was one engine
            state.engine = Logged(match.group(1) or "V0", line)
    if state.engine_hint is None:
        hint = next((engine for regex, engine in _ENGINE_MARKERS if regex.search(message)), None)
        if hint is not None:
            state.engine_hint = Logged(hint, line)
    if state.gpu_name is None and ("NVIDIA" in message or "AMD" in message):
        for regex in _GPU_NAMES:
            match = regex.search(message)
            if match is not None:
                state.gpu_name = Logged(match.group(1).strip(), line)
                break


# --------------------------------------------------------------------------- reading

# A line that can hold anything read here; the engine markers are looked for only until one is found.
_USEFUL = re.compile("|".join(
    [_NEEDLES.pattern, "with config:", "non-default args:", r"args: Namespace\(", "version", "LLM engine", "NVIDIA",
     "AMD"] + [re.escape(needle) for needle, _, _ in _SETTING_LINES]))


def _read_line(line: str, number: int, state: _State) -> None:
    if not _USEFUL.search(line):
        if state.engine_hint is None:
            _identity_of(line, number, state)
        return
    prefix, message = _split_prefix(line)
    if _NEEDLES.search(message):
        found: dict[str, Logged] = {}
        _figures_of(message, number, found)
        if found:
            figures = state.figures_of(prefix)
            for name, value in found.items():
                figures.setdefault(name, value)
    _settings_of(message, number, state)
    _identity_of(line, number, state)


def _engine(state: _State) -> Logged | None:
    """The engine: the config line's word, else the first line only one engine writes, else the version
    (V0 was removed in vLLM 0.11.0, so a later version is V1)."""
    if state.engine is not None or state.engine_hint is not None:
        return state.engine or state.engine_hint
    version = state.version
    match = re.match(r"(\d+)\.(\d+)", version.value) if version is not None else None
    if match is not None and (int(match.group(1)), int(match.group(2))) >= (0, 11):
        return Logged("V1", version.line)
    return None


def parse_vllm_log(text: str, where: str = "the log", truncated: bool = False) -> VllmLog:
    """A vLLM start-up log's text as a :class:`VllmLog`; a text that holds none of it is one InspectError line."""
    state = _State()
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()  # the newline that ends the last line
    number = 0
    for number, raw in enumerate(rows, 1):
        raw = raw[:MAX_LINE]
        if "\x1b" in raw:
            raw = _ANSI.sub("", raw)
        for part in raw.split("\r") if "\r" in raw else (raw,):  # a progress bar rewrites its line with \r
            _read_line(part, number, state)
    processes = tuple(Process(label, *state.process[label], Figures(**state.figures[label]))
                      for label in state.process if state.figures[label])
    settings = {name: logged for name, (_, logged) in state.settings.items()}
    log = VllmLog(where, state.version, _engine(state), Settings(**settings), state.gpu_name, processes,
                  number, truncated)
    if log.settings.gpu_memory_utilization is None and log.memory.gpu_memory_utilization is not None:
        log = _with_utilization(log)
    if not processes and not settings and state.version is None:
        raise InspectError(f"{where}: no vLLM start-up line in it (no version, setting or memory figure); "
                           "expected the log of `vllm serve` or of vllm.LLM")
    return log


def _with_utilization(log: VllmLog) -> VllmLog:
    """The utilization the memory lines state, as the setting when no config or argument line gave it."""
    values = {f.name: getattr(log.settings, f.name) for f in fields(Settings)}
    values["gpu_memory_utilization"] = log.memory.gpu_memory_utilization
    return VllmLog(log.path, log.version, log.engine, Settings(**values), log.gpu_name, log.processes,
                   log.lines, log.truncated)


def _decode(data: bytes, where: str) -> str:
    nul = data.find(b"\0")
    if nul >= 0:
        raise InspectError(f"{where}: not a text file (a NUL byte at offset {nul:,}); expected a vLLM log")
    return data.decode("utf-8", errors="replace")


def read_vllm_log(path: str | Path) -> VllmLog:
    """Read a vLLM start-up log file: its first ``LIMITS["log"]`` bytes (the start-up is at the head of
    a server's log, however long it ran), through :func:`inspector.files.open_regular`."""
    where = printable(path)
    real = local_path(path, "vLLM log")
    limit = LIMITS["log"]
    with open_regular(real, "a vLLM log (a text file)") as f:
        try:
            data = read_exact(f, limit + 1)
        except OSError as exc:
            raise InspectError(f"{where}: cannot read ({printable(exc.strerror or exc)})") from None
    truncated = len(data) > limit
    if truncated:  # the limit cuts a line: drop it rather than read half a number
        data = data[:limit]
        data = data[:data.rfind(b"\n") + 1]
    return parse_vllm_log(_decode(data, where), where, truncated)


__all__ = ["Figures", "Logged", "Process", "Settings", "VllmLog", "parse_vllm_log", "read_vllm_log"]
