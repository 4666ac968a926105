"""`inspect memory` against the real libraries: DeepSpeed's ZeRO estimators (to the byte, and its
printout line for line) and peft's trainable-parameter counts of transformers models on meta."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
from typer.testing import CliRunner

from conftest import load_reference_config, tiny_config
from inspector.cli.app import app
from inspector.inventory.accounting import account
from inspector.memory.lora import PEFT_DEFAULT_TARGETS, LoraOptions, count, peft_line
from inspector.memory.modules import EXPERT_TARGETS, largest_layer_params, runtime_modules
from inspector.memory.zero import ZeroLayout, deepspeed_printout, zero2, zero3
from inspector.spec.families import FAMILIES
from inspector.spec.model import WRAPPERS, from_hf_config
from inspector.source import load_spec

os.environ.setdefault("DS_ACCELERATOR", "cpu")  # DeepSpeed imports on a CPU-only box with its CPU accelerator
os.environ.setdefault("DS_BUILD_OPS", "0")

MODELS = ["meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen3-0.6B", "meta-llama/Llama-3.1-405B"]
LAYOUTS = [(1, 1), (2, 1), (8, 1), (8, 2), (4, 3), (3, 5)]  # (GPUs per node, nodes)


@pytest.fixture(scope="module")
def ds():
    pytest.importorskip("deepspeed")
    from deepspeed.runtime.zero import stage3, stage_1_and_2

    return stage_1_and_2, stage3


def _counts(model: str) -> tuple[int, int]:
    acc = account(load_spec(model))
    return acc.totals.total_params, largest_layer_params(runtime_modules(acc))


@pytest.mark.parametrize("layout", LAYOUTS, ids=[f"{g}gpu-{n}node" for g, n in LAYOUTS])
@pytest.mark.parametrize("model", MODELS)
def test_zero2_and_zero3_equal_deepspeed_to_the_byte(ds, model, layout):
    s12, s3 = ds
    params, largest = _counts(model)
    per_node, nodes = layout
    for offload in (True, False):
        theirs = s12.estimate_zero2_model_states_mem_needs(params, per_node, nodes, cpu_offload=offload)
        ours = zero2(params, ZeroLayout(2, "optimizer" if offload else "none", per_node, nodes))
        assert (ours.cpu, ours.gpu) == theirs
    for offload, offload_params in ((True, True), (True, False), (False, False)):
        for init in (True, False):
            theirs = s3.estimate_zero3_model_states_mem_needs(params, largest, per_node, nodes, offload,
                                                              offload_params, init)
            mode = "optimizer+params" if offload_params else "optimizer" if offload else "none"
            ours = zero3(params, largest, ZeroLayout(3, mode, per_node, nodes, init))
            assert (ours.cpu, ours.gpu, ours.largest_layer_memory) == theirs


@pytest.mark.parametrize("stage", [2, 3])
@pytest.mark.parametrize("layout", [(1, 1), (8, 2)], ids=["1gpu", "8gpu-2node"])
def test_format_deepspeed_is_deepspeeds_printout_line_for_line(ds, stage, layout):
    s12, s3 = ds
    params, largest = _counts("meta-llama/Llama-3.1-8B")
    per_node, nodes = layout
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        if stage == 2:
            s12.estimate_zero2_model_states_mem_needs_all_cold(params, per_node, nodes)
        else:
            s3.estimate_zero3_model_states_mem_needs_all_cold(params, largest, per_node, nodes)
    assert deepspeed_printout(params, largest, per_node, nodes, stage) == buf.getvalue()
    result = CliRunner().invoke(app, ["memory", "llama-3.1-8b", "--train", "full", "--zero", str(stage),
                                      "--gpus", str(per_node), "--nodes", str(nodes), "-f", "deepspeed"])
    assert result.exit_code == 0, result.output
    assert result.stdout == buf.getvalue()


def _meta_model(cfg: dict):
    from hf_reference import hf_meta

    return hf_meta(cfg)


MOE = dict(num_local_experts=4, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=24)
MLA = dict(kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, n_routed_experts=4,
           n_shared_experts=1, first_k_dense_replace=1, num_experts_per_tok=2, moe_intermediate_size=24,
           n_group=2, topk_group=1, head_dim=4)
TINY = {
    "llama": tiny_config("llama"),
    "llama-tied-bias": tiny_config("llama", tie_word_embeddings=True, attention_bias=True, mlp_bias=True),
    "qwen2": tiny_config("qwen2"),
    "qwen3": tiny_config("qwen3", head_dim=8),
    "mistral": tiny_config("mistral"),
    "phi3": tiny_config("phi3", pad_token_id=0, eos_token_id=1, bos_token_id=1),
    "gemma2": tiny_config("gemma2", head_dim=8, sliding_window=8),
    "gpt2": tiny_config("gpt2", n_embd=32, n_layer=2, n_head=4, n_positions=64, num_key_value_heads=4,
                        tie_word_embeddings=True),
    "gpt_neox": tiny_config("gpt_neox", num_key_value_heads=4),
    "mixtral": tiny_config("mixtral", **MOE),
    "qwen2_moe": tiny_config("qwen2_moe", shared_expert_intermediate_size=40, **MOE),
    "qwen3_moe": tiny_config("qwen3_moe", head_dim=8, **MOE),
    "phimoe": tiny_config("phimoe", **MOE),
    "deepseek_v3": tiny_config("deepseek_v3", num_hidden_layers=3, q_lora_rank=12, **MLA),
    "gpt_oss": tiny_config("gpt_oss", head_dim=8, num_hidden_layers=2, sliding_window=8, **MOE),
    "llama4_text": tiny_config("llama4_text", head_dim=8, num_hidden_layers=4, interleave_moe_layer_step=2,
                               intermediate_size_mlp=64, **MOE),
}


@pytest.mark.parametrize("name", list(TINY))
def test_largest_layer_is_deepspeeds_model_to_params(ds, name):
    """DeepSpeed's own `model_to_params` on transformers' model (meta) finds the same largest module."""
    _, s3 = ds
    cfg = TINY[name]
    acc = account(from_hf_config(cfg, name))
    assert largest_layer_params(runtime_modules(acc)) == s3.model_to_params(_meta_model(cfg))[1]


def test_largest_layer_of_a_real_moe_is_its_fused_experts(ds):
    _, s3 = ds
    cfg = load_reference_config("Qwen__Qwen3-30B-A3B")
    small = {**cfg, "num_hidden_layers": 2}
    acc = account(from_hf_config(small, "qwen3-30b-a3b"))
    ours = largest_layer_params(runtime_modules(acc))
    assert ours == 128 * 3 * 768 * 2048 == s3.model_to_params(_meta_model(small))[1]


# --------------------------------------------------------------------------- peft

# (config name, LoraConfig keyword arguments): targets by name, all-linear, DoRA, lora_bias, embeddings,
# the experts' 3-D parameters (target_parameters), and peft's per-family defaults.
PEFT_CASES = [
    ("llama", dict(r=8, target_modules=["q_proj"])),
    ("llama", dict(r=4, target_modules="all-linear")),
    ("llama-tied-bias", dict(r=4, target_modules="all-linear", lora_bias=True)),
    ("llama-tied-bias", dict(r=4, target_modules=["q_proj", "down_proj", "embed_tokens"])),
    ("llama", dict(r=4, target_modules=["q_proj", "v_proj", "lm_head"], use_dora=True)),
    ("qwen2", dict(r=16, target_modules=None)),
    ("qwen3", dict(r=2, target_modules="all-linear", use_dora=True)),
    ("mistral", dict(r=8, target_modules=None)),
    ("phi3", dict(r=8, target_modules=["qkv_proj", "gate_up_proj"])),
    ("phi3", dict(r=8, target_modules="all-linear", use_dora=True)),
    ("gemma2", dict(r=4, target_modules=None)),
    ("gpt2", dict(r=4, target_modules=None)),
    ("gpt2", dict(r=4, target_modules="all-linear", use_dora=True)),
    ("gpt_neox", dict(r=4, target_modules=None)),
    ("mixtral", dict(r=4, target_modules="all-linear")),
    ("mixtral", dict(r=4, target_modules=["q_proj"], target_parameters=list(EXPERT_TARGETS))),
    ("qwen2_moe", dict(r=4, target_modules="all-linear")),
    ("qwen3_moe", dict(r=4, target_modules=["o_proj"], target_parameters=["experts.down_proj"])),
    ("phimoe", dict(r=4, target_modules="all-linear")),
    ("deepseek_v3", dict(r=4, target_modules="all-linear")),
    ("deepseek_v3", dict(r=4, target_modules=["kv_a_proj_with_mqa", "kv_b_proj", "o_proj"], use_dora=True)),
    ("deepseek_v3", dict(r=4, target_modules=["q_b_proj", "gate_proj", "up_proj", "down_proj", "gate"])),
    ("qwen3_moe", dict(r=4, target_modules="all-linear")),
    ("mixtral", dict(r=8, target_modules=["w1", "w3", "q_proj"])),
    ("gpt_oss", dict(r=4, target_modules="all-linear", target_parameters=list(EXPERT_TARGETS))),
    ("llama4_text", dict(r=4, target_modules="all-linear")),
]


def _ours(name: str, kw: dict) -> tuple[int, int]:
    acc = account(from_hf_config(TINY[name], name))
    targets = kw["target_modules"]
    targets = None if targets is None else (targets,) if isinstance(targets, str) else tuple(targets)
    if kw.get("target_parameters"):
        targets = (*(targets or ()), *kw["target_parameters"])
    o = LoraOptions(kw["r"], 2 * kw["r"], targets, kw.get("use_dora", False), kw.get("lora_bias", False))
    lc = count(acc.spec.model_type, name, runtime_modules(acc), acc.totals.total_params, o)
    return lc.trainable, lc.all_params


@pytest.mark.parametrize("name,kw", PEFT_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(PEFT_CASES)])
def test_trainable_params_equal_peft(name, kw):
    peft = pytest.importorskip("peft")
    import warnings

    model = _meta_model(TINY[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = peft.get_peft_model(model, peft.LoraConfig(lora_alpha=2 * kw["r"], **kw))
    assert _ours(name, kw) == wrapped.get_nb_trainable_parameters()


def test_default_targets_are_peft_defaults():
    mapping = pytest.importorskip("peft.utils.constants").TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    for model_type in [*FAMILIES, *WRAPPERS, "llama4"]:
        theirs = mapping.get(model_type)
        if isinstance(theirs, str):  # a regex over module paths (gemma4): our names select the modules it does
            _regex_default_selects_the_same_modules(model_type, theirs)
            continue
        assert PEFT_DEFAULT_TARGETS.get(model_type) == (tuple(theirs) if theirs else None), model_type


def _regex_default_selects_the_same_modules(model_type: str, pattern: str) -> None:
    """peft fullmatches a str target_modules against every module path: on transformers' default config of the
    model type with its towers (one layer each), the modules we list, our names select the same ones."""
    import json
    import re

    from inspector.memory.lora import _matches

    transformers = pytest.importorskip("transformers")
    config = transformers.AutoConfig.for_model(model_type)
    towers = {key: config.sub_configs[key](num_hidden_layers=1).to_dict()
              for key in ("vision_config", "audio_config") if key in config.sub_configs}
    cfg = json.loads(type(config)(text_config=dict(num_hidden_layers=2), **towers).to_json_string())
    modules = runtime_modules(account(from_hf_config(cfg, model_type)))
    theirs = {m.path for m in modules if re.fullmatch(pattern, m.path)}
    ours = {m.path for m in modules if any(_matches(m, t) for t in PEFT_DEFAULT_TARGETS[model_type])}
    assert theirs and ours == theirs, (model_type, sorted(theirs ^ ours)[:4])


def _qwen25_3b() -> dict:
    """Qwen2.5-3B's config.json (https://huggingface.co/Qwen/Qwen2.5-3B/blob/main/config.json)."""
    return {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": 151936, "hidden_size": 2048,
            "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
            "num_key_value_heads": 2, "tie_word_embeddings": True, "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "hidden_act": "silu"}


@pytest.mark.parametrize("model,rank,targets,trainable,total", [
    # published: peft's print_trainable_parameters for Qwen2.5-3B, r=16, q_proj and v_proj
    ("qwen2.5-3b", 16, ("q_proj", "v_proj"), 3_686_400, 3_089_625_088),
    # published: Llama-3.2-1B, r=8, q_proj only (all params include the adapters)
    ("meta-llama/Llama-3.2-1B", 8, ("q_proj",), 524_288, 1_236_338_688),
])
def test_published_lora_counts(model, rank, targets, trainable, total):
    spec = from_hf_config(_qwen25_3b(), model) if model == "qwen2.5-3b" else load_spec(model)
    acc = account(spec)
    lc = count(spec.model_type, model, runtime_modules(acc), acc.totals.total_params,
               LoraOptions(rank, 2 * rank, targets))
    assert (lc.trainable, lc.all_params) == (trainable, total)
    assert peft_line(lc.trainable, lc.all_params).startswith(f"trainable params: {trainable:,}")
