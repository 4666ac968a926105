"""GGUF headers: tensor infos and key/value metadata of a GGUF file, and how they map to Hugging Face.

This module owns
  * :func:`read_gguf`: the tensor list (names, shapes, quant types, stored bytes) and metadata of a
    ``.gguf`` file, read with the ``gguf`` package's ``GGUFReader`` (memory-mapped; no tensor is
    dequantized or copied);
  * :func:`gguf_to_hf_config`: a Hugging Face-style ``config.json`` dict built from the metadata;
  * :func:`gguf_name_map`: GGUF tensor names -> Hugging Face llama/qwen2/qwen3/gemma3 names;
  * :data:`GGUF_NORM_PLUS_ONE`: the architectures whose norm weights the file stores as 1 + w;
  * :func:`qk_row_permutation`: where llama.cpp moved the rows of ``attn_q``/``attn_k``.

Shapes. GGUF stores dimensions fastest-varying first (``ne[0]`` first); ``TensorInfo.stored_shape``
keeps that order and ``TensorInfo.shape`` is its reverse, the PyTorch order, so
``token_embd.weight`` stored as (576, 49152) has shape (49152, 576) like HF's
``model.embed_tokens.weight``. ``TensorInfo.dtype`` and ``TensorInfo.quant`` are both the ggml type
name (``"Q4_1"``, ``"Q8_0"``, ``"F32"``); ``nbytes`` is the bytes stored in the file.

Metadata. ``CheckpointHeaders.metadata`` is the GGUF key/value map with plain Python values. Arrays
of up to :data:`MAX_INLINE_ARRAY` items are lists; longer ones (the tokenizer's tokens, merges,
scores) are :class:`GGUFArray` records holding only the element type and length.

Values versus shapes (important for whoever loads values later). For the ``llama`` architecture
(which llama.cpp also uses for Mistral and SmolLM), llama.cpp's ``convert_hf_to_gguf.py`` permutes
the rows of ``attn_q.weight`` and ``attn_k.weight`` (and their biases) within each head, to turn
Hugging Face's "rotate half" RoPE layout into ggml's interleaved-pair layout: inside a head of
``d`` rows, HF rows ``[0, d/2)`` and ``[d/2, d)`` are interleaved as pairs. Shapes are unchanged,
so shape verification is unaffected, but values compared against the HF checkpoint must first be
un-permuted (``attn_k`` with the number of KV heads). transformers' GGUF loader does this (its
``LlamaTensorProcessor``); :func:`qk_row_permutation` gives the row mapping. Qwen2/Qwen3 GGUFs are
not permuted (ggml uses NeoX-style RoPE for them).

Gemma (``gemma``, ``gemma2``, ``gemma3``). Hugging Face's Gemma RMSNorm multiplies by (1 + w) and
stores w; llama.cpp's converter writes 1 + w (so its norm is a plain x * w). A loader into the (1 + w)
form subtracts 1 from every ``*norm.weight`` of these files (transformers' GGUF loader does the same).
Gemma 3's GGUF carries no base for the RoPE of its sliding layers; llama.cpp and transformers both
take 10000, written into the config here.

Errors: a missing, truncated or otherwise unreadable GGUF raises
:class:`~inspector.errors.InspectError` with one line naming the file. ``gguf`` is imported only
inside the functions that need it.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.checkpoint.records import CheckpointHeaders, TensorInfo

from inspector.errors import InspectError, printable

__all__ = [
    "GGUFArray",
    "MAX_INLINE_ARRAY",
    "gguf_layer_count",
    "gguf_name_map",
    "gguf_to_hf_config",
    "logical_param_count",
    "open_gguf",
    "qk_row_permutation",
    "read_gguf",
]

MAX_INLINE_ARRAY = 64


@dataclass(frozen=True)
class GGUFArray:
    """A long GGUF metadata array, kept as its element type and length only."""

    elem_type: str
    length: int

    def __len__(self) -> int:
        return self.length


def _metadata_value(field: Any) -> Any:
    from gguf import GGUFValueType

    types = list(field.types)
    if types and types[0] == GGUFValueType.ARRAY:
        n = len(field.data)
        elem = types[-1].name if len(types) > 1 else "UNKNOWN"
        if n > MAX_INLINE_ARRAY:
            return GGUFArray(elem, n)
    value = field.contents()
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    return value


def read_gguf(path: str | os.PathLike) -> CheckpointHeaders:
    """Read a GGUF file's tensor infos and metadata (no tensor data is read or dequantized)."""
    return open_gguf(path)[1]


