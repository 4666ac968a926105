"""What vLLM allocates while loading a model beyond the checkpoint's bytes: RoPE caches and quantization transforms.

vLLM logs "Model loading took X GiB": torch's allocated bytes after `load_model`, which includes every
buffer the model's __init__ creates and everything `process_weights_after_loading` adds or replaces.
`load_extras` returns those bytes per rank as records (name, bytes, status, source), each read from
vLLM's code (the file and function are named in the record); the weights themselves are the
checkpoint's (inspector.memory.stored, split by inspector.memory.parallel). Pure arithmetic, no torch.

Covered:
  RoPE cos/sin caches  `get_rope` (vllm/model_executor/layers/rotary_embedding/__init__.py) builds one
        module per distinct (head size, rotary dim, max position, base, scaling, dtype) and shares it
        across layers; its non-persistent buffer `cos_sin_cache` (base.py `_compute_cos_sin_cache`) is
        positions × rotary_dim in the model dtype (cos and sin halves of rotary_dim/2 each). Positions
        per scaling type: default, llama3 → max_position; linear, dynamic → max_position × factor;
        yarn, deepseek_yarn → original_max_position × factor; longrope (Phi-3) → original + max_position
        (short and long caches concatenated); mrope (Qwen2-VL/2.5-VL/3-VL) → 4 × max_position
        (mrope.py: "enlarge max_position_embeddings to 4 times"). Gemma 3's sliding layers build a
        second, unscaled cache at rope_local_base_freq. gpt-oss asks for a float32 cache. Whole on
        every rank (every pipeline stage holds its own).
  MXFP4 MoE (gpt-oss)  per backend (quantization/mxfp4.py `get_mxfp4_backend`, `Mxfp4MoEMethod`):
        the allocation padded past the stored shapes, and Triton's (Hopper) transforms: biases to
        float32 and swizzled copies of the scales (triton_kernels HopperMXScaleLayout pads the rows
        to 2·num_warps·2·8 = 256 with num_warps 8, the columns to 2) beside the originals.
  FP8 on GPUs below compute capability 8.9  (Marlin weight-only): the weight repacks to the same
        bytes, the scales become the model dtype expanded to per-channel (block: per output column
        per k-block) (quantization/utils/marlin_utils_fp8.py `prepare_fp8_layer_for_marlin`).
  compressed-tensors FP8 (8.9 and up)  scales stored in the model dtype are allocated float32
        (quantization/utils/fp8_utils.py `create_fp8_scale_parameter`); column-parallel ones split by TP.
  bitsandbytes 4-bit, double quant  the nested absmax dequantized to float32 at load
        (model_loader/bitsandbytes_loader.py `_dequantize_dq`).
  GPTQ  g_idx (without act-order) and, on Marlin, the symmetric qzeros are replaced by empty tensors after
        loading: negative bytes (quantization/gptq_marlin.py, kernels/mixed_precision/marlin.py). AWQ on
        Marlin repacks weights and zero points to the same bytes: no record.
  MLA with a quantized kv_b_proj  a 16-bit copy of kv_b_proj (W_UK_T, W_UV) made at load
        (attention/backends/mla `process_weights_after_loading`; views when kv_b_proj is unquantized).
Statuses: "exact" (vLLM's arithmetic as read), "assumed" (not read, or a choice the flag in the source
text changes); the GPU's compute capability decides kernels; None assumes Hopper (9, 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from inspector.inventory.accounting import Accounting
from inspector.memory.parallel import Layout, local_experts

if TYPE_CHECKING:  # stored.py loads only for a quantized checkpoint (cold start of `memory` on a preset)
    from inspector.memory.stored import StoredWeights

EXACT, ASSUMED = "exact", "assumed"
HOPPER = (9, 0)
VLLM = "vllm-project/vllm vllm/model_executor/layers/"
ROPE_SRC = VLLM + "rotary_embedding/__init__.py get_rope, base.py RotaryEmbedding._compute_cos_sin_cache"
MXFP4_SRC = VLLM + "quantization/mxfp4.py Mxfp4MoEMethod.create_weights / process_weights_after_loading"
# Model files that ask get_rope for a dtype other than the model's (bytes per element).
ROPE_DTYPE = {"gpt_oss": (4, "float32: models/gpt_oss.py OAIAttention passes dtype=torch.float32")}
MROPE_FACTOR = 4  # rotary_embedding/mrope.py MRotaryEmbedding: cache_max_position_num = max_position × 4
MX_BLOCK = 32  # OCP MX: 32 values per E8M0 scale
HOPPER_SCALE_ROWS = 2 * 8 * 2 * 8  # triton_kernels swizzle_mxfp4_scale_hopper: 2·num_warps·2·8, num_warps 8
HOPPER_SCALE_COLS = 2
# triton_kernels HopperMXValueLayout.swizzle_data (mma_version 3): the (N, K/2) bytes of each expert are padded
# to multiples of 1·2·4·2·1 = 16 rows and 4·2·4·1·1 = 32 columns (k_tile × warp_tile × threads × scott × contig)
HOPPER_VALUE_ROWS, HOPPER_VALUE_COLS = 16, 32


@dataclass(frozen=True)
class LoadExtra:
    """Bytes one rank allocates at load beyond the checkpoint's tensors, with how we know."""

    name: str
    bytes: int
    status: str  # EXACT | ASSUMED
    source: str


