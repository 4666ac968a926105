"""Every command shown in README.md and docs/ runs, and prints what the page shows (tests/docs_examples.py
has the conventions). `--update-docs` writes the real outputs back into the pages."""

from __future__ import annotations

import pytest

from docs_examples import Example, define, normalize, pages, parse, run, shown_form

SKIP = {"hub": "needs the Hugging Face Hub", "install": "installs packages"}


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_documented_commands_print_what_the_docs_show(page, tmp_path, request):
    update = request.config.getoption("--update-docs")
    examples, variables, edits, failures = parse(page), {}, [], []
    for example in examples:
        if define(example, variables) or SKIP.keys() & example.flags:
            continue
        if "torch" in example.flags:
            pytest.importorskip("torch")
        code, output = run(example, variables, tmp_path)
        if code != example.exit_code:
            failures.append(f"{example.id}: `{example.command}` exited {code}, expected {example.exit_code}:\n{output[-3000:]}")
            continue
        if "no-output" in example.flags:
            continue
        if normalize(output, example.flags, variables) != normalize(example.shown, example.flags, variables):
            if update:
                edits.append((example, shown_form(output, example, variables)))
            else:
                failures.append(_difference(example, output, variables))
    if edits:
        _write(page, edits)
    if not examples and page.name != "README.md":
        pytest.skip(f"{page.name} shows no commands")
    assert not failures, "\n\n".join(failures) + "\n(pytest tests/test_docs_examples.py --update-docs rewrites the pages)"


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
