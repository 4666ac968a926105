"""llama.cpp's recurrent-state and KV-layer rules for nemotron_h and falcon-h1, figures derived by hand from its source.

Source: ggml-org/llama.cpp@0c1e57098, the llama.cpp llama-cpp-python 0.3.36 vendors:
* src/models/nemotron-h.cpp L15 (load_arch_hparams): a layer is recurrent iff n_head_kv(il) == 0 and n_ff(il) == 0;
  src/models/falcon-h1.cpp L14: every layer is recurrent;
* src/llama-model.cpp L2688-2697 (llama_model::create_memory): Falcon-H1's filter_attn and filter_recr are always
  true (every layer in both caches); Nemotron-H's filter_attn is ``!is_recr(il) && n_ff(il) == 0`` (the attention
  blocks), filter_recr ``is_recr(il) && n_ff(il) == 0``; the MLP blocks are in neither;
* src/llama-hparams.cpp L229 (n_embd_r): ``(d_conv - 1) * (d_inner + 2 n_group d_state)``; L257 (n_embd_s):
  ``d_state * d_inner``;
* src/llama-memory-recurrent.cpp L78 (skipped layers), L101-103: per kept layer R [n_embd_r, mem_size (1 + n_rs_seq)]
  and S [n_embd_s, ...] in f32, mem_size = max(1, n_seq_max) (llama-model.cpp's create_memory).
The printouts of synthetic GGUFs of both architectures are fixtures/llamacpp/synth (tests/test_llamacpp_archs.py).
"""

from __future__ import annotations

from inspector.memory.llamacpp_recurrent import recurrent, rs_cache

# NVIDIA-Nemotron-Nano-9B-v2's layer pattern (its config.json's hybrid_override_pattern, the preset's): M Mamba-2,
# * attention, - MLP; converted as convert_hf_to_gguf writes it: per-layer head_count_kv 8 on attention blocks,
# feed_forward_length 15680 on MLP blocks, 0 elsewhere; Mamba-2: 128 heads x 80 = d_inner 10240, 8 groups, state 128
NANO = "M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-"


def _nemotron_meta() -> dict:
    a = "nemotron_h"
    return {f"{a}.attention.head_count_kv": [8 if c == "*" else 0 for c in NANO],
            f"{a}.feed_forward_length": [15680 if c == "-" else 0 for c in NANO],
            f"{a}.ssm.conv_kernel": 4, f"{a}.ssm.inner_size": 10240, f"{a}.ssm.state_size": 128,
            f"{a}.ssm.group_count": 8, f"{a}.ssm.time_step_rank": 128}


def test_nemotron_h_recurrent_layers_kv_layers_and_widths():
    rec = recurrent(_nemotron_meta(), "nemotron_h", len(NANO), 4480)
    assert rec.layers == tuple(i for i, c in enumerate(NANO) if c == "M") and len(rec.layers) == 27
    assert rec.kv_layers == 4  # the four '*' blocks; the 25 MLP blocks hold neither cache
    assert rec.n_embd_r == 3 * (10240 + 2 * 8 * 128) == 36_864
    assert rec.n_embd_s == 128 * 10240 == 1_310_720
    c = rs_cache(rec, len(NANO), n_seq_max=1)
    assert (c.cells, c.layers) == (1, 56)  # the size line counts every layer of the model
    assert c.r_bytes == 27 * 36_864 * 4 == 3_981_312
    assert c.s_bytes == 27 * 1_310_720 * 4 == 141_557_760
    assert c.buffer_bytes == c.nbytes  # both rows already multiples of 32 B


def test_falcon_h1_every_layer_recurrent_and_attention():
    # Falcon-H1-7B's shape (the preset): 44 layers, mamba_d_ssm 3072, state 256, 1 group, conv 4, 24 SSM heads
    a = "falcon-h1"
    meta = {f"{a}.ssm.conv_kernel": 4, f"{a}.ssm.inner_size": 3072, f"{a}.ssm.state_size": 256,
            f"{a}.ssm.group_count": 1, f"{a}.ssm.time_step_rank": 24, f"{a}.attention.head_count_kv": 2}
    rec = recurrent(meta, a, 44, 3072)
    assert rec.layers == tuple(range(44)) and rec.kv_layers == 44
    assert (rec.n_embd_r, rec.n_embd_s) == (3 * (3072 + 2 * 256), 256 * 3072) == (10_752, 786_432)
    c = rs_cache(rec, 44, n_seq_max=2, n_rs_seq=1)  # 2 cells x (1 + 1) rows
    assert (c.r_bytes, c.s_bytes) == (44 * 10_752 * 4 * 4, 44 * 786_432 * 4 * 4) == (7_569_408, 553_648_128)
