"""Generating text with the reference model: prefill, then one cached step per token (Step 11).

`Generation` is an iterator: the prompt is run once to fill the KV cache (prefill), then each new
token is fed alone, its K/V appended to the cache. Tokens come out one at a time so a CLI can
stream them; it stops at an end-of-sequence id or after `max_new_tokens`. Timing figures are on
the object once iteration ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from inspector.errors import InspectError, printable, whole_number
from inspector.reference.layers import KVCache
from inspector.reference.text import TextModel
from inspector.runtime.sampling import SamplingSettings, sample
from inspector.spec.text import TextSpec


def check_context(spec: TextSpec, prompt_tokens: int, max_new_tokens: int, what: str = "max_new_tokens") -> None:
    """Refuse a run that would go past the model's max_position_embeddings (`what` names the new
    tokens; a negative or non-integer count is refused too)."""
    max_new_tokens = whole_number(max_new_tokens, what)
    total = prompt_tokens + max_new_tokens
    if total > spec.max_position_embeddings:
        raise InspectError(
            f"prompt ({prompt_tokens} tokens) + {what} ({max_new_tokens}) = {total} exceeds "
            f"the context length, max_position_embeddings = {spec.max_position_embeddings}"
        )


def encode_prompt(tok, spec: TextSpec, prompt: str, chat: bool, new_tokens: int = 0,
                  what: str = "max_new_tokens") -> tuple[str, list[int]]:
    """(text fed to the tokenizer, ids) of a prompt, checked before any forward pass: not empty,
    every id inside the model's vocabulary, prompt + `new_tokens` within its context (`what` names
    the new tokens in the message)."""
    if not prompt:
        raise InspectError("the prompt is empty")
    text, ids = tok.chat_prompt([{"role": "user", "content": prompt}]) if chat else (prompt, tok.encode(prompt))
    if not ids:
        raise InspectError(f"the prompt {printable(repr(prompt))} gives no tokens")
    check_context(spec, len(ids), new_tokens, what)
    if max(ids) >= spec.vocab_size:
        raise InspectError(f"{tok.source or 'tokenizer'}: token id {max(ids)} is past the model's vocabulary of "
                           f"{spec.vocab_size} (does the tokenizer belong to this model?)")
    return text, ids


def check_ids(ids: Sequence[int], what: str = "prompt", vocab_size: int = 2**31) -> list[int]:
    """Token ids a caller hands in: integers from 0 to `vocab_size` - 1 (an id past the embedding
    table would index out of range)."""
    out = []
    for i in ids:
        if isinstance(i, torch.Tensor) and i.numel() == 1:
            i = i.item()
        out.append(whole_number(i, f"{what} token id", 0, vocab_size - 1))
    return out


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock timings are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def _last_logits(model: TextModel, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
    return model(ids, cache, last_only=True)[:, -1]  # (b, n_v)


@dataclass
class Generation:
    """Iterate to get new token ids; then read `tokens`, `stop_reason` and the timings."""

    model: TextModel
    prompt: Sequence[int]
    max_new_tokens: int
    eos_ids: Sequence[int] = ()
    settings: SamplingSettings = field(default_factory=SamplingSettings)
    tokens: list[int] = field(default_factory=list)
    stop_reason: str = ""  # "eos" | "max_new_tokens"
    prefill_s: float = 0.0
    decode_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.prompt:
            raise InspectError("the prompt is empty: at least one token is needed")
        self.prompt = check_ids(self.prompt, "prompt", self.model.spec.vocab_size)
        self.eos_ids = tuple(check_ids(self.eos_ids, "eos"))
        if not isinstance(self.settings, SamplingSettings):
            raise InspectError(f"settings must be a SamplingSettings, got {type(self.settings).__name__}")
        check_context(self.model.spec, len(self.prompt), self.max_new_tokens)

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens after the first, per second of cached decoding (the first comes from prefill)."""
        steps = max(len(self.tokens) - 1, 0)
        return steps / self.decode_s if self.decode_s > 0 else 0.0

    def __iter__(self) -> Iterator[int]:
        device = next(self.model.parameters()).device
        generator = self.settings.generator(device)
        cache = self.model.new_cache()
        ids = torch.tensor([list(self.prompt)], device=device)  # (1, n)
        start = time.perf_counter()
        logits = _last_logits(self.model, ids, cache)  # (1, n_v): prefill fills the cache
        _sync(device)
        self.prefill_s = time.perf_counter() - start
        while len(self.tokens) < self.max_new_tokens:
            token = int(sample(logits, self.settings, generator)[0])
            self.tokens.append(token)
            yield token  # no grad/inference mode is held across the yield
            if token in self.eos_ids:
                self.stop_reason = "eos"
                return
            if len(self.tokens) == self.max_new_tokens:
                break
            start = time.perf_counter()
            logits = _last_logits(self.model, torch.tensor([[token]], device=device), cache)  # (1, n_v)
            _sync(device)
            self.decode_s += time.perf_counter() - start
        self.stop_reason = "max_new_tokens"


def generate(model: TextModel, prompt: Sequence[int], max_new_tokens: int, eos_ids: Sequence[int] | None = None,
             settings: SamplingSettings | None = None) -> Generation:
    """A Generation over `prompt` ids; eos ids default to the spec's."""
    eos = model.spec.eos_token_ids if eos_ids is None else tuple(eos_ids)
    return Generation(model, list(prompt), max_new_tokens, eos, settings or SamplingSettings())
