"""Counts, sizes and pools that a config, an option or a file could make as large as it likes are
bounded by inspector.limits before any work, and every limit is stated in docs/architecture.md.

Causes of the hardening issue covered here: 3 (expert, shared-expert, group and MTP counts bounded
only by 2**31 - 1), and the documentation of every limit.
"""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path

import pytest

from inspector import limits
from inspector.errors import InspectError
from inspector.spec.model import from_hf_config
from inspector.spec.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]


def _preset(name: str, text: bool = False, **changes) -> dict:
    cfg = copy.deepcopy(get_preset(name).config)
    (cfg["text_config"] if text else cfg).update(changes)
    return cfg


COUNTS = {  # id -> (config, the field the error names)
    "mixtral-experts": (_preset("mixtral-8x7b", num_local_experts=10**9), "num_local_experts"),
    "qwen2-moe-experts": (_preset("qwen1.5-moe-a2.7b", num_experts=10**9), "num_experts"),
    "deepseek-v3-experts": (_preset("deepseek-v3", n_routed_experts=10**9), "n_routed_experts"),
    "olmoe-experts-just-over": (_preset("olmoe-1b-7b", num_experts=limits.MAX_EXPERTS + 1), "num_experts"),
    "gpt-oss-fused-experts": (_preset("gpt-oss-20b", num_local_experts=10**9), "num_local_experts"),
    "llama4-fused-experts": (_preset("llama-4-scout", text=True, num_local_experts=2**31 - 1), "num_local_experts"),
    "qwen3-moe-top-k": (_preset("qwen3-30b-a3b", num_experts_per_tok=10**9), "num_experts_per_tok"),
    "deepseek-v3-mtp": (_preset("deepseek-v3", num_nextn_predict_layers=2**31 - 1), "num_nextn_predict_layers"),
    "deepseek-v3-shared": (_preset("deepseek-v3", n_shared_experts=10**9), "n_shared_experts"),
    "deepseek-v3-topk-group": (_preset("deepseek-v3", topk_group=10**6), "topk_group"),
    "deepseek-v3-groups": (_preset("deepseek-v3", n_group=2**31 - 1), "n_group"),
    "layers-times-experts": (_preset("qwen3-30b-a3b", num_experts=4096, num_hidden_layers=64), "num_experts"),
}


@pytest.mark.parametrize("name", list(COUNTS))
def test_counts_are_bounded_before_any_work(name):
    cfg, field = COUNTS[name]
    start = time.perf_counter()
    with pytest.raises(InspectError, match=re.escape(field)):
        from_hf_config(cfg, name, where="config.json")
    assert time.perf_counter() - start < 5  # refused before the inventory is built (unbounded: minutes)


def test_the_largest_real_counts_pass():
    spec = from_hf_config(_preset("deepseek-v3"), "deepseek-v3")
    assert spec.text.moe.num_experts == 256 and spec.text.mtp_layers == 1
    spec = from_hf_config(_preset("qwen3-30b-a3b", num_experts=limits.MAX_EXPERTS, num_hidden_layers=16), "x")
    assert spec.text.moe.num_experts == limits.MAX_EXPERTS


def test_every_limit_is_stated_in_the_docs():
    """Each constant of inspector.limits appears, with its value, in docs/architecture.md's Limits."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text[text.index("## Limits"):]
    for name in dir(limits):
        if not name.isupper():
            continue
        value = getattr(limits, name)
        shown = f"{value:,}" if isinstance(value, int) else f"{value:,g}"
        assert f"`{name}`" in section, name
        row = next(line for line in section.splitlines() if f"`{name}`" in line)
        assert shown in row or (isinstance(value, int) and value % 1024 == 0 and _binary(value) in row), (name, row)


def _binary(value: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value % size == 0:
            return f"{value // size:,} {unit}"
    return str(value)


# --------------------------------------------------------------------------- cause 4: stacked experts


def _expected_moe():
    from inspector.checkpoint.matching import Expected
    from inspector.inventory.model import inventory

    spec = from_hf_config(_preset("qwen3-30b-a3b"), "qwen3-30b-a3b")  # 48 layers x 128 experts x 3
    return Expected("qwen3-30b-a3b", "qwen3_moe", inventory(spec))


@pytest.mark.parametrize("layout", ["gguf", "fused"])
def test_matching_stacked_experts_is_linear(layout):
    """40,000 stacked-expert tensors against an 18,000-expert inventory: one look-up each (it was a
    scan of the whole inventory per tensor: minutes)."""
    from inspector.checkpoint.matching import match
    from inspector.checkpoint.records import TensorInfo

    exp = _expected_moe()
    name = "blk.{}.ffn_gate_exps.weight" if layout == "gguf" else "model.layers.{}.mlp.experts.gate_up_proj"
    actual = {}
    for i in range(40_000):
        stored = name.format(i)
        key = f"model.layers.{i}.mlp.experts.gate_proj" if layout == "gguf" else stored  # as the GGUF map names it
        actual[key] = (stored, TensorInfo(stored, (0, 768, 2048), "F32", 0, "x.gguf"))
    start = time.perf_counter()
    findings = match(exp, actual, None, lambda n: False)
    assert time.perf_counter() - start < 15  # indexed (the quadratic scan took over 90 s)
    stacked = [f for f in findings if "stacked" in f.note]
    assert len(stacked) == 48 and all(f.status == "shape" for f in stacked)  # zero experts, not 128


def test_verify_of_a_gguf_of_forty_thousand_stacked_expert_tensors(tmp_path):
    """The issue's file: 40,000 zero-size `blk.N.ffn_gate_exps` tensors and block_count 40,000 (a
    360,000-entry inventory). It kept verify past 60 s; now it answers (a mismatch) in seconds."""
    from gguf_bytes import F32, LLAMA_META, llama_tensors, tiny_llama
    from harden import run_cases

    meta = [(k, t, 40_000 if k == "llama.block_count" else v) for k, t, v in LLAMA_META]
    tensors = llama_tensors() + [(f"blk.{i}.ffn_gate_exps.weight", (8, 16, 0), F32) for i in range(40_000)]
    (tmp_path / "experts.gguf").write_bytes(tiny_llama(meta, tensors))
    out = tmp_path / "out.json"
    r = run_cases([{"id": "gguf", "args": ["verify", str(tmp_path / "experts.gguf"), "-f", "json", "-o", str(out)]}],
                  timeout=120, budget_mb=3072)["gguf"]  # a hang guard, not a speed test: about 10 s on 2 cores
    assert r.rc == 1, (r.rc, r.seconds, r.stderr[-2000:])
    doc = json.loads(out.read_text())
    assert doc["matched"] == 11 and doc["tensors_not_listed"] > 0
