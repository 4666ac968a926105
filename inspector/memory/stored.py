"""Weights as a checkpoint stores them: each tensor's stored parts, dtypes and bytes under `quantization_config`.

Given an Accounting (every tensor of the model) and config.json's `quantization_config`, `stored_weights`
returns, per tensor, the safetensors tensors the checkpoint holds for it (packed weight and side
tensors: names, shapes, dtypes) and their bytes, and the totals. Pure arithmetic, no torch.

Which tensors a method quantizes (the rest stay in the config's `torch_dtype`, bf16 by default):
  mxfp4                only the routed experts' weight tensors (transformers' Mxfp4 quantizer replaces
                       the experts module only; vLLM's Mxfp4Config quantizes FusedMoE only)
  fp8, fbgemm_fp8,     every Linear weight, except the output embedding (lm_head: transformers'
  bitsandbytes         get_keys_to_not_convert), routers, embeddings, and the MTP module's
                       embedding/eh_proj/head (DeepSeek-V3 stores them bf16)
  awq, gptq            the Linear weights of the decoder layers (AutoAWQ / GPTQModel quantize the
                       blocks only); gptq's lm_head when `lm_head: true`
  compressed-tensors   every Linear the config groups target, routers and lm_head included, except
                       what `ignore` names (exact module names, or `re:` regexes)
Norms, biases, 1-D tensors, positional embeddings and stored buffers are never quantized.
`modules_to_not_convert` (and `llm_int8_skip_modules` for bitsandbytes) removes modules as
transformers' should_convert_module matches them: a regex from the start of the module name up to
a module boundary, or a suffix; for AWQ also any substring (AutoAWQ, which writes the checkpoints,
and vLLM's is_layer_skipped_awq both test `name in prefix`).

Byte layouts (out × in is the logical Linear weight; 3-D fused experts (E, in, out), the
gpt-oss/Llama-4 checkpoint layout, are E such matrices):
  mxfp4      X_blocks U8 (E, out, in/32, 16) + X_scales U8 (E, out, in/32): 4.25 bits per weight
  fp8 block  weight F8_E4M3 (out, in) + weight_scale_inv F32 (⌈out/b0⌉, ⌈in/b1⌉)
  fp8 tensor weight F8_E4M3 + weight_scale F32 (); static activations add input_scale F32 () (vLLM's fp8
             docs / AutoFP8; transformers' FP8Linear names them weight_scale_inv / activation_scale)
  fbgemm_fp8 weight F8_E4M3 (out, in) + weight_scale F32 (out, 1)
  gptq       qweight I32 (⌈in·bits/32⌉, out), qzeros I32 (G, ⌈out·bits/32⌉), scales F16 (G, out),
             g_idx I32 (in,); G = ⌈in/group_size⌉ (1 when group_size is -1); AutoGPTQ and optimum
             also write an F16 bias (out,) for a Linear without one (vLLM skips it on load)
  awq        qweight I32 (in, ⌈out·bits/32⌉), qzeros I32 (G, ⌈out·bits/32⌉), scales F16 (G, out)
  bnb 4-bit  weight U8 (⌈n/2⌉, 1), absmax F32 (⌈n/64⌉,) | with double quant U8 (⌈n/64⌉,) +
             nested_absmax F32 (⌈blocks/256⌉,) + nested_quant_map F32 (256,); quant_map F32 (16,);
             quant_state U8 (the JSON of the state's non-tensor fields)
  bnb 8-bit  weight I8 (out, in) + SCB F32 (out,) + weight_format U8 ()
  compressed-tensors  weight F8_E4M3 | I8 (out, in), or weight_packed I32 (out, ⌈in·bits/32⌉) +
             weight_shape I64 (2,); weight_scale in the model dtype: (1,) tensor, (out, 1) channel,
             (out, ⌈in/g⌉) group, (⌈out/b0⌉, ⌈in/b1⌉) block; weight_zero_point when asymmetric;
             weight_g_idx I32 (in,) with actorder; input_scale (1,) for static activations
Sources are in notes27-qbytes.md and fixtures/quantized/README.md.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from inspector.checkpoint.quantization import QuantScheme, packed_shape, read_scheme, side_shape
from inspector.errors import InspectError
from inspector.inventory.accounting import Accounting
from inspector.inventory.entry import EMBED, EXPERTS, HEAD, MTP, MTP_HEAD, POS_EMBED, ROUTER, WeightEntry
from inspector.spec.config_reader import ConfigReader

Shape = tuple[int, ...]

# Bytes per element of the safetensors dtype names (safetensors' own names).
DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1, "U8": 1, "I8": 1, "I32": 4, "I64": 8}
TORCH_DTYPES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32", "half": "F16", "float": "F32"}
TORCH_NAMES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}
MX_BLOCK = 32  # OCP MX spec v1.0: 32 E2M1 values share one E8M0 scale
BNB_BLOCK, BNB_NESTED_BLOCK = 64, 256  # bitsandbytes Params4bit blocksize 64; double-quant blocksize 256
BNB_OFFSET_REPR = 19  # characters of nested_offset's float repr in the quant_state JSON (assumed; bitsandbytes
#                       0.50.2 on CPU wrote 17 to 20: tests/test_stored_bytes.py allows ±3 bytes per Linear)
# compressed-tensors formats with a layout here (nvfp4-pack-quantized, marlin-24, sparse formats are not)
CT_FORMATS = ("float-quantized", "int-quantized", "naive-quantized", "pack-quantized")
METHODS = ("mxfp4", "fp8", "fbgemm_fp8", "compressed-tensors", "awq", "gptq", "bitsandbytes")


@dataclass(frozen=True)
class Part:
    """One tensor the checkpoint file holds."""

    name: str
    shape: Shape
    dtype: str
    loaded: bool = True  # False: stored but skipped by vLLM's loader (AutoGPTQ's zero biases)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_BYTES[self.dtype]


@dataclass(frozen=True)
class StoredTensor:
    """One inventory tensor as stored: its parts (packed weight and side tensors) and a dtype label."""

    name: str
    label: str  # "BF16", "mxfp4", "fp8 block 128x128", "gptq int4 g128", ...
    quantized: bool
    parts: tuple[Part, ...]
    mtp: bool = False

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)


@dataclass(frozen=True)
class Plan:
    """What a `quantization_config` says, read and checked: the method and its layout settings."""

    method: str
    base: str = "BF16"  # dtype of what stays unquantized (config's torch_dtype)
    bits: int = 4
    group_size: int = -1
    block: tuple[int, int] | None = None
    static_input: bool = False  # a stored activation/input scale per Linear
    skip: tuple[str, ...] = ()  # module-name patterns left unquantized
    skip_given: bool = False  # the config lists them (transformers then adds no default lm_head skip)
    lm_head: bool = False  # gptq: lm_head quantized too
    only: tuple[str, ...] = ()  # gptq modules_in_block_to_quantize (leaf names)
    strategy: str = "tensor"  # compressed-tensors weights strategy
    ct_format: str = ""  # compressed-tensors format
    ct_float: bool = True  # compressed-tensors weights type float (fp8) vs int
    asymmetric: bool = False
    g_idx: bool = False  # gptq desc_act / compressed-tensors actorder: g_idx stored
    zero_bias: bool = False  # gptq written by AutoGPTQ/optimum: an F16 bias (out,) per Linear, even without one
    double_quant: bool = False
    quant_type: str = "nf4"


@dataclass(frozen=True)
class StoredWeights:
    """Every stored tensor of a model under its plan (None: no quantization_config), and the totals."""

    plan: Plan | None
    tensors: tuple[StoredTensor, ...]

    @property
    def total_bytes(self) -> int:
        """Everything the checkpoint stores (a safetensors index's `total_size`)."""
        return sum(t.nbytes for t in self.tensors)

    @property
    def mtp_bytes(self) -> int:
        """The multi-token-prediction module's bytes (stored; vLLM loads it only for speculative decoding)."""
        return sum(t.nbytes for t in self.tensors if t.mtp)

    @property
    def skipped_bytes(self) -> int:
        """Stored parts vLLM's loader skips (the zero biases AutoGPTQ writes)."""
        return sum(p.nbytes for t in self.tensors for p in t.parts if not p.loaded)

    @property
    def model_bytes(self) -> int:
        """What a plain vLLM load holds: the total without the MTP module and the skipped parts."""
        return self.total_bytes - self.mtp_bytes - sum(
            p.nbytes for t in self.tensors if not t.mtp for p in t.parts if not p.loaded)

    @property
    def quantized_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors if t.quantized)

    def by_label(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.label] = out.get(t.label, 0) + t.nbytes
        return out


