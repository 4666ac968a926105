"""`inspect report`: the page's numbers equal `params --format json`, its drawn boxes sum to the
totals for every family and reference config, it is self-contained, deterministic and small, and
bad input gives the same one-line errors as `params` with no file written.

The same checks in a real browser (chromium's DOM and a screenshot) are in test_report_browser.py.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REFERENCE_CONFIGS, reference_config_dirs
from inspector.cli.app import app
from inspector.inventory.accounting import account
from inspector.reports.html import ModelPage, page
from inspector.spec.model import from_hf_config
from inspector.spec.model import supported_model_types
from inspector.spec.presets import all_presets
from inspector.source import load_spec
from report_dom import check_against_params_json, parse

runner = CliRunner()
ONE_MB = 1_000_000


def invoke(*args: str):
    return runner.invoke(app, list(args))


def params_payloads(*models: str) -> list[dict]:
    result = invoke("params", *models, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return data if isinstance(data, list) else [data]


@functools.lru_cache(maxsize=None)  # DeepSeek-V3's inventory (46,183 tensors) is built once per run
def render(*models: str) -> str:
    return page([ModelPage(account(load_spec(m))) for m in models])


def _supported(path: Path) -> bool:
    from inspector.spec.model import supported_model_types

    return json.loads((path / "config.json").read_text()).get("model_type") in supported_model_types()


REFERENCE = [p for p in reference_config_dirs() if _supported(p)]


NATIVE_PRESETS = [p for p in all_presets() if p.config.get("model_type") in supported_model_types()]


@pytest.mark.parametrize("model", [p.hub_id for p in NATIVE_PRESETS] + [str(p) for p in REFERENCE],
                         ids=[p.hub_id for p in NATIVE_PRESETS] + [p.name for p in REFERENCE])
def test_page_numbers_equal_params_json(model):
    html = render(model)
    compared = check_against_params_json(parse(html), params_payloads(model))
    assert compared >= 15
    assert len(html.encode()) < ONE_MB


@pytest.mark.parametrize("model_type", ["gemma2", "olmo2", "gpt_neox", "gpt2", "qwen2_moe", "gpt_oss", "llama4_text",
                                        "deepseek_v2", "cohere2", "phi"])
def test_every_layer_arrangement_sums_to_the_total(model_type):
    """Sandwich, post and parallel norms, learned positions, shared-expert gates, fused experts,
    interleaved MoE layers, MLA without a q latent: transformers' default config of each family."""
    transformers = pytest.importorskip("transformers")
    from test_families import default_config

    cfg = default_config(model_type)
    acc = account(from_hf_config(cfg, model_type))
    page_ = parse(page([ModelPage(acc)]))
    total = acc.totals.total_params
    assert page_.counted_sum("m0-overview") == total
    expanded = sum(page_.counted_sum(s) for s in set(page_.svgs) if s.startswith("m0-layer"))
    outside = sum(b.params * b.repeat for b in page_.boxes
                  if b.counted and b.svg == "m0-overview" and ".layers" not in b.key)
    assert expanded + outside == total
    del transformers


def test_side_by_side_numbers_equal_params_json():
    models = ("meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-1.5B", "Qwen/Qwen2-VL-2B-Instruct")
    page_ = parse(render(*models))
    assert check_against_params_json(page_, params_payloads(*models)) > 45
    assert {"m0-overview", "m1-overview", "m2-overview", "m2-vblock0"} <= set(page_.svgs)


def test_params_table_rows_equal_params_json():
    payload = params_payloads("qwen2-vl-2b")[0]
    tables = parse(render("qwen2-vl-2b")).tables
    totals = {}
    for section in ("Vision encoder", "Projector / merger", "Language model"):
        for row in tables[section][1:]:
            totals[(section, row[0])] = row[-1]
    titles = {"vision_encoder": "Vision encoder", "projector": "Projector / merger", "language_model": "Language model"}
    for row in payload["rows"]:
        shown = totals[(titles[row["component"]], row["name"])]
        expected = row["params_total"] if row["stored"] else 0
        assert int(shown.replace(",", "")) == expected, row["name"]


