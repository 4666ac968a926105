"""Tracing the reference forward pass: forward hooks that record output shapes, step by step.

`Recorder` registers a forward hook on every submodule of the model (the named layers and the
`Tap` points inside attention and the MLP), stores only shapes and dtypes (never tensors), can
time each module, and removes its hooks on exit. A Tap built with `values=True` (an MoE layer's
tokens per expert) also has its small output kept as a list of numbers, when the device has values. Each record carries the step note its module was
built with (inspector.reference.layers.note / Tap). `trace_prompt` runs tokenization (several
prompts: one left-padded batch, inspector.runtime.batch), the prefill forward, the next-token choice
and optional cached decode steps, and returns a `TraceResult`.
Records, `TraceResult` and the folding of repeated layers live in inspector.steps (torch-free), shared
with the image trace and the reports. No printing here; inspector.reports.trace renders.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable

import torch
from torch import nn

from inspector.errors import InspectError
from inspector.steps import Record, TraceResult


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


DECODE_KEYS = ("embed", "mask", "layers.0.attn.k_cache", "layers.0.attn.v_cache", "layers.0.attn.latent_cache",
               "layers.0.attn.probs", "lm_head")


def _choose(logits: torch.Tensor, settings, generator) -> list[int] | None:
    from inspector.runtime.sampling import sample

    if logits.device.type == "meta":
        return None
    return sample(logits[:, -1], settings, generator).tolist()


def _inputs(runtime, prompts: list[str], chat: bool, seq_len: int | None, decode_steps: int):
    """(texts, id rows, token strings, stand-in note) for the prompts or --seq-len."""
    from inspector.runtime.batch import STAND_IN_NOTE, encode_prompts, stand_in_rows

    tok, vocab = runtime.tokenizer, runtime.spec.text.vocab_size
    if seq_len is None and tok is not None:
        texts, rows = encode_prompts(tok, runtime.spec.text, prompts, chat, decode_steps, "decode_steps")
        return texts, rows, [tok.token_strings(r) for r in rows], ""
    if tok is None and runtime.device.type != "meta":
        raise InspectError(f"{runtime.spec.name}: no tokenizer available offline; real weights need real ids")
    rows = stand_in_rows(prompts, seq_len, vocab)
    n = ", ".join(str(len(r)) for r in rows)
    what = "N" if len(rows) == 1 else "the row lengths"
    note = STAND_IN_NOTE.format(n=n, what=what) if tok is None else f"--seq-len {seq_len}: {n} stand-in ids"
    return list(prompts) or [""], rows, [[f"<{t}>" for t in r] for r in rows], note


def trace_prompt(runtime, prompt: str | list[str] | None, chat: bool = False, decode_steps: int = 0,
                 settings=None, seq_len: int | None = None) -> TraceResult:
    """Tokenize (several prompts: one left-padded batch), run the prefill forward under a Recorder,
    choose the next tokens, decode N cached steps. With `seq_len` (or no tokenizer, on meta) the ids
    are stand-ins: only their number matters for the shapes."""
    from inspector.runtime.batch import Batch
    from inspector.runtime.generate import check_context
    from inspector.runtime.sampling import SamplingSettings

    from inspector.errors import whole_number

    decode_steps = whole_number(decode_steps, "decode_steps")
    if seq_len is not None:
        seq_len = whole_number(seq_len, "seq_len", 1)
    prompts = [prompt] if isinstance(prompt, str) else list(prompt or [])
    tok, model, spec = runtime.tokenizer, runtime.model, runtime.spec.text
    texts, rows, strings, note = _inputs(runtime, prompts, chat, seq_len, decode_steps)
    check_context(spec, max(len(r) for r in rows), decode_steps)
    settings = settings or SamplingSettings()
    device = runtime.device
    generator = settings.generator(device) if device.type != "meta" else None
    pad_id = (tok.eos_ids[0] if tok is not None and tok.eos_ids else 0)
    batch = Batch(rows, pad_id)
    result = TraceResult(runtime.spec.name, str(device), runtime.dtype_name, rows[0], strings[0], texts[0],
                         batch_tokens=rows, batch_strings=strings, prompts=texts,
                         input_ids=batch.input_ids("cpu").tolist(), pad_id=pad_id if batch.padded else None,
                         stand_in=note)
    cache, padding = model.new_cache(), batch.padding(device)
    x = batch.input_ids(device)  # (b, n)
    with torch.inference_mode():
        with Recorder(model) as rec:
            logits = model(x, cache, padding=padding)  # (b, n, n_v)
        result.rows = rec.records
        chosen = _choose(logits, settings, generator)
        _append_tokens(result, chosen, tok)
        for _ in range(decode_steps):
            fed = chosen if chosen is not None else [0] * len(rows)
            if padding is not None:
                padding = torch.cat((padding, torch.ones_like(padding[:, :1])), dim=1)  # (b, t+1)
            with Recorder(model) as rec:
                logits = model(torch.tensor(fed, device=device)[:, None], cache, padding=padding)  # (b, 1, n_v)
            result.decode.append([r for r in rec.records if r.name in DECODE_KEYS])
            chosen = _choose(logits, settings, generator)
            _append_tokens(result, chosen, tok)
    return result


def _append_tokens(result: TraceResult, tokens: list[int] | None, tok) -> None:
    result.batch_next.append(list(tokens) if tokens is not None else [None] * result.batch_size)
    first = tokens[0] if tokens is not None else None
    result.next_tokens.append(first)
    result.next_strings.append(tok.decode([first]) if first is not None and tok is not None else "")
