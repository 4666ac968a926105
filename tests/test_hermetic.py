"""The suite reads nothing outside the repository: a user's clone tests what CI tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
OUTSIDE = re.compile(r"\.\./shared|parents\[[2-9]\]|ROOT\.parent|[\"']/work/|/shared/reference")


@pytest.mark.parametrize("path", sorted(TESTS.glob("*.py")), ids=lambda p: p.name)
def test_no_test_reads_outside_the_repository(path):
    found = [f"{path.name}:{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
             if OUTSIDE.search(line) and path.name != "test_hermetic.py"]
    assert not found, "\n".join(found)


def test_the_reference_configs_and_their_sources_are_in_fixtures():
    configs = ROOT / "fixtures" / "reference" / "configs"
    sources = (configs / "SOURCES.md").read_text(encoding="utf-8")
    directories = sorted(p.name for p in configs.iterdir() if (p / "config.json").is_file())
    assert len(directories) == 23
    for name in directories:  # each model has its section or row of sources
        assert name.replace("__", "/") in sources, name
