"""Values that reached raw errors or were accepted without meaning (causes 11-21 of the hardening issue).

Each cause is fixed where the value is first read (the config reader's FIELD_RULES, files.local_path,
files.parse_json, inspector/hub/environment.py, the API functions themselves); the tests below give
each a few variants (other families, other commands, the Python API). Cases run in-process through
CliRunner; the two that need file descriptor 2 (a Rust panic report) run in the capped driver.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import smollm2_gguf_path, tiny_config
from harden import assert_refused, run_cases
from inspector.cli.app import app
from inspector.errors import InspectError
from inspector.spec.model import from_hf_config
from inspector.spec.presets import find_preset

ROOT = Path(__file__).resolve().parents[1]
TINY_LLAMA = ROOT / "fixtures" / "checkpoints" / "tiny-llama"
LONG = "n" * 300  # one name component over NAME_MAX (255 bytes): ENAMETOOLONG
DEEP = "/".join(["d" * 200] * 30)  # a path over PATH_MAX
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}


def refused(args: list[str], *needles: str, env: dict | None = None, limit: int = 2100) -> str:
    """Exit 2, one `error:` line naming each needle (at most `limit` characters), no traceback."""
    result = CliRunner().invoke(app, args, env={**ENV, **(env or {})})
    assert result.exit_code == 2, (args[:4], result.exit_code, result.output[-800:])
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr[-2000:]
    assert len(errors[0]) <= limit, len(errors[0])
    for needle in needles:
        assert needle in errors[0], (needle, errors[0][:500])
    return errors[0]


def preset_config(name: str, **changes) -> dict:
    cfg = copy.deepcopy(dict(find_preset(name).config))
    cfg.update(changes)
    return cfg


def config_dir(tmp_path: Path, cfg: dict, name: str = "model") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    return d


# --------------------------------------------------------------------------- 11: quantization_config

QUANT = {
    "ct-num-bits-0": ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 0}}}},
                      "num_bits"),
    "ct-num-bits-string": ({"quant_method": "compressed-tensors",
                            "config_groups": {"g": {"weights": {"num_bits": "8"}}}}, "num_bits"),
    "ct-groups-list": ({"quant_method": "compressed-tensors", "config_groups": [{"weights": {}}]}, "config_groups"),
    "ct-weights-list": ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": [8]}}}, "weights"),
    "ct-block-zero": ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {
        "num_bits": 8, "strategy": "block", "block_structure": [0, 128]}}}}, "block_structure"),
    "ct-block-strings": ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {
        "num_bits": 8, "strategy": "block", "block_structure": ["128", "128"]}}}}, "block_structure"),
    "ct-group-size-0": ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {
        "num_bits": 4, "strategy": "group", "group_size": 0}}}}, "group_size"),
    "ct-strategy-number": ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {
        "num_bits": 4, "strategy": 3}}}}, "strategy"),
    "gptq-group-size-0": ({"quant_method": "gptq", "bits": 4, "group_size": 0}, "group_size"),
    "gptq-bits-5": ({"quant_method": "gptq", "bits": 5}, "bits"),
    "fp8-block-zero": ({"quant_method": "fp8", "weight_block_size": [128, 0]}, "weight_block_size"),
    "bnb-4bit-string": ({"quant_method": "bitsandbytes", "load_in_4bit": "yes"}, "load_in_4bit"),
}


@pytest.mark.parametrize("case", sorted(QUANT))
def test_quantization_config_fields(case, tmp_path):
    qc, field = QUANT[case]
    d = tmp_path / "q"
    shutil.copytree(TINY_LLAMA, d)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "quantization_config": qc}))
    refused(["verify", str(d)], f"quantization_config.", field)


def test_quantization_api():
    from inspector.checkpoint.quantization import read_scheme

    with pytest.raises(InspectError, match="num_bits"):
        read_scheme({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 0}}}}, "x")
    scheme = read_scheme({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {
        "num_bits": 8, "strategy": "block", "block_structure": [128, 128]}}}}, "x")
    assert scheme.block == (128, 128) and scheme.bits == 8


# --------------------------------------------------------------------------- 12: digits before int()

def test_layer_numbers_of_5000_digits(tmp_path):
    np = pytest.importorskip("numpy")
    from safetensors.numpy import save_file

    d = config_dir(tmp_path, tiny_config("llama"))
    n = "9" * 5000
    save_file({f"model.layers.{n}.mlp.experts.gate_up_proj": np.zeros(2, np.float32),
               f"model.layers.{n}.self_attn.q_proj.weight": np.zeros(2, np.float32),
               f"blk.{n}.ffn_gate_exps.weight": np.zeros(2, np.float32)}, str(d / "model.safetensors"))
    for fmt in ("json", "table"):
        result = CliRunner().invoke(app, ["verify", str(d), "-f", fmt], env=ENV)
        assert result.exit_code in (0, 1) and "Traceback" not in result.stderr, result.output[-500:]
    from inspector.checkpoint.gguf_hf import gguf_moe_role

    assert gguf_moe_role(f"blk.{n}.ffn_gate_exps.weight") is None


def test_numbers_of_5000_digits_in_expect_and_configs(tmp_path):
    (tmp_path / "expect.json").write_text('{"Hi": [' + "9" * 5000 + "]}")
    refused(["run", "Hi", "--expect", str(tmp_path / "expect.json")], "--expect", "digits")
    cfg = preset_config("llava-onevision-7b", vision_aspect_ratio="anyres_max_" + "9" * 5000)
    refused(["tokens", str(config_dir(tmp_path, cfg)), "--image-size", "800x600"], "vision_aspect_ratio")


def test_digit_strings_from_options_and_environment(monkeypatch):
    pytest.importorskip("torch")
    from inspector.runtime.threads import default_threads

    refused(["trace", "Hi", "--layers", "\u00b2"], "--layers")  # "²".isdigit() is true, int("²") fails
    refused(["trace", "Hi", "--layers", "1-" + "9" * 5000], "--layers")
    monkeypatch.setenv("OMP_NUM_THREADS", "9" * 5000)
    assert default_threads() >= 1


# --------------------------------------------------------------------------- 13 and 21: sizes in GiB

@pytest.mark.parametrize("args,needle", [
    (["--gpu", "9" * 400], "--gpu"),
    (["--gpu", "1000000000000"], "--gpu"),  # 10^12 GiB: no GPU
    (["--gpu", "1e30"], "--gpu"),
    (["--overhead-gib", "inf"], "--overhead-gib"),
    (["--overhead-gib", "nan"], "--overhead-gib"),
    (["--overhead-gib", "1e300"], "--overhead-gib"),
    (["--train", "lora", "--overhead-gib", "1e300"], "--overhead-gib"),
    (["--gpu-memory-utilization", "nan"], "--gpu-memory-utilization"),
], ids=lambda v: str(v)[:30])
def test_memory_sizes(args, needle):
    refused(["memory", "qwen2.5-0.5b", *args], needle)


def test_gpu_sizes_api():
    from inspector.memory.gpus import gib_bytes, gpu

    with pytest.raises(InspectError, match="--gpu"):
        gpu("9" * 400)
    with pytest.raises(InspectError, match="100,000"):
        gpu("1000000")
    with pytest.raises(InspectError, match="--gpu"):
        gpu(str(10**30))
    for bad in (math.inf, math.nan, -1.0, 1e300):
        with pytest.raises(InspectError):
            gib_bytes(bad, "--overhead-gib")
    assert gpu("24").bytes == 24 * 2**30


# --------------------------------------------------------------------------- 14: over-long names

@pytest.mark.parametrize("args", [
    ["params", LONG], ["params", DEEP], ["config", LONG + ".json"], ["verify", LONG],
    ["verify", "qwen2.5-0.5b", "--weights", LONG], ["tokens", LONG], ["memory", LONG],
    ["memory", "qwen2.5-0.5b", "--weights", LONG], ["report", LONG], ["params", "a\x00b"],
    ["run", "Hi", "--prompts", LONG], ["run", "Hi", "--expect", LONG], ["chat", "--turns", LONG],
], ids=lambda a: " ".join(a)[:40].replace("/", "|"))
def test_overlong_names_cli(args):
    refused(args)


@pytest.mark.parametrize("args", [["trace", "Hi", "-m", LONG], ["trace", "Hi", "--tokenizer", LONG],
                                  ["trace", "Hi", "--weights", LONG]], ids=["model", "tokenizer", "weights"])
def test_overlong_names_torch_commands(args):
    pytest.importorskip("torch")
    refused(args)


@pytest.mark.parametrize("call", ["load_spec", "open_checkpoint", "verify", "load_tokenizer"])
def test_overlong_names_api(call):
    import inspector

    for name in (LONG, DEEP, "x\x00y"):
        with pytest.raises(InspectError, match="limit|NUL"):
            getattr(inspector, call)(name)


# --------------------------------------------------------------------------- 15: Hub environment

@pytest.mark.parametrize("variable,value", [
    ("HF_ENDPOINT", "http://localhost:99999"), ("HF_ENDPOINT", "http://[::1"), ("HF_ENDPOINT", "localhost:8080"),
    ("HF_ENDPOINT", "ftp://example.org"), ("HF_HUB_DOWNLOAD_TIMEOUT", "nan"), ("HF_HUB_DOWNLOAD_TIMEOUT", "-5"),
    ("HF_HUB_ETAG_TIMEOUT", "1e9"), ("HF_HUB_DOWNLOAD_TIMEOUT", "9" * 400),
])
@pytest.mark.parametrize("command", [["params"], ["verify"], ["tokens"]])
def test_hub_environment(variable, value, command):
    refused([*command, "someone/model"], variable, env={variable: value})


def test_hub_probe_never_asks_another_host(monkeypatch):
    import socket

    from inspector.hub import hub_endpoint_reachable

    asked = []
    monkeypatch.setattr(socket, "create_connection",
                        lambda address, timeout=None: asked.append(address) or socket.socket())
    for bad in ("localhost:8080", "http://[::1", "http://x:99999"):
        monkeypatch.setenv("HF_ENDPOINT", bad)
        with pytest.raises(InspectError, match="HF_ENDPOINT"):
            hub_endpoint_reachable()
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1234")
    hub_endpoint_reachable()
    assert asked == [("127.0.0.1", 1234)]


# --------------------------------------------------------------------------- 16: the API checks itself

@pytest.fixture(scope="module")
def tiny_model():
    torch = pytest.importorskip("torch")
    from inspector.reference.text import TextModel

    torch.manual_seed(0)
    spec = from_hf_config(tiny_config("llama"), "tiny").text
    return TextModel(spec, device="cpu", dtype=torch.float32).eval()


@pytest.mark.parametrize("prompt,count,eos,needle", [
    ([1, 2, 101], 2, None, "prompt token id"), ([1, -1], 2, None, "prompt token id"),
    ([1, 2.5], 2, None, "prompt token id"), ([1, 2], -3, None, "max_new_tokens"),
    ([1, 2], 1.5, None, "max_new_tokens"), ([1, 2], True, None, "max_new_tokens"),
    ([1, 2], 2, ["x"], "eos token id"),
])
def test_generate_checks_its_arguments(tiny_model, prompt, count, eos, needle):
    import inspector

    with pytest.raises(InspectError, match=needle):
        list(inspector.generate(tiny_model, prompt, count, eos_ids=eos))
    assert len(list(inspector.generate(tiny_model, [1, 2], 2))) == 2


def test_load_model_device_and_dtype():
    pytest.importorskip("torch")
    import inspector

    for kw, needle in (({"device": "tpu"}, "device"), ({"device": "xla"}, "device"), ({"device": 3.5}, "device"),
                       ({"dtype": "float128"}, "dtype"), ({"dtype": 7}, "dtype")):
        with pytest.raises(InspectError, match=needle):
            inspector.load_model(smollm2_gguf_path(), **kw)


def test_trace_and_kv_cache_check_their_arguments():
    import inspector

    acc = inspector.account(inspector.load_spec("qwen2.5-0.5b"))
    for args in ((-5,), (4096, 0), (4096.5,), (4096, 1, 0)):
        with pytest.raises(InspectError):
            acc.kv_cache_bytes(*args)
    assert acc.kv_cache_bytes(4096) > 0
    pytest.importorskip("torch")
    runtime = inspector.prepare(str(smollm2_gguf_path()), device="meta")
    for kw in ({"decode_steps": -1}, {"decode_steps": 1.5}, {"seq_len": 0}):
        with pytest.raises(InspectError):
            inspector.trace_prompt(runtime, "Hi", **kw)


# --------------------------------------------------------------------------- 17: one line from dependencies

def test_rust_panic_on_merges_is_one_line(tmp_path):
    from gguf_bytes import replace_meta, tiny_llama

    cases = []
    for name, merges in (("merged-not-a-token", ['! "']), ("side-not-a-token", ["zz yy"])):
        (tmp_path / f"{name}.gguf").write_bytes(tiny_llama(replace_meta("tokenizer.ggml.merges", ("ARRAY", "STRING"),
                                                                        merges)))
        cases.append({"id": name, "args": ["trace", "hi", "-m", str(tmp_path / f"{name}.gguf"), "--device", "cpu"]})
    for name, result in run_cases(cases).items():
        assert_refused(result, "tokenizer.ggml.merges")
        assert "panicked" not in result.stderr and "backtrace" not in result.stderr


def test_dependency_warnings_and_logs_are_one_line(monkeypatch):
    import inspector.source as source

    real = source.load_spec

    def noisy(model):
        logging.getLogger("kernels._internals.validate").warning("Kernel 'x' was built\nfrom a dirty tree")
        warnings.warn("a dependency's\nwarning", UserWarning)
        return real(model)

    monkeypatch.setattr(source, "load_spec", noisy)
    result = CliRunner().invoke(app, ["config", "qwen2.5-0.5b", "-f", "json"], env=ENV)
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert lines == ["warning: kernels._internals.validate: Kernel 'x' was built from a dirty tree",
                     "warning: UserWarning: a dependency's warning"], lines


# --------------------------------------------------------------------------- 18: JSON the hardened parser reads

def test_expect_and_configs_nested_deep(tmp_path):
    (tmp_path / "expect.json").write_text('{"Hi": ' + "[" * 900 + "]" * 900 + "}")
    refused(["run", "Hi", "--expect", str(tmp_path / "expect.json")], "--expect", "nested")
    (tmp_path / "dup.json").write_text('{"Hi": ["a"], "Hi": ["b"]}')
    refused(["run", "Hi", "--expect", str(tmp_path / "dup.json")], "--expect", "repeated key")
    deep = {"model_type": "bert"}
    node = deep
    for _ in range(900):
        node["n"] = {}
        node = node["n"]
    refused(["params", str(config_dir(tmp_path, deep, "deep"))], "nested")
    (tmp_path / "deep-llama").mkdir()  # a native config with one field 70 levels deep
    (tmp_path / "deep-llama" / "config.json").write_text(json.dumps(tiny_config("llama"))[:-1]
                                                         + ', "deep": ' + "[" * 70 + "]" * 70 + "}")
    refused(["config", str(tmp_path / "deep-llama")], "nested")


@pytest.mark.parametrize("architectures", [{"a": 1}, "BertModel", [1], [""]], ids=str)
def test_fallback_architectures(architectures, tmp_path):
    cfg = {"model_type": "bert", "architectures": architectures, "hidden_size": 32, "num_hidden_layers": 1,
           "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 100}
    d = config_dir(tmp_path, cfg)
    refused(["params", str(d)], "architectures")
    (d / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    refused(["verify", str(d)], "architectures")


# --------------------------------------------------------------------------- 19: sampling and routing

@pytest.mark.parametrize("args,needle", [
    (["trace", "Hi", "-t", "1e-320", "--device", "meta"], "temperature"),
    (["run", "Hi", "--temperatures", "0,1e-320"], "--temperatures"),
    (["chat", "-t", "5e-324"], "temperature"),
    (["trace", "Hi", "-t", "inf"], "--temperature"),
    (["run", "Hi", "--length-penalty", "nan"], "--length-penalty"),
], ids=lambda v: str(v)[:40])
def test_sampling_values(args, needle):
    pytest.importorskip("torch")
    refused(args, needle)


def test_sampling_api():
    pytest.importorskip("torch")
    from inspector.runtime.sampling import SamplingSettings

    for t in (1e-320, 5e-324, 1e-7, math.nan, -1.0):
        with pytest.raises(InspectError, match="temperature"):
            SamplingSettings(temperature=t)
    assert SamplingSettings(temperature=1e-6).temperature == 1e-6


ROUTING = {  # (preset, changes, field named)
    "topk-group-over-n-group": ("deepseek-v3", {"topk_group": 9}, "topk_group"),
    "topk-group-0": ("deepseek-v3", {"topk_group": 0}, "topk_group"),
    "n-group-0": ("deepseek-v3", {"n_group": 0}, "n_group"),
    "scaling-negative": ("deepseek-v3", {"routed_scaling_factor": -2.5}, "routed_scaling_factor"),
    "experts-per-token-0": ("mixtral-8x7b", {"num_experts_per_tok": 0}, "num_experts_per_tok"),
    "experts-per-token-over": ("mixtral-8x7b", {"num_experts_per_tok": 9}, "num_experts_per_tok"),
    "qwen3-experts-per-token-0": ("qwen3-30b-a3b", {"num_experts_per_tok": 0}, "num_experts_per_tok"),
    "gpt-oss-experts-per-token-0": ("gpt-oss-20b", {"num_experts_per_tok": 0}, "num_experts_per_tok"),
    "swiglu-limit-negative": ("gpt-oss-20b", {"swiglu_limit": -7.0}, "swiglu_limit"),
    "swiglu-limit-0": ("gpt-oss-20b", {"swiglu_limit": 0}, "swiglu_limit"),
    "jitter-negative": ("phi-3.5-moe", {"router_jitter_noise": -0.01}, "router_jitter_noise"),
    "attn-softcap-0": ("gemma-2-2b", {"attn_logit_softcapping": 0}, "attn_logit_softcapping"),
    "final-softcap-negative": ("gemma-2-2b", {"final_logit_softcapping": -30.0}, "final_logit_softcapping"),
    "torch-dtype-float128": ("qwen2.5-0.5b", {"torch_dtype": "float128"}, "torch_dtype"),
    "dtype-float128": ("qwen2.5-0.5b", {"dtype": "float128"}, "dtype"),
    "bos-past-vocab": ("qwen2.5-0.5b", {"bos_token_id": 151936}, "bos_token_id"),
    "bos-past-vocab-gemma": ("gemma-2-2b", {"bos_token_id": 256000}, "bos_token_id"),
    "architectures-object": ("qwen2.5-0.5b", {"architectures": {"a": 1}}, "architectures"),
}


@pytest.mark.parametrize("case", sorted(ROUTING))
def test_values_that_cannot_be_meant(case, tmp_path):
    preset, changes, field = ROUTING[case]
    d = config_dir(tmp_path, preset_config(preset, **changes))
    line = refused(["params", str(d)], field)
    assert str(next(iter(changes.values())))[:6] in line
    refused(["config", str(d)], field)
    refused(["memory", str(d)], field)


def test_values_that_cannot_be_meant_api():
    for preset, changes, field in ROUTING.values():
        with pytest.raises(InspectError, match=field):
            from_hf_config(preset_config(preset, **changes), "x")
    # transformers' own Starcoder2Config puts bos past its vocabulary: that default is accepted
    from_hf_config(preset_config("starcoder2-3b", bos_token_id=50256, eos_token_id=50256), "x")
    with pytest.raises(InspectError, match="bos_token_id"):
        from_hf_config(preset_config("starcoder2-3b", bos_token_id=50257), "x")


def test_beam_length_penalty_api(tiny_model):
    from inspector.runtime.beam import beam_search

    for penalty in (math.nan, math.inf, 1e6):
        with pytest.raises(InspectError, match="length-penalty"):
            beam_search(tiny_model, [1, 2], 2, 2, length_penalty=penalty)


# --------------------------------------------------------------------------- 20: echoed input is cut

def test_long_values_are_cut_in_messages(tmp_path):
    huge = "x" * 6_000_000
    refused(["params", huge], "characters")
    refused(["tokens", "qwen2-vl-2b", "--image-size", huge], "--image-size", "characters")
    refused(["params", str(config_dir(tmp_path, {**tiny_config("llama"), "model_type": huge}))], "model_type")
    refused(["params", str(config_dir(tmp_path, {**tiny_config("llama"), "hidden_size": huge}, "h"))], "hidden_size")
    refused(["config", str(config_dir(tmp_path, {**tiny_config("llama"), "torch_dtype": huge}, "d"))], "torch_dtype")
    (tmp_path / "prompts.txt").write_text("x" * 100 + "\n" + huge + "\n")  # a 6 MB prompt line
    refused(["run", "--prompts", str(tmp_path / "prompts.txt"), "-m", "qwen2.5-0.5b", "--device", "cpu"])
    refused(["memory", "qwen2.5-0.5b", "--dtype", huge], "--dtype")
    refused(["memory", "qwen2.5-0.5b", "--gpus", huge], "--gpus")  # click's own usage error
