"""llama.cpp's buffers for more architectures (qwen2/3, MoEs, gemma2, phi3, gpt-oss, hybrids, ...) against llama.cpp.

The oracle: synthetic GGUFs (tools/lcpp_synth.py: zero weights, small dims, valid hyperparameters; 22
architectures, "-tiny" and "-wide" dimensions) loaded by llama.cpp (llama-cpp-python 0.3.36) at 14 settings each;
its printouts, exact bytes (``llama_get_memory_breakdown``) and reserve graphs are fixtures/llamacpp/synth/
(README there). The GGUFs are not committed: their headers are, and each test rebuilds the file as the header
plus a sparse zero data area of the recorded size (the predictor reads the header only). Every buffer line must
equal the printout to the 0.01 MiB shown and the exact bytes; the reserve graph must equal llama.cpp's node by
node; the held-back settings (heldback/, recorded before the templates were written) must equal the exact bytes.
Keys that would change the graph leave the compute buffer "not modelled" rather than guessed.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from inspector.memory.llamacpp import LlamaCppSettings, predict_buffers, printout
from inspector.memory.llamacpp_graph import ARCHS
from llamacpp_records import FILES, SYN, settings, synth_cache

ROOT = Path(__file__).resolve().parent.parent
RUNS = sorted((SYN / "runs").glob("*.json"))
HELD = [(p.stem, i, r) for p in sorted((SYN / "heldback").glob("*.json"))
        for i, r in enumerate(json.loads(p.read_text())["runs"])]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """The parsed header of each synthetic GGUF (header + sparse zeros up to the recorded size), once."""
    return synth_cache(tmp_path_factory.mktemp("synth"))



def _exact(pred) -> dict:
    """The prediction summed per buffer type as llama_get_memory_breakdown reports it (context = KV + RS)."""
    out = {}
    for b in pred.buffers:
        if b.kind == "output":
            continue
        slot = {"model": "model", "repack": "model", "kv": "context", "compute": "compute"}[b.kind]
        dev = "CPU" if b.device == "CPU_Mapped" and slot != "model" else b.device
        d = out.setdefault(dev, {"model": 0, "context": 0, "compute": 0})
        d[slot] += b.nbytes
    return out


def _modelled(arch: str) -> bool:
    return arch in ARCHS


_PREDICTIONS = {}


def _predict(synth, rec: dict):
    """One prediction per recorded run, shared by the printout and the exact-bytes tests."""
    key = (rec["model"], json.dumps(rec["settings"], sort_keys=True))
    if key not in _PREDICTIONS:
        _PREDICTIONS[key] = predict_buffers(synth(rec["model"]), settings(rec["settings"]))
    return _PREDICTIONS[key]


@pytest.mark.parametrize("run", RUNS, ids=[p.stem for p in RUNS])
def test_buffers_equal_llamacpp_printout(run, synth):
    rec = json.loads(run.read_text())
    assert rec["rc"] == 0
    pred = _predict(synth, rec)
    # the recorder's kind "rs" (llama.cpp's "RS buffer") is the predictor's kind "kv" from llama_memory_recurrent
    want = [(b["func"], b["device"], "kv" if b["kind"] == "rs" else b["kind"], b["mib"]) for b in rec["buffers"]]
    got = [(b.func, b.device, b.kind, b.mib) for b in pred.buffers]
    if not _modelled(FILES[rec["model"]]["arch"]):  # compute buffer not modelled: said so, the rest exact
        want = [w for w in want if w[2] != "compute"]
        assert any("compute buffer" in w for w in pred.warnings)
    assert got == want
    kv = [(c["cells"], c["layers"], c["type_k"], c["k_mib"], c["type_v"], c["v_mib"], c["mib"])
          for c in rec["kv_caches"]]
    assert [(c.cells, c.layers, c.type_k, c.mib("k"), c.type_v, c.mib("v"), c.mib()) for c in pred.kv_caches] == kv
    rs = [(c["cells"], c["layers"], c["seqs"], c["r_mib"], c["s_mib"], c["mib"]) for c in rec["rs_caches"]]
    assert [(c.cells, c.layers, c.n_seq_max, c.mib("r"), c.mib("s"), c.mib()) for c in pred.rs_caches] == rs
    lines = [ln for ln in (ROOT / "fixtures" / "llamacpp" / "synth" / rec["log"]).read_text().splitlines()
             if ln in set(printout(pred))]
    assert lines == [ln for ln in printout(pred) if "compute" not in ln or _modelled(FILES[rec["model"]]["arch"])]


@pytest.mark.parametrize("run", RUNS, ids=[p.stem for p in RUNS])
def test_exact_bytes(run, synth):
    rec = json.loads(run.read_text())
    by = rec["exact_bytes"]["by_buffer_type"]
    got = _exact(_predict(synth, rec))
    if not _modelled(FILES[rec["model"]]["arch"]):
        by = {k: dict(v, compute=0) for k, v in by.items()}
    assert got == by


@pytest.mark.parametrize("name,i,run", HELD, ids=[f"{n}-{i}-{r['settings']['model']}" for n, i, r in HELD])
def test_heldback_exact_bytes(name, i, run, synth):
    s = run["settings"]
    if run["rc"]:
        pytest.skip(f"llama.cpp refused this setting (rc {run['rc']})")
    got = _exact(predict_buffers(synth(s["model"]), settings(s)))
    by = run["by_buffer_type"]
    if not _modelled(FILES[s["model"]]["arch"]):
        by = {k: dict(v, compute=0) for k, v in by.items()}
    assert got == by


GUARDS = [("mistral3-tiny", "mistral3.attention.temperature_scale", 0.1),
          ("olmo2-tiny", "olmo2.attention.sliding_window", 4096),
          ("lfm2-tiny", "lfm2.attention.sliding_window", 512),
          ("llama-moe-tiny", "llama.expert_shared_feed_forward_length", 64),
          ("qwen2-tiny", "qwen2.expert_count", 4),
          ("gemma2-tiny", "gemma2.attention.sliding_window_pattern", 3)]


def test_default_swa_pattern_key_changes_nothing(synth):
    """gemma2.attention.sliding_window_pattern equal to gemma2's own pattern (2, or its per-layer flags)."""
    import dataclasses

    f = synth("gemma2-tiny")
    s = LlamaCppSettings(n_ctx=4096, n_batch=512, n_ubatch=512, flash_attn="on")
    base = predict_buffers(f, s).buffers
    for v in (2, [True, False, True, False]):
        g = dataclasses.replace(f, metadata={**f.metadata, "gemma2.attention.sliding_window_pattern": v})
        assert predict_buffers(g, s).buffers == base


