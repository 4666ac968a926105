"""Output that scales with hostile counts is capped in every format (cause 6 of the hardening issue):
a table lists at most MAX_ROWS rows (table, md) or MAX_DATA_ROWS (json, csv), says how many it left
out, and every total is still computed over everything."""

from __future__ import annotations

import csv
import io
import json
import time
import warnings

import pytest
from conftest import tiny_config
from harden import run_cases

from inspector.limits import MAX_DATA_ROWS, MAX_ROWS
from inspector.reports.render import Report, Section, render

N = 200_000


def _report(csv_rows: bool) -> Report:
    rows = [[f"t{i}", "missing", i] for i in range(N)]
    data = {"total": N, "findings": [{"name": f"t{i}"} for i in range(N)], "nested": {"names": list(range(N))}}
    return Report([Section("Verify", ["Check", "Result"], [["Missing", N]]), Section("Findings", ["T", "S", "N"], rows)],
                  data, csv_headers=["T", "S", "N"] if csv_rows else [], csv_rows=rows if csv_rows else [])


@pytest.mark.parametrize("fmt, csv_rows", [("table", False), ("md", False), ("json", False), ("csv", False),
                                           ("csv", True)])
def test_every_format_lists_at_most_its_limit(fmt, csv_rows):
    limit = MAX_ROWS if fmt in ("table", "md") else MAX_DATA_ROWS
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = render(_report(csv_rows), fmt, width=120)
    seconds = time.perf_counter() - start
    assert seconds < 20, seconds  # the uncapped table took minutes
    left = N - limit
    assert any(f"{left:,} rows not listed" in str(w.message) for w in caught), [str(w.message) for w in caught]
    if fmt == "json":
        doc = json.loads(text)
        assert doc["total"] == N and len(doc["findings"]) == limit and doc["findings_not_listed"] == left
        assert len(doc["nested"]["names"]) == limit and doc["nested"]["names_not_listed"] == left
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) <= limit + 3 and rows[-1][-1] == str(limit - 1)
    else:
        assert f"t{limit - 1}" in text and f"t{limit}\n" not in text and f"t{limit} " not in text
        assert f"{left:,} more rows not listed" in text
        assert "| 200000" in text or "│ 200000" in text  # the summary counts every row


def test_a_small_report_is_untouched():
    rows = [[f"t{i}", "ok", i] for i in range(10)]
    report = Report([Section("T", ["T", "S", "N"], rows)], {"tensors": [1, 2]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert json.loads(render(report, "json")) == {"tensors": [1, 2]}
        assert "not listed" not in render(report, "md")


def test_verify_of_twelve_thousand_layers_against_an_empty_checkpoint(tmp_path):
    """108,003 missing tensors: every format answers in seconds, listing its limit, counting all."""
    from safetensors.torch import save_file

    (tmp_path / "config.json").write_text(json.dumps(tiny_config("llama", num_hidden_layers=12_000)))
    save_file({}, str(tmp_path / "model.safetensors"))
    cases = [{"id": fmt, "args": ["verify", str(tmp_path), "-f", fmt, "-o", str(tmp_path / f"out.{fmt}")]}
             for fmt in ("json", "md")]
    results = run_cases(cases, timeout=60, budget_mb=3072)
    for fmt, r in results.items():
        assert r.rc == 1, (fmt, r.rc, r.stderr[-2000:])  # a mismatch, answered
        assert "rows not listed" in r.stderr and r.seconds < 30, (fmt, r.seconds, r.stderr)
    doc = json.loads((tmp_path / "out.json").read_text())
    missing = 12_000 * 9 + 3  # 9 tensors a layer, embedding, final norm, lm head; nothing stored
    assert len(doc["tensors"]) == MAX_DATA_ROWS and doc["tensors_not_listed"] == missing - MAX_DATA_ROWS
    assert len(doc["missing"]) == MAX_DATA_ROWS and doc["missing_not_listed"] == missing - MAX_DATA_ROWS
    assert doc["expected_params"] > 0 and doc["checkpoint_params"] == 0
    md = (tmp_path / "out.md").read_text()
    assert f"{missing - MAX_ROWS:,} more rows not listed" in md and f"| Missing " in md
