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


def test_cited_documents_are_introduced():
    """Every Table and Figure number cited in the README, the docs or the code (help, table titles)
    is in docs/documents.md, which names the documents by title (no file names); the pages citing
    *Implementations of Large Language Models* or the *Week 7 Report* link to it."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "documents.md").read_text()
    texts = [root / "README.md", *(root / "docs").glob("*.md"), *(root / "inspector").rglob("*.py")]
    def numbers(text: str) -> set[tuple[str, str]]:  # ("Table", "1.3") for "Table 1.3", "Tables 1.3 and 2.1"
        out = set()
        for kind, group in re.findall(r"(Table|Figure)s? ((?:[0-9]\.[0-9](?:, | and )?)+)", text):
            out.update((kind, x) for x in re.findall(r"[0-9]\.[0-9]", group))
        return out

    cited = set().union(*(numbers(path.read_text()) for path in texts))
    assert len(cited) >= 9 and not sorted(cited - numbers(page))
    assert "Implementations of Large Language Models" in page and "Week 7 Report" in page
    assert not re.search(r"\.txt\b|seeds/", page)
    for path in [root / "README.md", *(root / "docs").glob("*.md")]:
        text = path.read_text()
        if path.name not in ("documents.md", "api.md", "architecture.md", "memory.md", "verify.md") and (
                "Implementations of Large Language Models" in text or "Week 7 Report" in text):
            assert "documents.md" in text, f"{path.name} cites the documents without linking docs/documents.md"
