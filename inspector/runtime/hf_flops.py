"""FLOPs of any model transformers builds, counted by torch's FlopCounterMode around a meta-device forward.

The model is built on the meta device exactly as `params` and `hf_cache.measure_cache` build it for a
model with no native family (inspector.inventory.transformers_meta: guarded config, offline, eager
attention, bf16). torch.utils.flop_counter.FlopCounterMode counts the matmuls, convolutions and
attention kernels of the forward from shapes alone (parameters need no gradient: its module
tracker would hook them) (2 FLOPs per multiply-add, the full score matrix:
"as computed" in `inspect flops`' words), which the meta device gives without memory or values:

- prefill: one forward of `seq_len` tokens per sequence (`batch` sequences), logits at every position
  as transformers computes them by default;
- decode: transformers' own cache of `context` tokens (a short forward's cache grown to `context` tokens
  where its layers are transformers' plain ones, else a forward of all of them; not counted), then one
  token at position `context` read against it (counted). A model whose cached step cannot run on
  meta gets no decode figure and a note saying why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from inspector.errors import InspectError
from inspector.inventory.transformers_meta import MetaBuild, _first_line, build_meta
from inspector.runtime.hf_run import (as_decoder, cache_argument, device_of, first_that_runs, on_meta_or_cpu,
                                      variants)


@dataclass(frozen=True)
class FlopsMeasure:
    """FlopCounterMode's totals for a prefill and a decode step of a transformers model on meta."""

    model_type: str
    class_name: str
    transformers_version: str
    seq_len: int
    batch: int
    context: int
    prefill: int  # FLOPs of the prefill forward, all `batch` sequences
    prefill_head: int  # of which the output head (lm_head) over every position
    decode: int | None  # FLOPs of one decoded token per sequence at `context` cached tokens (None: not run)
    decode_head: int | None
    seconds: float
    notes: tuple[str, ...] = ()


def _head_flops(counts: dict[str, dict[Any, int]]) -> int:
    """FLOPs FlopCounterMode attributes to the output head (a module path ending in `lm_head`)."""
    return sum(sum(ops.values()) for name, ops in counts.items() if name.split(".")[-1] == "lm_head")


TOP_K_FIELDS = ("num_experts_per_tok", "num_experts_per_token", "moe_topk", "top_k", "moe_k")


