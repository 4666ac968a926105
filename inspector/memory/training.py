"""Fine-tuning memory per GPU: full (with ZeRO and offload), LoRA and QLoRA, as rows with formulas.

Full fine-tuning: the model states of `inspector.memory.zero`, then activations and logits
(`inspector.memory.activations`) and a fixed allowance for the CUDA context. LoRA: the frozen base
in 16-bit, the adapters in fp32 with fp32 gradients and the optimizer's fp32 states (peft casts
adapters of a 16-bit model to fp32). QLoRA: the same with the base's Linear weights in NF4
(`inspector.memory.quant`), the embedding, the LM head and every non-Linear parameter in 16-bit.

`precision`: "mixed" (the default) keeps fp32 master weights, gradients and Adam moments (for LoRA,
peft's fp32 adapters on the 16-bit base, in a loop without autocast: each adapter keeps an fp32 copy of
its input); "autocast" is the same under torch.autocast (HF Trainer's bf16=True: the adapters read
the 16-bit input); "bf16" is torch's AdamW on bf16 parameters: weights,
gradients and both moments in bf16 (8 B per parameter), the adapters too (peft's
autocast_adapter_dtype=False).

The peak is the largest of three phases, not the sum of every row (`PHASES`): the start of backward
(weights, optimizer states, every saved activation and the loss's logits at LogSoftmaxBackward),
the recompute of one layer under --recompute full, and the optimizer step (weights, gradients,
states and the step's temporaries: torch's foreach AdamW allocates sqrt(v), one moment's size).
Gradients are absent at the start of backward (zero_grad(set_to_none=True), torch's default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inspector.errors import InspectError
from inspector.inventory.accounting import Accounting
from inspector.memory.activations import (ATTENTION, RECOMPUTE, Adapters, counts_saved, loss_peak,
                                          saved_training_terms, training_terms)
from inspector.memory.gpus import GIB, Gpu
from inspector.memory.lora import LoraCount, LoraOptions, count
from inspector.memory.modules import LINEAR, Module, largest_layer_params, runtime_modules
from inspector.memory.quant import FORMATS, quantized_bytes
from inspector.memory.zero import OPTIMIZER_NAMES, OPTIMIZERS, ZeroLayout, model_states
from inspector.units import n

MODES = ("full", "lora", "qlora")
# mixed: fp32 master states (LoRA: peft's fp32 adapters, a plain loop without autocast, so each adapter
#   reads an fp32 copy of its input); autocast: the same states under torch.autocast(bf16) (HF Trainer's
#   bf16=True), where the adapters read the 16-bit input; bf16: everything in bf16 (autocast_adapter_dtype=False)
PRECISIONS = ("mixed", "autocast", "bf16")
# phases of one training step whose live bytes are summed; the peak is the largest
LOSS, RECOMPUTE_PHASE, STEP = "start of backward", "recompute", "optimizer step"
PHASES = (LOSS, RECOMPUTE_PHASE, STEP)
STEP_TEMP = ("adamw", "adamw-fp32")  # torch's foreach AdamW: sqrt(exp_avg_sq), one moment's size


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
    precision: str = "mixed"  # PRECISIONS
    activations: str = "saved"  # "saved" (as transformers keeps them, where counts_saved) | "korthikanti"

    @property
    def layout(self) -> ZeroLayout:
        return ZeroLayout(self.zero, self.offload, self.gpus_per_node, self.nodes, self.zero_init)


@dataclass(frozen=True)
class Row:
    name: str
    gpu: int
    cpu: int
    formula: str
    phases: tuple[str, ...] = PHASES


@dataclass(frozen=True)
class Training:
    options: TrainOptions
    gpu: Gpu
    rows: tuple[Row, ...]
    params: int
    largest_layer: int
    lora: LoraCount | None = None
    notes: tuple[str, ...] = ()

    def phase_bytes(self, phase: str) -> int:
        return sum(r.gpu for r in self.rows if phase in r.phases)

    @property
    def phases(self) -> tuple[str, ...]:
        """The phases this plan has: the recompute phase only under --recompute full."""
        recompute = any(r.phases == (RECOMPUTE_PHASE,) for r in self.rows)
        return tuple(p for p in PHASES if p != RECOMPUTE_PHASE or recompute)

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=self.phase_bytes)

    @property
    def per_gpu(self) -> int:
        """The peak: the largest phase's bytes."""
        return self.phase_bytes(self.peak_phase)

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
    if o.precision not in PRECISIONS:
        raise InspectError(f"--precision {o.precision!r} is not one of {', '.join(PRECISIONS)}")
    if o.precision == "bf16" and (o.zero or o.optimizer == "adamw-fp32"):
        raise InspectError("--precision bf16 counts torch's optimizer on bf16 parameters; DeepSpeed keeps fp32 "
                           "master weights (drop --zero) and adamw-fp32 is fp32 throughout")
    if o.mode != "full" and (o.zero or o.offload != "none"):
        raise InspectError(f"--zero/--offload count full fine-tuning's states; --train {o.mode} keeps the base "
                           "frozen and replicated (pass --train full, or drop --zero/--offload)")


