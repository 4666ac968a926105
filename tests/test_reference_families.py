"""The composed reference model against transformers for the dense families added as data: tiny random
models, logits within 1e-4 (fp32), and KV-cached decoding equal to recomputation."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from hf_reference import hf_tiny
from inspector.reference.load import load_model

pytest.importorskip("transformers")

CASES = {
    "gemma": tiny_config("gemma", head_dim=8, hidden_act="gelu_pytorch_tanh"),
    "gemma-untied-bias": tiny_config("gemma", head_dim=8, attention_bias=True, tie_word_embeddings=False),
    "gemma2": tiny_config("gemma2", head_dim=8, num_hidden_layers=4, sliding_window=4,
                          attn_logit_softcapping=5.0, final_logit_softcapping=3.0, query_pre_attn_scalar=12),
    "gemma3_text": tiny_config("gemma3_text", head_dim=8, num_hidden_layers=6, sliding_window=4,
                               rope_local_base_freq=100.0, query_pre_attn_scalar=8),
    "olmo2": tiny_config("olmo2"),
    "granite": tiny_config("granite", embedding_multiplier=3.0, attention_multiplier=0.2, residual_multiplier=0.5,
                           logits_scaling=4.0),
    "starcoder2": tiny_config("starcoder2", hidden_act="gelu_pytorch_tanh", norm_epsilon=1e-5),
    "gpt2": dict(model_type="gpt2", vocab_size=101, n_embd=32, n_layer=2, n_head=4, n_positions=64),
    "gpt_neox": tiny_config("gpt_neox", num_key_value_heads=4, rotary_pct=0.5, hidden_act="gelu"),
    "gpt_neox-sequential": tiny_config("gpt_neox", num_key_value_heads=4, use_parallel_residual=False,
                                       hidden_act="gelu"),
    "phi": tiny_config("phi", num_key_value_heads=4, partial_rotary_factor=0.5, hidden_act="gelu_new"),
    "phi-qk-layernorm": tiny_config("phi", num_key_value_heads=4, qk_layernorm=True, hidden_act="gelu_new"),
    "smollm3": tiny_config("smollm3", num_hidden_layers=4, no_rope_layers=[1, 1, 1, 0], pad_token_id=0),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_logits_match_transformers(case, tmp_path):
    cfg = CASES[case]
    hf = hf_tiny(cfg)
    hf.save_pretrained(tmp_path, safe_serialization=True)
    ours = load_model(tmp_path)
    ids = torch.randint(0, cfg["vocab_size"], (2, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = hf(ids).logits, ours(ids)
        assert (expected - got).abs().max().item() < 1e-4
        cache = ours.new_cache()  # prefill 7, then 4 cached steps: the same logits as recomputation
        steps = [ours(ids[:, :7], cache)[:, -1]] + [ours(ids[:, j:j + 1], cache)[:, -1] for j in range(7, 11)]
        assert (torch.stack(steps, 1) - got[:, 6:]).abs().max().item() < 1e-4
