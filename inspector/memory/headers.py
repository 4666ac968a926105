"""Weights per tensor from the checkpoint's own headers (local, Hub or GGUF), matched to the model as `verify` does.

`checkpoint_at_hand(src, weights)` finds the headers `inspect memory` can read without the tensor
data: --weights PATH, a safetensors or GGUF file named as MODEL, a local MODEL directory holding
safetensors (an index or *.safetensors), or a Hub id (bounded range reads of each shard's header,
inspector.checkpoint.hub). A preset reads none (no I/O, no network). `header_widths(acc, cfg,
headers, label)` maps the header tensors to the accounting's entries with inspector.checkpoint's
matching (the one `inspect verify` uses: prefixes, stacked experts, packed quantized weights and
their scales, zeros and g_idx) and gives each entry its stored bytes per element, so the per-rank
plan (inspector.memory.parallel) splits each tensor as vLLM does.

What vLLM loads, and so what counts (vLLM allocates the parameters its model class defines, at
start-up, from the config; the checkpoint only fills them):
  * a tensor stored in F32/F64 that is not a quantization part counts 2 B per element: vLLM's
    `--dtype auto` loads 32-bit checkpoints in 16 bits (vllm/config.py, ModelConfig's `dtype`
    docs: "auto" uses FP16 for FP32 and FP16 models, BF16 for BF16 models);
  * packed quantized weights and their side tensors (scales, zeros, g_idx, MX blocks) count as stored;
  * stored tensors the model does not define (buffers such as rotary inv_freq, a multi-token-
    prediction layer the accounting does not know, AutoGPTQ's zero biases) are not counted:
    vLLM's load_weights skips them; the multi-token-prediction layer the accounting knows is left
    out as everywhere (loaded only for speculative decoding);
  * an LM head stored although the config ties it is not counted (vLLM skips lm_head.weight when
    tied): the head counts at its embedding's width.
A checkpoint that does not hold what the config promises (a missing tensor, another shape, an index
that disagrees with its shards) is not used per tensor: `HeaderMismatch` says what, in one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspector.errors import InspectError
from inspector.inventory.accounting import Accounting
from inspector.inventory.entry import MTP

if TYPE_CHECKING:
    from inspector.checkpoint.records import CheckpointHeaders
    from inspector.memory.serving import StoredWidths

SIXTEEN_BITS = 2  # bytes per element vLLM's --dtype auto gives a 32-bit float tensor (see the docstring)
WIDE_FLOATS = ("F32", "F64")
COUNTED = ("ok", "quantization")  # findings whose bytes vLLM loads into an entry the model defines


class HeaderMismatch(InspectError):
    """The headers do not hold what config.json promises (one line naming the first tensors)."""


@dataclass(frozen=True)
class AtHand:
    """A checkpoint's headers and how to name them ("safetensors headers of hub:org/name"), or why
    none were read (`headers` None; `why` empty: nothing at hand, e.g. a preset)."""

    headers: CheckpointHeaders | None
    label: str = ""
    why: str = ""


def _has_safetensors(directory: Path) -> bool:
    from inspector.checkpoint.sharded import INDEX_NAME

    return os.path.lexists(directory / INDEX_NAME) or any(directory.glob("*.safetensors"))


def _kind(headers: CheckpointHeaders) -> str:
    return "GGUF header" if headers.format == "gguf" else "safetensors headers"


def checkpoint_at_hand(src: Any, weights: Path | None) -> AtHand:
    """The headers of --weights (its errors are the user's: they propagate), else of the checkpoint
    MODEL names or holds; a local directory's or a Hub repo's that cannot be read is a stated
    fallback (`why`), never an error."""
    if weights is None and src.kind == "preset":  # a preset has no files (and reads no network)
        return AtHand(None)
    from inspector.checkpoint.open import open_checkpoint

    if weights is not None:
        headers = open_checkpoint(weights)
        return AtHand(headers, f"{_kind(headers)} of {weights}")
    if src.opened is not None:  # a GGUF file named as MODEL, parsed once
        return AtHand(src.opened.headers, f"GGUF header of {src.checkpoint}")
    where, read = None, None
    if src.kind == "local" and (src.checkpoint is not None or _has_safetensors(src.directory)):
        where = src.checkpoint or src.directory
        read = lambda: open_checkpoint(where)  # noqa: E731
    elif src.kind == "hub":
        from inspector.checkpoint.hub import read_hub_headers

        where = f"hub:{src.hub_id}"
        read = lambda: read_hub_headers(src.hub_id)  # noqa: E731
    if read is None:
        return AtHand(None)
    try:
        headers = read()
    except InspectError as exc:
        return AtHand(None, f"{where}", f"headers of {where} not read ({exc})")
    return AtHand(headers, f"{_kind(headers)} of {where}")


def _expected(acc: Accounting, cfg: dict[str, Any]):
    from inspector.checkpoint.verify import native_expected

    return native_expected(acc.spec, acc.entries, acc.origin, cfg)


def _mismatch(result, headers: CheckpointHeaders, label: str) -> str | None:
    """One line saying how the headers differ from the config's inventory; None when they hold it."""
    missing = [f.name for f in result.findings if f.status == "missing"]
    shape = [f"{f.name} {list(f.actual or ())} (expected {list(f.expected or ())})"
             for f in result.findings if f.status == "shape"]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensor{'s' * (len(missing) != 1)} of config.json missing ({', '.join(missing[:2])}"
                     f"{', ...' if len(missing) > 2 else ''})")
    if shape:
        parts.append(f"{len(shape)} of another shape ({shape[0]}{', ...' if len(shape) > 1 else ''})")
    if headers.problems:
        parts.append(f"{len(headers.problems)} index problems ({headers.problems[0]})")
    return f"{label} do not match config.json: {'; '.join(parts)}" if parts else None


@dataclass
class _Bytes:
    """Stored bytes per entry, the parts kept whole under a TP split (serving.kept_bytes), and how many
    32-bit float tensors count at 16 bits."""

    per_entry: dict[str, float]
    kept: dict[str, tuple[float, float]]
    narrowed: int = 0


def _entry_bytes(acc: Accounting, findings, desc_act: bool) -> _Bytes:
    """Each entry's stored bytes (a stack's bytes shared by its experts' elements)."""
    from inspector.memory.serving import kept_bytes

    entries = {e.name: e for e in acc.entries}
    out = _Bytes({}, {})
    for f in findings:
        if f.status not in COUNTED or not f.entries:
            continue
        numel = sum(entries[n].numel for n in f.entries) or 1
        nbytes = f.nbytes
        if f.status == "ok" and f.dtype in WIDE_FLOATS:
            nbytes, out.narrowed = SIXTEEN_BITS * numel, out.narrowed + 1
        for name in f.entries:
            out.per_entry[name] = out.per_entry.get(name, 0.0) + nbytes * entries[name].numel / numel
        if f.status == "quantization" and len(f.entries) == 1:
            e = entries[f.entries[0]]
            by_in, by_out = kept_bytes(e.shape, f.stored_name or f.name, tuple(f.actual or ()), nbytes, desc_act)
            was = out.kept.get(e.name, (0, 0))
            out.kept[e.name] = (was[0] + by_in, was[1] + by_out)
    return out


def _label(findings) -> str:
    """The stored dtypes of what counts, largest share first ("F8_E4M3 + BF16 + F32")."""
    by: dict[str, int] = {}
    for f in findings:
        if f.status in COUNTED and f.entries and f.dtype:
            by[f.dtype] = by.get(f.dtype, 0) + f.nbytes
    return " + ".join(sorted(by, key=lambda d: -by[d]))


def _skipped_note(findings, acc: Accounting) -> list[str]:
    notes = []
    rest = [f for f in findings if f.status in ("unexpected", "buffer", "tied-stored")]
    if rest:
        notes.append(f"{len(rest)} stored tensors the model does not define or share ({sum(f.nbytes for f in rest):,} B, "
                     f"e.g. {rest[0].stored_name or rest[0].name}) are not counted: vLLM allocates the weights its "
                     "model class defines and its load_weights skips the rest")
    mtp = {e.name for e in acc.entries if e.component == MTP}
    mtp_bytes = sum(f.nbytes for f in findings if f.status in COUNTED and set(f.entries) & mtp)
    if mtp_bytes:
        notes.append(f"the multi-token-prediction layer ({mtp_bytes:,} B stored) is not counted: vLLM loads it only "
                     "for speculative decoding")
    return notes


def header_widths(acc: Accounting, cfg: dict[str, Any], headers: CheckpointHeaders, label: str) -> StoredWidths:
    """Bytes per element of each entry as the headers store it (a StoredWidths whose source is
    `label`); HeaderMismatch when the headers do not hold the config's tensors."""
    from inspector.checkpoint.verify import compare
    from inspector.memory.serving import StoredWidths

    result = compare(_expected(acc, cfg), headers, label)
    mismatch = _mismatch(result, headers, label)
    if mismatch:
        raise HeaderMismatch(mismatch)
    qc = cfg.get("quantization_config")
    counted = _entry_bytes(acc, result.findings, isinstance(qc, dict) and qc.get("desc_act") is True)
    nbytes, narrowed = counted.per_entry, counted.narrowed
    widths = {e.name: nbytes[e.name] / e.numel for e in acc.entries if e.name in nbytes and e.numel}
    for e in acc.entries:  # a tied head shares its embedding's tensor (and width)
        if not e.stored and e.tied_to in widths:
            widths[e.name] = widths[e.tied_to]
    notes = [f"{label}: {sum(1 for f in result.findings if f.status in COUNTED and f.entries):,} stored tensors "
             f"matched to the model's {len(acc.entries):,} tensors as `inspect verify` matches them"]
    if narrowed:
        notes.append(f"{narrowed} tensors stored in 32 bits count 2 B per element: vLLM's --dtype auto loads 32-bit "
                     "checkpoints in 16 bits")
    notes += _skipped_note(result.findings, acc)
    return StoredWidths(widths, _label(result.findings), source=label, notes=tuple(notes), kept=counted.kept)
