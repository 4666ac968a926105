"""The documented Python snippets run, and print what the docs show (docs/api.md)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```pycon\n(.*?)^```", re.S | re.M)


def pycon_blocks(path: Path) -> list[str]:
    return FENCE.findall(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("doc", ["api.md"])
def test_python_snippets_run_as_documented(doc):
    pytest.importorskip("torch")
    parser, globs = doctest.DocTestParser(), {}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for i, block in enumerate(pycon_blocks(DOCS / doc)):
        test = parser.get_doctest(block, globs, f"{doc} block {i + 1}", str(DOCS / doc), 0)
        runner.run(test, clear_globs=False)
        globs = test.globs  # the next block sees this one's names, as in a notebook
    results = runner.summarize(verbose=False)
    assert results.attempted > 20 and results.failed == 0, f"{results.failed} snippet(s) of {doc} differ"