# --------------------------------------------------------------------------- reading the config


def base_dtype(cfg: dict[str, Any], where: str) -> str:
    """The safetensors dtype of unquantized tensors: config.json's `torch_dtype` (or `dtype`), bf16 when absent."""
    r = ConfigReader(cfg, where)
    key = "torch_dtype" if r.has("torch_dtype") else "dtype"
    name = r.str(key, "bfloat16") if r.has(key) else "bfloat16"
    if name not in TORCH_DTYPES:
        raise r.fail(key, f"must be one of {', '.join(TORCH_DTYPES)}", name)
    return TORCH_DTYPES[name]


def _patterns(r: ConfigReader, key: str) -> tuple[str, ...]:
    value = r.raw(key)
    if value is None:
        return ()
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise r.fail(key, "must be a list of module names", value)
    for v in value:
        try:
            re.compile(v[3:] if v.startswith("re:") else v)
        except re.error as e:
            raise r.fail(key, f"holds an invalid pattern ({e})", v) from None
    return tuple(value)


def _ct_plan(r: ConfigReader, base: str) -> Plan:
    """compressed-tensors: the first config group with `weights`; `ignore`; `format`."""
    scheme = read_scheme(r.cfg, r.where)
    groups = r.sub("config_groups") if r.has("config_groups") else None
    weights = acts = None
    for name in (groups.cfg if groups is not None else {}):
        group = groups.sub(name)
        if group.has("weights"):
            weights = group.sub("weights")
            acts = group.sub("input_activations") if group.has("input_activations") else None
            break
    if weights is None:
        raise r.fail("config_groups", "must hold a group with 'weights'", r.raw("config_groups"))
    kind = weights.str("type", "int")
    if kind not in ("int", "float"):
        raise weights.fail("type", "must be 'int' or 'float'", kind)
    fmt = r.str("format", "float-quantized" if kind == "float" else "int-quantized")
    if fmt not in CT_FORMATS:
        raise r.fail("format", f"is not one whose layout is known here ({', '.join(CT_FORMATS)})", fmt)
    strategy = weights.str("strategy", "tensor")
    if strategy not in ("tensor", "channel", "group", "block"):
        raise weights.fail("strategy", "must be one of tensor, channel, group, block", strategy)
    if strategy == "group" and scheme.group_size <= 0:
        raise weights.fail("group_size", "must be a positive integer with strategy 'group'", weights.raw("group_size"))
    if strategy == "block" and scheme.block is None:
        raise weights.fail("block_structure", "must be two integers with strategy 'block'", None)
    static = acts is not None and not acts.bool("dynamic", False)
    actorder = weights.raw("actorder")
    return Plan("compressed-tensors", base, scheme.bits, scheme.group_size, scheme.block, static_input=static,
                skip=_patterns(r, "ignore"), skip_given=True, strategy=strategy, ct_format=fmt,
                ct_float=kind == "float", asymmetric=not weights.bool("symmetric", True),
                g_idx=actorder in ("group", True))


