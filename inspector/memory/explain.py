"""`inspect explain LOG`: a vLLM start-up log's memory figures reproduced term by term with our formula.

`explain_log(ExplainRequest)` reads the log (:mod:`inspector.memory.vllm_log`), takes the model, the
settings and the GPU total from it (or from the options that name them), runs vLLM's arithmetic
(:func:`inspector.memory.vllm.vllm_budget`) with our weights per rank (:mod:`inspector.memory.stored`,
:mod:`inspector.memory.parallel`) and returns an :class:`Explanation`: for each logged term the
value logged, ours, the difference (bytes and % of the GPU's total), our term's status and a
one-line reason where they differ; and checks of the logged values against each other (requested =
total x utilization, KV = requested - the other terms, blocks from the KV bytes, tokens, concurrency).
A term we cannot compute (the model is not at hand offline, no GPU total) is listed, not an error.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from inspector.errors import InspectError
from inspector.memory.vllm import (GIB, Device, ModelDims, VllmBudget, VllmSettings, V0_NON_TORCH_GIB,
                                   blocks_for_logged_gib, vllm_budget)
from inspector.memory.vllm_log import Figures, Logged, VllmLog, read_vllm_log
from inspector.memory.vllm_versions import release_of_log

NEEDS_MODEL = "needs the model's config"
NEEDS_TOTAL = "needs the GPU's total"
NOT_LOGGED = "not logged"
PR_12126 = "https://github.com/vllm-project/vllm/pull/12126"
ROUND = 0.005  # vLLM prints GiB with 2 decimals: a printed x stands for [x - 0.005, x + 0.005)


@dataclass(frozen=True)
class ExplainRequest:
    """What `inspect explain` was given: the log and the options that stand in for what it lacks."""

    log: str
    model: str | None = None  # --model: a preset, a directory with config.json, or a Hub id
    gpu: str | None = None  # --gpu: a preset name or a size in GiB
    gpu_memory_gib: float | None = None  # --gpu-memory-gib: torch's total
    tp: int | None = None  # --tp: when the log does not state tensor_parallel_size
    max_model_len: int | None = None  # --max-model-len: when the log does not state it
    max_num_seqs: int | None = None  # --max-num-seqs: when the log does not state it
    max_num_batched_tokens: int | None = None  # --max-num-batched-tokens: when the log does not state it
    images_per_prompt: int | None = None  # --images-per-prompt (vLLM's --limit-mm-per-prompt image=N)
    # the image layer's largest_image(vision, text_hidden) (inspector.image.rules, above memory: the CLI
    # passes it); None: a vision-language model's encoder profile is left out
    largest_image: Callable[[Any, int], Any] | None = None


@dataclass(frozen=True)
class Setting:
    """One setting used to reproduce the log, and where it came from."""

    name: str
    value: Any
    source: str  # "log line N", "--option", "vLLM's default", ...


@dataclass(frozen=True)
class Row:
    """One term: the logged value (as printed), ours, the difference, our status and why they differ."""

    term: str
    rank: str  # "" (one GPU or engine-wide), else the process ("rank 0", "VllmWorkerProcess pid=507")
    unit: str  # "GiB", "blocks", "tokens", "x"
    logged: float | int | None
    line: int | None
    ours: float | int | None  # GiB for GiB rows (bytes in ours_bytes), a count otherwise
    ours_bytes: int | None
    status: str  # exact | calibrated | assumed | input | needs ... | not logged
    source: str
    why: str = ""
    implied: str = ""  # how a logged value was derived from other logged ones (e.g. peak - weights)

    @property
    def difference(self) -> float | None:
        if self.logged is None or self.ours is None:
            return None
        return self.ours - self.logged


@dataclass(frozen=True)
class Check:
    """Logged values that imply one another: what they imply and whether the log agrees."""

    name: str
    formula: str
    implied: str
    logged: str
    agrees: bool | None  # None: cannot be checked (a term is missing)


@dataclass(frozen=True)
class ModelFound:
    """The model the log names, the one used, and why none could be used."""

    named: str | None
    named_line: int | None
    used: str | None
    kind: str | None  # preset | local | hub | gguf
    problem: str = ""


@dataclass(frozen=True)
class Explanation:
    """`inspect explain`'s record."""

    path: str
    version: str | None
    engine: str  # vllm-v0 | vllm-v1
    model: ModelFound
    gpu_total_bytes: int | None
    settings: tuple[Setting, ...]
    rows: tuple[Row, ...]
    checks: tuple[Check, ...]
    needs: tuple[str, ...]  # what is missing to reproduce every term
    notes: tuple[str, ...] = field(default=())
    lines: int = 0
    truncated: bool = False


# --------------------------------------------------------------------------- the model