def test_diagram_shows_moe_and_mla_from_the_spec():
    path = REFERENCE_CONFIGS / "deepseek-ai__DeepSeek-V3"
    html = render(str(path))
    page_ = parse(html)
    assert len(html.encode()) < ONE_MB
    assert "Decoder layer × 3" in html and "Decoder layer × 58" in html  # first_k_dense_replace = 3
    assert "top-8 of 256 routed experts" in html and "Expert 255" in html and "… 252 more" in html
    fan = next(b for b in page_.boxes if b.key.endswith(".experts"))
    assert (fan.params, fan.repeat) == (44_040_192, 256 * 58)
    assert "kv_a_proj_with_mqa.weight (576, 7168)" in html and "the KV cache holds the latent: 512 + 64" in html
    assert "Multi-token prediction module" in html and "e_score_correction_bias (256,)" in html


def test_tied_head_is_drawn_dashed_and_not_counted():
    page_ = parse(render("qwen2.5-0.5b"))
    head = next(b for b in page_.boxes if b.key == "m0.head")
    assert not head.counted and head.params == 151_936 * 896
    html = render("meta-llama/Llama-3.1-8B")
    assert "LM head (tied" not in html and "lm_head.weight (128256, 4096)" in html


def test_page_is_self_contained_accessible_and_deterministic():
    html = render("qwen2-vl-2b", "qwen3-0.6b")
    assert html == render.__wrapped__("qwen2-vl-2b", "qwen3-0.6b")  # built again, not from the cache
    page_ = parse(html)
    assert not {"script", "link", "img", "iframe", "object"} & page_.tags
    assert all(h.startswith("#") for h in page_.hrefs), [h for h in page_.hrefs if not h.startswith("#")]
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)) and {h[1:] for h in page_.hrefs} <= set(ids)  # unique ids, no dead links
    assert not re.search(r"(src=|url\(\s*['\"]?(https?:|//)|@import)", html)
    assert all(page_.svg_titles.get(s) for s in page_.svgs), "every SVG needs a <title>"
    assert page_.texts > 200  # labels are <text>, selectable
    assert len(page_.svgs) >= 9


def test_names_from_the_command_line_are_escaped(tmp_path):
    from conftest import tiny_config

    directory = tmp_path / '<img src=x onerror="alert(1)">'
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(tiny_config("qwen2")))
    html = render(str(directory))
    assert "<img" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "img" not in parse(html).tags


def test_cli_output_is_the_same_bytes_in_another_process(tmp_path):
    out = tmp_path / "a.html"
    assert invoke("report", "internvl2-2b", "-o", str(out)).exit_code == 0
    env = {**os.environ, "PYTHONHASHSEED": "7"}
    second = subprocess.run([sys.executable, "-m", "inspector", "report", "internvl2-2b"], env=env,
                            capture_output=True, check=True)
    assert out.read_bytes() == second.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["a.html"]


def test_report_does_not_import_torch():
    code = ("import sys; from typer.testing import CliRunner; from inspector.cli import app;"
            "r = CliRunner().invoke(app, ['report', 'qwen2.5-1.5b']); assert r.exit_code == 0, r.output;"
            "bad = [m for m in ('torch', 'transformers', 'safetensors', 'tokenizers') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "content,message",
    [("{oops", "not valid JSON"), ('{"model_type": "llama"}', "field 'hidden_size' is missing")],
    ids=["non-json", "missing-field"],
)
def test_bad_input_is_the_same_line_as_params(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_text(content)
    out = tmp_path / "r.html"
    result = invoke("report", str(path), "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == invoke("params", str(path)).stderr
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not out.exists()


def test_family_without_native_spec_is_one_line(tmp_path):
    """A model with no native family is shown through transformers' forward on meta (tests/test_hf_trace.py);
    one that transformers 5.25 cannot build (Nemotron's default config leaves head_dim None) is one line and no
    file."""
    pytest.importorskip("transformers")
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "nemotron"}')
    out = tmp_path / "r.html"
    result = invoke("report", str(path), "-o", str(out))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "cannot build nemotron from this config" in result.stderr and not out.exists()


def test_missing_output_directory_is_one_line_and_no_file(tmp_path):
    result = invoke("report", "smollm2-135m", "-o", str(tmp_path / "missing" / "r.html"))
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'missing' / 'r.html'}: directory {tmp_path / 'missing'} does not exist\n"
    assert list(tmp_path.iterdir()) == []


