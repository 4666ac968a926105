"""Rich tables in a narrow terminal: every line fits, and no number or tensor name is cut anywhere
but after a '.', '_', '/', ':' or '-' (the issue: names and numbers folded mid-token at 80 columns)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app

runner = CliRunner()
CASES = {
    "params-qwen2.5-1.5b": ["params", "Qwen/Qwen2.5-1.5B"],
    "params-deepseek-v3": ["params", "deepseek-ai/DeepSeek-V3"],
    "params-two-models": ["params", "meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-1.5B"],
    "config-two-models": ["config", "meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-1.5B"],
    "memory-llama-8b": ["memory", "llama-3.1-8b", "--gpu", "L4-24GB"],
    "presets": ["presets"],
}
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+")


def cells(table: str) -> list[list[str]]:
    """The text of each cell, one list per rendered line (rich's box characters split columns)."""
    return [[c.strip() for c in re.split(r"[│┃]", line)[1:-1]] for line in table.splitlines() if line[:1] in "│┃"]


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_narrow_tables_break_between_words(case, width):
    table = runner.invoke(app, CASES[case], env={"COLUMNS": str(width)}).stdout
    plain = runner.invoke(app, [*CASES[case], "--format", "md"]).stdout
    assert all(len(line) <= width for line in table.splitlines()), f"a line is wider than {width}"
    for row in cells(table):
        for cell in row:
            last = cell.split(" ")[-1] if cell else ""
            # a cell line ending inside a word would leave a piece that md shows nowhere as a word end
            ends_a_word = re.search(re.escape(last) + r"(?=[\s|<]|$)", plain, re.M)
            if last and not re.search(r"[._/:\-),]$", last) and not ends_a_word:
                pytest.fail(f"{case} at {width}: {last!r} is a piece of a word cut mid-token")
    for number in set(NUMBER.findall(plain)):
        assert number in table, f"{case} at {width}: {number} is split across lines"
