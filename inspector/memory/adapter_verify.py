"""`inspect verify --adapter`: a LoRA adapter's file checked tensor by tensor against what its config and the base predict.

`check_adapter(files, acc)` takes the adapter as read (inspector.checkpoint.adapter) and the base's
accounting, and returns an `AdapterResult` of `Finding`s (the records `inspect verify` reports):
ok, missing (a predicted tensor the file lacks), unexpected (a tensor nothing predicts: a module
the base lacks, or one the config does not name), shape (a wrong rank, or the base's in/out
differs), and the config's names that match no module of the base. A GGUF LoRA (llama.cpp) names
tensors `<gguf tensor>.lora_a` (r, in) / `.lora_b` (out, r); they are mapped to Hugging Face module
names with inspector.checkpoint.gguf_hf, and the prediction is the same with the file's own ranks
(a GGUF adapter has no target list: every module it holds is checked against the base).
"""

from __future__ import annotations

import re
from itertools import permutations
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from inspector.checkpoint.matching import Finding
from inspector.checkpoint.records import TensorInfo
from inspector.errors import InspectError
from inspector.memory.adapter import (PREFIX, AdapterConfig, Plan, Planned, expert_groups, expert_tensors,
                                      parse_config, plan)
from inspector.memory.modules import runtime_modules

if TYPE_CHECKING:
    from inspector.checkpoint.adapter import AdapterFiles
    from inspector.inventory.accounting import Accounting

FAILING = ("missing", "unexpected", "shape")
_LORA_SUFFIXES = (".lora_A.weight", ".lora_B.weight", ".lora_B.bias", ".lora_magnitude_vector",
                  ".lora_embedding_A", ".lora_embedding_B", ".base_layer.weight")


@dataclass
class AdapterResult:
    adapter: str
    format: str  # "peft" | "gguf"
    base: str
    architecture: str | None
    config: AdapterConfig
    findings: list[Finding] = field(default_factory=list)
    absent_targets: list[str] = field(default_factory=list)
    trainable: int = 0  # peft's get_nb_trainable_parameters()[0], predicted from config and base
    stored_trainable: int = 0  # the same count over the file's tensors
    base_params: int = 0
    stored_bytes: int = 0
    copies: list[tuple[str, int, int]] = field(default_factory=list)  # modules_to_save: (module, params, bytes)
    ranks: dict[str, list[str]] = field(default_factory=dict)  # "r=8, alpha=16" -> modules
    notes: list[str] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)  # what the config and the base predict
    merged_params: int = 0  # the base with the adapter merged in: a copied tied head becomes its own

    def count(self, status: str) -> int:
        return sum(1 for f in self.findings if f.status == status)

    @property
    def ok(self) -> bool:
        return not self.absent_targets and not any(f.status in FAILING for f in self.findings)


# llama.cpp keeps the token embedding's LoRA A transposed: convert_lora_to_gguf.py writes `lora_a.T` for
# "token_embd.weight" (numpy (num, r), ggml ne [r, num]), and src/llama-adapter.cpp checks, for a name that ends
# in "token_embd.weight", model ne[0] == b.ne[1] and model ne[1] == a.ne[1] (see llm_build_inp_embd)
# (https://github.com/ggml-org/llama.cpp/blob/master/convert_lora_to_gguf.py, .../src/llama-adapter.cpp).
GGUF_EMBEDDING = "token_embd.weight"
EMBEDDING_NOTE = "stored transposed, (num, r), as llama.cpp keeps token_embd's lora_a; shown as peft's (r, num)"
EMBEDDING_REFUSED = ("llama.cpp expects token_embd's lora_a transposed, (num, r) (convert_lora_to_gguf.py "
                     "writes lora_a.T); shown here un-transposed, as peft's (r, num)")


def _module_of(name: str) -> str:
    """The base module path a stored adapter key belongs to."""
    body = name[len(PREFIX):] if name.startswith(PREFIX) else name
    for suffix in _LORA_SUFFIXES:
        if body.endswith(suffix):
            body = body[: -len(suffix)]
            break
    while body.endswith(".base_layer"):
        body = body[: -len(".base_layer")]
    return body


def _why_unexpected(name: str, known: set[str], weights: dict[str, Any]) -> str:
    module = _module_of(name)
    if module not in known and name[len(PREFIX):] not in weights:
        return f"the base has no module {module}"
    return "not predicted by adapter_config.json (target_modules, modules_to_save, rank)"


