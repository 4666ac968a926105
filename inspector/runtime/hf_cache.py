"""KV-cache and recurrent-state bytes of any model transformers builds, read from its own cache after a meta forward.

transformers (the `hf` extra) builds the model from its config on the meta device (no memory, no
weights: the same build as `params` uses for a model with no native family,
`inspector.inventory.transformers_meta`), runs a forward of a few tokens with `use_cache=True`, and
the cache object it returns (`outputs.cache`; `past_key_values` in transformers before 5.x) is read
layer by layer. Only shapes are read, never values. In transformers 5.25 (`cache_utils.py`,
`DYNAMIC_LAYER_TYPE_MAPPING`) a `DynamicCache` holds one layer object per decoder layer:

- `DynamicLayer` ("full_attention"): keys and values `[batch, kv_heads, tokens, head_dim]`
  (MLA models such as DeepSeek-V3 store the latent as keys and the RoPE key as values);
- `DynamicSlidingWindowLayer` ("sliding_attention", "chunked_attention"): the same, at most a window;
- `DynamicIndexedLayer` ("indexed_attention": DeepSeek-V3.2, GLM MoE DSA): keys, values and the
  sparse-attention indexer's keys `[batch, tokens, index_head_dim]`;
- `LinearAttentionLayer` ("linear_attention", "conv": Gated DeltaNet, Mamba2, short convolutions):
  no per-token cache, a fixed `conv_states` and `recurrent_states` per sequence;
- `LinearAttentionAndFullAttentionLayer` / `...SlidingWindowAttentionLayer` ("hybrid": Falcon-H1,
  whose layers run attention and Mamba side by side): both;
- `DummyLayer` ("moe", "mlp", or a layer that reuses another's KV): nothing.

Per-token KV bytes are exact at the requested width (`dtype_bytes`, bf16 = 2 by default): the
tensors' elements divided by the tokens they hold. State bytes are per sequence at the widths
transformers holds them in (it keeps SSM and GDN recurrent states in float32 even in a bf16 model);
`state_elements` gives the element counts to price them at another width.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

from inspector.errors import InspectError
from inspector.inventory.transformers_meta import MetaBuild, build_meta
from inspector.runtime.hf_run import (as_decoder, cache_argument, device_of, first_that_runs, on_meta_or_cpu, ran_on,
                                      variants)

TOKENS = 4  # tokens of the measuring forward: fewer than any real sliding window
KV_DTYPE_BYTES = 2  # bf16, the width vLLM and transformers default to for a bf16 model

# cache layer class name -> kind; a class not named here is read by its attributes.
KINDS = {
    "DynamicLayer": "full", "StaticLayer": "full",
    "DynamicSlidingWindowLayer": "sliding", "StaticSlidingWindowLayer": "sliding",
    "DynamicIndexedLayer": "indexed", "StaticIndexedLayer": "indexed",
    "LinearAttentionLayer": "linear",
    "LinearAttentionAndFullAttentionLayer": "hybrid", "LinearAttentionAndStaticFullAttentionLayer": "hybrid",
    "LinearAttentionAndSlidingWindowAttentionLayer": "hybrid_sliding",
    "LinearAttentionAndStaticSlidingWindowAttentionLayer": "hybrid_sliding",
    "DummyLayer": "none",
}


@dataclass(frozen=True)
class LayerCache:
    """One decoder layer's cache as transformers holds it."""

    index: int
    cache_class: str
    kind: str
    kv_elements_per_token: int  # keys + values (+ indexer keys) of one token of one sequence
    window: int | None  # tokens a sliding layer keeps at most (None: the whole context)
    state_bytes: int  # conv + recurrent state of one sequence, at transformers' widths
    state_elements: int
    state_shapes: tuple[tuple[str, tuple[int, ...], str], ...] = ()  # (name, shape for one sequence, dtype)
    kv_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()  # (name, shape after TOKENS tokens, batch 1)

    @property
    def keeps_kv(self) -> bool:
        return self.kv_elements_per_token > 0


@dataclass(frozen=True)
class KindSummary:
    """The layers of one kind (and one per-token size and window) and what each keeps."""

    kind: str
    cache_class: str
    layers: tuple[int, ...]
    kv_bytes_per_token: int  # per layer
    window: int | None
    state_bytes: int  # per layer, per sequence


