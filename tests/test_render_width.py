"""Rich tables in a narrow terminal: every line fits, and no number or tensor name is cut anywhere
but after a '.', '/' or ':' (the issue: names and numbers folded mid-token at 80 columns, and
`self_attn.q_a_` / `proj.weight`: never inside an identifier, after a '_' or a '-')."""

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
# Tables whose longest name piece (post_attention_layernorm.) and numbers cannot share the width even
# without any padding (reports/render.LAYOUTS gives up the outer, then the inner padding first): only
# these may cut an identifier, and then only after a '_' or '-'.
TOO_NARROW = {("params-two-models", 80), ("presets", 80)}
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
            hyphenated = re.search(r"[A-Za-z]-$", last) and "_" not in last  # "(post-" / "attention)"
            last_resort = (case, width) in TOO_NARROW and re.search(r"[_-]$", last)
            if last and not re.search(r"[./:),]$", last) and not hyphenated and not last_resort and not ends_a_word:
                pytest.fail(f"{case} at {width}: {last!r} is a piece of a word cut mid-token")
    for number in set(NUMBER.findall(plain)):
        assert number in table, f"{case} at {width}: {number} is split across lines"


def test_names_break_only_at_their_boundaries_where_they_fit():
    """The issue's `self_attn.q_a_` / `proj.weight`: at 80 columns DeepSeek-V3's names break after a
    '.', never inside `q_a_proj`; Qwen2.5's table keeps post_attention_layernorm. whole by giving
    up its outer padding."""
    deepseek = runner.invoke(app, CASES["params-deepseek-v3"], env={"COLUMNS": "80"}).stdout
    assert "self_attn.q_a_proj." in deepseek and not re.search(r"q_a_\s*│", deepseek)
    qwen = runner.invoke(app, CASES["params-qwen2.5-1.5b"], env={"COLUMNS": "80"}).stdout
    assert "post_attention_layernorm." in qwen and all(len(line) <= 80 for line in qwen.splitlines())
