"""Weights as checkpoints store them (inspector.memory.stored), held against published sizes and libraries.

References (fixtures/quantized/README.md): the safetensors index totals of openai/gpt-oss-20b and
-120b (MXFP4 experts), the weight files of deepseek-ai/DeepSeek-V3 (FP8 block scales); bitsandbytes
itself on CPU (every stored tensor's name, shape and dtype); the project's own tiny GPTQ and FP8
checkpoints (a consistency check). Per-tensor formulas and which modules each method leaves
unquantized are checked on the published configs under fixtures/reference/configs.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from inspector.errors import InspectError
from inspector.inventory.load import account_config
from inspector.memory.stored import StoredWeights, stored_weights

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REFS = json.loads((FIXTURES / "quantized" / "references.json").read_text())["cases"]


def _config(rel: str) -> dict:
    return json.loads((FIXTURES / rel).read_text())


def _stored(cfg: dict) -> StoredWeights:
    return stored_weights(account_config(cfg, "m", "config.json"), cfg)


def _header(path: Path) -> dict:
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    header.pop("__metadata__", None)
    return header


def _parts(sw: StoredWeights) -> dict:
    return {p.name: (list(p.shape), p.dtype) for t in sw.tensors for p in t.parts}


# --------------------------------------------------------------------------- published checkpoints


@pytest.mark.parametrize("case", REFS, ids=[c["id"] for c in REFS])
def test_published_sizes(case):
    cfg = _config(case["config"])
    for key in ("torch_dtype", "quantization_config"):
        cfg = {**cfg, key: case[key]} if key in case else cfg
    sw = _stored(cfg)
    count = sum(len(t.parts) for t in sw.tensors)
    if "vllm_weights_gib" in case:  # vLLM's load also holds its rotary cos/sin cache (Llama-3: 8192 x 128 x 2 B)
        assert 0 <= case["vllm_weights_gib"] - sw.total_bytes / 2**30 <= 0.005
    if "gb_2dp" in case:  # a model card's size in GB (10^9 B) to two decimals
        assert round(sw.total_bytes / 1e9, 2) == case["gb_2dp"]
    if "tensor_bytes" in case:
        assert sw.total_bytes == case["tensor_bytes"]
    if "tensors" in case:
        assert count == case["tensors"]
    if "file_bytes" in case:  # files = tensor data + one JSON header per file
        assert sw.total_bytes <= case["file_bytes"] <= sw.total_bytes + 200 * count


def test_gpt_oss_20b_tensors():
    """gpt-oss's stored experts: U8 blocks (E, out, in/32, 16) and U8 scales (E, out, in/32)."""
    parts = _parts(_stored(_config("reference/configs/openai__gpt-oss-20b/config.json")))
    e = "model.layers.0.mlp.experts."
    assert parts[e + "gate_up_proj_blocks"] == ([32, 5760, 90, 16], "U8")
    assert parts[e + "gate_up_proj_scales"] == ([32, 5760, 90], "U8")
    assert parts[e + "down_proj_blocks"] == ([32, 2880, 90, 16], "U8")
    assert parts[e + "gate_up_proj_bias"] == ([32, 5760], "BF16")
    assert parts["model.layers.0.self_attn.q_proj.weight"] == ([4096, 2880], "BF16")
    assert parts["model.layers.0.mlp.router.weight"] == ([32, 2880], "BF16")


def test_deepseek_v3_unquantized_modules():
    sw = _stored(_config("reference/configs/deepseek-ai__DeepSeek-V3/config.json"))
    parts = _parts(sw)
    assert parts["model.layers.3.mlp.experts.0.gate_proj.weight_scale_inv"] == ([16, 56], "F32")
    assert parts["model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv"] == ([5, 56], "F32")
    for name in ("lm_head.weight", "model.embed_tokens.weight", "model.layers.3.mlp.gate.weight",
                 "model.layers.61.eh_proj.weight", "model.layers.61.shared_head.head.weight"):
        assert parts[name][1] == "BF16", name
    assert sw.mtp_bytes > 0 and sw.model_bytes == sw.total_bytes - sw.mtp_bytes


# --------------------------------------------------------------------------- library oracles


