"""A hostile Hub endpoint (tests/hubserver.py's faults): ids that would become cache paths, and answers
dripped a byte at a time.

huggingface_hub names cache files after the server's ETag / X-Linked-Etag / X-Repo-Commit and a model
info's `sha`; each of them, crafted to climb out of the cache, must be refused in one line (exit 2)
on every command path that downloads (config.json of params/config, verify's headers, the tokenizer
of trace, the weights of run), and nothing may appear at the target. A dripped answer must end at
the total deadline (INSPECT_HUB_DEADLINE). Every scenario is one command line of one child process
per group (tests/hub_cli.py), groups concurrently.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hub_repos import tiny_llama_repo
from hubserver import Fault, HubServer

from inspector.errors import InspectError
from inspector.hub.guard import HEX_ID, _normalized, deadline_s

ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).resolve().parent / "hub_cli.py"
GOOD = "a" * 40


def _escape(target: Path) -> str:
    return "../" * 30 + str(target).lstrip("/")


def _scenarios(target: Path) -> dict[str, tuple[list[Fault], list[str]]]:
    """name -> (faults, argv); the repo of each is evil/<name>."""
    bad = _escape(target)
    head = lambda name, file: rf"HEAD hub /evil/{name}/resolve/[^/]+/{file}"  # noqa: E731
    trace = ["trace", "hi", "--device", "cpu", "-f", "json", "-m"]
    return {
        "etag": ([Fault("headers", head("etag", "config.json"), headers={"ETag": f'"{bad}"'})],
                 ["params", "evil/etag"]),
        "weak-etag": ([Fault("headers", head("weak-etag", "config.json"), headers={"ETag": f'W/"{bad}"'})],
                      ["config", "evil/weak-etag"]),
        "bare-etag": ([Fault("headers", head("bare-etag", "config.json"), headers={"ETag": bad})],
                      ["verify", "evil/bare-etag"]),
        "linked": ([Fault("headers", head("linked", "config.json"), headers={"X-Linked-Etag": f'"{bad}"'})],
                   ["params", "evil/linked"]),
        "commit": ([Fault("headers", r"hub /evil/commit/resolve/", headers={"X-Repo-Commit": bad})],
                   ["config", "evil/commit"]),
        "commit-404": ([Fault("headers", r"hub /evil/commit-404/resolve/", headers={"X-Repo-Commit": bad})],
                       ["verify", "evil/commit-404"]),
        "sha": ([Fault("sha", r"/api/models/evil/sha", value=bad)], ["params", "evil/sha"]),
        "tokenizer": ([Fault("headers", head("tokenizer", "tokenizer.json"), headers={"ETag": f'"{bad}"'})],
                      [*trace, "evil/tokenizer"]),
        "weights": ([Fault("headers", head("weights", "model.safetensors"), headers={"X-Linked-Etag": f'"{bad}"'})],
                    ["run", "hi", "-n", "1", "-f", "json", "-m", "evil/weights"]),
    }


DRIPS = {  # name -> (fault, argv): the deadline is 2 s
    "drip-body": (Fault("drip", r"GET hub /slow/drip-body/resolve/main/config.json", delay=1.0), ["params", "slow/drip-body"]),
    "drip-headers": (Fault("drip-headers", r"/api/models/slow/drip-headers", delay=0.3), ["params", "slow/drip-headers"]),
    "drip-shard": (Fault("drip", r"GET cdn /lfs/slow/drip-shard/", delay=1.0), ["verify", "slow/drip-shard"]),
    "drip-head": (Fault("drip-headers", r"HEAD hub /slow/drip-head/resolve/main/config.json", delay=0.3),
                  ["config", "slow/drip-head"]),  # huggingface_hub's own request, under our watch
    "drip-weights": (Fault("drip", r"GET cdn /lfs/slow/drip-weights/", delay=1.0),
                     ["run", "hi", "-n", "1", "-m", "slow/drip-weights"]),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-hub")
    base = tiny_llama_repo(root / "base" / "tiny")
    target = tmp_path_factory.mktemp("outside") / "pwned"
    scenarios = _scenarios(target)
    for name in [*scenarios, *DRIPS]:
        if name != "commit-404":
            shutil.copytree(base, root / ("slow" if name in DRIPS else "evil") / name)
    shutil.copytree(base, root / "evil" / "commit-404", ignore=shutil.ignore_patterns("model.safetensors*"))
    with HubServer(root) as server:
        for faults, _ in scenarios.values():
            server.faults.extend(faults)
        server.faults.extend(f for f, _ in DRIPS.values())
        homes = tmp_path_factory.mktemp("homes")
        # each drip in a process of its own, as a user runs one command: a download given up at its
        # deadline is left to its daemon thread, whose later log lines would land in the next command's
        groups = [("hostile", [argv for _, argv in scenarios.values()], {}),
                  *((name, [argv], {"INSPECT_HUB_DEADLINE": "2"}) for name, (_, argv) in DRIPS.items()),
                  ("bad-env", [["params", "evil/etag"]], {"INSPECT_HUB_DEADLINE": "nan"})]
        with ThreadPoolExecutor(len(groups)) as pool:
            runs = dict(zip([g[0] for g in groups], pool.map(lambda g: _batch(server, homes / g[0], g[1], g[2]),
                                                             groups)))
    ran = {**dict(zip(scenarios, runs["hostile"])), **{name: runs[name][0] for name in DRIPS},
           "bad-env": runs["bad-env"][0]}
    yield ran, target, homes


def _batch(server: HubServer, home: Path, argvs: list[list[str]], env: dict[str, str]) -> list[dict]:
    p = subprocess.run([sys.executable, str(DRIVER), json.dumps(argvs)], cwd=ROOT, timeout=240,
                       env=server.env(home, PYTHONPATH=str(ROOT), HF_HUB_DOWNLOAD_TIMEOUT="5", **env),
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout)


def _one_line(r: dict) -> str:
    assert r["code"] == 2, (r["code"], r["stdout"][-500:], r["stderr"][-2000:])
    assert r["stderr"].count("\n") == 1 and "Traceback" not in r["stderr"], r["stderr"]
    return r["stderr"]


@pytest.mark.parametrize("name", list(_scenarios(Path("/x"))))
def test_a_hostile_id_is_refused_before_anything_is_written(hostile, name):
    ran, target, homes = hostile
    err = _one_line(ran[name])
    assert "not a 40- or 64-digit hex id" in err and "error: " in err, err
    assert not target.exists() and not target.parent.joinpath("x").exists()
    leaked = [p for p in homes.rglob("*") if "pwned" in p.name]
    assert not leaked, leaked


@pytest.mark.parametrize("name", list(DRIPS))
def test_a_dripped_answer_ends_at_the_deadline(hostile, name):
    ran, _, _ = hostile
    err = _one_line(ran[name])
    assert "INSPECT_HUB_DEADLINE" in err and ("slow/" + name) in err, err
    assert ran[name]["seconds"] < 60, ran[name]  # the bound: no hang (a drip would run for minutes)


def test_a_bad_deadline_value_is_one_line(hostile):
    err = _one_line(hostile[0]["bad-env"])
    assert "INSPECT_HUB_DEADLINE" in err and "'nan'" in err, err


@pytest.mark.parametrize("value, ok", [
    ('"' + GOOD + '"', True), ('W/"' + "b" * 64 + '"', True), (GOOD, True), ('"' + "a" * 39 + '"', False),
    ('W/"../../x"', False), ("//" + GOOD, True), ('"' + GOOD + '/.."', False), ('""', False), ("a" * 41, False),
])
def test_id_rule_is_what_huggingface_hub_makes_a_path_of(value, ok):
    from huggingface_hub.file_download import _normalize_etag

    assert _normalized(value) == _normalize_etag(value)
    assert bool(HEX_ID.fullmatch(_normalized(value))) is ok


@pytest.mark.parametrize("value", ["0", "-1", "inf", "abc", "1e9"])
def test_deadline_values_out_of_range_are_refused(monkeypatch, value):
    monkeypatch.setenv("INSPECT_HUB_DEADLINE", value)
    with pytest.raises(InspectError, match="INSPECT_HUB_DEADLINE"):
        deadline_s()
    monkeypatch.setenv("INSPECT_HUB_DEADLINE", "2.5")
    assert deadline_s() == 2.5


@pytest.mark.parametrize("method, url, headers, ok", [
    ("HEAD", "{hub}/o/n/resolve/main/config.json", {"ETag": '"' + GOOD + '"', "X-Repo-Commit": GOOD}, True),
    ("HEAD", "{hub}/o/n/resolve/main/config.json", {"ETag": '"../x"'}, False),
    ("GET", "{hub}/o/n/resolve/main/config.json", {"ETag": '"../x"'}, False),
    ("GET", "{hub}/api/models/o/n/tree/main", {"ETag": 'W/"5b1c-xyz"'}, True),  # the Hub's API ETags are opaque
    ("GET", "https://cdn-lfs.example/repos/ab/cd", {"ETag": '"0cc175b9c0f1b6a831c399e269772661"'}, True),  # S3 md5
    ("GET", "https://cdn-lfs.example/repos/ab/cd", {"X-Linked-Etag": '"../x"'}, False),
    ("GET", "https://cdn-lfs.example/repos/ab/cd", {"X-Repo-Commit": "main"}, False),
])
def test_which_answers_are_checked(monkeypatch, method, url, headers, ok):
    import httpx2

    from inspector.hub import guard

    monkeypatch.setattr(guard, "_hub_origin", lambda: ("https", "hub.example"))
    request = httpx2.Request(method, url.format(hub="https://hub.example"))
    response = httpx2.Response(200, headers=headers, request=request)
    if ok:
        guard.check_answer(response)
    else:
        with pytest.raises(InspectError, match="not a 40- or 64-digit hex id"):
            guard.check_answer(response)


def test_a_model_info_sha_is_checked_and_its_body_kept(monkeypatch):
    import httpx2

    from inspector.hub import guard

    monkeypatch.setattr(guard, "_hub_origin", lambda: ("https", "hub.example"))
    request = httpx2.Request("GET", "https://hub.example/api/models/o/n/revision/main")
    body = json.dumps({"sha": GOOD, "siblings": []}).encode()
    response = httpx2.Response(200, content=body, request=request)
    guard.check_answer(response)
    assert response.json()["sha"] == GOOD
    bad = httpx2.Response(200, content=json.dumps({"sha": "../../x"}).encode(), request=request)
    with pytest.raises(InspectError, match="model info 'sha'"):
        guard.check_answer(bad)
