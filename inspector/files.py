"""File I/O every module shares: reading a JSON file, exact unbuffered binary reads, and writing a
text file atomically; each failure is one InspectError line naming the file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from inspector.errors import InspectError


def read_json(path: Path) -> Any:
    """Parse a JSON file; every failure is one line naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InspectError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InspectError(f"{path}: is a directory, expected a JSON file") from None
    except OSError as exc:
        raise InspectError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InspectError(f"{path}: not UTF-8 text, expected JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InspectError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def open_binary(path: str | os.PathLike):
    """Open a file unbuffered for reading (a seam for tests that count bytes read)."""
    return open(path, "rb", buffering=0)


def read_exact(f, n: int) -> bytes:
    """Up to n bytes from f, fewer only at the end of the file."""
    chunks = []
    while n > 0:
        b = f.read(n)
        if not b:
            break
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def write_atomic(path: Path, text: str) -> None:
    """Write text to path via a temporary file in the same directory and a rename: readers see the
    old file or the new one, never half of it."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InspectError(f"{path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise InspectError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InspectError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise


def read_small_text(path: str | os.PathLike, what: str, max_bytes: int = 1 << 20) -> str:
    """A small UTF-8 text file (a list of prompts, of chat turns, of expected answers), at most
    `max_bytes`; only a regular file is opened, and every failure is one line naming `what` and the path."""
    p = Path(path)
    if not p.exists():
        raise InspectError(f"{what} {path}: no such file")
    if not p.is_file():
        raise InspectError(f"{what} {path}: not a regular file")
    try:
        with open(p, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise InspectError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise InspectError(f"{what} {path}: larger than {max_bytes:,} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InspectError(f"{what} {path}: not UTF-8 text") from None
