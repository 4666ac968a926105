"""CSV is for scripts: no number in any command's CSV carries thousands separators."""

from __future__ import annotations

import csv
import io
import re

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app

CASES = {
    "params": ["params", "Qwen/Qwen2.5-1.5B", "deepseek-ai/DeepSeek-V3"],
    "config": ["config", "Qwen/Qwen2.5-1.5B", "google/gemma-3-4b-it"],
    "tokens": ["tokens", "Qwen/Qwen2.5-VL-7B-Instruct", "meta-llama/Llama-4-Scout-17B-16E-Instruct",
               "--image-size", "4000x300", "--image-size", "800x1300"],
    "presets": ["presets"],
    "memory-serve": ["memory", "llama-3.1-8b"],
    "memory-train": ["memory", "llama-3.1-8b", "--train", "full", "--zero", "3", "--gpus", "8"],
}
GROUPED = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_csv_numbers_are_plain(case):
    result = CliRunner().invoke(app, [*CASES[case], "--format", "csv"])
    assert result.exit_code == 0, result.output
    cells = [c for row in csv.reader(io.StringIO(result.stdout)) for c in row]
    grouped = [c for c in cells if GROUPED.match(c.strip())]
    assert not grouped, f"{case}: formatted numbers in CSV cells: {grouped[:5]}"