def _finding(p: Planned, info: TensorInfo | None, stored_name: str | None) -> Finding:
    if info is None:
        return Finding(p.name, "missing", p.shape, note=_note(p))
    status = "ok" if tuple(info.shape) == p.shape else "shape"
    note = _note(p)
    if status == "shape" and p.kind in ("lora_A", "lora_B") and len(info.shape) == 2:
        found = info.shape[0] if p.kind == "lora_A" else info.shape[1]
        if found != p.shape[0 if p.kind == "lora_A" else 1]:
            note = f"rank {found}; the config says r={p.rank}"
    return Finding(p.name, status, p.shape, tuple(info.shape), info.quant or info.dtype, stored_name, note=note,
                   params=info.numel, nbytes=info.nbytes)


def _note(p: Planned) -> str:
    return {"copy": f"modules_to_save: a full copy of {p.module}", "base_layer": "the embedding itself "
            "(peft's save_embedding_layers): not trainable", "magnitude": "DoRA magnitude"}.get(p.kind, "")


def _compare(pl: Plan, stored: dict[str, tuple[str, TensorInfo]], known: set[str],
             weights: dict[str, Any]) -> list[Finding]:
    findings, seen = [], set()
    for p in pl.tensors:
        name, info = stored.get(p.name, (None, None))
        if info is None and p.kind == "base_layer":
            continue  # peft stores the embedding only when it decides to (save_embedding_layers="auto")
        seen.add(p.name)
        findings.append(_finding(p, info, name if name != p.name else None))
    for key, (name, info) in stored.items():
        if key not in seen:
            findings.append(Finding(key, "unexpected", None, tuple(info.shape), info.quant or info.dtype,
                                    name if name != key else None, note=_why_unexpected(key, known, weights),
                                    params=info.numel, nbytes=info.nbytes))
    return findings


def _orient_experts(c: AdapterConfig, pl: Plan, modules: list, stored: dict[str, Any]) -> Plan:
    """Each experts module's wrapping order that the file bears out (peft keeps no order: see
    inspector.memory.adapter.expert_tensors); at most 4 parameters per module, 24 orders."""
    tensors = list(pl.tensors)
    for parent, ms in expert_groups(c, modules).items():
        if not 1 < len(ms) <= 4:
            continue
        first = expert_tensors(c, parent, ms)
        best = max((expert_tensors(c, parent, list(order)) for order in permutations(ms)),
                   key=lambda ts: sum(1 for t in ts if t.name in stored and tuple(stored[t.name][1].shape) == t.shape))
        where = tensors.index(first[0])
        tensors[where: where + len(first)] = best
    return replace(pl, tensors=tensors)