def _candidates(named: str) -> list[str]:
    """A logged model name, then its last two path components (an Hub id kept in a cache path)."""
    parts = [p for p in re.split(r"[\\/]+", named.strip()) if p]
    out = [named.strip()]
    if len(parts) >= 2:
        out.append("/".join(parts[-2:]))
    if parts:
        out.append(parts[-1])
    return list(dict.fromkeys(out))


def _resolve_named(named: str):
    """A model the log names, resolved offline: a preset, or a local path that exists here."""
    from inspector.source import resolve
    from inspector.spec.presets import find_preset

    for name in _candidates(named):
        if find_preset(name) is not None:
            return resolve(name)
    if not named.startswith("~") and os.path.isdir(named):
        return resolve(named)
    return next((resolve(name) for name in _candidates(named) if _in_hub_cache(name)), None)


def _in_hub_cache(name: str) -> bool:
    """A Hub id whose config.json is in the local Hugging Face cache (nothing is downloaded)."""
    from inspector.hub import HUB_ID

    if not HUB_ID.match(name):
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - the hub extra is not installed
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # a malformed id for huggingface_hub's validators: not in the cache
        return False


def find_model(log: VllmLog, given: str | None):
    """(ModelFound, ModelSource | None): --model first (its errors are the user's), else the log's model."""
    from inspector.source import resolve

    logged = log.settings.model
    named, line = (str(logged.value), logged.line) if logged is not None else (None, None)
    if given is not None:
        src = resolve(given)
        return ModelFound(named, line, src.name, src.kind), src
    if named is None:
        return ModelFound(None, None, None, None, "the log does not name the model; --model names it"), None
    try:
        src = _resolve_named(named)
    except InspectError as err:
        return ModelFound(named, line, None, None, f"{err}; --model names it"), None
    if src is None:
        return ModelFound(named, line, None, None, f"{named!r} is not a preset nor a directory here; --model names "
                                                   "it (a preset, a directory with config.json, or a Hub id)"), None
    return ModelFound(named, line, src.name, src.kind), src


def _dtype_bytes(value: Any, default: int = 2) -> int:
    text = str(value or "").lower()
    if "fp8" in text or "int8" in text:
        return 1
    if "float32" in text or text == "fp32":
        return 4
    return default


def _width(stored) -> Any:
    """Bytes per element of each inventory tensor as the checkpoint stores it (quantized: stored / numel)."""
    by_name = {t.name: t for t in stored.tensors}

    def width(entry) -> float:
        t = by_name.get(entry.name)
        numel = math.prod(entry.shape) or 1
        return t.nbytes / numel if t is not None else 2

    return width


def model_terms(src, tp: int, kv_dtype: Any, largest_image=None, capability=None) -> tuple[ModelDims, int, str]:
    """Dimensions (a vision-language model's tower with them, when `largest_image` is given), the largest
    rank's weight bytes with what vLLM allocates at load beyond them (inspector.memory.vllm_load, on a GPU
    of `capability`; None assumes Hopper), and where the weights figure comes from."""
    from inspector.inventory.load import account_config
    from inspector.memory.parallel import Layout, rank_plan
    from inspector.memory.stored import stored_weights

    acc = account_config(src.config, src.name, src.where, src.preprocessor)
    stored = stored_weights(acc, src.config, src.where)
    text = acc.spec.text
    kv_bytes = _dtype_bytes(kv_dtype) if kv_dtype not in (None, "auto") else 2
    dims = ModelDims.from_text_spec(text, kv_dtype_bytes=kv_bytes)
    if acc.spec.vision is not None and largest_image is not None:
        from inspector.memory.vllm_vision import from_vision_spec

        image = largest_image(acc.spec.vision, text.hidden_size)
        dims = replace(dims, vision=from_vision_spec(acc.spec.vision, image, text.hidden_size))
    from inspector.memory.vllm_load import load_extras

    plan = rank_plan(acc, Layout(tp=tp), width=_width(stored))
    extras = load_extras(acc, src.config, capability, Layout(tp=tp), stored=stored)
    weights = int(plan.largest.weights_bytes) + sum(x.bytes for x in extras)
    how = "stored" if stored.plan is None else f"stored ({stored.plan.method})"
    vision = " (the vision tower included)" if acc.spec.vision is not None else ""
    loaded = "".join(f" + {x.name}" for x in extras)
    return dims, weights, (f"{src.name}: parameters{vision} as the checkpoint is {how}, per rank as vLLM loads "
                           f"them at TP {tp}{loaded}")


# --------------------------------------------------------------------------- the settings


def _from_log(logged: Logged | None, what: str = "log line") -> tuple[Any, str] | None:
    return None if logged is None else (logged.value, f"{what} {logged.line}")


