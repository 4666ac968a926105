"""`inspect verify` on every layout published checkpoints use, written here from tiny random models.

Configs: fixtures/configs/*.json (fixtures/README.md). Writers, each an independent reference:
- per-expert safetensors: transformers' own `save_pretrained` (Qwen3-MoE, Qwen2-MoE, Mixtral);
- the fused form (`mlp.experts.gate_up_proj` (E, 2I, H)): transformers 5's in-memory state_dict,
  written with safetensors as a tool that does not revert transformers' conversions would;
- GGUF with stacked experts: the `gguf` package's GGUFWriter, names from its own tensor-name map
  (`gguf.get_tensor_name_map`), per-expert tensors stacked as llama.cpp's converter does;
- bitsandbytes 4-bit (nf4, double quantization) and 8-bit: the real library, on CPU, through
  transformers' `save_pretrained`;
- gpt-oss MXFP4, DeepSeek-V3 FP8 block scales (with and without the MTP layer), FP8
  compressed-tensors, GPTQ and AWQ: their quantizers need a GPU (or, for compressed-tensors,
  llm-compressor's calibration), so these are written from the documented layouts listed in
  inspector/checkpoint/quantization.py, with random packed values;
- GPT-2 without its `transformer.` prefix, as openai-community/gpt2's own files store it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector.source import verify
from inspector.cli.app import app

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
st = pytest.importorskip("safetensors.torch")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
runner = CliRunner()


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def random_model(cfg: dict):
    fields = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures", "quantization_config")}
    torch.manual_seed(0)
    transformers.logging.set_verbosity_error()
    return transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(cfg["model_type"], **fields))


def write(directory: Path, cfg: dict, tensors: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(cfg))
    st.save_file({k: v.contiguous() for k, v in tensors.items()}, directory / "model.safetensors")
    return directory


def run_json(*args):
    result = runner.invoke(app, ["verify", *args, "--format", "json"])
    return result, json.loads(result.stdout) if result.stdout.strip() else None


# --------------------------------------------------------------------------- experts


@pytest.mark.parametrize("name", ["tiny-qwen3-moe", "tiny-qwen2-moe", "tiny-mixtral"])
def test_per_expert_checkpoint_from_save_pretrained(name, tmp_path):
    model = random_model(fixture(name))
    model.save_pretrained(tmp_path)
    stored = st.load_file(tmp_path / "model.safetensors")
    assert any(".experts.3." in k for k in stored)  # transformers wrote one tensor per expert
    result, data = run_json(str(tmp_path))
    assert result.exit_code == 0 and data["ok"], result.output
    assert data["checkpoint_params"] == data["expected_params"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["tiny-qwen3-moe", "tiny-qwen2-moe"])
def test_fused_experts_are_two_names_for_one_tensor(name, tmp_path):
    cfg = fixture(name)
    model = random_model(cfg)
    tensors = dict(model.state_dict())
    assert "model.layers.0.mlp.experts.gate_up_proj" in tensors  # (E, 2I, H) in memory
    r = verify(str(write(tmp_path, cfg, tensors)))
    assert r.ok, [f for f in r.findings if f.status != "ok"]
    fused = next(f for f in r.findings if f.name == "model.layers.0.mlp.experts.gate_up_proj")
    assert fused.expected == fused.actual == (4, 48, 32) and "4 experts' gate + up stacked" in fused.note
    assert r.checkpoint_params == r.expected_params == sum(p.numel() for p in model.parameters())


def test_fused_experts_wrong_shape_named(tmp_path):
    cfg = fixture("tiny-qwen3-moe")
    tensors = dict(random_model(cfg).state_dict())
    tensors["model.layers.1.mlp.experts.down_proj"] = torch.zeros(4, 32, 20)
    result, data = run_json(str(write(tmp_path, cfg, tensors)))
    assert result.exit_code == 1
    assert data["mismatched"] == [{"name": "model.layers.1.mlp.experts.down_proj", "expected": [4, 32, 24],
                                   "actual": [4, 32, 20]}]


def _gguf(model, arch, path: Path) -> None:
    """Write a model as llama.cpp does: gguf's own name map, experts stacked per layer."""
    import gguf

    layers = model.config.num_hidden_layers
    names = gguf.get_tensor_name_map(arch, layers)
    tensors = {k: v.detach() for k, v in model.state_dict().items()}
    hf = {}
    for i in range(layers):
        for proj in ("gate_proj", "up_proj", "down_proj"):
            key = f"model.layers.{i}.mlp.experts.{proj}"
            per_expert = [tensors.pop(f"{key}.{e}.weight".replace(f"{proj}.{e}", f"{e}.{proj}"), None)
                          for e in range(model.config.num_experts)]
            if per_expert[0] is not None:
                hf[key + ".weight"] = torch.stack(per_expert)
    hf.update(tensors)
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[arch])
    for name, value in hf.items():
        base, suffix = name.rsplit(".", 1)
        writer.add_tensor(f"{names.get_name(base)}.{suffix}", value.float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize("name,arch", [("tiny-qwen3-moe", "QWEN3MOE"), ("tiny-qwen2-moe", "QWEN2MOE")])
def test_gguf_stacked_experts(name, arch, tmp_path):
    import gguf

    cfg = fixture(name)
    model = random_model(cfg)
    # transformers 5 holds experts fused; its save_pretrained gives the per-expert tensors llama.cpp stacks
    model.save_pretrained(tmp_path / "hf")
    per_expert = random_model(cfg)
    per_expert.load_state_dict(model.state_dict())
    state = st.load_file(tmp_path / "hf" / "model.safetensors")
    holder = type("M", (), {"config": model.config, "state_dict": lambda self: state})()
    _gguf(holder, getattr(gguf.MODEL_ARCH, arch), tmp_path / "model.gguf")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text(json.dumps(cfg))
    result, data = run_json(str(tmp_path / "cfg"), "--weights", str(tmp_path / "model.gguf"))
    assert result.exit_code == 0 and data["ok"], result.output
    stacked = next(t for t in data["tensors"] if t["name"] == "blk.1.ffn_gate_exps.weight")
    assert stacked["actual"] == [4, 24, 32] and stacked["stored_shape"] == [32, 24, 4]
    assert data["checkpoint_params"] == data["expected_params"] == sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- quantized


def _u8(*shape):
    return torch.randint(0, 255, shape, dtype=torch.uint8)


def test_gpt_oss_mxfp4(tmp_path):
    cfg = fixture("tiny-gpt-oss-mxfp4")
    model = random_model(cfg)
    tensors = {}
    for name, p in model.state_dict().items():
        if name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            e, a, b = p.shape  # in memory (E, in, out); stored (E, out, in/32, 16) blocks + (E, out, in/32) scales
            tensors[name + "_blocks"] = _u8(e, b, a // 32, 16)
            tensors[name + "_scales"] = _u8(e, b, a // 32)
        else:
            tensors[name] = p.detach().to(torch.bfloat16)
    result, data = run_json(str(write(tmp_path, cfg, tensors)))
    assert result.exit_code == 0 and data["ok"], result.output
    assert data["quantization"].startswith("mxfp4") and len(data["quantization_tensors"]) == 4
    assert data["checkpoint_params"] == data["expected_params"] == sum(p.numel() for p in model.parameters())
    assert set(data["dtypes"]) == {"U8", "BF16"}
    # a block tensor of the wrong shape is named with both shapes
    tensors["model.layers.0.mlp.experts.down_proj_blocks"] = _u8(4, 64, 1, 16)
    result, data = run_json(str(write(tmp_path, cfg, tensors)))
    assert result.exit_code == 1 and data["mismatched"] == [{
        "name": "model.layers.0.mlp.experts.down_proj", "expected": [4, 64, 2, 16], "actual": [4, 64, 1, 16]}]


def _fp8_blocks(tensors: dict, block: int) -> dict:
    out = {}
    for name, p in tensors.items():
        if name.endswith("proj.weight") and p.dim() == 2 and "embed" not in name:
            out[name] = p.to(torch.float8_e4m3fn)
            out[name + "_scale_inv"] = torch.rand(math.ceil(p.shape[0] / block), math.ceil(p.shape[1] / block))
        else:
            out[name] = p.to(torch.bfloat16)
    return out


def _mtp_layer(state: dict, layers: int, d: int, vocab: int) -> dict:
    """DeepSeek-V3's published MTP layer: a copy of an MoE decoder layer at index `layers`, plus its
    embedding, two norms, eh_proj and shared head."""
    last = f"model.layers.{layers - 1}."
    out = {k.replace(last, f"model.layers.{layers}."): v for k, v in state.items() if k.startswith(last)}
    mtp = f"model.layers.{layers}."
    out.update({mtp + "embed_tokens.weight": torch.zeros(vocab, d), mtp + "enorm.weight": torch.ones(d),
                mtp + "hnorm.weight": torch.ones(d), mtp + "eh_proj.weight": torch.zeros(d, 2 * d),
                mtp + "shared_head.norm.weight": torch.ones(d), mtp + "shared_head.head.weight": torch.zeros(vocab, d)})
    return out


@pytest.mark.parametrize("with_mtp", [True, False], ids=["with-mtp", "without-mtp"])
def test_deepseek_v3_fp8_block_scales(with_mtp, tmp_path):
    cfg = fixture("tiny-deepseek-v3-fp8")
    model = random_model(cfg)
    model.save_pretrained(tmp_path / "hf")  # per-expert names, as published
    state = st.load_file(tmp_path / "hf" / "model.safetensors")
    if with_mtp:
        state.update(_mtp_layer(state, cfg["num_hidden_layers"], cfg["hidden_size"], cfg["vocab_size"]))
    result, data = run_json(str(write(tmp_path / "ckpt", cfg, _fp8_blocks(state, 16))))
    assert result.exit_code == 0 and data["ok"], result.output
    assert "F8_E4M3" in data["dtypes"] and data["quantization"] == "fp8 e4m3, blocks 16x16"
    scales = [t for t in data["tensors"] if t["name"].endswith("weight_scale_inv")]
    assert scales and all(t["status"] == "quantization" for t in scales)
    assert "model.layers.1.mlp.gate.e_score_correction_bias" in {t["name"] for t in data["tensors"]}
    model_params = sum(p.numel() for p in model.parameters())
    if with_mtp:
        assert data["expected_params"] == data["checkpoint_params"] > model_params and not data["optional_absent"]
    else:
        assert data["checkpoint_params"] == data["expected_params"] == model_params
        assert len(data["optional_absent"]) > 10


def test_fp8_compressed_tensors_channel_scales(tmp_path):
    cfg = {**fixture("tiny-llama-64"), "quantization_config": {
        "quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
            "num_bits": 8, "type": "float", "strategy": "channel", "symmetric": True, "dynamic": False}}}}}
    tensors = {}
    for name, p in random_model(cfg).state_dict().items():
        if name.endswith("proj.weight"):
            tensors[name] = p.to(torch.float8_e4m3fn)
            tensors[name.replace(".weight", ".weight_scale")] = torch.rand(p.shape[0], 1)
        else:
            tensors[name] = p.to(torch.bfloat16)
    result, data = run_json(str(write(tmp_path, cfg, tensors)))
    assert result.exit_code == 0 and data["ok"], result.output
    assert len(data["quantization_tensors"]) == 14 and not data["unexpected"]  # 7 linears x 2 layers
    assert data["checkpoint_params"] == data["expected_params"]


