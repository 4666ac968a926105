"""Per-rank weights and KV cache under TP/PP/DP/EP (inspector.memory.parallel) and GPU totals as
torch reports them (inspector.memory.gpus), held against public vLLM logs (fixtures/vllm/ranks) and
vLLM's own rules restated here from its source (not from our code):

  vocab_parallel_embedding.py  pad_vocab_size(v) = ceil(v / 64) * 64; each TP rank holds padded / tp rows.
  linear.py QKVParallelLinear  num_heads / tp query heads per rank; kv heads num_kv_heads / tp, or 1 when
                               tp >= num_kv_heads (replicated tp / num_kv_heads times); `divide` asserts.
  linear.py Column/RowParallel gate/up split their output rows, down its input columns; norms whole.
  distributed/utils.py         get_pp_indices: L // pp layers each; the remainder, one each, to
                               partitions[-2], partitions[-3], ... (never the last one).
  fused_moe/layer.py           determine_expert_map: E // ep experts each, the first E % ep ranks one more.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import REFERENCE_CONFIGS, load_reference_config
from inspector.errors import InspectError
from inspector.memory.gpus import (
    ASSUMED, CALIBRATED, GIB, GIVEN, GPU_PRESETS, MIB, OVERRIDE_FLAG, gpu, gpu_memory_gib, gpu_presets,
)
from inspector.memory.parallel import (
    Layout, candidate_layouts, local_experts, pad_vocab, pp_indices, rank_plan, smallest_layout, total_elements,
    weights_fit,
)
from inspector.source import account_model

LOGGED = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "vllm" / "ranks" / "logged.json").read_text())
CONFIGS = sorted(p.name for p in REFERENCE_CONFIGS.iterdir() if (p / "config.json").is_file())
LAYOUTS = [Layout(1), Layout(2), Layout(4), Layout(8), Layout(2, 3), Layout(1, 4), Layout(4, dp=2, ep=True),
           Layout(2, 2, dp=2)]

_ACC: dict[str, object] = {}


def acc_of(name: str):
    if name not in _ACC:
        _ACC[name] = account_model(str(REFERENCE_CONFIGS / name))
    return _ACC[name]


def logged(key: str):
    return LOGGED[key]["value"]


# --------------------------------------------------------------------------- public vLLM logs


def test_llama3_8b_weights_per_gpu_at_tp1_and_tp2_match_vllms_log():
    """PR 10511: Meta-Llama-3-8B loads 14.96 GiB at TP 1 and 7.48 GiB per GPU at TP 2 (Llama-3.1-8B's
    config has the same shapes: vocab 128256, d 4096, 32 layers, 8 kv heads, intermediate 14336)."""
    acc = acc_of("meta-llama__Llama-3.1-8B")
    for tp, key in ((1, "llama3_8b_tp1_weights_gib"), (2, "llama3_8b_tp2_weights_gib")):
        plan = rank_plan(acc, Layout(tp))
        for r in plan.ranks:
            assert abs(r.weights_bytes / GIB - logged(key)) < 0.05, (tp, r.weights_bytes / GIB)
    assert abs(rank_plan(acc, Layout(1)).largest.weights_bytes / GIB - logged("llama31_8b_v1_weights_gib")) < 0.05


def test_qwen3_06b_weights_match_vllms_v1_log():
    plan = rank_plan(acc_of("Qwen__Qwen3-0.6B"), Layout(1))
    assert abs(plan.largest.weights_bytes / GIB - logged("qwen3_06b_v1_weights_gib")) < 0.05


def test_torch_totals_of_the_presets_are_the_logged_ones():
    h100, rtx3090 = gpu("H100-80GB"), gpu("RTX3090-24GB")
    assert h100.torch_status == rtx3090.torch_status == CALIBRATED
    assert abs(h100.torch_bytes / GIB - logged("h100_torch_total_gib")[0]) < 0.005
    assert abs(rtx3090.torch_bytes / GIB - logged("rtx3090_torch_total_gib")[0]) < 0.005
    # nvidia-smi's H100 total is the 81,559 MiB that vllm issue 55169 prints; torch's is about 0.47 GiB less
    assert h100.bytes == 81559 * MIB and 0.4 * GIB < h100.bytes - h100.torch_bytes < 0.6 * GIB


# --------------------------------------------------------------------------- GPU presets


def test_presets_keep_their_names_and_nvidia_smi_totals():
    assert GPU_PRESETS == ("H100-80GB", "H200-141GB", "A100-80GB", "A100-40GB", "L4-24GB", "RTX4090-24GB")
    assert [g.bytes // MIB for g in gpu_presets()] == [81559, 143771, 81920, 40960, 23034, 24564]


@pytest.mark.parametrize("name", GPU_PRESETS + ("RTX3090-24GB", "A10-24GB", "L40-48GB", "MI300X-192GB"))
def test_every_preset_has_a_torch_total_below_nvidia_smis_with_a_source(name):
    g = gpu(name)
    assert g.torch_status in (CALIBRATED, ASSUMED) and g.torch_source
    assert 0 < g.bytes - g.torch_bytes < GIB
    if g.torch_status == ASSUMED:
        assert OVERRIDE_FLAG in g.torch_source and g.bytes - g.torch_bytes == GIB // 2
    assert g.total == g.torch_bytes


def test_gpu_memory_gib_overrides_torchs_total():
    mine = gpu_memory_gib(23.5)
    assert mine.torch_status == GIVEN and mine.total == mine.bytes == int(23.5 * GIB)
    a100 = gpu_memory_gib(79.15, gpu("A100-80GB"))
    assert (a100.name, a100.bytes, a100.total, a100.torch_status) == ("A100-80GB", 81920 * MIB, int(79.15 * GIB), GIVEN)
    assert gpu("24").total == 24 * GIB  # a bare size is its own total, as before
    for bad in (0, -1, float("nan"), float("inf"), 10**9):
        with pytest.raises(InspectError, match=OVERRIDE_FLAG):
            gpu_memory_gib(bad)


# --------------------------------------------------------------------------- vLLM's rules, restated


def test_pp_indices_follow_get_pp_indices():
    assert [pp_indices(32, r, 3) for r in range(3)] == [(0, 11), (11, 22), (22, 32)]
    # 10 layers on 4 stages: the two extra go to the middle stages (first and last hold embedding and head)
    assert [b - a for a, b in (pp_indices(10, r, 4) for r in range(4))] == [2, 3, 3, 2]
    assert [b - a for a, b in (pp_indices(7, r, 4) for r in range(4))] == [2, 2, 2, 1]
    assert pp_indices(32, 1, 2, partition=(20, 12)) == (20, 32)


def test_expert_map_spreads_the_remainder_over_the_first_ranks():
    assert [local_experts(10, 4, r) for r in range(4)] == [(0, 3), (3, 3), (6, 2), (8, 2)]
    assert {local_experts(128, 8, r)[1] for r in range(8)} == {16}


def test_vocab_padding_rows_sit_on_the_last_ranks():
    """InternVL2-2B's vocabulary of 92,553 pads to 92,608: 11,576 rows per rank at TP 8, the last one
    with 55 padding rows (of 2,048 each) in the embedding and again in the LM head."""
    acc = acc_of("OpenGVLab__InternVL2-2B")
    assert pad_vocab(92553) == 92608
    plan = rank_plan(acc, Layout(8))
    assert [r.padding for r in plan.ranks] == [0] * 7 + [2 * 55 * 2048]


def _expected_dense_rank(cfg: dict, tp: int) -> int:
    """One TP rank's elements of a Llama-like dense model, from config.json and vLLM's rules above."""
    d, heads, layers = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    kv, hd = cfg.get("num_key_value_heads", heads), cfg.get("head_dim") or d // heads
    inter, vocab = cfg["intermediate_size"], cfg["vocab_size"]
    kv_local = 1 if tp >= kv else kv // tp
    bias = cfg.get("attention_bias", cfg["model_type"] == "qwen2")
    attn = d * (heads // tp) * hd + 2 * d * kv_local * hd + (heads // tp) * hd * d
    attn += ((heads // tp) * hd + 2 * kv_local * hd) if bias else 0
    attn += 2 * hd if cfg["model_type"] == "qwen3" else 0  # q_norm, k_norm per head, whole
    layer = attn + 3 * d * (inter // tp) + 2 * d
    rows = math.ceil(vocab / 64) * 64 // tp
    tied = cfg.get("tie_word_embeddings", cfg["model_type"] == "smollm3")  # SmolLM3Config's default is True
    head = 0 if tied else rows * d
    return rows * d + layers * layer + d + head


DENSE = ["meta-llama__Llama-3.1-8B", "meta-llama__Llama-3.2-1B", "mistralai__Mistral-7B-v0.1", "Qwen__Qwen2.5-0.5B",
         "Qwen__Qwen2.5-1.5B", "Qwen__Qwen2.5-7B-Instruct", "Qwen__Qwen3-0.6B", "HuggingFaceTB__SmolLM3-3B"]


@pytest.mark.parametrize("tp", [1, 2, 4, 8], ids=lambda tp: f"tp{tp}")
@pytest.mark.parametrize("name", DENSE)
def test_dense_rank_elements_equal_vllms_rules(name, tp):
    cfg = load_reference_config(name)
    if cfg["num_attention_heads"] % tp:
        with pytest.raises(InspectError, match=rf"num_attention_heads \({cfg['num_attention_heads']}\)"):
            rank_plan(acc_of(name), Layout(tp))
        return
    plan = rank_plan(acc_of(name), Layout(tp))
    assert {r.elements for r in plan.ranks} == {_expected_dense_rank(cfg, tp)}


@pytest.mark.parametrize("name,tp,heads", [("Qwen__Qwen3-30B-A3B", 8, 4), ("Qwen__Qwen2.5-1.5B", 4, 2),
                                           ("Qwen__Qwen2-VL-2B-Instruct", 4, 2), ("Qwen__Qwen3-0.6B", 8, 8)])
def test_kv_heads_are_replicated_when_fewer_than_tp(name, tp, heads):
    cfg = load_reference_config(name)
    text = cfg.get("text_config", cfg)
    assert text["num_key_value_heads"] == heads
    plan = rank_plan(acc_of(name), Layout(tp))
    hd = text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]
    assert {r.kv_heads for r in plan.ranks} == {max(1, heads // tp)}
    assert {r.kv_bytes_per_token for r in plan.ranks} == {text["num_hidden_layers"] * 2 * max(1, heads // tp) * hd * 2}
    replicas = max(1, tp // heads)
    kv_weights = text["num_hidden_layers"] * 2 * hd * text["hidden_size"]  # k and v of one head, all layers
    assert sum(r.copy for r in plan.ranks) >= (replicas - 1) * heads * kv_weights


def test_qwen25_7b_at_tp8_is_refused_for_its_query_heads_not_its_kv_heads():
    """28 query heads: vLLM's divide(28, 8) fails before the 4 kv heads could be replicated."""
    with pytest.raises(InspectError, match=r"num_attention_heads \(28\) is not divisible by tensor parallel size 8"):
        rank_plan(acc_of("Qwen__Qwen2.5-7B-Instruct"), Layout(8))