def _given(value: Any, option: str) -> tuple[Any, str] | None:
    """An option that stands in for what the log does not state."""
    return None if value is None else (value, option)


def _first(*found: tuple[Any, str] | None) -> tuple[Any, str] | None:
    return next((f for f in found if f is not None and f[0] is not None), None)


def _tp(log: VllmLog, req: ExplainRequest) -> tuple[int, str]:
    logged = _from_log(log.settings.tensor_parallel_size)
    if logged is not None:
        return int(logged[0]), logged[1]
    if req.tp is not None:
        return req.tp, "--tp"
    ranks = [p for p in log.ranks if p.rank is not None]
    if len(ranks) > 1:
        return len(ranks), f"assumed: one GPU per worker process ({len(ranks)} TP ranks log figures); --tp sets it"
    return 1, "assumed: the log states no tensor_parallel_size; --tp sets it"


def _max_model_len(log: VllmLog, req: ExplainRequest, src) -> tuple[int, str]:
    found = _first(_from_log(log.settings.max_model_len),
                   _from_log(log.memory.concurrency_tokens, "'Maximum concurrency for N tokens per request', line"))
    if found is not None:
        return int(found[0]), found[1]
    if req.max_model_len is not None:
        return req.max_model_len, "--max-model-len"
    if src is not None:
        return int(src.spec().text.max_position_embeddings), "the model's max_position_embeddings (vLLM's default)"
    return 2048, "assumed: neither the log nor a model states it"


def log_settings(log: VllmLog, req: ExplainRequest, src) -> tuple[VllmSettings, tuple[Setting, ...]]:
    """vLLM's settings as the log states them, vLLM's defaults otherwise, each with where it came from."""
    s, m = log.settings, log.memory
    engine = "vllm-v0" if log.engine is not None and log.engine.value == "V0" else "vllm-v1"
    engine_from = f"log line {log.engine.line}" if log.engine is not None else "assumed: no line shows the engine"
    util = _first(_from_log(s.gpu_memory_utilization), _from_log(m.gpu_memory_utilization)) \
        or (0.9, "vLLM's default")
    mml = _max_model_len(log, req, src)
    tp = _tp(log, req)
    block = _first(_from_log(s.block_size)) or (16, "vLLM's default (CUDA)")
    kv_dtype = _first(_from_log(s.kv_cache_dtype)) or ("auto", "vLLM's default")
    tokens = _first(_from_log(s.max_num_batched_tokens), _given(req.max_num_batched_tokens, "--max-num-batched-tokens")) \
        or (None, "vLLM's default for the engine and GPU")
    seqs = _first(_from_log(s.max_num_seqs), _given(req.max_num_seqs, "--max-num-seqs")) \
        or (None, "vLLM's default for the engine and GPU")
    eager = _first(_from_log(s.enforce_eager)) or (False, "vLLM's default")
    release, release_from = release_of_log(log, engine)
    settings = VllmSettings(engine=release.engine, gpu_memory_utilization=float(util[0]), max_model_len=mml[0],
                            max_num_batched_tokens=tokens[0], max_num_seqs=seqs[0], block_size=int(block[0]),
                            enforce_eager=bool(eager[0]), tp=tp[0], vllm_version=".".join(map(str, release.number)),
                            images_per_prompt=req.images_per_prompt)
    rows = (Setting("engine", engine, engine_from), Setting("vllm_version", release.text, release_from),
            Setting("gpu_memory_utilization", util[0], util[1]),
            Setting("max_model_len", mml[0], mml[1]), Setting("tensor_parallel_size", tp[0], tp[1]),
            Setting("block_size", block[0], block[1]), Setting("kv_cache_dtype", kv_dtype[0], kv_dtype[1]),
            Setting("max_num_batched_tokens", tokens[0], tokens[1]), Setting("max_num_seqs", seqs[0], seqs[1]),
            Setting("enforce_eager", eager[0], eager[1]))
    return settings, rows


def gpu_device(log: VllmLog, req: ExplainRequest) -> tuple[Device | None, Setting, Any]:
    """The GPU vLLM sized against: the log's torch total first; else --gpu-memory-gib; else --gpu's.
    Also the total the options give (to compare with the log's), or None."""
    from inspector.memory.gpus import gpu, gpu_memory_gib

    base = gpu(req.gpu) if req.gpu is not None else None
    given = gpu_memory_gib(req.gpu_memory_gib, base) if req.gpu_memory_gib is not None else base
    name = given.name if given is not None else (str(log.gpu_name.value) if log.gpu_name is not None else "")
    logged = log.gpu_total_gib
    if logged is not None:
        device = Device(name, round(float(logged.value) * GIB))
        return device, Setting("gpu_total", f"{logged.value} GiB", f"log line {logged.line}"), \
            given
    if given is not None:
        opt = "--gpu-memory-gib" if req.gpu_memory_gib is not None else f"--gpu {req.gpu}"
        return Device(name, given.total), Setting("gpu_total", f"{given.total / GIB:.2f} GiB", opt), given
    return None, Setting("gpu_total", None, "not in the log: --gpu or --gpu-memory-gib gives it"), None