def _top_k(config) -> int | None:
    text = config.get_text_config(decoder=True)
    for name in TOP_K_FIELDS:
        value = getattr(text, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _routed_per_token(model, config, counts: dict[str, dict[Any, int]]) -> tuple[int, tuple[str, ...]]:
    """FLOPs per token of the routed experts FlopCounterMode saw none of: on meta a router's choice has
    no values, so transformers' expert loop runs no expert. Each token runs top_k experts (assumed: no
    capacity drop), each 2 FLOPs per weight of one expert (stacked `[experts, out, in]` tensors)."""
    prefix, top_k, total, skipped = type(model).__name__, _top_k(config), 0, 0
    for name, module in model.named_modules():
        if not name.endswith("experts"):
            continue
        stacked = [p for p in module.parameters(recurse=False) if p.dim() == 3]
        if not stacked or sum(counts.get(f"{prefix}.{name}", {}).values()):
            continue
        if top_k is None:
            skipped += 1
            continue
        total += 2 * top_k * sum(p.numel() for p in stacked) // stacked[0].shape[0]
    notes = (f"routed experts added at top_k {top_k} per token (meta cannot route; FlopCounterMode saw the "
             "shared parts and the router only)",) if total else ()
    if skipped:
        notes += (f"{skipped} expert modules not counted: no top_k field in the config",)
    return total, notes


def _inputs(torch, batch: int, tokens: int, start: int = 0, device: Any = "meta") -> dict[str, Any]:
    return {"input_ids": torch.zeros(batch, tokens, dtype=torch.long, device=device),
            "position_ids": torch.arange(start, start + tokens, device=device)[None].expand(batch, tokens)}


def _counted(torch, model, kwargs: dict[str, Any]) -> tuple[int, int, Any]:
    """(total FLOPs, the head's, the output) of one forward under FlopCounterMode, the routed experts
    added (`_routed_per_token`; their notes kept on the model for the caller)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(**kwargs)
    counts = counter.get_flop_counts()
    routed, notes = _routed_per_token(model, model.config, counts)
    model.inspector_notes = notes
    return counter.get_total_flops() + routed * kwargs["input_ids"].numel(), _head_flops(counts), out


NO_CACHE_PREFILL = ("prefill run with use_cache false (transformers' forward with its cache does not run for this "
                    "config; keeping a cache costs no FLOPs); no decode figure")


def _run(torch, model, base: dict[str, Any], cached: int = 0, uncached: bool = False):
    """A counted forward with an all-ones mask over the `cached` + new tokens; where the mask code cannot
    run on meta, the other inputs that mean the same for unpadded sequences (`hf_run.variants`: no mask, a
    prepared 4-D mask), as hf_cache does; `uncached`: then without a cache (a prefill: the same FLOPs).
    (total FLOPs, the head's, the output, notes)."""
    tries = variants(torch, model, base, cached)
    if uncached:
        tries += [({**kwargs, "use_cache": False}, note or NO_CACHE_PREFILL) for kwargs, note in tries]
    (flops, head, out), note = first_that_runs(lambda kwargs: _counted(torch, model, kwargs), tries)
    return flops, head, out, (note,) if note else ()


def _cache_argument(model) -> str:
    """`cache` (transformers 5.25 renamed it; `past_key_values` is deprecated there) or `past_key_values`."""
    return cache_argument(model) or "past_key_values"


FILL = 4  # tokens of the short forward whose cache is grown to the context (`_grown`)
GROWN = {"DynamicLayer": False, "DynamicSlidingWindowLayer": True, "DynamicIndexedLayer": False,
         "LinearAttentionLayer": None, "DummyLayer": None, "LinearAttentionAndFullAttentionLayer": False,
         "LinearAttentionAndSlidingWindowAttentionLayer": True}  # class -> capped at its window (None: nothing per token)


def _grown(torch, cache, context: int) -> bool:
    """Grow each layer of a cache filled with FILL tokens to `context` tokens, as meta tensors: keys, values
    (and an indexer's keys) along their token axis, a sliding layer to its window - 1 and its count of tokens
    seen to `context`. Only transformers' own layer classes above, whose only bookkeeping is that count; any
    other cache (or a count that does not read `context` afterwards) returns False: the slow fill is used."""
    layers = getattr(cache, "layers", None)
    if type(cache).__name__ != "DynamicCache" or not layers or any(type(x).__name__ not in GROWN for x in layers):
        return False
    for layer in layers:
        sliding = GROWN[type(layer).__name__]
        if sliding is None:
            continue
        tokens = min(context, layer.sliding_window - 1) if sliding else context
        for name, axis in (("keys", -2), ("values", -2), ("indexer_keys", 1)):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor) and t.dim() >= 3:
                shape = list(t.shape)
                shape[axis] = tokens
                setattr(layer, name, torch.zeros(shape, dtype=t.dtype, device=t.device))
        if sliding:
            layer.cumulative_length = context
    return all(x.get_seq_length() == context for x in layers if GROWN[type(x).__name__] is not None)


def _filled(torch, model, batch: int, context: int):
    device = device_of(model)
    """transformers' cache after `context` tokens: a forward of FILL tokens grown (`_grown`; a model whose
    recurrent layers loop per token on meta, such as Mamba1's reference scan, fills in seconds), else a
    forward of all `context` tokens."""
    if context > FILL:
        _, _, out, _ = _run(torch, model, {**_inputs(torch, batch, FILL, 0, device), "use_cache": True})
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        if cache is not None and _grown(torch, cache, context):
            return cache
    _, _, out, _ = _run(torch, model, {**_inputs(torch, batch, context, 0, device), "use_cache": True})
    return getattr(out, "cache", None) or getattr(out, "past_key_values", None)


NO_CACHE = "no decode figure: transformers returned no cache"


def _decode(torch, model, batch: int, context: int) -> tuple[int | None, int | None, tuple[str, ...]]:
    """One token at position `context` against transformers' cache of `context` tokens (`_filled`)."""
    try:
        cache = _filled(torch, model, batch, context)
        if cache is None:
            return None, None, (NO_CACHE,)
        step = {**_inputs(torch, batch, 1, context, device_of(model)), "use_cache": True, _cache_argument(model): cache}
        flops, head, _, notes = _run(torch, model, step, context)
        return flops, head, notes
    except Exception as e:  # a model's cached step may need values meta has not
        return None, None, (f"no decode figure: transformers' cached step does not run on meta: {_first_line(e)}",)


def _decoder_step(built: MetaBuild, batch: int, context: int, notes: tuple[str, ...]):
    """The decode step of a model that keeps no cache because its config says it is not a decoder, measured
    as the decoder transformers asks for to generate with it (`hf_run.as_decoder`; hf_cache does the same)."""
    decoder, note = as_decoder(built)
    if decoder is None:
        return None, None, notes
    torch = decoder.torch
    try:
        (decode, head, more), _ = on_meta_or_cpu(decoder, lambda b: _decode(torch, b.model, batch, context),
                                                 torch.bfloat16)
    except InspectError:
        return None, None, notes
    return decode, head, ((note + " (the decode step)",) if decode is not None else ()) + more


def _both(b: MetaBuild, batch: int, seq_len: int, context: int):
    """(prefill FLOPs, its head's, notes, decode FLOPs, its head's, notes, routed-expert notes) of b's model."""
    torch, model = b.torch, b.model
    prefill, head, _, notes = _run(torch, model, {**_inputs(torch, batch, seq_len, 0, device_of(model)),
                                                  "use_cache": True}, uncached=True)
    routed = getattr(model, "inspector_notes", ())
    decode, decode_head, more = (None, None, ()) if NO_CACHE_PREFILL in notes else \
        _decode(torch, model, batch, context)
    return prefill, head, notes, decode, decode_head, more, routed


RECOMPUTE = ("transformers' {cls} keeps no cache: each decode step recomputes the whole prefix, so the decode figure "
             "is a forward of the context + 1 tokens without a cache (as `generate` runs it; counted)")
KEPT_STEP = ("decode step: one token against what a forward of the context kept for the next step ({names}), "
             "passed back as the forward takes it")
DROPS_CACHED = ("decode step given every id with the cache: transformers' {cls} drops the ids its cache already "
                "holds (one new token's logits, checked)")


def _one_position(out, new: int) -> None:
    """A decode step must compute the new tokens' logits (not none, not the whole context again)."""
    logits = getattr(out, "logits", None)
    if logits is not None and logits.shape[-2] != new:
        raise InspectError(f"the step computed {logits.shape[-2]} positions' logits for {new} new token(s)")


def _kept_step(torch, model, batch: int, context: int) -> tuple[int | None, int | None, tuple[str, ...]]:
    """The decode step of a model that returns no cache: against what a forward of `context` tokens kept (the
    cache it is given and fills, outputs its forward takes back, its modules' tensors: `hf_state`); where it
    keeps nothing, a forward of `context` + 1 tokens (transformers' `generate` recomputes the prefix)."""
    from inspector.runtime import hf_state

    device, argument, cls = device_of(model), cache_argument(model), type(model).__name__
    given = hf_state.new_cache(model) if argument else None
    before = hf_state.module_tensors(torch, model)
    fill = {**_inputs(torch, batch, context, 0, device), "use_cache": True, **({argument: given} if given else {})}
    _, _, out, _ = _run(torch, model, fill)
    carried = {**hf_state.carried_outputs(model, out), **({argument: given} if _holds(torch, given) else {})}
    names = sorted(carried) + (["module tensors"] if hf_state.held_tensors(torch, model, None, before) else [])
    if not names:
        flops, head, _, notes = _run(torch, model, {**_inputs(torch, batch, context + 1, 0, device),
                                                    "use_cache": False})
        return flops, head, (RECOMPUTE.format(cls=cls), *notes)
    step = {**_inputs(torch, batch, 1, context, device), "use_cache": True, **carried}
    whole = {**_inputs(torch, batch, context + 1, 0, device), "use_cache": True, **carried}
    try:
        flops, head, out, notes = _run(torch, model, step, context)
        _one_position(out, 1)
        return flops, head, (KEPT_STEP.format(names=", ".join(names)), *notes)
    except Exception:
        if argument not in carried:
            raise
    flops, head, out, notes = _run(torch, model, whole, context)
    _one_position(out, 1)
    return flops, head, (KEPT_STEP.format(names=", ".join(names)), DROPS_CACHED.format(cls=cls), *notes)


def _holds(torch, cache) -> bool:
    """Whether a cache given to a forward holds any token after it."""
    return cache is not None and any(isinstance(getattr(x, "keys", None), torch.Tensor) and x.keys.numel()
                                     for x in getattr(cache, "layers", ()))


def _other_step(built: MetaBuild, batch: int, context: int):
    """`_kept_step` on meta or the CPU twin; no figure, and why, where it cannot run."""
    torch = built.torch
    try:
        (decode, head, more), where_run = on_meta_or_cpu(built, lambda b: _kept_step(torch, b.model, batch, context),
                                                         torch.bfloat16)
    except InspectError as e:
        return None, None, (f"no decode figure: {e}",)
    return decode, head, where_run + more


def measure_flops(cfg: dict[str, Any], where: str, seq_len: int, context: int, batch: int = 1,
                  built: MetaBuild | None = None) -> FlopsMeasure:
    """Build `cfg` on meta with transformers (or take `built`, the same build) and count a prefill of
    `seq_len` tokens and one decoded token at `context` cached tokens, `batch` sequences each (on the CPU
    with zero weights where meta cannot run the forward: `hf_run.on_meta_or_cpu`)."""
    built = built or build_meta(cfg, where)
    torch, model = built.torch, built.model
    start = time.perf_counter()
    (prefill, head, notes, decode, decode_head, more, routed), where_run = on_meta_or_cpu(
        built, lambda b: _both(b, batch, seq_len, context), torch.bfloat16)
    if more == (NO_CACHE,):
        decode, decode_head, more = _decoder_step(built, batch, context, more)
    if decode is None and more == (NO_CACHE,):
        decode, decode_head, more = _other_step(built, batch, context)
    notes = where_run + notes + routed
    return FlopsMeasure(built.model_type, type(model).__name__, built.transformers.__version__, seq_len, batch,
                        context, prefill, head, decode, decode_head, built.seconds + time.perf_counter() - start,
                        tuple(dict.fromkeys(notes + more)))
