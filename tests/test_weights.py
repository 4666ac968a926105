"""The inventory and totals against independent references.

- transformers builds each model on the meta device from the same config: every tensor name and
  shape of its state_dict, and its parameter count (tied weights counted once), must equal ours;
- the model cards' published counts;
- every row of seed 003's Table 1.4, with its errata named.
"""

from __future__ import annotations

import copy

import pytest

from conftest import tiny_config
from inspector.inventory.accounting import account
from inspector.source import load_spec
from inspector.spec.presets import all_presets
from inspector.spec.model import from_hf_config
from inspector.inventory.entry import MTP
from inspector.inventory.model import inventory
from inspector.spec.model import supported_model_types

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXT_PRESETS = [p for p in all_presets()
                if "vision_config" not in p.config and p.config["model_type"] in supported_model_types()]

TINY = {
    "llama": tiny_config("llama"),
    "llama-tied": tiny_config("llama", tie_word_embeddings=True),
    "llama-bias": tiny_config("llama", attention_bias=True, mlp_bias=True),
    "mistral": tiny_config("mistral", sliding_window=16),
    "qwen2": tiny_config("qwen2"),
    "qwen2-tied": tiny_config("qwen2", tie_word_embeddings=True),
    "qwen3": tiny_config("qwen3", head_dim=16),
    "qwen3-bias": tiny_config("qwen3", head_dim=16, attention_bias=True),
    "phi3": tiny_config("phi3", num_key_value_heads=4, pad_token_id=0),
    "phi3-gqa": tiny_config("phi3", pad_token_id=0),
}


def hf_meta_model(cfg: dict):
    cfg = copy.deepcopy(cfg)  # transformers rewrites nested rope dicts in place
    fields = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
    config = transformers.AutoConfig.for_model(cfg["model_type"], **fields)
    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(config)


def assert_same_as_transformers(cfg: dict) -> None:
    """Our checkpoint names, turned into transformers' names by its own load-time conversions."""
    from hf_reference import to_transformers_names

    model = hf_meta_model(cfg)
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    spec = from_hf_config(cfg, "test")
    ours = to_transformers_names({e.name: e.shape for e in inventory(spec) if e.component != MTP}, model)
    assert set(ours) == set(theirs), (sorted(set(ours) ^ set(theirs)))[:10]
    for name, shape in ours.items():
        assert shape == theirs[name], f"tensor '{name}': expected {theirs[name]}, found {shape}"
    assert account(spec).totals.total_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("cfg", list(TINY.values()), ids=list(TINY))
def test_tiny_configs_equal_transformers(cfg):
    assert_same_as_transformers(cfg)


@pytest.mark.parametrize("preset", TEXT_PRESETS, ids=[p.hub_id for p in TEXT_PRESETS])
def test_presets_equal_transformers_on_meta(preset):
    assert_same_as_transformers(dict(preset.config))


# Published model-card counts: (total, non-embedding), to the printed precision.
PUBLISHED = {
    "Qwen/Qwen2.5-1.5B": ("1.54B", "1.31B"),
    "Qwen/Qwen2.5-7B-Instruct": ("7.61B", "6.53B"),
    "Qwen/Qwen2.5-0.5B": ("0.49B", "0.36B"),
    "Qwen/Qwen2.5-0.5B-Instruct": ("0.49B", "0.36B"),
    "Qwen/Qwen3-0.6B": ("0.6B", "0.44B"),
    "Qwen/Qwen3-0.6B-Base": ("0.6B", "0.44B"),
    "meta-llama/Llama-3.2-1B": ("1.23B", None),
    "meta-llama/Llama-3.1-8B": ("8B", None),
    "mistralai/Mistral-7B-v0.1": ("7B", None),
    "microsoft/Phi-3-mini-4k-instruct": ("3.8B", None),
    "meta-llama/Llama-3.1-405B": ("405B", None),
    # the families beyond LLaMA/Qwen/Phi-3: totals as their model cards or Hub pages print them
    "google/gemma-2b": ("2.51B", None),
    "google/gemma-2-2b": ("2.61B", None),
    "google/gemma-3-1b-it": ("1B", None),
    "microsoft/phi-2": ("2.7B", None),
    "HuggingFaceTB/SmolLM3-3B": ("3.08B", None),
    "allenai/OLMo-2-1124-7B": ("7.30B", None),
    "ibm-granite/granite-3.1-2b-instruct": ("2.53B", None),
    "bigcode/starcoder2-3b": ("3.03B", None),
    "openai-community/gpt2": ("0.124B", None),
    "EleutherAI/pythia-1b": ("1.01B", None),
    "CohereForAI/c4ai-command-r7b-12-2024": ("8.03B", None),
}


