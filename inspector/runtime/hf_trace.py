"""Per-module shapes of a transformers forward on the meta device, for a model with no native family.

transformers (the `hf` extra) builds the model from its config on meta (`build_meta` of
inspector.inventory.transformers_meta: the build `params`, `memory` and `flops` use), a forward hook
on every submodule records its qualified name, class, input and output tensor shapes and dtype
(shapes only, never values; hooks removed after), and one forward of N stand-in ids runs with
`use_cache=True`. Inputs are the tensors passed positionally and those passed as `hidden_states`,
`input_ids`, `inputs_embeds`, `x` or `input` (masks, positions and caches are not listed). Outputs
are every tensor of the returned value (tuples, lists and transformers' ModelOutput dicts; a cache
object is skipped). The records are `inspector.steps.Record`s, so the reports fold repeated layers
as for a native trace.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from inspector.inventory.transformers_meta import build_meta
from inspector.runtime.hf_run import device_of, first_that_runs, on_meta_or_cpu, ran_on, variants
from inspector.steps import Record

INPUT_KWARGS = ("hidden_states", "input_ids", "inputs_embeds", "x", "input")
DTYPES = {"auto": "bfloat16", "bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16",
          "fp32": "float32", "float32": "float32"}  # meta with --dtype auto: bf16, as the native meta trace


@dataclass(frozen=True)
class HfRecord:
    """One module's call: a Record (name, class, output shapes, dtype) and its input shapes."""

    record: Record
    inputs: tuple[tuple[int, ...], ...]


@dataclass
class HfTrace:
    """What `hf_trace` returns: the records of one forward, in the order the modules finished."""

    model: str
    model_type: str
    class_name: str
    transformers_version: str
    dtype: str
    seq_len: int
    stand_in: str
    records: list[HfRecord] = field(default_factory=list)
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    tree: tuple[str, ...] = ()  # every submodule's qualified name, parents first (named_modules' order)

    @property
    def rows(self) -> list[Record]:
        return [r.record for r in self.records]

    def path_line(self) -> str:
        """The one line naming the path that answered."""
        version = ".".join(self.transformers_version.split(".")[:2])
        return f"from transformers {version} {ran_on(self.notes)} ({self.class_name}; no native family)"


def _tensors(torch, value: Any, depth: int = 0) -> list[Any]:
    """The tensors of a module's output: a tensor, tuples/lists/dicts of them (ModelOutput is a dict)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if depth > 4:
        return []
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(torch, v, depth + 1)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(torch, v, depth + 1)]
    return []


def _hook(torch, out: list[HfRecord], name: str):
    def hook(module, args, kwargs, output) -> None:
        given = [a for a in args if isinstance(a, torch.Tensor)]
        given += [kwargs[k] for k in INPUT_KWARGS if isinstance(kwargs.get(k), torch.Tensor)]
        produced = _tensors(torch, output)
        dtype = str(produced[0].dtype).removeprefix("torch.") if produced else ""
        out.append(HfRecord(Record(name, type(module).__name__, tuple(tuple(t.shape) for t in produced), dtype),
                            tuple(tuple(t.shape) for t in given)))
        return None  # a hook that returns a value would replace the output

    return hook


def _forward(torch, model, seq_len: int, records: list) -> tuple[str, ...]:
    """One forward of `seq_len` stand-in ids with transformers' cache, an all-ones mask and positions
    0..N-1, else the other inputs that mean the same for one unpadded sequence (`hf_run.variants`:
    no mask, a prepared 4-D mask, the ids alone). Records of a failed try are dropped."""
    device = device_of(model)
    base = {"input_ids": torch.zeros(1, seq_len, dtype=torch.long, device=device), "use_cache": True,
            "position_ids": torch.arange(seq_len, device=device)[None]}

    def call(kwargs: dict) -> None:
        records.clear()
        with torch.no_grad():
            model(**kwargs)

    _, note = first_that_runs(call, variants(torch, model, base, ids_alone=True))
    return (note,) if note else ()


def _hooked(b, seq_len: int, records: list) -> tuple[str, ...]:
    """The forward of `_forward` with a hook on every submodule of b's model, the hooks removed after."""
    torch, model = b.torch, b.model
    handles = [m.register_forward_hook(_hook(torch, records, n), with_kwargs=True)
               for n, m in model.named_modules() if n]
    try:
        return _forward(torch, model, seq_len, records)
    finally:
        for handle in handles:
            handle.remove()


def hf_trace(cfg: dict[str, Any], name: str, where: str, seq_len: int, dtype: str = "auto") -> HfTrace:
    """Build `cfg` with transformers on meta, hook every module, run `seq_len` stand-in ids (on the CPU with
    zero weights where meta cannot run the forward: `hf_run.on_meta_or_cpu`)."""
    built = build_meta(cfg, where)
    torch, model = built.torch, built.model
    width = DTYPES[dtype]
    start = time.perf_counter()
    records: list[HfRecord] = []
    notes, where_run = on_meta_or_cpu(built, lambda b: _hooked(b, seq_len, records), getattr(torch, width))
    stand_in = f"{seq_len} stand-in ids (no tokenizer on this path): shapes depend only on their number"
    return HfTrace(name, built.model_type, type(model).__name__, built.transformers.__version__, width, seq_len,
                   stand_in, records, built.seconds + time.perf_counter() - start, where_run + notes,
                   tuple(n for n, _ in model.named_modules() if n))
