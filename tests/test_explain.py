"""`inspect explain LOG`: every public vLLM log under fixtures/vllm/logs/ explained (exit 0); cases A5
(PR 10511, TP 1 and TP 2) and A6 (issue 10517, blocks 1952 and 1478 from the logged KV bytes) and V1 logs
checked term by term; the JSON keys; bad files refused in one line (exit 2); no torch import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "fixtures" / "vllm" / "logs"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
GIB = 2**30


def explain(*args: str) -> dict:
    result = CliRunner().invoke(app, ["explain", *args, "--format", "json"], env=ENV)
    assert result.exit_code == 0, result.output[-2000:]
    return json.loads(result.stdout)


def terms(data: dict, rank: str | None = None) -> dict[str, dict]:
    return {t["term"]: t for t in data["terms"] if t["rank"] == rank}


def checks(data: dict) -> dict[str, dict]:
    return {c["check"]: c for c in data["checks"]}


@pytest.mark.parametrize("log", sorted(p.name for p in LOGS.glob("*.log")))
@pytest.mark.parametrize("fmt", ["table", "md", "json"])
def test_every_fixture_log_is_explained(log, fmt):
    result = CliRunner().invoke(app, ["explain", str(LOGS / log), "--format", fmt], env=ENV)
    assert result.exit_code == 0, result.output[-2000:]
    if fmt == "json":
        data = json.loads(result.stdout)
        assert data["terms"] or data["needs"], log
        assert all(c["agrees"] in (True, False, None) for c in data["checks"])


def test_a5_tp1_reproduced_term_by_term():
    data = explain(str(LOGS / "v0-pr10511-llama3-8b-h100-tp1.log"), "--model", "llama-3.1-8b",
                   "--max-model-len", "8192")
    t = terms(data)
    assert data["engine"] == "vllm-v0" and data["gpu_total_bytes"] == round(79.22 * GIB)
    assert t["gpu_total"]["logged"] == 79.22 and t["requested"]["logged"] == 71.29
    assert abs(t["weights"]["difference"]) < 0.05 and t["weights"]["status"] == "exact"
    assert abs(t["activation_peak"]["ours"] - 1.26) < 0.05 and t["activation_peak"]["status"] == "assumed"
    assert t["non_torch"]["logged"] == 1.79 and t["non_torch"]["ours"] == pytest.approx(0.16, abs=1e-3)
    # PR 10511's build took its baseline after the CUDA context (issue 12059): the context is not in it
    why = t["non_torch"]["why"]
    assert "PR 10511" in why and "reserved-but-free" in why and "CUDA context" not in why and "0.16 GiB" in why
    assert t["kv_cache"]["logged"] == 53.29 and 1.6 < t["kv_cache"]["difference"] < 1.7
    assert "non-torch" in t["kv_cache"]["why"]
    c = checks(data)
    assert c["usable"]["agrees"] and c["available KV"]["agrees"]
    assert c["our KV with the log's non-torch"]["agrees"]
    assert abs(float(c["our KV with the log's non-torch"]["implied"].split()[0]) - 53.29) < 0.05


def test_a5_tp2_per_gpu():
    data = explain(str(LOGS / "v0-pr10511-llama3-8b-h100-tp2.log"), "--model", "llama-3.1-8b", "--tp", "2",
                   "--max-model-len", "8192")
    t = terms(data)
    assert {"name": "tensor_parallel_size", "value": 2, "from": "--tp"} in data["settings"]
    assert t["weights"]["logged"] == 7.48 and abs(t["weights"]["difference"]) < 0.05
    assert abs(t["activation_peak"]["ours"] - 1.26) < 0.05  # TP-invariant, as logged
    assert t["non_torch"]["logged"] == 3.58 and "NCCL" in t["non_torch"]["why"]
    # what PR 10511's build counted (vLLM PR 11809's description): allocated, not reserved, bytes
    assert "allocated bytes" in t["non_torch"]["why"] and "reserved-but-free" in t["non_torch"]["why"]
    assert any("largest rank at TP 2" in n for n in data["notes"])


def test_a6_v064_non_torch_why_is_the_cuda_context():
    """v0.6.4 (PR 9352) counted device used minus torch allocated from zero: the CUDA context is in it."""
    data = explain(str(LOGS / "v0-issue10517-llama31-8b-rtx3090-20k.log"), "--model", "llama-3.1-8b",
                   "--gpu", "RTX3090-24GB", "--max-model-len", "20000")
    why = terms(data)["non_torch"]["why"]
    assert "CUDA context" in why and "v0.6.4" in why


@pytest.mark.parametrize("log,blocks,tokens,length", [
    ("v0-issue10517-llama31-8b-rtx3090-20k.log", 1952, None, 20000),
    ("v0-issue10517-llama31-8b-rtx3090-29k.log", 1478, 23648, 29000),
])
def test_a6_blocks_from_the_logged_kv_bytes(log, blocks, tokens, length):
    data = explain(str(LOGS / log), "--model", "llama-3.1-8b")
    c, t = checks(data), terms(data)
    found = c["blocks from the logged KV"]
    assert found["agrees"] and found["logged"] == f"{blocks:,}"
    low, _, high = found["implied"].replace(",", "").partition(" to ")
    assert int(low) <= blocks <= int(high)
    assert c["available KV"]["agrees"] and c["max concurrency"]["agrees"]
    used = [{k: s[k] for k in ("name", "value")} for s in data["settings"]]
    assert {"name": "max_model_len", "value": length} in used
    assert t["blocks"]["logged"] == blocks and t["activation_peak"]["implied"].startswith("peak_torch_memory")
    assert abs(t["kv_cache"]["difference"]) * GIB / data["gpu_total_bytes"] < 0.02  # within 2% of the GPU
    if tokens:
        assert c["tokens"]["agrees"] and c["tokens"]["logged"] == f"{tokens:,}"
        assert c["refusal"]["agrees"]


def test_v1_log_kv_bytes_from_the_logged_tokens():
    data = explain(str(LOGS / "v1-pr17122-llama31-8b-l40s.log"), "--model", "llama-3.1-8b", "--gpu", "L40-48GB")
    t = terms(data)
    assert data["engine"] == "vllm-v1"
    assert t["kv_cache"]["logged"] == pytest.approx(9916 * 2 * 2**20 / GIB, abs=1e-4)  # 158,656 tokens / 16
    assert "9,916 blocks" in t["kv_cache"]["implied"]
    assert t["tokens"]["logged"] == 158656 and t["tokens"]["ours"] is not None
    assert checks(data)["max concurrency"]["agrees"]
    assert {"name": "gpu_total", "value": "44.40 GiB", "from": "--gpu L40-48GB"} in data["settings"]


def test_v1_log_without_the_model_lists_what_it_needs():
    data = explain(str(LOGS / "v1-runai67-graph-capture.log"))
    t = terms(data)
    assert data["model"]["used"] is None and any("model's config" in n for n in data["needs"])
    assert t["blocks"]["logged"] == 70688 and t["blocks"]["status"] == "needs the model's config"
    assert t["cuda_graphs"]["logged"] == 0.45 and "not taken off" in t["cuda_graphs"]["why"]
    assert checks(data)["tokens"]["agrees"] and checks(data)["max concurrency"]["agrees"]


def test_v1_per_rank_rows_and_the_logs_own_sums():
    data = explain(str(LOGS / "v1-club3090-1087-qwen38-27b-fp8-tp2-rtx5090.log"))
    ranks = {t["rank"] for t in data["terms"]} - {None}
    assert ranks == {"rank 0 (Worker_TP0 pid=223)", "rank 1 (Worker_TP1 pid=238)"}
    assert {"name": "tensor_parallel_size", "value": 2} in [{k: s[k] for k in ("name", "value")}
                                                             for s in data["settings"]]
    assert all(c["agrees"] for c in data["checks"] if c["check"].startswith(("usable", "KV in use")))


def test_the_logged_model_is_resolved_when_it_is_a_preset():
    data = explain(str(LOGS / "v0-dynamo288-qwen25-7b-config.log"))
    assert data["model"]["named"] == "/data/models/hf/Qwen/Qwen2.5-7B-Instruct"
    assert data["model"]["used"] == "Qwen/Qwen2.5-7B-Instruct" and data["model"]["kind"] == "preset"
    assert any("GPU's total" in n for n in data["needs"])


def test_a_logged_hub_id_not_at_hand_is_named_not_an_error(tmp_path):
    log = tmp_path / "serve.log"
    text = (LOGS / "v1-issue42510-llama31-8b-config.log").read_text()
    log.write_text(text.replace("/root/.cache/modelscope/hub/models/LLM-Research/Meta-Llama-3___1-8B-Instruct",
                                "someone/not-a-preset-8B"))
    data = explain(str(log), "--gpu", "H100-80GB")
    assert data["model"]["used"] is None and "--model" in data["model"]["problem"]
    assert terms(data)["requested"]["ours"] == pytest.approx(79.18 * 0.9, abs=0.01)


JSON_KEYS = {"log", "version", "engine", "model", "gpu_total_bytes", "settings", "terms", "checks", "needs", "notes"}
TERM_KEYS = {"term", "rank", "unit", "logged", "line", "implied", "ours", "ours_bytes", "difference",
             "difference_bytes", "status", "source", "why"}


def test_json_keys_are_stable():
    data = explain(str(LOGS / "v0-pr10511-llama3-8b-h100-tp1.log"), "--model", "llama-3.1-8b")
    assert set(data) == JSON_KEYS
    assert all(set(t) == TERM_KEYS for t in data["terms"])
    assert all(set(c) == {"check", "formula", "implied", "logged", "agrees"} for c in data["checks"])
    assert set(data["model"]) == {"named", "named_line", "used", "kind", "problem"}


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    (b"a\0b", "not a text file"),
    (b"hello\nworld\n", "no vLLM start-up line"),
])
def test_bad_files_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "bad.log"
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(app, ["explain", str(path)], env=ENV)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and message in lines[0]


def test_explain_imports_no_torch():
    code = ("import sys; from typer.testing import CliRunner; from inspector.cli.app import app; "
            f"r = CliRunner().invoke(app, ['explain', {str(LOGS / 'v0-pr10511-llama3-8b-h100-tp1.log')!r}, "
            "'--model', 'llama-3.1-8b', '--format', 'json']); assert r.exit_code == 0, r.output; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, cwd=ROOT)


def test_a_gpu_option_is_set_against_the_logged_total():
    data = explain(str(LOGS / "v0-pr10511-llama3-8b-h100-tp1.log"), "--model", "llama-3.1-8b", "--gpu", "H100-80GB")
    t = terms(data)["gpu_total"]
    assert t["logged"] == 79.22 and t["ours"] == pytest.approx(79.18) and t["status"] == "calibrated"
    assert data["gpu_total_bytes"] == round(79.22 * GIB)  # the log's total sizes the rest


def test_a_utilization_printed_with_two_decimals_is_read_as_a_range():
    # vLLM 0.8 prints "total_gpu_memory (23.58GiB) x gpu_memory_utilization (0.94) = 22.29GiB": 0.945 printed as 0.94
    data = explain(str(LOGS / "v0-issue15340-deepseek-r1-gguf-rtx3090-multi.log"))
    found = [c for c in data["checks"] if c["check"].startswith("usable")]
    assert found and all(c["agrees"] for c in found) and "printed rounding" in found[0]["implied"]


def test_a_vision_language_log_blocks_reproduced_and_the_encoder_named():
    data = explain(str(LOGS / "v0-pr12126-llama32-11b-vision-h100.log"), "--model", "llama-3.2-11b-vision",
                   "--max-model-len", "65536")
    t, c = terms(data), checks(data)
    assert abs(t["weights"]["difference"]) < 0.05  # 19.86 GiB logged, the vision tower included
    assert c["blocks from the logged KV"]["agrees"] and c["blocks from the logged KV"]["logged"] == "6,001"
    assert "vision encoder" in t["activation_peak"]["why"] and not c["our KV with the log's non-torch"]["agrees"]


def test_the_vision_encoder_profile_is_ours_as_in_memory():
    """With the options the log lacks (PR 12126 ran --max-num-seqs 128), explain's activation peak is the
    one `inspect memory` predicts for the same settings: the vision encoder's profile over dummy images."""
    args = ["--max-model-len", "65536", "--max-num-seqs", "128"]
    data = explain(str(LOGS / "v0-pr12126-llama32-11b-vision-h100.log"), "--model", "llama-3.2-11b-vision", *args)
    result = CliRunner().invoke(app, ["memory", "llama-3.2-11b-vision", "--vllm-version", "0.7.0", "--gpu-memory-gib",
                                      "79.22", "--enforce-eager", *args, "-f", "json"], env=ENV)
    assert result.exit_code == 0, result.output[-2000:]
    peak = terms(data)["activation_peak"]
    assert peak["ours"] == pytest.approx(json.loads(result.stdout)["activation_peak_bytes"] / GIB, abs=0.005)
    assert "vision encoder's profile" in peak["why"] and peak["status"] == "assumed"
    assert next(s for s in data["settings"] if s["name"] == "max_num_seqs")["from"] == "--max-num-seqs"


def test_cuda_graph_profiling_of_newer_vllm_is_named():
    data = explain(str(LOGS / "v1-lmcache3430-qwen3-8b.log"))
    assert any("CUDA-graph memory" in n and "0.52 GiB" in n and "0.9543" in n for n in data["notes"])