def read_plan(qc: Any, base: str, where: str) -> Plan | None:
    """The plan of a config.json `quantization_config` (None when there is none); a malformed field is
    one InspectError line naming it and its value."""
    scheme = read_scheme(qc, where)
    if scheme is None:
        return None
    r = ConfigReader(qc, where, "quantization_config")
    m = scheme.method
    if m == "compressed-tensors":
        return _ct_plan(r, base)
    if m not in METHODS:
        raise r.fail("quant_method", f"is not one whose layout is known here ({', '.join(METHODS)})", m)
    key = "llm_int8_skip_modules" if m == "bitsandbytes" else "modules_to_not_convert"
    skip, given = _patterns(r, key), r.raw(key) is not None
    if m == "bitsandbytes":
        quant_type = r.str("bnb_4bit_quant_type", "fp4")
        if quant_type not in ("nf4", "fp4"):
            raise r.fail("bnb_4bit_quant_type", "must be 'nf4' or 'fp4'", quant_type)
        return Plan(m, base, scheme.bits, skip=skip, skip_given=given, quant_type=quant_type,
                    double_quant=r.bool("bnb_4bit_use_double_quant", False))
    if m in ("gptq", "awq"):
        return Plan(m, base, scheme.bits, scheme.group_size, skip=skip, lm_head=r.bool("lm_head", False),
                    only=_block_modules(r), g_idx=m == "gptq", asymmetric=True,
                    zero_bias=m == "gptq" and not _gptqmodel(r))
    if m == "fp8":
        act = r.str("activation_scheme", "dynamic")
        if act not in ("dynamic", "static"):
            raise r.fail("activation_scheme", "must be 'dynamic' or 'static'", act)
        ignored = _patterns(r, "ignored_layers")  # vLLM's name for the same list
        return Plan(m, base, 8, block=scheme.block, static_input=act == "static", skip=skip + ignored,
                    skip_given=given or bool(ignored))
    return Plan(m, base, 8 if m == "fbgemm_fp8" else 4, skip=skip, skip_given=given)