# --------------------------------------------------------------------------- the terms

GIB_TERMS = ("gpu_total", "requested", "weights", "activation_peak", "non_torch", "cuda_graphs", "kv_cache")
LABELS = {"gpu_total": "GPU total (torch)", "requested": "usable (total x utilization)", "weights": "weights",
          "activation_peak": "activation / profile peak", "non_torch": "non-torch", "cuda_graphs": "CUDA graphs",
          "kv_cache": "available KV cache", "blocks": "KV blocks", "tokens": "KV tokens",
          "concurrency": "max concurrency"}


@dataclass(frozen=True)
class Ours:
    """Our figures: the whole budget when the model is at hand, else the terms that need no model."""

    budget: VllmBudget | None
    terms: dict[str, tuple[int, str, str]]  # name -> (bytes, status, source)
    weights_source: str = ""


def our_terms(settings: VllmSettings, device: Device | None, model: tuple[ModelDims, int, str] | None) -> Ours:
    from inspector.memory.vllm import EXACT, cuda_graph_term, non_torch_term

    if device is not None and model is not None:
        budget = vllm_budget(model[0], settings, device, model[1])
        terms = {t.name: (t.bytes, t.status, t.source) for t in budget.terms}
        terms["weights"] = (model[1], EXACT, model[2])
        return Ours(budget, terms, model[2])
    terms = {t.name: (t.bytes, t.status, t.source) for t in (non_torch_term(settings), cuda_graph_term(settings))}
    if device is not None:
        terms["gpu_total"] = (device.total_bytes, "input", "torch.cuda.mem_get_info()[1]")
        terms["requested"] = (int(device.total_bytes * settings.gpu_memory_utilization), EXACT,
                              f"gpu_total x gpu_memory_utilization {settings.gpu_memory_utilization}")
    if model is not None:
        terms["weights"] = (model[1], EXACT, model[2])
    return Ours(None, terms)


def logged_terms(fig: Figures) -> dict[str, tuple[float, int, str]]:
    """The GiB figures one process logged, per term: (value, line, how it was derived from other lines)."""
    out: dict[str, tuple[float, int, str]] = {}
    pairs = {"gpu_total": fig.total_gpu_gib, "requested": fig.requested_gib,
             "weights": fig.profiled_weights_gib or fig.weights_gib, "activation_peak": fig.activation_peak_gib,
             "non_torch": fig.non_torch_gib, "cuda_graphs": fig.cuda_graph_estimated_gib or fig.cuda_graph_gib,
             "kv_cache": fig.available_kv_gib or fig.kv_cache_in_use_gib}
    for name, got in pairs.items():
        if got is not None:
            out[name] = (float(got.value), got.line, "")
    if "activation_peak" not in out and fig.peak_torch_gib is not None and fig.weights_gib is not None:
        value = round(float(fig.peak_torch_gib.value) - float(fig.weights_gib.value), 4)
        out["activation_peak"] = (value, fig.peak_torch_gib.line,
                                  f"peak_torch_memory {fig.peak_torch_gib.value} - weights {fig.weights_gib.value}")
    return out


def _missing_status(name: str, device: Device | None) -> str:
    if name in ("gpu_total", "requested") or (device is None and name == "kv_cache"):
        return NEEDS_TOTAL
    return NEEDS_MODEL


def gib_rows(rank: str, fig: Figures, ours: Ours, device: Device | None, engine: str,
             first: bool = True) -> list[Row]:
    """One row per GiB term that the process logged or (on the first rank) that we compute."""
    logged = logged_terms(fig)
    rows = []
    for name in GIB_TERMS:
        got, mine = logged.get(name), ours.terms.get(name)
        if got is None and (mine is None or name == "cuda_graphs" or not first):
            continue
        value, line, implied = got if got is not None else (None, None, "")
        if mine is None:
            rows.append(Row(name, rank, "GiB", value, line, None, None, _missing_status(name, device), "", "",
                            implied))
            continue
        nbytes, status, source = mine
        row = Row(name, rank, "GiB", value, line, nbytes / GIB, nbytes, status, source, "", implied)
        rows.append(_with_why(row, logged, ours, engine))
    return rows


def _gap(row: Row) -> float:
    return abs(row.difference or 0.0)


