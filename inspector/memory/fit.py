"""Verdicts: does a scenario fit the GPU, by how much is it short, and which changes would make it fit.

"What would make it fit" is found by trying variants of the same scenario (a lower dtype, an fp8 KV
cache, more GPUs, a larger preset GPU, a shorter context; a ZeRO stage, offload, recomputation, LoRA
or QLoRA) and naming the first ones that fit, each with its figure.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple

from inspector.errors import InspectError
from inspector.inventory.accounting import Accounting
from inspector.memory.gpus import GIB, Gpu, gpu_presets
from inspector.memory.quant import KV_BYTES, SERVE_DTYPES, quantized_bytes
from inspector.units import n

if TYPE_CHECKING:  # serving's modules (vllm, parallel) load only when serving, training's when training
    from inspector.memory import serving as serve_mod
    from inspector.memory import training as train_mod

MAX_SUGGESTIONS = 4
# What the CUDA context and torch hold before vLLM's start-up check, which refuses a utilization whose
# share of the GPU exceeds the free memory ("Free memory on device (78.57/79.18 GiB) on startup is less
# than desired GPU memory utilization", vllm/v1/worker/gpu_worker.py init_device): 0.61 GiB in every
# H100 row of llm-d's table (vLLM v0.11.0; calibrated, and assumed the same on other GPUs).
STARTUP_USED_BYTES = int(0.61 * GIB)


class Verdict(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    fits: bool
    text: str
    suggestions: tuple[str, ...] = ()


def gib(x: float) -> str:
    return f"{x / GIB:.2f} GiB"


def _first(variants: Iterable[tuple[str, Callable[[], object]]], ok: Callable[[object], bool],
           figure: Callable[[object], str]) -> tuple[str, ...]:
    found: list[str] = []
    for label, make in variants:
        try:
            result = make()
        except InspectError:
            continue
        if ok(result):
            found.append(f"{label} ({figure(result)})")
        if len(found) == MAX_SUGGESTIONS:
            break
    return tuple(found)


# --------------------------------------------------------------------------- serving


def _serve_variants(acc: Accounting, gpu: Gpu, o: serve_mod.ServeOptions, context: bool):
    from inspector.memory import serving as serve_mod

    cheaper = [d for d in SERVE_DTYPES if quantized_bytes(4096, 4096, d) < quantized_bytes(4096, 4096, o.dtype)]
    if o.weights_bytes is None:
        for d in cheaper:
            yield f"--dtype {d}", lambda d=d: serve_mod.plan(acc, gpu, o._replace(dtype=d, dtype_given=True))
    if context and KV_BYTES[o.kv_dtype] > 1:
        yield "--kv-dtype fp8", lambda: serve_mod.plan(acc, gpu, o._replace(kv_dtype="fp8"))
    for g in gpu_presets():
        if g.total > gpu.total:
            yield f"--gpu {g.name}", lambda g=g: serve_mod.plan(acc, g, o)


def utilization_tip(acc: Accounting, s: serve_mod.Serving, ok: Callable[[object], bool]) -> str | None:
    """The smallest --gpu-memory-utilization (in steps of 0.01, up to what the free memory at start-up
    allows) at which `ok` holds, with its KV tokens; None when none does."""
    from inspector.memory import serving as serve_mod

    o = s.options
    if o.kv_cache_memory is not None:
        return None
    ceiling = int((s.gpu.total - STARTUP_USED_BYTES) / s.gpu.total * 100) / 100
    util = round(o.gpu_memory_utilization + 0.01, 2)
    while util <= ceiling:
        r = serve_mod.plan(acc, s.gpu, o._replace(gpu_memory_utilization=util), s.ranks)
        if ok(r):
            return f"--gpu-memory-utilization {util:g} ({n(r.kv_tokens)} tokens of KV cache; at most {ceiling:g}: " \
                   f"the CUDA context holds about {gib(STARTUP_USED_BYTES)} before vLLM starts)"
        util = round(util + 0.01, 2)
    return None


def _overcommitted(s: serve_mod.Serving) -> int:
    """--kv-cache-memory skips vLLM's check: the bytes by which weights, peak and the fixed KV budget
    exceed the GPU's total (0 when they do not)."""
    if s.options.kv_cache_memory is None:
        return 0
    return max(0, s.fixed + s.kv_available - s.gpu.total)


def _starts(s: serve_mod.Serving) -> bool:
    """vLLM starts: some KV blocks, one request of max_model_len fits the cache, and a fixed KV budget
    (--kv-cache-memory) fits beside the weights."""
    return s.num_blocks > 0 and s.one_request_bytes <= s.kv_available and not _overcommitted(s)


def smallest_layout(acc: Accounting, s: serve_mod.Serving) -> str | None:
    """"fits on 8 × H100-80GB with TP 8": the fewest GPUs (TP within a node, then PP) on which vLLM
    starts with these settings; None when no layout up to 16 nodes of 8 does (or --weights fixes the bytes)."""
    from inspector.memory import serving as serve_mod
    from inspector.memory.parallel import candidate_layouts
    from inspector.memory.parallel import smallest_layout as search

    o = s.options
    if o.weights_bytes is not None:
        return None
    # the largest rank holds at least its even share: layouts with fewer GPUs cannot fit (not tried)
    free = s.usable - s.activations - s.overhead.bytes
    least = serve_mod.total_weights(acc, o) / max(free, 1)
    layouts = [lay for lay in candidate_layouts(ep=o.ep) if lay.world >= least]

    def fits(ranks) -> bool:
        lay = ranks.layout
        return _starts(serve_mod.plan(acc, s.gpu, o._replace(tp=lay.tp, pp=lay.pp, ep=lay.ep), ranks))

    width = serve_mod.entry_width(o)[0]
    try:
        return search(acc, fits, s.gpu.name, layouts, width, KV_BYTES[o.kv_dtype])[1]
    except InspectError:
        return None