@pytest.mark.parametrize("name,key,value", GUARDS, ids=[k for _, k, _ in GUARDS])
def test_graph_changing_keys_leave_compute_not_modelled(name, key, value, synth):
    """A key that makes llama.cpp build another graph (read in load_arch_hparams / the builder) is not guessed:
    the compute buffer is left out with a warning (and a KV cache that llama.cpp would split is marked)."""
    import dataclasses

    f = synth(name)
    g = dataclasses.replace(f, metadata={**f.metadata, key: value})
    pred = predict_buffers(g, LlamaCppSettings(n_ctx=4096, n_batch=512, n_ubatch=512, flash_attn="on"))
    assert [b.kind for b in pred.buffers if b.kind == "compute"] == []
    assert any(w.startswith("compute buffer:") and key in w or "expert" in w for w in pred.warnings)
    kv = {b.status for b in pred.buffers if b.func == "llama_kv_cache"}
    assert kv == ({"not modelled"} if "sliding_window" in key else {"exact"})


GRAPHS = sorted((SYN / "graphs").glob("*.json.gz"))


@pytest.mark.parametrize("path", GRAPHS, ids=[p.name[:-8] for p in GRAPHS])
def test_reserve_graph_equals_llamacpp_node_by_node(path, synth):
    """The rebuilt prompt-processing reserve graph (n_ctx 512, n_ubatch 512) against llama.cpp's own
    (llama_graph_reserve, dumped by tools/lcpp_bytes.cpp): every node's op, type and shape in graph order, and the
    input leafs in leaf order; each node's flags too (an output is never freed)."""
    from inspector.memory.llamacpp import graph_shape, hparams, kv_caches, resolve_context
    from inspector.memory.llamacpp_graph import build_graph

    rec = json.loads(gzip.decompress(path.read_bytes()))
    hp, s = hparams(synth(rec["model"])), settings(rec["settings"])
    ctx = resolve_context(hp, s)
    g = build_graph(graph_shape(hp, ctx, kv_caches(hp, ctx, s, ctx.n_ubatch), s, min(ctx.n_ctx, ctx.n_ubatch)))
    assert [[t.op, t.type, list(t.ne), t.flags] for t in g.nodes] == rec["nodes"]
    assert [[t.op, t.type, list(t.ne)] for t in g.leafs if not t.ext] == rec["input_leafs"]


def test_unchecked_architecture_kv_is_assumed_and_compute_not_modelled(synth):
    """An architecture with no template (here qwen2's header renamed to exaone4): compute left out, the KV cache
    shown as the generic single cache and marked assumed; model and output stay exact."""
    import dataclasses

    f = synth("qwen2-tiny")
    meta = {("exaone4" + k[len("qwen2"):] if k.startswith("qwen2.") else k): v for k, v in f.metadata.items()}
    g = dataclasses.replace(f, metadata={**meta, "general.architecture": "exaone4"})
    pred = predict_buffers(g, LlamaCppSettings(n_ctx=4096, n_batch=512, n_ubatch=512, flash_attn="on"))
    assert {b.kind: b.status for b in pred.buffers} == {"model": "exact", "output": "exact", "kv": "assumed"}
    assert any(w.startswith("compute buffer: no graph template") for w in pred.warnings)
