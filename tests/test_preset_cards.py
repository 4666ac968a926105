"""`inspect params` on issue 24's MoE presets reproduces each model card's published total and active parameters.

Oracle: the cards' own figures (fixtures/cards/issue24.json: URL, the sentence, the card's rounding and which
reading of "active" the card uses). Pure arithmetic on the presets' configs: no weights, no torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app

CARDS = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "cards" / "issue24.json").read_text())
PRESETS = CARDS["presets"]


def _reading(data: dict, reading: str) -> int:
    moe = data.get("moe") or {}
    return {"total": lambda: data["total_params"], "non_embedding": lambda: data["non_embedding_params"],
            "all": lambda: moe["active_params"], "no_input_embedding": lambda: moe["active_params_without_embedding"],
            "no_embedding_no_head": lambda: moe["active_params"] - data["embedding_params"]}[reading]()


def _shown(value: int, figure: dict) -> float:
    """What the card would print for `value`: rounded to its step, or its digits cut."""
    step, billions = figure.get("step", 1), value / 1e9
    return round(billions / step) * step if figure["rounding"] == "round" else int(billions // step) * step


@pytest.mark.parametrize("preset", list(PRESETS), ids=list(PRESETS))
def test_params_reproduces_the_cards_total_and_active(preset):
    result = CliRunner().invoke(app, ["params", preset, "-f", "json"])
    assert result.exit_code == 0, result.output
    data, card = json.loads(result.stdout), PRESETS[preset]
    for which in ("total", "active"):
        figure = card[which]
        assert _shown(_reading(data, figure["reading"]), figure) == figure["billions"], (which, card["card"])
