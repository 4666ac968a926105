"""Symlinks out of a model directory or the HF cache (cause 9 of the hardening issue).

Reads: a config.json, preprocessor_config.json, weights file, GGUF, index, tokenizer file or chat
template found in a model directory is read only when its real path stays in the directory (or, in
a cache snapshot, lies directly in the repo's blobs); a link to a private file is refused in one
line, and the private file is never opened. Writes into the HF cache (our header cache and refs)
never follow a planted link: the link's target keeps its bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import tiny_config
from harden import assert_refused, run_cases

from inspector.errors import InspectError
from inspector.files import confined, read_private, write_private

SECRET = "SECRET-d41d8cd98f00"


def _model_dir(root: Path, name: str) -> Path:
    from hub_repos import tiny_tokenizer

    d = root / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(tiny_config("llama", vocab_size=101, eos_token_id=1)))
    tiny_tokenizer(d, 101)
    return d


def _link(path: Path, target: Path) -> None:
    if path.exists():
        path.unlink()
    path.symlink_to(target)


# reads the chat template and the tokenizer config
CHAT_TRACE = ["trace", "hi", "-m", "DIR", "--chat", "--device", "meta", "-f", "json"]
# name -> (the file of the model directory linked out of it, its private target, the command that reads it)
OUTSIDE = {
    "config": ("config.json", "config.json", ["params", "DIR", "-f", "json"]),
    "template": ("chat_template.jinja", "secret.jinja", CHAT_TRACE),
    "tokconfig": ("tokenizer_config.json", "tokenizer_config.json", CHAT_TRACE),
    "weights": ("model.safetensors", "w.safetensors", ["verify", "DIR", "-f", "json"]),
    "listed": ("part-a.safetensors", "w.safetensors", ["verify", "DIR", "-f", "json"]),
    "gguf": ("model.gguf", "w.safetensors", ["verify", "DIR", "-f", "json"]),
    "index": ("model.safetensors.index.json", "config.json", ["verify", "DIR", "-f", "json"]),
    "pre": ("preprocessor_config.json", "pre.json", ["config", "DIR", "-f", "json"]),
}


@pytest.fixture(scope="module")
def links(tmp_path_factory):
    root = tmp_path_factory.mktemp("links")
    private = root / "private"
    private.mkdir()
    (private / "config.json").write_text(json.dumps(tiny_config("llama", vocab_size=101)))
    (private / "secret.jinja").write_text(SECRET + " {{ messages[0]['content'] }}")
    (private / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|eos|>", "chat_template": SECRET}))
    (private / "pre.json").write_text(json.dumps({"note": SECRET}))
    from safetensors.torch import save_file
    import torch

    save_file({"x": torch.zeros(2)}, str(private / "w.safetensors"))

    cases, dirs = [], {}

    def case(name: str, args: list[str]) -> None:
        cases.append({"id": name, "args": args})

    for name, (link, target, args) in OUTSIDE.items():
        d = dirs[name] = _model_dir(root, name)
        _link(d / link, private / target)
        case(name, [str(d) if a == "DIR" else a for a in args])
    d = dirs["inside"] = _model_dir(root, "inside")  # a link that stays inside is fine
    (d / "sub").mkdir()
    (d / "config.json").rename(d / "sub" / "config.json")
    _link(d / "config.json", Path("sub") / "config.json")
    case("inside", ["params", str(d), "-f", "json"])
    results = run_cases(cases, timeout=30)
    yield results, private, dirs


NEEDLES = {name: link for name, (link, _, _) in OUTSIDE.items()}


@pytest.mark.parametrize("name", list(NEEDLES))
def test_a_link_out_of_the_model_directory_is_refused_unread(links, name):
    results, private, _ = links
    r = results[name]
    assert_refused(r, NEEDLES[name], "outside")
    assert SECRET not in r.stdout + r.stderr
    assert not r.opened_under(private), r.opened_under(private)


def test_a_link_that_stays_inside_is_followed(links):
    results, _, _ = links
    assert results["inside"].rc == 0, results["inside"].stderr


def _snapshot(root: Path) -> tuple[Path, Path]:
    repo = root / "models--org--x"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (repo / "blobs" / ("b" * 40)).write_text("{}")
    return repo, snap


def test_a_cache_snapshot_may_link_into_its_blobs_only(tmp_path):
    repo, snap = _snapshot(tmp_path)
    (snap / "config.json").symlink_to(Path("../..") / "blobs" / ("b" * 40))
    assert confined(snap, snap / "config.json") == snap / "config.json"
    outside = tmp_path / "private.json"
    outside.write_text(SECRET)
    (snap / "tokenizer_config.json").symlink_to(outside)
    with pytest.raises(InspectError, match="outside"):
        confined(snap, snap / "tokenizer_config.json")
    (repo / "blobs" / "deep").mkdir()
    (repo / "blobs" / "deep" / "f").write_text("{}")
    (snap / "nested.json").symlink_to(repo / "blobs" / "deep" / "f")  # the blobs are flat
    with pytest.raises(InspectError, match="outside"):
        confined(snap, snap / "nested.json")


def test_a_hub_config_linked_out_of_the_cache_is_refused(tmp_path, monkeypatch):
    from inspector import source

    _, snap = _snapshot(tmp_path)
    outside = tmp_path / "private.json"
    outside.write_text(json.dumps(tiny_config("llama")))
    (snap / "config.json").symlink_to(outside)
    import inspector.hub

    monkeypatch.setattr(inspector.hub, "hub_download", lambda repo, name, **kw: snap / name)
    with pytest.raises(InspectError, match="config.json: refusing the cached config.json"):
        source.resolve("org/x")


def test_cache_writes_never_follow_a_planted_link(tmp_path):
    root = tmp_path / "hub"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (root / "models--o--n" / ".llm-inspector" / "refs").mkdir(parents=True)
    (root / "models--o--n" / ".llm-inspector" / "refs" / "main").symlink_to(victim)
    with pytest.raises(InspectError, match="a symlink, not a regular file"):
        write_private(root / "models--o--n" / ".llm-inspector" / "refs" / "main", "c" * 40, root)
    assert victim.read_text() == "precious"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "models--o--m").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InspectError, match="a symlink, not a directory"):
        write_private(root / "models--o--m" / ".llm-inspector" / "headers.json", "{}", root)
    assert list(elsewhere.iterdir()) == []
    write_private(root / "models--o--p" / ".llm-inspector" / "refs" / "main", "d" * 40, root)
    assert (root / "models--o--p" / ".llm-inspector" / "refs" / "main").read_text() == "d" * 40
    with pytest.raises(OSError):
        read_private(root / "models--o--n" / ".llm-inspector" / "refs" / "main")


def test_the_header_cache_skips_a_planted_link(tmp_path, monkeypatch):
    """cache_save / cache_ref_save / cached_ref through the real HF_HUB_CACHE: a link is neither
    written through nor read."""
    from huggingface_hub import constants

    from inspector.checkpoint import hub_cache

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    victim = tmp_path / "victim.txt"
    victim.write_text("e" * 40)
    refs = hub_cache.cache_root("o/n") / "refs"
    refs.mkdir(parents=True)
    (refs / "main").symlink_to(victim)
    assert hub_cache.cached_ref("o/n", None) is None  # a commit behind a link is not believed
    hub_cache.cache_save("o/n", None, "f" * 40, None, {"model.safetensors": (8, b"{}")})
    assert victim.read_text() == "e" * 40 and (refs / "main").is_symlink()
    assert hub_cache.cache_load("o/n", "f" * 40) is not None  # the headers themselves were written
    os.unlink(refs / "main")
    hub_cache.cache_ref_save("o/n", None, "f" * 40)
    assert hub_cache.cached_ref("o/n", None) == "f" * 40


def test_the_tokenizer_cache_never_writes_or_reads_through_a_link(tmp_path):
    from inspector.tokenizer import qwen_bpe

    victim = tmp_path / "victim.json"
    victim.write_text("precious")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "qwen2-tokenizer-x.json").symlink_to(victim)
    qwen_bpe._write_cache(cache / "qwen2-tokenizer-x.json", "{}")
    assert victim.read_text() == "precious"
    with pytest.raises(OSError):
        read_private(cache / "qwen2-tokenizer-x.json", "tokenizer")
    qwen_bpe._write_cache(cache / "qwen2-tokenizer-y.json", "{}")
    assert (cache / "qwen2-tokenizer-y.json").read_text() == "{}"
