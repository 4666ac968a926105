"""Matching stored tensors to the expected inventory, whatever layout the checkpoint uses.

One logical tensor can be stored under other names and shapes; each rule here is a documented
layout, not a guess:
  * the base-model prefix may be absent (GPT-2's own checkpoints store `h.0.attn.c_attn.weight`,
    not `transformer.h.0...`) or present where the inventory has none: tried for every name;
  * routed experts stored per expert (`mlp.experts.3.gate_proj.weight`, the published layout) or
    stacked: transformers 5's fused `mlp.experts.gate_up_proj` (E, 2I, H) / `down_proj` (E, H, I),
    or GGUF's `blk.N.ffn_gate_exps.weight` (E, I, H); a stacked tensor covers the per-expert
    entries of its layer and its shape is checked against them;
  * quantized weights: a packed tensor stands for its logical weight (shape checked against the
    method's layout) and its side tensors (scales, zeros, g_idx, blocks) are quantization tensors,
    not parameters (inspector.checkpoint.quantization).
Optional entries (DeepSeek-V3's multi-token-prediction layer) may be present or absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from inspector.checkpoint.gguf_hf import gguf_moe_role
from inspector.checkpoint.quantization import PACKED, QuantScheme, classify, packed_shape, side_shape
from inspector.checkpoint.records import TensorInfo
from inspector.inventory.entry import WeightEntry

if TYPE_CHECKING:
    from inspector.inventory.accounting import Origin

Stored = tuple[str, TensorInfo]  # (name in the file, header)
_FUSED = re.compile(r"\.layers\.(\d{1,9})\..*experts\.(gate_up_proj|down_proj)$")
_FUSED_ROLES = {"gate_up_proj": ("expert_gate", "expert_up"), "down_proj": ("expert_down",)}


@dataclass(frozen=True)
class Finding:
    name: str  # the expected (Hugging Face) name; for a tensor not expected, its own name
    status: str
    expected: tuple[int, ...] | None = None
    actual: tuple[int, ...] | None = None
    dtype: str | None = None
    stored_name: str | None = None  # the name in the file when it differs
    stored_shape: tuple[int, ...] | None = None  # GGUF dimension order, as stored
    note: str = ""  # how it is stored: packed, stacked experts, quantization part
    params: int = 0  # logical parameters it holds
    nbytes: int = 0
    entries: tuple[str, ...] = ()  # the expected entries whose stored bytes it holds (its own, a side
    #                                tensor's base weight, a stack's experts); () for one not expected


@dataclass(frozen=True)
class Expected:
    """What a checkpoint should hold: the inventory, plus what is needed to read other layouts."""

    name: str
    architecture: str
    entries: list[WeightEntry]
    origin: Origin | None = None
    config_dtype: str | None = None
    quantization: object = None  # config.json's quantization_config, unparsed
    role_name: Callable[[str, int, str], str] | None = None  # (role, layer, suffix) -> name (native)


def _prefixes(entries: list[WeightEntry]) -> set[str]:
    """The base-model prefixes of the layers' names ("model.", "transformer.", "gpt_neox.")."""
    return {e.name.split(".", 1)[0] + "." for e in entries if e.layer is not None and "." in e.name}


class _Targets:
    """Expected names not yet found, reachable with or without the base-model prefix."""

    def __init__(self, entries: list[WeightEntry]) -> None:
        self.by_name = {e.name: e for e in entries}
        self.prefixes = _prefixes(entries)
        self.hits: dict[str, tuple[str, TensorInfo, str | None]] = {}
        # per-expert entries by (layer, role): a stacked tensor finds its layer's experts in one look-up
        self.experts: dict[tuple[int, str], list[WeightEntry]] = {}
        for e in entries:
            if e.expert is not None and e.layer is not None:
                self.experts.setdefault((e.layer, e.role), []).append(e)

    def find(self, name: str, found_too: bool = False) -> str | None:
        candidates = [name, *(p + name for p in self.prefixes),
                      *(name[len(p):] for p in self.prefixes if name.startswith(p))]
        return next((c for c in candidates if c in self.by_name and (found_too or c not in self.hits)), None)


def _shape_ok(e: WeightEntry, info: TensorInfo, scheme: QuantScheme | None) -> tuple[bool, tuple | None, str]:
    """(matches, expected shape to report, note) for a tensor stored under the entry's own name."""
    if tuple(info.shape) == e.shape:
        return True, e.shape, ""
    if scheme is not None and scheme.method == "bitsandbytes" and scheme.bits == 4:
        want = packed_shape(scheme, "bnb4", e.shape)
        return tuple(info.shape) == want, want, f"{scheme.description}, packed"
    return False, e.shape, ""


