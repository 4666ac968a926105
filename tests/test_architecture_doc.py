"""docs/architecture.md's module table is generated from the module docstrings (tools/architecture.py):
every module under inspector/ is listed, with the first line of its docstring, a one-line sentence.
`pytest tests/test_architecture_doc.py --update-docs` rewrites the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from architecture_tool import architecture


@pytest.mark.parametrize("module", [m.as_posix() for m in architecture.modules()])
def test_module_docstring_starts_with_one_line_sentence(module):
    architecture.summary(Path(module))  # raises, naming the module and the line, when it is not one


def test_every_module_is_in_the_table():
    doc = architecture.DOC.read_text(encoding="utf-8")
    missing = sorted({m.as_posix() for m in architecture.modules()} - architecture.listed(doc))
    gone = sorted(architecture.listed(doc) - {m.as_posix() for m in architecture.modules()})
    assert not missing, f"docs/architecture.md lists no row for {', '.join(missing)} (python tools/architecture.py)"
    assert not gone, f"docs/architecture.md lists modules that do not exist: {', '.join(gone)}"


def test_table_is_what_the_docstrings_say(request):
    doc = architecture.DOC.read_text(encoding="utf-8")
    new = architecture.render(doc)
    if request.config.getoption("--update-docs"):
        architecture.DOC.write_text(new, encoding="utf-8")
        return
    assert new == doc, ("docs/architecture.md's module table differs from the module docstrings "
                        "(python tools/architecture.py, or pytest --update-docs, rewrites it)")


def test_render_replaces_a_stale_table():
    """A row edited by hand is written back as the docstring says."""
    doc = architecture.DOC.read_text(encoding="utf-8")
    stale = doc.replace("| `steps.py` | ", "| `steps.py` | Stale. ", 1)
    assert stale != doc
    assert architecture.render(stale) == architecture.render(doc)