def _non_torch_why(logged: float, engine: str, settings_tp: int, from_zero: bool) -> str:
    """Why a V0 log's non-torch differs: what that build's profiler counted (vLLM PRs 9352, 10511, 11809)."""
    if engine == "vllm-v0" and logged > 0.3:
        ours = f"our default is {V0_NON_TORCH_GIB} GiB, the last V0 profiler's (PR 12126's log)"
        if from_zero:  # v0.6.3/0.6.4 (PR 9352): device used - torch allocated after the profile
            return (f"the log's non-torch {logged:.2f} GiB counts the CUDA context (v0.6.4: device used minus "
                    f"torch's allocated bytes, from zero; V0 before PR 12126, Jan 2025); {ours}")
        # PR 10511's build: baseline at init_device, before the distributed set-up (issue 12059)
        tp = ", and the NCCL/custom all-reduce buffers set up after that baseline" if settings_tp > 1 else ""
        return (f"the log's non-torch {logged:.2f} GiB is the Dec 2024 build's (PR 10511): device used since "
                f"init_device minus weights and torch's allocated bytes, so the allocator's reserved-but-free "
                f"bytes, cuBLAS and lazily loaded kernels{tp} (PR 11809 then subtracted reserved bytes); {ours}")
    return "ours is a published measurement (see source); non-torch memory depends on the build, the GPU and TP"


def _why_text(row: Row, logged: dict[str, tuple[float, int, str]], ours: Ours, engine: str) -> str:
    name = row.term
    if name == "gpu_total":
        return "the log prints torch's total on that card; ours is the --gpu figure (see source)"
    if name == "requested":
        return "follows from the GPU total"
    if name == "weights":
        return (f"ours: {ours.weights_source}; vLLM logs what its load allocated (the checkpoint it read, "
                f"quantized or not, plus buffers such as the rotary cache)")
    if name == "activation_peak":
        where = row.source.rsplit("peak at the ", 1)[-1] if "peak at the " in row.source else "profile run"
        vision = "vision tower included" in ours.weights_source
        encoder = row.source.startswith("max(vision encoder profile")
        where = "vision encoder's profile" if encoder and row.status == "assumed" else where
        return (f"ours is the {where} ({row.status}); vLLM measured torch's peak increase in its profile run"
                + ("; the vision encoder's profile over vLLM's dummy images is in ours (assumed liveness: "
                   "the images per prompt and max_num_seqs set how many)" if encoder else
                   "; the vision encoder's profile needs the image layer (the CLI gives it)" if vision else ""))
    if name == "non_torch":
        tp = ours.budget.settings.tp if ours.budget is not None else 1
        from_zero = logged.get("activation_peak", (0.0, 0, ""))[2].startswith("peak_torch_memory")
        return _non_torch_why(logged[name][0], engine, tp, from_zero)
    if name == "cuda_graphs":
        if ours.terms[name][1] == "assumed" and ours.terms[name][0] == 0:
            return "ours needs the model's dimensions (--model) for vLLM's estimate"
        if ours.terms[name][0] == 0:
            return "before v0.21.0 the graphs are captured after the KV cache is sized: not taken off the KV budget"
        return ("vLLM extrapolates two captures per mode; our per-graph figure is calibrated on dense models "
                "(several times higher on hybrid/MoE models, vLLM issue 50780)")
    return ""


def _with_why(row: Row, logged: dict[str, tuple[float, int, str]], ours: Ours, engine: str) -> Row:
    if row.difference is None or _gap(row) < 0.05:
        return row
    if row.term == "kv_cache":
        others = [(abs((ours.terms[n][0] / GIB) - logged[n][0]), n) for n in GIB_TERMS[2:6]
                  if n in logged and n in ours.terms]
        if not others:
            return replace(row, why="follows from the terms above (the log does not break them down)")
        gap, worst = max(others)
        sign = "+" if ours.terms[worst][0] / GIB < logged[worst][0] else "-"
        return replace(row, why=f"follows from the terms above; the largest gap is {LABELS[worst]} "
                                f"({sign}{gap:.2f} GiB of KV)")
    return replace(row, why=_why_text(row, logged, ours, engine))


def count_rows(log: VllmLog, ours: Ours) -> list[Row]:
    """Blocks, tokens and max concurrency: logged once per engine; ours follow from our KV bytes."""
    m, b = log.memory, ours.budget
    tokens = m.kv_cache_tokens or m.kv_tokens_limit
    wanted = (("blocks", "blocks", m.gpu_blocks, b.num_gpu_blocks if b else None),
              ("tokens", "tokens", tokens, b.kv_cache_tokens if b else None),
              ("concurrency", "x", m.max_concurrency, round(b.max_concurrency, 2) if b else None))
    rows = []
    for name, unit, got, mine in wanted:
        if got is None and mine is None:
            continue
        value, line = (got.value, got.line) if got is not None else (None, None)
        status = "exact" if mine is not None else NEEDS_MODEL
        source = "from our KV bytes: vLLM's floor(kv // page // layers), x block_size, / request blocks" \
            if mine is not None else ""
        why = ""
        if mine is not None and value is not None and mine != value:
            why = "follows from our KV bytes (see the checks for the count the logged KV bytes give)"
        rows.append(Row(name, "", unit, value, line, mine, None, status, source, why))
    return rows


