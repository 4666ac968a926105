"""Choosing the next token from logits (Step 10 and Appendix C of *Implementations of Large Language Models*).

Order: temperature scaling, then top-k, then top-p on the distribution renormalised after top-k,
then min-p (keep tokens whose probability is at least min_p times the most likely one's), then
renormalise and draw with a seeded torch.Generator. Temperature 0 is greedy (argmax). This is
transformers' order (TemperatureLogitsWarper, TopK, TopP, then MinP). vLLM applies min-p before
top-k/top-p, so with min-p and top-p together its top-p sees a different distribution. Since
min-p compares each probability with the largest one, its own choice does not depend on where
it sits. Masks are boolean "keep" tensors so tests and tracers can look at them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inspector.errors import InspectError


# Logits are divided by the temperature: below this (a subnormal such as 1e-320 included) the
# quotient overflows float32 to inf and the softmax gives NaN. Temperature 0 is greedy.
MIN_TEMPERATURE = 1e-6


def temperature_problem(t: float) -> str | None:
    """Why `t` cannot be a sampling temperature, or None."""
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
        return f"must be a finite number >= 0, got {t}"
    if 0 < t < MIN_TEMPERATURE:
        return f"must be 0 (greedy) or at least {MIN_TEMPERATURE:g}, got {t:g}"
    return None


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.0  # 0 = greedy
    top_k: int | None = None  # None or 0 = no limit
    top_p: float | None = None  # None or 1.0 = no limit
    seed: int = 0
    min_p: float | None = None  # None or 0 = no limit

    def __post_init__(self) -> None:
        problem = temperature_problem(self.temperature)
        if problem:
            raise InspectError(f"temperature {problem}")
        if self.top_k is not None and self.top_k < 0:
            raise InspectError(f"top_k must be >= 0, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise InspectError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.min_p is not None and not 0 <= self.min_p <= 1:
            raise InspectError(f"min_p must be in [0, 1], got {self.min_p}")
        if not 0 <= self.seed < 2**64:
            raise InspectError(f"seed must be in [0, 2**64), got {self.seed}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1

    def generator(self, device: str | torch.device = "cpu") -> torch.Generator:
        return torch.Generator(device=device).manual_seed(self.seed)


def top_k_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep exactly the k highest logits of each row (ties broken by index). (..., n_v) -> bool."""
    k = min(k, logits.shape[-1])
    keep = torch.zeros_like(logits, dtype=torch.bool)
    return keep.scatter(-1, logits.topk(k, dim=-1).indices, True)


def top_p_mask(probs: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probabilities sum to >= p (the top one always)."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)  # (..., n_v)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the tokens ranked above each one
    keep_sorted = before < p
    keep_sorted[..., 0] = True
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


def min_p_mask(probs: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keep tokens whose probability is at least min_p times the row's largest (the top one always)."""
    return probs >= min_p * probs.max(dim=-1, keepdim=True).values


def next_token_probs(logits: torch.Tensor, settings: SamplingSettings) -> torch.Tensor:
    """The distribution actually sampled from: (..., n_v) logits -> (..., n_v) probabilities."""
    scaled = logits.float() / settings.temperature
    if settings.top_k:
        scaled = scaled.masked_fill(~top_k_mask(scaled, settings.top_k), float("-inf"))
    probs = scaled.softmax(dim=-1)
    if settings.top_p is not None and settings.top_p < 1:
        probs = probs * top_p_mask(probs, settings.top_p)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    if settings.min_p:
        probs = probs * min_p_mask(probs, settings.min_p)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def sample(logits: torch.Tensor, settings: SamplingSettings, generator: torch.Generator | None = None) -> torch.Tensor:
    """Next token id(s): (b, n_v) -> (b,), or (n_v,) -> () ."""
    if settings.greedy:
        return logits.argmax(dim=-1)
    probs = next_token_probs(logits, settings)
    flat = probs.reshape(-1, probs.shape[-1])  # (b, n_v)
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