def total(extras: tuple[LoadExtra, ...]) -> int:
    return sum(x.bytes for x in extras)


def round_up(n: int, m: int) -> int:
    return -(-n // m) * m


# --------------------------------------------------------------------------- RoPE caches


def text_config(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language model's part of config.json (VLMs nest it)."""
    for key in ("text_config", "llm_config", "language_config"):
        if isinstance(cfg.get(key), dict):
            return cfg[key]
    return cfg


def rope_params(tc: Mapping[str, Any]) -> dict[str, Any]:
    """rope_scaling (transformers 4) or rope_parameters (5; per layer type: the full-attention one)."""
    params = tc.get("rope_scaling") or tc.get("rope_parameters") or {}
    if isinstance(params, dict) and isinstance(params.get("full_attention"), dict):
        params = params["full_attention"]
    return dict(params) if isinstance(params, dict) else {}


def rope_kind(params: Mapping[str, Any], mla: bool) -> str:
    """vLLM's scaling type: "type" is read as "rope_type", "su" as longrope, mrope as default with sections,
    yarn on DeepSeek's MLA as deepseek_yarn (models/deepseek_v2.py sets it)."""
    kind = str(params.get("rope_type") or params.get("type") or "default")
    kind = {"su": "longrope", "mrope": "default"}.get(kind, kind)
    if kind == "yarn" and mla:
        return "deepseek_yarn"
    if kind == "default" and "mrope_section" in params:
        return "mrope"
    return kind


def rope_positions(kind: str, params: Mapping[str, Any], max_pos: int) -> tuple[int, str, str]:
    """Rows of the cos/sin cache, the formula and its status."""
    factor = params.get("factor")
    orig = params.get("original_max_position_embeddings")
    if kind in ("default", "llama3"):
        return max_pos, f"{max_pos:,} positions", EXACT
    if kind in ("linear", "dynamic") and isinstance(factor, (int, float)) and "alpha" not in params:
        return int(max_pos * factor), f"{max_pos:,} × factor {factor:g}", EXACT
    if kind in ("yarn", "deepseek_yarn") and isinstance(factor, (int, float)) and isinstance(orig, int):
        return math.ceil(orig * factor), f"original {orig:,} × factor {factor:g}", EXACT
    if kind == "longrope" and isinstance(orig, int):
        return orig + max_pos, f"short {orig:,} + long {max_pos:,}", EXACT
    if kind == "mrope":
        return MROPE_FACTOR * max_pos, f"{MROPE_FACTOR} × {max_pos:,} (mrope.py)", EXACT
    return max_pos, f"{max_pos:,} positions (rope type {kind!r} not read: assumed max_position)", ASSUMED


def _rope_record(what: str, kind: str, rows: tuple[int, str, str], rotary: int, width: tuple[int, str]) -> LoadExtra:
    positions, formula, status = rows
    dtype = {2: "16-bit", 4: "float32"}[width[0]]
    return LoadExtra(f"RoPE cos/sin cache ({what}{kind}: {formula} × {rotary} × {dtype})",
                     positions * rotary * width[0], status,
                     ROPE_SRC + (f"; {width[1]}" if width[1] else "; the model dtype (vLLM --dtype auto)"))


def rope_caches(acc: Accounting, cfg: Mapping[str, Any]) -> tuple[LoadExtra, ...]:
    """One record per distinct RoPE module vLLM builds for the language model (whole on every rank)."""
    t = acc.spec.text
    if t.learned_positions or (t.no_rope_layers and len(t.no_rope_layers) >= t.num_layers):
        return ()
    tc = text_config(cfg)
    params = rope_params(tc)
    head = t.mla.qk_rope_head_dim if t.mla else t.head_dim
    rotary = head if t.mla else int(head * (params.get("partial_rotary_factor") or t.partial_rotary_factor))
    width = ROPE_DTYPE.get(t.model_type, (2, ""))
    kind = rope_kind(params, t.mla is not None)
    max_pos = int(tc.get("max_position_embeddings") or t.max_position_embeddings)
    out = [_rope_record("", kind, rope_positions(kind, params, max_pos), rotary, width)]
    sliding = any(k == "sliding" for k in t.layer_types)
    if t.rope_local_theta is not None and sliding and (kind != "default" or t.rope_local_theta != t.rope_theta):
        # models/gemma3.py: sliding layers override base (rope_local_base_freq) and scaling (default)
        out.append(_rope_record("sliding layers, ", "default", rope_positions("default", {}, max_pos), rotary, width))
    return tuple(out)


# --------------------------------------------------------------------------- MXFP4 MoE (gpt-oss)


@dataclass(frozen=True)
class Backend:
    """The MXFP4 MoE backend vLLM picks, and how it pads intermediate and hidden sizes."""

    name: str
    inter_align: int
    hidden_align: int
    status: str
    why: str


def mxfp4_backend(capability: tuple[int, int] | None, env: Mapping[str, str]) -> Backend:
    """mxfp4.py get_mxfp4_backend on CUDA (flashinfer installed, as vLLM's CUDA wheels ship it)."""
    cc = capability or HOPPER
    assumed = "" if capability else " (compute capability unknown: Hopper 9.0 assumed; --gpu names the card)"
    on = lambda k: env.get(k, "0").lower() in ("1", "true")  # noqa: E731
    if cc[0] == 9 and on("VLLM_USE_FLASHINFER_MOE_MXFP4_BF16"):
        return Backend("SM90_FI_MXFP4_BF16", 128, 128, EXACT, "VLLM_USE_FLASHINFER_MOE_MXFP4_BF16=1" + assumed)
    if cc[0] == 10 and on("VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8_CUTLASS"):
        return Backend("SM100_FI_MXFP4_MXFP8_CUTLASS", 128, 128, EXACT, "SM100 with the CUTLASS env" + assumed)
    if cc[0] == 10:
        return Backend("SM100_FI_MXFP4_BF16", 256, 256, EXACT, "SM100 with flashinfer (default)" + assumed)
    if on("VLLM_MXFP4_USE_MARLIN") or not (9, 0) <= cc < (11, 0):
        return Backend("MARLIN", 128, 256, EXACT, f"compute capability {cc[0]}.{cc[1]}: Marlin" + assumed)
    return Backend("TRITON", 64, 1, ASSUMED if assumed else EXACT, "Hopper default: Triton" + assumed)


def moe_alloc(experts: int, inter: int, hidden: int) -> int:
    """Bytes of Mxfp4MoEMethod.create_weights: w13/w2 U8 values and scales, bf16 biases."""
    w13 = 2 * inter * (hidden // 2 + hidden // MX_BLOCK + 2)
    w2 = hidden * (inter // 2 + inter // MX_BLOCK + 2)
    return experts * (w13 + w2)


def hopper_scales(experts: int, inter: int, hidden: int) -> int:
    """Bytes of the swizzled scale copies (triton_kernels HopperMXScaleLayout): rows padded to 256, cols to 2."""
    w13 = round_up(2 * inter, HOPPER_SCALE_ROWS) * round_up(hidden // MX_BLOCK, HOPPER_SCALE_COLS)
    w2 = round_up(hidden, HOPPER_SCALE_ROWS) * round_up(inter // MX_BLOCK, HOPPER_SCALE_COLS)
    return experts * (w13 + w2)


def hopper_value_padding(experts: int, inter: int, hidden: int) -> int:
    """Bytes the swizzled values (HopperMXValueLayout) add over the unswizzled U8 values (0 for gpt-oss)."""
    def pad(n: int, k: int) -> int:
        return round_up(n, HOPPER_VALUE_ROWS) * round_up(k, HOPPER_VALUE_COLS) - n * k
    return experts * (pad(2 * inter, hidden // 2) + pad(hidden, inter // 2))


def moe_share(acc: Accounting, layout: Layout, stage: tuple[int, int] | None) -> tuple[int, int, int]:
    """(MoE layers on the stage, experts per rank, intermediate per partition) as FusedMoE builds them."""
    moe = acc.spec.text.moe
    start, end = stage or (0, acc.spec.text.num_layers)
    layers = sum(1 for i in moe.layers if start <= i < end)
    if layout.ep and layout.moe_size > 1:
        return layers, local_experts(moe.num_experts, layout.moe_size, 0)[1], moe.expert_intermediate
    return layers, moe.num_experts, moe.expert_intermediate // layout.moe_size


def mxfp4_extras(acc: Accounting, layout: Layout, stage, capability, env: Mapping[str, str]) -> list[LoadExtra]:
    """Padding, float32 biases and swizzled scales of the MXFP4 experts on one rank."""
    moe = acc.spec.text.moe
    if moe is None:
        return []
    b = mxfp4_backend(capability, env)
    layers, experts, inter = moe_share(acc, layout, stage)
    hidden = acc.spec.text.hidden_size
    inter_p, hidden_p = round_up(inter, b.inter_align), round_up(hidden, b.hidden_align)
    out = []
    pad = layers * (moe_alloc(experts, inter_p, hidden_p) - moe_alloc(experts, inter, hidden))
    if pad:
        out.append(LoadExtra(f"MXFP4 experts allocated padded ({b.name}: intermediate {inter} → {inter_p}, "
                             f"hidden {hidden} → {hidden_p}; {layers} layers × {experts} experts)",
                             pad, b.status, f"{MXFP4_SRC} ({b.why})"))
    if b.name == "TRITON":
        bias = layers * experts * (2 * inter_p + hidden_p) * 2
        out.append(LoadExtra(f"MXFP4 expert biases bf16 → float32 ({layers} layers × {experts} experts)", bias,
                             b.status, f"{MXFP4_SRC}: layer.w13_bias/w2_bias .to(torch.float32) ({b.why})"))
        status = b.status if capability is None or capability[0] == 9 else ASSUMED
        out.append(LoadExtra(
            f"MXFP4 swizzled scale copies (rows → ×{HOPPER_SCALE_ROWS}, cols → ×{HOPPER_SCALE_COLS}; "
            "the originals stay on the layer)", layers * hopper_scales(experts, inter_p, hidden_p), status,
            VLLM + "quantization/utils/mxfp4_utils.py _swizzle_mxfp4; triton_kernels tensor_details/layout_details/"
            "hopper_scale.py HopperMXScaleLayout.swizzle_data" + ("" if status == b.status else
                                                                  " (Blackwell's Triton layout not read: Hopper's assumed)")))
        values = layers * hopper_value_padding(experts, inter_p, hidden_p)
        if values:
            out.append(LoadExtra("MXFP4 swizzled values padded (rows → ×16, bytes → ×32)", values, status,
                                 "triton_kernels hopper_value.py HopperMXValueLayout.swizzle_data (the U8 originals "
                                 "are deleted: only the padding is extra)"))
    return out


# --------------------------------------------------------------------------- FP8 on GPUs without FP8, MLA


def _fp8_marlin_scales(sw: StoredWeights, acc: Accounting, tp: int, stage) -> int:
    """Scales after prepare_fp8_layer_for_marlin (model dtype, (k-blocks or 1) × out) minus the stored ones."""
    shapes = {e.name: e for e in acc.entries}
    block = sw.plan.block
    delta = 0
    for st in sw.tensors:
        e = shapes.get(st.name)
        if not st.quantized or e is None or (stage and e.layer is not None and not stage[0] <= e.layer < stage[1]):
            continue
        lead = e.shape[0] if len(e.shape) == 3 else 1
        out, cols = (e.shape[2], e.shape[1]) if len(e.shape) == 3 else e.shape[:2]
        rows = math.ceil(cols / block[1]) if block else 1
        stored = sum(p.nbytes for p in st.parts if "scale" in p.name and "input" not in p.name)
        delta += lead * rows * out * 2 - stored
    return delta // tp


def fp8_extras(acc: Accounting, sw: StoredWeights, layout: Layout, stage, capability) -> list[LoadExtra]:
    """FP8 weights on a GPU below 8.9 run weight-only through Marlin (fp8.py: use_marlin = not
    has_device_capability(89)); the scales change bytes, the weights do not."""
    if capability is None or capability >= (8, 9):
        return []
    ct = sw.plan.method == "compressed-tensors" and sw.plan.ct_float and sw.plan.bits == 8
    if sw.plan.method != "fp8" and not ct:
        return []
    delta = _fp8_marlin_scales(sw, acc, layout.tp, stage)
    return [LoadExtra(f"FP8 scales repacked for Marlin (compute capability {capability[0]}.{capability[1]} < 8.9: "
                      "model dtype, one per output column per k-block)", delta, ASSUMED if ct else EXACT,
                      VLLM + "quantization/utils/marlin_utils_fp8.py prepare_fp8_layer_for_marlin"
                      + ("; compressed-tensors W8A16Fp8 assumed the same" if ct else ""))]


# Linear roles whose output dim is whole on every rank (RowParallelLinear: o, down; parallel.py's row roles):
# their per-channel scales are not split by TP.
ROW_ROLES = ("o", "down", "fc2", "shared_down", "expert_down", "experts_down")
CT_SCALE_SRC = (VLLM + "quantization/utils/fp8_utils.py create_fp8_scale_parameter (torch.float32), used by "
                "compressed_tensors/schemes/compressed_tensors_w8a8_fp8.py CompressedTensorsW8A8Fp8.create_weights")


def ct_scale_growth(acc: Accounting, sw: StoredWeights, layout: Layout, stage, capability) -> list[LoadExtra]:
    """compressed-tensors W8A8 FP8 checkpoints store scales in the model dtype; vLLM allocates them float32
    (on GPUs with FP8, 8.9+; below, Marlin turns them back into the model dtype)."""
    plan = sw.plan
    if plan.method != "compressed-tensors" or plan.bits != 8 or not plan.ct_float or (capability or HOPPER) < (8, 9):
        return []
    entries = {e.name: e for e in acc.entries}
    grow = 0
    for st in sw.tensors:
        e = entries.get(st.name)
        if not st.quantized or e is None or (stage and e.layer is not None and not stage[0] <= e.layer < stage[1]):
            continue
        scales = [p for p in st.parts if p.name.endswith("weight_scale") and p.dtype in ("BF16", "F16")]
        elems = sum(p.nbytes // 2 for p in scales)
        base = e.role.rsplit(".", 1)[0] if e.role.endswith((".weight", ".bias")) else e.role
        grow += elems * 2 // (1 if base in ROW_ROLES or plan.strategy == "tensor" else layout.tp)
    return [LoadExtra(f"compressed-tensors FP8 scales allocated float32 (stored {sw.plan.base}; strategy "
                      f"{plan.strategy})", grow, EXACT, CT_SCALE_SRC)]


BNB_SRC = VLLM.replace("layers/", "") + "model_loader/bitsandbytes_loader.py BitsAndBytesModelLoader._dequantize_dq"


def bnb_extras(sw: StoredWeights, layout: Layout, stage) -> list[LoadExtra]:
    """bitsandbytes 4-bit with double quantization: vLLM dequantizes the nested absmax at load ("comes at the
    cost of increased memory usage"): U8 absmax + nested absmax/map become one float32 absmax per 64 weights."""
    if sw.plan.method != "bitsandbytes" or sw.plan.bits != 4 or not sw.plan.double_quant:
        return []
    grow = 0
    for st in sw.tensors:
        layer = _layer_of(st.name)
        if stage and layer is not None and not stage[0] <= layer < stage[1]:
            continue
        for p in st.parts:
            if p.name.endswith(".absmax") and p.dtype == "U8":
                grow += p.nbytes * 3  # 1 B → 4 B per block of 64
            elif p.name.endswith((".nested_absmax", ".nested_quant_map")):
                grow -= p.nbytes
    return [LoadExtra("bitsandbytes double-quant absmax dequantized to float32 at load (one per 64 weights)",
                      grow // layout.tp, EXACT if layout.tp == 1 else ASSUMED,
                      BNB_SRC + ("" if layout.tp == 1 else "; split evenly over TP (assumed)"))]


GPTQ_SRC = (VLLM + "quantization/gptq_marlin.py GPTQMarlinLinearMethod + kernels/mixed_precision/marlin.py "
            "MarlinLinearKernel.process_weights_after_loading; quantization/gptq.py GPTQLinearMethod")
MARLIN_GROUPS = (-1, 32, 64, 128)  # gptq_marlin.py: the group sizes (and 4/8 bits, sym) Marlin takes


def gptq_extras(sw: StoredWeights, cfg: Mapping[str, Any], layout: Layout, stage, capability) -> list[LoadExtra]:
    """GPTQ: the loaded g_idx (no act-order) and, on Marlin (8.0+, symmetric, 4/8 bits, Marlin group sizes), the
    qzeros are replaced by empty tensors after loading: bytes the checkpoint stores but the GPU no longer holds."""
    qc = cfg.get("quantization_config") or {}
    if sw.plan.method != "gptq":
        return []
    marlin = ((capability or HOPPER) >= (8, 0) and qc.get("sym", True) and sw.plan.bits in (4, 8)
              and sw.plan.group_size in MARLIN_GROUPS)
    act_order = bool(qc.get("desc_act", False))
    names = (".qzeros",) * bool(marlin) + (".g_idx",) * (not act_order)
    freed = 0
    for st in sw.tensors:
        layer = _layer_of(st.name)
        if stage and layer is not None and not stage[0] <= layer < stage[1]:
            continue
        freed += sum(p.nbytes for p in st.parts if p.name.endswith(names)) if names else 0
    what = " and ".join(n.strip(".") for n in names)
    if not freed:
        return []
    machete = marlin and (capability or HOPPER)[0] == 9  # gptq_marlin picks MacheteLinearKernel on SM90
    kernel = "Machete, taken as Marlin" if machete else "Marlin" if marlin else "exllama"
    exact = layout.tp == 1 and not machete and capability is not None
    return [LoadExtra(f"GPTQ {what} replaced by empty tensors after loading ({kernel} kernel)", -(freed // layout.tp),
                      EXACT if exact else ASSUMED,
                      GPTQ_SRC + ("" if layout.tp == 1 else "; split evenly over TP (assumed)")
                      + ("; Machete's own process_weights_after_loading not read" if machete else ""))]


def _layer_of(name: str) -> int | None:
    """The decoder layer index in a tensor name (".layers.N."), None outside the layers."""
    marker = ".layers."
    if marker not in name:
        return None
    digits = name.split(marker, 1)[1].split(".", 1)[0]
    return int(digits) if digits.isdigit() else None


def mla_extras(acc: Accounting, sw: StoredWeights, layout: Layout, stage) -> list[LoadExtra]:
    """MLA backends keep a 16-bit W_UK_T/W_UV made from a dequantized kv_b_proj (views when unquantized)."""
    t = acc.spec.text
    kv_b = [st for st in sw.tensors if st.quantized and "kv_b_proj" in st.name]
    if t.mla is None or not kv_b:
        return []
    start, end = stage or (0, t.num_layers)
    layers = sum(1 for st in kv_b if any(f".{i}." in st.name for i in range(start, end)))
    per = (t.num_heads // layout.tp) * (t.mla.qk_nope_head_dim + t.mla.v_head_dim) * t.mla.kv_lora_rank * 2
    return [LoadExtra(f"MLA W_UK_T/W_UV: 16-bit copy of the quantized kv_b_proj ({layers} layers)", layers * per,
                      ASSUMED, "vllm-project/vllm vllm/attention/backends/mla/common.py "
                      "MLACommonImpl.process_weights_after_loading (read on main; not checked by a log)")]


# --------------------------------------------------------------------------- all of it


def load_extras(acc: Accounting, cfg: Mapping[str, Any], capability: tuple[int, int] | None = None,
                layout: Layout = Layout(), stage: tuple[int, int] | None = None,
                env: Mapping[str, str] | None = None, stored: StoredWeights | None = None) -> tuple[LoadExtra, ...]:
    """Bytes one rank allocates at load beyond its checkpoint share. `capability`: the GPU's CUDA compute
    capability (inspector.memory.gpus Gpu.capability; None assumes Hopper); `stage`: the rank's [start,
    end) layers under PP (None: all); `env`: vLLM's environment variables that pick MoE kernels; `stored`:
    stored_weights(acc, cfg) when already made (else made here)."""
    out = list(rope_caches(acc, cfg))
    if not cfg.get("quantization_config"):
        return tuple(out)
    from inspector.memory.stored import stored_weights

    sw = stored if stored is not None else stored_weights(acc, dict(cfg))
    if sw.plan is None:
        return tuple(out)
    if sw.plan.method == "mxfp4":
        out += mxfp4_extras(acc, layout, stage, capability, env or {})
    out += fp8_extras(acc, sw, layout, stage, capability)
    out += ct_scale_growth(acc, sw, layout, stage, capability)
    out += bnb_extras(sw, layout, stage)
    out += gptq_extras(sw, cfg, layout, stage, capability)
    out += mla_extras(acc, sw, layout, stage)
    return tuple(x for x in out if x.bytes)
