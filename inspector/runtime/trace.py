"""Tracing the reference forward pass: forward hooks that record output shapes, step by step.

`Recorder` registers a forward hook on every submodule of the model (the named layers and the
`Tap` points inside attention and the MLP), stores only shapes and dtypes (never tensors), can
time each module, and removes its hooks on exit. `trace_prompt` runs tokenization, the prefill
forward, the next-token choice and optional cached decode steps, and returns `TraceResult` rows
labelled with the seed 003 step each one illustrates. `collapse` folds repeated layers whose
shapes equal layer 0's. No printing here; inspector.reports.trace renders.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Container, Iterable

import torch
from torch import nn


# Module path suffix -> (seed 003 step, what happens there). The first matching suffix wins.
DESCRIPTIONS: tuple[tuple[str, str, str], ...] = (
    ("embed", "Step 4", "embedding lookup: ids (b, n) -> (b, n, d)"),
    ("rope", "Step 5", "RoPE cos, sin: (1, n, d_h) each"),
    ("attn_norm", "Step 5", "RMS norm"),
    ("attn.qkv", "Step 5", "fused Q/K/V projection"),
    ("attn.q", "Step 5", "Q = x W_Q (+ bias)"),
    ("attn.k", "Step 5", "K = x W_K (+ bias)"),
    ("attn.v", "Step 5", "V = x W_V (+ bias)"),
    ("attn.q_norm", "Step 5", "q RMSNorm over d_h (before RoPE)"),
    ("attn.k_norm", "Step 5", "k RMSNorm over d_h (before RoPE)"),
    ("attn.q_heads", "Step 5", "Q reshaped and transposed to (b, n_h, n, d_h)"),
    ("attn.k_heads", "Step 5", "K reshaped and transposed to (b, n_kv, n, d_h)"),
    ("attn.v_heads", "Step 5", "V reshaped and transposed to (b, n_kv, n, d_h)"),
    ("attn.q_rope", "Step 5", "RoPE applied to Q (rotate-half pairs)"),
    ("attn.k_rope", "Step 5", "RoPE applied to K"),
    ("attn.k_cache", "1.2.5.1", "K cache after appending: (b, n_kv, t+n, d_h)"),
    ("attn.v_cache", "1.2.5.1", "V cache after appending: (b, n_kv, t+n, d_h)"),
    ("attn.k_repeat", "Step 5", "GQA: K repeated to n_h heads"),
    ("attn.v_repeat", "Step 5", "GQA: V repeated to n_h heads"),
    ("attn.scores", "1.2.5.2", "Q K^T / sqrt(d_h) + causal mask"),
    ("attn.probs", "Step 5", "attention weights: softmax over keys"),
    ("attn.heads", "Step 5", "weighted sum of V, per head"),
    ("attn.o", "Step 5", "heads concatenated to (b, n, d), then W_o"),
    ("attn", "Step 5", "self-attention output"),
    ("after_attn", "Step 5", "residual: x + attention"),
    ("mlp_norm", "Step 6", "RMS norm"),
    ("mlp.gate_up", "Step 6", "fused gate and up projections"),
    ("mlp.gate", "Step 6", "gate projection"),
    ("mlp.up", "Step 6", "up projection"),
    ("mlp.gated", "Step 6", "silu(gate) * up"),
    ("mlp.down", "Step 6", "down projection"),
    ("mlp", "Step 6", "FFN output"),
    ("norm", "Step 8", "final RMS norm"),
    ("lm_head", "Step 9", "LM head: logits (b, n, n_v)"),
)
_LAYER = re.compile(r"^layers\.(\d+)(?:\.|$)")


def describe(name: str) -> tuple[str, str]:
    """(step, text) for a module path such as 'layers.3.attn.q'."""
    layer = _LAYER.match(name)
    rel = name[layer.end():] if layer else name
    if layer and rel == "":
        return "Step 7", "decoder layer output: x + FFN (residual)"
    for suffix, step, text in DESCRIPTIONS:
        if rel == suffix:
            return step, text
    return "", ""


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


@dataclass(frozen=True)
class Record:
    name: str
    module: str
    shapes: tuple[tuple[int, ...], ...]
    dtype: str
    step: str = ""
    text: str = ""
    note: str = ""
    seconds: float | None = None

    @property
    def layer(self) -> int | None:
        m = _LAYER.match(self.name)
        return int(m.group(1)) if m else None


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
                                             start.elapsed_time(end) / 1000)
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
            step, text = describe(name)
            seconds = None
            start = self._starts.pop(name, None)
            if isinstance(start, float):
                seconds = time.perf_counter() - start
            self.records.append(Record(name, type(module).__name__, _shapes(output), _dtype(output), step, text,
                                       seconds=seconds))
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


DECODE_KEYS = ("embed", "layers.0.attn.k_cache", "layers.0.attn.v_cache", "layers.0.attn.probs", "lm_head")


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


def _signature(records: Iterable[Record]) -> tuple:
    return tuple((_LAYER.sub("", r.name), r.shapes, r.dtype) for r in records)


def collapse(rows: list[Record], show_layers: Container[int] | None = None) -> list[Record | tuple[int, int]]:
    """Rows with repeated layers folded: a (first, last) range stands for layers whose shapes
    equal layer 0's and are not in `show_layers` (default {0})."""
    show = {0} if show_layers is None else show_layers
    by_layer: dict[int, list[Record]] = {}
    for r in rows:
        if r.layer is not None:
            by_layer.setdefault(r.layer, []).append(r)
    base = _signature(by_layer.get(0, []))
    folded = {i for i, recs in by_layer.items() if i not in show and _signature(recs) == base and i != 0}
    if 0 not in show and 0 in by_layer:
        folded.add(0)
    out: list[Record | tuple[int, int]] = []
    for r in rows:
        layer = r.layer
        if layer is None or layer not in folded:
            out.append(r)
        elif out and isinstance(out[-1], tuple) and out[-1][1] in (layer, layer - 1):
            out[-1] = (out[-1][0], layer)
        elif not (out and isinstance(out[-1], tuple) and out[-1][0] <= layer <= out[-1][1]):
            out.append((layer, layer))
    return out
