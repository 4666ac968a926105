"""The commands shown in README.md and docs/*.md, parsed, run and compared with the output shown.

Conventions of the docs (so that an example is one thing, and cannot drift):

- A shell example is a fenced block whose info string starts with ``console``. Each line starting with
  ``$ `` is a command (a trailing ``\\`` continues it); the lines after it, up to the next command,
  are its output as the terminal shows it. A trailing ``# exit N`` comment gives the expected exit
  code (default 0).
- ``$ NAME=$(...)`` defines a variable for the rest of the page (the file of an installed package).
- When a command's output is markdown (``--format md``), the block holds the command alone and the
  rendered output follows between ``<!-- output -->`` and ``<!-- /output -->``.
- Info-string words change the comparison: ``timings`` (decimal numbers and percentages are measurements
  and are not compared), ``hub`` (needs the Hugging Face Hub: shown, not run), ``no-output`` (run, output not
  shown), ``install`` (a pip command: not run by the suite).

Comparison ignores what differs between machines and days, and nothing else: the width of table
padding and rules (terminal widths differ), the directory of a page variable's path, where the clone,
Python, the home and the temporary directory are, the versions of transformers, torch, peft,
deepspeed and llm-inspector, the byte count in a `wrote FILE (N bytes` line (a page embeds the paths
it was given), and in ``timings`` blocks the order of table rows (rows sorted by a measured time) and
where a text line wraps (a terminal wraps a note at a width that depends on the digits of the measured
numbers in it). ``pytest tests/test_docs_examples.py --update-docs`` writes the real outputs back into
the pages.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```console([^\n]*)\n(.*?)^```\n", re.S | re.M)
REGION = re.compile(r"\s*<!-- output -->\n(.*?)<!-- /output -->\n", re.S)
ASSIGN = re.compile(r"^([A-Z][A-Z0-9_]*)=\$\((.*)\)$", re.S)
EXIT = re.compile(r"\s+#\s*exit (\d+)\s*$")
DECIMAL = re.compile(r"\d[\d,]*\.\d+|\d+%")
VERSION = re.compile(r"(?<![-\w])(transformers|torch|peft|deepspeed|llm-inspector) \d+(?:\.\d+)+\S*")
WROTE = re.compile(r"(^wrote \S+ \()\d[\d,]* bytes", re.M)
COLUMNS = 100


@dataclass
class Example:
    """One command of a page, the output the page shows, and where that output sits in the page."""

    page: Path
    line: int
    command: str
    exit_code: int
    shown: str
    span: tuple[int, int]  # character offsets of the shown output in the page text
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def id(self) -> str:
        return f"{self.page.name}:{self.line}"


def _commands(body: str) -> list[tuple[int, str, int, int]]:
    """(line offset, command, start, end of its output) for each `$ ` command of a console block body."""
    lines, out, pos = body.splitlines(keepends=True), [], 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            start_line, command = i, line[2:].rstrip("\n")
            pos += len(line)
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1].rstrip() + " " + lines[i].strip()
                pos += len(lines[i])
            out.append((start_line, command, pos, pos))
        else:
            pos += len(line)
            if out:
                out[-1] = (*out[-1][:3], pos)
        i += 1
    return out


def parse(page: Path) -> list[Example]:
    text = page.read_text(encoding="utf-8")
    examples = []
    for fence in FENCE.finditer(text):
        flags = frozenset(fence.group(1).split())
        body_start = fence.start(2)
        first_line = text.count("\n", 0, body_start) + 1
        found = _commands(fence.group(2))
        region = REGION.match(text, fence.end())
        for n, (offset, command, start, end) in enumerate(found):
            code = EXIT.search(command)
            command = EXIT.sub("", command) if code else command
            span = (body_start + start, body_start + end)
            into_region = region is not None and n == len(found) - 1 and start == end
            if into_region:
                span = region.span(1)
            examples.append(Example(page, first_line + offset, command, int(code.group(1)) if code else 0,
                                    text[span[0]:span[1]], span, flags | ({"md"} if into_region else set())))
    return examples


def environment(variables: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS=str(COLUMNS), NO_COLOR="1", TERM="dumb", **variables)
    env.pop("INSPECT_DEBUG", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


_WARM: list = []


def _warm_path() -> str | None:
    """The directory of the warm `inspect` shim (tests/warm_cli.py), started once per test process;
    None when INSPECT_DOCS_COLD=1 asks for the installed `inspect` in every command."""
    if os.environ.get("INSPECT_DOCS_COLD") == "1":
        return None
    if not _WARM:
        import atexit

        from warm_cli import WarmCli

        _WARM.append(WarmCli(environment({})))
        atexit.register(_WARM[0].close)
    return str(_WARM[0].dir)


def command_environment(variables: dict[str, str]) -> dict[str, str]:
    """The environment of a page's command: the pages' own, the warm `inspect` first on PATH."""
    env = environment(variables)
    warm = _warm_path()
    if warm is not None:
        env["PATH"] = f"{warm}{os.pathsep}{env['PATH']}"
    return env


def define(example: Example, variables: dict[str, str], shared: Path | None = None) -> bool:
    """Run a `NAME=$(...)` line and remember its value; False when the line is not an assignment.

    With `shared` (a directory all pytest-xdist workers of one run see), the line runs once per run:
    the first worker to need it runs it under a file lock and stores its value, the others read it
    (docs/verify.md's `python tests/peft_adapters.py ...` costs ~7 s, mostly importing peft)."""
    match = ASSIGN.match(example.command)
    if not match:
        return False
    if shared is None:
        variables[match.group(1)] = _defined(example, match.group(2), variables)
        return True
    import fcntl
    import hashlib

    key = hashlib.sha256(repr((match.group(2), sorted(variables.items()))).encode()).hexdigest()[:24]
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        value = shared / f"{key}.value"
        if not value.exists():
            value.write_text(_defined(example, match.group(2), variables), encoding="utf-8")
        variables[match.group(1)] = value.read_text(encoding="utf-8")
    return True


def _defined(example: Example, command: str, variables: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                          env=environment(variables), timeout=120)
    assert done.returncode == 0, f"{example.id}: {command} failed: {done.stderr}"
    return done.stdout.strip()


def run(example: Example, variables: dict[str, str], cwd: Path) -> tuple[int, str]:
    """The command's exit code and what the terminal shows (stdout, then stderr), run in `cwd`, where
    `fixtures/` is the repository's (the pages run from a clone's root)."""
    if not (cwd / "fixtures").exists():
        (cwd / "fixtures").symlink_to(ROOT / "fixtures")
    done = subprocess.run(["bash", "-c", example.command], capture_output=True, text=True, cwd=cwd,
                          env=command_environment(variables), timeout=600)
    return done.returncode, done.stdout + done.stderr


def _drop_directories(text: str, variables: dict[str, str]) -> str:
    """`text` with the directory of each page variable's path left out (where pip put a package)."""
    for value in sorted(variables.values(), key=len, reverse=True):
        if "/" in value:
            text = text.replace(str(Path(value).parent) + "/", "")
    return text


def _drop_locations(text: str) -> str:
    """`text` with the places that differ between machines named, not spelled: the clone, the Python
    installation (site-packages), the user's home and the temporary directory."""
    places = {str(ROOT): "<repo>", sys.prefix: "<python>", sys.base_prefix: "<python>",
              str(Path.home()): "<home>", tempfile.gettempdir(): "<tmp>"}
    for place in sorted(places, key=len, reverse=True):
        if len(place) > 1:
            text = text.replace(place, places[place])
    return text


TABLE = ("|", "│", "┃", "┏", "┡", "├", "└", "+")


def _sorted_rows(table: list[str]) -> list[str]:
    """The rows of one table with a fixed order: its header (a first row above a rule) stays first."""
    data = [i for i, line in enumerate(table) if any(c.isalnum() for c in line)]
    if data and data[0] == 0 and len(table) > 1 and not any(c.isalnum() for c in table[1]):
        data = data[1:]
    out = list(table)
    for i, line in zip(data, sorted(table[i] for i in data)):
        out[i] = line
    return out


def _unordered_rows(lines: list[str]) -> list[str]:
    """Table rows of a timings block in a fixed order: rows sorted by a measured time may come in
    any order, so the rows of each table (after its header) are compared as a set."""
    out, table = [], []
    for line in lines + [""]:
        if line.startswith(TABLE):
            table.append(line)
            continue
        out += _sorted_rows(table)
        table = []
        if line:
            out.append(line)
    return out


def normalize(text: str, flags: frozenset[str], variables: dict[str, str]) -> str:
    """What must agree between the page and a run: words and numbers, not padding, where things are
    installed, versions of the libraries, nor sizes and order that depend on either or on time."""
    text = _drop_locations(_drop_directories(text, variables))
    text = VERSION.sub(r"\1 <version>", text)
    text = WROTE.sub(r"\1<n> bytes", text)  # a page embeds the paths it was given
    if "timings" in flags:
        text = DECIMAL.sub("<t>", text)
    text = re.sub(r"([-─━═]){3,}", r"\1\1\1", text)
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.strip().splitlines()]
    if "timings" in flags:
        lines = _unwrapped(lines)
    lines = [line for line in lines if line]
    return "\n".join(_unordered_rows(lines) if "timings" in flags else lines)


def _unwrapped(lines: list[str]) -> list[str]:
    """Each run of text lines (not table lines, not blank) as one line: a terminal wraps a long note at
    a width that depends on the digits of the measured numbers in it, so in a timings block where a
    line breaks is not compared; the words and their order are."""
    out: list[str] = []
    for line in lines:
        if line and not line.startswith(TABLE) and out and out[-1] and not out[-1].startswith(TABLE):
            out[-1] += " " + line
        else:
            out.append(line)
    return out


def shown_form(output: str, example: Example, variables: dict[str, str]) -> str:
    """The output as the page should show it: page variables' directories dropped, one trailing newline."""
    output = _drop_directories(output, variables)
    output = output.rstrip("\n") + "\n"
    return ("\n" + output + "\n") if "md" in example.flags else output


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
