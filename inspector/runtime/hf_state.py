"""What a transformers forward keeps for the next step besides a returned cache, told apart by forwards of two lengths.

Some models that transformers 5.25 lists as causal LMs return no cache object, yet keep what their next
step needs elsewhere: RWKV returns its recurrent state as `outputs.state`, which its forward takes back
as `state`; XLNet returns its memory as `outputs.mems` (taken back as `mems`); RecurrentGemma keeps its
convolution and recurrent states as tensors on its modules (`conv1d_state`, `rg_lru.recurrent_states`)
and, like XLM, fills the cache it is given with its attention layers' keys and values but returns none
(transformers' `generate` passes one and reads it back). This module finds such tensors after a forward:

- the output fields whose name the forward takes as an argument (what the caller passes back), and
- tensors held on the model's modules that the forward set (new or replaced objects, not parameters),

and tells per-token ones (they grow with the tokens: KV-like) from per-sequence ones (fixed: state) by
three forwards of the same model: 4 and 8 tokens of one sequence and 4 tokens of two sequences. A tensor's
elements must be `sequences x (a x tokens + c)`: `a` elements per token, `c` per sequence. One that does
not scale with the sequences is no sequence's (a table a module keeps for itself) and is left out; one
that fits neither form is refused (no figure rather than a guess). Only shapes are read: every figure
is exact for the inputs' sizes, except a cap on a growing tensor that a config field sets (`CAP_FIELDS`),
which is read from the config and marked assumed.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from inspector.errors import InspectError

PROBES = ((1, 4), (1, 8), (2, 4))  # (sequences, tokens) of the three forwards; the first is the measure's own
SKIP_OUTPUTS = ("loss", "logits", "cache", "past_key_values")  # a cache is read by hf_cache; the rest are no state

# config field -> what caps a growing tensor at its value (assumed: read from the config, not measured there):
# transformers 5.25 modeling_xlnet.py `XLNetModel.cache_mem` keeps `torch.cat([prev_mem, curr_out])[-mem_len:]`
CAP_FIELDS = {"mem_len": "transformers keeps the last mem_len hidden states of each layer (XLNet's cache_mem)"}


@dataclass(frozen=True)
class Held:
    """One tensor the forward keeps for the next step, per sequence, at the first probe (one sequence, 4 tokens)."""

    name: str
    layer: int | None  # the decoder layer it belongs to (None: not attributable)
    per_token: int  # elements per token of one sequence (0: a fixed state)
    fixed: int  # elements per sequence that do not grow
    shape: tuple[int, ...]  # at the first probe
    dtype: str
    element_size: int


def carried_outputs(model, out) -> dict[str, Any]:
    """The fields of a forward's output that the forward takes back as arguments (not a cache object)."""
    if not hasattr(out, "keys"):
        return {}
    takes = inspect.signature(model.forward).parameters
    return {k: out[k] for k in out.keys() if k in takes and k not in SKIP_OUTPUTS and out[k] is not None}


def module_tensors(torch, model) -> dict[str, int]:
    """Every plain tensor (not a parameter) held on a module, by qualified name -> the object's id."""
    out = {}
    for path, module in model.named_modules():
        held = {**module._buffers, **{k: v for k, v in vars(module).items() if not k.startswith("_")}}
        for attr, value in held.items():
            if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter):
                out[f"{path}.{attr}" if path else attr] = id(value)
    return out


def _tensor_at(model, name: str):
    path, _, attr = name.rpartition(".")
    module = model.get_submodule(path) if path else model
    return module._buffers.get(attr) if attr in module._buffers else getattr(module, attr)


def held_tensors(torch, model, out, before: dict[str, int]) -> dict[str, Any]:
    """What the forward left for the next step: carried outputs (flattened: `state[0]`, `mems[3]`) and the
    module tensors it set (absent from `before` or another object than before)."""
    found: dict[str, Any] = {}
    for key, value in carried_outputs(model, out).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for i, t in enumerate(values):
            if isinstance(t, torch.Tensor):
                found[f"outputs.{key}" if value is t else f"outputs.{key}[{i}]"] = t
    for name, ident in module_tensors(torch, model).items():
        if before.get(name) != ident:
            found[name] = _tensor_at(model, name)
    return found


def _layer(name: str, count: int, num_layers: int | None) -> int | None:
    """The layer a held tensor belongs to: its index in an output list as long as the layers, or the first
    number in its module path."""
    if name.startswith("outputs."):
        if "[" in name and count == num_layers:
            return int(name.rsplit("[", 1)[1].rstrip("]"))
        return None
    return next((int(part) for part in name.split(".") if part.isdigit()), None)


def classify(torch, probes: list[dict[str, Any]], num_layers: int | None) -> tuple[list[Held], list[str]]:
    """The held tensors of the PROBES forwards, per token and per sequence; names left out (not per sequence)."""
    first, longer, two = probes
    lists: dict[str, int] = {}
    for name in first:
        if name.startswith("outputs.") and "[" in name:
            lists[name.split("[")[0]] = lists.get(name.split("[")[0], 0) + 1
    kept, left_out = [], []
    for name, t in first.items():
        if name not in longer or name not in two:
            raise InspectError(f"{name} is kept after one forward and not after another: no figure")
        n1, n2, nb = t.numel(), longer[name].numel(), two[name].numel()
        if nb != 2 * n1:
            left_out.append(name)
            continue
        tokens = PROBES[1][1] - PROBES[0][1]
        if n2 < n1 or (n2 - n1) % tokens or n1 < (n2 - n1) // tokens * PROBES[0][1]:
            raise InspectError(f"{name} holds {n1:,} then {n2:,} elements after {PROBES[0][1]} and "
                               f"{PROBES[1][1]} tokens: neither per token nor per sequence")
        per_token = (n2 - n1) // tokens
        kept.append(Held(name, _layer(name, lists.get(name.split("[")[0], 0), num_layers), per_token,
                         n1 - per_token * PROBES[0][1], tuple(t.shape), str(t.dtype).removeprefix("torch."),
                         t.element_size()))
    return kept, left_out


def split_by_layer(held: Held, num_layers: int | None) -> list[Held]:
    """A tensor of no one layer with exactly one axis as long as the layers (RWKV's `state[i]`:
    `[batch, hidden, layers]`) is each layer's slice along it; any other stays whole."""
    if held.layer is not None or not num_layers:
        return [held]
    axes = [i for i, n in enumerate(held.shape) if n == num_layers and i > 0]
    if len(axes) != 1:
        return [held]
    shape = held.shape[:axes[0]] + held.shape[axes[0] + 1:]
    return [Held(f"{held.name}[layer {i}]", i, held.per_token // num_layers, held.fixed // num_layers, shape,
                 held.dtype, held.element_size) for i in range(num_layers)]


def cap_of(config) -> tuple[int | None, str]:
    """A config field that caps a growing held tensor (`CAP_FIELDS`), with its note; (None, "") if none."""
    for field, why in CAP_FIELDS.items():
        value = getattr(config, field, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value, f"window {value:,} tokens from config.json's {field}: {why} (assumed: not measured there)"
    return None, ""


def new_cache(model):
    """The cache transformers' `generate` gives a model: a DynamicCache made from its config (one made lazily
    where the config cannot size one)."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except Exception:
        return DynamicCache()
