"""Quantization on paper: the ggml type llama-quantize gives each tensor for a target type, its bytes and the file size.

Pure arithmetic (no llama.cpp). Rules from src/llama-quant.cpp of ggml-org/llama.cpp@0c1e57098 (the
llama.cpp that llama-cpp-python 0.3.36 vendors), written here as tables:

* ``llama_ftype_get_default_type``: the target's default ggml type (:data:`FTYPES`);
* ``tensor_allows_quantization``: which tensors are quantized at all (:func:`allows_quantization`);
* ``tensor_get_category`` and ``llama_tensor_get_type_impl``: the per-tensor exceptions by category, target,
  layer (``use_more_bits``), grouped-query ratio, expert count (:data:`RULES`, :func:`tensor_type`);
* ``tensor_type_fallback``: a row length (``ne[0]``) not a multiple of the block size (:data:`FALLBACK`);
* sizes: ``nrows x ggml_row_size``; the file: the input's data offset (the same key/value pairs and tensor
  infos, only values change) + every tensor padded to the alignment (``gguf_write``).

Checked against ``llama_model_quantize`` for 21 targets x 2 real GGUFs (fixtures/llamacpp/quantize):
every tensor's type and bytes, and the file size, equal (tests/test_llamacpp_quant.py). Not modelled:
an importance matrix (``has_imatrix`` is False: the IQ1/IQ2/IQ3_XXS targets and Q2_K_S then refuse to
run), ``--pure``, ``--tensor-type`` patterns, ``--output-tensor-type``/``--token-embedding-type``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inspector.checkpoint.gguf import GGML_TYPES, GGUFFile

# target name -> (llama_ftype id (include/llama.h), default ggml type (llama_ftype_get_default_type))
FTYPES = {
    "F32": (0, "F32"), "F16": (1, "F16"), "Q4_0": (2, "Q4_0"), "Q4_1": (3, "Q4_1"), "Q8_0": (7, "Q8_0"),
    "Q5_0": (8, "Q5_0"), "Q5_1": (9, "Q5_1"), "Q2_K": (10, "Q2_K"), "Q3_K_S": (11, "Q3_K"),
    "Q3_K_M": (12, "Q3_K"), "Q3_K_L": (13, "Q3_K"), "Q4_K_S": (14, "Q4_K"), "Q4_K_M": (15, "Q4_K"),
    "Q5_K_S": (16, "Q5_K"), "Q5_K_M": (17, "Q5_K"), "Q6_K": (18, "Q6_K"), "IQ2_XXS": (19, "IQ2_XXS"),
    "IQ2_XS": (20, "IQ2_XS"), "Q2_K_S": (21, "Q2_K"), "IQ3_XS": (22, "IQ3_S"), "IQ3_XXS": (23, "IQ3_XXS"),
    "IQ1_S": (24, "IQ1_S"), "IQ4_NL": (25, "IQ4_NL"), "IQ3_S": (26, "IQ3_S"), "IQ3_M": (27, "IQ3_S"),
    "IQ2_S": (28, "IQ2_XS"), "IQ2_M": (29, "IQ2_S"), "IQ4_XS": (30, "IQ4_XS"), "IQ1_M": (31, "IQ1_M"),
    "BF16": (32, "BF16"), "TQ1_0": (36, "TQ1_0"), "TQ2_0": (37, "TQ2_0"), "MXFP4_MOE": (38, "MXFP4"),
    "Q1_0": (40, "Q1_0"),
}
# targets whose low types need an importance matrix without which llama_model_quantize aborts
NEEDS_IMATRIX = frozenset({"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M", "IQ3_XXS", "Q2_K_S"})
# tensor_type_fallback: a 256-block type whose block does not divide ne[0] -> a 32-block type (then F16)
FALLBACK = {"IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL", "IQ2_XXS": "IQ4_NL", "IQ2_XS": "IQ4_NL", "IQ2_S": "IQ4_NL",
            "IQ3_XXS": "IQ4_NL", "IQ3_S": "IQ4_NL", "IQ4_XS": "IQ4_NL", "Q2_K": "Q4_0", "Q3_K": "Q4_0",
            "TQ1_0": "Q4_0", "TQ2_0": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}
UNQUANTIZED = frozenset({"F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64"})
# tensor_allows_quantization: name fragments never quantized (norms, routers, small or positional tables)
NOT_QUANTIZED = ("_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
                 "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
                 "indexer.q_proj.weight", "time_mix_", "attn_rel_b.weight", ".position_embd", "sam.pos_embd",
                 "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook",
                 "mm.a.code_embd")
NOT_QUANTIZED_NAMES = frozenset({"position_embd.weight", "token_types.weight"})
IQ_LOW = frozenset({"IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"})
SOURCE = "ggml-org/llama.cpp@0c1e57098 src/llama-quant.cpp"


def block(typ: str) -> tuple[int, int]:
    """(elements per block, bytes per block) of a ggml type (ggml's type traits)."""
    for name, blck, size in GGML_TYPES.values():
        if name == typ:
            return blck, size
    raise ValueError(f"unknown ggml type {typ!r}")


def ggml_name(typ: str) -> str:
    """ggml_type_name: lower case but the K of the K-quants (``q4_K``, ``iq4_xs``, ``f32``)."""
    return re.sub(r"_k$", "_K", typ.lower())


def category(name: str) -> str:
    """tensor_get_category: the first name fragment that matches."""
    if name == "output.weight":
        return "output"
    if name == "token_embd.weight":
        return "token_embd"
    # attn_qkv and attn_kv_b count as attn_v (category_is_attn_v), whose branch comes first: the
    # ATTENTION_QKV branch of llama_tensor_get_type_impl is never reached
    for frag, cat in (("attn_qkv.weight", "attn_v"), ("attn_kv_b.weight", "attn_v"), ("attn_v.weight", "attn_v"),
                      ("attn_k.weight", "attn_k"), ("attn_q.weight", "attn_q"),
                      ("attn_output.weight", "attn_output"), ("ffn_up", "ffn_up"), ("ffn_gate", "ffn_gate"),
                      ("ffn_down", "ffn_down")):
        if frag in name:
            return cat
    return "other"


def allows_quantization(name: str, ne: tuple) -> bool:
    """tensor_allows_quantization (quantize_output_tensor on, not only_copy)."""
    n_dims = max([i + 1 for i, d in enumerate(ne) if d > 1] or [1])  # ggml_n_dims
    return (n_dims >= 2 and name.endswith("weight")
            and not any(f in name for f in NOT_QUANTIZED) and name not in NOT_QUANTIZED_NAMES)


def use_more_bits(i: int, n: int) -> bool:
    """llama-quant.cpp: the first and last eighth of the layers, and every third one between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


@dataclass
class State:
    """quantize_state_impl's counters and the model facts the rules read."""

    n_layer: int
    n_gqa: int  # n_head / n_head_kv
    n_expert: int = 0
    falcon: bool = False
    is_70b: bool = False
    has_tied: bool = True  # no output.weight
    n_wv: int = 0
    i_wv: int = 0
    i_down: int = 0
    i_gate: int = 0
    i_up: int = 0


def _layer(st: State, counter: int, name: str) -> int:
    """layer_info: the counter, or (several experts) the layer number parsed from the name."""
    if st.n_expert > 1:
        return int(re.match(r"blk\.(\d+)\.", name).group(1))
    return counter


def _output_type(ftype: str, typ: str, ne0: int, st: State) -> str:
    """The output matrix (and token_embd when tied): Q8_0 if the row misfits, Q5_K for the lowest IQ, else Q6_K."""
    if ftype == "MXFP4_MOE" or st.falcon or ne0 % block(typ)[0]:
        return "Q8_0"
    if ftype in IQ_LOW | {"IQ3_XXS"}:
        return "Q5_K"
    return typ if typ == "Q8_0" else "Q6_K"


def _attn_v(ftype: str, typ: str, st: State) -> str:
    """ATTENTION_V / QKV / KV_B outside the IQ1/IQ2 targets (counter i_attention_wv)."""
    g4, i, n = st.n_gqa >= 4, st.i_wv, st.n_wv
    table = (("Q2_K", True, "Q4_K" if g4 else "Q3_K"), ("Q2_K_S", g4, "Q4_K"),
             ("IQ3_XXS", True, "Q4_K" if g4 else "IQ3_S"), ("IQ3_XS", g4, "Q4_K"), ("IQ3_S", g4, "Q4_K"),
             ("IQ3_M", True, "Q4_K"), ("Q3_K_M", True, "Q5_K" if i < 2 else "Q4_K"), ("Q3_K_L", True, "Q5_K"),
             ("IQ4_NL", g4, "Q5_K"), ("IQ4_XS", g4, "Q5_K"), ("Q4_K_M", use_more_bits(i, n), "Q6_K"),
             ("Q5_K_M", use_more_bits(i, n), "Q6_K"), ("Q4_K_S", i < 4, "Q5_K"))
    for target, cond, new in table:
        if ftype == target and cond:
            typ = new
            break
    if st.is_70b and typ in ("Q3_K", "Q4_K"):
        typ = "Q5_K"
    return "Q8_0" if st.n_expert == 8 else typ


def _ffn_down(ftype: str, typ: str, st: State, name: str) -> str:
    """FFN_DOWN outside the IQ1/IQ2 targets: more bits in the first eighth / use_more_bits layers."""
    i, n = _layer(st, st.i_down, name), st.n_layer
    more, first8 = use_more_bits(i, n), i < n // 8
    q3km = "Q5_K" if i < n // 16 else ("Q4_K" if not st.falcon or more else "Q3_K")
    q4km = ("Q6_K" if i < n // 16 else "Q5_K" if more else "Q4_K") if st.falcon else ("Q6_K" if more else typ)
    table = (("Q2_K", True, "Q3_K"), ("Q2_K_S", True, "Q4_K" if first8 else typ),
             ("IQ3_XXS", True, "Q4_K" if first8 else "Q3_K"), ("Q3_K_M", True, q3km),
             ("IQ3_M", first8 or (st.n_expert == 8 and more), "Q4_K"),
             ("Q3_K_L", True, "Q4_K" if st.falcon else "Q5_K"), ("Q4_K_M", True, q4km),
             ("IQ4_NL", first8, "Q5_K"), ("IQ4_XS", first8, "Q5_K"), ("Q5_K_M", more, "Q6_K"),
             ("Q4_K_S", not st.falcon and first8, "Q5_K"))
    for target, cond, new in table:
        if ftype == target and cond:
            return new
    return typ


def _attn_output(ftype: str, typ: str, st: State) -> str:
    if st.falcon:
        return "Q4_K" if ftype == "Q3_K_L" else typ
    if st.n_expert == 8:
        low = {"Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S", "IQ3_M",
               "IQ4_XS"}
        return "Q5_K" if ftype in low else typ
    return {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K", "IQ3_M": "Q4_K"}.get(ftype, typ)


def _iq_low(ftype: str, typ: str, cat: str, st: State) -> str:
    """The IQ1/IQ2 targets' own branch (attn_v, attn_k with 8 experts, ffn_down, attn_output)."""
    iq3 = ftype in ("IQ2_S", "IQ2_M")
    if cat == "attn_v":
        st.i_wv += 1
        return "Q4_K" if st.n_gqa >= 4 or st.n_expert >= 4 else ("IQ3_S" if iq3 else "Q2_K")
    if cat == "attn_k" and st.n_expert == 8:
        return "Q4_K"
    if cat == "ffn_down":
        st.i_down += 1
        return ("IQ3_S" if iq3 else "Q2_K") if st.i_down - 1 < st.n_layer // 8 else typ
    if cat == "attn_output":
        if st.n_expert == 8:
            return "Q5_K"
        return "IQ2_XXS" if ftype in ("IQ1_S", "IQ1_M") else "IQ3_S" if iq3 else typ
    return typ


def _by_category(ftype: str, typ: str, cat: str, st: State, name: str) -> str:
    """llama_tensor_get_type_impl's branches after the output/embedding ones, counters included."""
    if cat == "attn_v":
        new = _attn_v(ftype, typ, st)
        st.i_wv += 1
        return new
    if cat == "attn_k":
        return "Q8_0" if st.n_expert == 8 else {"IQ3_XS": "IQ3_XXS", "IQ3_XXS": "IQ2_S"}.get(ftype, typ)
    if cat == "attn_q":
        return {"IQ3_XS": "IQ3_XXS", "IQ3_XXS": "IQ2_S"}.get(ftype, typ)
    if cat == "ffn_down":
        new = _ffn_down(ftype, typ, st, name)
        st.i_down += 1
        return new
    if cat == "attn_output":
        return _attn_output(ftype, typ, st)
    if cat in ("ffn_gate", "ffn_up"):
        attr = "i_gate" if cat == "ffn_gate" else "i_up"
        i = _layer(st, getattr(st, attr), name)
        setattr(st, attr, getattr(st, attr) + 1)
        middle = st.n_layer // 8 <= i < 7 * st.n_layer // 8
        return "IQ3_XXS" if ftype == "IQ3_XS" and middle else typ
    return typ


def tensor_type(ftype: str, name: str, ne: tuple, current: str, st: State) -> tuple[str, str]:
    """llama_tensor_get_type: (the rules' type, the type written after the fallback), upper-case names."""
    if not allows_quantization(name, ne):
        return current, current
    typ = FTYPES[ftype][1]
    if typ in UNQUANTIZED:
        return typ, typ
    cat = category(name)
    if cat == "output" or (st.has_tied and cat == "token_embd"):
        typ = _output_type(ftype, typ, ne[0], st)
    elif ftype == "MXFP4_MOE":
        typ = "MXFP4" if len(ne) > 2 and ne[2] > 1 else "Q8_0"
    elif cat == "token_embd":
        typ = {"IQ2_XXS": "Q2_K", "IQ2_XS": "Q2_K", "IQ1_S": "Q2_K", "IQ1_M": "Q2_K", "IQ2_S": "IQ3_S",
               "IQ2_M": "IQ3_S", "IQ3_XXS": "IQ3_S", "TQ1_0": "Q4_K", "TQ2_0": "Q4_K"}.get(ftype, typ)
    elif ftype in IQ_LOW:
        typ = _iq_low(ftype, typ, cat, st)
    else:
        typ = _by_category(ftype, typ, cat, st, name)
    return typ, fallback(typ, ne[0])


def fallback(typ: str, ne0: int) -> str:
    """tensor_type_fallback: a block that does not divide the row -> the 32-block fallback, else F16."""
    if ne0 % block(typ)[0] == 0:
        return typ
    new = FALLBACK.get(typ, typ)
    return new if ne0 % block(new)[0] == 0 else "F16"


@dataclass(frozen=True)
class QuantTensor:
    """One tensor of the quantized file: its ggml type (as ggml names it) and bytes."""

    name: str
    ne: tuple  # ggml order, ne[0] = row length
    ggml_type: str
    nbytes: int
    fell_back: bool  # the rules' type did not fit the row (tensor_type_fallback)
    offset: int  # absolute file offset of its data (each tensor padded to the alignment)


@dataclass(frozen=True)
class QuantPlan:
    """What llama_model_quantize writes: every tensor, the data bytes, the file bytes and bits per weight."""

    target: str
    tensors: tuple
    tensor_bytes: int
    file_bytes: int  # data_offset + each tensor padded to the alignment
    n_elements: int
    warnings: tuple

    @property
    def bpw(self) -> float:
        """The printout's BPW: 8 x tensor bytes / elements."""
        return 8 * self.tensor_bytes / self.n_elements

    def counts(self) -> dict:
        out: dict = {}
        for t in self.tensors:
            out[t.ggml_type] = out.get(t.ggml_type, 0) + 1
        return out


def _order(name: str) -> tuple:
    """weight_name_comparer (src/llama-model-loader.h): no blk prefix first, then by layer, then by name."""
    m = re.match(r"blk\.(\d+)\.", name)
    return (int(m.group(1)) if m else -1, name)


def tensor_bytes(typ: str, ne: tuple) -> int:
    """nrows x ggml_row_size(typ, ne[0])."""
    blck, size = block(typ)
    n = 1
    for d in ne:
        n *= d
    return n // blck * size


def quantize_plan(tensors, target: str, st: State, data_offset: int, alignment: int = 32) -> QuantPlan:
    """Entry point: ``tensors`` are (name, ne, current upper-case ggml type); the result is in the output's order."""
    target = target.upper()
    if target not in FTYPES:
        raise ValueError(f"unknown llama.cpp quantization type {target!r} (known: {', '.join(FTYPES)})")
    names = [t[0] for t in tensors]
    st.has_tied = "output.weight" not in names
    st.n_wv = sum(1 for n in names if category(n) == "attn_v")
    out, warn, offset = [], [], data_offset
    # visited and written in weights_map order (llama_model_loader's std::map with weight_name_comparer)
    for name, ne, current in sorted(tensors, key=lambda t: _order(t[0])):
        rule, typ = tensor_type(target, name, tuple(ne), current, st)
        nbytes = tensor_bytes(typ, ne)
        out.append(QuantTensor(name, tuple(ne), ggml_name(typ), nbytes, rule != typ, offset))
        offset += (nbytes + alignment - 1) // alignment * alignment
    n_fell = sum(t.fell_back for t in out)
    if n_fell:
        warn.append(f"{n_fell} of {len(out)} tensor(s) required fallback quantization")
    if target in NEEDS_IMATRIX:
        warn.append(f"{target}: llama_model_quantize needs an importance matrix for this type (not modelled)")
    data = sum(t.nbytes for t in out)
    file_bytes = offset
    n_el = sum(tensor_bytes("F32", t.ne) // 4 for t in out)
    return QuantPlan(target, tuple(out), data, file_bytes, n_el, tuple(warn))


def state_from_gguf(f: GGUFFile) -> State:
    """The model facts the rules read, from the header (llama_model::load_hparams)."""
    m, arch = f.metadata, f.metadata["general.architecture"]
    n_layer, n_head = m[f"{arch}.block_count"], m[f"{arch}.attention.head_count"]
    n_head_kv = m.get(f"{arch}.attention.head_count_kv", n_head)
    # LLM_TYPE_70B: a llama with 80 layers and grouped-query attention (load_hparams, LLM_ARCH_LLAMA)
    is_70b = arch == "llama" and n_layer == 80 and n_head != n_head_kv
    return State(n_layer=n_layer, n_gqa=n_head // n_head_kv, n_expert=m.get(f"{arch}.expert_count", 0),
                 falcon=arch == "falcon", is_70b=is_70b)


def quantize_gguf(f: GGUFFile, target: str) -> QuantPlan:
    """What ``llama-quantize --allow-requantize FILE out.gguf TARGET`` writes (no imatrix, default options)."""
    tensors = [(t.name, t.stored_shape, t.quant) for t in f.tensors]
    return quantize_plan(tensors, target, state_from_gguf(f), f.data_offset, f.alignment)


def gguf_tensors_from_inventory(entries, gguf_arch: str, n_layer: int) -> tuple[list, list]:
    """The tensors convert_hf_to_gguf.py would write for an inventory (WeightEntry: HF name, PyTorch shape):
    (GGUF name, ne, type) with 1-D tensors F32 and the rest F16 (its default ``--outtype`` for 16-bit
    checkpoints; only the norms' type survives quantization), and the HF names with no GGUF name."""
    from inspector.checkpoint.gguf_hf import gguf_name_map

    to_gguf = {hf: g for g, hf in gguf_name_map(n_layer, gguf_arch).items()}
    tensors, unmapped = [], []
    for e in entries:
        if not e.stored or e.tied_to is not None:
            continue
        name = to_gguf.get(e.name)
        if name is None:
            unmapped.append(e.name)
            continue
        ne = tuple(reversed(e.shape))
        tensors.append((name, ne, "F32" if len(ne) == 1 else "F16"))
    return tensors, unmapped


def quantize_inventory(entries, gguf_arch: str, st: State, target: str) -> QuantPlan:
    """Quantization on paper from a config's inventory: types and tensor bytes exact as for a GGUF; the file's
    header (metadata, tokenizer, tensor infos) is not known from a config, so ``file_bytes`` counts the
    tensor data only (each tensor padded to 32 B) and a warning says so."""
    tensors, unmapped = gguf_tensors_from_inventory(entries, gguf_arch, st.n_layer)
    plan = quantize_plan(tensors, target, st, 0)
    warn = list(plan.warnings) + ["file_bytes: tensor data only; the GGUF header is not known from a config"]
    if unmapped:
        warn.append(f"{len(unmapped)} tensor(s) without a GGUF name left out, e.g. {unmapped[0]}")
    return QuantPlan(plan.target, plan.tensors, plan.tensor_bytes, plan.file_bytes, plan.n_elements, tuple(warn))