def _gptqmodel(r: ConfigReader) -> bool:
    """Written by GPTQModel (its config names it in meta.quantizer), which stores biases only where the
    model has them; AutoGPTQ and optimum build every QuantLinear with bias=True (an F16 zero bias)."""
    meta = r.raw("meta")
    quantizer = meta.get("quantizer") if isinstance(meta, dict) else None
    names = quantizer if isinstance(quantizer, list) else [quantizer]
    return any(isinstance(q, str) and q.startswith("gptqmodel") for q in names)


def _block_modules(r: ConfigReader) -> tuple[str, ...]:
    """GPTQ's `modules_in_block_to_quantize`: lists of module names inside a block (flattened)."""
    value = r.raw("modules_in_block_to_quantize")
    if value is None:
        return ()
    flat = [v for group in value for v in group] if isinstance(value, list) and all(
        isinstance(g, list) for g in value) else None
    if flat is None or not all(isinstance(v, str) for v in flat):
        raise r.fail("modules_in_block_to_quantize", "must be a list of lists of module names", value)
    return tuple(flat)


# --------------------------------------------------------------------------- which tensors


def _module(e: WeightEntry) -> str:
    """The module a tensor belongs to: its name without the parameter (a fused expert tensor:
    the experts module)."""
    return e.name.rsplit(".", 1)[0]


def hf_skipped(module: str, patterns: tuple[str, ...]) -> bool:
    """transformers' should_convert_module, negated: a pattern matches from the start up to a module
    boundary (as a regex), or as a suffix."""
    boundary = r"(?:(?<=\.)|(?=\.|$))"
    return any(re.match(rf"(?:{p}){boundary}", module) or module.endswith(p) for p in patterns)


def ct_ignored(module: str, patterns: tuple[str, ...]) -> bool:
    """compressed-tensors' `ignore`: `re:` entries are regexes matched from the start, the rest exact names."""
    return any(re.match(p[3:], module) if p.startswith("re:") else p == module for p in patterns)