def test_pipeline_stages_hold_embedding_first_and_head_last():
    acc = acc_of("meta-llama__Llama-3.1-8B")
    one = rank_plan(acc, Layout(1)).ranks[0]
    stages = rank_plan(acc, Layout(1, 4)).ranks
    embed = head = 128256 * 4096
    per_layer = (one.own - embed - head - 4096) // 32
    assert [r.layers for r in stages] == [(0, 8), (8, 16), (16, 24), (24, 32)]
    assert [r.own for r in stages] == [embed + 8 * per_layer, 8 * per_layer, 8 * per_layer,
                                       8 * per_layer + 4096 + head]
    assert {r.kv_bytes_per_token for r in stages} == {8 * 2 * 8 * 128 * 2}


def test_a_tied_head_is_a_copy_of_the_embedding_on_the_last_stage():
    acc = acc_of("meta-llama__Llama-3.2-1B")  # tie_word_embeddings: true
    assert rank_plan(acc, Layout(1)).ranks[0].copy == 0
    last = rank_plan(acc, Layout(1, 2)).ranks[-1]
    assert last.copy == 128256 * 2048


def test_experts_split_by_tp_or_whole_by_ep():
    acc = acc_of("Qwen__Qwen3-30B-A3B")  # 128 experts of intermediate 768, 48 layers, d 2048
    per_expert = 3 * 2048 * 768 * 48
    tp = rank_plan(acc, Layout(4))
    ep = rank_plan(acc, Layout(4, ep=True))
    assert {r.experts for r in tp.ranks} == {128} and {r.experts for r in ep.ranks} == {32}
    # the same expert bytes per rank either way (128 / 4 experts whole = 128 experts a quarter each)
    assert [r.own for r in tp.ranks] == [r.own for r in ep.ranks]
    odd = rank_plan(acc, Layout(2, dp=3, ep=True))  # EP 6: 128 = 6 × 21 + 2, ranks 0 and 1 hold 22
    assert [r.experts for r in odd.ranks] == [22, 22, 21, 21, 21, 21]
    assert odd.ranks[0].elements - odd.ranks[2].elements == per_expert
    with pytest.raises(InspectError, match=r"moe_intermediate_size \(768\) is not divisible by 512"):
        rank_plan(acc, Layout(8, dp=64))


