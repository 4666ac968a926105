"""A SentencePiece-style BPE tokenizer (llama.cpp's `tokenizer.ggml.model == "llama"`) rebuilt.

Rebuilt with the `tokenizers` library from already-parsed GGUF metadata values.

What a Gemma GGUF gives: the vocabulary in id order (a space is spelled "▁"), one score and one
type per token (1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte `<0xNN>`), and no merges.
The merges are recovered from the vocabulary: every way to cut a token into two tokens is a merge;
merges rank by where the merged token sits in the file (earlier first) and, for one token, the
longer left part first. Gemma's scores do not follow its merge order, its file order does; this is
the order transformers' GGUF loader gives Gemma too, so our ids equal its ids.

Text is normalised by spelling spaces "▁" (no space is prepended: the file's add_space_prefix is
false), split by BPE with a byte fallback for characters outside the vocabulary, and decoded back
by the reverse. Control tokens are special added tokens, user-defined ones plain added tokens, so
both stay whole in text. Only the Gemma architectures are built here: other SentencePiece files
rank merges by score and may prepend a space, which no file at hand lets us check.
"""

from __future__ import annotations

from typing import Any, Sequence

from inspector.errors import InspectError
from inspector.tokenizer.text_tokenizer import rust_call

_CONTROL, _USER_DEFINED = 3, 4
SENTENCEPIECE_ARCHS = ("gemma", "gemma2", "gemma3")


def recovered_merges(tokens: Sequence[str]) -> list[tuple[str, str]]:
    """Every (left, right) split of a token into two tokens, best first: by the merged token's
    position in the file, then by a longer left part."""
    position = {token: i for i, token in enumerate(tokens)}  # a repeated token keeps its last id
    # without repeats the dict's own order is the file order; with them, sort by the kept id
    order = position if len(position) == len(tokens) else sorted(position, key=position.__getitem__)
    merges: list[tuple[str, str]] = []
    add = merges.append
    for token in order:  # the right part is cut only when the left part is a token (Gemma: 0.6 s less)
        for j in range(len(token) - 1, 0, -1):
            left = token[:j]
            if left in position:
                right = token[j:]
                if right in position:
                    add((left, right))
    return merges


def _spelled(token: str) -> str:
    """A token of blanks only, holding a space, as the vocabulary's "▁" spelling (as Gemma's
    tokenizer.json spells it)."""
    return "\u2581" * len(token) if " " in token and not token.strip() else token


def sentencepiece_tokenizer(meta: dict[str, Any], where: str) -> Any:
    """A `tokenizers.Tokenizer` for a Gemma GGUF's "llama" tokenizer model (no BOS/EOS processor)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

    arch = meta.get("general.architecture")
    if arch not in SENTENCEPIECE_ARCHS:
        raise InspectError(f"{where}: SentencePiece GGUF tokenizers are built for {', '.join(SENTENCEPIECE_ARCHS)} "
                           f"only, this file's architecture is {arch!r}")
    tokens = [_spelled(t) for t in meta["tokenizer.ggml.tokens"]]
    types = meta.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    if len(types) != len(tokens):
        raise InspectError(f"{where}: tokenizer.ggml.token_type has {len(types)} entries, tokens has {len(tokens)}")
    unk_id = meta.get("tokenizer.ggml.unknown_token_id")
    unk = tokens[unk_id] if isinstance(unk_id, int) and 0 <= unk_id < len(tokens) else None
    vocab = {token: i for i, token in enumerate(tokens)}
    merges = recovered_merges(tokens)
    tok = rust_call(lambda: Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=unk, fuse_unk=True,
                                                 byte_fallback=True)),
                    f"{where}: cannot build a SentencePiece BPE from the GGUF vocabulary")
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                            for t, kind in zip(tokens, types) if kind == _CONTROL])
    tok.add_tokens([AddedToken(t, normalized=False, special=False)
                    for t, kind in zip(tokens, types) if kind == _USER_DEFINED])
    return tok
