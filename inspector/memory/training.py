"""Fine-tuning memory per GPU: full (with ZeRO and offload), LoRA and QLoRA, as rows with formulas.

Full fine-tuning: the model states of `inspector.memory.zero`, then activations and logits
(`inspector.memory.activations`) and a fixed allowance for the CUDA context. LoRA: the frozen base
in 16-bit, the adapters in fp32 with fp32 gradients and the optimizer's fp32 states (peft casts
adapters of a 16-bit model to fp32). QLoRA: the same with the base's Linear weights in NF4
(`inspector.memory.quant`), the embedding, the LM head and every non-Linear parameter in 16-bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inspector.errors import InspectError
from inspector.inventory.accounting import Accounting
from inspector.memory.activations import ATTENTION, RECOMPUTE, training_terms
from inspector.memory.gpus import GIB, Gpu
from inspector.memory.lora import LoraCount, LoraOptions, count
from inspector.memory.modules import LINEAR, Module, largest_layer_params, runtime_modules
from inspector.memory.quant import FORMATS, quantized_bytes
from inspector.memory.zero import OPTIMIZER_NAMES, OPTIMIZERS, ZeroLayout, model_states
from inspector.units import n

MODES = ("full", "lora", "qlora")


@dataclass(frozen=True)
class TrainOptions:
    mode: str = "full"
    optimizer: str = "adamw"
    zero: int = 0
    offload: str = "none"
    zero_init: bool = True
    gpus_per_node: int = 1
    nodes: int = 1
    seq_len: int = 2048
    micro_batch: int = 1
    recompute: str = "none"
    attention: str = "flash"
    lora: LoraOptions = field(default_factory=LoraOptions)
    double_quant: bool = True
    overhead_bytes: int = GIB // 2

    @property
    def layout(self) -> ZeroLayout:
        return ZeroLayout(self.zero, self.offload, self.gpus_per_node, self.nodes, self.zero_init)


@dataclass(frozen=True)
class Row:
    name: str
    gpu: int
    cpu: int
    formula: str


@dataclass(frozen=True)
class Training:
    options: TrainOptions
    gpu: Gpu
    rows: tuple[Row, ...]
    params: int
    largest_layer: int
    lora: LoraCount | None = None
    notes: tuple[str, ...] = ()

    @property
    def per_gpu(self) -> int:
        return sum(r.gpu for r in self.rows)

    @property
    def cpu(self) -> int:
        return sum(r.cpu for r in self.rows)


def check(o: TrainOptions) -> None:
    if o.mode not in MODES:
        raise InspectError(f"--train {o.mode!r} is not one of {', '.join(MODES)}")
    if o.optimizer not in OPTIMIZERS:
        raise InspectError(f"--optimizer {o.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    if o.recompute not in RECOMPUTE:
        raise InspectError(f"--recompute {o.recompute!r} is not one of {', '.join(RECOMPUTE)}")
    if o.attention not in ATTENTION:
        raise InspectError(f"--attention {o.attention!r} is not one of {', '.join(ATTENTION)}")
    if o.mode != "full" and (o.zero or o.offload != "none"):
        raise InspectError(f"--zero/--offload count full fine-tuning's states; --train {o.mode} keeps the base "
                           "frozen and replicated (pass --train full, or drop --zero/--offload)")


def _shared_rows(acc: Accounting, o: TrainOptions) -> list[Row]:
    terms = training_terms(acc.spec.text, o.seq_len, o.micro_batch, o.recompute, o.attention)
    rows = [Row(t.name, t.bytes, 0, t.formula) for t in terms]
    rows.append(Row("CUDA context and allocator allowance", o.overhead_bytes, 0, "allowance, --overhead-gib"))
    return rows


def _full(acc: Accounting, o: TrainOptions, params: int, largest: int) -> list[Row]:
    name = OPTIMIZER_NAMES[o.optimizer]
    states = model_states(params, largest, o.layout, o.optimizer)
    if o.zero == 0:
        w, g, k = OPTIMIZERS[o.optimizer]
        weights = "fp32 + 16-bit weights" if w == 6 else "fp32 weights"
        return [Row(f"Weights ({weights})", w * params, 0, f"{w}·P = {w} × {n(params)}"),
                Row("Gradients (fp32)", g * params, 0, f"{g}·P"),
                Row(f"Optimizer states ({name})", k * params, 0, f"{k}·P")]
    label = "DeepSpeed's estimator" if o.zero in (2, 3) else "DeepSpeed's accounting; its estimators lack ZeRO-1"
    return [Row(f"Model states, ZeRO-{o.zero}, offload {o.offload} ({name}; {label})", states.gpu, states.cpu,
                states.formula.replace("P", f"P[{n(params)}]", 1).replace("L", f"L[{n(largest)}]", 1))]


def _adapters(acc: Accounting, o: TrainOptions, modules: list[Module], params: int) -> tuple[list[Row], LoraCount]:
    lc = count(acc.spec.model_type, acc.spec.name, modules, params, o.lora)
    t = lc.trainable
    k = OPTIMIZERS[o.optimizer][2]
    if o.mode == "lora":
        base = Row("Base weights, frozen (16-bit)", 2 * params, 0, f"2·P = 2 × {n(params)}")
    else:
        fmt = "nf4-dq" if o.double_quant else "nf4"
        nf4, quantized = _nf4_base_bytes(acc, modules, fmt)
        base = Row(f"Base weights, frozen ({fmt}; embedding, LM head and non-Linear parameters 16-bit)", nf4, 0,
                   f"{n(quantized)} Linear weights: {FORMATS[fmt].rule}; {n(params - quantized)} others × 2 B")
    rows = [base,
            Row("Adapters (fp32)", 4 * t, 0, f"4·T = 4 × {n(t)}"),
            Row("Adapter gradients (fp32)", 4 * t, 0, "4·T"),
            Row(f"Adapter optimizer states ({OPTIMIZER_NAMES[o.optimizer]})", k * t, 0, f"{k}·T")]
    return rows, lc


def _nf4_base_bytes(acc: Accounting, modules: list[Module], fmt: str) -> tuple[int, int]:
    tied = acc.spec.text.tie_embeddings
    total = quantized = 0
    for m in modules:
        if m.kind == LINEAR and not m.output_embedding and not m.router:
            weight = m.in_features * m.out_features
            total += quantized_bytes(weight, m.in_features, fmt) + 2 * (m.params - weight)
            quantized += weight
        elif not (m.output_embedding and tied):
            total += 2 * m.params
    return total, quantized


def plan(acc: Accounting, gpu: Gpu, o: TrainOptions, modules: list[Module] | None = None) -> Training:
    """The training plan; `modules` (runtime_modules(acc)) when the caller has them already."""
    check(o)
    modules = runtime_modules(acc) if modules is None else modules
    params, largest = acc.totals.total_params, largest_layer_params(modules)
    lc = None
    if o.mode == "full":
        rows = _full(acc, o, params, largest)
    else:
        rows, lc = _adapters(acc, o, modules, params)
    return Training(o, gpu, tuple(rows + _shared_rows(acc, o)), params, largest, lc)