@dataclass(frozen=True)
class CacheMeasure:
    """What a model's cache holds, measured from transformers' own cache after a meta forward."""

    model_type: str
    class_name: str
    transformers_version: str
    dtype_bytes: int
    layers: tuple[LayerCache, ...]
    seconds: float
    notes: tuple[str, ...] = field(default=())

    @property
    def keeps_cache(self) -> bool:
        """Whether any layer keeps KV or state for the next step (False: each step recomputes the prefix)."""
        return any(layer.kind != "none" for layer in self.layers)

    @property
    def kv_layers(self) -> int:
        return sum(1 for layer in self.layers if layer.keeps_kv)

    def kv_line(self) -> str:
        """'16 of 64 layers keep a KV cache' (or 'all 32 layers ...')."""
        n, m = self.kv_layers, len(self.layers)
        return f"all {m} layers keep a KV cache" if n == m else f"{n} of {m} layers keep a KV cache"

    def kv_bytes_per_token(self) -> int:
        """One token in every layer's cache, windows not applied (the cost of a short context)."""
        return sum(layer.kv_elements_per_token for layer in self.layers) * self.dtype_bytes

    def kv_bytes_per_sequence(self, context: int) -> int:
        """One sequence of `context` tokens: a sliding layer holds at most its window."""
        return self.dtype_bytes * sum(
            layer.kv_elements_per_token * min(context, layer.window or context) for layer in self.layers)

    def state_bytes_per_sequence(self) -> int:
        """The fixed conv + recurrent state of one sequence, over all layers."""
        return sum(layer.state_bytes for layer in self.layers)

    def by_kind(self) -> tuple[KindSummary, ...]:
        groups: dict[tuple, list[LayerCache]] = {}
        for layer in self.layers:
            key = (layer.kind, layer.cache_class, layer.kv_elements_per_token, layer.window, layer.state_bytes)
            groups.setdefault(key, []).append(layer)
        return tuple(KindSummary(kind, cls, tuple(x.index for x in members), per * self.dtype_bytes, window, state)
                     for (kind, cls, per, window, state), members in groups.items())


def _tensor_states(torch, layer, name: str) -> list[tuple[str, Any]]:
    """`conv_states` / `recurrent_states`: a dict of state index -> tensor (or list of tensors)."""
    states = getattr(layer, name, None)
    out = []
    if isinstance(states, dict):
        for key, value in states.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            out += [(f"{name}[{key}]", v) for v in values if isinstance(v, torch.Tensor)]
    elif isinstance(states, torch.Tensor):
        out.append((name, states))
    return out


def _kv_tensors(torch, layer) -> list[tuple[str, Any, int]]:
    """(name, tensor, its token axis) of the per-token tensors a cache layer holds; a tensor held
    twice is counted once (DeepSeek-V4's compressed-attention layers keep values as the keys)."""
    out = []
    for name, axis in (("keys", -2), ("values", -2), ("indexer_keys", 1)):
        t = getattr(layer, name, None)
        if isinstance(t, torch.Tensor) and t.dim() >= 3 and t.numel() > 0 and all(t is not o for _, o, _ in out):
            out.append((name, t, axis))
    return out


def _kind(layer, kv: list, states: list) -> str:
    """The kind of the first class in the layer's MRO that KINDS names (a model's own cache layer,
    such as DeepSeek-V4's compressed-attention ones, subclasses transformers'); a layer that holds
    nothing after the forward is "none" whatever its class."""
    if not kv and not states:
        return "none"
    named = next((KINDS[c.__name__] for c in type(layer).__mro__ if c.__name__ in KINDS), None)
    if named in ("none", None) or (named in ("full", "sliding", "indexed") and states):
        return "hybrid" if kv and states else "linear" if states else "full"
    return named