def _packed_int4(cfg: dict, method: str, group: int) -> dict:
    tensors = {}
    for name, p in random_model(cfg).state_dict().items():
        if not name.endswith("proj.weight"):
            tensors[name] = p.to(torch.float16)
            continue
        out, cols = p.shape
        module = name.removesuffix(".weight")
        packed = (cols // 8, out) if method == "gptq" else (cols, out // 8)
        tensors[module + ".qweight"] = torch.randint(0, 2**31 - 1, packed, dtype=torch.int32)
        tensors[module + ".qzeros"] = torch.randint(0, 2**31 - 1, (cols // group, out // 8), dtype=torch.int32)
        tensors[module + ".scales"] = torch.rand(cols // group, out).to(torch.float16)
        if method == "gptq":
            tensors[module + ".g_idx"] = torch.arange(cols, dtype=torch.int32) // group
    return tensors


@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_gptq_awq_int4(method, tmp_path):
    cfg = {**fixture("tiny-llama-64"), "quantization_config": {
        "quant_method": method, "bits": 4, "group_size": 32, **({"desc_act": False, "sym": True} if method == "gptq"
                                                                 else {"version": "gemm", "zero_point": True})}}
    tensors = _packed_int4(cfg, method, 32)
    result, data = run_json(str(write(tmp_path, cfg, tensors)))
    assert result.exit_code == 0 and data["ok"], result.output
    assert len(data["quantization_tensors"]) == 14 * (3 if method == "gptq" else 2)
    q = next(t for t in data["tensors"] if t["name"] == "model.layers.0.mlp.down_proj.weight")
    assert q["expected"] == [64, 128] and q["stored_name"] == "model.layers.0.mlp.down_proj.qweight"
    assert q["actual"] == ([16, 64] if method == "gptq" else [128, 8]) and q["dtype"] == "I32"
    assert data["checkpoint_params"] == data["expected_params"]
    tensors["model.layers.0.mlp.down_proj.scales"] = torch.rand(3, 64).to(torch.float16)
    result, data = run_json(str(write(tmp_path, cfg, tensors)))
    assert result.exit_code == 1 and data["mismatched"] == [
        {"name": "model.layers.0.mlp.down_proj.scales", "expected": [4, 64], "actual": [3, 64]}]


@pytest.mark.parametrize("kind", ["nf4-double", "int8"])
def test_bitsandbytes_real_library(kind, tmp_path):
    pytest.importorskip("bitsandbytes")
    cfg = fixture("tiny-llama-64")
    random_model(cfg).save_pretrained(tmp_path / "fp32")
    quant = (transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                             bnb_4bit_use_double_quant=True) if kind == "nf4-double"
             else transformers.BitsAndBytesConfig(load_in_8bit=True))
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "fp32", quantization_config=quant,
                                                              device_map="cpu")
    model.save_pretrained(tmp_path / "q")
    result, data = run_json(str(tmp_path / "q"))
    assert result.exit_code == 0 and data["ok"], result.output
    assert data["quantization"].startswith("bitsandbytes") and not data["unexpected"]
    assert len(data["quantization_tensors"]) == 14 * (5 if kind == "nf4-double" else 2)
    logical = sum(p.numel() for p in random_model(cfg).parameters())
    assert data["checkpoint_params"] == data["expected_params"] == logical
    assert data["stored_bytes"] < 4 * logical


def test_quantization_tensors_without_config_are_named(tmp_path):
    cfg = fixture("tiny-llama-64")
    tensors = {k: v for k, v in random_model(cfg).state_dict().items()}
    tensors["model.layers.0.mlp.down_proj.weight_scale"] = torch.ones(64, 1)
    result, data = run_json(str(write(tmp_path, cfg, tensors)))
    assert result.exit_code == 1 and data["unexpected"] == ["model.layers.0.mlp.down_proj.weight_scale"]
    assert any("look like quantization tensors" in n for n in data["notes"])


# --------------------------------------------------------------------------- prefixes and dtypes


def test_gpt2_without_base_prefix(tmp_path):
    cfg = fixture("tiny-gpt2")
    model = random_model(cfg)
    state = {k.removeprefix("transformer."): v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    result, data = run_json(str(write(tmp_path, cfg, state)))
    assert result.exit_code == 0 and data["ok"], result.output
    wte = next(t for t in data["tensors"] if t["name"] == "transformer.wte.weight")
    assert wte["stored_name"] == "wte.weight" and data["tied_lm_head"] == "tied"


def test_dtype_note_in_md_and_json_agree(tmp_path):
    cfg = {**fixture("tiny-llama-64"), "dtype": "bfloat16"}  # transformers 5 writes "dtype"
    write(tmp_path, cfg, random_model(fixture("tiny-llama-64")).state_dict())  # stored in float32
    _, data = run_json(str(tmp_path))
    md = runner.invoke(app, ["verify", str(tmp_path), "--format", "md"]).stdout
    assert data["config_dtype"] == "bfloat16"
    note = "config.json says dtype bfloat16; the checkpoint stores F32 (not an error: loaders convert)"
    assert data["notes"] == [note] and note in md
