"""Appendix C on hand-made logits: exact top-k/top-p masks, seeded draws, temperature 0 = greedy."""

from __future__ import annotations

import math

import pytest
import torch

from inspector.errors import InspectError
from inspector.runtime.sampling import SamplingSettings, next_token_probs, sample, top_k_mask, top_p_mask

# probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 in a shuffled order
PROBS = torch.tensor([0.0625, 0.25, 0.5, 0.0625, 0.125])
LOGITS = PROBS.log()


def test_top_k_mask_keeps_exactly_k():
    assert top_k_mask(LOGITS, 2).tolist() == [False, True, True, False, False]
    assert top_k_mask(LOGITS, 10).all()


@pytest.mark.parametrize(
    "p, kept",
    [(0.5, [2]), (0.6, [1, 2]), (0.75, [1, 2]), (0.8, [1, 2, 4]), (1.0, [0, 1, 2, 3, 4]), (0.01, [2])],
    ids=["p0.5", "p0.6", "p0.75", "p0.8", "p1", "p0.01-top-only"],
)
def test_top_p_mask_smallest_set_reaching_p(p, kept):
    assert top_p_mask(PROBS, p).nonzero().flatten().tolist() == kept


def test_top_k_then_top_p_renormalised():
    probs = next_token_probs(LOGITS, SamplingSettings(temperature=1.0, top_k=3, top_p=0.7))
    # top-3 leaves 0.5, 0.25, 0.125 -> renormalised 4/7, 2/7, 1/7; top-p 0.7 keeps 4/7 + 2/7
    assert torch.allclose(probs, torch.tensor([0, 1 / 3, 2 / 3, 0, 0]))


def test_temperature_scales_logits():
    probs = next_token_probs(LOGITS, SamplingSettings(temperature=2.0))
    expected = PROBS.sqrt() / PROBS.sqrt().sum()
    assert torch.allclose(probs, expected)
    assert math.isclose(float(probs.sum()), 1.0, rel_tol=1e-6)


def test_seeded_sampling_is_reproducible():
    settings = SamplingSettings(temperature=1.0, seed=7)
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    draws = [[int(sample(logits, settings, g)[0]) for _ in range(20)] for g in
             (settings.generator(), settings.generator())]
    assert draws[0] == draws[1] and len(set(draws[0])) > 1


def test_temperature_zero_is_greedy():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample(logits, SamplingSettings(temperature=0)), logits.argmax(-1))
    tiny_t = SamplingSettings(temperature=1e-4, seed=3)
    assert torch.equal(sample(logits, tiny_t, tiny_t.generator()), logits.argmax(-1))
    assert torch.equal(sample(logits, SamplingSettings(temperature=1.0, top_k=1)), logits.argmax(-1))


def test_sampling_never_leaves_the_kept_set():
    settings = SamplingSettings(temperature=1.0, top_k=3, top_p=0.7, seed=1)
    g = settings.generator()
    assert {int(sample(LOGITS, settings, g)) for _ in range(200)} == {1, 2}


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_k=-2), dict(top_p=0), dict(top_p=1.5)],
                         ids=["temperature", "top_k", "top_p0", "top_p1.5"])
def test_bad_settings_are_one_line_errors(bad):
    with pytest.raises(InspectError):
        SamplingSettings(**bad)