def is_linear(e: WeightEntry) -> bool:
    """A Linear weight or a fused experts tensor (the tensors quantization methods replace)."""
    if e.role in ("embed", "pos_embed", "mtp_embed") or e.group in (EMBED, POS_EMBED) or not e.parameter:
        return False
    if e.group == EXPERTS and len(e.shape) == 3:
        return not e.name.endswith("bias")
    return len(e.shape) == 2 and e.name.endswith(".weight")


# Methods whose quantized layer replaces fused 3-D expert tensors (transformers 5: Mxfp4GptOssExperts,
# FP8Experts, FbgemmFp8Llama4TextExperts); the others replace nn.Linear only.
FUSED_EXPERTS = ("mxfp4", "fp8", "fbgemm_fp8")


def _head_quantized(plan: Plan) -> bool:
    """The LM head: GPTQ's `lm_head` flag; AWQ never (default skips always added); fp8, fbgemm and
    bitsandbytes only when the config gives its own skip list (transformers then adds no default)."""
    if plan.method == "gptq":
        return plan.lm_head
    return plan.method in ("fp8", "fbgemm_fp8", "bitsandbytes") and plan.skip_given


# Linear weights a quantized checkpoint keeps unquantized whatever the method: DeepSeek-V3's MTP eh_proj, and
# DeepSeek-V3.2's indexer.weights_proj (transformers DeepseekV32PreTrainedModel._keep_in_fp32_modules, which its
# quantizers leave alone; the published fp8 checkpoint stores it in bf16, with no weight_scale_inv)
UNQUANTIZED_ROLES = ("mtp_eh_proj", "indexer_weights_proj.weight")


def quantized(e: WeightEntry, plan: Plan) -> bool:
    """Whether the method stores this tensor quantized (see the module docstring)."""
    if not is_linear(e) or (len(e.shape) == 3 and plan.method not in FUSED_EXPERTS):
        return False
    module, m = _module(e), plan.method
    if m == "compressed-tensors":
        return not ct_ignored(module, plan.skip)
    head = e.group in (HEAD, MTP_HEAD) or e.role in ("lm_head", "mtp_head")
    if e.group == ROUTER or e.role in UNQUANTIZED_ROLES or (head and not _head_quantized(plan)):
        return False
    if hf_skipped(module, plan.skip) or (m == "awq" and any(p in module for p in plan.skip)):
        return False
    if m == "mxfp4":
        return e.group == EXPERTS
    if m in ("gptq", "awq") and not head:
        return e.layer is not None and (not plan.only or any(module.endswith("." + o) for o in plan.only))
    return True


# --------------------------------------------------------------------------- layouts


def _mat(e: WeightEntry, transposed: bool) -> tuple[Shape, int, int]:
    """(leading dims, out, in) of a quantizable tensor: Linear (out, in) (GPT-2 Conv1D (in, out)),
    fused experts (E, in, out)."""
    if len(e.shape) == 3:
        return e.shape[:1], e.shape[2], e.shape[1]
    return ((), e.shape[1], e.shape[0]) if transposed else ((), e.shape[0], e.shape[1])


def _stem(e: WeightEntry) -> str:
    return e.name[: -len(".weight")] if e.name.endswith(".weight") else e.name


def _groups(size: int, cols: int) -> int:
    return 1 if size <= 0 else math.ceil(cols / size)


def _mxfp4(e: WeightEntry, lead: Shape, out: int, cols: int, plan: Plan) -> list[Part]:
    scheme = QuantScheme("mxfp4", 4, MX_BLOCK)
    stem = _stem(e)
    return [Part(stem + "_blocks", packed_shape(scheme, "blocks", (*lead, cols, out)), "U8"),
            Part(stem + "_scales", side_shape(scheme, "mx_scales", (*lead, cols, out)), "U8")]


