"""Norms as data (inspector.spec.norms): every norm kind, placement and q/k norm of the tables is used
by some family, and the inventory and the reference model get each right against transformers
(the tiny configs of test_families.py: names and shapes on meta, then logits of a random model).
A family naming an entry the tables lack is refused, in one line, when its config is read."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import tiny_config
from inspector.errors import InspectError
from inspector.inventory.entry import LM, norm_row
from inspector.reports.charts import category
from inspector.spec import model as spec_model
from inspector.spec.families import FAMILIES
from inspector.spec.model import from_hf_config
from inspector.spec.norms import NORMS, PLACEMENTS, QK_NORMS

TABLES = {"norm": NORMS, "placement": PLACEMENTS, "qk_norm_kind": QK_NORMS}
ENTRIES = [(field, name) for field, table in TABLES.items() for name in table]


def _tiny_configs() -> dict:
    from test_families import TINY

    return TINY


def _case(field: str, name: str) -> dict:
    """The first tiny config of test_families.py whose spec holds this table entry."""
    for cfg in _tiny_configs().values():
        entry = getattr(from_hf_config(dict(cfg), "test").text, field)
        if entry is not None and entry.name == name:
            return cfg
    raise AssertionError(f"{field} {name!r}: no family with a tiny config in tests/test_families.py uses it")


@pytest.mark.parametrize("field,name", ENTRIES, ids=[f"{f}-{n}" for f, n in ENTRIES])
def test_every_entry_matches_transformers_on_meta(field, name):
    from test_families import assert_matches_transformers

    pytest.importorskip("transformers")
    assert_matches_transformers(_case(field, name))


@pytest.mark.parametrize("field,name", ENTRIES, ids=[f"{f}-{n}" for f, n in ENTRIES])
def test_every_entry_gives_transformers_logits(field, name, tmp_path):
    pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from hf_reference import hf_tiny
    from inspector.reference.load import load_model

    cfg = _case(field, name)
    hf = hf_tiny(cfg)
    hf.save_pretrained(tmp_path, safe_serialization=True)
    ours = load_model(tmp_path)
    ids = torch.randint(0, cfg["vocab_size"], (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert (hf(ids).logits - ours(ids)).abs().max().item() < 1e-4


@pytest.mark.parametrize("kind", list(NORMS))
@pytest.mark.parametrize("place", list(PLACEMENTS))
def test_every_norm_row_is_charted_as_a_norm(kind, place):
    """Each norm the placements put in a layer, and the final one, gets a row the charts count as Norms."""
    t = replace(from_hf_config(tiny_config("llama"), "test").text, norm=NORMS[kind], placement=PLACEMENTS[place])
    for role in (*PLACEMENTS[place].roles, "final_norm"):
        row = norm_row(t, role)
        assert row.startswith(NORMS[kind].row) and category(LM, row) == "Norms", (role, row)


@pytest.mark.parametrize("field,table_field,value", [
    ("norm", "norm", "scale_norm"), ("placement", "placement", "peri"), ("qk_norm", "qk_norm", "half")])
def test_a_missing_entry_is_refused_when_the_spec_is_read(monkeypatch, field, table_field, value):
    monkeypatch.setattr(spec_model, "FAMILIES", {**FAMILIES, "qwen3": replace(FAMILIES["qwen3"], **{field: value})})
    with pytest.raises(InspectError) as err:
        from_hf_config(tiny_config("qwen3", head_dim=8), "test")
    message = str(err.value)
    assert "\n" not in message and f"field '{table_field}'" in message and repr(value) in message, message
    assert message.startswith("family 'qwen3': "), message


def test_every_family_names_entries_of_the_tables():
    for family in FAMILIES.values():
        assert family.norm in NORMS and family.placement in PLACEMENTS, family.model_type
        assert not family.qk_norm or family.qk_norm in QK_NORMS, family.model_type


@pytest.mark.parametrize("part, value", [("attention", "qkv_sideways"), ("mlp", "gated_twice")])
def test_a_family_naming_a_part_that_does_not_exist_fails_when_built(part, value):
    from inspector.spec.families import Family

    with pytest.raises(ValueError, match=f"family part '{part}': '{value}' is not one of"):
        Family("toy", "a toy family", **{part: value})


@pytest.mark.parametrize("part, value", [("routing", "coin_toss"), ("expert_act", "cubic")])
def test_an_moe_family_naming_a_rule_that_does_not_exist_fails_when_built(part, value):
    from inspector.spec.families import MoEFamily

    with pytest.raises(ValueError, match=f"family part '{part}': '{value}' is not one of"):
        MoEFamily(**{part: value})