# --------------------------------------------------------------------------- identities over real configs


@pytest.mark.parametrize("lay", LAYOUTS, ids=lambda lay: lay.label().replace(" ", "").replace("×", "x"))
@pytest.mark.parametrize("name", CONFIGS)
def test_ranks_add_up_to_the_model_plus_copies_and_padding(name, lay):
    acc = acc_of(name)
    try:
        plan = rank_plan(acc, lay)
    except InspectError as err:
        assert "\n" not in str(err) and ("divisible" in str(err) or "neither divides" in str(err))
        return
    own, copy, padding = total_elements(plan)
    assert own == plan.model_params == acc.totals.total_params
    assert sum(r.elements for r in plan.ranks) == own + copy + padding
    assert sum(r.weights_bytes for r in plan.ranks) == 2 * (own + copy + padding)
    assert len(plan.ranks) == lay.world
    if lay.dp == 1 and lay.tp == 1:  # copies: the last stage's tied head, the vision tower on later stages
        t = acc.spec.text
        vision = sum(v for k, v in acc.totals.components.items() if k != "language_model")
        tied = t.vocab_size * t.hidden_size if t.tie_embeddings and lay.pp > 1 else 0
        assert copy == tied + (lay.pp - 1) * vision


# --------------------------------------------------------------------------- the smallest layout