def _entry_finding(e: WeightEntry, hit, scheme: QuantScheme | None) -> Finding:
    if hit is None:
        status = "tied" if not e.stored else ("optional-absent" if e.optional else "missing")
        return Finding(e.name, status, e.shape)
    stored, info, part = hit
    if part is not None:  # a packed quantized weight
        want = packed_shape(scheme, part, e.shape)
        ok, note = tuple(info.shape) == want, f"{scheme.description}, packed as {stored.rsplit('.', 1)[-1]}"
    else:
        ok, want, note = _shape_ok(e, info, scheme)
    status = ("tied-stored" if not e.stored else "ok") if ok else "shape"
    params = (e.numel if e.parameter else 0) if ok else info.numel
    return _found(e.name, status, e.shape if ok else want, stored, info, note, params, (e.name,))


def _found(name: str, status: str, expected, stored: str, info: TensorInfo, note: str = "",
           params: int = 0, entries: tuple[str, ...] = ()) -> Finding:
    return Finding(name, status, tuple(expected) if expected is not None else None, tuple(info.shape),
                   info.dtype, stored if stored != name else None,
                   tuple(info.stored_shape) if info.stored_shape else None, note, params, info.nbytes, entries)


def _stack_roles(name: str, stored: str) -> tuple[int, tuple[str, ...]] | None:
    gguf = gguf_moe_role(stored)
    if gguf is not None and gguf[2]:
        return gguf[0], (gguf[1],)
    m = _FUSED.search(name)
    return (int(m.group(1)), _FUSED_ROLES[m.group(2)]) if m else None


def _stack(name: str, stored: str, info: TensorInfo, t: _Targets) -> tuple[str, Finding] | None:
    """(first entry covered, finding) for a stacked-experts tensor covering the per-expert entries
    of its layer; None when it covers none."""
    found = _stack_roles(name, stored)
    if found is None:
        return None
    layer, roles = found
    covered = [e for r in roles for e in t.experts.get((layer, f"{r}.weight"), ()) if e.name not in t.hits]
    if not covered:
        return None
    experts = len({e.expert for e in covered})
    rows = sum(next(e.shape[0] for e in covered if e.role == f"{r}.weight") for r in roles)
    want = (experts, rows, covered[0].shape[1])
    for e in covered:
        t.hits[e.name] = (stored, info, "stack")
    ok = tuple(info.shape) == want
    note = f"{experts} experts' {' + '.join(r.removeprefix('expert_') for r in roles)} stacked"
    return covered[0].name, _found(name, "ok" if ok else "shape", want, stored, info, note,
                                   sum(e.numel for e in covered) if ok else info.numel,
                                   tuple(e.name for e in covered))


def match(exp: Expected, actual: dict[str, Stored], scheme: QuantScheme | None, is_buffer) -> list[Finding]:
    """Findings for every expected entry and every stored tensor, in inventory order."""
    t = _Targets(exp.entries)
    sides: dict[str, list[tuple[str, TensorInfo, str]]] = {}
    rest: dict[str, Stored] = {}
    for name, (stored, info) in actual.items():
        target = t.find(name)
        if target is not None:
            t.hits[target] = (stored, info, None)
            continue
        kind = classify(scheme, name) if scheme is not None else None
        base = t.find(kind[0], found_too=True) if kind else None
        if base is not None and kind[1] == PACKED and base not in t.hits:
            t.hits[base] = (stored, info, kind[2])
        elif base is not None:
            sides.setdefault(base, []).append((stored, info, kind[2]))
        else:
            rest[name] = (stored, info)
    stacks: dict[str, Finding] = {}
    for name, (stored, info) in list(rest.items()):
        found = _stack(name, stored, info, t)
        if found is not None:
            stacks[found[0]] = found[1]
            del rest[name]
    out: list[Finding] = []
    for e in exp.entries:
        hit = t.hits.get(e.name)
        if hit is not None and hit[2] == "stack":
            if e.name in stacks:
                out.append(stacks[e.name])
            continue
        out.append(_entry_finding(e, hit, scheme))
        for stored, info, part in sides.get(e.name, ()):
            want = side_shape(scheme, part, e.shape)
            ok = want is None or tuple(info.shape) == want
            out.append(_found(stored, "quantization" if ok else "shape", want, stored, info,
                              f"{scheme.description}: {part} of {e.name}", entries=(e.name,)))
    for name, (stored, info) in rest.items():
        buffer = is_buffer(stored)
        out.append(_found(name, "buffer" if buffer else "unexpected", None, stored, info,
                          params=0 if buffer else info.numel))
    return out
