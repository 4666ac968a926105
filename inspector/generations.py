"""Records of `inspect run`: what to generate, each generation, and each model's run; no torch.

They sit below both `runtime/` (which fills them) and `reports/` (which lays them out): `RunPlan` (what to generate: prompts, models, temperatures, trials, length, sampling, expected
answers), `Generation` (one prompt at one temperature and trial, and what came out) and `ModelRun`
(one model's timed prefill, its generations and its experts' routing). No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class RunPlan:
    """What `inspect run` generates: every model x temperature x trial, the prompts as batches.
    `expect` maps a prompt to its accepted answers (None: not judged)."""

    prompts: tuple[str, ...]
    models: tuple[str | None, ...] = (None,)  # None: the default model
    temperatures: tuple[float, ...] = (0.0,)
    trials: int = 1  # seeds seed .. seed + trials - 1
    max_new_tokens: int = 32
    chat: bool = False
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    seed: int = 0
    expect: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    prompt_set: str = ""  # the name of --prompts, "" for prompts given on the command line

    @property
    def generations(self) -> int:
        """How many outputs the plan makes."""
        return len(self.prompts) * len(self.temperatures) * self.trials * len(self.models)


@dataclass(frozen=True)
class Generation:
    """One output: a prompt at one temperature and trial, with its batch's timings (the fields in the
    order of the JSON output). `correct` is None when the prompt is not judged."""

    model: str
    temperature: float
    trial: int
    seed: int
    prompt: str
    text: str
    token_ids: tuple[int, ...]
    tokens: int
    stop: str  # "eos" or "max_new_tokens"
    stopped_at_once: bool  # the first new token ended the sequence
    batch: int  # rows in the batch this prompt ran in
    prompt_tokens: int
    prefill_s: float
    decode_s: float
    prefill_tokens_per_s: float  # every row of the batch
    decode_tokens_per_s: float
    correct: bool | None


@dataclass
class ModelRun:
    """One model's part of a run: its timed prefill (optional), its generations and, for a MoE model,
    how often each expert was chosen."""

    model: str
    device: str
    dtype: str
    threads: int | None
    eos_text: str = ""  # the tokenizer's end-of-sequence token, shown for an output that stopped at once
    generations: list[Generation] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)  # inspector.steps.Record rows of the timed prefill
    timing_method: str = ""
    routing: list[tuple[int, int, list[int] | None]] = field(default_factory=list)  # MoE: tokens per expert
    roofline: dict[str, Any] = field(default_factory=dict)  # the first batch's timings beside this machine's roofline
