"""`inspect report`: page sizes, build times, browser render times, and the screenshots of docs/.

For each model (presets, and the published reference configs in fixtures/reference):
  - build: accounting + page, in process, interleaved over the models for `runs` rounds (median,
    min-max);
  - cli: `python -m inspector report MODEL -o page.html`, a cold process (median of `runs`);
  - browser: headless chromium loading the page and taking a 1300 px wide screenshot (median);
  - size: the page's bytes.
Prints a markdown table. With --screenshots DIR, also writes one PNG per model kind there (the
architecture at the top of the page, cropped at the first wide blank band, 64 colours).

Usage: python benchmarks/bench_report.py [--runs 5] [--screenshots docs/report]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inspector.inventory.accounting import account
from inspector.reports.html import ModelPage, page
from inspector.source import load_spec

SHARED = Path(__file__).resolve().parents[1] / "fixtures" / "reference" / "configs"
# Models without a preset are read from a directory holding their published config.json (copied
# from fixtures/reference into the temporary working directory, so pages name them as users would).
CONFIG_DIRS = {"DeepSeek-V3": "deepseek-ai__DeepSeek-V3", "Qwen3-30B-A3B": "Qwen__Qwen3-30B-A3B",
               "gpt-oss-120b": "openai__gpt-oss-120b", "phi-2": "microsoft__phi-2"}
MODELS = {  # docs name -> MODEL arguments
    "dense-qwen2.5-1.5b": ["Qwen/Qwen2.5-1.5B"],
    "vlm-qwen2-vl-2b": ["Qwen/Qwen2-VL-2B-Instruct"],
    "vlm-internvl2-2b": ["OpenGVLab/InternVL2-2B"],
    "side-by-side-llama3.2-1b-qwen2.5-1.5b": ["meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-1.5B"],
    "moe-mla-deepseek-v3": ["DeepSeek-V3"],
    "moe-qwen3-30b-a3b": ["Qwen3-30B-A3B"],
    "moe-gpt-oss-120b": ["gpt-oss-120b"],
    "parallel-phi-2": ["phi-2"],
}
SCREENSHOTS = ("dense-qwen2.5-1.5b", "moe-mla-deepseek-v3", "vlm-qwen2-vl-2b", "parallel-phi-2")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def build(models: list[str]) -> str:
    return page([ModelPage(account(load_spec(m))) for m in models])


def shoot(chromium: str, html: Path, png: Path, profile: Path, height: int = 2600) -> float:
    start = time.perf_counter()
    subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                    f"--window-size=1300,{height}", html.as_uri()], capture_output=True, check=True, timeout=120)
    return time.perf_counter() - start


def crop_for_docs(png: Path, out: Path) -> None:
    """Keep the top of the page down to the first blank band of 40 rows (the end of the figures)."""
    from PIL import Image

    image = Image.open(png).convert("L")
    width, height = image.size
    rows = [max(image.crop((0, y, width, y + 1)).histogram()[:240]) == 0 for y in range(height)]
    blank, end = 0, height
    for y in range(250, height):
        blank = blank + 1 if rows[y] else 0
        if blank == 40:
            end = y - 30
            break
    Image.open(png).convert("RGB").crop((0, 0, width, end)).quantize(64).save(out, optimize=True)


def main(runs: int, screenshots: Path | None) -> None:
    screenshots = screenshots.resolve() if screenshots else None
    tmp = Path(tempfile.mkdtemp())
    for name, source in CONFIG_DIRS.items():
        if (SHARED / source / "config.json").is_file():
            (tmp / name).mkdir()
            shutil.copy(SHARED / source / "config.json", tmp / name / "config.json")
    os.chdir(tmp)
    models = {k: v for k, v in MODELS.items() if all(m not in CONFIG_DIRS or Path(m).is_dir() for m in v)}
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    builds: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(runs):  # interleaved: every model once per round
        for key, args in models.items():
            start = time.perf_counter()
            build(args)
            builds[key].append(time.perf_counter() - start)
    print("| page | size | build, in process (median, min-max) | `inspect report`, cold process | chromium screenshot |")
    print("|---|---:|---:|---:|---:|")
    for key, args in models.items():
        out = tmp / f"{key}.html"
        cold = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "inspector", "report", *args, "-o", str(out)], check=True)
            cold.append(time.perf_counter() - start)
        shots = [shoot(chromium, out, tmp / f"{key}.png", tmp / "profile") for _ in range(runs)] if chromium else [0]
        b = builds[key]
        print(f"| {key} | {out.stat().st_size / 1024:.0f} KiB | {statistics.median(b):.3f} s ({min(b):.3f}-{max(b):.3f}) "
              f"| {statistics.median(cold):.2f} s ({min(cold):.2f}-{max(cold):.2f}) "
              f"| {statistics.median(shots):.2f} s ({min(shots):.2f}-{max(shots):.2f}) |")
        if screenshots is not None and chromium and key in SCREENSHOTS:
            crop_for_docs(tmp / f"{key}.png", screenshots / f"{key}.png")
    os.chdir(Path(__file__).parent)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--screenshots", type=Path, default=None)
    args = parser.parse_args()
    main(args.runs, args.screenshots)
