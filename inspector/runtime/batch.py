"""Several prompts as one batch: left padding, the padding mask, and generation that stops row by row.

Steps 1 and 3 of *Implementations of Large Language Models*.

A decoder-only model continues the *last* position of each row, so shorter rows are padded on
the left: every row's last real token sits in the last column, and the padding is masked out of
attention (inspector.reference.layers.causal_mask) with position ids that start at each row's
first real token (inspector.reference.text.TextModel.forward). This is what transformers does with
`padding_side="left"`. `encode_prompts` turns texts into id rows (or stand-in ids when no
tokenizer is at hand); `Batch` pads them; `generate_batch` samples every row at once, feeds a pad
to rows that have stopped, and reports each row's tokens and stop reason. Consecutive rows can form
`RowGroup`s, each sampled with its own settings and its own seeded generator, so that several
temperatures and trials share one batch (one read of the weights per step) and draw exactly what
they would draw as batches of their own. No printing here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from inspector.errors import InspectError
from inspector.limits import MAX_SEQ_LEN
from inspector.runtime.sampling import SamplingSettings, sample

STAND_IN_NOTE = "no tokenizer available offline: {n} stand-in ids; shapes depend only on {what}"


def _label(i: int, total: int) -> str:
    return "the prompt" if total == 1 else f"prompt {i + 1} of {total}"


def check_prompts(prompts: Sequence[str]) -> None:
    """Refuse no prompt at all, or an empty one among several, naming which."""
    if not prompts:
        raise InspectError("no prompt given")
    for i, prompt in enumerate(prompts):
        if not prompt or not prompt.strip():
            raise InspectError(f"{_label(i, len(prompts))} is empty")


def encode_prompts(tok, spec, prompts: Sequence[str], chat: bool, new_tokens: int = 0,
                   what: str = "max_new_tokens") -> tuple[list[str], list[list[int]]]:
    """(the texts as run, one id row per prompt), each checked by `generate.encode_prompt` (not empty,
    inside the vocabulary, prompt + `new_tokens` within the context); errors name the prompt."""
    from inspector.runtime.generate import encode_prompt

    check_prompts(prompts)
    texts, rows = [], []
    for i, prompt in enumerate(prompts):
        try:
            text, ids = encode_prompt(tok, spec, prompt, chat, new_tokens, what)
        except InspectError as exc:
            if len(prompts) == 1:
                raise
            raise InspectError(f"{_label(i, len(prompts))}: {exc}") from None
        texts.append(text)
        rows.append(ids)
    return texts, rows


def check_seq_len(seq_len: int | None) -> None:
    """--seq-len: at least 1 and at most MAX_SEQ_LEN stand-in ids (inspector.limits)."""
    if seq_len is not None and not 1 <= seq_len <= MAX_SEQ_LEN:
        raise InspectError(f"--seq-len must be between 1 and {MAX_SEQ_LEN:,}, got {seq_len:,}")


def stand_in_rows(prompts: Sequence[str], seq_len: int | None, vocab_size: int) -> list[list[int]]:
    """Ids for shapes only: `seq_len` ids, or one per UTF-8 byte of each prompt (modulo the vocabulary)."""
    check_seq_len(seq_len)
    if seq_len is not None:
        return [[i % vocab_size for i in range(seq_len)] for _ in (prompts or [""])]
    for i, prompt in enumerate(prompts):
        if not prompt:
            raise InspectError(f"{_label(i, len(prompts))} is empty")
    return [[b % vocab_size for b in p.encode("utf-8")] for p in prompts]


@dataclass
class Batch:
    """Id rows of different lengths, left-padded to one (b, n) tensor."""

    rows: list[list[int]]
    pad_id: int = 0

    def __post_init__(self) -> None:
        if not self.rows or any(not r for r in self.rows):
            raise InspectError("a batch needs at least one token in every row")

    @property
    def width(self) -> int:
        return max(len(r) for r in self.rows)

    @property
    def padded(self) -> bool:
        return len({len(r) for r in self.rows}) > 1

    def pads(self) -> list[int]:
        return [self.width - len(r) for r in self.rows]

    def input_ids(self, device) -> torch.Tensor:
        n = self.width
        return torch.tensor([[self.pad_id] * (n - len(r)) + list(r) for r in self.rows], device=device)  # (b, n)

    def padding(self, device) -> torch.Tensor | None:
        """(b, n): 0 on the left padding, 1 on real tokens; None when no row is padded."""
        if not self.padded:
            return None
        n = self.width
        return torch.tensor([[0] * (n - len(r)) + [1] * len(r) for r in self.rows], device=device)


@dataclass(frozen=True)
class RowGroup:
    """`rows` consecutive rows of a batch sampled with `settings` and a generator of their own."""

    settings: SamplingSettings
    rows: int


@dataclass
class BatchResult:
    tokens: list[list[int]]  # new tokens per row, up to and including its stop token
    stops: list[str] = field(default_factory=list)  # "eos" | "max_new_tokens" per row
    prefill_s: float = 0.0
    decode_s: float = 0.0
    steps: int = 0  # forward passes after the prefill

    @property
    def decode_tokens_per_s(self) -> float:
        """New tokens of all rows after the first step, per second of cached decoding."""
        made = sum(max(len(t) - 1, 0) for t in self.tokens)
        return made / self.decode_s if self.decode_s > 0 else 0.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _drawer(groups: Sequence[RowGroup], device) -> Callable[[torch.Tensor], list[int]]:
    """Next ids of every row: each group samples its own rows of the (b, n_v) logits with its own
    generator, seeded once, in the order a batch of only those rows would draw them."""
    generators = [g.settings.generator(device) for g in groups]

    def draw(logits: torch.Tensor) -> list[int]:
        chosen, start = [], 0
        for group, generator in zip(groups, generators):
            chosen += sample(logits[start:start + group.rows], group.settings, generator).tolist()  # (rows,)
            start += group.rows
        return chosen

    return draw


@torch.inference_mode()
def _forward_last(model, ids: torch.Tensor, cache, padding: torch.Tensor | None) -> torch.Tensor:
    return model(ids, cache, last_only=True, padding=padding)[:, -1]  # (b, n_v)


def generate_batch(model, batch: Batch, max_new_tokens: int, eos_ids: Sequence[int] = (),
                   settings: SamplingSettings | None = None,
                   on_step: Callable[[list[int | None]], None] | None = None,
                   groups: Sequence[RowGroup] | None = None) -> BatchResult:
    """Prefill the padded batch once, then one cached step for all rows at a time. A row stops at an
    end-of-sequence id; it is then fed pads (masked out) until every row has stopped. `groups` (their
    rows adding up to the batch's) sample their rows each with their own settings and generator;
    without them every row is sampled with `settings`."""
    from inspector.runtime.generate import check_context

    from inspector.runtime.generate import check_ids

    for row in batch.rows:
        check_ids(row, "prompt", model.spec.vocab_size)
    check_ids([batch.pad_id], "pad", model.spec.vocab_size)
    check_context(model.spec, max(len(r) for r in batch.rows), max_new_tokens)
    b = len(batch.rows)
    groups = list(groups) if groups else [RowGroup(settings or SamplingSettings(), b)]
    if sum(g.rows for g in groups) != b or any(g.rows < 1 for g in groups):
        raise InspectError(f"row groups of {[g.rows for g in groups]} rows do not cover a batch of {b} rows")
    device = next(model.parameters()).device
    draw = _drawer(groups, device)
    result = BatchResult([[] for _ in range(b)], ["max_new_tokens"] * b)
    done = [False] * b
    cache, padding = model.new_cache(), batch.padding(device)
    start = time.perf_counter()
    logits = _forward_last(model, batch.input_ids(device), cache, padding)  # (b, n_v)
    _sync(device)
    result.prefill_s = time.perf_counter() - start
    for step in range(max_new_tokens):
        chosen = draw(logits)  # b ids
        fed, shown = [], []
        for row, token in enumerate(chosen):
            if done[row]:
                fed.append(batch.pad_id)
                shown.append(None)
                continue
            result.tokens[row].append(token)
            fed.append(token)
            shown.append(token)
            if token in eos_ids:
                done[row], result.stops[row] = True, "eos"
        if on_step is not None:
            on_step(shown)
        if all(done) or step == max_new_tokens - 1:
            break
        if padding is not None:
            padding = torch.cat((padding, torch.ones((b, 1), dtype=padding.dtype, device=device)), dim=1)  # (b, t+1)
        start = time.perf_counter()
        logits = _forward_last(model, torch.tensor(fed, device=device)[:, None], cache, padding)  # (b, n_v)
        _sync(device)
        result.decode_s += time.perf_counter() - start
        result.steps += 1
    return result
