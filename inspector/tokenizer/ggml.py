"""A `tokenizers` tokenizer rebuilt from a GGUF file's `tokenizer.ggml.*` metadata.

Byte-level BPE ("gpt2"), or Gemma's SentencePiece-style BPE ("llama", inspector.tokenizer.sentencepiece).

The file is read by the one GGUF reader, inspector.checkpoint's `gguf` module: its header is
parsed (bounded, validated) once, and the long arrays (tokens, merges, token types) are read on
demand from the offsets it recorded. Every field is checked for its type; tensor data is never read here.
"""

from __future__ import annotations

import os
from pathlib import Path

from inspector.checkpoint import gguf
from inspector.errors import InspectError, printable

from inspector.tokenizer.bytelevel import LLAMA3_SPLIT, O200K_SPLIT, QWEN2_SPLIT, QWEN35_SPLIT
from inspector.tokenizer.bytelevel import BYTE_ALPHABET, add_tokens, byte_level, byte_level_bpe
from inspector.tokenizer.sentencepiece import sentencepiece_tokenizer
from inspector.tokenizer.text_tokenizer import TextTokenizer, rust_call

# llama.cpp's `tokenizer.ggml.pre` names -> how to split. "digits+gpt2" = every digit on its own,
# then GPT-2's split (what SmolLM/StarCoder's tokenizer.json does with Digits + ByteLevel).
# The flag says whether a whole pre-token found in the vocabulary is taken as is (Llama 3's
# `ignore_merges`).
GGUF_PRE_SPLITS: dict[str, tuple[str, bool]] = {
    "gpt2": ("gpt2", False),
    "gpt-2": ("gpt2", False),
    "default": ("gpt2", False),
    "smollm": ("digits+gpt2", False),
    "starcoder": ("digits+gpt2", False),
    "refact": ("digits+gpt2", False),
    "llama-bpe": (LLAMA3_SPLIT, True),
    "llama3": (LLAMA3_SPLIT, True),
    "llama-v3": (LLAMA3_SPLIT, True),
    "smaug-bpe": (LLAMA3_SPLIT, True),
    "falcon3": (LLAMA3_SPLIT, True),
    "qwen2": (QWEN2_SPLIT, False),
    "deepseek-r1-qwen": (QWEN2_SPLIT, False),
    "qwen35": (QWEN35_SPLIT, False),
    "gpt-4o": (O200K_SPLIT, False),
    "llama4": (O200K_SPLIT, False),
}

_GGUF_CONTROL, _GGUF_USER_DEFINED = 3, 4