# --------------------------------------------------------------------------- checks among logged values


def _agree(implied: float, logged: float, terms: int) -> bool:
    """Within the rounding of `terms` printed figures of 2 decimals (each off by at most 0.005)."""
    return abs(implied - logged) <= ROUND * terms + 1e-9


def _val(fig: Figures, name: str) -> float | None:
    got = getattr(fig, name)
    return None if got is None else float(got.value)


def _usable_check(total: float, util: float, usable: float, at: str) -> Check:
    """usable = total x utilization. Each is printed rounded (V0 prints the utilization with 2 decimals,
    so --gpu-memory-utilization 0.945 reads "0.94"): they agree when the ranges the printed figures
    stand for meet."""
    implied = total * util
    low, high = (total - ROUND) * (util - ROUND), (total + ROUND) * (util + ROUND)
    exact = _agree(implied, usable, 2)
    agrees = exact or (low <= usable + ROUND and usable - ROUND <= high)
    text = f"{implied:.3f} GiB" if exact else f"{implied:.3f} GiB ({low:.2f} to {high:.2f} with the printed rounding)"
    return Check("usable" + at, "total x utilization", text, f"{usable} GiB", agrees)


def sum_checks(fig: Figures, rank: str) -> list[Check]:
    """requested = total x util; KV = requested - the other terms (each wording of the summary)."""
    v = {name: _val(fig, name) for name in ("total_gpu_gib", "gpu_memory_utilization", "requested_gib",
                                             "profiled_weights_gib", "non_torch_gib", "activation_peak_gib",
                                             "available_kv_gib", "peak_torch_gib", "consumed_gib",
                                             "kv_cache_in_use_gib")}
    at = f" ({rank})" if rank else ""
    out = []
    if None not in (v["total_gpu_gib"], v["gpu_memory_utilization"], v["requested_gib"]):
        out.append(_usable_check(v["total_gpu_gib"], v["gpu_memory_utilization"], v["requested_gib"], at))
    kv = v["available_kv_gib"]
    parts = [v[n] for n in ("requested_gib", "profiled_weights_gib", "non_torch_gib", "activation_peak_gib")]
    if kv is not None and None not in parts:
        implied = parts[0] - sum(parts[1:])
        out.append(Check("available KV" + at, "usable - weights - non-torch - activation", f"{implied:.3f} GiB",
                         f"{kv} GiB", _agree(implied, kv, 5)))
    elif kv is not None and None not in (v["total_gpu_gib"], v["gpu_memory_utilization"], v["peak_torch_gib"],
                                         v["non_torch_gib"]):
        implied = v["total_gpu_gib"] * v["gpu_memory_utilization"] - v["peak_torch_gib"] - v["non_torch_gib"]
        out.append(Check("available KV" + at, "total x utilization - peak torch (weights included) - non-torch",
                         f"{implied:.3f} GiB", f"{kv} GiB", _agree(implied, kv, 4)))
    if None not in (v["requested_gib"], v["consumed_gib"], v["activation_peak_gib"], v["kv_cache_in_use_gib"]):
        implied = v["requested_gib"] - v["consumed_gib"] - v["activation_peak_gib"]
        out.append(Check("KV in use" + at, "usable - consumed (weights + non-torch) - activation",
                         f"{implied:.3f} GiB", f"{v['kv_cache_in_use_gib']} GiB",
                         _agree(implied, v["kv_cache_in_use_gib"], 4)))
    return out


def _rounded_range(r: range, scale: int = 1) -> str:
    if len(r) == 0:
        return "none"
    low, high = r.start * scale, (r.stop - 1) * scale
    return f"{low:,}" if low == high else f"{low:,} to {high:,}"


