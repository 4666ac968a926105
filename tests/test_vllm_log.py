"""Reading vLLM start-up logs (inspector/memory/vllm_log.py): every public log under fixtures/vllm/logs/
read to the values it shows, hand-checked, each with its line; bad files refused in one line or read
within bounds; no torch import."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from inspector import files
from inspector.errors import InspectError
from inspector.memory.vllm_log import Figures, Settings, parse_vllm_log, read_vllm_log

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "fixtures" / "vllm" / "logs"

# fixture -> {what: (value, line)}. "what" is "version", "engine", "gpu", "s.<Settings field>",
# "m.<Figures field>" (the first occurrence in the log) or "r<i>.<Figures field>" (the i-th rank);
# "ranks" is (number of ranks, None). Every value was read off the log by hand. A Figures or Settings
# field not named here must be absent (None) from the record.
EXPECTED: dict[str, dict[str, tuple]] = {
    "v0-issue10517-llama31-8b-rtx3090-20k.log": {
        "engine": ("V0", 1), "s.gpu_memory_utilization": (0.90, 2), "ranks": (1, None),
        "m.weights_gib": (14.9888, 1), "m.total_gpu_gib": (23.58, 2), "m.initial_memory_gib": (15.34, 2),
        "m.peak_torch_gib": (17.06, 2), "m.post_profile_gib": (15.35, 2), "m.non_torch_gib": (0.35, 2),
        "m.available_kv_gib": (3.81, 2), "m.gpu_memory_utilization": (0.90, 2), "m.gpu_blocks": (1952, 3),
        "m.cpu_blocks": (2048, 3), "m.concurrency_tokens": (20000, 4), "m.max_concurrency": (1.56, 4),
    },
    "v0-issue10517-llama31-8b-rtx3090-29k.log": {
        "engine": ("V0", 1), "s.gpu_memory_utilization": (0.90, 2), "s.max_model_len": (29000, 5), "ranks": (1, None),
        "m.weights_gib": (14.9888, 1), "m.total_gpu_gib": (23.58, 2), "m.initial_memory_gib": (15.34, 2),
        "m.peak_torch_gib": (17.98, 2), "m.post_profile_gib": (15.35, 2), "m.non_torch_gib": (0.35, 2),
        "m.available_kv_gib": (2.89, 2), "m.gpu_memory_utilization": (0.90, 2), "m.gpu_blocks": (1478, 3),
        "m.cpu_blocks": (2048, 3), "m.concurrency_tokens": (29000, 4), "m.max_concurrency": (0.82, 4),
        "m.kv_tokens_limit": (23648, 5),
    },
    "v0-pr10511-llama3-8b-h100-tp1.log": {
        "engine": ("V0", 1), "s.gpu_memory_utilization": (0.90, 4), "ranks": (1, None),
        "m.profile_seconds": (0.75, 2), "m.total_gpu_gib": (79.22, 3), "m.gpu_memory_utilization": (0.90, 4),
        "m.requested_gib": (71.29, 5), "m.profiled_weights_gib": (14.96, 6), "m.non_torch_gib": (1.79, 7),
        "m.activation_peak_gib": (1.26, 8), "m.available_kv_gib": (53.29, 9),
    },
    "v0-pr10511-llama3-8b-h100-tp2.log": {
        "engine": ("V0", 1), "s.gpu_memory_utilization": (0.90, 4), "ranks": (1, None),
        "m.profile_seconds": (3.49, 2), "m.total_gpu_gib": (79.22, 3), "m.gpu_memory_utilization": (0.90, 4),
        "m.requested_gib": (71.29, 5), "m.profiled_weights_gib": (7.48, 6), "m.non_torch_gib": (3.58, 7),
        "m.activation_peak_gib": (1.26, 8),
    },
    "v0-pr10909-bamba-h100-tp2.log": {
        "engine": ("V0", 1), "s.gpu_memory_utilization": (0.90, 3), "ranks": (2, None),
        # the driver (rank 0, no prefix) and one VllmWorkerProcess, each with its own figures
        "r0.weights_gib": (18.4902, 1), "r1.weights_gib": (18.4902, 2),
        "r0.profile_seconds": (72.36, 4), "r1.profile_seconds": (71.88, 3),
        "r0.peak_torch_gib": (34.50, 4), "r1.peak_torch_gib": (34.32, 3),
        "r0.available_kv_gib": (34.78, 4), "r1.available_kv_gib": (34.96, 3),
        "r0.total_gpu_gib": (79.15, 4), "r1.non_torch_gib": (1.96, 3), "r1.initial_memory_gib": (19.68, 3),
        "r1.post_profile_gib": (35.32, 3),
        "m.weights_gib": (18.4902, 1), "m.profile_seconds": (71.88, 3), "m.total_gpu_gib": (79.15, 3),
        "m.gpu_memory_utilization": (0.90, 3), "m.initial_memory_gib": (19.68, 3), "m.peak_torch_gib": (34.32, 3),
        "m.post_profile_gib": (35.32, 3), "m.non_torch_gib": (1.96, 3), "m.available_kv_gib": (34.96, 3),
        "m.gpu_blocks": (189945, 5), "m.cpu_blocks": (21845, 5), "m.concurrency_tokens": (1024, 6),
        "m.max_concurrency": (2967.89, 6),
    },
    "v0-pr12126-llama32-11b-vision-h100.log": {
        "engine": ("V0", 1), "s.gpu_memory_utilization": (0.90, 1), "ranks": (1, None),
        "m.total_gpu_gib": (79.22, 1), "m.gpu_memory_utilization": (0.90, 1), "m.requested_gib": (71.29, 1),
        "m.profiled_weights_gib": (19.86, 2), "m.non_torch_gib": (0.16, 2), "m.activation_peak_gib": (36.63, 2),
        "m.available_kv_gib": (14.65, 2), "m.gpu_blocks": (6001, 3), "m.cpu_blocks": (1638, 3),
    },
    "v0-pr14447-moe-wna16-rtx3090-multi.log": {
        "engine": ("V0", 1), "s.gpu_memory_utilization": (0.99, 3), "ranks": (4, None),
        "r0.profiled_weights_gib": (21.21, 1), "r0.available_kv_gib": (1.57, 1),
        "r1.profile_seconds": (17.59, 2), "r1.requested_gib": (23.35, 3), "r1.available_kv_gib": (1.57, 4),
        "r2.profile_seconds": (17.56, 5), "r2.activation_peak_gib": (0.37, 7), "r3.profile_seconds": (17.57, 8),
        "m.profiled_weights_gib": (21.21, 1), "m.non_torch_gib": (0.20, 1), "m.activation_peak_gib": (0.37, 1),
        "m.available_kv_gib": (1.57, 1), "m.profile_seconds": (17.59, 2), "m.total_gpu_gib": (23.58, 3),
        "m.gpu_memory_utilization": (0.99, 3), "m.requested_gib": (23.35, 3),
    },
    "v0-issue15340-deepseek-r1-gguf-rtx3090-multi.log": {
        "engine": ("V0", 1), "s.gpu_memory_utilization": (0.94, 9), "ranks": (7, None),
        "r0.weights_gib": (19.5904, 1), "r1.weights_gib": (18.3843, 2), "r1.weights_seconds": (724.618766, 2),
        "r6.weights_seconds": (727.899927, 7), "r3.profile_seconds": (25.52, 8), "r3.requested_gib": (22.29, 9),
        "m.weights_gib": (19.5904, 1), "m.weights_seconds": (724.575245, 1), "m.profile_seconds": (25.52, 8),
        "m.total_gpu_gib": (23.58, 9), "m.gpu_memory_utilization": (0.94, 9), "m.requested_gib": (22.29, 9),
    },
    "v0-dynamo288-qwen25-7b-config.log": {
        "version": ("0.7.2", 1), "engine": ("V0", 1), "ranks": (0, None),
        "s.model": ("/data/models/hf/Qwen/Qwen2.5-7B-Instruct", 1), "s.dtype": ("bfloat16", 1),
        "s.max_model_len": (16384, 1), "s.tensor_parallel_size": (1, 1), "s.pipeline_parallel_size": (1, 1),
        "s.quantization": (None, 1), "s.enforce_eager": (False, 1), "s.kv_cache_dtype": ("auto", 1),
    },
    "v1-pr17122-llama31-8b-l40s.log": {
        "engine": ("V1", 2), "ranks": (1, None),
        "m.weights_read_seconds": (2.95, 1), "m.weights_gib": (14.9889, 2), "m.weights_seconds": (3.652170, 2),
        "m.kv_cache_tokens": (158656, 7), "m.concurrency_tokens": (32768, 8), "m.max_concurrency": (4.84, 8),
    },
    "v1-runai67-graph-capture.log": {
        "engine": ("V1", 3), "ranks": (1, None),
        "m.kv_cache_tokens": (1131008, 3), "m.concurrency_tokens": (131072, 4), "m.max_concurrency": (8.63, 4),
        "m.cuda_graph_seconds": (37, 5), "m.cuda_graph_gib": (0.45, 5), "m.gpu_blocks": (70688, 7),
    },
    "v1-issue21348-qwen3-235b-a22b-fp8-tp4-h100.log": {
        "engine": ("V1", 1), "ranks": (1, None), "m.available_kv_gib": (8.11, 1), "m.kv_cache_tokens": (178880, 2),
    },
    "v1-club3090-594-qwen36-27b-fp8-tp2.log": {
        "engine": ("V1", 1), "ranks": (1, None), "r0.available_kv_gib": (5.33, 1),
        "m.available_kv_gib": (5.33, 1), "m.kv_cache_tokens": (300220, 2), "m.concurrency_tokens": (262144, 3),
        "m.max_concurrency": (1.15, 3),
        "s.model": ("~/.cache/huggingface/qwen3.6-27b-fp8", 4), "s.dtype": ("bfloat16", 4),
        "s.max_model_len": (262144, 4), "s.quantization": ("fp8", 4), "s.tensor_parallel_size": (2, 4),
        "s.kv_cache_dtype": ("fp8", 4), "s.max_num_batched_tokens": (8192, 4), "s.max_num_seqs": (2, 4),
    },
    "v1-club3090-1087-qwen38-27b-fp8-tp2-rtx5090.log": {
        "engine": ("V1", 1), "s.gpu_memory_utilization": (0.92, 1), "ranks": (2, None),
        "r0.free_on_startup_gib": (30.27, 1), "r1.free_on_startup_gib": (30.5, 3),
        "r0.consumed_gib": (15.03, 1), "r1.consumed_gib": (15.05, 3),
        "r0.kv_cache_memory_fit_bytes": (12917635953, 1), "r1.kv_cache_memory_fit_bytes": (12889979761, 3),
        "r0.kv_cache_memory_full_bytes": (14405811712, 1), "r1.kv_cache_memory_full_bytes": (14624833024, 3),
        "r0.kv_cache_in_use_gib": (12.26, 1), "r1.kv_cache_in_use_gib": (12.24, 3),
        "r1.cuda_graph_gib": (0.09, 2), "r1.cuda_graph_estimated_gib": (0.13, 2),
        "m.total_gpu_gib": (31.4, 1), "m.free_on_startup_gib": (30.27, 1), "m.gpu_memory_utilization": (0.92, 1),
        "m.requested_gib": (28.88, 1), "m.consumed_gib": (15.03, 1), "m.activation_peak_gib": (1.59, 1),
        "m.cuda_graph_gib": (0.09, 1), "m.cuda_graph_estimated_gib": (0.13, 2),
        "m.kv_cache_memory_fit_bytes": (12917635953, 1), "m.kv_cache_memory_full_bytes": (14405811712, 1),
        "m.kv_cache_in_use_gib": (12.26, 1),
    },
    "v1-club3090-104-qwen36-27b-autoround-tp2-rtx3090.log": {
        "engine": ("V1", 1), "s.gpu_memory_utilization": (0.88, 2), "ranks": (2, None),
        "r0.available_kv_gib": (9.84, 1), "r1.utilization_without_graphs": (0.8592, 3),
        "m.available_kv_gib": (9.84, 1), "m.gpu_memory_utilization": (0.88, 2),
        "m.utilization_without_graphs": (0.8592, 2), "m.kv_cache_tokens": (619202, 4),
        "m.concurrency_tokens": (262144, 5), "m.max_concurrency": (2.36, 5),
    },
    "v1-lmcache3430-qwen3-8b.log": {
        "engine": ("V1", 1), "s.gpu_memory_utilization": (0.9764, 4), "ranks": (1, None),
        "m.cuda_graph_estimated_gib": (0.52, 2), "m.available_kv_gib": (6.37, 3),
        "m.gpu_memory_utilization": (0.9764, 4), "m.utilization_without_graphs": (0.9543, 4),
        "m.kv_cache_tokens": (46368, 5), "m.concurrency_tokens": (16384, 6), "m.max_concurrency": (2.83, 6),
    },
    "v1-gpustack3098-qwen3-vl-4b-fp8.log": {
        "engine": ("V1", 1), "ranks": (1, None),
        "s.model": ("/var/lib/gpustack/cache/model_scope/Qwen/Qwen3-VL-4B-Instruct-FP8", 1),
        "m.weights_read_seconds": (4.23, 13), "m.weights_gib": (5.2076, 14), "m.weights_seconds": (5.149193, 14),
    },
    "v1-gpustack2967-qwen3-0.6b-args.log": {
        "version": ("0.11.0", 2), "engine": ("V1", 2), "ranks": (0, None),
        "s.model": ("/var/lib/gpustack/cache/model_scope/Qwen/Qwen3-0.6B", 3), "s.max_model_len": (32768, 3),
    },
    "v1-issue42510-llama31-8b-config.log": {
        "version": ("0.14.1", 3), "engine": ("V1", 3), "ranks": (0, None),
        "s.model": ("/root/.cache/modelscope/hub/models/LLM-Research/Meta-Llama-3___1-8B-Instruct", 3),
        "s.dtype": ("bfloat16", 3), "s.max_model_len": (131072, 3), "s.tensor_parallel_size": (1, 3),
        "s.pipeline_parallel_size": (1, 3), "s.quantization": (None, 3), "s.enforce_eager": (False, 3),
        "s.kv_cache_dtype": ("auto", 3),
    },
}


def _actual(log, what: str):
    if what == "ranks":
        return (len(log.ranks), None)
    if what in ("version", "engine", "gpu"):
        got = {"version": log.version, "engine": log.engine, "gpu": log.gpu_name}[what]
    else:
        where, name = what.split(".")
        record = {"s": log.settings, "m": log.memory}.get(where)
        if record is None:
            record = log.ranks[int(where[1:])].figures
        got = getattr(record, name)
    return None if got is None else (got.value, got.line)


def _same(got, want) -> bool:
    if got is None or want is None:
        return got == want
    (value, line), (want_value, want_line) = got, want
    if isinstance(want_value, float) or isinstance(value, float):
        return line == want_line and isinstance(value, (int, float)) and abs(value - want_value) < 1e-9
    return (value, line) == (want_value, want_line) and type(value) is type(want_value)


def test_every_fixture_has_expectations_and_a_source():
    logs = sorted(p.name for p in LOGS.glob("*.log"))
    assert logs == sorted(EXPECTED)
    readme = (LOGS.parent / "README.md").read_text()
    for name in logs:
        assert name in readme, f"{name} is not described in fixtures/vllm/README.md"


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=[n.removesuffix(".log") for n in sorted(EXPECTED)])
def test_fixture_values(name):
    log = read_vllm_log(LOGS / name)
    want = EXPECTED[name]
    for what, value in want.items():
        assert _same(_actual(log, what), value), f"{what}: got {_actual(log, what)}, the log shows {value}"
    # nothing else: a Settings or first-occurrence Figures field the table does not name is absent
    for prefix, record, kind in (("s", log.settings, Settings), ("m", log.memory, Figures)):
        for f in fields(kind):
            if f"{prefix}.{f.name}" not in want:
                assert getattr(record, f.name) is None, f"{prefix}.{f.name} = {getattr(record, f.name)}"
    for what in ("version", "gpu"):
        if what not in want:
            assert _actual(log, what) is None, what
    assert not log.truncated
    assert log.lines == len((LOGS / name).read_text().split("\n")) - 1


def test_multi_rank_labels_and_ranks():
    log = read_vllm_log(LOGS / "v1-club3090-1087-qwen38-27b-fp8-tp2-rtx5090.log")
    assert [(p.label, p.role, p.rank, p.pid) for p in log.ranks] == [
        ("Worker_TP0 pid=223", "worker", 0, 223), ("Worker_TP1 pid=238", "worker", 1, 238)]
    assert [(p.label, v.value) for p, v in log.per_rank("consumed_gib")] == [
        ("Worker_TP0 pid=223", 15.03), ("Worker_TP1 pid=238", 15.05)]
    log = read_vllm_log(LOGS / "v0-pr10909-bamba-h100-tp2.log")
    assert [(p.label, p.role) for p in log.ranks] == [("", "main"), ("VllmWorkerProcess pid=1587462", "worker")]
    log = read_vllm_log(LOGS / "v1-club3090-594-qwen36-27b-fp8-tp2.log")
    engine = [p for p in log.processes if p.role == "engine"]
    assert [p.label for p in engine] == ["EngineCore pid=80"] and engine[0].figures.kv_cache_tokens.value == 300220
    assert log.gpu_total_gib is None


LINE_CASES = {
    # prefixes, headers, wrappers vLLM logs carry; each line read to (field, value)
    "vllm-worker-rank": ("(VllmWorker rank=1 pid=2728139) INFO 07-18 19:51:58 [gpu_worker.py:255] Available KV cache "
                         "memory: 12.50 GiB", "available_kv_gib", 12.5, 1),
    "ray-worker": ("(RayWorkerWrapper pid=4321, ip=10.0.0.2) INFO 01-02 03:04:05 worker.py:240] Memory profiling "
                   "takes 2.50 seconds", "profile_seconds", 2.5, None),
    "docker-compose": ("qwen3-8b-1   | (EngineCore_DP0 pid=7) INFO 08-06 10:09:00 [gpu_worker.py:298] Available KV "
                       "cache memory: 4.00 GiB", "available_kv_gib", 4.0, None),
    "ansi-colours": ("\x1b[1;36m(EngineCore pid=9)\x1b[0;0m INFO 10-06 12:00:40 [gpu_model_runner.py:3480] Graph "
                     "capturing finished in 8 secs, took -0.31 GiB", "cuda_graph_gib", -0.31, None),
    "v1-debug": ("(EngineCore_DP0 pid=5) DEBUG 09-28 21:12:43 [v1/worker/gpu_worker.py:297] Memory profiling takes "
                 "14.40 seconds. Total non KV cache memory: 10.22GiB; torch peak memory increase: 1.40GiB; non-torch "
                 "forward increase memory: 0.02GiB; weights memory: 8.80GiB.", "non_kv_cache_gib", 10.22, None),
    "v1-refusal": ("(EngineCore_DP0 pid=494) ValueError: To serve at least one request with the models's max seq len "
                   "(262144), (36.0 GiB KV cache is needed, which is larger than the available KV cache memory (6.94 "
                   "GiB). Based on the available memory, the estimated maximum model length is 50512.",
                   "estimated_max_model_len", 50512, None),
    "older-free-memory": ("INFO 09-28 21:12:51 [gpu_worker.py:391] Free memory on device (23.08/23.53 GiB) on startup. "
                          "Desired GPU memory utilization is (0.8, 18.82 GiB). Actual usage is 8.8 GiB for weight, 1.4 "
                          "GiB for peak activation, 0.02 GiB for non-torch memory, and 0.68 GiB for CUDAGraph memory. "
                          "Current kv cache memory in use is 9232221491 bytes.", "kv_cache_in_use_bytes",
                          9232221491, None),
    "kv-size-and-concurrency-on-one-line": ("(EngineCore_DP0 pid=1) INFO 08-13 11:29:38 [kv_cache_utils.py:1882] GPU KV "
                                            "cache size: 394,633 tokens, Maximum concurrency for 10,240 tokens per "
                                            "request: 38.54x", "max_concurrency", 38.54, None),
    "negative-kv-v0": ("INFO 03-01 10:00:00 worker.py:267] model weights take 6.59GiB; non_torch_memory takes 2.18GiB; "
                       "PyTorch activation peak memory takes 4.93GiB; the rest of the memory reserved for KV Cache is "
                       "-0.22GiB.", "available_kv_gib", -0.22, None),
}


@pytest.mark.parametrize("case", sorted(LINE_CASES))
def test_line_wordings(case):
    text, name, value, rank = LINE_CASES[case]
    log = parse_vllm_log(text + "\n")
    got = getattr(log.memory, name)
    assert got is not None and got.value == value and got.line == 1
    if rank is not None:
        assert log.ranks[0].rank == rank


def test_table_and_refusal_values_on_one_line():
    log = parse_vllm_log(LINE_CASES["v1-refusal"][0])
    assert (log.memory.kv_needed_gib.value, log.memory.available_kv_gib.value) == (36.0, 6.94)
    assert log.settings.max_model_len.value == 262144
    log = parse_vllm_log(LINE_CASES["older-free-memory"][0])
    m = log.memory
    assert (m.free_on_startup_gib.value, m.total_gpu_gib.value, m.requested_gib.value) == (23.08, 23.53, 18.82)
    assert (m.profiled_weights_gib.value, m.activation_peak_gib.value, m.non_torch_gib.value,
            m.cuda_graph_gib.value) == (8.8, 1.4, 0.02, 0.68)


def test_gpu_name_and_version_banner():
    text = ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)\n"
            "(APIServer pid=1) INFO 08-06 10:08:29 [utils.py:297]   █▄█▀ █     █     █     █  version 0.18.0\n"
            "(APIServer pid=1) INFO 08-06 10:08:41 [model.py:1582] Using max model len 16384\n")
    log = parse_vllm_log(text)
    assert (log.gpu_name.value, log.gpu_name.line) == ("NVIDIA H100 80GB HBM3", 1)
    assert (log.version.value, log.version.line) == ("0.18.0", 2)
    assert (log.engine.value, log.settings.max_model_len.value) == ("V1", 16384)


# --------------------------------------------------------------------------- bad files


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def test_garbage_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\nthis is not a vLLM log\nGiB GB 1.0 2.0\n")
    with pytest.raises(InspectError) as exc:
        read_vllm_log(path)
    assert str(path) in _one_line(exc) and "no vLLM start-up line" in str(exc.value)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    with pytest.raises(InspectError) as exc:
        read_vllm_log(path)
    assert str(path) in _one_line(exc)


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}" + bytes(range(256)) * 4)
    with pytest.raises(InspectError) as exc:
        read_vllm_log(path)
    assert "NUL byte" in _one_line(exc) and str(path) in str(exc.value)


def test_invalid_utf8_is_read(tmp_path):
    path = tmp_path / "latin1.log"
    path.write_bytes(b"caf\xe9\nAvailable KV cache memory: 8.11 GiB\n")
    assert read_vllm_log(path).memory.available_kv_gib.value == 8.11


def test_truncated_file_keeps_what_it_holds(tmp_path):
    text = (LOGS / "v0-pr10511-llama3-8b-h100-tp1.log").read_text()
    path = tmp_path / "cut.log"
    path.write_text(text[: text.index("available_kv_cache_memory") + 10])  # cut inside the last line
    log = read_vllm_log(path)
    assert log.memory.activation_peak_gib.value == 1.26 and log.memory.available_kv_gib is None


@pytest.mark.parametrize("what", ["directory", "missing", "fifo"])
def test_not_a_file_is_one_line(tmp_path, what):
    path = tmp_path / "x.log"
    if what == "directory":
        path.mkdir()
    elif what == "fifo":
        os.mkfifo(path)
    with pytest.raises(InspectError) as exc:
        read_vllm_log(path)
    _one_line(exc)


def test_huge_file_is_read_within_bounds(tmp_path, monkeypatch):
    """A log longer than LIMITS["log"] is read up to the limit: its start-up lines, not the rest, and
    never half a line."""
    monkeypatch.setitem(files.LIMITS, "log", 4096)
    head = (LOGS / "v0-pr10511-llama3-8b-h100-tp1.log").read_text()
    filler = "INFO 12-13 19:55:00 metrics.py:100] Avg prompt throughput: 0.0 tokens/s\n" * 200
    path = tmp_path / "server.log"
    path.write_text(head + filler + "Available KV cache memory: 1.00 GiB\n")
    log = read_vllm_log(path)
    assert log.truncated and log.memory.available_kv_gib.value == 53.29
    assert log.lines < 4096 // 60
    reads = []
    real = files.read_exact

    def counting(f, n):
        reads.append(n)
        return real(f, n)

    monkeypatch.setattr("inspector.memory.vllm_log.read_exact", counting)
    read_vllm_log(path)
    assert reads == [4097]


def test_long_line_is_bounded(tmp_path):
    path = tmp_path / "long.log"
    path.write_text("x" * 3_000_000 + " Available KV cache memory: 2.00 GiB\nGPU KV cache size: 1,024 tokens\n")
    log = read_vllm_log(path)
    assert log.memory.available_kv_gib is None and log.memory.kv_cache_tokens.value == 1024


def test_no_torch_import():
    code = ("import sys; from inspector.memory.vllm_log import read_vllm_log; "
            f"read_vllm_log({str(LOGS / 'v0-pr10909-bamba-h100-tp2.log')!r}); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_settings_from_namespace_args_and_config_precedence():
    text = ("INFO 03-05 12:00:00 api_server.py:912] args: Namespace(host=None, port=8000, model='org/m-awq', "
            "max_model_len=4096, gpu_memory_utilization=0.85, max_num_seqs=64, block_size=16, enforce_eager=True, "
            "tensor_parallel_size=2, pipeline_parallel_size=1, quantization='awq', kv_cache_dtype='fp8', "
            "max_num_batched_tokens=None, served_model_name=['m'])\n"
            "INFO 03-05 12:00:05 llm_engine.py:234] Initializing an LLM engine (v0.6.4.post1) with config: "
            "model='/models/m', dtype=torch.float16, max_seq_len=2048, tensor_parallel_size=2, quantization=awq, "
            "enforce_eager=True, kv_cache_dtype=fp8\n")
    s = parse_vllm_log(text).settings
    # the config line (line 2) wins over the arguments (line 1) where both speak
    assert (s.model.value, s.model.line) == ("/models/m", 2)
    assert (s.max_model_len.value, s.max_model_len.line) == (2048, 2)
    assert (s.dtype.value, s.quantization.value, s.enforce_eager.value) == ("float16", "awq", True)
    assert (s.gpu_memory_utilization.value, s.gpu_memory_utilization.line) == (0.85, 1)
    assert (s.max_num_seqs.value, s.block_size.value, s.pipeline_parallel_size.value) == (64, 16, 1)
    assert s.max_num_batched_tokens is None  # "None" in the arguments is no value
    log = parse_vllm_log(text)
    assert (log.version.value, log.engine.value, log.engine.line) == ("0.6.4.post1", "V0", 2)
