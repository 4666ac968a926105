"""Gemma 3n / Gemma 4 per-layer variation: layer-by-layer attention and MLP sizes, shared KV, PLE, AltUp.

`PerLayerSpec` is the sub-record of a TextSpec (`TextSpec.per_layer`) for the families whose layers are
not all alike (transformers 5.25 models/gemma3n and models/gemma4):

* per layer head_dim and kv heads: Gemma 4's full-attention layers use `global_head_dim` (default 512)
  and, with `attention_k_eq_v`, `num_global_key_value_heads`, and then keys double as values (no v_proj);
  transformers 5.25 writes the result as `per_layer_config` ({"05": {"head_dim": 512}, ...}), read first;
* KV sharing: the last `num_kv_shared_layers` layers compute no K/V; each attends to the K/V of the last
  earlier layer of its own type (transformers' `kv_sharing_modes`: "store" / "reuse"), so keeps no cache;
* per layer MLP width: Gemma 3n's `intermediate_size` list, Gemma 4's `use_double_wide_mlp` (2x in the
  KV-shared layers) and Gemma 3n's activation sparsity target per layer (`activation_sparsity_pattern`);
* per-layer inputs (PLE): a (vocab_size_per_layer_input, L x hidden_size_per_layer_input) embedding plus a
  projection of the token embedding, one hidden_size_per_layer_input slice per layer;
* Gemma 3n's AltUp (altup_num_inputs streams of width d) and LAuReL (a rank laurel_rank residual).
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.errors import InspectError
from inspector.spec.config_reader import ConfigReader
from inspector.spec.families import Family

# transformers Gemma4TextConfig.__post_init__: kwargs.pop("global_head_dim", 512)
GEMMA4_GLOBAL_HEAD_DIM = 512


@dataclass(frozen=True)
class PerLayerSpec:
    """What varies from layer to layer in Gemma 3n / Gemma 4, plus their per-layer extras (see the module doc)."""

    head_dims: tuple[int, ...]
    kv_heads: tuple[int, ...]
    kv_source: tuple[int, ...]  # per layer: the layer whose K/V it attends to (itself unless KV-shared)
    k_eq_v: tuple[bool, ...]  # per layer: V is the K projection (no v_proj)
    widths: tuple[int, ...]  # per layer: MLP intermediate size
    sparsity: tuple[float, ...]  # per layer: Gemma 3n's activation sparsity target (0: none)
    ple_vocab: int = 0  # per-layer input embedding rows (0: no per-layer inputs)
    ple_dim: int = 0  # per-layer input width per layer
    altup_inputs: int = 0  # AltUp streams (0: no AltUp / LAuReL)
    altup_active: int = 0  # the stream the layer computes on
    altup_correct_scale: bool = False  # the corrected active stream is scaled by correct_output_scale
    laurel_rank: int = 0
    v_norm: bool = False  # a weightless RMS norm of each value head
    unscaled_scores: bool = False  # scores are Q K^T (the q/k norms carry the scale)
    layer_scalar: bool = False  # Gemma 4: each layer's output times a stored (1,) buffer

    def is_shared(self, layer: int) -> bool:
        """A KV-shared layer: no K/V projections, no cache of its own."""
        return self.kv_source[layer] != layer


def _shared_sources(r: ConfigReader, types: tuple[str, ...], shared: int) -> tuple[int, ...]:
    """transformers' kv_sharing_modes: the last `shared` layers reuse the K/V of the last earlier layer of
    their own type (all layers at once is refused: nothing would compute K/V)."""
    layers = len(types)
    first = layers - shared
    if shared and first <= 0:
        raise r.fail("num_kv_shared_layers", f"must be below num_hidden_layers ({layers})", shared)
    sources = list(range(layers))
    for i in range(first, layers):
        earlier = [j for j in range(first) if types[j] == types[i]]
        if not earlier:
            raise r.fail("num_kv_shared_layers", f"leaves no earlier {types[i]} layer for layer {i} to share", shared)
        sources[i] = earlier[-1]
    return tuple(sources)


def _overrides(r: ConfigReader, layers: int) -> dict[int, dict]:
    """transformers 5.25's `per_layer_config` ({"05": {"head_dim": 512, ...}}) by layer index."""
    value = r.raw("per_layer_config")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise r.fail("per_layer_config", "must map layer indices to objects", value)
    out = {}
    for key, v in value.items():
        if not str(key).isdigit():
            raise r.fail("per_layer_config", "must map layer indices to objects", key)
        if int(key) < layers:
            out[int(key)] = v
    return out