def _shortfall(acc: Accounting, s: serve_mod.Serving) -> str:
    o = s.options
    need = s.fixed + s.page_bytes * s.group_size
    what = "one token of KV cache" if s.groups else "the state of one sequence"  # no layer keeps a KV cache
    return (f"does not fit: {acc.spec.name} cannot hold even {what} on {_gpus(s)}: weights "
            f"{gib(s.weights.bytes)} + activation peak {gib(s.activations)} + non-torch {gib(s.overhead.bytes)} leave "
            f"{gib(max(s.kv_available, 0))} of the {gib(s.usable)} usable ({o.gpu_memory_utilization:g} × "
            f"{gib(s.gpu.total)}): short by {gib(need - s.usable)}")


def serving_verdict(acc: Accounting, s: serve_mod.Serving) -> Verdict:
    """Fits, or why not and what would: a cheaper dtype, an fp8 KV cache, a larger GPU, the smallest layout."""
    o, length = s.options, s.max_model_len
    if _starts(s):
        return Verdict(True, f"fits on {_gpus(s)}: {gib(s.kv_available)} left for the KV cache, {n(s.kv_tokens)} "
                             f"tokens, {s.concurrency:.2f}x requests of {n(length)} tokens at once")
    layout = smallest_layout(acc, s)
    where = f"; {layout}" if layout else ""
    if _overcommitted(s):
        return Verdict(False, f"does not fit: weights {gib(s.weights.bytes)} + activation peak {gib(s.activations)} "
                              f"+ non-torch {gib(s.overhead.bytes)} + --kv-cache-memory {gib(s.kv_available)} exceed "
                              f"the {gib(s.gpu.total)} of {s.gpu.name} by {gib(_overcommitted(s))}: vLLM would run "
                              "out of memory allocating the KV cache")
    if s.num_blocks == 0:
        util = utilization_tip(acc, s, _starts)
        tips = _first(_serve_variants(acc, s.gpu, o, False), lambda r: r.num_blocks > 0,
                      lambda r: f"{n(r.kv_tokens)} tokens of KV cache")
        tips = ((util,) if util else ()) + tips[:MAX_SUGGESTIONS - (1 if util else 0)]
        return Verdict(False, _shortfall(acc, s) + where, tips)
    util = utilization_tip(acc, s, _starts)
    tips = _first(_serve_variants(acc, s.gpu, o, True), lambda r: r.one_request_bytes <= r.kv_available,
                  lambda r: f"{r.concurrency:.2f}x at {n(length)} tokens")
    first = (f"--max-model-len {s.largest_context}",) + ((util,) if util else ())
    tips = first + tips[:MAX_SUGGESTIONS - len(first)]
    return Verdict(False, f"does not fit: the weights fit, but one request of max_model_len {n(length)} needs "
                          f"{gib(s.one_request_bytes)} of KV cache and {gib(s.kv_available)} is left: vLLM "
                          f"would refuse to start; the longest request that fits is {n(s.largest_context)} "
                          f"tokens{where}", tips)


def _gpus(s: serve_mod.Serving) -> str:
    lay = s.options.layout
    return f"{lay.world} × {s.gpu.name} ({lay.label()})" if lay.world > 1 else s.gpu.name


# --------------------------------------------------------------------------- training


def _train_variants(acc: Accounting, gpu: Gpu, o: train_mod.TrainOptions):
    from inspector.memory import training as train_mod

    def run(**changes):
        return lambda: train_mod.plan(acc, gpu, replace(o, **changes))

    if o.recompute != "full":
        yield "--recompute full", run(recompute="full")
    if o.mode == "full":
        for stage in (1, 2, 3):
            if stage > o.zero and o.gpus_per_node * o.nodes > 1:
                yield f"--zero {stage}", run(zero=stage)
        if o.offload != "optimizer+params":
            yield "--zero 3 --offload optimizer", run(zero=3, offload="optimizer")
            yield "--zero 3 --offload optimizer+params", run(zero=3, offload="optimizer+params")
        for gpus in (2, 4, 8):
            if gpus > o.gpus_per_node:
                yield f"--gpus {gpus} --zero 3", run(gpus_per_node=gpus, zero=3)
        yield "--train lora", run(mode="lora", zero=0, offload="none")
    if o.mode != "qlora":
        yield "--train qlora", run(mode="qlora", zero=0, offload="none")
    if o.seq_len > 512:
        yield f"--seq-len {o.seq_len // 2}", run(seq_len=o.seq_len // 2)


def training_verdict(acc: Accounting, tr: train_mod.Training) -> Verdict:
    total, cap = tr.per_gpu, tr.gpu.total  # torch's total: what max_memory_allocated can reach
    if total <= cap:
        return Verdict(True, f"fits: {gib(total)} per GPU of {gib(cap)} ({tr.gpu.name}, as torch reports it), "
                             f"{gib(cap - total)} to spare")
    tips = _first(_train_variants(acc, tr.gpu, tr.options), lambda r: r.per_gpu <= r.gpu.total,
                  lambda r: f"{gib(r.per_gpu)} per GPU")
    return Verdict(False, f"does not fit: {gib(total)} per GPU, {tr.gpu.name} has {gib(cap)} (as torch reports "
                          f"it): short by {gib(total - cap)}", tips)
