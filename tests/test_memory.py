"""`inspect memory`: vLLM's figures from an independent statement of its formulas, weights and
QLoRA against transformers' modules, the activation and optimizer formulas, verdicts that hold
when followed, one-line errors, and no torch import."""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REFERENCE_CONFIGS, load_reference_config, tiny_config
from inspector.cli.app import app

runner = CliRunner()


def run_json(*args: str) -> dict:
    result = runner.invoke(app, ["memory", *args, "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ref_dir(name: str) -> str:
    assert (REFERENCE_CONFIGS / name / "config.json").is_file(), name
    return str(REFERENCE_CONFIGS / name)


# --------------------------------------------------------------------------- vLLM, restated
#
# vLLM's own formulas, written here from its source (not from our code):
#   vllm/v1/kv_cache_interface.py
#     FullAttentionSpec / SlidingWindowSpec.page_size_bytes = 2 * block_size * num_kv_heads * head_size * dtype_size
#     MLAAttentionSpec.page_size_bytes = block_size * 1 * (kv_lora_rank + qk_rope_head_dim) * dtype_size
#     FullAttentionSpec.max_memory_usage_bytes = cdiv(max_model_len, block_size) * page_size_bytes
#     SlidingWindowSpec.max_memory_usage_bytes =
#         (cdiv(min(sliding_window - 1 + max_num_batched_tokens, max_model_len), block_size) + 1) * page_size_bytes
#   vllm/v1/core/kv_cache_utils.py
#     one attention kind: num_blocks = int(available_memory // page_size // num_layers)
#     several kinds (hybrid allocator): layers of each kind split into groups of group_size layers, where
#         group_size = min(layers per kind), or max(...) when max < 1.25 * min;
#         num_blocks = int(available_memory // page_size // group_size)
#     _report_kv_cache_config: num_tokens = num_blocks // len(kv_cache_groups) * block_size
#         logger.info("GPU KV cache size: %s tokens", f"{num_tokens:,}")
#         logger.info("Maximum concurrency for %s tokens per request: %.2fx", f"{max_model_len:,}", max_concurrency)
#     get_max_concurrency_for_kv_cache_config:
#         layers_per_group = max(len(group.layer_names)); per_request = layers_per_group * sum(spec.max_memory_usage
#         of each group); num_block_per_request = cdiv(per_request, page_size * layers_per_group);
#         max_concurrency = num_blocks / num_block_per_request
#     estimate_max_model_len: the largest max_model_len whose sum over layers of max_memory_usage_bytes fits
#         the available memory (binary search).
#   tensor parallelism: each rank holds max(1, num_kv_heads // tp) kv heads; MLA's latent is whole on each rank.


def vllm_figures(layers: list[tuple[str, int | None]], page: int, available: int, block: int, max_len: int,
                 batched: int) -> dict:
    cdiv = lambda a, b: -(-a // b)  # noqa: E731

    def usage(kind, window, length):
        if kind == "sliding":
            return (cdiv(min(window - 1 + batched, length), block) + 1) * page
        return cdiv(length, block) * page

    kinds: dict = {}
    for i, key in enumerate(layers):
        kinds.setdefault(key, []).append(i)
    counts = [len(v) for v in kinds.values()]
    size = counts[0] if len(kinds) == 1 else (max(counts) if max(counts) < 1.25 * min(counts) else min(counts))
    groups = [(key, v[i:i + size]) for key, v in kinds.items() for i in range(0, len(v), size)]
    num_blocks = int(available // page // size)
    per_request = size * sum(usage(k, w, max_len) for (k, w), _ in groups)
    concurrency = num_blocks / cdiv(per_request, page * size)
    lo, hi = 0, max_len
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(usage(k, w, mid) for k, w in layers) <= available:
            lo = mid
        else:
            hi = mid - 1
    return {"kv_cache_tokens": num_blocks // len(groups) * block, "max_concurrency": concurrency,
            "largest_context": lo, "num_blocks": num_blocks,
            "one_request_bytes": sum(usage(k, w, max_len) for k, w in layers)}


def check_vllm(data: dict, layers: list, token_layer_bytes: int, max_len: int, block: int = 16,
               batched: int = 8192) -> None:
    assert data["kv_bytes_per_token_layer"] == token_layer_bytes
    theirs = vllm_figures(layers, block * token_layer_bytes, data["kv_cache_bytes"], block, max_len, batched)
    for key, value in theirs.items():
        assert data[key] == value, key
    assert data["vllm_log"][1] == f"GPU KV cache size: {theirs['kv_cache_tokens']:,} tokens"
    assert data["vllm_log"][2] == (f"Maximum concurrency for {max_len:,} tokens per request: "
                                   f"{theirs['max_concurrency']:.2f}x")


def test_vllm_full_attention_gqa():
    data = run_json("Qwen/Qwen2.5-7B-Instruct", "--gpu", "L4-24GB")
    check_vllm(data, [("full", None)] * 28, 2 * 4 * 128 * 2, 32768)  # 4 kv heads of 128, bf16
    assert data["checkpoint_weights_bytes"] == 2 * 7_615_616_512  # the published parameter count, in bf16
    # and vLLM's RoPE cache, one buffer shared by the layers: 32,768 positions × head_dim 128 × bf16
    assert [x["bytes"] for x in data["load_extras"]] == [32768 * 128 * 2]
    assert data["weights_bytes"] == data["checkpoint_weights_bytes"] + 32768 * 128 * 2


@pytest.mark.parametrize("gpus,kv_heads", [(2, 4), (8, 1)])
def test_vllm_tensor_parallel_splits_kv_heads(gpus, kv_heads):
    data = run_json("llama-3.1-8b", "--gpus", str(gpus), "--max-model-len", "131072")
    check_vllm(data, [("full", None)] * 32, 2 * kv_heads * 128 * 2, 131072)


def test_vllm_kv_heads_replicated_beyond_their_count():
    # Qwen3-0.6B: 16 query heads, 8 kv heads; TP 16 keeps one kv head per rank, each replicated twice
    # (vLLM refuses TP sizes that do not divide the padded vocabulary, such as 14)
    data = run_json("qwen3-0.6b", "--tp", "16", "--gpu", "L4-24GB")
    check_vllm(data, [("full", None)] * 28, 2 * 1 * 128 * 2, 40960, batched=2048)


def test_vllm_fp8_cache_and_block_size():
    data = run_json("mistral-7b", "--kv-dtype", "fp8", "--block-size", "32", "--gpu", "A100-40GB",
                    "--max-num-batched-tokens", "2048")
    check_vllm(data, [("sliding", 4096)] * 32, 2 * 8 * 128 * 1, 32768, block=32, batched=2048)


def test_vllm_hybrid_sliding_and_full_layers():
    data = run_json(ref_dir("openai__gpt-oss-20b"))
    cfg = load_reference_config("openai__gpt-oss-20b")
    layers = [("sliding", cfg["sliding_window"]) if t == "sliding_attention" else ("full", None)
              for t in cfg["layer_types"]]
    check_vllm(data, layers, 2 * 8 * 64 * 2, 131072)
    assert data["kv_groups"] == [["sliding", 128, 12], ["full", None, 12]]


def test_vllm_mla_latent_on_every_rank():
    data = run_json(ref_dir("deepseek-ai__DeepSeek-V3"), "--gpus", "8", "--gpu", "H200-141GB", "--dtype", "fp8")
    check_vllm(data, [("full", None)] * 61, (512 + 64) * 2, 163840)


def test_context_longer_than_the_cache_holds():
    data = run_json("llama-3.1-8b", "--gpu", "L4-24GB", "--max-model-len", "131072")
    check_vllm(data, [("full", None)] * 32, 2 * 8 * 128 * 2, 131072)
    assert not data["fits"] and data["largest_context"] < 131072
    assert data["would_fit_with"][0] == f"--max-model-len {data['largest_context']}"


# --------------------------------------------------------------------------- weights and QLoRA vs transformers


def _bytes(numel: int, in_features: int, dtype: str) -> int:
    """Storage of one quantized weight, as the formats define it (see the docs)."""
    return {"fp8": numel + 4 * math.ceil(numel / (128 * 128)), "int8": numel + 4 * (numel // in_features),
            "int4": math.ceil(numel / 2) + 2 * math.ceil(numel / 128),
            "nf4": math.ceil(numel / 2) + 4 * math.ceil(numel / 64),
            "nf4-dq": math.ceil(numel / 2) + math.ceil(numel / 64) + 4 * math.ceil(math.ceil(numel / 64) / 256)}[dtype]


SERVE_TINY = {"llama-tied": tiny_config("llama", tie_word_embeddings=True, attention_bias=True),
              "qwen3_moe": tiny_config("qwen3_moe", head_dim=8, num_experts=4, num_experts_per_tok=2,
                                       moe_intermediate_size=24)}


# The scales of fp8 blocks and int8 rows tile the tensors as stored; a checkpoint that stores experts one by
# one (as the inventory does) and transformers' fused (E, ...) parameter tile them differently, so the MoE
# case is checked with int4, whose groups run along the input of every row alike.
QUANT_CASES = [("llama-tied", "fp8"), ("llama-tied", "int8"), ("llama-tied", "int4"), ("qwen3_moe", "int4")]


@pytest.mark.parametrize("name,dtype", QUANT_CASES, ids=[f"{n}-{d}" for n, d in QUANT_CASES])
def test_quantized_weights_are_the_layers_matrices(tmp_path, name, dtype):
    from hf_reference import hf_meta

    cfg = SERVE_TINY[name]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    model = hf_meta(cfg)
    expected = 0
    seen = set()
    for pname, p in model.named_parameters():  # tied parameters are listed once
        in_layers = ".layers." in pname and p.dim() >= 2 and not pname.endswith(".gate.weight")
        expected += _bytes(p.numel(), p.shape[-1], dtype) if in_layers else 2 * p.numel()
        seen.add(pname)
    # vLLM pads the vocabulary of the embedding and of an untied head to a multiple of 64 rows
    # (vocab_parallel_embedding.py, DEFAULT_VOCAB_PADDING_SIZE) and allocates the padding
    vocab, hidden = cfg["vocab_size"], cfg["hidden_size"]
    expected += (1 if cfg.get("tie_word_embeddings") else 2) * (-(-vocab // 64) * 64 - vocab) * hidden * 2
    assert run_json(str(tmp_path), "--dtype", dtype, "--gpu", "1000")["checkpoint_weights_bytes"] == expected


@pytest.mark.parametrize("name,cfg", [
    ("llama-tied", tiny_config("llama", tie_word_embeddings=True, mlp_bias=True)),
    ("phimoe", tiny_config("phimoe", num_local_experts=4, num_experts_per_tok=2)),
    ("qwen3_moe", SERVE_TINY["qwen3_moe"]),
])
@pytest.mark.parametrize("double_quant", [True, False])
def test_qlora_quantizes_what_bitsandbytes_converts(tmp_path, name, cfg, double_quant):
    """transformers' replace_with_bnb_linear converts modules whose type is exactly nn.Linear (or
    Conv1D), except get_keys_to_not_convert (the output embedding, tied weights, the last module)."""
    import torch
    from transformers.quantizers.base import get_keys_to_not_convert

    from hf_reference import hf_meta

    (tmp_path / "config.json").write_text(json.dumps(cfg))
    model = hf_meta(cfg)
    skip = set(get_keys_to_not_convert(model))
    fmt = "nf4-dq" if double_quant else "nf4"
    expected, converted = 0, set()
    for mname, module in model.named_modules():
        if type(module) is torch.nn.Linear and not any(mname == s or mname.endswith("." + s) for s in skip):
            expected += _bytes(module.weight.numel(), module.in_features, fmt)
            converted.add(mname + ".weight")
    expected += sum(2 * p.numel() for pname, p in model.named_parameters() if pname not in converted)
    data = run_json(str(tmp_path), "--train", "qlora", "--lora-targets", "all-linear", "--gpu", "1000",
                    *(["--no-double-quant"] if not double_quant else []))
    assert data["rows"][0]["gpu_bytes"] == expected


def test_nf4_bits_per_weight():
    from inspector.memory.quant import bits_per_weight

    assert bits_per_weight("nf4") == pytest.approx(4.5)
    assert bits_per_weight("nf4-dq") == pytest.approx(4 + 8 / 64 + 32 / (64 * 256))
    assert round(bits_per_weight("nf4-dq"), 3) == 4.127


def test_weights_are_the_stored_bytes_of_a_real_checkpoint(tmp_path):
    """--weights: the bytes the safetensors header says the tensors occupy (file size less the header)."""
    import numpy as np
    from safetensors.numpy import save_file

    cfg = tiny_config("llama")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    tensors = {"a": np.zeros((101, 32), np.float16), "b": np.zeros((48, 32), np.int8),
               "c": np.zeros((7,), np.float32)}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    raw = (tmp_path / "model.safetensors").read_bytes()
    header = 8 + int.from_bytes(raw[:8], "little")
    data = run_json(str(tmp_path), "--weights", str(tmp_path / "model.safetensors"), "--gpu", "1")
    assert data["checkpoint_weights_bytes"] == len(raw) - header == 101 * 32 * 2 + 48 * 32 + 7 * 4


# --------------------------------------------------------------------------- training formulas


@pytest.mark.parametrize("optimizer,per_param", [("adamw", 18), ("adamw-fp32", 16), ("adam8bit", 12), ("sgd", 14)])
def test_hf_anatomy_bytes_per_parameter(optimizer, per_param):
    data = run_json("qwen2.5-0.5b", "--train", "full", "--optimizer", optimizer)
    assert sum(r["gpu_bytes"] for r in data["rows"][:3]) == per_param * 494_032_768


@pytest.mark.parametrize("recompute,attention", [("none", "eager"), ("none", "flash"), ("selective", "eager"),
                                                 ("full", "eager")])
def test_korthikanti_activations(recompute, attention):
    """Korthikanti et al.'s count: the fallback (eager attention, MoE, MLA...) and activations="korthikanti"."""
    from inspector.inventory.accounting import account
    from inspector.memory.gpus import gpu
    from inspector.memory.training import TrainOptions, plan
    from inspector.source import load_spec

    s, b, h, a, layers, vocab = 4096, 2, 2048, 32, 16, 128256  # Llama-3.2-1B
    tr = plan(account(load_spec("llama-3.2-1b")), gpu("H100-80GB"), TrainOptions(
        seq_len=s, micro_batch=b, recompute=recompute, attention=attention, activations="korthikanti"))
    rows = {r.name.split(" (")[0]: r.gpu for r in tr.rows}
    full_layer = s * b * h * (34 + 5 * a * s / h)
    per_layer = {"none": full_layer if attention == "eager" else 34 * s * b * h, "selective": 34 * s * b * h,
                 "full": 2 * s * b * h}[recompute]
    assert rows["Activations"] == layers * per_layer
    if recompute == "full":
        assert rows["One layer recomputed during backward"] == full_layer
    assert rows["Logits and cross-entropy at the start of backward"] == 14 * s * b * vocab


def test_zero1_partitions_only_the_fp32_states():
    params = 8_030_261_248
    data = run_json("llama-3.1-8b", "--train", "full", "--zero", "1", "--gpus", "8")
    assert data["rows"][0]["gpu_bytes"] == 2 * params + 2 * params + int(16 * params / 8)


def test_lora_and_qlora_states():
    lora = run_json("llama-3.2-1b", "--train", "lora", "--lora-rank", "8", "--lora-targets", "q_proj")
    assert lora["lora"]["peft_line"] == "trainable params: 524,288 || all params: 1,236,338,688 || trainable%: 0.0424"
    rows = [r["gpu_bytes"] for r in lora["rows"]]
    assert rows[:4] == [2 * 1_235_814_400, 4 * 524_288, 4 * 524_288, 8 * 524_288]


# --------------------------------------------------------------------------- verdicts hold when followed


def _flags(suggestion: str) -> list[str]:
    return shlex.split(re.sub(r"\s*\([^)]*\)", "", suggestion))


@pytest.mark.parametrize("args", [
    ["llama-3.1-8b", "--train", "full", "--gpu", "A100-40GB"],
    ["llama-3.1-8b", "--train", "lora", "--gpu", "RTX4090-24GB", "--seq-len", "4096"],
    ["llama-3.1-8b", "--gpu", "L4-24GB", "--max-model-len", "131072"],
])
def test_every_suggestion_fits_when_followed(args):
    data = run_json(*args)
    assert not data["fits"] and data["would_fit_with"]
    for suggestion in data["would_fit_with"]:
        changed = args + _flags(suggestion)
        assert run_json(*changed)["fits"], suggestion


def test_serving_fits_verdict_and_table():
    result = runner.invoke(app, ["memory", "qwen2.5-0.5b", "--gpu", "RTX4090-24GB"])
    assert result.exit_code == 0, result.output
    assert "GPU KV cache size:" in result.output and "Maximum concurrency for 32,768 tokens" in result.output
    assert "(vllm-v1, vLLM 0.27.1, paged KV cache," in result.output and "Available KV cache memory" in result.output


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("args,message", [
    (["qwen2.5-0.5b", "--train", "lora", "--lora-rank", "0"], "--lora-rank must be a positive integer, got 0"),
    (["phi-3-mini", "--train", "lora", "--lora-targets", "q_proj"], "no module 'q_proj' to adapt; it has: "
                                                                    "embed_tokens, qkv_proj, o_proj, gate_up_proj"),
    (["phi-3-mini", "--train", "lora"], "peft has no default LoRA targets for model_type 'phi3'"),
    (["qwen2.5-0.5b", "--gpus", "0"], "--gpus and --nodes must be at least 1"),
    (["qwen2.5-0.5b", "--train", "full", "--nodes", "0"], "--gpus and --nodes must be at least 1"),
    (["qwen2.5-0.5b", "--train", "full", "--offload", "optimizer"], "--offload optimizer needs ZeRO"),
    (["qwen2.5-0.5b", "--train", "full", "--zero", "1", "-f", "deepspeed"], "none for ZeRO-1"),
    (["qwen2.5-7b-instruct", "--gpus", "8"], "num_attention_heads (28) is not divisible by tensor parallel size 8"),
    (["qwen2.5-0.5b", "--train", "full", "--tp", "2"], "--tp (serving) does not apply to --train full"),
    (["qwen2.5-0.5b", "--precision", "bf16"], "--precision (--train full or --train lora or --train qlora) does "
                                               "not apply to serving"),
    (["qwen2.5-0.5b", "--engine", "vllm-v0", "--kv-cache-memory", "1000000"], "--kv-cache-memory is a vLLM V1"),
    (["qwen2.5-0.5b", "--tp", "2", "--gpus", "4"], "--tp 2 and --gpus 4"),
    (["qwen2.5-0.5b", "--gpu", "B200"], "--gpu 'B200' is neither a preset"),
    (["qwen2.5-0.5b", "--dtype", "int3"], "--dtype 'int3' is not one of"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    result = runner.invoke(app, ["memory", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_too_big_is_an_answer_with_the_shortfall_and_the_fix():
    """Not fitting is an answer: the breakdown, the verdict and exit 0; --check makes it exit 1."""
    args = ["memory", "llama-3.1-405b", "--gpu", "A100-80GB", "--gpus", "8", "-f", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert not data["fits"] and "short by" in data["verdict"] and "cannot hold even one token" in data["verdict"]
    assert data["would_fit_with"][0].startswith("--dtype fp8 (")
    assert any(s.startswith("--dtype int4 (") for s in data["would_fit_with"])
    assert "fits on 16 × A100-80GB with TP 8 × PP 2" in data["verdict"]  # two nodes: TP in a node, PP across
    assert runner.invoke(app, [*args, "--check"]).exit_code == 1
    assert runner.invoke(app, ["memory", "qwen2.5-0.5b", "--check"]).exit_code == 0


def test_one_gpu_not_enough_names_the_smallest_layout():
    """The layout the verdict names fits when asked for, and the one before it in the search does not."""
    data = run_json("llama-3.1-405b", "--max-model-len", "8192")
    m = re.search(r"fits on (\d+) × H100-80GB with TP (\d+)(?: × PP (\d+))?", data["verdict"])
    assert not data["fits"] and m, data["verdict"]
    tp, pp = m.group(2), m.group(3) or "1"
    assert int(m.group(1)) == int(tp) * int(pp)
    assert run_json("llama-3.1-405b", "--max-model-len", "8192", "--tp", tp, "--pp", pp)["fits"]


def test_serving_json_keys_per_gpu():
    data = run_json("llama-3.1-8b", "--max-model-len", "16000")
    for key in ("gpu_total_bytes", "weights_bytes", "activation_peak_bytes", "non_torch_bytes", "kv_cache_bytes",
                "kv_cache_tokens", "max_concurrency"):
        assert key in data, key
    assert data["gpu_total_bytes"] == round(79.18 * 2**30)
    assert {t["status"] for t in data["terms"]} <= {"exact", "calibrated", "assumed", "input"}


def test_kv_cache_memory_gives_blocks_directly():
    data = run_json("llama-3.1-8b", "--max-model-len", "16000", "--kv-cache-memory", str(1952 * 2**21))
    assert data["kv_cache_bytes"] == 1952 * 2**21 and data["num_blocks"] == 1952
    assert data["kv_cache_tokens"] == 1952 * 16


def test_gpu_memory_gib_is_torchs_total():
    data = run_json("llama-3.1-8b", "--gpu-memory-gib", "23.58", "--max-model-len", "4096")
    assert data["gpu_total_bytes"] == int(23.58 * 2**30)
    assert data["usable_bytes"] == int(0.9 * int(23.58 * 2**30))


def test_stored_quantization_is_the_default_and_dtype_a_what_if():
    """gpt-oss stores its experts in MXFP4: by default the weights are the stored bytes, --dtype bf16 asks
    what the same model would need in 16 bits."""
    data = run_json(ref_dir("openai__gpt-oss-20b"), "--max-model-len", "16000")
    stored = data["checkpoint_weights_bytes"]
    assert abs(stored / 2**30 - 12.82) < 0.01  # the checkpoint's 12.816 GiB
    # vLLM's Triton MXFP4 path (H100) adds fp32 biases and swizzled copies of the scales; llm-d logs 13.47 GiB
    assert abs(data["weights_bytes"] / 2**30 - 13.47) <= 0.05
    assert run_json(ref_dir("openai__gpt-oss-20b"), "--dtype", "bf16")["weights_bytes"] > 2.5 * stored


def test_half_a_fused_expert_pair_is_refused_like_peft():
    result = runner.invoke(app, ["memory", ref_dir("Qwen__Qwen3-30B-A3B"), "--train", "lora", "--lora-targets",
                                 "gate_proj"])
    assert result.exit_code == 2 and "without up_proj" in result.stderr


# --------------------------------------------------------------------------- outputs


def test_memory_markdown_golden(golden):
    result = runner.invoke(app, ["memory", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "L4-24GB", "-f", "md"])
    assert result.exit_code == 0, result.output
    golden("memory_qwen2.5-7b-instruct_l4.md", result.stdout)


def test_memory_lora_markdown_golden(golden):
    result = runner.invoke(app, ["memory", "llama-3.1-8b", "--train", "qlora", "--lora-targets", "all-linear",
                                 "--gpu", "RTX4090-24GB", "-f", "md"])
    assert result.exit_code == 0, result.output
    golden("memory_llama3.1-8b_qlora.md", result.stdout)


def test_memory_csv_and_output_file(tmp_path):
    out = tmp_path / "m.csv"
    result = runner.invoke(app, ["memory", "qwen3-0.6b", "--train", "full", "-f", "csv", "-o", str(out)])
    assert result.exit_code == 0 and out.read_text().startswith("section,")


def test_memory_does_not_import_torch():
    code = (
        "import sys; from typer.testing import CliRunner; from inspector.cli import app; r = CliRunner();"
        "args = [['qwen2.5-1.5b'], ['qwen2.5-1.5b', '--train', 'full', '--zero', '3', '--gpus', '4'],"
        " ['qwen2.5-1.5b', '--train', 'lora'], ['qwen2.5-1.5b', '--train', 'qlora', '--lora-targets', 'all-linear'],"
        " ['qwen2.5-1.5b', '--train', 'full', '--zero', '2', '-f', 'deepspeed']];"
        "codes = [r.invoke(app, ['memory', *a, '-f', 'json'] if 'deepspeed' not in a else ['memory', *a]).exit_code"
        " for a in args]; assert codes == [0] * 5, codes;"
        "bad = [m for m in ('torch', 'transformers', 'safetensors', 'tokenizers', 'deepspeed', 'peft')"
        " if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_vlm_all_linear_targets_name_the_merger_modules():
    """A VLM's all-linear LoRA targets name modules transformers has (`merger.mlp.0`), never a bare
    Sequential index (`0`, `2`): checked against the model's named modules on the meta device."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    result = runner.invoke(app, ["memory", "Qwen/Qwen2-VL-2B-Instruct", "--train", "lora", "--lora-targets",
                                 "all-linear", "--format", "md"])
    assert result.exit_code == 0, result.output
    table = result.stdout.split("### LoRA adapters")[1].split("\n\n")[1]
    targets = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert "merger.mlp.0" in targets and "merger.mlp.2" in targets
    assert not [t for t in targets if t.isdigit()]
    config = transformers.AutoConfig.from_pretrained(REFERENCE_CONFIGS / "Qwen__Qwen2-VL-2B-Instruct")
    with torch.device("meta"):
        model = transformers.Qwen2VLForConditionalGeneration(config)
    linears = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    for target in targets:
        assert any(name == target or name.endswith("." + target) for name in linears), target


# --------------------------------------------------------------------------- docs: against vLLM's logs

DOC_KEYS = {"available KV": "kv_cache_bytes", "weights": "weights_bytes", "activation peak": "activation_peak_bytes",
            "non-torch": "non_torch_bytes", "blocks": "num_blocks", "KV tokens": "kv_cache_tokens",
            "torch total": "gpu_total_bytes"}


DOCS = Path(__file__).resolve().parents[1] / "docs" / "memory.md"


def _doc_rows() -> list[list[str]]:
    table = DOCS.read_text().split("<!-- vllm-cases -->")[1].split("<!-- /vllm-cases -->")[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.strip().splitlines()[2:]]


def _doc_cases() -> list[tuple[str, str, str, str, str]]:
    return [(case, cmd.strip("`"), fig, logged, ours) for case, cmd, fig, logged, ours, _ in _doc_rows()]


def _ours(command: str, figure: str, logged: str, gpu_total: list[int]) -> tuple[str, str]:
    """The "ours" and "difference" cells of one row: the command's figure, against the logged one."""
    data = run_json(*shlex.split(command)[2:])
    value = data[DOC_KEYS[figure]]
    if not logged.endswith("GiB"):
        return f"{value:,}", f"{value - int(logged.replace(',', '')):+,}"
    diff = value / 2**30 - float(logged.split()[0])
    share = diff * 2**30 / data["gpu_total_bytes"] * 100
    gpu_total.append(data["gpu_total_bytes"])
    cell = f"{diff:+.2f} GiB ({share:+.2f} %)"
    return f"{value / 2**30:.2f} GiB", "0.00 GiB (0.00 %)" if re.fullmatch(r"[+-]0\.00 GiB \([+-]0\.00 %\)", cell) else cell


def test_docs_table_of_vllm_logs_is_current(request):
    """docs/memory.md's table of vLLM's logs: the "ours" and "difference" columns are what the commands give
    (`pytest tests/test_memory.py -k docs_table -n 0 --update-docs` rewrites them)."""
    rows, totals = _doc_rows(), []
    new = [[case, cmd, fig, logged, *_ours(cmd.strip("`"), fig, logged, totals)] for case, cmd, fig, logged, *_ in rows]
    if request.config.getoption("--update-docs"):
        head, rest = DOCS.read_text().split("<!-- vllm-cases -->\n")
        table, tail = rest.split("<!-- /vllm-cases -->")
        lines = table.splitlines()[:2] + ["| " + " | ".join(r) + " |" for r in new]
        DOCS.write_text(head + "<!-- vllm-cases -->\n" + "\n".join(lines) + "\n<!-- /vllm-cases -->" + tail)
        return
    assert new == rows, "(pytest tests/test_memory.py -k docs_table -n 0 --update-docs rewrites the table)"


@pytest.mark.parametrize("case,command,figure,logged,ours", _doc_cases(),
                         ids=[f"{c[0]}-{c[2]}" for c in _doc_cases()])
def test_docs_table_of_vllm_logs(case, command, figure, logged, ours):
    """docs/memory.md's table (A1, A2, A5, A6 of fixtures/vllm/cases.json, and llm-d's other rows): weights
    within 0.05 GiB of the log, available KV within 2 % of the GPU's total where the non-torch memory is ours
    (A5's is a profiler that later builds replaced, and PR 12126's encoder peak is assumed: both named in
    the docs)."""
    if not ours.endswith("GiB"):
        return
    data = run_json(*shlex.split(command)[2:])
    diff = data[DOC_KEYS[figure]] / 2**30 - float(logged.split()[0])
    if figure == "weights":
        assert abs(diff) <= 0.05
    if figure == "available KV" and case != "A5" and not case.startswith("PR 12126"):
        assert abs(diff) * 2**30 <= 0.02 * data["gpu_total_bytes"]


def test_precision_reaches_training():
    mixed = run_json("llama-3.2-1b", "--train", "lora")
    bf16 = run_json("llama-3.2-1b", "--train", "lora", "--precision", "bf16")
    assert mixed["precision"] == "mixed" and bf16["precision"] == "bf16"
    assert bf16["per_gpu_bytes"] < mixed["per_gpu_bytes"]


def test_training_does_not_fit_is_an_answer():
    args = ["memory", "llama-3.1-8b", "--train", "full", "--gpu", "A100-40GB"]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, [*args, "--check"]).exit_code == 1


def test_pipeline_stages_hold_their_layers():
    one = run_json("llama-3.1-8b", "--max-model-len", "16000")
    two = run_json("llama-3.1-8b", "--max-model-len", "16000", "--pp", "2")
    assert [r["layers"] for r in two["ranks"]] == [[0, 16], [16, 32]]
    assert two["layers_per_group"] == 16 and two["weights_bytes"] < one["weights_bytes"]
    assert two["kv_cache_tokens"] > 2 * one["kv_cache_tokens"]


def test_expert_parallel_moves_whole_experts():
    tp = run_json(ref_dir("Qwen__Qwen3-30B-A3B"), "--tp", "4")
    ep = run_json(ref_dir("Qwen__Qwen3-30B-A3B"), "--tp", "4", "--ep")
    assert ep["ep"] and not tp["ep"]
    assert abs(ep["weights_bytes"] - tp["weights_bytes"]) < 0.02 * tp["weights_bytes"]


def test_enforce_eager_and_engine_v0():
    eager = run_json("llama-3.1-8b", "--enforce-eager", "--max-model-len", "8192")
    assert next(t for t in eager["terms"] if t["name"] == "cuda_graphs")["source"].startswith("--enforce-eager")
    v0 = run_json("llama-3.1-8b", "--engine", "vllm-v0", "--max-model-len", "8192")
    assert v0["engine"] == "vllm-v0" and v0["max_num_batched_tokens"] == 8192 and v0["max_num_seqs"] == 256
    assert v0["max_concurrency"] == v0["kv_cache_tokens"] / 8192  # V0 logs tokens / max_model_len


def test_kv_cache_memory_beyond_the_gpu_does_not_fit():
    data = run_json("llama-3.1-8b", "--max-model-len", "8192", "--kv-cache-memory", str(70 * 2**30))
    assert not data["fits"] and "--kv-cache-memory 70.00 GiB exceed" in data["verdict"]


def test_gpt_oss_120b_on_one_h100_needs_a_higher_utilization_and_the_tip_holds():
    """llm-d's gpt-oss-120b run on one H100 adds up to util 0.95 (64.38 + 7.38 + 0.13 + 3.33 GiB): at
    vLLM's default 0.9 it cannot start, and the verdict names the smallest utilization that does."""
    args = ["openai/gpt-oss-120b", "--max-model-len", "16000", "--vllm-version", "0.11.0"]
    data = run_json(*args)
    tip = next(t for t in data["would_fit_with"] if t.startswith("--gpu-memory-utilization"))
    util = tip.split()[1]
    assert not data["fits"] and 0.9 < float(util) <= 0.95
    assert run_json(*args, "--gpu-memory-utilization", util)["fits"]
    below = f"{float(util) - 0.01:.2f}"
    assert not run_json(*args, "--gpu-memory-utilization", below)["fits"]
    at_095 = run_json(*args, "--gpu-memory-utilization", "0.95")
    assert abs(at_095["kv_cache_bytes"] / 2**30 - 3.33) * 2**30 <= 0.02 * at_095["gpu_total_bytes"]
