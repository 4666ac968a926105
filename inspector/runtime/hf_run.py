"""The ways one forward of a transformers model is tried on the meta device, each answering the same shapes.

`memory` (hf_cache), `flops` (hf_flops) and `trace` (hf_trace) run a model with no native family on
the meta device, where tensors have shapes and no values. transformers' mask code sometimes reads
values (`Tensor.item()`: is the 2-D mask all ones, are the positions packed sequences), and a cache
made of recurrent layers only cannot size a mask at all ("`get_mask_sizes` can only be called on
Attention layers", transformers 5.25 `cache_utils.py`). For one unpadded sequence (what every measure
here runs) the following inputs mean the same thing, and are tried in this order, the first that
runs answering (its note says which; when none runs, the first one's error is reported):

1. an all-ones 2-D mask `[batch, cached + new]` and positions `cached .. cached + new - 1`;
2. no mask (transformers makes the causal mask from the sizes alone);
3. a prepared 4-D additive mask `[batch, 1, new, cached + new]` of zeros in the model's dtype, which
   transformers' `_preprocess_mask_arguments` (masking_utils.py) passes through as it is, before any
   value is read or the cache is asked for sizes; an eager attention slices it to its keys and adds it
   (additions are no FLOPs to FlopCounterMode; on meta it has no values: only its shape matters);
4. (only where no cache is wanted: `trace`) the ids alone, with transformers' default positions.

Where none of these runs because of the meta device itself (a value read: `.item()`, `.tolist()` of
MoE routing counts; an operator with no meta kernel such as `aten::_unique2`; a tensor made on the CPU
by the model's own code), the forward runs on the CPU instead (`cpu_twin`): the same class built from
the same config, every weight a zero of the model's dtype seen at its full shape through a stride-0
view (no memory), buffers zero. Nothing here reads a value back: shapes and FLOPs are those of the
full model at its full size (no layer is left out, nothing is scaled); only code that routes by
values sees equal scores (MoE routers: every token still takes top_k experts), said in a note.

The shapes of every tensor a forward makes, the cache's included, depend on these inputs' shapes
only; so the figures read after any of them are exact for the model (a test runs tries 1 and 3 on
models where both run and compares the caches and FLOPs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from inspector.errors import InspectError
from inspector.inventory.transformers_meta import MetaBuild, _build, _first_line, build_meta

NO_MASK = "run without an attention mask (its mask code reads values, which meta has not)"
MASK_4D = ("run with a prepared 4-D attention mask (transformers' mask code reads values or asks a cache of "
           "recurrent layers only for mask sizes, which meta cannot answer)")
IDS_ALONE = ("run with the ids alone: no cache, attention mask or position ids (the fuller forward does not "
             "run on meta; transformers' default positions 0..N-1)")


def variants(torch, model, base: dict[str, Any], cached: int = 0, ids_alone: bool = False) -> list[tuple[dict, str]]:
    """(keyword arguments, note) of each try, in order. `base` holds `input_ids` ([batch, new]) and whatever
    else every try passes (`position_ids`, `use_cache`, a cache); `cached` tokens are already in the cache."""
    batch, new = base["input_ids"].shape[:2]
    kv, device = cached + new, base["input_ids"].device
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    out = [({**base, "attention_mask": torch.ones(batch, kv, dtype=torch.long, device=device)}, ""),
           ({**base, "attention_mask": None}, NO_MASK),
           ({**base, "attention_mask": torch.zeros(batch, 1, new, kv, dtype=dtype, device=device)}, MASK_4D)]
    if ids_alone:
        out.append(({"input_ids": base["input_ids"], "use_cache": False}, IDS_ALONE))
    return out


def first_that_runs(call: Callable[[dict], Any], tries: list[tuple[dict, str]]) -> tuple[Any, str]:
    """`call(kwargs)` for each try until one returns; (its result, its note). transformers raises many
    exception types from a forward meta cannot run; when every try fails, the first one's is raised."""
    first: BaseException | None = None
    for kwargs, note in tries:
        try:
            return call(kwargs), note
        except Exception as e:
            first = first or e
    assert first is not None, "no tries"
    raise first


def as_decoder(built: MetaBuild) -> tuple[MetaBuild | None, str]:
    """The same config built with `is_decoder` true, where it says false (None otherwise), and the note.
    transformers' BERT-like classes that its causal-LM mapping lists (BertLMHeadModel, RobertaForCausalLM,
    ...) are encoders while `is_decoder` is false: they keep no cache, and transformers warns that they must
    be decoders to be used as causal LMs. `is_decoder` adds no weight (`add_cross_attention` would)."""
    if getattr(built.config, "is_decoder", None) is not False:
        return None, ""
    decoder = build_meta({**built.cfg, "is_decoder": True}, built.where)
    return decoder, (f"measured as a decoder (is_decoder true): as config.json has it (is_decoder false) "
                     f"transformers' {type(built.model).__name__} is an encoder and keeps no cache")


