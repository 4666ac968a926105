"""Every reference config whose SOURCES.md section states a meta-device total counts exactly that.

The totals in fixtures/reference/configs/SOURCES.md were computed by transformers on the meta device
(`sum(p.numel() for p in model.parameters())` of AutoModelForCausalLM / AutoModelForImageTextToText
built from the file); they are read from that document, not written here.
"""

from __future__ import annotations

import re

import pytest

from conftest import REFERENCE_CONFIGS
from inspector.inventory.accounting import account
from inspector.source import load_spec


def stated_totals() -> list[tuple[str, int]]:
    path = REFERENCE_CONFIGS / "SOURCES.md"
    out, model = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"### (\S+/\S+)", line)
        if heading:
            model = heading.group(1)
        total = re.match(r"Meta total ([\d,]+)", line)
        if total and model:
            out.append((model, int(total.group(1).replace(",", ""))))
    return out


TOTALS = stated_totals()


@pytest.mark.parametrize("model,total", TOTALS, ids=[m for m, _ in TOTALS])
def test_reference_config_counts_the_stated_meta_total(model, total):
    directory = REFERENCE_CONFIGS / model.replace("/", "__")
    assert account(load_spec(str(directory))).totals.total_params == total


def test_vlm_totals_are_stated():
    stated = {m for m, _ in TOTALS}
    assert {"Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen3-VL-8B-Instruct", "google/gemma-3-4b-it",
            "meta-llama/Llama-4-Scout-17B-16E-Instruct"} <= stated
