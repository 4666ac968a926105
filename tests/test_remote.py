"""Tests for inspector.checkpoint.hub: only the error paths and the metadata conversion (no network)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from inspector.errors import InspectError
from inspector.checkpoint.hub import headers_from_repo_metadata, read_hub_headers

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60
    )


PROBE = """
import sys, time
from inspector.checkpoint.hub import read_hub_headers
from inspector.errors import InspectError
t = time.time()
try:
    read_hub_headers("Qwen/Foo", timeout={timeout})
    print("NO ERROR")
except InspectError as e:
    print("InspectError|" + str(e) + "|%.1f" % (time.time() - t))
"""


def test_offline_mode_is_one_line_error():
    out = _run(PROBE.format(timeout=10), HF_HUB_OFFLINE="1")
    kind, msg, _ = out.stdout.strip().split("|")
    assert kind == "InspectError", out.stderr
    assert msg.startswith("Qwen/Foo: cannot reach the Hugging Face Hub"), msg


def test_dead_network_fails_fast():
    # a port nothing listens on: the connection is refused at once
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _run(PROBE.format(timeout=10), HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_OFFLINE="0")
    kind, msg, secs = out.stdout.strip().split("|")
    assert kind == "InspectError", out.stderr
    assert msg == "Qwen/Foo: cannot reach the Hugging Face Hub (offline?)"
    assert float(secs) < 10


def test_silent_server_is_cut_off_by_the_timeout():
    # a server that accepts connections and never answers: the call must give up on time
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def accept_forever():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept_forever, daemon=True)
    t.start()
    try:
        out = _run(PROBE.format(timeout=2), HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_OFFLINE="0")
    finally:
        stop.set()
        t.join()
        for c in accepted:
            c.close()
        server.close()
    kind, msg, secs = out.stdout.strip().split("|")
    assert kind == "InspectError", out.stderr
    assert msg.startswith("Qwen/Foo: cannot reach the Hugging Face Hub"), msg
    assert float(secs) < 6


def test_hung_call_gives_up_in_process(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_safetensors_metadata", lambda *a, **k: time.sleep(5))
    t = time.time()
    with pytest.raises(InspectError, match=r"^org/m: cannot reach the Hugging Face Hub \(no answer within 0.3 s"):
        read_hub_headers("org/m", timeout=0.3)
    assert time.time() - t < 2


@pytest.mark.parametrize(
    "exc_name,needle",
    [
        ("RepositoryNotFoundError", "no such model repo"),
        ("GatedRepoError", "gated"),
        ("RevisionNotFoundError", "no such revision"),
        ("NotASafetensorsRepoError", "no model.safetensors"),
        ("SafetensorsParsingError", "could not be parsed"),
        ("OfflineModeIsEnabled", "HF_HUB_OFFLINE"),
    ],
)
def test_hub_errors_become_one_line(monkeypatch, exc_name, needle):
    import huggingface_hub
    from huggingface_hub import errors as hf

    cls = getattr(hf, exc_name)

    def boom(*a, **k):
        try:
            raise cls("multi\nline message", response=SimpleNamespace(status_code=404, headers={}, request=None))
        except TypeError:
            raise cls("multi\nline message") from None

    monkeypatch.setattr(huggingface_hub, "get_safetensors_metadata", boom)
    with pytest.raises(InspectError) as exc:
        read_hub_headers("org/model", revision="v1", timeout=5)
    msg = str(exc.value)
    assert msg.startswith("org/model@v1: ") and needle in msg and "\n" not in msg


def test_unexpected_exception(monkeypatch):
    import huggingface_hub

    def boom(*a, **k):
        raise RuntimeError("weird\nthing")

    monkeypatch.setattr(huggingface_hub, "get_safetensors_metadata", boom)
    with pytest.raises(InspectError) as exc:
        read_hub_headers("org/model", timeout=5)
    assert "\n" not in str(exc.value) and "RuntimeError" in str(exc.value)


def _tensor(dtype, shape, begin):
    from huggingface_hub.utils import TensorInfo as HubTensorInfo

    size = {"F32": 4, "BF16": 2}[dtype]
    n = 1
    for d in shape:
        n *= d
    return HubTensorInfo(dtype=dtype, shape=list(shape), data_offsets=(begin, begin + n * size))


def test_conversion_from_hub_metadata_sharded():
    from huggingface_hub.utils import SafetensorsFileMetadata, SafetensorsRepoMetadata

    f1 = SafetensorsFileMetadata(
        metadata={"format": "pt"},
        tensors={"model.embed_tokens.weight": _tensor("BF16", (10, 4), 0), "model.norm.weight": _tensor("F32", (4,), 80)},
    )
    f2 = SafetensorsFileMetadata(metadata={}, tensors={"lm_head.weight": _tensor("BF16", (10, 4), 0), "stray": _tensor("F32", (1,), 80)})
    meta = SafetensorsRepoMetadata(
        metadata={"total_size": 176},
        sharded=True,
        weight_map={
            "model.embed_tokens.weight": "a.safetensors",
            "model.norm.weight": "a.safetensors",
            "lm_head.weight": "b.safetensors",
            "missing": "b.safetensors",
        },
        files_metadata={"b.safetensors": f2, "a.safetensors": f1},
    )
    h = headers_from_repo_metadata(meta)
    assert h.format == "safetensors" and h.files == ["a.safetensors", "b.safetensors"]
    emb = h.tensors["model.embed_tokens.weight"]
    assert emb.shape == (10, 4) and emb.dtype == "BF16" and emb.nbytes == 80 and emb.file == "a.safetensors"
    assert h.metadata["model.safetensors.index.json"] == {"total_size": 176}
    assert h.metadata["a.safetensors"] == {"format": "pt"}
    assert sorted(h.problems) == [
        '"missing": the index lists it in b.safetensors, but that shard does not hold it',
        '"stray": in b.safetensors but not listed in the index',
    ]


def test_conversion_single_file_and_via_read_hub_headers(monkeypatch):
    import huggingface_hub
    from huggingface_hub.utils import SafetensorsFileMetadata, SafetensorsRepoMetadata

    f = SafetensorsFileMetadata(metadata={}, tensors={"w": _tensor("F32", (2, 3), 0)})
    meta = SafetensorsRepoMetadata(
        metadata=None, sharded=False, weight_map={"w": "model.safetensors"}, files_metadata={"model.safetensors": f}
    )
    seen = {}

    def fake(repo_id, revision=None, **kw):
        seen.update(repo_id=repo_id, revision=revision, **kw)
        return meta

    monkeypatch.setattr(huggingface_hub, "get_safetensors_metadata", fake)
    h = read_hub_headers("org/m", revision="abc", timeout=7)
    assert seen["repo_id"] == "org/m" and seen["revision"] == "abc" and seen["timeout"] == 7
    assert h.problems == [] and h.tensors["w"].shape == (2, 3) and h.tensors["w"].nbytes == 24
