"""`trace` and `report` for models with no native family: transformers' forward on the meta device (issue 24, item 3).

Oracles, never our own code: transformers 5.25 builds the same config on meta here, forward hooks
registered in this file record every module's output tensor shapes, and each Linear's input and
output widths are its own weight's (in_features, out_features); the embedding and LM head widths are
config.json's hidden_size and vocab_size. Configs are transformers' own defaults
(`AutoConfig.for_model`), shrunk to a few layers keeping at least one attention layer (the same
shrinking as tests/test_hf_answer.py), so each case takes about a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]

NO_TORCH = """
import sys
sys.modules["torch"] = None  # `import torch` raises ModuleNotFoundError, as when it is not installed
from inspector.cli import main
sys.argv = ["inspect", *sys.argv[1:]]
main()
"""


def test_without_torch_trace_names_the_extra(tmp_path):
    """No torch: one line naming the `hf` extra, exit 2, nothing on stdout."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "glm_moe_dsa", "num_hidden_layers": 4}))
    done = subprocess.run([sys.executable, "-c", NO_TORCH, "trace", "-m", str(tmp_path), "--device", "meta",
                           "--seq-len", "16"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.count("\n") == 1 and 'pip install "llm-inspector[hf]"' in done.stderr, done.stderr


torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from hf_reference import config_dirs as write_config_dirs  # noqa: E402
from inspector.cli.app import app  # noqa: E402

N = 16  # --seq-len


def _default(model_type: str, **overrides) -> dict:
    cfg = transformers.AutoConfig.for_model(model_type, **overrides).to_dict()
    cfg["model_type"] = model_type
    return cfg


# Issue 24's non-native architectures, shrunk (at least one attention layer kept in each).
# qwen3_next left out since it has a native family (m24n): its native trace is checked against transformers there;
# kimi_linear and deepseek_v32 likewise since issue 24 (helper dsa; tests/test_dsa_families.py).
# gemma3n_text likewise (native since helper gem: tests/test_gemma_families.py).
SAMPLE = {
    # glm4_moe and minimax_m2 are native since issue 24 (helper moe4): glm4_moe_lite and exaone_moe stand in for them
    "glm4_moe_lite": _default("glm4_moe_lite", num_hidden_layers=2),
    "exaone_moe": _default("exaone_moe", num_hidden_layers=2),
    "glm_moe_dsa": _default("glm_moe_dsa", num_hidden_layers=2),
    "jamba": _default("jamba", num_hidden_layers=2, attn_layer_offset=1, attn_layer_period=2, expert_layer_offset=1,
                      expert_layer_period=2, num_experts=4),
}


@pytest.fixture(scope="module")
def config_dirs(tmp_path_factory):
    return write_config_dirs(tmp_path_factory.mktemp, SAMPLE)


def _flat(value) -> list:
    if isinstance(value, torch.Tensor):
        return [list(value.shape)]
    if isinstance(value, dict):  # transformers' ModelOutput
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [s for v in value for s in _flat(v)]
    return []


def _oracle(cfg: dict) -> tuple[dict, dict]:
    """Transformers' own forward on meta with hooks: name -> output shapes (first call), and each
    Linear's (in_features, out_features) from its weight."""
    config = transformers.AutoConfig.for_model(cfg["model_type"], **{k: v for k, v in cfg.items()
                                                                        if k != "model_type"})
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model = model.to(torch.bfloat16).eval()
    seen: dict[str, list] = {}

    def hook(name):
        def record(module, args, out):
            seen.setdefault(name, _flat(out))  # returns None: the output is kept

        return record

    hooks = [m.register_forward_hook(hook(name)) for name, m in model.named_modules() if name]
    ids = torch.zeros(1, N, dtype=torch.long, device="meta")
    pos = torch.arange(N, device="meta")[None]
    with torch.no_grad():
        try:
            model(input_ids=ids, position_ids=pos, use_cache=True, attention_mask=torch.ones(1, N, dtype=torch.long,
                                                                                            device="meta"))
        except Exception as e:  # a recurrent mask that reads values: the same without a mask
            if "meta" not in str(e):
                raise
            seen.clear()
            model(input_ids=ids, position_ids=pos, use_cache=True, attention_mask=None)
    for h in hooks:
        h.remove()
    linears = {name: tuple(m.weight.shape[::-1]) for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear)}
    return seen, linears


@pytest.mark.parametrize("name", list(SAMPLE))
def test_trace_module_shapes_equal_transformers_hooks(name, config_dirs):
    result = runner.invoke(app, ["trace", "-m", config_dirs[name], "--device", "meta", "--seq-len", str(N),
                                 "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["path"] == "transformers" and data["device"] == "meta" and data["seq_len"] == N
    ours: dict[str, list] = {}
    inputs: dict[str, list] = {}
    for step in data["steps"]:
        shape = step["shape"]
        shapes = [shape] if shape and isinstance(shape[0], int) else shape
        ours.setdefault(step["name"], shapes)
        inputs.setdefault(step["name"], step["input_shape"])
    seen, linears = _oracle(SAMPLE[name])
    assert ours == seen
    for module, (width_in, width_out) in linears.items():
        if module in ours and ours[module]:  # an expert that meta routed nothing to never ran
            assert inputs[module][0][-1] == width_in and ours[module][0][-1] == width_out, module
    cfg = SAMPLE[name]
    assert ours["lm_head"] == [[1, N, cfg["vocab_size"]]]
    assert ours["model.embed_tokens"][0] == [1, N, cfg["hidden_size"]]


def test_trace_table_says_which_path_answered(config_dirs):
    result = runner.invoke(app, ["trace", "-m", config_dirs["glm_moe_dsa"], "--seq-len", str(N), "-f", "md"])
    assert result.exit_code == 0, result.output
    assert "- from transformers 5.25 on the meta device (GlmMoeDsaForCausalLM; no native family)" in result.stdout
    assert "| model.layers.0.self_attn " in result.stdout and "| lm_head " in result.stdout
    assert "same shapes as layer 0" in result.stdout  # layer 1 (DSA, dense MLP) folds into layer 0


@pytest.mark.parametrize("args, names", [
    (["Hello"], "PROMPT"), (["--device", "cpu"], "--device cpu"), (["--decode-steps", "2"], "--decode-steps"),
    (["--dtype", "int8"], "--dtype"),
])
def test_trace_refuses_what_the_path_cannot_do(args, names, config_dirs):
    seq = [] if args == ["Hello"] else ["--seq-len", str(N)]
    result = runner.invoke(app, ["trace", "-m", config_dirs["glm4_moe_lite"], *seq, *args])
    assert result.exit_code == 2 and names in result.stderr, result.output
    assert result.stderr.count("\n") == 1 and result.stdout == ""


class _Checker(HTMLParser):
    """Every element closed in order (void elements aside)."""

    VOID = {"meta", "br", "img", "hr", "input", "link"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_report_page_holds_the_module_tree(config_dirs, tmp_path):
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["report", config_dirs["glm_moe_dsa"], "qwen2.5-0.5b", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    checker = _Checker()
    checker.feed(text)
    assert text.startswith("<!DOCTYPE html>") and not checker.errors and not checker.stack
    assert 'data-section="module-tree"' in text and "GlmMoeDsaForCausalLM; no native family" in text
    vocab = SAMPLE["glm_moe_dsa"]["vocab_size"]
    assert f"(1, {N}, {vocab})" in text  # the LM head's output
    assert "qwen2.5-0.5b" in text.lower() or "Qwen2.5-0.5B" in text  # the native model beside it, drawn


def test_report_refuses_trace_for_a_model_with_no_native_family(config_dirs, tmp_path):
    result = runner.invoke(app, ["report", config_dirs["glm4_moe_lite"], "--trace", "Hi", "-o", str(tmp_path / "p.html")])
    assert result.exit_code == 2 and "--trace" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "p.html").exists()


# Item 4, no silent difference between the paths: a native family traced natively and through transformers
# (inspector.runtime.hf_trace on the same config) gives the same shapes, module for module (llama-style names).
NATIVE_TO_HF = {"embed": "model.embed_tokens", "lm_head": "lm_head", "attn.q": "self_attn.q_proj",
                "attn.k": "self_attn.k_proj", "attn.v": "self_attn.v_proj", "attn.o": "self_attn.o_proj",
                "mlp.gate": "mlp.gate_proj", "mlp.up": "mlp.up_proj", "mlp.down": "mlp.down_proj"}


def _hf_name(name: str) -> str | None:
    if name in NATIVE_TO_HF:
        return NATIVE_TO_HF[name]
    head, _, rest = name.partition(".")
    index, _, part = rest.partition(".")
    if head == "layers" and index.isdigit():
        return f"model.layers.{index}" + (f".{NATIVE_TO_HF[part]}" if part in NATIVE_TO_HF else "" if not part
                                          else "?")
    return None


@pytest.mark.parametrize("preset", ["qwen2.5-0.5b", "llama-3.2-1b"])
def test_native_and_transformers_paths_give_the_same_shapes(preset, tmp_path):
    """The preset's config.json with 2 layers, traced natively (CLI) and through transformers (hf_trace)."""
    from inspector.runtime.hf_trace import hf_trace
    from inspector.source import resolve

    cfg = {**resolve(preset).config, "num_hidden_layers": 2}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    result = runner.invoke(app, ["trace", "-m", str(tmp_path), "--device", "meta", "--seq-len", str(N), "-f", "json"])
    assert result.exit_code == 0, result.output
    native = {s["name"]: s["shape"] for s in json.loads(result.stdout)["steps"]}
    hf = {}
    for r in hf_trace(cfg, preset, "config.json", N).records:
        hf.setdefault(r.record.name, list(r.record.shapes[0]))
    pairs = [(name, _hf_name(name)) for name in native if _hf_name(name) in hf]
    assert len(pairs) == 2 + 8 * 2  # embed, head; per layer q k v o gate up down and the block
    for name, other in pairs:
        assert native[name] == hf[other], (name, other)


def test_a_forward_meta_cannot_run_in_full_is_traced_with_a_prepared_mask(tmp_path):
    """BERT not marked as a decoder: its bidirectional mask code asks for values (is the mask all ones); traced
    with a prepared 4-D mask, said in one note; the logits are (1, N, vocab_size)."""
    cfg = _default("bert", num_hidden_layers=2)  # the default: not marked as a decoder
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    result = runner.invoke(app, ["trace", "-m", str(tmp_path), "--seq-len", str(N), "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert any(n.startswith("run with a prepared 4-D attention mask") for n in data["notes"])
    shapes = {s["name"]: s["shape"] for s in data["steps"]}
    assert shapes["cls.predictions.decoder"] == [1, N, cfg["vocab_size"]]
    assert len(data["steps"]) == len({s["name"] for s in data["steps"]})  # no record of the failed tries