def _fp8(e: WeightEntry, lead: Shape, out: int, cols: int, plan: Plan) -> list[Part]:
    stem = _stem(e)
    if plan.method == "fbgemm_fp8":
        scale = Part(stem + ".weight_scale", (*lead, out, 1), "F32")
    elif plan.block:
        b0, b1 = plan.block
        scale = Part(stem + ".weight_scale_inv", (*lead, math.ceil(out / b0), math.ceil(cols / b1)), "F32")
    else:  # per tensor: vLLM's documented fp8 layout (AutoFP8) names it weight_scale
        scale = Part(stem + ".weight_scale", lead, "F32")
    parts = [Part(stem + ".weight", (*lead, out, cols), "F8_E4M3"), scale]
    if plan.static_input:
        parts.append(Part(stem + ".input_scale", lead, "F32"))
    return parts


def _packed_rows(n: int, bits: int) -> int:
    """int32 words holding n values of `bits` bits (GPTQ/AWQ pack along one dimension)."""
    return math.ceil(n * bits / 32)


def _gptq_awq(e: WeightEntry, lead: Shape, out: int, cols: int, plan: Plan) -> list[Part]:
    stem, bits, g = _stem(e), plan.bits, _groups(plan.group_size, cols)
    qweight = (_packed_rows(cols, bits), out) if plan.method == "gptq" else (cols, _packed_rows(out, bits))
    parts = [Part(stem + ".qweight", (*lead, *qweight), "I32"),
             Part(stem + ".qzeros", (*lead, g, _packed_rows(out, bits)), "I32"),
             Part(stem + ".scales", (*lead, g, out), "F16")]
    if plan.g_idx:
        parts.append(Part(stem + ".g_idx", (*lead, cols), "I32"))
    return parts


def bnb_state_json(plan: Plan, out: int, cols: int, base: str) -> str:
    """The JSON bitsandbytes packs into `weight.quant_state.bitsandbytes__<type>` (QuantState.as_dict,
    packed): its non-tensor fields. nested_offset is a float; its repr is BNB_OFFSET_REPR characters."""
    state: dict[str, Any] = {"quant_type": plan.quant_type, "blocksize": BNB_BLOCK, "dtype": TORCH_NAMES[base],
                             "shape": [out, cols]}
    if plan.double_quant:
        state.update(nested_blocksize=BNB_NESTED_BLOCK, nested_dtype="float32", nested_offset=0)
        return json.dumps(state)[:-2] + "0" * BNB_OFFSET_REPR + "}"
    return json.dumps(state)


def _bnb(e: WeightEntry, lead: Shape, out: int, cols: int, plan: Plan) -> list[Part]:
    stem = _stem(e)
    n = math.prod(lead) * out * cols
    if plan.bits == 8:
        return [Part(stem + ".weight", (*lead, out, cols), "I8"), Part(stem + ".SCB", (*lead, out), "F32"),
                Part(stem + ".weight_format", (), "U8")]
    blocks = math.ceil(n / BNB_BLOCK)
    w = stem + ".weight"
    parts = [Part(w, (math.ceil(n / 2), 1), "U8")]
    if plan.double_quant:
        parts += [Part(w + ".absmax", (blocks,), "U8"),
                  Part(w + ".nested_absmax", (math.ceil(blocks / BNB_NESTED_BLOCK),), "F32"),
                  Part(w + ".nested_quant_map", (256,), "F32")]
    else:
        parts.append(Part(w + ".absmax", (blocks,), "F32"))
    state = bnb_state_json(plan, out, cols, plan.base)
    return parts + [Part(w + ".quant_map", (16,), "F32"),
                    Part(f"{w}.quant_state.bitsandbytes__{plan.quant_type}", (len(state),), "U8")]


def _ct_scale_shape(plan: Plan, out: int, cols: int) -> Shape:
    if plan.strategy == "channel":
        return (out, 1)
    if plan.strategy == "group":
        return (out, math.ceil(cols / plan.group_size))
    if plan.strategy == "block":
        return (math.ceil(out / plan.block[0]), math.ceil(cols / plan.block[1]))
    return (1,)