@pytest.mark.parametrize("kind", ["nf4-dq", "nf4", "fp4-dq", "fp4", "int8"])
def test_bitsandbytes_every_tensor(kind, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("bitsandbytes")
    cfg = _config("configs/tiny-llama-64.json")
    fields = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
    torch.manual_seed(0)
    transformers.logging.set_verbosity_error()
    transformers.AutoModelForCausalLM.from_config(
        transformers.AutoConfig.for_model(cfg["model_type"], **fields)).save_pretrained(tmp_path / "fp32")
    quant = (transformers.BitsAndBytesConfig(load_in_8bit=True) if kind == "int8" else
             transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=kind.split("-")[0],
                                             bnb_4bit_use_double_quant=kind.endswith("-dq")))
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "fp32", quantization_config=quant,
                                                              device_map="cpu")
    model.save_pretrained(tmp_path / "q")
    sw = _stored(json.loads((tmp_path / "q" / "config.json").read_text()))
    theirs = {k: (v["shape"], v["dtype"]) for k, v in _header(tmp_path / "q" / "model.safetensors").items()}
    ours = _parts(sw)
    assert set(ours) == set(theirs)
    state = [k for k in ours if ".quant_state." in k]  # JSON holding a float repr: length ± a few bytes
    assert {k: v for k, v in ours.items() if k not in state} == {k: v for k, v in theirs.items() if k not in state}
    assert all(abs(ours[k][0][0] - theirs[k][0][0]) <= 3 for k in state)
    assert sum(1 for t in sw.tensors if t.quantized) == 14  # 7 Linears x 2 layers; lm_head stays


@pytest.mark.parametrize("name", ["tiny-llama-gptq", "tiny-deepseek-v3-fp8"])
def test_project_checkpoints(name):
    """The project's own quantized fixtures (written from the documented layouts): same tensors."""
    directory = FIXTURES / "checkpoints" / name
    sw = _stored(json.loads((directory / "config.json").read_text()))
    header = _header(directory / "model.safetensors")
    # the project's writer stores neither the MTP layer nor AutoGPTQ's zero biases
    ours = {p.name: (list(p.shape), p.dtype) for t in sw.tensors if not t.mtp for p in t.parts if p.loaded}
    assert ours == {k: (v["shape"], v["dtype"]) for k, v in header.items()}
    assert sw.model_bytes == sum(v["data_offsets"][1] - v["data_offsets"][0] for v in header.values())


# --------------------------------------------------------------------------- one Linear, each layout

LINEAR = (4096, 11008)  # (out, in): a LLaMA-7B down_proj
CASES = {
    # id: (quantization_config, {stored part suffix: (shape, dtype)})
    "fp8-block": ({"quant_method": "fp8", "weight_block_size": [128, 128]},
                  {".weight": ([4096, 11008], "F8_E4M3"), ".weight_scale_inv": ([32, 86], "F32")}),
    "fp8-tensor-static": ({"quant_method": "fp8", "activation_scheme": "static"},
                          {".weight": ([4096, 11008], "F8_E4M3"), ".weight_scale": ([], "F32"),
                           ".input_scale": ([], "F32")}),
    "fbgemm-fp8": ({"quant_method": "fbgemm_fp8", "modules_to_not_convert": ["lm_head"]},
                   {".weight": ([4096, 11008], "F8_E4M3"), ".weight_scale": ([4096, 1], "F32")}),
    "gptq-4bit-g128": ({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": True},
                       {".qweight": ([1376, 4096], "I32"), ".qzeros": ([86, 512], "I32"),
                        ".scales": ([86, 4096], "F16"), ".g_idx": ([11008], "I32")}),
    "gptq-3bit-nogroup": ({"quant_method": "gptq", "bits": 3, "group_size": -1},
                          {".qweight": ([1032, 4096], "I32"), ".qzeros": ([1, 384], "I32"),
                           ".scales": ([1, 4096], "F16"), ".g_idx": ([11008], "I32")}),
    "awq-4bit-g128": ({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm", "zero_point": True},
                      {".qweight": ([11008, 512], "I32"), ".qzeros": ([86, 512], "I32"),
                       ".scales": ([86, 4096], "F16")}),
    "ct-fp8-channel-dynamic": ({"quant_method": "compressed-tensors", "format": "float-quantized",
                                "ignore": ["lm_head"], "config_groups": {"group_0": {
                                    "targets": ["Linear"], "weights": {"num_bits": 8, "type": "float",
                                                                       "strategy": "channel"},
                                    "input_activations": {"num_bits": 8, "type": "float", "dynamic": True}}}},
                               {".weight": ([4096, 11008], "F8_E4M3"), ".weight_scale": ([4096, 1], "BF16")}),
    "ct-fp8-tensor-static": ({"quant_method": "compressed-tensors", "format": "float-quantized",
                              "ignore": ["lm_head"], "config_groups": {"group_0": {
                                  "targets": ["Linear"], "weights": {"num_bits": 8, "type": "float"},
                                  "input_activations": {"num_bits": 8, "type": "float", "dynamic": False}}}},
                             {".weight": ([4096, 11008], "F8_E4M3"), ".weight_scale": ([1], "BF16"),
                              ".input_scale": ([1], "BF16")}),
    "ct-w4a16-group": ({"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],
                        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
                            "num_bits": 4, "type": "int", "strategy": "group", "group_size": 128,
                            "symmetric": True}}}},
                       {".weight_packed": ([4096, 1376], "I32"), ".weight_shape": ([2], "I64"),
                        ".weight_scale": ([4096, 86], "BF16")}),
    "ct-fp8-block": ({"quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
                      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
                          "num_bits": 8, "type": "float", "strategy": "block", "block_structure": [128, 128]}}}},
                     {".weight": ([4096, 11008], "F8_E4M3"), ".weight_scale": ([32, 86], "BF16")}),
    "bnb-nf4-dq": ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                    "bnb_4bit_use_double_quant": True},
                   {".weight": ([22544384, 1], "U8"), ".weight.absmax": ([704512], "U8"),
                    ".weight.nested_absmax": ([2752], "F32"), ".weight.nested_quant_map": ([256], "F32"),
                    ".weight.quant_map": ([16], "F32")}),
    "bnb-int8": ({"quant_method": "bitsandbytes", "load_in_8bit": True},
                 {".weight": ([4096, 11008], "I8"), ".SCB": ([4096], "F32"), ".weight_format": ([], "U8")}),
}