@pytest.mark.parametrize("name,sentence", [
    ("meta-llama__Llama-3.1-8B", "fits on 1 × H100-80GB with TP 1"),
    ("mistralai__Mixtral-8x7B-v0.1", "fits on 2 × H100-80GB with TP 2"),
    ("meta-llama__Llama-4-Scout-17B-16E-Instruct", "fits on 4 × H100-80GB with TP 4"),
    ("deepseek-ai__DeepSeek-V3", "fits on 24 × H100-80GB with TP 8 × PP 3"),
])
def test_smallest_layout_names_the_fewest_gpus_whose_largest_rank_fits(name, sentence):
    h100 = gpu("H100-80GB")
    budget = int(0.9 * h100.total) - 8 * GIB  # weights within 0.9 × torch's total, 8 GiB kept for the rest
    plan, text = smallest_layout(acc_of(name), weights_fit(budget), h100.name)
    assert text == sentence
    assert plan.largest.weights_bytes <= budget
    fewer = [lay for lay in candidate_layouts() if lay.world < plan.layout.world]
    for lay in fewer:
        try:
            assert rank_plan(acc_of(name), lay).largest.weights_bytes > budget
        except InspectError:
            pass


def test_smallest_layout_skips_layouts_vllm_refuses_and_says_when_none_fits():
    plan, text = smallest_layout(acc_of("Qwen__Qwen2.5-7B-Instruct"), weights_fit(3 * GIB), "L4-24GB")
    assert text == "fits on 8 × L4-24GB with TP 4 × PP 2"  # TP 8 is refused (28 heads: not a multiple of 8)
    with pytest.raises(InspectError) as err:
        smallest_layout(acc_of("Qwen__Qwen2.5-7B-Instruct"), weights_fit(0), "L4-24GB")
    assert "\n" not in str(err.value) and "no layout up to 16 nodes of 8 fits on L4-24GB" in str(err.value)
    assert "num_attention_heads (28)" in str(err.value)
