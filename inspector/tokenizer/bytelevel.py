"""Byte-level BPE building blocks shared by every tokenizer we build ourselves.

GPT-2's reversible byte <-> printable-character alphabet, the pre-tokenizer split regexes the
vocabularies were trained with, and the assembly of a `tokenizers` byte-level BPE from a vocab and
merges (used by the embedded Qwen tokenizer and by GGUF tokenizers). `tokenizers` is imported lazily.
"""

from __future__ import annotations



# --------------------------------------------------------------------------------------------
# Pre-tokenizer split patterns (the regexes the vocabularies were trained with).

QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
QWEN35_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
LLAMA3_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"""
    r"""|\s+(?!\S)|\s+"""
)
O200K_SPLIT = (
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
    r"""|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
    r"""|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# --------------------------------------------------------------------------------------------
# Byte-level alphabet (GPT-2's reversible byte <-> printable character map).


def byte_to_unicode() -> dict[int, str]:
    """Each byte -> one printable character: printable Latin-1 bytes map to themselves, the
    others (controls, space, ...) to consecutive code points from 256 on, in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    kept = set(keep)
    mapping = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in kept:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


BYTE_TO_UNICODE = byte_to_unicode()
UNICODE_TO_BYTE = {c: b for b, c in BYTE_TO_UNICODE.items()}
BYTE_ALPHABET = frozenset(UNICODE_TO_BYTE)


def byte_level(token: bytes) -> str:
    return "".join(BYTE_TO_UNICODE[b] for b in token)


def byte_level_decode(token: str) -> str:
    """Inverse of `byte_level` for display: alphabet characters -> bytes -> text (`\\xNN` for broken UTF-8)."""
    return bytes(UNICODE_TO_BYTE[c] for c in token).decode("utf-8", errors="backslashreplace")


def byte_level_pre_tokenizer(split: str):
    """A pre-tokenizer: split by `split` ("gpt2", "digits+gpt2" or a regex), then bytes -> alphabet."""
    from tokenizers import Regex, pre_tokenizers

    if split == "gpt2":
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if split == "digits+gpt2":
        return pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        )
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def byte_level_bpe(vocab: dict[str, int], merges: list[tuple[str, str]], split: str, ignore_merges: bool, nfc: bool):
    from tokenizers import Tokenizer, decoders, models, normalizers

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges, fuse_unk=False))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = byte_level_pre_tokenizer(split)
    tok.decoder = decoders.ByteLevel()
    return tok


def add_tokens(tok, added: list[tuple[str, bool]]) -> None:
    """Add tokens that must be matched whole in text; `True` marks a special (control) token."""
    from tokenizers import AddedToken

    special = [AddedToken(t, special=True, normalized=False) for t, s in added if s]
    plain = [AddedToken(t, special=False, normalized=False) for t, s in added if not s]
    if special:
        tok.add_special_tokens(special)
    if plain:
        tok.add_tokens(plain)