def _llama(qc: dict) -> dict:
    cfg = _config("reference/configs/meta-llama__Llama-3.1-8B/config.json")
    return {**cfg, "intermediate_size": LINEAR[1], "quantization_config": qc}


@pytest.mark.parametrize("qc, parts", CASES.values(), ids=CASES.keys())
def test_one_linear(qc, parts):
    stored = _parts(_stored(_llama(qc)))
    stem = "model.layers.0.mlp.down_proj"  # (4096, 11008): out 4096, in 11008
    for suffix, expected in parts.items():
        assert stored[stem + suffix] == expected, suffix
    assert stored["lm_head.weight"] == ([128256, 4096], "BF16")
    assert stored["model.embed_tokens.weight"] == ([128256, 4096], "BF16")
    assert stored["model.layers.0.input_layernorm.weight"] == ([4096], "BF16")


# --------------------------------------------------------------------------- what each method leaves alone


def _quantized_names(cfg: dict) -> set[str]:
    return {t.name for t in _stored(cfg).tensors if t.quantized}


def test_modules_to_not_convert_patterns():
    """transformers' matching: a regex from the start to a module boundary, or a suffix."""
    base = {"quant_method": "fp8", "weight_block_size": [128, 128]}
    everything = _quantized_names(_llama(base))
    assert len(everything) == 7 * 32 and "lm_head.weight" not in everything
    skip = _quantized_names(_llama({**base, "modules_to_not_convert": ["model.layers.1", "down_proj"]}))
    assert not any(".layers.1." in n or "down_proj" in n for n in skip)
    assert any(".layers.10." in n for n in skip)  # "model.layers.1" stops at a module boundary
    # a list that leaves lm_head out quantizes it (transformers adds no default skip then)
    assert "lm_head.weight" in _quantized_names(_llama({**base, "modules_to_not_convert": ["model.embed_tokens"]}))


def test_compressed_tensors_ignore_routers():
    cfg = _config("reference/configs/Qwen__Qwen3-30B-A3B/config.json")
    group = {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 8, "type": "float", "strategy": "channel"}}}
    qc = {"quant_method": "compressed-tensors", "format": "float-quantized", "config_groups": group}
    routers = {f"model.layers.{i}.mlp.gate.weight" for i in range(48)}
    assert routers <= _quantized_names({**cfg, "quantization_config": {**qc, "ignore": ["lm_head"]}})
    ignored = _quantized_names({**cfg, "quantization_config": {**qc, "ignore": ["lm_head", "re:.*mlp.gate$"]}})
    assert not routers & ignored and "lm_head.weight" not in ignored
    assert "model.layers.0.mlp.experts.0.gate_proj.weight" in ignored


