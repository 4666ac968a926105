"""`inspect report`'s chart of where the FLOPs go: its bars are the FLOPs ledger's numbers (the ledger equals
torch's FlopCounterMode: tests/test_flops.py), a prefill of --context tokens and one decode step, and the page
stays self-contained and valid."""

from __future__ import annotations

import functools
import re

import pytest

from inspector.compute.figures import FlopsRequest, ledgers
from inspector.inventory.accounting import account
from inspector.reports.charts import category
from inspector.reports.charts_flops import PROJECTIONS, SCORES
from inspector.reports.html import ModelPage, page
from inspector.source import load_spec
from report_dom import parse

# Llama-3.1-8B, N = 128 (issue 22): 2·N·(matmul parameters) + 4·L·N²·d, the second term the attention scores.
LLAMA_8B_N128, LLAMA_8B_SCORES = 1_929_782_493_184, 4 * 32 * 128**2 * 4096


@functools.lru_cache(maxsize=None)
def render(models: tuple[str, ...], context: int = 4096, batch: int = 1) -> str:
    return page([ModelPage(account(load_spec(m))) for m in models], context, batch)


def bars(html: str, ident: str) -> dict[str, int]:
    """The bars of the SVG `ident`: label -> the number the bar carries (data-value)."""
    start = html.index(f'id="{ident}"')
    body = html[start:html.index("</svg>", start)]
    return {label.replace("&#x27;", "'"): int(value)
            for label, value in re.findall(r'class="barrow" data-label="([^"]+)" data-value="(\d+)"', body)}


def by_part(acc, book) -> dict[str, int]:
    """The ledger's rows summed by the parameter chart's categories (attention as one part)."""
    out: dict[str, int] = {}
    for r in book.rows:
        if r.computed:
            out[category(r.component, r.name)] = out.get(category(r.component, r.name), 0) + r.computed
    return out


def test_llama_8b_prefill_is_the_issue_figure():
    html = render(("meta-llama/Llama-3.1-8B",), 128)
    prefill = bars(html, "m0-flops-prefill")
    assert sum(prefill.values()) == LLAMA_8B_N128
    assert prefill[SCORES] == LLAMA_8B_SCORES
    assert f"Where the {LLAMA_8B_N128:,} FLOPs of a prefill of 128 tokens × batch 1 go" in html
    decode = bars(html, "m0-flops-decode")
    assert decode[SCORES] == 2 * 32 * 32 * (128 + 128) * 129  # one query against 129 keys, QKᵀ and PV, 32 layers
    book = ledgers(account(load_spec("llama-3.1-8b")), FlopsRequest(128, 1, 128))["decode"]
    assert sum(decode.values()) == book.computed


@pytest.mark.parametrize("model", ["qwen3-30b-a3b", "deepseek-ai/DeepSeek-V3", "gemma-3-1b-it", "qwen2-vl-2b",
                                   "meta-llama/Llama-3.2-11B-Vision-Instruct"])
def test_bars_are_the_ledger(model):
    """MoE, MLA, sliding windows, a VLM (tower not run by text), Mllama (cross-attention layers): every bar
    is the ledger's part, attention split into projections + scores, at the page's context and batch."""
    acc = account(load_spec(model))
    html = render((model,), 512, 2)
    books = ledgers(acc, FlopsRequest(512, 2, 512))
    for name in ("prefill", "decode"):
        shown, parts = bars(html, f"m0-flops-{name}"), by_part(acc, books[name])
        assert sum(shown.values()) == books[name].computed
        assert shown[PROJECTIONS] + shown[SCORES] == parts.pop("Attention")
        assert {k: v for k, v in shown.items() if k not in (PROJECTIONS, SCORES)} == parts
    if books["prefill"].skipped:
        assert "Not run by a text prompt, so not counted: " in html


def test_side_by_side_page_stays_valid():
    html = render(("qwen3-0.6b", "qwen2-vl-2b"))
    p = parse(html)
    assert {"m0-flops-prefill", "m0-flops-decode", "m1-flops-prefill", "m1-flops-decode"} <= set(p.svgs)
    assert all(p.svg_titles.get(s) for s in p.svgs)
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    assert not {"script", "link", "img"} & p.tags
    assert "Where the parameters, the memory and the FLOPs go" in html
    assert "FlopCounterMode" in html and "<code>inspect params --flops</code>" in html
