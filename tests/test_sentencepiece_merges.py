"""recovered_merges (the merges of a Gemma GGUF vocabulary) equals its definition written out plainly:
every (left, right) cut of a token into two tokens, by the merged token's kept id, longer left first.
The fast form skips cutting the right part when the left is no token, and the sort when no token repeats;
the ids it leads to are checked against transformers' Gemma tokenizer in tests/test_tokenize.py and
tests/test_gemma3_gguf.py."""

from __future__ import annotations

import random

import pytest

from inspector.tokenizer.sentencepiece import recovered_merges


def _definition(tokens: list[str]) -> list[tuple[str, str]]:
    position = {token: i for i, token in enumerate(tokens)}  # a repeated token keeps its last id
    merges = []
    for token, _ in sorted(position.items(), key=lambda item: item[1]):
        splits = [(token[:j], token[j:]) for j in range(len(token) - 1, 0, -1)]
        merges.extend(pair for pair in splits if pair[0] in position and pair[1] in position)
    return merges


def _vocab(seed: int, repeats: bool) -> list[str]:
    rng = random.Random(seed)
    tokens = list(dict.fromkeys("".join(rng.choice("ab\u2581c") for _ in range(rng.randint(1, 6)))
                                for _ in range(400)))
    if repeats:  # a token listed twice keeps its last id, which moves it later in the merge order
        tokens += [tokens[k] for k in rng.sample(range(len(tokens)), 20)]
    return tokens


@pytest.mark.parametrize("repeats", [False, True], ids=["unique", "repeated"])
def test_recovered_merges_equal_the_definition(repeats):
    for seed in range(5):
        tokens = _vocab(seed, repeats)
        assert recovered_merges(tokens) == _definition(tokens)