def _rounds_to(value: int, published: str) -> bool:
    """Cards print either a rounded (0.6B for 596M) or a truncated (7.61B for 7.6156B) figure."""
    digits = len(published.rstrip("B").split(".")[1]) if "." in published else 0
    shown, unit = float(published.rstrip("B")), 10.0**-digits
    billions = value / 1e9
    return round(billions, digits) == shown or shown <= billions < shown + unit


@pytest.mark.parametrize("model,counts", PUBLISHED.items(), ids=list(PUBLISHED))
def test_published_model_card_counts(model, counts):
    totals = account(load_spec(model)).totals
    total, non_embedding = counts
    assert _rounds_to(totals.total_params, total), (totals.total_params, total)
    if non_embedding:
        assert _rounds_to(totals.non_embedding_params, non_embedding)


EXACT = {  # exact counts derived from the stored configs (fixtures/reference/published_counts.md)
    "Qwen/Qwen2.5-1.5B": (1_543_714_304, 1_310_340_608),
    "Qwen/Qwen2.5-0.5B": (494_032_768, 357_898_112),
    "Qwen/Qwen3-0.6B": (596_049_920, 440_467_456),
    "Qwen/Qwen2.5-7B-Instruct": (7_615_616_512, 6_525_621_760),
    "meta-llama/Llama-3.2-1B": (1_235_814_400, None),
    "meta-llama/Llama-3.1-8B": (8_030_261_248, None),
    "mistralai/Mistral-7B-v0.1": (7_241_732_096, None),
    "microsoft/Phi-3-mini-4k-instruct": (3_821_079_552, None),
    "HuggingFaceTB/SmolLM2-135M-Instruct": (134_515_008, None),
}


@pytest.mark.parametrize("model,counts", EXACT.items(), ids=list(EXACT))
def test_exact_counts(model, counts):
    totals = account(load_spec(model)).totals
    assert totals.total_params == counts[0]
    if counts[1]:
        assert totals.non_embedding_params == counts[1]


# Seed 003, Table 1.4, row by row: (row, LLaMA-3.2-1B params, Qwen2.5-1.5B params) as printed.
SEED_TABLE_1_4 = [
    ("Embedding", (262_668_288, 1), (233_373_696, 1)),
    ("RMS norm (input)", (2048, 16), (1536, 28)),
    ("Attention layer", (10_485_760, 16), (5_507_072, 28)),
    ("RMS norm (post-attention)", (2048, 16), (1536, 28)),
    ("MLP layer", (50_331_648, 16), (41_287_680, 28)),
    ("RMS norm (final)", (2048, 1), (1536, 1)),
    ("LM head", (262_668_288, 1), (233_373_696, 1)),
]
SEED_TOTALS = (1_498_482_688, 1_777_088_000)


@pytest.mark.parametrize("row,llama,qwen", SEED_TABLE_1_4, ids=[r[0] for r in SEED_TABLE_1_4])
def test_seed_table_1_4_rows(row, llama, qwen):
    for model, expected in (("meta-llama/Llama-3.2-1B", llama), ("Qwen/Qwen2.5-1.5B", qwen)):
        r = next(r for r in account(load_spec(model)).rows if r.name == row)
        assert (r.params, r.repeat) == expected


def test_seed_table_1_4_totals_are_the_untied_convention():
    llama, qwen = (account(load_spec(m)).totals for m in ("meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-1.5B"))
    assert (llama.total_params_untied, qwen.total_params_untied) == SEED_TOTALS
    # ...but both models tie the head to the embedding: their checkpoints store fewer.
    assert (llama.total_params, qwen.total_params) == (1_235_814_400, 1_543_714_304)


def test_seed_table_1_4_lm_head_shape_erratum():
    """The seed prints the LLaMA LM head as (128265, 2048); the vocabulary is 128,256."""
    head = next(r for r in account(load_spec("meta-llama/Llama-3.2-1B")).rows if r.name == "LM head")
    assert head.weights == (("lm_head.weight", (128256, 2048)),)
    assert 128265 * 2048 != head.params == 128256 * 2048 == 262_668_288


def test_rows_sum_to_totals():
    for preset in TEXT_PRESETS:
        acc = account(load_spec(preset.hub_id))
        rows = [r for r in acc.rows if r.parameter and r.component != MTP]  # buffers, DeepSeek's MTP apart
        assert sum(r.total for r in rows) == acc.totals.total_params_untied
        assert sum(r.total for r in rows if r.stored) == acc.totals.total_params
        assert acc.totals.embedding_params + acc.totals.non_embedding_params == acc.totals.total_params


def test_kv_cache_and_memory():
    t = account(load_spec("meta-llama/Llama-3.2-1B"))
    assert t.totals.kv_cache_bytes_per_token == 2 * 16 * 8 * 64 * 2
    assert t.kv_cache_bytes(8192, 4) == 2 * 16 * 8 * 64 * 2 * 8192 * 4
    assert t.totals.weight_bytes["bf16/fp16"] == 2 * 1_235_814_400
    assert t.totals.weight_bytes["int4"] == 1_235_814_400 / 2
