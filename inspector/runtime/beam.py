"""Beam search (Appendix C of *Implementations of Large Language Models*), step by step.

K beams run as one batch of K rows sharing the prompt's KV cache. Each step: log-softmax of each
beam's next-token logits plus the beam's cumulative log-probability gives (K, n_v) candidate
scores; the best 2K (more with several end-of-sequence ids) are taken, so that K live beams remain
even when some candidates end. Candidates that end (an end-of-sequence id, or the length limit)
and rank among the first K become finished hypotheses, scored sum(log p) / length ** length_penalty
(length = new tokens, the end id included); the best K non-ended candidates continue, and the KV
cache rows are reordered to follow their parent beams.

When to stop follows transformers' `early_stopping`: True stops once K hypotheses are finished;
False (the default) stops when the best live beam, at its current length, cannot beat the worst
finished one; "never" assumes, with a positive length penalty, that the live beams could still reach
the length limit. Every choice here is written to match transformers' beam search, which the tests
compare with on real weights (same best sequence, same score).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import torch

from inspector.errors import InspectError
from inspector.generations import RunPlan
from inspector.limits import MAX_BEAMS
from inspector.runtime.prepare import ModelChoice

_NEG = -1.0e9  # transformers' "cannot be chosen" score


@dataclass
class BeamStep:
    """One step: the candidate score matrix's shape, the beams kept and the hypotheses finished."""

    step: int
    candidates: tuple[int, int]  # (K, n_v)
    kept: list[tuple[int, int, float]]  # (parent beam, token, cumulative log-probability) per live beam
    # (none at the last step, where every candidate ends)
    finished: list[tuple[int, int, float]] = field(default_factory=list)  # (parent, token, final score)


@dataclass
class BeamResult:
    tokens: list[int]  # the best hypothesis's new tokens
    score: float  # its sum of log-probabilities / length ** length_penalty
    hypotheses: list[tuple[list[int], float]]  # every finished hypothesis, best first
    steps: list[BeamStep]
    prefill_s: float = 0.0
    decode_s: float = 0.0


class _Finished:
    """The K best finished hypotheses so far (slots start empty at score -1e9), as transformers keeps them."""

    def __init__(self, k: int, device) -> None:
        self.seqs: list[list[int]] = [[] for _ in range(k)]
        self.scores = torch.full((k,), _NEG, device=device)
        self.flags = torch.zeros(k, dtype=torch.bool, device=device)

    @property
    def full(self) -> bool:
        return bool(self.flags.all())

    def merge(self, seqs: torch.Tensor, final: torch.Tensor, fresh: torch.Tensor) -> list[int]:
        """Keep the best K of the old slots and the candidates (`final` scores, `fresh` = may enter);
        returns the indices of the candidates that entered."""
        k = len(self.seqs)
        scores = torch.cat((self.scores, final))
        best = scores.topk(k).indices.tolist()
        pool, flags = [*self.seqs, *seqs.tolist()], torch.cat((self.flags, fresh))
        self.seqs, self.scores, self.flags = [pool[i] for i in best], scores[best], flags[best]
        return [i - k for i in best if i >= k and bool(flags[i])]

    def ranked(self) -> list[tuple[list[int], float]]:
        order = self.scores.argsort(descending=True).tolist()
        return [(self.seqs[i], float(self.scores[i])) for i in order if bool(self.flags[i])]


def check_beams(num_beams: int) -> None:
    """--num-beams: 1 to MAX_BEAMS (inspector.limits); each beam is a row of the batch."""
    if not 1 <= num_beams <= MAX_BEAMS:
        raise InspectError(f"--num-beams must be between 1 and {MAX_BEAMS}, got {num_beams:,}")


def _check(num_beams: int, early_stopping: bool | str) -> None:
    check_beams(num_beams)
    if early_stopping not in (True, False, "never"):
        raise InspectError(f"--early-stopping must be true, false or never, got {early_stopping!r}")


MAX_LENGTH_PENALTY = 10  # transformers' examples use 0.6 to 2


