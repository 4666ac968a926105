"""vLLM's start-up arithmetic by release (inspector/memory/vllm_versions.py) and its CUDA-graph estimate from
v0.21.0 (inspector/memory/vllm_graphs.py), against the fixture logs that show graph memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app
from inspector.errors import InspectError
from inspector.memory import vllm, vllm_graphs, vllm_versions
from inspector.memory.vllm import GIB, Device, ModelDims, VllmSettings
from inspector.memory.vllm_log import read_vllm_log
from inspector.memory.vllm_versions import EPOCHS, V0, V1

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vllm"
GRAPHS = json.loads((FIXTURES / "graphs.json").read_text())["logs"]
CASES = json.loads((FIXTURES / "cases.json").read_text())
H100 = Device("NVIDIA H100 80GB HBM3", round(79.18 * GIB))
LLAMA = ModelDims(**CASES["dims"]["llama-3-8b"])
runner = CliRunner()


@pytest.mark.parametrize("epoch", EPOCHS, ids=[e.text for e in EPOCHS])
def test_each_release_row(epoch):
    """Every row: its own version resolves to it, its engines are allowed and the others refused in one line,
    its graph term is the estimate from 0.21.0 and none before, its V1 batch rule on an H100."""
    for engine in (V0, V1):
        if engine in epoch.engines:
            got = vllm_versions.resolve(epoch.text, engine)
            assert got.epoch == epoch and got.engine == engine and got.given
        else:
            with pytest.raises(InspectError) as err:
                vllm_versions.resolve(epoch.text, engine)
            assert "\n" not in str(err.value) and "contradicts" in str(err.value)
    release = vllm_versions.resolve(epoch.text, None)
    assert release.engine == epoch.engines[0] and epoch.source
    settings = VllmSettings(engine=release.engine, vllm_version=epoch.text)
    graphs = vllm.cuda_graph_term(settings, LLAMA, (8192, 1024))
    assert (graphs.bytes > 0) == (epoch.graphs_profiled and release.engine == V1)
    if V1 in epoch.engines:
        v1 = VllmSettings(engine=V1, vllm_version=epoch.text)
        assert vllm.batch_defaults(v1, H100)[:2] == ((2048, 256) if epoch.v1_batch == vllm_versions.FLAT else (8192, 1024))


@pytest.mark.parametrize("version,big", [("0.7.0", False), ("0.8.5", True), ("0.9.0", False)])
def test_v1_batch_defaults_on_an_a100_80gb_by_release(version, big):
    """PR 12369 named H100/H200; PR 17073 took every card of >= 70 GiB; PR 17885 took the A100 out again."""
    a100 = Device("NVIDIA A100-SXM4-80GB", round(79.15 * GIB))
    got = vllm.batch_defaults(VllmSettings(engine=V1, vllm_version=version), a100)
    assert got[:2] == ((8192, 1024) if big else (2048, 256)) and version in got[2]


def test_table_is_ordered_and_defaults_stated():
    assert [e.since for e in EPOCHS] == sorted({e.since for e in EPOCHS})
    assert vllm_versions.resolve(None, None).text == vllm_versions.NEWEST
    assert vllm_versions.resolve(None, V0).text == vllm_versions.LAST_V0
    assert vllm_versions.resolve(None, V0).epoch.non_torch_v0 == vllm_versions.PR12126


@pytest.mark.parametrize("text,number", [("0.12", (0, 12, 0)), ("v0.11.0", (0, 11, 0)), ("0.21.0rc1", (0, 21, 0)),
                                         ("0.11.0+cu128", (0, 11, 0)), ("0.6.4.post1", (0, 6, 4))])
def test_parse_version(text, number):
    assert vllm_versions.parse_version(text) == number


@pytest.mark.parametrize("args,message", [
    (["--engine", "vllm-v0", "--vllm-version", "0.12"], "--engine vllm-v0 contradicts --vllm-version 0.12"),
    (["--engine", "vllm-v1", "--vllm-version", "0.6.4"], "--engine vllm-v1 contradicts --vllm-version 0.6.4"),
    (["--vllm-version", "0.5.1"], "releases before 0.6.3 are not modelled"),
    (["--vllm-version", "latest"], "expected X.Y or X.Y.Z"),
    (["--vllm-version", "0.6.4", "--kv-cache-memory", "1000000"], "--kv-cache-memory is a vLLM V1 option"),
], ids=["v0-at-0.12", "v1-at-0.6.4", "too-old", "not-a-version", "kv-memory-on-v0"])
def test_cli_errors_are_one_line(args, message):
    result = runner.invoke(app, ["memory", "qwen2.5-0.5b", *args])
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def _json(*args: str) -> dict:
    result = runner.invoke(app, ["memory", "llama-3.1-8b", *args, "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_version_engine_and_graphs():
    newest, v011 = _json(), _json("--vllm-version", "0.11.0")
    eager = _json("--enforce-eager")
    assert (newest["vllm_version"], newest["engine"]) == (vllm_versions.NEWEST, V1)
    assert v011["vllm_version"] == "0.11.0" and _json("--engine", "vllm-v0")["vllm_version"] == vllm_versions.LAST_V0
    assert _json("--vllm-version", "0.7.0")["engine"] == V0 and _json("--vllm-version", "0.8")["engine"] == V1
    # the only difference between 0.11 and the newest (same defaults): the graph estimate, gone with --enforce-eager
    assert 0.4 * GIB < v011["kv_cache_bytes"] - newest["kv_cache_bytes"] < 1.0 * GIB
    assert eager["kv_cache_bytes"] == v011["kv_cache_bytes"]


def test_capture_sizes_as_vllm_lists_them():
    assert vllm_graphs.capture_sizes(256, 2048)[:5] == (1, 2, 4, 8, 16)
    assert len(vllm_graphs.capture_sizes(256, 2048)) == 51 and vllm_graphs.capture_sizes(256, 2048)[-1] == 512
    assert vllm_graphs.capture_sizes(2, 8192) == (1, 2, 4)  # min(2 x max_num_seqs, 512)
    assert vllm_graphs.capture_sizes(1024, 256)[-1] == 256  # capped by max_num_batched_tokens
    assert vllm_graphs.graph_plan(256, 2048, full=False).full == ()


@pytest.mark.parametrize("case", GRAPHS, ids=[c["id"] for c in GRAPHS])
def test_graph_estimate_against_the_logs(case):
    """The log's graph lines agree with each other ((util - util without graphs) x total = the estimate); where
    the model and settings are known, ours is within 0.05 GiB of it (fixtures/vllm/graphs.json says why not)."""
    log = read_vllm_log(FIXTURES / "logs" / case["log"])
    m = log.ranks[0].figures if log.ranks else log.memory
    assert float(m.utilization_without_graphs.value) == case["util_without_graphs"]
    implied = (case["util"] - case["util_without_graphs"]) * case["gpu_total_gib"]
    logged = case["estimated_gib"] or implied
    assert abs(implied - logged) <= 0.01
    if not case["comparable"]:
        assert case["why_not"] and case["dims"] is None
        return
    plan = vllm_graphs.graph_plan(case["max_num_seqs"], case["max_num_batched_tokens"])
    assert plan.log_line() == case["logged_plan"] and float(m.cuda_graph_estimated_gib.value) == logged
    settings = VllmSettings(vllm_version="0.21.0", tp=case["tp"])
    ours = vllm.cuda_graph_term(settings, ModelDims(**case["dims"]), (case["max_num_batched_tokens"],
                                                                      case["max_num_seqs"]))
    assert abs(ours.bytes / GIB - logged) <= 0.05 and ours.status == "calibrated"


@pytest.mark.parametrize("name,version,engine", [
    ("v1-lmcache3430-qwen3-8b.log", ">= 0.21.0", V1),
    ("v1-club3090-1087-qwen38-27b-fp8-tp2-rtx5090.log", ">= 0.21.0", V1),
    ("v1-runai67-graph-capture.log", "< 0.21.0", V1),
    ("v1-issue42510-llama31-8b-config.log", "0.14.1", V1),
    ("v0-issue10517-llama31-8b-rtx3090-20k.log", "0.6.4", V0),
    ("v0-dynamo288-qwen25-7b-config.log", "0.7.2", V0),
    ("v0-pr10511-llama3-8b-h100-tp1.log", "0.6.5", V0),
    ("v0-pr12126-llama32-11b-vision-h100.log", "0.7.0", V0),
], ids=["lmcache3430", "club1087", "runai67", "issue42510", "issue10517", "dynamo288", "pr10511", "pr12126"])
def test_release_from_the_log(name, version, engine):
    log = read_vllm_log(FIXTURES / "logs" / name)
    release, where = vllm_versions.release_of_log(log, engine)
    assert (release.text, release.engine) == (version, engine) and where


def test_explain_compares_the_graph_lines():
    result = runner.invoke(app, ["explain", str(FIXTURES / "logs" / "v1-lmcache3430-qwen3-8b.log"),
                                 "--gpu-memory-gib", "23.53", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"name": "vllm_version", "value": ">= 0.21.0"}.items() <= next(
        s for s in data["settings"] if s["name"] == "vllm_version").items()
    graphs = next(t for t in data["terms"] if t["term"] == "cuda_graphs")
    assert graphs["logged"] == 0.52 and "needs the model" in graphs["why"]
    check = next(c for c in data["checks"] if c["check"] == "CUDA graphs from the utilization equivalence")
    assert check["agrees"] is True and check["implied"].startswith("0.52")
