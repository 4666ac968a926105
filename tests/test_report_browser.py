"""`inspect report` pages in a real browser: headless chromium (Debian's package; CI installs it).

- `--dump-dom`: the DOM chromium builds from the page holds the numbers of `params --format json`
  (as data and as the text shown), and its drawn boxes sum to the totals;
- `--screenshot`: the rendered page is not blank (many colours, much ink, the figure drawn).

Skipped only when no chromium binary can be found. Each run takes a couple of seconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REFERENCE_CONFIGS
from inspector.cli.app import app
from report_dom import check_against_params_json, parse

runner = CliRunner()
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium found (CI installs Debian's chromium in .ci/run)")


def browse(chromium: str, tmp: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=True)


def report(tmp: Path, *models: str) -> tuple[Path, list[dict]]:
    out = tmp / "report.html"
    result = runner.invoke(app, ["report", *models, "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(runner.invoke(app, ["params", *models, "--format", "json"]).stdout)
    return out, data if isinstance(data, list) else [data]


def test_dom_numbers_equal_params_json_side_by_side(chromium, tmp_path):
    page, payloads = report(tmp_path, "meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-1.5B", "Qwen/Qwen2-VL-2B-Instruct")
    dom = browse(chromium, tmp_path, page, "--dump-dom").stdout
    parsed = parse(dom)
    assert check_against_params_json(parsed, payloads) > 45
    assert len(parsed.svgs) > 10 and all(parsed.svg_titles.get(s) for s in parsed.svgs)


def test_dom_of_deepseek_v3_equals_params_json(chromium, tmp_path):
    path = REFERENCE_CONFIGS / "deepseek-ai__DeepSeek-V3"
    page, payloads = report(tmp_path, str(path))
    parsed = parse(browse(chromium, tmp_path, page, "--dump-dom").stdout)
    assert check_against_params_json(parsed, payloads) > 20
    assert parsed.figures[("moe.active_params", 0)][0] == payloads[0]["moe"]["active_params"]


def test_screenshot_is_not_blank(chromium, tmp_path):
    from PIL import Image

    page, _ = report(tmp_path, "Qwen/Qwen2-VL-2B-Instruct")
    shot = tmp_path / "shot.png"
    browse(chromium, tmp_path, page, f"--screenshot={shot}", "--window-size=1200,1400")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 1400)
    colours = len(image.getcolors(maxcolors=1 << 24))
    assert ink(image) > 0.02 and colours > 50, (ink(image), colours)
    # the figure area (below the key figures) is drawn too, not only the text at the top
    assert ink(image.crop((0, 700, 1200, 1400))) > 0.01


def ink(image) -> float:
    """Share of pixels darker than light grey."""
    histogram = image.convert("L").histogram()
    return sum(histogram[:200]) / sum(histogram)
