"""`-o FILE`: what an output file may and may not replace.

Root cause 3 of issue 17: the atomic write (temporary file + rename) replaced whatever the path was.
Now a regular file (or a new path) is replaced atomically with the umask's permissions (an existing
file keeps its own), a symlink is followed and its target written (the link stays), a FIFO or a
device is written directly and stays what it is. Cases run through the CLI in the capped driver.
"""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest
from harden import assert_refused, fifo, run_cases

PARAMS = ["params", "qwen2.5-0.5b", "-f", "json", "-o"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("harden-out")
    (root / "target.json").write_text("old")
    (root / "link.json").symlink_to("target.json")
    (root / "dangling.json").symlink_to("created-by-link.json")
    (root / "kept-mode.json").write_text("old")
    os.chmod(root / "kept-mode.json", 0o604)
    fifo(root / "pipe")
    fifo(root / "pipe-without-reader")
    received: list[bytes] = []

    def read_pipe():
        with open(root / "pipe", "rb") as f:  # blocks until the case opens the FIFO for writing
            received.append(f.read())

    reader = threading.Thread(target=read_pipe, daemon=True)
    reader.start()
    device = root / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own (root only)
    except (PermissionError, OSError):
        device = None
    cases = [
        {"id": "new", "args": [*PARAMS, str(root / "new.json")]},
        {"id": "link", "args": [*PARAMS, str(root / "link.json")]},
        {"id": "dangling", "args": [*PARAMS, str(root / "dangling.json")]},
        {"id": "kept-mode", "args": [*PARAMS, str(root / "kept-mode.json")]},
        {"id": "pipe", "args": [*PARAMS, str(root / "pipe")]},
        {"id": "pipe-without-reader", "args": [*PARAMS, str(root / "pipe-without-reader")]},
        {"id": "stdout", "args": [*PARAMS, "/proc/self/fd/1"]},
        {"id": "missing-dir", "args": [*PARAMS, str(root / "no" / "such" / "out.json")]},
    ]
    if device is not None:
        cases.append({"id": "device", "args": [*PARAMS, str(device)]})
    results = run_cases(cases, setup="import os; os.umask(0o027)")
    reader.join(10)
    return results, root, received, device


def _report(text: str) -> dict:
    data = json.loads(text)
    assert data["model"] == "Qwen/Qwen2.5-0.5B"
    return data


def test_new_file_respects_the_umask(batch):
    results, root, _, _ = batch
    assert results["new"].rc == 0, results["new"].stderr
    _report((root / "new.json").read_text())
    assert stat.S_IMODE(os.stat(root / "new.json").st_mode) == 0o640  # 0666 & ~0027


def test_existing_file_keeps_its_mode(batch):
    results, root, _, _ = batch
    assert results["kept-mode"].rc == 0
    _report((root / "kept-mode.json").read_text())
    assert stat.S_IMODE(os.stat(root / "kept-mode.json").st_mode) == 0o604


def test_symlink_is_followed_not_replaced(batch):
    results, root, _, _ = batch
    assert results["link"].rc == 0 and results["dangling"].rc == 0
    assert os.path.islink(root / "link.json") and os.path.islink(root / "dangling.json")
    _report((root / "target.json").read_text())
    _report((root / "created-by-link.json").read_text())


def test_fifo_is_written_not_replaced(batch):
    results, root, received, _ = batch
    assert results["pipe"].rc == 0, results["pipe"].stderr
    assert stat.S_ISFIFO(os.stat(root / "pipe").st_mode)
    assert received and _report(received[0].decode())


def test_fifo_without_reader_is_one_line(batch):
    results, root, _, _ = batch
    assert_refused(results["pipe-without-reader"], "pipe-without-reader", "no reader")
    assert stat.S_ISFIFO(os.stat(root / "pipe-without-reader").st_mode)


def test_stdout_path_is_written_directly(batch):
    results, _, _, _ = batch
    assert results["stdout"].rc == 0, results["stdout"].stderr
    _report(results["stdout"].stdout)


def test_device_stays_a_device(batch):
    results, _, _, device = batch
    if device is None:
        pytest.skip("cannot make a device node here (not root)")
    assert results["device"].rc == 0, results["device"].stderr
    assert stat.S_ISCHR(os.stat(device).st_mode)


def test_missing_directory_is_one_line_and_leaves_nothing(batch):
    results, root, _, _ = batch
    assert_refused(results["missing-dir"], "does not exist")
    assert not [p for p in os.listdir(root) if p.endswith(".tmp")]