def _shared_rows(acc: Accounting, o: TrainOptions, adapters: Adapters | None) -> list[Row]:
    t = acc.spec.text
    if o.activations == "saved" and o.attention == "flash" and counts_saved(t, adapters):
        terms = saved_training_terms(t, o.seq_len, o.micro_batch, o.recompute, adapters)
    else:  # Korthikanti et al.: eager attention, MoE, MLA and other norms or MLPs
        terms = training_terms(t, o.seq_len, o.micro_batch, o.recompute, o.attention)[:-1]
    loss = loss_peak(t, o.seq_len, o.micro_batch)
    rows = [Row(terms[0].name, terms[0].bytes, 0, terms[0].formula, (LOSS, RECOMPUTE_PHASE))]
    rows += [Row(x.name, x.bytes, 0, x.formula, (RECOMPUTE_PHASE,)) for x in terms[1:]]
    rows.append(Row(loss.name, loss.bytes, 0, loss.formula, (LOSS,)))
    rows.append(Row("CUDA context and allocator allowance", o.overhead_bytes, 0, "allowance, --overhead-gib"))
    return rows


def _step_temp(o: TrainOptions, count: int, moment: int, what: str) -> list[Row]:
    if o.optimizer not in STEP_TEMP or o.zero:
        return []
    return [Row("Optimizer step temporaries (foreach AdamW: sqrt of the second moment)", moment * count, 0,
                f"{moment}·{what}", (STEP,))]


def _state_bytes(o: TrainOptions) -> int:
    """Optimizer state bytes per trainable parameter: Adam's moments and SGD's momentum follow the
    parameters' dtype under --precision bf16; 8-bit Adam's states are 2 B either way."""
    k = OPTIMIZERS[o.optimizer][2]
    return k // 2 if o.precision == "bf16" and o.optimizer != "adam8bit" else k


def _full(acc: Accounting, o: TrainOptions, params: int, largest: int) -> list[Row]:
    name = OPTIMIZER_NAMES[o.optimizer]
    states = model_states(params, largest, o.layout, o.optimizer)
    if o.zero == 0 and o.precision == "bf16":
        k = _state_bytes(o)
        return [Row("Weights (bf16)", 2 * params, 0, f"2·P = 2 × {n(params)}"),
                Row("Gradients (bf16)", 2 * params, 0, "2·P", (STEP,)),
                Row(f"Optimizer states ({name}, bf16 states)", k * params, 0, f"{k}·P")] + \
            _step_temp(o, params, 2, "P")
    if o.zero == 0:
        w, g, k = OPTIMIZERS[o.optimizer]
        weights = "fp32 + 16-bit weights" if w == 6 else "fp32 weights"
        return [Row(f"Weights ({weights})", w * params, 0, f"{w}·P = {w} × {n(params)}"),
                Row("Gradients (fp32)", g * params, 0, f"{g}·P", (STEP,)),
                Row(f"Optimizer states ({name})", k * params, 0, f"{k}·P")] + _step_temp(o, params, 4, "P")
    label = "DeepSpeed's estimator" if o.zero in (2, 3) else "DeepSpeed's accounting; its estimators lack ZeRO-1"
    return [Row(f"Model states, ZeRO-{o.zero}, offload {o.offload} ({name}; {label})", states.gpu, states.cpu,
                states.formula.replace("P", f"P[{n(params)}]", 1).replace("L", f"L[{n(largest)}]", 1))]


def _adapters(acc: Accounting, o: TrainOptions, modules: list[Module], params: int) -> tuple[list[Row], LoraCount]:
    lc = count(acc.spec.model_type, acc.spec.name, modules, params, o.lora)
    t = lc.trainable
    k = _state_bytes(o)
    c = 2 if o.precision == "bf16" else 4
    kind = "bf16" if c == 2 else "fp32"
    if o.mode == "lora":
        base = Row("Base weights, frozen (16-bit)", 2 * params, 0, f"2·P = 2 × {n(params)}")
    else:
        fmt = "nf4-dq" if o.double_quant else "nf4"
        nf4, quantized = _nf4_base_bytes(acc, modules, fmt)
        base = Row(f"Base weights, frozen ({fmt}; embedding, LM head and non-Linear parameters 16-bit)", nf4, 0,
                   f"{n(quantized)} Linear weights: {FORMATS[fmt].rule}; {n(params - quantized)} others × 2 B")
    rows = [base,
            Row(f"Adapters ({kind})", c * t, 0, f"{c}·T = {c} × {n(t)}"),
            Row(f"Adapter gradients ({kind})", c * t, 0, f"{c}·T", (STEP,)),
            Row(f"Adapter optimizer states ({OPTIMIZER_NAMES[o.optimizer]})", k * t, 0, f"{k}·T")]
    return rows + _step_temp(o, t, c, "T"), lc


def _adapters_record(lc: LoraCount, o: TrainOptions) -> Adapters:
    names = tuple(a.target.split(" ")[0] for a in lc.adapted if a.modules)
    return Adapters(names, o.lora.rank, 4 if o.precision == "mixed" else 2)


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
    adapters = None if lc is None else _adapters_record(lc, o)
    return Training(o, gpu, tuple(rows + _shared_rows(acc, o, adapters)), params, largest, lc)
