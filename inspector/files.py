"""File I/O every module shares: bounded reads of regular files, JSON parsing, exact reads, atomic writes.

The one bounded, regular-file-only reader, JSON parsing, exact unbuffered binary reads, and writing an
output file; each failure is one InspectError line naming the file.

Reading. Only regular files are opened: a FIFO, a device, a socket or a directory is refused before
anything is opened (a FIFO would block forever, /dev/zero would never end), and the type is checked
again on the open descriptor. Every whole-file read is bounded by :data:`LIMITS`, a size chosen per
kind of file, far above any real file of that kind.

Confinement. A file found inside a model directory (config.json, weights, tokenizer files, a chat
template) is read only when its real path stays inside that directory, or, in a Hugging Face cache
snapshot (``<repo>/snapshots/<rev>/``), lies directly in the repo's real ``blobs`` directory
(:func:`confined`): a link to a private file is refused, never read. A file the user names itself is
read wherever it is.

Writing. :func:`write_private` writes a file of our own caches: a symlink (or anything but a regular
file) at the target or among its directories below the cache root is refused, and the file is
written to a temporary file beside it and renamed over it, so a planted link is never followed.
:func:`write_atomic` replaces a regular file (or creates a new one) through a temporary file
and a rename, with the umask's permissions (an existing file keeps its own). A symlink is followed:
the file it points to is replaced, the link stays. Devices and FIFOs (``-o /dev/null``,
``-o /dev/stdout``, a named pipe) are written directly, never replaced.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from inspector.errors import InspectError, printable

MIB = 1 << 20

#: Largest file accepted, per kind of file, in bytes.
LIMITS: dict[str, int] = {
    "config": 32 * MIB,  # config.json, preprocessor/generation/tokenizer_config.json, chat_template.json
    "index": 100_000_000,  # model.safetensors.index.json
    "tokenizer": 512 * MIB,  # tokenizer.json (the largest real ones are tens of MB)
    "template": 4 * MIB,  # chat_template.jinja
    "ranks": 64 * MIB,  # tiktoken BPE ranks
    "image": 256 * MIB,  # an image file
    "list": 4 * MIB,  # a text file of prompts or chat turns, a JSON file of expected answers
    "log": 64 * MIB,  # the head of a server log read for its start-up lines (inspector/memory/vllm_log.py)
}

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


PATH_MAX = 4095  # bytes of a whole path (Linux PATH_MAX less the NUL)
NAME_MAX = 255  # bytes of one path component


def local_path(path: str | os.PathLike, what: str = "") -> Path:
    """`path` as a Path (with ~ expanded), refused in one line when no file system could hold it:
    a NUL byte, a name component over NAME_MAX bytes or a whole path over PATH_MAX (where
    `Path.exists()` would raise ENAMETOOLONG, or ValueError). Every path a user gives goes through here."""
    label = f"{what} " if what else ""
    text = os.fspath(path)
    raw = os.fsencode(text) if isinstance(text, str) else text
    if b"\0" in raw:
        raise InspectError(f"{label}{printable(repr(text))}: a path cannot hold a NUL byte")
    if len(raw) > PATH_MAX:
        raise InspectError(f"{label}{printable(text, 80)}: path of {len(raw):,} bytes, over the "
                           f"{PATH_MAX:,}-byte limit")
    longest = max(raw.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        raise InspectError(f"{label}{printable(text, 80)}: a name of {len(longest):,} bytes in this path, over the "
                           f"{NAME_MAX}-byte limit")
    return Path(os.fsdecode(raw)).expanduser()


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO (named pipe)")."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refuse(path: Any, mode: int, what: str) -> InspectError:
    return InspectError(f"{printable(path)}: is {kind_of(mode)}, not a regular file; expected {what}")


def is_regular(path: str | os.PathLike) -> bool:
    """True when path (links followed) is a regular file; False when missing or anything else."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def open_regular(path: str | os.PathLike, what: str = "a file"):
    """Open a regular file unbuffered for reading; anything else is one InspectError line.

    The type is checked before opening (opening some devices has effects) and again on the open
    descriptor, with O_NONBLOCK so that a FIFO swapped in between cannot block the open.
    """
    where = printable(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, st.st_mode, what)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_BINARY", 0))
    except InspectError:
        raise
    except FileNotFoundError:
        raise InspectError(f"{where}: no such file") from None
    except (OSError, ValueError) as exc:
        raise InspectError(f"{where}: cannot read ({printable(getattr(exc, 'strerror', None) or exc)})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _refuse(path, mode, what)
    return os.fdopen(fd, "rb", buffering=0)


def open_binary(path: str | os.PathLike):
    """Open a regular file unbuffered for reading (a seam for tests that count bytes read)."""
    return open_regular(path)


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


def read_bytes(path: str | os.PathLike, kind: str, what: str | None = None) -> bytes:
    """The whole of a regular file, at most ``LIMITS[kind]`` bytes; anything else is one line."""
    limit = LIMITS[kind]
    what = what or f"a {kind} file"
    with open_regular(path, what) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise InspectError(f"{printable(path)}: {size:,} bytes, over the {limit:,}-byte limit for {what}")
            data = read_exact(f, min(size, limit) + 1)
        except OSError as exc:
            raise InspectError(f"{printable(path)}: cannot read ({printable(exc.strerror or exc)})") from None
    if len(data) > limit:
        raise InspectError(f"{printable(path)}: over the {limit:,}-byte limit for {what}")
    return data


def read_text(path: str | os.PathLike, kind: str, what: str | None = None) -> str:
    """A regular file as UTF-8 text, bounded like :func:`read_bytes`."""
    raw = read_bytes(path, kind, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InspectError(f"{printable(path)}: not UTF-8 text (bad byte at offset {exc.start})") from None


def read_small_text(path: str | os.PathLike, option: str) -> str:
    """A small UTF-8 text file named by a command-line option (prompts, chat turns, expected answers);
    a failure is one line starting with the option: "--turns t.txt: no such file"."""
    try:
        return read_text(path, "list", f"a text file for {option}")
    except InspectError as exc:
        raise InspectError(f"{option} {exc}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(Exception):
    pass


MAX_JSON_DEPTH = 64  # configs nest a few levels; tokenizer.json fewer than ten
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply `text`'s arrays and objects nest (brackets inside strings aside), without parsing."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_json(text: str, where: str) -> Any:
    """Parse JSON text: nesting bounded (MAX_JSON_DEPTH), a repeated key in an object refused (which
    one was meant?), every failure one line."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise InspectError(f"{where}: not valid JSON here (nested more than {MAX_JSON_DEPTH} levels deep)")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise InspectError(f"{where}: repeated key {printable(json.dumps(exc.args[0]))} in one JSON object "
                           "(which one was meant?)") from None
    except json.JSONDecodeError as exc:
        raise InspectError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise InspectError(f"{where}: not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer literal too long to convert
        raise InspectError(f"{where}: not valid JSON ({printable(str(exc).splitlines()[0])})") from None


def read_json(path: str | os.PathLike, kind: str = "config") -> Any:
    """Parse a JSON file (a regular file, bounded by ``LIMITS[kind]``); every failure is one line."""
    raw = read_bytes(path, kind, "a JSON file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InspectError(f"{printable(path)}: not UTF-8 text, expected JSON") from None
    return parse_json(text, printable(path))


# --------------------------------------------------------------------------- confinement


def hf_cache_blobs(directory: str | os.PathLike) -> str | None:
    """For a Hugging Face cache snapshot dir <repo>/snapshots/<rev>, the real path of <repo>/blobs,
    only when that is a directory itself: a ``blobs`` that is a link could point anywhere."""
    base = Path(directory).absolute()
    if base.parent.name != "snapshots":
        return None
    blobs = base.parent.parent / "blobs"
    if blobs.is_symlink() or not blobs.is_dir():
        return None
    return os.path.realpath(blobs)


def confined(directory: str | os.PathLike, path: str | os.PathLike, what: str = "a file") -> Path:
    """`path` (a file in `directory`), refused in one line when its real path leaves the directory's
    real path, other than directly into a cache snapshot's ``blobs`` (see the module docstring)."""
    real, root = os.path.realpath(path), os.path.realpath(directory)
    if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
        return Path(path)
    blobs = hf_cache_blobs(directory)
    if blobs is not None and os.path.dirname(real) == blobs:  # the cache's blobs are flat
        return Path(path)
    if not is_regular(real) and os.path.exists(real):
        return Path(path)  # a device, FIFO or directory: its reader refuses it by kind, unopened
    raise InspectError(f"{printable(path)}: refusing {what}: it is a link to {printable(real)}, outside "
                       f"{printable(directory)}")


# --------------------------------------------------------------------------- writing


def _what(mode: int) -> str:
    return "a symlink" if stat.S_ISLNK(mode) else kind_of(mode)


def write_private(path: str | os.PathLike, text: str, root: str | os.PathLike) -> None:
    """Write `text` to `path` under `root` (a cache of ours) without following any link: the target
    and every directory from `root` down to it must be real (no symlink); they are created as needed.
    Written to a temporary file in the same directory and renamed over the target. InspectError when
    a link (or a non-regular target) is in the way; OSError when the disk says no."""
    path, root = Path(path), Path(root)
    rel = path.relative_to(root)
    root.mkdir(parents=True, exist_ok=True)  # the cache root is the user's setting (HF_HUB_CACHE)
    current = root
    for part in rel.parts[:-1]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current)
            st = os.lstat(current)
        if not stat.S_ISDIR(st.st_mode):
            raise InspectError(f"{printable(current)}: is {_what(st.st_mode)}, not a directory: refusing to write "
                               "the cache file there")
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InspectError(f"{printable(path)}: is {_what(st.st_mode)}, not a regular file: refusing to replace it")
    _write_replacing(path, text.encode("utf-8"), st)  # a link put there meanwhile is replaced, never its target


def read_private(path: str | os.PathLike, kind: str = "config") -> bytes:
    """A file of our own caches, opened with O_NOFOLLOW (a planted link is not read), bounded by
    LIMITS[kind]; OSError when it is missing, a link or unreadable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                 | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb", buffering=0) as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        data = read_exact(f, LIMITS[kind] + 1)
    if len(data) > LIMITS[kind]:
        raise OSError(f"{path}: over {LIMITS[kind]} bytes")
    return data


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_direct(path: Path, data: bytes, st: os.stat_result | None) -> None:
    """Write to a device, a FIFO or a /dev, /proc path (e.g. /dev/stdout) without replacing it."""
    is_fifo = st is not None and stat.S_ISFIFO(st.st_mode)
    append = st is not None and stat.S_ISREG(st.st_mode)  # /dev/stdout redirected to a file
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | (os.O_APPEND if append else 0)
    fd = os.open(path, flags | (os.O_NONBLOCK if is_fifo else 0))
    try:
        if is_fifo:
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _write_replacing(target: Path, data: bytes, st: os.stat_result | None) -> None:
    directory = target.parent
    if not directory.is_dir():
        raise InspectError(f"{printable(target)}: directory {printable(directory)} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write text to path: a regular file (or a new one) is replaced atomically (readers see the old
    file or the new one, never half of it); devices and FIFOs are written directly; symlinks are
    followed to their target. See the module docstring."""
    path = Path(path)
    data = text.encode("utf-8")
    try:
        try:
            st: os.stat_result | None = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise InspectError(f"{printable(path)}: is a directory, cannot write a file there")
        if st is not None and stat.S_ISSOCK(st.st_mode):
            raise InspectError(f"{printable(path)}: is a socket, cannot write a file there")
        special = st is not None and not stat.S_ISREG(st.st_mode)
        if special or str(path.absolute()).startswith(("/dev/", "/proc/")):
            _write_direct(path, data, st)
        else:
            _write_replacing(Path(os.path.realpath(path)), data, st)
    except InspectError:
        raise
    except ValueError as exc:  # a NUL byte in the path
        raise InspectError(f"{printable(path)}: cannot write ({printable(exc)})") from None
    except OSError as exc:
        reason = "a FIFO with no reader" if exc.errno == errno.ENXIO else (exc.strerror or str(exc))
        raise InspectError(f"{printable(path)}: cannot write ({printable(reason)})") from None