def test_more_weights_than_models_is_one_line(tmp_path):
    result = invoke("report", "smollm2-135m", "-w", "a.gguf", "-w", "b.gguf", "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "--weights" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_weights_section_lists_every_tensor_matched_or_not(tmp_path):
    """A tiny checkpoint with one tensor missing and one of the wrong shape: the page lists both
    failures by name and every other tensor as matched, as `verify` finds them."""
    st = pytest.importorskip("safetensors.numpy")
    import numpy as np

    from conftest import tiny_config
    from inspector.source import verify
    from inspector.inventory.model import inventory
    from inspector.reports.verify import verify_json

    cfg = tiny_config("llama", num_hidden_layers=3)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    tensors = {e.name: np.zeros(e.shape, np.float32) for e in inventory(from_hf_config(cfg, "t")) if e.stored}
    del tensors["model.layers.1.mlp.up_proj.weight"]
    tensors["model.layers.2.self_attn.k_proj.weight"] = np.zeros((8, 32), np.float32)
    st.save_file(tensors, str(tmp_path / "model.safetensors"))
    out = tmp_path / "r.html"
    result = invoke("report", str(tmp_path), "--weights", str(tmp_path), "-o", str(out))
    assert result.exit_code == 0, result.output
    expected = verify_json(verify(str(tmp_path), str(tmp_path)))
    rows = parse(out.read_text()).tables["tensors"][1:]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[1]] = counts.get(row[1], 0) + int(row[-1])
    assert sum(counts.values()) == len(expected["tensors"])
    assert counts["ok ✓"] == expected["matched"]
    assert ["model.layers.1.mlp.up_proj.weight", "MISSING ✗"] == rows[0][:2]
    assert ["model.layers.2.self_attn.k_proj.weight", "SHAPE MISMATCH ✗", "(16, 32)", "(8, 32)"] == rows[1][:4]