@torch.inference_mode()
def beam_search(model, prompt: Sequence[int], num_beams: int, max_new_tokens: int, eos_ids: Sequence[int] = (),
                length_penalty: float = 1.0, early_stopping: bool | str = False) -> BeamResult:
    """The K best continuations of `prompt`; see the module docstring for the rules."""
    from inspector.runtime.generate import check_context

    _check(num_beams, early_stopping)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
            or not (math.isfinite(length_penalty) and abs(length_penalty) <= MAX_LENGTH_PENALTY):
        raise InspectError(f"--length-penalty must be a number from -{MAX_LENGTH_PENALTY} to {MAX_LENGTH_PENALTY}, "
                           f"got {length_penalty}")  # length ** penalty: NaN ranks nothing, a big one overflows
    if not prompt:
        raise InspectError("the prompt is empty: at least one token is needed")
    check_context(model.spec, len(prompt), max_new_tokens)
    k, device = num_beams, next(model.parameters()).device
    keep = max(2, 1 + len(eos_ids)) * k
    eos = torch.tensor(list(eos_ids) or [-1], device=device)
    cache = model.new_cache()
    start = time.perf_counter()
    logits = model(torch.tensor([list(prompt)], device=device), cache, last_only=True)[:, -1].float()  # (1, n_v)
    prefill_s = time.perf_counter() - start
    cache.reorder(torch.zeros(k, dtype=torch.long))  # K rows that share the prompt
    logits = logits.expand(k, -1)  # (K, n_v)
    running = torch.zeros((k, 0), dtype=torch.long, device=device)  # new tokens of each live beam
    live = torch.full((k,), _NEG, device=device)
    live[0] = 0.0  # only the first copy may start, or the K beams would be the same
    done = _Finished(k, device)
    improvable, steps, decode_s = True, [], 0.0
    for step in range(max_new_tokens):
        n_v = logits.shape[-1]
        scores = logits.log_softmax(dim=-1) + live[:, None]  # (K, n_v) cumulative log-probabilities
        top, index = scores.reshape(-1).topk(keep)  # (2K,)
        parent, token = index // n_v, index % n_v
        seqs = torch.cat((running[parent], token[:, None]), dim=1)  # (2K, step+1)
        ends = torch.isin(token, eos) | (step + 1 == max_new_tokens)  # (2K,)
        going = top + ends.float() * _NEG  # the K best that did not end go on
        nxt = going.topk(k).indices  # (K,)
        # candidates among the first K that ended become hypotheses, if they beat the worst one
        final = top / float(step + 1) ** length_penalty
        final = final + float((done.full and early_stopping is True) or not improvable) * _NEG
        fresh = ends & (torch.arange(keep, device=device) < k)
        entered = done.merge(seqs, final + (~fresh).float() * _NEG, fresh)
        running, live = seqs[nxt], going[nxt]
        steps.append(BeamStep(step + 1, (k, n_v), [(int(parent[i]), int(token[i]), float(going[i])) for i in nxt
                                                   if not bool(ends[i])],
                              [(int(parent[i]), int(token[i]), float(final[i])) for i in entered]))
        best_len = max_new_tokens if early_stopping == "never" and length_penalty > 0 else step + 1
        worst = float(done.scores.min()) if done.full else _NEG
        improvable = improvable and float(live[0]) / float(best_len) ** length_penalty > worst
        if not improvable or (done.full and early_stopping is True) or bool(ends.all()):
            break
        cache.reorder(parent[nxt])
        start = time.perf_counter()
        logits = model(running[:, -1:], cache)[:, -1].float()  # (K, n_v)
        decode_s += time.perf_counter() - start
    hyps = done.ranked()
    if not hyps:
        raise InspectError("beam search finished no hypothesis (max_new_tokens is 0?)")
    return BeamResult(hyps[0][0], hyps[0][1], hyps, steps, prefill_s, decode_s)


@dataclass(frozen=True)
class BeamSettings:
    """`inspect run --num-beams K`: the beams, the length penalty and when to stop (True, False or "never")."""

    num_beams: int
    length_penalty: float = 1.0
    early_stopping: bool | str = False


@dataclass(frozen=True)
class BeamRun:
    """A beam search of one prompt on one model, with the tokenizer that decodes its hypotheses."""

    model: str
    prompt: str
    result: BeamResult
    tokenizer: object  # inspector.tokenizer.text_tokenizer.TextTokenizer


def run_beams(plan: RunPlan, choice: ModelChoice, beams: BeamSettings) -> BeamRun:
    """What `inspect run --num-beams K` does: the plan's one prompt on its one model, checked before
    the weights load."""
    from inspector.runtime.batch import encode_prompts
    from inspector.runtime.prepare import load_runtime
    from inspector.runtime.threads import use_threads

    use_threads(choice.threads)
    if len(plan.prompts) != 1 or len(plan.models) != 1:
        raise InspectError("--num-beams runs one prompt on one model")
    check_beams(beams.num_beams)
    encoded: list[list[int]] = []

    def check(spec, tok) -> None:  # before the weights load
        encoded[:] = encode_prompts(tok, spec.text, plan.prompts, plan.chat, plan.max_new_tokens)[1]

    rt = load_runtime(replace(choice, model=plan.models[0]), need_weights=True, before_model=check)
    eos = tuple(rt.tokenizer.eos_ids) or rt.spec.text.eos_token_ids
    result = beam_search(rt.model, encoded[0], beams.num_beams, plan.max_new_tokens, eos, beams.length_penalty,
                         beams.early_stopping)
    return BeamRun(rt.spec.name, plan.prompts[0], result, rt.tokenizer)