def _ranks(pl: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in pl.tensors:
        if p.kind == "lora_A":
            out.setdefault(f"r={p.rank}, alpha={p.alpha:g}", []).append(p.module)
    return out


def check_adapter(files: AdapterFiles, acc: Accounting, base: str) -> AdapterResult:
    """The adapter's file against the prediction of its config on the base `acc` (named `base`)."""
    if acc.spec.text is None:
        raise InspectError(f"{base}: no native inventory for this architecture; adapters are checked against "
                           "native families only (see `inspect presets`)")
    modules = runtime_modules(acc)
    weights = {e.name: tuple(e.shape) for e in acc.entries if e.parameter}
    stored = _stored(files, acc)
    cfg = files.config if files.format == "peft" else _gguf_config(files, stored)
    c = parse_config(cfg)
    pl = _orient_experts(c, plan(c, modules, weights), modules, stored)
    r = AdapterResult(files.path, files.format, base, acc.spec.architecture, c)
    r.findings = _compare(pl, stored, {m.path for m in modules}, weights)
    if files.format == "gguf":  # the rank comes from the file's lora_a, not from a config
        r.findings = [_gguf_note(f) for f in r.findings]
    r.absent_targets, r.trainable, r.ranks = pl.absent_targets, pl.trainable, _ranks(pl)
    trainable = {p.name for p in pl.tensors if p.trainable}
    r.stored_trainable = sum(f.params for f in r.findings if f.name in trainable and f.actual is not None)
    r.base_params, r.stored_bytes = acc.totals.total_params, files.headers.total_bytes
    r.copies = [(p.module, f.params, f.nbytes) for p in pl.tensors if p.kind == "copy"
                for f in r.findings if f.name == p.name and f.actual is not None]
    r.planned, r.notes = pl.tensors, _notes(r, files)
    tied = {m.path for m in modules if m.output_embedding} if acc.totals.tied_embeddings else set()
    r.merged_params = r.base_params + sum(p.params for p in pl.tensors if p.kind == "copy" and p.module in tied)
    return r


def _gguf_note(f: Finding) -> Finding:
    """A GGUF LoRA's finding: its rank is its lora_a's; the embedding's lora_a is shown as peft's (r, num)
    and said to be stored transposed, or, not transposed, that llama.cpp refuses it."""
    note = f.note.replace("the config says r=", "its lora_a has rank ")
    if f.stored_name and f.stored_name.endswith(GGUF_EMBEDDING + ".lora_a"):
        untransposed = f.status == "shape" and f.actual is not None and tuple(f.actual[::-1]) == tuple(f.expected)
        note = "; ".join(x for x in (note, EMBEDDING_REFUSED if untransposed else EMBEDDING_NOTE) if x)
    return replace(f, note=note)


def _notes(r: AdapterResult, files: AdapterFiles) -> list[str]:
    notes = []
    if r.copies:
        params = sum(p for _, p, _ in r.copies)
        nbytes = sum(b for _, _, b in r.copies)
        share = 100 * nbytes / r.stored_bytes if r.stored_bytes else 0
        notes.append(f"modules_to_save stores full copies of {', '.join(m for m, _, _ in r.copies)}: {params:,} "
                     f"parameters, {nbytes:,} bytes ({share:.0f}% of the file)")
    if r.format == "gguf":
        notes.append("a GGUF LoRA carries no target list: the modules it holds are checked against the base, "
                     "each lora_b against its lora_a's rank")
    if r.config.rslora:
        notes.append("use_rslora: the scale is alpha/sqrt(r), not alpha/r")
    return notes


def _stored(files: AdapterFiles, acc: Accounting) -> dict[str, tuple[str, TensorInfo]]:
    """The file's tensors keyed by peft's names (a GGUF LoRA's mapped onto them)."""
    if files.format == "peft":
        return {n: (n, t) for n, t in files.headers.tensors.items()}
    from inspector.checkpoint.gguf_hf import gguf_name_map

    t = acc.spec.text
    mapping = gguf_name_map(t.num_layers, files.config.get("general.architecture") or "llama")
    prefix = next((e.name[: e.name.find("model.")] for e in acc.entries if "model." in e.name), "")
    out = {}
    for name, info in files.headers.tensors.items():
        base, _, part = name.rpartition(".")
        hf = mapping.get(base)
        if part not in ("lora_a", "lora_b") or hf is None:
            out[name] = (name, info)
            continue
        module = prefix + hf[: -len(".weight")] if hf.endswith(".weight") else prefix + hf
        if base.endswith(GGUF_EMBEDDING):  # peft's lora_embedding_A/B; lora_a stored transposed, (num, r)
            if part == "lora_a" and len(info.shape) == 2:
                info = replace(info, shape=info.shape[::-1], stored_shape=info.shape)
            out[PREFIX + module + (".lora_embedding_A" if part == "lora_a" else ".lora_embedding_B")] = (name, info)
            continue
        out[PREFIX + module + (".lora_A.weight" if part == "lora_a" else ".lora_B.weight")] = (name, info)
    return out


def _gguf_config(files: AdapterFiles, stored: dict[str, tuple[str, TensorInfo]]) -> dict[str, Any]:
    """peft's keys for a GGUF LoRA: its modules as full names, each lora_a's rank as rank_pattern."""
    modules, ranks = [], {}
    for key, (_, info) in stored.items():
        suffix = next((x for x in (".lora_A.weight", ".lora_embedding_A") if key.endswith(x)), None)
        if suffix is not None and info.shape:
            module = key[len(PREFIX): -len(suffix)]
            modules.append(module)
            b = stored.get(PREFIX + module + ".lora_embedding_B", (None, None))[1]
            # the embedding's rank from its lora_b (dim, r), which llama.cpp stores as peft does
            ranks[re.escape(module)] = b.shape[-1] if suffix == ".lora_embedding_A" and b and b.shape else info.shape[0]
    alpha = files.config.get("lora_alpha")
    return {"r": max(ranks.values(), default=1), "lora_alpha": alpha if isinstance(alpha, (int, float)) and alpha > 0
            else 1, "target_modules": modules, "rank_pattern": ranks}


__all__ = ["AdapterResult", "check_adapter"]
