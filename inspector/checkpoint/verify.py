"""Verification: the expected inventory of a model compared, tensor by tensor, with checkpoint headers.

`compare(expected, headers)` is pure: it takes the inventory (the same one `params` uses: a native
family's, or transformers' on the meta device) and the headers read by inspector.checkpoint, and
returns a `VerifyResult` of findings; inspector.checkpoint.matching knows the other layouts one
tensor can be stored in (no base-model prefix, stacked experts, quantized). `verify_checkpoint`
takes `VerifyInputs` that inspector.source resolved from the command line's MODEL / --weights (the
config that says what is expected, or None: listing only, and the headers). Headers only: tensor
data is never read.

Statuses: ok, missing, unexpected, shape (mismatch), buffer (a known non-parameter buffer, not an
error), quantization (a scale, zero point, g_idx or block tensor of a quantized weight: not a
parameter), tied (an absent LM head that the config ties to the embedding: fine), tied-stored (an
LM head stored although the config says tied: reported), optional-absent (DeepSeek-V3's
multi-token-prediction layer, which checkpoints may leave out). Index/shard inconsistencies found
while reading come in as `problems`. Every note the reports show is in `VerifyResult.notes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inspector.checkpoint.matching import Expected, Finding, match
from inspector.checkpoint.quantization import LOOKS_QUANTIZED, read_scheme
from inspector.checkpoint.records import CheckpointHeaders, TensorInfo
from inspector.errors import InspectError
from inspector.units import numel

if TYPE_CHECKING:
    from inspector.inventory.accounting import Origin

# Tensors some checkpoints carry that are buffers, not parameters.
BUFFER_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"(^|\.)rotary_emb\.inv_freq$",
        r"(^|\.)position_ids$",
        r"(^|\.)attn\.(masked_)?bias$",
        r"^rope_freqs\.weight$",  # GGUF: llama3 rope frequency factors
    )
)
FAILING = ("missing", "unexpected", "shape", "tied-stored")
FLOAT_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}

__all__ = ["Finding", "Expected", "VerifyInputs", "VerifyResult", "compare", "verify_checkpoint", "is_buffer",
           "native_expected"]


@dataclass
class DtypeStat:
    tensors: int = 0
    params: int = 0  # logical parameters stored in this dtype (quantization tensors hold none)
    nbytes: int = 0


@dataclass
class VerifyResult:
    model: str | None
    architecture: str | None
    checkpoint: str
    format: str
    files: list[str]
    has_inventory: bool
    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    dtypes: dict[str, DtypeStat] = field(default_factory=dict)
    expected_params: int | None = None
    checkpoint_params: int = 0  # logical parameters the checkpoint holds (a packed weight: its logical count)
    stored_bytes: int = 0
    config_dtype: str | None = None
    notes: list[str] = field(default_factory=list)
    quantization: str | None = None  # the method quantization_config names
    origin: Origin | None = None  # where the expected inventory comes from

    def count(self, status: str) -> int:
        return sum(1 for f in self.findings if f.status == status)

    def names(self, status: str) -> list[str]:
        return [f.name for f in self.findings if f.status == status]

    @property
    def ok(self) -> bool:
        return not self.problems and not any(f.status in FAILING for f in self.findings)


def is_buffer(name: str) -> bool:
    return any(p.search(name) for p in BUFFER_PATTERNS)


def _by_hf_name(headers: CheckpointHeaders, exp: Expected | None) -> dict[str, tuple[str, TensorInfo]]:
    """Checkpoint tensors keyed by Hugging Face name; GGUF names are mapped when a map exists."""
    if headers.format != "gguf":
        return {name: (name, info) for name, info in headers.tensors.items()}
    from inspector.checkpoint.gguf_hf import gguf_layer_count, gguf_moe_role, gguf_name_map

    layers = 1 + max((e.layer for e in exp.entries if e.layer is not None), default=-1) if exp else 0
    mapping = gguf_name_map(layers or gguf_layer_count(headers), headers.metadata.get("general.architecture") or "llama")
    prefix = exp.entries[0].name[: exp.entries[0].name.find("model.")] if exp and "model." in exp.entries[0].name else ""
    out = {}
    for g, info in headers.tensors.items():
        moe = gguf_moe_role(g) if exp and exp.role_name else None
        if g in mapping:
            out[prefix + mapping[g]] = (g, info)
        elif moe and not moe[2]:
            suffix = "" if moe[1] == "router_score_bias" else ".weight"
            out[exp.role_name(moe[1], moe[0], suffix)] = (g, info)
        else:
            out[g] = (g, info)
    return out


def _dtype_stats(findings: list[Finding]) -> dict[str, DtypeStat]:
    stats: dict[str, DtypeStat] = {}
    for f in findings:
        if f.dtype is None:
            continue
        s = stats.setdefault(f.dtype, DtypeStat())
        s.tensors += 1
        s.params += f.params
        s.nbytes += f.nbytes
    return dict(sorted(stats.items(), key=lambda kv: -kv[1].params))


def _notes(r: VerifyResult, headers: CheckpointHeaders) -> list[str]:
    """The notes both reports (table/md and JSON) show."""
    notes = []
    if r.format == "gguf":
        notes.append("GGUF stores dimensions fastest-first (ne[0] first); shapes are compared in PyTorch "
                     "order (reversed). Quantization types are shown as stored; parameters are logical "
                     "element counts, bytes are what the file stores.")
    want = FLOAT_DTYPES.get(r.config_dtype or "")
    floats = {k for k in r.dtypes if k in ("F32", "F16", "BF16", "F64")}
    if want and r.format != "gguf" and not r.quantization and floats and floats != {want}:
        notes.append(f"config.json says dtype {r.config_dtype}; the checkpoint stores "
                     f"{', '.join(sorted(floats))} (not an error: loaders convert)")
    if r.quantization:
        side = [f for f in r.findings if f.status == "quantization"]
        notes.append(f"quantization_config: {r.quantization}; {len(side)} quantization tensors "
                     f"({sum(f.nbytes for f in side):,} bytes) are not parameters; packed weights are "
                     "counted as their logical parameters")
    elif r.has_inventory:
        looks = [f.name for f in r.findings if f.status == "unexpected" and f.name.endswith(LOOKS_QUANTIZED)]
        if looks:
            notes.append(f"{len(looks)} unexpected tensors look like quantization tensors ({looks[0]}, ...), "
                         "but config.json has no quantization_config")
    absent = [f for f in r.findings if f.status == "optional-absent"]
    if absent:
        kv = all(f.name.endswith(("k_proj.weight", "v_proj.weight", "k_norm.weight")) for f in absent)
        what = "the KV-shared layers' K/V, which transformers drops on load" if kv else "the multi-token-prediction layer"
        notes.append(f"{len(absent)} optional tensors ({what}) are absent: fine")
    return notes


def compare(exp: Expected | None, headers: CheckpointHeaders, checkpoint: str) -> VerifyResult:
    """Findings for every expected and every stored tensor (listing only when exp is None)."""
    actual = _by_hf_name(headers, exp)
    scheme = read_scheme(exp.quantization, exp.name) if exp else None
    result = VerifyResult(
        model=exp.name if exp else None, architecture=exp.architecture if exp else None,
        checkpoint=checkpoint, format=headers.format, files=list(headers.files), has_inventory=exp is not None,
        problems=list(headers.problems), stored_bytes=sum(i.nbytes for i in headers.tensors.values()),
        config_dtype=exp.config_dtype if exp else None, quantization=scheme.description if scheme else None,
        origin=exp.origin if exp else None,
    )
    if exp is None:
        result.findings = [Finding(name, "buffer" if is_buffer(stored) else "listed", None, tuple(info.shape),
                                   info.dtype, stored if stored != name else None,
                                   tuple(info.stored_shape) if info.stored_shape else None,
                                   params=0 if is_buffer(stored) else numel(info.shape), nbytes=info.nbytes)
                           for name, (stored, info) in actual.items()]
    else:
        result.findings = match(exp, actual, scheme, is_buffer)
        present = {f.name for f in result.findings if f.status != "optional-absent"}
        result.expected_params = sum(e.numel for e in exp.entries if e.stored and e.parameter
                                     and (not e.optional or e.name in present))
    result.checkpoint_params = sum(f.params for f in result.findings)
    result.dtypes = _dtype_stats(result.findings)
    result.notes = _notes(result, headers)
    return result


# --------------------------------------------------------------------------- inputs


def _config_dtype(cfg: dict[str, Any]) -> str | None:
    """`dtype` (transformers 5) or `torch_dtype` (transformers 4)."""
    return next((cfg[k] for k in ("dtype", "torch_dtype") if isinstance(cfg.get(k), str)), None)


def native_expected(spec, entries: list, origin: Origin, cfg: dict[str, Any]) -> Expected:
    """What a native family's inventory (`entries` of `spec`, e.g. an Accounting's) expects of a checkpoint."""
    return Expected(spec.name, spec.architecture, entries, origin, _config_dtype(cfg), cfg.get("quantization_config"),
                    lambda role, i, suffix: spec.text.name(role, i, suffix))


def expected_of(cfg: Any, name: str, where: str) -> tuple[Expected | None, str | None]:
    """What a config promises: a native family's inventory, else transformers' on the meta device;
    (None, note) when neither can say (listing only)."""
    from inspector.inventory.accounting import Counter, Origin
    from inspector.inventory.load import check_fallback_config, is_native

    if is_native(cfg):
        from inspector.inventory.model import inventory
        from inspector.spec.model import from_hf_config

        from inspector.inventory.per_layer import dropped_kv_entries

        spec = from_hf_config(cfg, name, where, where)
        entries = inventory(spec) + dropped_kv_entries(spec.text)  # Gemma's KV-shared K/V: optional
        return native_expected(spec, entries, Origin(Counter.NATIVE, spec.text.model_type), cfg), None
    from inspector.inventory.transformers_meta import meta_account

    check_fallback_config(cfg, where)
    model_type = cfg.get("model_type")
    arch = (cfg.get("architectures") or [model_type])[0]
    try:
        acc = meta_account(cfg, name, where)
    except InspectError as e:
        return None, (f"no expectation exists for architecture {arch} (model_type {model_type!r}): "
                      f"listing the checkpoint's tensors only ({str(e).removeprefix(where + ': ')})")
    # a tensor transformers saves at another size than it builds (Inkling2's padded LM head): the
    # checkpoint holds the saved name and shape, so that is what verify expects of it
    saved = {name: (to, shape) for name, to, shape in acc.spec.saved_as}
    entries = [e._replace(name=saved[e.name][0], shape=saved[e.name][1]) if e.name in saved else e
               for e in acc.entries]
    return Expected(name, str(arch), entries, acc.origin, _config_dtype(cfg),
                    cfg.get("quantization_config")), "; ".join(acc.spec.notes) or None


@dataclass(frozen=True)
class VerifyInputs:
    """What a verification compares, as inspector.source resolved it from MODEL and --weights: the
    checkpoint's headers and label, and the config that promises an inventory (None: listing only),
    with its name and file for messages."""

    headers: CheckpointHeaders
    label: str
    config: Any
    name: str = ""
    where: str = ""
    notes: tuple[str, ...] = ()


def verify_checkpoint(inputs: VerifyInputs) -> VerifyResult:
    """The findings for already-resolved inputs; the notes say where the expectation came from."""
    expected, note = expected_of(inputs.config, inputs.name, inputs.where) if inputs.config is not None else (None, None)
    result = compare(expected, inputs.headers, inputs.label)
    result.notes[:0] = [*inputs.notes, *([note] if note else [])]
    if expected is not None and expected.origin is not None and not expected.origin.native:
        result.notes.insert(0, f"expected tensors: {expected.origin}")
    return result
