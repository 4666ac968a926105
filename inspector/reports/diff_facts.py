"""What `inspect diff` compares of one model: its config, tensors, quantization, parameters and tokenizer.

`model_facts(MODEL)` resolves MODEL through inspector.source (a preset, a directory, a safetensors or
GGUF file, a Hub id) and gathers, from headers only (never tensor data):
- the config, flattened to dotted keys (`text_config.hidden_size`);
- the tensors, name -> (shape, dtype): from the checkpoint's headers when MODEL has weights (a GGUF's
  names mapped to Hugging Face names, its dtype the ggml type), else from the native inventory
  the config implies (the dtype the config names), else none (with a note);
- the quantization: the config's `quantization_config`, or a GGUF's ggml types;
- the parameter totals: the config's count (native families) and the checkpoint's;
- the tokenizer: vocabulary size, special tokens, added tokens and chat template, when one can be
  had offline (a packaged kind, a tokenizer.json, a GGUF's metadata); otherwise a note says why not.
No torch: the tokenizer is the `tokenizers` library's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inspector.errors import InspectError
from inspector.source import ModelSource, resolve

# torch / config dtype names -> the safetensors header's names, so that a preset's inventory and a
# checkpoint's headers name a dtype alike (safetensors' dtype strings: huggingface/safetensors
# safetensors/src/tensor.rs, enum Dtype)
HEADER_DTYPES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32", "float64": "F64", "float8_e4m3fn": "F8_E4M3"}
Tensors = dict[str, tuple[tuple[int, ...], str]]


@dataclass(frozen=True)
class TokenizerFacts:
    """What `diff` compares of a tokenizer."""

    source: str
    vocab_size: int
    special: dict[str, str]  # role (bos, eos) -> token text
    added: dict[str, tuple[int, bool]]  # added token text -> (id, special)
    chat_template: str | None


@dataclass
class ModelFacts:
    """One side of a diff."""

    name: str
    source: ModelSource
    config: dict[str, Any]
    tensors: Tensors | None = None
    tensors_from: str = ""  # "checkpoint headers (PATH)" or "inventory (config)"
    quantization: str = "none"
    params_config: int | None = None
    params_checkpoint: int | None = None
    tokenizer: TokenizerFacts | None = None
    notes: list[str] = field(default_factory=list)


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists and scalars as they are."""
    if not isinstance(config, dict):
        return {prefix: config}
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def _headers(src: ModelSource):
    """The checkpoint headers MODEL names or holds; None when it has no weights at hand."""
    from inspector.checkpoint.open import open_checkpoint

    if src.opened is not None:
        return src.opened.headers
    if src.kind == "local":
        if src.checkpoint is not None:
            return open_checkpoint(src.checkpoint)
        if src.directory is not None and any(src.directory.glob("*.safetensors")):
            return open_checkpoint(src.directory)
        return None
    if src.kind == "hub":
        from inspector.checkpoint.hub import read_hub_headers

        return read_hub_headers(src.hub_id or src.name)
    return None


def hf_named(headers) -> Tensors:
    """A checkpoint's tensors keyed by Hugging Face name (a GGUF's mapped where a map exists)."""
    if headers.format != "gguf":
        return {n: (t.shape, t.dtype) for n, t in headers.tensors.items()}
    from inspector.checkpoint.gguf_hf import gguf_layer_count, gguf_name_map

    mapping = gguf_name_map(gguf_layer_count(headers), headers.metadata.get("general.architecture") or "llama")
    return {(mapping[n] if n in mapping else n): (t.shape, t.quant or t.dtype) for n, t in headers.tensors.items()}


def _gguf_quantization(headers) -> str:
    counts: dict[str, int] = {}
    for t in headers.tensors.values():
        counts[t.quant or t.dtype] = counts.get(t.quant or t.dtype, 0) + 1
    return "gguf: " + ", ".join(f"{q} ×{k}" for q, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _quantization(src: ModelSource, headers) -> str:
    if headers is not None and headers.format == "gguf":
        return _gguf_quantization(headers)
    from inspector.checkpoint.quantization import read_scheme

    scheme = read_scheme(src.config.get("quantization_config"), src.where)
    return scheme.description if scheme is not None else "none"


def _inventory(facts: ModelFacts) -> None:
    """The config's own count and, without headers, the inventory's tensors (native families only)."""
    from inspector.inventory.load import is_native

    if not is_native(facts.source.config):
        facts.notes.append(f"{facts.name}: model_type {facts.source.config.get('model_type')!r} has no native "
                           "inventory: the config's parameter count is not computed here")
        return
    from inspector.inventory.accounting import account

    acc = account(facts.source.spec())
    facts.params_config = acc.totals.total_params
    if facts.tensors is None:
        dtype = facts.source.config.get("dtype") or facts.source.config.get("torch_dtype")
        dtype = HEADER_DTYPES.get(str(dtype), str(dtype)) if dtype else "?"
        facts.tensors = {e.name: (tuple(e.shape), dtype) for e in acc.entries if e.stored}
        facts.tensors_from = "inventory (config)"


def tokenizer_facts(source: str) -> TokenizerFacts:
    """The tokenizer of a packaged kind, a directory, a tokenizer.json or a GGUF file, summarized."""
    from inspector.tokenizer.packaged import PACKAGED, packaged_tokenizer

    if source in PACKAGED:
        tok = packaged_tokenizer(source)
    else:
        from inspector.tokenizer.load import load_tokenizer

        tok = load_tokenizer(source)
    special = {"bos": tok.bos_token, "eos": " ".join(tok.tokenizer.id_to_token(i) or f"<id {i}>" for i in tok.eos_ids)}
    added = {t.content: (int(i), bool(t.special)) for i, t in tok.tokenizer.get_added_tokens_decoder().items()}
    return TokenizerFacts(tok.source or source, tok.vocab_size, {k: v for k, v in special.items() if v}, added,
                          tok.chat_template)


def _tokenizer(facts: ModelFacts) -> None:
    source = facts.source.tokenizer or (facts.source.hub_id if facts.source.kind == "hub" else None)
    if source is None:
        facts.notes.append(f"{facts.name}: no tokenizer at hand offline (no tokenizer.json, packaged kind or GGUF)")
        return
    try:
        facts.tokenizer = tokenizer_facts(source)
    except InspectError as e:
        facts.notes.append(f"{facts.name}: tokenizer not compared: {e}")


def model_facts(model: str, tokenizer: bool = True) -> ModelFacts:
    """MODEL's side of a diff (one InspectError line when MODEL cannot be resolved or read)."""
    src = resolve(model)
    facts = ModelFacts(model, src, flatten(src.config))
    try:
        headers = _headers(src)
    except InspectError as e:
        if src.kind != "hub":
            raise
        headers = None
        facts.notes.append(f"{model}: checkpoint headers not read ({e}): tensors from the config's inventory")
    if headers is not None:
        facts.tensors = hf_named(headers)
        facts.tensors_from = "checkpoint headers" + (" (Hub range reads)" if src.kind == "hub" else "")
        facts.params_checkpoint = headers.total_params
    facts.quantization = _quantization(src, headers)
    _inventory(facts)
    if facts.tensors is None:
        facts.notes.append(f"{model}: no tensors listed (no checkpoint, no native inventory)")
    if tokenizer:
        _tokenizer(facts)
    return facts