def _read_layer(torch, index: int, layer, extra: list[tuple[str, Any]]) -> LayerCache:
    """One cache layer; `extra` are state tensors the cache keeps for this layer outside it."""
    cls = type(layer).__name__ if layer is not None else "(none)"
    states = _tensor_states(torch, layer, "conv_states") + _tensor_states(torch, layer, "recurrent_states") + extra
    kv = _kv_tensors(torch, layer)
    kind = _kind(layer, kv, states)
    per_token = 0
    for _, t, axis in kv:
        if t.shape[0] != 1:
            raise InspectError(f"cache layer {index} ({cls}) holds a batch of {t.shape[0]}, not 1")
        per_token += t.numel() // t.shape[axis]
    window = getattr(layer, "sliding_window", None)
    window = int(window) if isinstance(window, int) and kind in ("sliding", "hybrid_sliding") else None
    state_bytes = sum(t.numel() * t.element_size() for _, t in states)
    return LayerCache(
        index, cls, kind, per_token, window, state_bytes, sum(t.numel() for _, t in states),
        tuple((n, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for n, t in states),
        tuple((n, tuple(t.shape)) for n, t, _ in kv))


def _side_states(torch, cache) -> dict[int, list[tuple[str, Any]]]:
    """Per-layer state a cache keeps in containers of its own beside (or instead of) its layers: a list
    indexed by layer (MiniMax's `MiniMaxCache.linear_cache`: the lightning-attention K^T V state of each
    linear layer) or a dict keyed by layer index holding tensors or tuples of them (xLSTM's
    `xLSTMCache.rnn_state`: each mLSTM layer's C, n and m)."""
    out: dict[int, list[tuple[str, Any]]] = {}
    for name, value in vars(cache).items():
        if name == "layers":
            continue
        if isinstance(value, list):
            items = list(enumerate(value))
        elif isinstance(value, dict) and value and all(isinstance(k, int) for k in value):
            items = sorted(value.items())
        else:
            continue
        for i, held in items:
            tensors = held if isinstance(held, (list, tuple)) else [held]
            for j, t in enumerate(tensors):
                if isinstance(t, torch.Tensor):
                    out.setdefault(i, []).append((name if held is t else f"{name}[{j}]", t))
    return out


GIVEN = ("read from the cache it is given: transformers' {cls} fills the cache object passed to its forward (as "
         "`generate` passes one) and returns none")


@dataclass
class Probe:
    """What one forward keeps: the cache object (returned, or the one given and filled), the other tensors it
    keeps for the next step (`hf_state.held_tensors`) and notes of how it ran."""

    cache: Any
    held: dict[str, Any]
    notes: tuple[str, ...]
    given: bool = False  # the cache is the one the forward was given (`give`)


def _forward(torch, model, tokens: int, sequences: int = 1, give: bool = False) -> Probe:
    """A forward of `tokens` tokens of `sequences` sequences with use_cache; its cache object (`give`: the cache
    it is given, filled, where it takes one), and what else it keeps. Where the mask code cannot run on meta,
    the other inputs that mean the same for unpadded sequences (`hf_run.variants`)."""
    from inspector.runtime import hf_state

    device = device_of(model)
    base = {"input_ids": torch.zeros(sequences, tokens, dtype=torch.long, device=device), "use_cache": True,
            "position_ids": torch.arange(tokens, device=device)[None].expand(sequences, tokens)}
    before = hf_state.module_tensors(torch, model)
    argument = cache_argument(model)
    given: list[Any] = [None] if give and argument is not None else []

    def call(kwargs: dict):
        if given:  # a fresh cache for each try: a failed try may have filled part of one
            given[:] = [hf_state.new_cache(model)]
            kwargs = {**kwargs, argument: given[0]}
        return model(**kwargs)

    with torch.no_grad():
        out, note = first_that_runs(call, variants(torch, model, base))
    cache = getattr(out, "cache", None)
    cache = getattr(out, "past_key_values", None) if cache is None else cache
    if cache is None and given:
        cache, note = given[0], "; ".join(x for x in (note, GIVEN.format(cls=type(model).__name__)) if x)
    return Probe(cache, hf_state.held_tensors(torch, model, out, before), (note,) if note else (),
                 bool(given) and cache is given[0])


def _read_cache(torch, cache, num_layers: int | None) -> tuple[LayerCache, ...]:
    """Every decoder layer's cache (a model with encoder and decoder caches: the decoder's), as
    many as the model has layers (a cache that made layer objects lazily may hold fewer)."""
    cache = getattr(cache, "self_attention_cache", cache)
    layers = getattr(cache, "layers", None)
    side = _side_states(torch, cache)
    if layers is None and not side:
        raise InspectError(f"transformers returned a {type(cache).__name__}, not a cache with layers")
    layers = layers or []
    count = max(len(layers), num_layers or 0, max(side, default=-1) + 1)
    read = [_read_layer(torch, i, layers[i] if i < len(layers) else None, side.get(i, [])) for i in range(count)]
    name = type(cache).__name__  # a layer the cache made no object for: its state is the cache's own
    return tuple(r if r.cache_class != "(none)" else replace(r, cache_class=name) for r in read)


def _num_layers(config) -> int | None:
    n = getattr(config.get_text_config(decoder=True), "num_hidden_layers", None)
    return n if isinstance(n, int) else None


def _cached(built: MetaBuild, tokens: int, give: bool = False) -> tuple[Probe, MetaBuild, tuple[str, ...]]:
    """The `_forward` of `tokens` tokens of the built model in bf16 (on the CPU where meta cannot run it:
    `hf_run.on_meta_or_cpu`), the build that ran it, and the notes of how it ran."""
    (probe, ran), more = on_meta_or_cpu(built, lambda b: (_forward(b.torch, b.model, tokens, give=give), b),
                                        built.torch.bfloat16)
    return probe, ran, more + probe.notes


HELD = ("kept for the next step outside a cache object: {names}; each tensor's elements told per token from per "
        "sequence by forwards of 4 and 8 tokens and of 2 sequences (shapes: exact)")
NO_CACHE_KEPT = ("transformers' {cls} keeps no cache: its forward takes none and keeps nothing for the next step, so "
                 "each decode step recomputes the whole prefix (KV 0 and state 0: exact)")


def _held_layer(index: int, held: list, cap: int | None) -> LayerCache:
    """One layer's record from the tensors hf_state found it keeps (KV-like per token, state per sequence)."""
    per_token = sum(h.per_token for h in held)
    fixed = [h for h in held if h.fixed]
    source = sorted({h.name.split("[")[0] if h.name.startswith("outputs.") else "module tensors" for h in held})
    kind = ("hybrid" if fixed else "sliding" if cap else "full") if per_token else "linear"
    return LayerCache(index, " + ".join(source), kind, per_token, cap if per_token else None,
                      sum(h.fixed * h.element_size for h in fixed), sum(h.fixed for h in fixed),
                      tuple((h.name, h.shape, h.dtype) for h in fixed if not h.per_token),
                      tuple((h.name, h.shape) for h in held if h.per_token))


def _merged(a: LayerCache, b: LayerCache) -> LayerCache:
    """A cache layer and the held tensors of the same layer, as one record."""
    if a.kind == "none" or b.kind == "none":
        return b if a.kind == "none" else a
    kind = a.kind if b.kind == "none" else "hybrid" if (a.state_bytes or b.state_bytes) else a.kind
    return replace(a, cache_class=f"{a.cache_class} + {b.cache_class}", kind=kind,
                   kv_elements_per_token=a.kv_elements_per_token + b.kv_elements_per_token,
                   state_bytes=a.state_bytes + b.state_bytes, state_elements=a.state_elements + b.state_elements,
                   state_shapes=a.state_shapes + b.state_shapes, kv_shapes=a.kv_shapes + b.kv_shapes)


Layers = tuple[LayerCache, ...]


def _held(ran: MetaBuild, layers: Layers, give: bool) -> tuple[Layers, tuple[str, ...]]:
    """`layers` (a cache's, or none) with what else the forward keeps (`hf_state`), measured by its PROBES."""
    from inspector.runtime import hf_state

    torch, n = ran.torch, _num_layers(ran.config)
    with ran.room(), torch.no_grad():
        probes = [_forward(torch, ran.model, tokens, sequences, give).held for sequences, tokens in hf_state.PROBES]
    found, left_out = hf_state.classify(torch, probes, n)
    found = [x for h in found for x in hf_state.split_by_layer(h, n)]
    if not found:
        return layers, ()
    cap, cap_note = hf_state.cap_of(ran.config) if any(h.per_token for h in found) else (None, "")
    notes = (HELD.format(names=", ".join(sorted({re.sub(r"\.\d+\.|\[\d+\]", lambda m: m[0][0] + "*" + m[0][-1],
                                                        h.name.split("[layer")[0]) for h in found}))),)
    notes += ((cap_note,) if cap_note else ()) + ((f"not a sequence's (do not grow with the sequences), left out: "
                                                   f"{', '.join(left_out)}",) if left_out else ())
    if any(h.layer is None for h in found):
        notes += ("tensors of no one layer counted on layer 0: " + ", ".join(h.name for h in found if h.layer is None),)
    by_layer: dict[int, list] = {}
    for h in found:
        by_layer.setdefault(h.layer or 0, []).append(h)
    count = max(len(layers), n or 0, max(by_layer) + 1)
    none = LayerCache(0, type(ran.model).__name__, "none", 0, None, 0, 0)
    out = tuple(_merged(layers[i] if i < len(layers) else replace(none, index=i),
                        _held_layer(i, by_layer[i], cap) if i in by_layer else replace(none, index=i))
                for i in range(count))
    return out, notes


def measure_cache(cfg: dict[str, Any], where: str = "config.json", dtype_bytes: int = KV_DTYPE_BYTES,
                  tokens: int = TOKENS, built: MetaBuild | None = None) -> CacheMeasure:
    """Build `cfg` with transformers on meta (or take `built`, the same build), run `tokens` tokens, and
    read its cache layer by layer, with whatever else it keeps for the next step (`_held`). A model that keeps
    nothing because its config says it is not a decoder (`is_decoder` false: BERT-like encoders that
    transformers also lists as causal LMs) is measured as the decoder transformers asks for to generate
    with it (`hf_run.as_decoder`), with a note; one that keeps nothing at all has no cache (KV 0, a note)."""
    built = built or build_meta(cfg, where)
    start = time.perf_counter()
    probe, ran, notes = _cached(built, tokens)
    decoder, note = as_decoder(built) if probe.cache is None and not probe.held else (None, "")
    if decoder is not None:
        got = _cached(decoder, tokens)
        if got[0].cache is not None or got[0].held:
            probe, ran, notes = got[0], got[1], (note, *got[2])
    if probe.cache is None and cache_argument(ran.model) is not None:
        probe, ran, notes = _cached(built, tokens, give=True)
    layers = () if probe.cache is None else _read_cache(ran.torch, probe.cache, _num_layers(ran.config))
    if probe.held and (probe.cache is None or probe.given):  # a cache it returns is all it keeps (as before)
        layers, more = _held(ran, layers, probe.given)
        notes += more
    if all(x.kind == "none" for x in layers):
        layers = layers or tuple(LayerCache(i, "(nothing kept)", "none", 0, None, 0, 0)
                                 for i in range(_num_layers(ran.config) or 0))
        notes += (NO_CACHE_KEPT.format(cls=type(ran.model).__name__),)
    return CacheMeasure(ran.model_type, type(ran.model).__name__, ran.transformers.__version__, dtype_bytes, layers,
                        built.seconds + time.perf_counter() - start, notes)


def describe(m: CacheMeasure, context: int) -> list[str]:
    """Lines for a report: per kind, then the totals at `context` tokens."""
    lines = [f"from transformers {m.transformers_version} {ran_on(m.notes)} ({m.class_name}): {m.kv_line()}"]
    for k in m.by_kind():
        what = []
        if k.kv_bytes_per_token:
            what.append(f"{k.kv_bytes_per_token:,} B KV per token" + (f" (window {k.window:,})" if k.window else ""))
        if k.state_bytes:
            what.append(f"{k.state_bytes:,} B state per sequence")
        lines.append(f"  {k.kind} ({k.cache_class}) x{len(k.layers)}: " + (", ".join(what) or "no cache"))
    lines.append(f"  per sequence of {context:,} tokens: {m.kv_bytes_per_sequence(context):,} B KV + "
                 f"{m.state_bytes_per_sequence():,} B state")
    return lines

