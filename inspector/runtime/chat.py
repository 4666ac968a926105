"""A multi-turn conversation that keeps its KV cache between turns.

Section 1.2.5.1 of *Implementations of Large Language Models*.

Each turn re-renders the chat template over the whole conversation and tokenizes it. The new ids
are not simply appended to what the cache holds: the template may end every prompt with a
generation header (Qwen2's "<|im_start|>assistant\n"), close the previous reply with its own end
token, re-tokenize the reply text differently from the ids that were sampled, or rewrite earlier
turns (a template that drops a reasoning model's <think> block from past replies, or Llama 3.2
Instruct's system header with today's date). So the cache keeps the ids it holds; a turn finds the
longest common prefix of those and the new prompt's ids, crops the cache to it, and computes only
the rest. The tokens are then exactly those of running the whole prompt from scratch, which
`from_scratch` does, for a check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from inspector.errors import InspectError
from inspector.runtime.prepare import ModelChoice, Runtime
from inspector.runtime.sampling import SamplingSettings, sample


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass
class Turn:
    user: str
    reply: str
    tokens: list[int]  # the reply's sampled ids (its end token included)
    prompt_tokens: int  # the whole conversation's prompt ids this turn
    reused: int  # of them, already in the KV cache
    computed: int  # of them, run through the model (prompt_tokens - reused)
    cache_length: int  # positions in the cache after the turn
    seconds: float  # prefill of the computed tokens + generation
    stop: str  # "eos" | "max_new_tokens"

    @property
    def cut(self) -> bool:
        """Whether the token limit, not an end token, stopped the reply."""
        return self.stop == "max_new_tokens"


@dataclass
class Conversation:
    """Say something with `say(text)`; `turns` and `messages` grow with each call."""

    model: object  # inspector.reference.text.TextModel
    tokenizer: object  # inspector.tokenizer.text_tokenizer.TextTokenizer
    max_new_tokens: int = 64
    settings: SamplingSettings = field(default_factory=SamplingSettings)
    system: str | None = None
    messages: list[dict] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cache = self.model.new_cache()
        self.cached: list[int] = []  # the ids whose K/V the cache holds, in order
        if self.system:
            self.messages.append({"role": "system", "content": self.system})
        self.eos = tuple(self.tokenizer.eos_ids) or self.model.spec.eos_token_ids

    def prompt_ids(self, text: str) -> tuple[list[dict], list[int]]:
        if not text or not text.strip():
            raise InspectError(f"turn {len(self.turns) + 1}: the message is empty")
        messages = [*self.messages, {"role": "user", "content": text}]
        return messages, self.tokenizer.encode_chat(messages)

    def say(self, text: str, on_token: Callable[[str], None] | None = None) -> Turn:
        """Answer `text`: reuse the cached prefix, compute the rest, generate the reply."""
        from inspector.runtime.generate import check_context

        messages, ids = self.prompt_ids(text)
        check_context(self.model.spec, len(ids), self.max_new_tokens)
        reused = min(common_prefix(self.cached, ids), len(ids) - 1)  # at least one token gives the logits
        self.cache.crop(reused)
        self.cached = self.cached[:reused]
        start = time.perf_counter()
        tokens = self._generate(ids[reused:], on_token)
        seconds = time.perf_counter() - start
        stop = "eos" if tokens and tokens[-1] in self.eos else "max_new_tokens"
        reply = self.tokenizer.decode(tokens, skip_special_tokens=True)
        self.messages = [*messages, {"role": "assistant", "content": reply}]
        turn = Turn(text, reply, tokens, len(ids), reused, len(ids) - reused, self.cache.length, seconds, stop)
        self.turns.append(turn)
        return turn

    def same_as_from_scratch(self) -> bool:
        """Whether the last reply's tokens equal those of its whole prompt run from an empty cache with
        the same seed (the check of `inspect chat --check`)."""
        s = self.settings
        fresh = SamplingSettings(s.temperature, s.top_k, s.top_p, s.seed + len(self.turns) - 1, s.min_p)
        return from_scratch(self.model, self.tokenizer, self.messages[:-1], self.max_new_tokens,
                            fresh) == self.turns[-1].tokens

    @torch.inference_mode()
    def _generate(self, new: list[int], on_token: Callable[[str], None] | None) -> list[int]:
        device = next(self.model.parameters()).device
        settings = SamplingSettings(self.settings.temperature, self.settings.top_k, self.settings.top_p,
                                    self.settings.seed + len(self.turns), self.settings.min_p)
        generator = settings.generator(device)
        logits = self.model(torch.tensor([new], device=device), self.cache, last_only=True)[:, -1]  # (1, n_v)
        self.cached += new
        tokens: list[int] = []
        text = ""
        while len(tokens) < self.max_new_tokens:
            token = int(sample(logits, settings, generator)[0])
            tokens.append(token)
            if on_token is not None:
                now = self.tokenizer.decode(tokens, skip_special_tokens=True)
                if now.startswith(text):
                    on_token(now[len(text):])
                text = now
            if token in self.eos or len(tokens) == self.max_new_tokens:
                break
            logits = self.model(torch.tensor([[token]], device=device), self.cache)[:, -1]  # (1, n_v)
            self.cached.append(token)
        return tokens


def from_scratch(model, tokenizer, messages: list[dict], max_new_tokens: int,
                 settings: SamplingSettings | None = None) -> list[int]:
    """The reply tokens of the whole conversation's prompt computed with an empty cache."""
    from inspector.runtime.generate import generate

    ids = tokenizer.encode_chat(messages)
    eos = tuple(tokenizer.eos_ids) or model.spec.eos_token_ids
    return list(generate(model, ids, max_new_tokens, eos, settings or SamplingSettings()))


def start_chat(choice: ModelChoice, settings: SamplingSettings, max_new_tokens: int,
               system: str | None = None) -> tuple[Runtime, Conversation]:
    """What `inspect chat` starts from: the runtime of `choice` with real weights, and an empty
    conversation. A tokenizer without a chat template is refused."""
    from inspector.runtime.prepare import load_runtime
    from inspector.runtime.threads import use_threads

    use_threads(choice.threads)
    rt = load_runtime(choice, need_weights=True)
    if not rt.tokenizer.chat_template:
        raise InspectError(f"{rt.spec.name}: the tokenizer has no chat template ({rt.tokenizer.source})")
    return rt, Conversation(rt.model, rt.tokenizer, max_new_tokens, settings, system)


def read_turns(path) -> list[str]:
    """One user message per non-empty line of a UTF-8 text file."""
    from inspector.files import read_small_text

    turns = [line.strip() for line in read_small_text(path, "--turns").splitlines() if line.strip()]
    if not turns:
        raise InspectError(f"--turns {path}: no messages (one user message per line)")
    return turns
