"""A `tokenizers` tokenizer rebuilt from a GGUF file's `tokenizer.ggml.*` metadata: byte-level BPE
(`tokenizer.ggml.model` "gpt2") here, Gemma's SentencePiece BPE ("llama") in
inspector.tokenizer.sentencepiece.

`read_gguf_metadata` reads only the key/value section of a little-endian GGUF (v2/v3). It exists
beside the `gguf` package's GGUFReader for speed: GGUFReader takes about 3 s on SmolLM2's file
(it maps every element of the 49k-entry token arrays), this reader about 0.09 s; a test checks that
every `tokenizer.*` and `general.*` value equals GGUFReader's. Tensor data is never read here.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from inspector.errors import InspectError

from inspector.tokenizer.bytelevel import LLAMA3_SPLIT, O200K_SPLIT, QWEN2_SPLIT, QWEN35_SPLIT
from inspector.tokenizer.bytelevel import BYTE_ALPHABET, add_tokens, byte_level, byte_level_bpe
from inspector.tokenizer.sentencepiece import sentencepiece_tokenizer
from inspector.tokenizer.text_tokenizer import TextTokenizer, one_line

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

# --------------------------------------------------------------------------------------------
# GGUF: a byte-level BPE tokenizer from the file's metadata.

_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def read_gguf_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The key/value metadata of a little-endian GGUF (v2/v3), without the tensor index.

    We parse the header ourselves: `gguf.GGUFReader` builds numpy views for every string of a
    vocabulary and takes seconds on a 49k-token file; this takes a few hundredths.
    """
    import mmap

    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse_gguf_kv(buf, str(path))
    except InspectError:  # (a ValueError: must come before the generic handler below)
        raise
    except OSError as exc:
        raise InspectError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (struct.error, IndexError, UnicodeDecodeError, ValueError, OverflowError):
        raise InspectError(f"{path}: truncated or corrupt GGUF metadata") from None


def _parse_gguf_kv(buf, name: str) -> dict[str, Any]:
    if len(buf) < 24 or buf[:4] != b"GGUF":
        raise InspectError(f"{name}: not a GGUF file (bad magic)")
    (version,) = struct.unpack_from("<I", buf, 4)
    if version not in (2, 3):
        raise InspectError(f"{name}: GGUF version {version} not supported (big-endian or v1 file?)")
    _, kv_count = struct.unpack_from("<QQ", buf, 8)
    pos = 24
    unpack_from = struct.unpack_from

    def read_str(pos: int) -> tuple[str, int]:
        (n,) = unpack_from("<Q", buf, pos)
        pos += 8
        if pos + n > len(buf):
            raise ValueError("string past end of file")
        return bytes(buf[pos : pos + n]).decode("utf-8", errors="surrogateescape"), pos + n

    def read_value(vtype: int, pos: int) -> tuple[Any, int]:
        if vtype == _GGUF_STRING:
            return read_str(pos)
        if vtype in _GGUF_SCALARS:
            fmt = _GGUF_SCALARS[vtype]
            return unpack_from(fmt, buf, pos)[0], pos + struct.calcsize(fmt)
        if vtype == _GGUF_ARRAY:
            item_type, count = unpack_from("<IQ", buf, pos)
            pos += 12
            if item_type in _GGUF_SCALARS:
                fmt = _GGUF_SCALARS[item_type]
                size = struct.calcsize(fmt)
                if pos + size * count > len(buf):
                    raise ValueError("array past end of file")
                return list(unpack_from(f"<{count}{fmt[1]}", buf, pos)), pos + size * count
            items = []
            for _ in range(count):
                item, pos = read_value(item_type, pos)
                items.append(item)
            return items, pos
        raise ValueError(f"unknown GGUF value type {vtype}")

    meta: dict[str, Any] = {}
    for _ in range(kv_count):
        key, pos = read_str(pos)
        (vtype,) = unpack_from("<I", buf, pos)
        value, pos = read_value(vtype, pos + 4)
        meta[key] = value
    return meta


def load_gguf_tokenizer(path: str | os.PathLike) -> TextTokenizer:
    """The tokenizer a GGUF file describes: byte-level BPE (`tokenizer.ggml.model == "gpt2"`) or
    Gemma's SentencePiece BPE ("llama")."""
    path = Path(path)
    meta = read_gguf_metadata(path)
    model = meta.get("tokenizer.ggml.model")
    tokens = meta.get("tokenizer.ggml.tokens")
    if model is None or not isinstance(tokens, list) or not tokens:
        raise InspectError(f"{path}: no tokenizer in the GGUF metadata (tokenizer.ggml.model/tokens missing)")
    if model == "llama":
        return _wrap(sentencepiece_tokenizer(meta, str(path)), meta, len(tokens), str(path))
    if model != "gpt2":
        raise InspectError(f"{path}: GGUF tokenizer model {model!r} not supported (byte-level BPE 'gpt2', "
                           "SentencePiece 'llama')")
    merges_raw = meta.get("tokenizer.ggml.merges")
    if not isinstance(merges_raw, list) or not merges_raw:
        raise InspectError(f"{path}: tokenizer.ggml.merges missing; cannot build a BPE tokenizer")
    types = meta.get("tokenizer.ggml.token_type") or []
    if types and len(types) != len(tokens):
        raise InspectError(f"{path}: tokenizer.ggml.token_type has {len(types)} entries, tokens has {len(tokens)}")

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
            raise InspectError(f"{path}: tokenizer.ggml.merges entry {m!r} is not 'left right'")
        merges.append((left, right))

    pre = meta.get("tokenizer.ggml.pre") or "default"
    split, ignore_merges = GGUF_PRE_SPLITS.get(pre, ("gpt2", False))
    label = str(path) if pre in GGUF_PRE_SPLITS else f"{path} (pre-tokenizer {pre!r} unknown; split as GPT-2)"
    try:
        tok = byte_level_bpe(vocab, merges, split, ignore_merges=ignore_merges, nfc=False)
        add_tokens(tok, added)
    except Exception as exc:
        raise InspectError(f"{path}: cannot build a BPE tokenizer from the GGUF metadata ({one_line(exc)})") from None
    return _wrap(tok, meta, len(tokens), label)


def _wrap(tok, meta: dict[str, Any], n_tokens: int, label: str) -> TextTokenizer:
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