_INT_TYPES = ("UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "UINT64", "INT64")


def _array(g: gguf.GGUFFile, key: str, kind: type, required: bool = True) -> list | None:
    """The values of a metadata array whose items must all be `kind` (str or int); None if absent."""
    values = g.values(key)
    if values is None:
        if key in g.metadata or required:
            what = "is not an array" if key in g.metadata else "is missing"
            raise InspectError(f"{printable(g.path)}: GGUF metadata {key} {what}; cannot build a BPE tokenizer")
        return None
    if not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        noun = "strings" if kind is str else "integers"
        raise InspectError(f"{printable(g.path)}: GGUF metadata {key} must be an array of {noun}")
    return values


def _vocab_and_merges(path: Path, tokens: list[str], types: list[int], merges_raw: list[str]):
    """(vocab, added tokens, merge pairs) from the GGUF arrays."""
    added: list[tuple[str, bool]] = []
    vocab: dict[str, int] = {}
    for i, token in enumerate(tokens):
        kind = types[i] if types else 1
        if kind in (_GGUF_CONTROL, _GGUF_USER_DEFINED):
            added.append((token, kind == _GGUF_CONTROL))
        elif not set(token) <= BYTE_ALPHABET:  # stored as plain text: respell in the byte alphabet
            token = byte_level(token.encode("utf-8", errors="surrogateescape"))
        vocab.setdefault(token, i)
    merges = []
    for m in merges_raw:
        left, sep, right = m.partition(" ")
        if not sep:
            raise InspectError(f"{path}: tokenizer.ggml.merges entry {printable(repr(m))} is not 'left right'")
        merges.append((left, right))
    return vocab, added, merges


def _check_merges(path: Path, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """Both sides of every merge and what it makes must be tokens: the Rust BPE builder panics on a
    merge whose result is not one (a multi-line report on stderr), and refuses one whose side is not."""
    for left, right in merges:
        missing = next((t for t in (left, right, left + right) if t not in vocab), None)
        if missing is not None:
            raise InspectError(f"{path}: tokenizer.ggml.merges entry {printable(repr(f'{left} {right}'))}: "
                               f"{printable(repr(missing))} is not a token of tokenizer.ggml.tokens")


def load_gguf_tokenizer(path: str | os.PathLike) -> TextTokenizer:
    """The tokenizer a GGUF file describes: byte-level BPE (`tokenizer.ggml.model == "gpt2"`) or
    Gemma's SentencePiece BPE ("llama")."""
    path = Path(path)
    g = gguf.parse_gguf(path)
    meta = g.metadata
    model = meta.get("tokenizer.ggml.model")
    if model is None or "tokenizer.ggml.tokens" not in meta:
        raise InspectError(f"{path}: no tokenizer in the GGUF metadata (tokenizer.ggml.model/tokens missing)")
    if model == "llama":
        tokens = _array(g, "tokenizer.ggml.tokens", str)
        types = _array(g, "tokenizer.ggml.token_type", int, required=False)
        full = {**meta, "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types}
        return _wrap(sentencepiece_tokenizer(full, str(path)), meta, len(tokens), str(path))
    if model != "gpt2":
        raise InspectError(f"{path}: GGUF tokenizer model {printable(repr(model))} not supported (byte-level BPE "
                           "'gpt2', SentencePiece 'llama')")
    tokens = _array(g, "tokenizer.ggml.tokens", str)
    merges_raw = _array(g, "tokenizer.ggml.merges", str)
    if not tokens or not merges_raw:
        raise InspectError(f"{path}: tokenizer.ggml.tokens or tokenizer.ggml.merges is empty; cannot build a BPE tokenizer")
    types = _array(g, "tokenizer.ggml.token_type", int, required=False) or []
    if types and len(types) != len(tokens):
        raise InspectError(f"{path}: tokenizer.ggml.token_type has {len(types)} entries, tokens has {len(tokens)}")

    vocab, added, merges = _vocab_and_merges(path, tokens, types, merges_raw)

    pre = meta.get("tokenizer.ggml.pre") or "default"
    if not isinstance(pre, str):
        raise InspectError(f"{path}: GGUF metadata tokenizer.ggml.pre must be a string, got {printable(repr(pre))}")
    split, ignore_merges = GGUF_PRE_SPLITS.get(pre, ("gpt2", False))
    label = str(path) if pre in GGUF_PRE_SPLITS else f"{path} (pre-tokenizer {printable(repr(pre))} unknown; split as GPT-2)"
    _check_merges(path, vocab, merges)

    def build():
        tok = byte_level_bpe(vocab, merges, split, ignore_merges=ignore_merges, nfc=False)
        add_tokens(tok, added)
        return tok

    # rust_call: a panic's multi-line report on fd 2 is silenced, the panic itself is one line
    tok = rust_call(build, f"{path}: cannot build a BPE tokenizer from the GGUF metadata")
    return _wrap(tok, meta, len(tokens), label)


def _wrap(tok, meta: dict, n_tokens: int, label: str) -> TextTokenizer:
    """BOS/EOS as llama.cpp adds them, end-of-sequence ids and the chat template, around `tok`."""

    def known_id(key: str) -> int | None:
        value = meta.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n_tokens else None

    bos_id, eos_id = known_id("tokenizer.ggml.bos_token_id"), known_id("tokenizer.ggml.eos_token_id")
    eos = [eos_id] if eos_id is not None else []
    eot = known_id("tokenizer.ggml.eot_token_id")
    if eot is not None and eot not in eos:
        eos.append(eot)
    _set_bos_eos_processor(tok, bos_id if meta.get("tokenizer.ggml.add_bos_token") is True else None,
                           eos_id if meta.get("tokenizer.ggml.add_eos_token") is True else None)
    template = meta.get("tokenizer.chat_template")
    return TextTokenizer(
        tokenizer=tok,
        eos_ids=tuple(eos),
        bos_id=bos_id,
        chat_template=template if isinstance(template, str) and template else None,
        source=label,
    )


def _set_bos_eos_processor(tok, bos_id: int | None, eos_id: int | None) -> None:
    """Make `encode(..., add_special_tokens=True)` add BOS/EOS where the GGUF says llama.cpp adds them."""
    if bos_id is None and eos_id is None:
        return
    from tokenizers import processors

    special, head, tail = [], [], []
    if bos_id is not None:
        special.append((tok.id_to_token(bos_id), bos_id))
        head = [tok.id_to_token(bos_id)]
    if eos_id is not None:
        if eos_id != bos_id:
            special.append((tok.id_to_token(eos_id), eos_id))
        tail = [tok.id_to_token(eos_id)]
    single = [*head, "$A", *tail]
    pair = [*single, *(f"{t}:1" for t in head), "$B:1", *(f"{t}:1" for t in tail)]
    tok.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=special)
