"""Every command shown in README.md and docs/ runs, and prints what the page shows (tests/docs_examples.py
has the conventions). `--update-docs` writes the real outputs back into the pages.

Each command is a test of its own, so that pytest-xdist spreads a page's commands over the cores. A
command runs after what the page does before it to set up (its `NAME=$(...)` lines and the commands
that are not `inspect`, such as writing a prompt file or a tiny checkpoint), in a working directory
that the commands of one page share within one test process.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from docs_examples import ASSIGN, Example, define, normalize, pages, parse, run, shown_form

SKIP = {"hub": "needs the Hugging Face Hub", "install": "installs packages"}


def _cases() -> list:
    cases = []
    for page in pages():
        for n, example in enumerate(parse(page)):
            if not ASSIGN.match(example.command):
                marks = [pytest.mark.skip(reason=SKIP[f]) for f in sorted(SKIP.keys() & example.flags)]
                cases.append(pytest.param(page, n, id=example.id, marks=marks))
    return cases


def _is_setup(example: Example) -> bool:
    return bool(ASSIGN.match(example.command)) or not example.command.startswith("inspect ")


class _Workdirs:
    """One working directory per page, with the page's variables and the setup commands already run."""

    def __init__(self, root: Path):
        self.root, self.done = root, {}
        # under pytest-xdist, root is <basetemp>/popen-gwN/docsM: <basetemp> is this run's, shared by its workers
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        shared = worker and root.parent.name == f"popen-{worker}"
        self.shared = root.parent.parent / "docs-definitions" if shared else None

    def prepare(self, page: Path, examples: list[Example], upto: int) -> tuple[Path, dict[str, str]]:
        cwd, variables, ran = self.done.setdefault(page, (self.root / page.stem, {}, set()))
        cwd.mkdir(exist_ok=True)
        for n, example in enumerate(examples[:upto]):
            if n in ran or not _is_setup(example) or SKIP.keys() & example.flags:
                continue
            if not define(example, variables, self.shared):
                code, output = run(example, variables, cwd)
                assert code == example.exit_code, f"setup {example.id}: `{example.command}` exited {code}:\n{output[-2000:]}"
            ran.add(n)
        return cwd, variables


@pytest.fixture(scope="session")
def workdirs(tmp_path_factory):
    return _Workdirs(tmp_path_factory.mktemp("docs"))


@pytest.fixture(scope="session")
def edits(request):
    """Real outputs to write back with --update-docs, per page, written when the session ends."""
    found: dict[Path, list[tuple[Example, str]]] = {}
    yield found
    for page, page_edits in found.items():
        _write(page, page_edits)


@pytest.mark.parametrize("page,n", _cases())
def test_documented_command_prints_what_the_page_shows(page, n, workdirs, edits, request):
    update = request.config.getoption("--update-docs")
    if update and os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.fail("--update-docs writes the pages from one process: run it with -n 0")
    examples = parse(page)
    example = examples[n]
    if "torch" in example.flags:
        pytest.importorskip("torch")
    cwd, variables = workdirs.prepare(page, examples, n)
    code, output = run(example, variables, cwd)
    assert code == example.exit_code, f"{example.id}: `{example.command}` exited {code}, expected {example.exit_code}:\n{output[-3000:]}"
    if "no-output" in example.flags:
        return
    if normalize(output, example.flags, variables) != normalize(example.shown, example.flags, variables):
        if update:
            edits.setdefault(page, []).append((example, shown_form(output, example, variables)))
            return
        pytest.fail(_difference(example, output, variables)
                    + "\n(pytest tests/test_docs_examples.py -n 0 --update-docs rewrites the pages)")


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_page_parses(page):
    examples = parse(page)
    assert examples or page.name != "README.md"
    assert all(e.command.strip() for e in examples)


def _difference(example: Example, output: str, variables: dict[str, str]) -> str:
    import difflib

    shown = normalize(example.shown, example.flags, variables).splitlines()
    real = normalize(output, example.flags, variables).splitlines()
    diff = "\n".join(list(difflib.unified_diff(shown, real, "page", "real", lineterm="", n=1))[:40])
    return f"{example.id}: `{example.command}` prints something else than the page shows:\n{diff}"


def _write(page, edits: list[tuple[Example, str]]) -> None:
    text = page.read_text(encoding="utf-8")
    for example, shown in sorted(edits, key=lambda e: e[0].span[0], reverse=True):
        text = text[: example.span[0]] + shown + text[example.span[1]:]
    page.write_text(text, encoding="utf-8")