def test_gptq_zero_biases():
    """AutoGPTQ/optimum write an F16 bias per quantized Linear; GPTQModel (meta.quantizer) does not;
    a Linear with its own bias (Qwen2's q/k/v) keeps only that one. vLLM skips the extra ones."""
    qc = {"quant_method": "gptq", "bits": 4, "group_size": 128}
    sw = _stored(_llama(qc))
    assert sw.skipped_bytes == 32 * (4096 + 1024 + 1024 + 4096 + 2 * 11008 + 4096) * 2  # sum of out x 2 B
    assert sw.model_bytes == sw.total_bytes - sw.skipped_bytes
    assert _stored(_llama({**qc, "meta": {"quantizer": ["gptqmodel:2.2.0"]}})).skipped_bytes == 0
    qwen = _config("reference/configs/Qwen__Qwen2.5-7B-Instruct/config.json")
    parts = _parts(_stored({**qwen, "quantization_config": qc}))
    assert parts["model.layers.0.self_attn.q_proj.bias"] == ([3584], "BF16")
    assert parts["model.layers.0.self_attn.o_proj.bias"] == ([3584], "F16")


def test_gptq_lm_head_and_block_modules():
    qc = {"quant_method": "gptq", "bits": 4, "group_size": 128}
    assert "lm_head.weight" not in _quantized_names(_llama(qc))
    assert "lm_head.weight" in _quantized_names(_llama({**qc, "lm_head": True}))
    only = _quantized_names(_llama({**qc, "modules_in_block_to_quantize": [["self_attn.q_proj"], ["mlp.up_proj"]]}))
    assert len(only) == 2 * 32 and all(n.endswith(("q_proj.weight", "up_proj.weight")) for n in only)


def test_awq_skips_by_substring():
    """AutoAWQ and vLLM skip a module when a listed name is a substring of its name."""
    qc = {"quant_method": "awq", "bits": 4, "group_size": 128, "modules_to_not_convert": ["mlp"]}
    names = _quantized_names(_llama(qc))
    assert len(names) == 4 * 32 and not any(".mlp." in n for n in names)


def test_mxfp4_only_experts():
    cfg = _config("reference/configs/openai__gpt-oss-20b/config.json")
    names = _quantized_names(cfg)
    assert names == {f"model.layers.{i}.mlp.experts.{p}" for i in range(24) for p in ("gate_up_proj", "down_proj")}


def test_no_quantization_config():
    cfg = _config("reference/configs/meta-llama__Llama-3.1-8B/config.json")
    sw = _stored(cfg)
    assert sw.plan is None and sw.total_bytes == 2 * 8_030_261_248 and not sw.quantized_bytes


# --------------------------------------------------------------------------- malformed configs

BAD = {
    "bits": ({"quant_method": "gptq", "bits": 5}, "quantization_config.bits", "5"),
    "group-size": ({"quant_method": "awq", "group_size": 0}, "quantization_config.group_size", "0"),
    "block": ({"quant_method": "fp8", "weight_block_size": [128]}, "quantization_config.weight_block_size", "[128]"),
    "activation": ({"quant_method": "fp8", "activation_scheme": "sometimes"}, "activation_scheme", "sometimes"),
    "skip-string": ({"quant_method": "mxfp4", "modules_to_not_convert": "lm_head"}, "modules_to_not_convert",
                    "lm_head"),
    "bad-regex": ({"quant_method": "compressed-tensors", "ignore": ["re:("], "config_groups": {
        "g": {"weights": {"num_bits": 8, "type": "float"}}}}, "ignore", "re:("),
    "bnb-type": ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf5"},
                 "bnb_4bit_quant_type", "nf5"),
    "ct-no-weights": ({"quant_method": "compressed-tensors", "config_groups": {"g": {}}}, "config_groups", "g"),
    "ct-strategy": ({"quant_method": "compressed-tensors", "config_groups": {
        "g": {"weights": {"num_bits": 8, "type": "float", "strategy": "row"}}}}, "strategy", "row"),
    "ct-group-size": ({"quant_method": "compressed-tensors", "config_groups": {
        "g": {"weights": {"num_bits": 4, "type": "int", "strategy": "group"}}}}, "group_size", "None"),
    "ct-format": ({"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized", "config_groups": {
        "g": {"weights": {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16}}}},
                  "format", "nvfp4-pack-quantized"),
    "unknown-method": ({"quant_method": "hqq"}, "quant_method", "hqq"),
    "not-object": (["fp8"], "quantization_config", ""),
}


@pytest.mark.parametrize("qc, field, value", BAD.values(), ids=BAD.keys())
def test_malformed_config_is_one_line(qc, field, value):
    with pytest.raises(InspectError) as err:
        _stored(_llama(qc))
    message = str(err.value)
    assert "\n" not in message and field in message and value in message, message


def test_bad_torch_dtype():
    with pytest.raises(InspectError, match="torch_dtype"):
        _stored({**_llama({"quant_method": "fp8"}), "torch_dtype": "int3"})
