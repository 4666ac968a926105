"""How a GGUF file maps to Hugging Face: the config.json it implies, tensor names, Q/K row order.

* :func:`gguf_to_hf_config`: a Hugging Face-style ``config.json`` dict from the GGUF metadata, every
  value checked (an integer where an integer belongs, in range; finite positive floats);
* :func:`gguf_name_map` / :func:`gguf_to_hf_name`: GGUF tensor names -> Hugging Face names, mapped one
  name at a time (nothing is built per layer up front, whatever ``block_count`` says);
* :func:`gguf_moe_role`: llama.cpp's mixture-of-experts tensor names, by role (``GGUF_MOE_ROLES``);
* :func:`qk_row_permutation`: where llama.cpp moved the rows of ``attn_q``/``attn_k`` (see
  inspector.checkpoint.gguf on which architectures carry it);
* :func:`open_gguf_checkpoint`: a GGUF file parsed once into a `GGUFCheckpoint` (its config, its
  headers, its tensor records), which serves both the spec and the tensor data.
The per-architecture facts live in ``GGUF_ARCHITECTURES`` in inspector.spec.families.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from inspector.checkpoint.gguf import GGUF_ARCHITECTURES, GGUFArray, GGUFFile, open_gguf, read_gguf
from inspector.checkpoint.records import CheckpointHeaders
from inspector.errors import InspectError, printable

MAX_INT = 2**31 - 1


def _f32_clean(x: float) -> float:
    """GGUF stores floats as float32: the shortest decimal that reads back as the same float32."""
    target = struct.unpack("<f", struct.pack("<f", x))[0]
    for digits in range(1, 18):
        candidate = float(f"{target:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", candidate))[0] == target:
            return candidate
    return target


class _Metadata:
    """Typed access to the ``{arch}.*`` metadata; errors name the file and the key."""

    def __init__(self, md: dict[str, Any], arch: str, where: str) -> None:
        self.md, self.arch, self.where = md, arch, where

    def _get(self, key: str, default: Any, full: bool) -> tuple[str, Any]:
        name = key if full else f"{self.arch}.{key}"
        value = self.md.get(name, default)
        if value is None:
            raise InspectError(f"{self.where}: GGUF metadata has no {name}")
        if isinstance(value, (list, GGUFArray)):
            raise InspectError(f"{self.where}: GGUF metadata {name} is an array (per-layer values are not supported)")
        return name, value

    def int(self, key: str, default: int | None = None, minimum: int = 1, full: bool = False) -> int:
        name, value = self._get(key, default, full)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_INT:
            raise InspectError(f"{self.where}: GGUF metadata {name} must be an integer in [{minimum}, {MAX_INT}], "
                               f"got {printable(repr(value))}")
        return value

    def float(self, key: str, default: float | None = None) -> float:
        name, value = self._get(key, default, False)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise InspectError(f"{self.where}: GGUF metadata {name} must be a positive finite number, "
                               f"got {printable(repr(value))}")
        return _f32_clean(float(value))


def gguf_to_hf_config(headers_or_path: CheckpointHeaders | str | os.PathLike) -> dict[str, Any]:
    """A Hugging Face-style ``config.json`` dict for a llama-family GGUF.

    Uses ``general.architecture`` and ``{arch}.block_count``, ``.embedding_length``,
    ``.feed_forward_length``, ``.attention.head_count``, ``.attention.head_count_kv``,
    ``.attention.key_length``, ``.rope.freq_base``, ``.attention.layer_norm_rms_epsilon``,
    ``.context_length``; ``vocab_size`` is the length of ``tokenizer.ggml.tokens``;
    ``tie_word_embeddings`` is true when there is no ``output.weight`` tensor. RoPE scaling and
    sliding windows are not carried over.
    """
    headers = headers_or_path if isinstance(headers_or_path, CheckpointHeaders) else read_gguf(headers_or_path)
    where = printable(headers.files[0]) if headers.files else "GGUF"
    if headers.format != "gguf":
        raise InspectError(f"{where}: not a GGUF checkpoint")
    md = headers.metadata
    arch = md.get("general.architecture")
    facts = GGUF_ARCHITECTURES.get(arch) if isinstance(arch, str) else None
    if facts is None:
        raise InspectError(f"{where}: GGUF architecture {printable(repr(arch))} is not supported "
                           f"(supported: {', '.join(sorted(GGUF_ARCHITECTURES))})")
    m = _Metadata(md, arch, where)
    hidden, heads = m.int("embedding_length"), m.int("attention.head_count")
    layers = m.int("block_count")
    if layers > len(headers.tensors):
        raise InspectError(f"{where}: GGUF metadata {arch}.block_count is {layers:,}, more layers than the "
                           f"{len(headers.tensors):,} tensors in the file can hold")
    if f"{arch}.attention.key_length" not in md and hidden % heads:
        raise InspectError(f"{where}: {arch}.embedding_length ({hidden}) is not a multiple of "
                           f"{arch}.attention.head_count ({heads}) and no {arch}.attention.key_length is given")
    vocab = _vocab_size(headers, m, where)
    cfg: dict[str, Any] = {
        "architectures": [facts.architecture],
        "model_type": facts.model_type,
        "hidden_size": hidden,
        "intermediate_size": m.int("feed_forward_length"),
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": m.int("attention.head_count_kv", heads),
        "head_dim": m.int("attention.key_length", hidden // heads),
        "vocab_size": vocab,
        "max_position_embeddings": m.int("context_length"),
        "rms_norm_eps": m.float("attention.layer_norm_rms_epsilon"),
        "rope_theta": m.float("rope.freq_base", 10000.0),
        "tie_word_embeddings": "output.weight" not in headers.tensors,
        "attention_bias": "blk.0.attn_q.bias" in headers.tensors,
    }
    cfg.update(facts.config)
    if facts.sliding_window and f"{arch}.attention.sliding_window" in md:
        cfg["sliding_window"] = m.int("attention.sliding_window")
    for gguf_key, hf_key in (("tokenizer.ggml.bos_token_id", "bos_token_id"),
                             ("tokenizer.ggml.eos_token_id", "eos_token_id"),
                             ("tokenizer.ggml.padding_token_id", "pad_token_id")):
        if gguf_key in md:
            token = m.int(gguf_key, minimum=0, full=True)
            if token >= vocab:
                raise InspectError(f"{where}: GGUF metadata {gguf_key} is {token}, past the vocabulary of {vocab}")
            cfg[hf_key] = token
    return cfg


def _vocab_size(headers: CheckpointHeaders, m: _Metadata, where: str) -> int:
    tokens = m.md.get("tokenizer.ggml.tokens")
    if tokens is not None:
        if not isinstance(tokens, (list, GGUFArray)) or not len(tokens):
            raise InspectError(f"{where}: GGUF metadata tokenizer.ggml.tokens is not a non-empty array")
        return len(tokens)
    if f"{m.arch}.vocab_size" in m.md:
        return m.int("vocab_size")
    if "token_embd.weight" in headers.tensors:
        return headers.tensors["token_embd.weight"].shape[0]
    raise InspectError(f"{where}: cannot tell the vocabulary size")


_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_LAYER_NAMES = {
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
}
_BLOCK = re.compile(r"blk\.(0|[1-9][0-9]{0,9})\.(.+)")


def _layer_names(arch: str) -> Mapping[str, str]:
    facts = GGUF_ARCHITECTURES.get(arch)
    return {**_LAYER_NAMES, **facts.layer_names} if facts is not None and facts.layer_names else _LAYER_NAMES


def gguf_to_hf_name(name: str, n_layers: int, arch: str = "llama") -> str | None:
    """The Hugging Face name of one GGUF tensor name, None when it has none."""
    hf = _GLOBAL_NAMES.get(name)
    if hf is not None:
        return hf
    m = _BLOCK.fullmatch(name)
    layer_names = _layer_names(arch)
    if m and int(m.group(1)) < n_layers and m.group(2) in layer_names:
        return f"model.layers.{m.group(1)}.{layer_names[m.group(2)]}"
    return None


class GGUFNameMap(Mapping):
    """GGUF name -> Hugging Face name for a model of ``n_layers`` layers, mapped one name at a time
    (lookups cost O(1); only iterating lists every layer)."""

    def __init__(self, n_layers: int, arch: str = "llama") -> None:
        self.n_layers, self.arch = n_layers, arch

    def __getitem__(self, name: str) -> str:
        hf = gguf_to_hf_name(name, self.n_layers, self.arch) if isinstance(name, str) else None
        if hf is None:
            raise KeyError(name)
        return hf

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and gguf_to_hf_name(name, self.n_layers, self.arch) is not None

    def __iter__(self) -> Iterator[str]:
        yield from _GLOBAL_NAMES
        for i in range(self.n_layers):
            yield from (f"blk.{i}.{g}" for g in _layer_names(self.arch))

    def __len__(self) -> int:
        return len(_GLOBAL_NAMES) + self.n_layers * len(_layer_names(self.arch))


def gguf_name_map(n_layers: int, arch: str = "llama") -> GGUFNameMap:
    """GGUF tensor name -> Hugging Face name for the decoder architectures of GGUF_ARCHITECTURES."""
    return GGUFNameMap(n_layers, arch)


# llama.cpp stores a layer's routed experts stacked, one tensor per projection (`blk.N.ffn_gate_exps`
# of shape (E, I, H) in PyTorch order), where Hugging Face checkpoints store one tensor per expert.
# The other MoE tensors (router, shared expert, DeepSeek's score bias) are one-to-one. Roles are those
# of the family name templates (inspector.spec.families), so one table serves every MoE family.
# GGUF name after "blk.N." -> (role in the family name templates, stacked over the experts)
GGUF_MOE_ROLES: dict[str, tuple[str, bool]] = {
    "ffn_gate_inp.weight": ("router", False),
    "ffn_gate_exps.weight": ("expert_gate", True),
    "ffn_up_exps.weight": ("expert_up", True),
    "ffn_down_exps.weight": ("expert_down", True),
    "ffn_gate_shexp.weight": ("shared_gate", False),
    "ffn_up_shexp.weight": ("shared_up", False),
    "ffn_down_shexp.weight": ("shared_down", False),
    "ffn_gate_inp_shexp.weight": ("shared_expert_gate", False),
    "exp_probs_b.bias": ("router_score_bias", False),
}
_MOE_BLOCK = re.compile(r"^blk\.(\d{1,9})\.(.+)$")  # digits bounded: int() of a 5,000-digit layer would fail


def gguf_moe_role(name: str) -> tuple[int, str, bool] | None:
    """(layer, role, stacked) of a GGUF MoE tensor name, or None for any other tensor."""
    m = _MOE_BLOCK.match(name)
    if m is None or m.group(2) not in GGUF_MOE_ROLES:
        return None
    role, stacked = GGUF_MOE_ROLES[m.group(2)]
    return int(m.group(1)), role, stacked


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
    return [h * d + 2 * j + t for h in range(n_head) for t in range(2) for j in range(half)]


def gguf_layer_count(headers: CheckpointHeaders) -> int:
    """Number of ``blk.N`` layers the tensor names mention."""
    layers = [int(m.group(1)) for n in headers.tensors if (m := _BLOCK.fullmatch(n))]
    return max(layers) + 1 if layers else 0


def logical_param_count(headers: CheckpointHeaders) -> int:
    """Parameters as the model sees them (quantization does not change the count)."""
    return sum(math.prod(t.shape) for t in headers.tensors.values())


@dataclass(frozen=True)
class GGUFCheckpoint:
    """A GGUF file parsed once: the parsed file (tensor offsets, long arrays), its headers, and the
    Hugging Face config its metadata implies. No tensor data is read."""

    path: Path
    file: GGUFFile
    headers: CheckpointHeaders
    config: dict[str, Any]


def open_gguf_checkpoint(path: str | os.PathLike) -> GGUFCheckpoint:
    """Parse a GGUF file once for its config and its tensors (one-line InspectErrors for bad files
    and unsupported architectures)."""
    file, headers = open_gguf(path)
    return GGUFCheckpoint(Path(path), file, headers, gguf_to_hf_config(headers))