def test_trace_section_folds_repeated_layers(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "r.html"
    result = invoke("report", "qwen2.5-0.5b", "--trace", "The capital of France is", "-o", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert 'data-layers="1-23"' in html and "<details>" in html
    tables = parse(html).tables
    rows = [r for r in tables["trace"] if len(r) == 6]
    folded = tables["trace-layers-1-23"][1:]
    layer0 = [r for r in rows if r[1].startswith("layers.0.")]
    assert [r[1].replace("layers.0.", "layers.N.") for r in layer0] == [r[1] for r in folded[:-1]]
    assert [r[3] for r in layer0] == [r[3] for r in folded[:-1]] and folded[-1][1] == "layers.N"
    assert len(folded) > 20 and any(r[1] == "lm_head" and r[3] == "(1, 5, 151936)" for r in rows)


# --------------------------------------------------------------------------- the page agrees with itself


QWEN25_VL = REFERENCE_CONFIGS / "Qwen__Qwen2.5-VL-7B-Instruct"


def test_every_count_on_the_page_is_grouped():
    """The "Total" column and the config table's counts read like every other number (1,234,567)."""
    tables = parse(render(str(QWEN25_VL))).tables
    for section in ("Vision encoder", "Projector / merger", "Language model"):
        rows = tables[section][1:]  # the config table's "Language model" section follows its subtotal
        rows = rows[:next(i for i, row in enumerate(rows) if row[0] in ("Subtotal", "Total")) + 1]
        totals = [row[-1] for row in rows if row[-1]]
        assert totals and all(re.fullmatch(r"\d{1,3}(,\d{3})*", t) for t in totals), (section, totals)
    vocab = json.loads((QWEN25_VL / "config.json").read_text())["vocab_size"]
    assert f"{vocab:,}" in render(str(QWEN25_VL)) and ">152064<" not in render(str(QWEN25_VL))


def test_headings_show_code_not_backticks():
    html = render("qwen2.5-0.5b")
    text = re.sub(r"<[^>]+>", "", html)
    assert "`" not in text
    assert "<h2>Key figures (as <code>inspect params --format json</code>)</h2>" in html


def test_qwen25_vl_vision_block_is_drawn_from_its_spec():
    """A gated MLP (gate, up, down), windowed attention except in fullatt_block_indexes, RMS norms:
    the published config and transformers' module classes on the meta device say so."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers import AutoConfig
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as m

    cfg = json.loads((QWEN25_VL / "config.json").read_text())["vision_config"]
    full, depth = cfg["fullatt_block_indexes"], cfg["depth"]
    with torch.device("meta"):
        vision = m.Qwen2_5_VisionTransformerPretrainedModel._from_config(
            AutoConfig.from_pretrained(QWEN25_VL).vision_config)
    block = vision.blocks[0]
    assert {"gate_proj", "up_proj", "down_proj"} <= {k for k, _ in block.mlp.named_children()}
    assert "RMSNorm" in type(block.norm1).__name__ and "RMSNorm" in type(vision.merger.ln_q).__name__

    html = render(str(QWEN25_VL))
    start = html.index('id="m0-vblock0"')
    drawn = re.sub(r"<[^>]+>", "|", html[start:html.index("</svg>", start)])
    assert "SiLU(x W_gate) ⊙ (x W_up), then W_down" in drawn and "between the two linears" not in drawn
    assert f"in {depth - len(full)} of {depth} blocks" in drawn and "over all patches" not in drawn
    assert f"full attention only in blocks {full[0]}, {full[1]}, …, {full[-1]}" in drawn
    assert "RMS norm (pre-attention)" in drawn and "Layer norm" not in drawn
    assert "RMS norm (merger)" in html and "Layer norm (merger)" not in html
    # Qwen2-VL's blocks are LayerNorm, QuickGELU fc1/fc2 and attend over all patches: its words stay
    qwen2 = render("qwen2-vl-2b")
    assert "Layer norm (pre-attention)" in qwen2 and "over all patches" in qwen2 and "between the two linears" in qwen2


def test_memory_chart_names_its_kv_cache():
    """The report's memory plan sizes the KV cache for a context; `inspect memory` gives it the rest
    of the GPU: the chart's words say which."""
    html = render("qwen2.5-0.5b")
    assert "Memory plan per GPU (as inspect memory)" not in html
    assert "Memory per GPU (H100-80GB) with a KV cache of 4,096 tokens × batch 1" in html
    assert "<code>inspect memory</code> instead gives the KV cache all the memory the GPU has left" in html


def test_memory_chart_stacks_each_training_peak_not_the_sum_of_every_row():
    """The page's fine-tuning bars are `inspect memory --train`'s peak phase: their segments add up to the
    plan's per-GPU peak, and name the phase."""
    from inspector.memory.gpus import gpu
    from inspector.memory.training import TrainOptions, plan
    from inspector.reports.charts import memory_scenarios

    acc = account(load_spec("qwen2.5-0.5b"))
    scenarios = dict(memory_scenarios(acc, 4096, 1))
    for mode, label in (("full", "Full fine-tune, mixed-precision AdamW"), ("lora", "LoRA r=16")):
        trained = plan(acc, gpu("H100-80GB"), TrainOptions(mode=mode, seq_len=4096))
        rows = scenarios[f"{label} (peak: {trained.peak_phase})"]
        assert sum(b for _, b in rows) == trained.per_gpu