def _ct(e: WeightEntry, lead: Shape, out: int, cols: int, plan: Plan) -> list[Part]:
    stem, scale = _stem(e), _ct_scale_shape(plan, out, cols)
    if plan.ct_format == "pack-quantized":
        parts = [Part(stem + ".weight_packed", (*lead, out, _packed_rows(cols, plan.bits)), "I32"),
                 Part(stem + ".weight_shape", (2,), "I64")]
    else:
        parts = [Part(stem + ".weight", (*lead, out, cols), "F8_E4M3" if plan.ct_float else "I8")]
    parts.append(Part(stem + ".weight_scale", (*lead, *scale), plan.base))
    if plan.asymmetric:
        zp = (_packed_rows(scale[0], plan.bits), *scale[1:]) if plan.ct_format == "pack-quantized" else scale
        parts.append(Part(stem + ".weight_zero_point", (*lead, *zp),
                          "I32" if plan.ct_format == "pack-quantized" else "I8"))
    if plan.g_idx:
        parts.append(Part(stem + ".weight_g_idx", (*lead, cols), "I32"))
    if plan.static_input:
        parts.append(Part(stem + ".input_scale", (1,), plan.base))
    return parts


LAYOUTS = {"mxfp4": _mxfp4, "fp8": _fp8, "fbgemm_fp8": _fp8, "gptq": _gptq_awq, "awq": _gptq_awq,
           "bitsandbytes": _bnb, "compressed-tensors": _ct}


def label(plan: Plan) -> str:
    """A short dtype label for a quantized tensor of the plan."""
    m = plan.method
    if m == "fp8":
        return f"fp8 block {plan.block[0]}x{plan.block[1]}" if plan.block else "fp8 per-tensor"
    if m == "fbgemm_fp8":
        return "fp8 per-channel (fbgemm)"
    if m in ("gptq", "awq"):
        return f"{m} int{plan.bits} g{plan.group_size}"
    if m == "bitsandbytes":
        return "bnb int8" if plan.bits == 8 else f"bnb {plan.quant_type}" + (" dq" if plan.double_quant else "")
    if m == "compressed-tensors":
        kind = "fp" if plan.ct_float else "int"
        return f"ct {kind}{plan.bits} {plan.strategy}" + (f" g{plan.group_size}" if plan.strategy == "group" else "")
    return m


# --------------------------------------------------------------------------- the whole model


def _plain(e: WeightEntry, dtype: str) -> StoredTensor:
    return StoredTensor(e.name, dtype, False, (Part(e.name, e.shape, dtype),), e.component == MTP)


def stored_tensor(e: WeightEntry, plan: Plan | None, transposed: bool = False, biased: bool = False) -> StoredTensor:
    """One inventory tensor as the checkpoint stores it; `biased`: the model has this Linear's bias."""
    if plan is None or not quantized(e, plan):
        return _plain(e, plan.base if plan is not None else "BF16")
    lead, out, cols = _mat(e, transposed)
    parts = LAYOUTS[plan.method](e, lead, out, cols, plan)
    if plan.zero_bias and not biased:
        parts.append(Part(_stem(e) + ".bias", (*lead, out), "F16", loaded=False))
    return StoredTensor(e.name, label(plan), True, tuple(parts), e.component == MTP)


def stored_weights(acc: Accounting, cfg: dict[str, Any], where: str = "config.json") -> StoredWeights:
    """Every stored tensor of the model (tied heads left out) under config.json's quantization_config."""
    if not isinstance(cfg, dict):
        raise InspectError(f"{where}: must be a JSON object")
    base = base_dtype(cfg, where)
    plan = read_plan(cfg.get("quantization_config"), base, where)
    text = getattr(acc.spec, "text", None)
    transposed = bool(getattr(text, "transposed_linears", False))
    if plan is None:
        return StoredWeights(None, tuple(_plain(e, base) for e in acc.entries if e.stored))
    biases = {e.name[: -len(".bias")] for e in acc.entries if e.name.endswith(".bias")}
    return StoredWeights(plan, tuple(stored_tensor(e, plan, transposed, _stem(e) in biases)
                                     for e in acc.entries if e.stored))