# assumed (no source: a bound on the time a CPU forward takes here, about 30 s for JetMoE's 4.3 B at 128 tokens on
# one core): a model over this many parameters whose forward meta cannot run is refused rather than run on the CPU.
CPU_MAX_PARAMS = 10_000_000_000
CPU_NOTE = "run on the CPU with every weight zero"


def device_of(model):
    """Where the model's weights are (meta, or the CPU for a `cpu_twin`): where its inputs are made."""
    return next(model.parameters()).device


def _zeroed(torch, model, dtype) -> None:
    """Every parameter a stride-0 view of one zero (full shape, no memory), every buffer a zero tensor."""
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None:
                width = dtype if p.is_floating_point() else p.dtype
                module._parameters[name] = torch.nn.Parameter(torch.zeros((), dtype=width).expand(p.shape),
                                                              requires_grad=False)
        for name, b in list(module._buffers.items()):
            if b is not None:
                module._buffers[name] = torch.zeros(b.shape, dtype=dtype if b.is_floating_point() else b.dtype)


def cpu_twin(built: MetaBuild, dtype) -> tuple[MetaBuild, str]:
    """The built model again, on the CPU with zero weights that take no memory (`_zeroed`), in `dtype`."""
    torch = built.torch
    with torch.device("meta"):
        model = _build(built.transformers, built.config, built.cfg)
    params = sum(p.numel() for p in model.parameters())
    if params > CPU_MAX_PARAMS:
        raise InspectError(f"{params:,} parameters, over the CPU twin's bound of {CPU_MAX_PARAMS:,} (assumed)")
    _zeroed(torch, model, dtype)
    model.eval()
    note = (f"{CPU_NOTE} (stride-0 views of the full shapes, no memory): the meta device "
            "cannot run this forward; the shapes, cache and FLOPs are those of the full model (nothing scaled); "
            "a router sees equal scores and still sends every token to its top_k experts")
    return replace(built, model=model), note


def meta_only(e: BaseException) -> bool:
    """An error of the meta device itself (a value read, no meta kernel, a CPU tensor met), not of the model."""
    return "meta" in str(e).lower()


def ran_on(notes: tuple[str, ...]) -> str:
    """Where the forward that answered ran, in the path line's words: the CPU twin's note says it was the CPU."""
    return "on the CPU with zero weights" if any(n.startswith(CPU_NOTE) for n in notes) else "on the meta device"


def cache_argument(model) -> str | None:
    """The argument a model's forward takes a cache by: `cache` (transformers 5.25 renamed it), else
    `past_key_values`, else None (a forward that takes none)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in params), None)


def _same(a: BaseException, b: BaseException) -> bool:
    return type(a) is type(b) and _first_line(a) == _first_line(b)


def _both_failed(built: MetaBuild, first: BaseException, second: BaseException) -> InspectError:
    """One line for a forward that neither meta nor the CPU twin runs. The same error on both is the model's or
    its config's, not the device's: the line says so rather than blame meta."""
    version, kind = built.transformers.__version__, built.model_type
    if isinstance(second, InspectError):
        return InspectError(f"{built.failed(first)}; {second}")
    if _same(first, second):
        return InspectError(f"{built.where}: transformers {version} cannot run {kind} from this config on any device "
                            f"(the same error on the meta device and on the CPU): {_first_line(first)}")
    return InspectError(f"{built.failed(first)}; nor on the CPU: {_first_line(second)}")


TWIN_NOT_USED = ("the same forward runs on the CPU with zero weights, but its figures are not used where meta fails "
                 "for a reason other than the device (they could depend on the weights' values)")


def on_meta_or_cpu(built: MetaBuild, run: Callable[[MetaBuild], Any], dtype) -> tuple[Any, tuple[str, ...]]:
    """`run(built)` with the model in `dtype` on meta; where that fails because of the device (`meta_only`: value
    reads, kernels meta lacks, CPU tensors the model makes), `run` of the model's `cpu_twin`, with its note. An
    error that does not name the device is run on the twin too, only to word the one line: the same error there
    is the model's or its config's, not the device's (`_both_failed`); the twin's answer is not used then."""
    torch = built.torch
    with built.room():
        try:
            built.model.to(dtype).eval().requires_grad_(False)
            return run(built), ()
        except InspectError as e:  # our own refusal: the device does not change it
            raise built.failed(e) from None
        except Exception as e:
            first = e
        try:
            twin, note = cpu_twin(built, dtype)
        except InspectError as bound:
            tail = f"; nor on the CPU instead: {bound}" if meta_only(first) else f" (not tried on the CPU: {bound})"
            raise InspectError(f"{built.failed(first)}{tail}") from None
        try:
            with torch.no_grad():
                answer = run(twin), (note,)
        except Exception as e:
            raise _both_failed(built, first, e) from None
        if not meta_only(first):  # the twin answers only for the device's own limits, which it was checked on
            raise InspectError(f"{built.failed(first)}; {TWIN_NOT_USED}") from None
        return answer