def block_checks(log: VllmLog, settings: VllmSettings, dims: ModelDims | None) -> list[Check]:
    """Blocks and tokens from the logged KV bytes; tokens = blocks x block size; concurrency."""
    m, out = log.memory, []
    blocks, tokens = _val(m, "gpu_blocks"), _val(m, "kv_cache_tokens") or _val(m, "kv_tokens_limit")
    kv = m.available_kv_gib
    if kv is not None and dims is not None and (blocks is not None or tokens is not None):
        span = blocks_for_logged_gib(float(kv.value), dims, settings)
        page = f"{settings.block_size} tokens x {dims.layers} layers"
        if blocks is not None:
            out.append(Check("blocks from the logged KV", f"KV {kv.value} GiB (+-0.005) // block ({page})",
                             _rounded_range(span), f"{int(blocks):,}", int(blocks) in span))
        else:
            out.append(Check("tokens from the logged KV", f"KV {kv.value} GiB (+-0.005) // block ({page}) x "
                             f"{settings.block_size}", _rounded_range(span, settings.block_size), f"{int(tokens):,}",
                             int(tokens) // settings.block_size in span))
    if blocks is not None and tokens is not None:
        implied = int(blocks) * settings.block_size
        out.append(Check("tokens", f"blocks x block size {settings.block_size}", f"{implied:,}", f"{int(tokens):,}",
                         implied == int(tokens)))
    if tokens is not None or blocks is not None:
        out += _concurrency_check(m, settings, tokens if tokens is not None else blocks * settings.block_size)
    if m.kv_tokens_limit is not None:
        limit = int(m.kv_tokens_limit.value)
        out.append(Check("refusal", "max_model_len > KV tokens", f"{settings.max_model_len:,} > {limit:,}",
                         "the engine refused to start", settings.max_model_len > limit))
    return out


def _concurrency_check(m: Figures, settings: VllmSettings, tokens: float) -> list[Check]:
    """V0: tokens / max_model_len; V1: blocks / blocks per request (the request rounded up to whole blocks)."""
    conc, length = _val(m, "max_concurrency"), _val(m, "concurrency_tokens")
    if conc is None or not length:
        return []
    if settings.engine == "vllm-v0":
        per, what = length, "max_model_len"
    else:
        per, what = math.ceil(length / settings.block_size) * settings.block_size, "blocks per request x block size"
    implied = tokens / per
    return [Check("max concurrency", f"tokens / {what} ({int(per):,})", f"{implied:.2f}x", f"{conc}x",
                  abs(implied - conc) <= ROUND + 1e-9)]


def non_torch_check(log: VllmLog, ours: Ours, model, device: Device | None) -> list[Check]:
    """Our KV again, with the log's own non-torch figure in place of our default."""
    fig = log.ranks[0].figures if log.ranks else log.memory
    nt, kv = _val(fig, "non_torch_gib"), _val(fig, "available_kv_gib")
    if ours.budget is None or nt is None or kv is None or model is None or device is None:
        return []
    settings = ours.budget.settings._replace(non_torch_bytes=round(nt * GIB))
    budget = vllm_budget(model[0], settings, device, model[1])
    implied = budget.kv_cache_bytes / GIB
    return [Check("our KV with the log's non-torch", f"ours with non-torch {nt} GiB; agrees within 2% of the GPU total",
                  f"{implied:.3f} GiB", f"{kv} GiB", abs(implied - kv) <= 0.02 * device.total_bytes / GIB)]


# --------------------------------------------------------------------------- the whole explanation


def _rank_label(proc, many: bool) -> str:
    if not many:
        return ""
    if proc.label == "":
        return "rank 0 (driver)"
    return f"rank {proc.rank} ({proc.label})" if proc.rank is not None else proc.label


def _needs(found: ModelFound, device: Device | None) -> tuple[str, ...]:
    out = []
    if found.used is None:
        out.append(f"weights, activation peak, KV bytes, blocks, tokens and concurrency need the model's config: "
                   f"{found.problem}")
    if device is None:
        out.append("usable memory and the KV bytes need the GPU's total: the log does not print it; "
                   "--gpu NAME or --gpu-memory-gib X gives it")
    return tuple(out)


def explain_log(req: ExplainRequest) -> Explanation:
    """The log read, its settings and model found, every logged figure set against ours."""
    log = read_vllm_log(req.log)
    found, src = find_model(log, req.model)
    settings, rows = log_settings(log, req, src)
    device, total_setting, option_gpu = gpu_device(log, req)
    kv_dtype = next(s.value for s in rows if s.name == "kv_cache_dtype")
    capability = getattr(option_gpu, "capability", None)
    model = model_terms(src, settings.tp, kv_dtype, req.largest_image, capability) if src is not None else None
    ours = our_terms(settings, device, model)
    procs = [p for p in log.ranks if logged_terms(p.figures)] or list(log.ranks[:1])
    many = len(procs) > 1
    table: list[Row] = []
    for i, proc in enumerate(procs or [None]):
        fig = proc.figures if proc is not None else Figures()
        table += gib_rows(_rank_label(proc, many) if proc else "", fig, ours, device, settings.engine, i == 0)
    if option_gpu is not None:
        table = [_option_total(r, option_gpu) if r.term == "gpu_total" else r for r in table]
    table = _kv_from_counts(table, log, settings, model[0] if model else None)
    table += count_rows(log, ours)
    checks = [c for p in procs for c in sum_checks(p.figures, _rank_label(p, many))]
    checks += block_checks(log, settings, model[0] if model else None)
    checks += non_torch_check(log, ours, model, device)
    checks += graph_checks(log, ours, device)
    notes = list(ours.budget.notes) if ours.budget is not None else []
    notes += _graph_notes(log.memory)
    if settings.tp > 1:
        notes.append(f"ours is the largest rank at TP {settings.tp}; vLLM sizes the KV cache by its smallest rank")
    return Explanation(str(req.log), str(log.version.value) if log.version else None, settings.engine, found,
                       device.total_bytes if device else None, (total_setting, *rows), tuple(table), tuple(checks),
                       _needs(found, device), tuple(notes), log.lines, log.truncated)


def _option_total(row: Row, gpu) -> Row:
    """The GPU-total row when --gpu / --gpu-memory-gib names a card: ours is its torch total (with that
    figure's status and source), set against the log's when the log prints one."""
    mine = gpu.total / GIB
    why = ""
    if row.logged is not None and abs(mine - row.logged) >= 0.005:
        why = "the log prints torch's total on that card; ours is the option's figure (the log's is used for the rest)"
    return replace(row, ours=mine, ours_bytes=gpu.total, status=gpu.torch_status or "input",
                   source=gpu.torch_source or gpu.source, why=why)


def _kv_from_counts(table: list[Row], log: VllmLog, settings: VllmSettings, dims: ModelDims | None) -> list[Row]:
    """When the log prints blocks or tokens but no KV bytes: the KV bytes they imply, in the KV row."""
    from inspector.memory.vllm import page_bytes

    m = log.memory
    blocks = m.gpu_blocks or m.kv_cache_tokens or m.kv_tokens_limit
    at = next((i for i, r in enumerate(table) if r.term == "kv_cache"), None)
    if dims is None or blocks is None or at is None or table[at].logged is not None:
        return table
    count = int(blocks.value) if m.gpu_blocks is not None else int(blocks.value) // settings.block_size
    block = page_bytes(dims, settings) * dims.layers
    implied = f"{count:,} blocks x {block / 2**20:g} MiB ({settings.block_size} tokens x {dims.layers} layers)"
    row = replace(table[at], logged=round(count * block / GIB, 4), line=blocks.line, implied=implied)
    if row.difference is not None and abs(row.difference) >= 0.05:
        row = replace(row, why="follows from the terms above (the log does not break them down)")
    return table[:at] + [row] + table[at + 1:]


def graph_checks(log: VllmLog, ours: Ours, device: Device | None) -> list[Check]:
    """vLLM >= 0.21's CUDA-graph lines against ours: the estimate, the utilization equivalence
    ((util - util without graphs) x GPU total = the estimate) and, where logged, the capture's actual pool."""
    m = log.ranks[0].figures if log.ranks else log.memory
    est, u0 = _val(m, "cuda_graph_estimated_gib"), _val(m, "utilization_without_graphs")
    util = ours.budget.settings.gpu_memory_utilization if ours.budget is not None else _val(log.memory, "gpu_memory_utilization")
    mine = ours.terms.get("cuda_graphs", (0, "", ""))[0] / GIB
    out = []
    if u0 is not None and util is not None and device is not None:
        implied = (util - u0) * device.total_bytes / GIB
        out.append(Check("CUDA graphs from the utilization equivalence",
                         f"(util {util} - {u0} without graph profiling) x total {device.total_bytes / GIB:.2f} GiB",
                         f"{implied:.3f} GiB", f"{est} GiB estimated" if est is not None else f"ours {mine:.3f} GiB",
                         None if est is None and not mine else abs(implied - (est if est is not None else mine)) <= 0.05))
    actual = _val(m, "cuda_graph_gib")
    if actual is not None and est is not None:
        out.append(Check("CUDA graph pool: actual against vLLM's estimate", "the capture after the KV cache",
                         f"{actual} GiB actual", f"{est} GiB estimated", None))
    return out


def _graph_notes(m: Figures) -> list[str]:
    """vLLM >= 0.21 profiles CUDA-graph memory before sizing the KV cache; vllm.py does not subtract it yet."""
    est, util = m.cuda_graph_estimated_gib, m.utilization_without_graphs
    if est is None and util is None:
        return []
    said = [f"estimated {est.value} GiB (line {est.line})"] if est is not None else []
    said += [f"--gpu-memory-utilization {util.value} without it (line {util.line})"] if util is not None else []
    return [f"this vLLM (>= 0.21) profiles CUDA-graph memory and takes it off the KV budget ({'; '.join(said)}); "
            "so do we (vllm_graphs: vLLM's capture sizes and modes, a calibrated per-graph figure)"]