def open_gguf(path: str | os.PathLike) -> tuple[Any, CheckpointHeaders]:
    """The gguf package's reader of `path` (memory-mapped) and its headers: one parse for both.

    Parsing is the expensive part (seconds for a tokenizer's 49k-entry arrays), so callers that
    also need tensor data (inspector.checkpoint.tensors) keep the reader rather than parsing again.
    """
    p = Path(path)
    where = printable(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise InspectError(f"{where}: is not a regular file")
        size = st.st_size
        with open(p, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise InspectError(f"{where}: no such file") from None
    except InspectError:
        raise
    except OSError as e:
        raise InspectError(f"{where}: cannot read: {printable(e.strerror or e)}") from None
    if magic != b"GGUF":
        raise InspectError(f"{where}: not a GGUF file (it does not start with the GGUF magic)")

    from gguf import GGUFReader

    try:
        reader = GGUFReader(p, "r")
        metadata = {name: _metadata_value(fld) for name, fld in reader.fields.items()}
        tensors: dict[str, TensorInfo] = {}
        label = str(path)
        for t in reader.tensors:
            stored = tuple(int(d) for d in t.shape)
            quant = t.tensor_type.name
            nbytes = int(t.n_bytes)
            start = int(t.data_offset)
            if start + nbytes > size:
                raise InspectError(
                    f"{where}: tensor {t.name!r} runs past the end of the file "
                    f"({start + nbytes} > {size} bytes); the file is truncated"
                )
            if t.name in tensors:
                raise InspectError(f"{where}: tensor {t.name!r} appears twice")
            tensors[t.name] = TensorInfo(
                name=t.name,
                shape=tuple(reversed(stored)),
                dtype=quant,
                nbytes=nbytes,
                file=label,
                quant=quant,
                stored_shape=stored,
            )
    except InspectError:
        raise
    except MemoryError:
        raise InspectError(f"{where}: not a valid GGUF file (implausible sizes in its header)") from None
    except Exception as e:  # the gguf package raises many kinds on a corrupt file
        detail = printable(str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise InspectError(f"{where}: not a valid GGUF file ({detail})") from None
    return reader, CheckpointHeaders(tensors, [label], "gguf", metadata, [])


# --------------------------------------------------------------------------- names


# Architectures whose per-layer norm names differ from llama's: Gemma 3's four norms per layer.
_ARCH_NAMES = {
    "gemma3": {
        "ffn_norm.weight": "pre_feedforward_layernorm.weight",
        "post_attention_norm.weight": "post_attention_layernorm.weight",
        "post_ffw_norm.weight": "post_feedforward_layernorm.weight",
    },
}
GGUF_NORM_PLUS_ONE = frozenset({"gemma", "gemma2", "gemma3"})


def gguf_name_map(n_layers: int, arch: str = "llama") -> dict[str, str]:
    """GGUF tensor name -> Hugging Face name, for llama-family models (llama, mistral, qwen2, qwen3)
    and Gemma 3 (`arch` "gemma3": its sandwich norms).

    Covers embeddings, final norm, lm head, and per layer: both norms, q/k/v/o projections
    (weights and qwen2-style biases), qwen3's q/k norms, and the gated MLP.
    """
    out = {
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    }
    per_layer = {
        "attn_norm.weight": "input_layernorm.weight",
        "ffn_norm.weight": "post_attention_layernorm.weight",
        "attn_q.weight": "self_attn.q_proj.weight",
        "attn_k.weight": "self_attn.k_proj.weight",
        "attn_v.weight": "self_attn.v_proj.weight",
        "attn_output.weight": "self_attn.o_proj.weight",
        "attn_q.bias": "self_attn.q_proj.bias",
        "attn_k.bias": "self_attn.k_proj.bias",
        "attn_v.bias": "self_attn.v_proj.bias",
        "attn_output.bias": "self_attn.o_proj.bias",
        "attn_q_norm.weight": "self_attn.q_norm.weight",
        "attn_k_norm.weight": "self_attn.k_norm.weight",
        "ffn_gate.weight": "mlp.gate_proj.weight",
        "ffn_up.weight": "mlp.up_proj.weight",
        "ffn_down.weight": "mlp.down_proj.weight",
        **_ARCH_NAMES.get(arch, {}),
    }
    for i in range(n_layers):
        for g, h in per_layer.items():
            out[f"blk.{i}.{g}"] = f"model.layers.{i}.{h}"
    return out


def qk_row_permutation(n_rows: int, n_head: int) -> list[int]:
    """Row mapping for llama-architecture ``attn_q``/``attn_k`` tensors.

    ``perm[r]`` is the GGUF row that holds row ``r`` of the Hugging Face tensor, i.e.
    ``hf = gguf[perm]``. Use the number of attention heads for ``attn_q`` and the number of KV
    heads for ``attn_k``. Each head's ``d = n_rows / n_head`` rows are ``d/2`` interleaved pairs.
    """
    if n_head <= 0 or n_rows % n_head or (n_rows // n_head) % 2:
        raise InspectError(f"cannot split {n_rows} rows into {n_head} heads of an even size")
    d = n_rows // n_head
    half = d // 2
    perm = [0] * n_rows
    for h in range(n_head):
        for t in range(2):
            for j in range(half):
                perm[h * d + t * half + j] = h * d + 2 * j + t
    return perm


# --------------------------------------------------------------------------- config

_MODEL_TYPES = {
    "llama": ("llama", "LlamaForCausalLM"),
    "mistral": ("mistral", "MistralForCausalLM"),
    "qwen2": ("qwen2", "Qwen2ForCausalLM"),
    "qwen3": ("qwen3", "Qwen3ForCausalLM"),
    "gemma3": ("gemma3_text", "Gemma3ForCausalLM"),
}
# Config values a GGUF does not carry, as llama.cpp and transformers' config class both assume them;
# these architectures also take `{arch}.attention.sliding_window` (a llama/qwen2 file's is not used,
# as transformers does not use it).
_ARCH_CONFIG = {"gemma3": {"rope_local_base_freq": 10000.0}}


def _f32_clean(x: float) -> float:
    """GGUF stores floats as float32; give the shortest decimal that is the same float32."""
    import numpy as np

    return float(str(np.float32(x)))


def _arch_config(arch: str, md: dict[str, Any]) -> dict[str, Any]:
    """The values of `_ARCH_CONFIG` and, for those architectures, the file's sliding window."""
    window = md.get(f"{arch}.attention.sliding_window") if arch in _ARCH_CONFIG else None
    return {**_ARCH_CONFIG.get(arch, {}), **({"sliding_window": int(window)} if window is not None else {})}


def gguf_to_hf_config(headers_or_path: CheckpointHeaders | str | os.PathLike) -> dict[str, Any]:
    """A Hugging Face-style ``config.json`` dict for a llama-family GGUF.

    Uses ``general.architecture`` and ``{arch}.block_count``, ``.embedding_length``,
    ``.feed_forward_length``, ``.attention.head_count``, ``.attention.head_count_kv``,
    ``.attention.key_length``, ``.rope.freq_base``, ``.attention.layer_norm_rms_epsilon``,
    ``.context_length``; ``vocab_size`` is the length of ``tokenizer.ggml.tokens``;
    ``tie_word_embeddings`` is true when there is no ``output.weight`` tensor. RoPE scaling and
    sliding windows are not carried over.
    """
    headers = (
        headers_or_path
        if isinstance(headers_or_path, CheckpointHeaders)
        else read_gguf(headers_or_path)
    )
    where = printable(headers.files[0]) if headers.files else "GGUF"
    if headers.format != "gguf":
        raise InspectError(f"{where}: not a GGUF checkpoint")
    md = headers.metadata
    arch = md.get("general.architecture")
    if arch not in _MODEL_TYPES:
        raise InspectError(
            f"{where}: GGUF architecture {arch!r} is not supported "
            f"(supported: {', '.join(sorted(_MODEL_TYPES))})"
        )
    model_type, hf_arch = _MODEL_TYPES[arch]

    def need(key: str) -> Any:
        full = f"{arch}.{key}"
        if full not in md:
            raise InspectError(f"{where}: GGUF metadata has no {full}")
        return md[full]

    hidden = int(need("embedding_length"))
    heads = int(need("attention.head_count"))
    kv_heads = int(md.get(f"{arch}.attention.head_count_kv", heads))
    tokens = md.get("tokenizer.ggml.tokens")
    if tokens is not None:
        vocab = len(tokens)
    elif f"{arch}.vocab_size" in md:
        vocab = int(md[f"{arch}.vocab_size"])
    elif "token_embd.weight" in headers.tensors:
        vocab = headers.tensors["token_embd.weight"].shape[0]
    else:
        raise InspectError(f"{where}: cannot tell the vocabulary size")
    cfg: dict[str, Any] = {
        "architectures": [hf_arch],
        "model_type": model_type,
        "hidden_size": hidden,
        "intermediate_size": int(need("feed_forward_length")),
        "num_hidden_layers": int(need("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": int(md.get(f"{arch}.attention.key_length", hidden // heads)),
        "vocab_size": vocab,
        "max_position_embeddings": int(need("context_length")),
        "rms_norm_eps": _f32_clean(float(need("attention.layer_norm_rms_epsilon"))),
        "rope_theta": _f32_clean(float(md.get(f"{arch}.rope.freq_base", 10000.0))),
        "tie_word_embeddings": "output.weight" not in headers.tensors,
        "attention_bias": "blk.0.attn_q.bias" in headers.tensors,
        **_arch_config(arch, md),
    }
    for gguf_key, hf_key in (
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
    ):
        if gguf_key in md:
            cfg[hf_key] = int(md[gguf_key])
    return cfg


def gguf_layer_count(headers: CheckpointHeaders) -> int:
    """Number of ``blk.N`` layers the tensor names mention."""
    layers = {int(m.group(1)) for n in headers.tensors if (m := re.match(r"blk\.(\d+)\.", n))}
    return max(layers) + 1 if layers else 0


def logical_param_count(headers: CheckpointHeaders) -> int:
    """Parameters as the model sees them (quantization does not change the count)."""
    return sum(math.prod(t.shape) for t in headers.tensors.values())
