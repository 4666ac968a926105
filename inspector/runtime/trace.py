"""Tracing the reference forward pass: forward hooks that record output shapes, step by step.

`Recorder` registers a forward hook on every submodule of the model (the named layers and the
`Tap` points inside attention and the MLP), stores only shapes and dtypes (never tensors), can
time each module, and removes its hooks on exit. A Tap built with `values=True` (an MoE layer's
tokens per expert) also has its small output kept as a list of numbers, when the device has values. Each record carries the step note its module was
built with (inspector.reference.layers.note / Tap). `trace_prompt` runs tokenization, the prefill
forward, the next-token choice and optional cached decode steps, and returns `TraceResult` rows.
Records and the folding of repeated layers (`collapse`) live in inspector.steps, shared with the
image trace. No printing here; inspector.reports.trace renders.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Container

import torch
from torch import nn

from inspector.errors import InspectError
from inspector.steps import Folded, Record, collapse  # noqa: F401 (the step record and folding, shared)


def _shapes(value: Any) -> tuple[tuple[int, ...], ...]:
    if isinstance(value, torch.Tensor):
        return (tuple(value.shape),)
    if isinstance(value, (tuple, list)):
        return tuple(s for v in value for s in _shapes(v))
    return ()


def _dtype(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return str(value.dtype).removeprefix("torch.")
    if isinstance(value, (tuple, list)) and value:
        return _dtype(value[0])
    return ""


class Recorder:
    """Forward hooks on every named submodule (or those whose name `include` matches); shapes and
    dtypes only, hooks removed on exit; `on_record` sees each record as it is made.

    With `timed=True` each module's wall time is measured between a pre-hook and a hook (CUDA
    events on a GPU, read after one synchronize at the end).
    """

    def __init__(self, model: nn.Module, timed: bool = False, include: re.Pattern | None = None,
                 on_record: Callable[[Record], None] | None = None) -> None:
        self.model, self.timed, self.include, self.on_record = model, timed, include, on_record
        self.records: list[Record] = []
        self._handles: list[Any] = []
        self._starts: dict[str, Any] = {}
        self._events: list[tuple[int, Any, Any]] = []

    def __enter__(self) -> "Recorder":
        for name, module in self.model.named_modules():
            if not name or (self.include is not None and not self.include.fullmatch(name)):
                continue
            if self.timed:
                self._handles.append(module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(module.register_forward_hook(self._post(name)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._events:
            torch.cuda.synchronize()
            for index, start, end in self._events:
                r = self.records[index]
                self.records[index] = Record(r.name, r.module, r.shapes, r.dtype, r.step, r.text, r.note,
                                             start.elapsed_time(end) / 1000, r.data)
            self._events.clear()

    def _now(self, device_type: str):
        if device_type == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def _pre(self, name: str):
        def hook(module: nn.Module, args: Any) -> None:
            first = args[0] if args and isinstance(args[0], torch.Tensor) else None
            self._starts[name] = self._now(first.device.type if first is not None else "cpu")

        return hook

    def _post(self, name: str):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            step, text = getattr(module, "step_note", ("", ""))
            seconds = None
            start = self._starts.pop(name, None)
            if isinstance(start, float):
                seconds = time.perf_counter() - start
            data = None
            if getattr(module, "record_values", False) and isinstance(output, torch.Tensor) and not output.is_meta:
                data = tuple(output.detach().cpu().tolist())
            self.records.append(Record(name, type(module).__name__, _shapes(output), _dtype(output), step, text,
                                       seconds=seconds, data=data))
            if self.on_record is not None:
                self.on_record(self.records[-1])
            if start is not None and not isinstance(start, float):
                self._events.append((len(self.records) - 1, start, self._now("cuda")))
            return None  # a hook that returns a value would replace the output

        return hook


@dataclass
class TraceResult:
    model: str
    device: str
    dtype: str
    tokens: list[int]
    token_strings: list[str]
    prompt_text: str
    rows: list[Record] = field(default_factory=list)
    decode: list[list[Record]] = field(default_factory=list)
    next_tokens: list[int | None] = field(default_factory=list)
    next_strings: list[str] = field(default_factory=list)


DECODE_KEYS = ("embed", "layers.0.attn.k_cache", "layers.0.attn.v_cache", "layers.0.attn.latent_cache",
               "layers.0.attn.probs", "lm_head")


def _choose(logits: torch.Tensor, settings, generator) -> int | None:
    from inspector.runtime.sampling import sample

    if logits.device.type == "meta":
        return None
    return int(sample(logits[:, -1], settings, generator)[0])


def trace_prompt(runtime, prompt: str, chat: bool = False, decode_steps: int = 0, settings=None) -> TraceResult:
    """Tokenize, run the prefill forward under a Recorder, choose the next token, decode N steps."""
    from inspector.runtime.generate import encode_prompt
    from inspector.runtime.sampling import SamplingSettings

    tok, model, spec = runtime.tokenizer, runtime.model, runtime.spec.text
    text, ids = encode_prompt(tok, spec, prompt, chat, decode_steps, "decode_steps")
    settings = settings or SamplingSettings()
    device = runtime.device
    generator = settings.generator(device) if device.type != "meta" else None
    result = TraceResult(runtime.spec.name, str(device), runtime.dtype_name, ids, tok.token_strings(ids), text)
    cache = model.new_cache()
    x = torch.tensor([ids], device=device)  # (b, n)
    with torch.inference_mode():
        with Recorder(model) as rec:
            logits = model(x, cache)  # (b, n, n_v)
        result.rows = rec.records
        token = _choose(logits, settings, generator)
        _append_token(result, token, tok)
        for _ in range(decode_steps):
            fed = token if token is not None else 0
            with Recorder(model) as rec:
                logits = model(torch.tensor([[fed]], device=device), cache)  # (b, 1, n_v)
            result.decode.append([r for r in rec.records if r.name in DECODE_KEYS])
            token = _choose(logits, settings, generator)
            _append_token(result, token, tok)
    return result


def _append_token(result: TraceResult, token: int | None, tok) -> None:
    result.next_tokens.append(token)
    result.next_strings.append(tok.decode([token]) if token is not None else "")