def _attention_sizes(r: ConfigReader, family: Family, types: tuple[str, ...], head_dim: int,
                     kv_heads: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[bool, ...]]:
    """Per layer (head_dim, kv heads, keys double as values)."""
    layers = len(types)
    dims, kvs, k_eq_v = [head_dim] * layers, [kv_heads] * layers, [False] * layers
    if not family.global_heads:
        return tuple(dims), tuple(kvs), tuple(k_eq_v)
    eq = r.bool("attention_k_eq_v", False)
    overrides = _overrides(r, layers)
    for i, kind in enumerate(types):
        if kind != "full":
            continue
        o = ConfigReader(overrides.get(i, {}), r.where, r._field(f"per_layer_config.{i:02d}"))
        dims[i] = o.int("head_dim") if o.has("head_dim") else r.int("global_head_dim", GEMMA4_GLOBAL_HEAD_DIM)
        if o.has("num_key_value_heads"):
            kvs[i] = o.int("num_key_value_heads")
        elif eq and r.raw("num_global_key_value_heads") is not None:
            kvs[i] = r.int("num_global_key_value_heads")
        k_eq_v[i] = eq
    return tuple(dims), tuple(kvs), tuple(k_eq_v)


def _float_list(r: ConfigReader, key: str, layers: int) -> tuple[float, ...]:
    value = r.raw(key)
    if value is None:  # transformers Gemma3nTextConfig: 0.95 in the first 10 layers of a model deeper than 10
        return tuple(0.95 if i < 10 and layers > 10 else 0.0 for i in range(layers))
    values = value if isinstance(value, list) else [value] * layers
    if len(values) != layers or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                        and 0 <= v < 1 for v in values):
        raise r.fail(key, f"must list {layers} numbers in [0, 1)", value)
    return tuple(float(v) for v in values)


def _widths(r: ConfigReader, family: Family, layers: int, sources: tuple[int, ...]) -> tuple[int, ...]:
    value = r.raw("intermediate_size")
    if isinstance(value, list):
        if len(value) != layers:
            raise r.fail("intermediate_size", f"must be one number or {layers} of them", value)
        widths = [ConfigReader({"w": w}, r.where, r._field("intermediate_size")).int("w") for w in value]
    else:
        widths = [r.int("intermediate_size")] * layers
    if family.global_heads and r.bool("use_double_wide_mlp", False):  # Gemma 4: 2x in the KV-shared layers
        widths = [2 * w if sources[i] != i else w for i, w in enumerate(widths)]
    return tuple(widths)


def read_per_layer(r: ConfigReader, family: Family, types: tuple[str, ...], head_dim: int,
                   kv_heads: int) -> PerLayerSpec:
    """The per-layer record of a Gemma 3n / Gemma 4 config (`types`: each layer's "full" | "sliding")."""
    layers = len(types)
    sources = _shared_sources(r, types, r.first(("num_kv_shared_layers",), "int", family.defaults, 0, minimum=0))
    dims, kvs, k_eq_v = _attention_sizes(r, family, types, head_dim, kv_heads)
    for i, (kv, dim) in enumerate(zip(kvs, dims)):
        if r.int("num_attention_heads") % kv:
            raise InspectError(f"{r.where}: layer {i}: num_attention_heads is not a multiple of its {kv} kv heads")
        if dim % 2:
            raise InspectError(f"{r.where}: layer {i}: head_dim {dim} must be even (RoPE rotates pairs)")
    altup = family.altup
    ple_dim = r.first(("hidden_size_per_layer_input",), "int", family.defaults, 0, minimum=0)
    streams = r.first(("altup_num_inputs",), "int", family.defaults, 4) if altup else 0
    active = r.int("altup_active_idx", 0, minimum=0) if altup else 0
    if altup and active >= streams:
        raise r.fail("altup_active_idx", f"must be below altup_num_inputs ({streams})", active)
    return PerLayerSpec(
        head_dims=dims, kv_heads=kvs, kv_source=sources, k_eq_v=k_eq_v,
        widths=_widths(r, family, layers, sources),
        sparsity=_float_list(r, "activation_sparsity_pattern", layers) if altup else (0.0,) * layers,
        ple_vocab=r.first(("vocab_size_per_layer_input",), "int", family.defaults, 1) if ple_dim else 0,
        ple_dim=ple_dim,
        altup_inputs=streams, altup_active=active,
        altup_correct_scale=r.bool("altup_correct_scale", True) if altup else False,
        laurel_rank=r.first(("laurel_rank",), "int", family.defaults, 64) if altup else 0,
        v_norm=True, unscaled_scores=True, layer_scalar=family.layer_scalar,
    )
