"""The other ways of running a transformers forward (inspector.runtime.hf_run) answer what the plain meta one does.

Oracles: transformers 5.25's own cache objects and torch's FlopCounterMode over its own forward with
the plain inputs (an all-ones 2-D mask and positions), never our code. Tiny default configs (2 layers)
so each case takes about a second.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from typer.testing import CliRunner  # noqa: E402

from inspector.cli.app import app  # noqa: E402
from inspector.runtime import hf_run  # noqa: E402
from inspector.runtime.hf_cache import measure_cache  # noqa: E402
from inspector.runtime.hf_flops import measure_flops  # noqa: E402

runner = CliRunner()


def _default(model_type: str, **overrides) -> dict:
    cfg = transformers.AutoConfig.for_model(model_type, **overrides).to_dict()
    cfg["model_type"] = model_type
    return cfg


# Widths small enough for the CPU twin's forward to take milliseconds (the twin is exact at any size).
SMALL = dict(hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2, vocab_size=1024)
# Configs that run on meta with the first tries (Bamba: without a mask): a dense decoder, sliding-window layers,
# and a Mamba2 + attention hybrid (recurrent state). Only the prepared 4-D mask is tried for them below.
BOTH_RUN = {
    "llama": _default("llama", num_hidden_layers=2, hidden_size=256, intermediate_size=512, num_attention_heads=4,
                      num_key_value_heads=2),
    "gemma3_text": _default("gemma3_text", num_hidden_layers=2, sliding_window=8, layer_types=[
        "sliding_attention", "full_attention"], **SMALL, head_dim=64),
    "bamba": _default("bamba", num_hidden_layers=2, attn_layer_indices=[1], **SMALL, mamba_n_heads=8,
                      mamba_d_head=64, mamba_d_state=16),
}


def _only_4d(monkeypatch):
    """Every forward gets the prepared 4-D mask (the third try) and nothing else."""
    tries = hf_run.variants
    monkeypatch.setattr(hf_run, "variants", lambda *a, **k: [tries(*a, **k)[2]])
    for module in ("hf_cache", "hf_flops"):
        monkeypatch.setattr(f"inspector.runtime.{module}.variants", hf_run.variants)


@pytest.mark.parametrize("name", list(BOTH_RUN))
def test_a_prepared_4d_mask_measures_what_the_plain_forward_does(name, monkeypatch):
    """Where both run, the cache's layers (KV per token, windows, state shapes) and the prefill and decode FLOPs
    are the same with the 4-D mask as with an all-ones 2-D mask."""
    cfg = BOTH_RUN[name]
    plain_cache, plain_flops = measure_cache(cfg), measure_flops(cfg, "config.json", 16, 12)
    assert hf_run.MASK_4D not in plain_cache.notes and plain_flops.decode is not None
    _only_4d(monkeypatch)
    cache, flops = measure_cache(cfg), measure_flops(cfg, "config.json", 16, 12)
    assert cache.notes == (hf_run.MASK_4D,)
    assert [(x.kind, x.kv_elements_per_token, x.window, x.state_shapes) for x in cache.layers] == \
        [(x.kind, x.kv_elements_per_token, x.window, x.state_shapes) for x in plain_cache.layers]
    assert (flops.prefill, flops.prefill_head) == (plain_flops.prefill, plain_flops.prefill_head)
    if name == "gemma3_text":  # one mask for all layers does not fit a sliding layer's capped cache: refused, not wrong
        assert flops.decode is None and any("does not run on meta" in n for n in flops.notes)
    else:
        assert flops.decode == plain_flops.decode


def _transformers_states(cfg: dict) -> list[tuple]:
    """The conv and recurrent state shapes and dtypes transformers' own cache holds after a forward without a
    mask (Bamba's Mamba mask code reads values)."""
    config = transformers.AutoConfig.for_model(cfg["model_type"], **{k: v for k, v in cfg.items()
                                                                        if k != "model_type"})
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model = model.to(torch.bfloat16).eval()
    with torch.no_grad():
        cache = model(input_ids=torch.zeros(1, 4, dtype=torch.long, device="meta"), use_cache=True).cache
    return [(tuple(t.shape[1:]), str(t.dtype).removeprefix("torch."))
            for layer in cache.layers for name in ("conv_states", "recurrent_states")
            for t in (getattr(layer, name, None) or {}).values()]


def test_an_all_recurrent_model_is_measured_through_the_4d_mask(tmp_path):
    """Bamba's default layers are all Mamba2: transformers' mask code asks its cache for sizes that only an
    attention layer has. With the 4-D mask every layer's state is transformers' own Mamba2 state, as the
    same layers hold it in a model with one attention layer (where the plain forward runs)."""
    cfg = _default("bamba", num_hidden_layers=2, attn_layer_indices=[])
    m = measure_cache(cfg)
    assert m.notes == (hf_run.MASK_4D,) and m.kv_layers == 0
    one_mamba = _transformers_states(_default("bamba", num_hidden_layers=2, attn_layer_indices=[1]))
    assert [(s[1][1:], s[2]) for x in m.layers for s in x.state_shapes] == one_mamba * 2
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    result = runner.invoke(app, ["memory", str(tmp_path), "--gpu", "H100-80GB", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kv_layers"] == 0 and data["state_bytes_per_sequence"] == m.state_bytes_per_sequence() > 0
    assert data["notes"] == [hf_run.MASK_4D]  # how the figure was measured, in the JSON too
    result = runner.invoke(app, ["flops", str(tmp_path), "--seq-len", "16", "--context", "8", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert hf_run.MASK_4D in data["notes"] and data["prefill_flops"] > 0 and data["decode_flops"] > 0


def test_an_encoder_listed_as_a_causal_lm_is_measured_as_its_decoder(tmp_path):
    """BERT's default config is not a decoder: transformers' BertLMHeadModel then keeps no cache. `memory`
    measures the decoder transformers asks for (is_decoder true): 2 x hidden KV elements per layer per token;
    `flops` counts the prefill as configured (4-D mask) and it equals the decoder's under FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = _default("bert", num_hidden_layers=2, hidden_size=128, intermediate_size=256, num_attention_heads=2)
    m = measure_cache(cfg)
    assert m.notes[0].startswith("measured as a decoder") and m.kv_layers == 2
    assert m.kv_bytes_per_token() == 2 * 2 * 128 * 2  # layers x (K + V) x hidden x bf16
    f = measure_flops(cfg, "config.json", 16, 8)
    config = transformers.AutoConfig.for_model("bert", **{**{k: v for k, v in cfg.items() if k != "model_type"},
                                                         "is_decoder": True})
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model = model.to(torch.bfloat16).eval().requires_grad_(False)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(input_ids=torch.zeros(1, 16, dtype=torch.long, device="meta"), use_cache=True,
              attention_mask=torch.ones(1, 16, dtype=torch.long, device="meta"))
    assert f.prefill == counter.get_total_flops() and f.decode is not None
    assert any(n.startswith("measured as a decoder") for n in f.notes)


def _meta_refused(monkeypatch):
    """Every forward on the meta device fails as a value read would (`.item()`): the CPU twin answers."""
    from inspector.runtime import hf_cache, hf_flops, hf_trace

    def refusing(built, run, dtype):
        def on_cpu_only(b):
            if hf_run.device_of(b.model).type == "meta":
                raise RuntimeError("Tensor.item() cannot be called on meta tensors")
            return run(b)
        return hf_run.on_meta_or_cpu(built, on_cpu_only, dtype)

    for module in (hf_cache, hf_flops, hf_trace):
        monkeypatch.setattr(module, "on_meta_or_cpu", refusing)


@pytest.mark.parametrize("name", list(BOTH_RUN))
def test_the_cpu_twin_measures_what_meta_does(name, monkeypatch):
    """Where meta runs the forward, the CPU twin (zero weights of no memory, full size) gives the same cache
    layers, prefill and decode FLOPs and module shapes."""
    from inspector.runtime.hf_trace import hf_trace

    cfg = BOTH_RUN[name]
    meta = (measure_cache(cfg), measure_flops(cfg, "config.json", 16, 12), hf_trace(cfg, name, "config.json", 8))
    _meta_refused(monkeypatch)
    cpu = (measure_cache(cfg), measure_flops(cfg, "config.json", 16, 12), hf_trace(cfg, name, "config.json", 8))
    assert all(x.notes[0].startswith("run on the CPU with every weight zero") for x in cpu)
    assert [(x.kind, x.kv_elements_per_token, x.window, x.state_shapes) for x in cpu[0].layers] == \
        [(x.kind, x.kv_elements_per_token, x.window, x.state_shapes) for x in meta[0].layers]
    assert (cpu[1].prefill, cpu[1].decode, cpu[1].prefill_head) == \
        (meta[1].prefill, meta[1].decode, meta[1].prefill_head)
    assert [(r.record.name, r.record.shapes) for r in cpu[2].records] == \
        [(r.record.name, r.record.shapes) for r in meta[2].records]


def test_a_forward_that_reads_routing_counts_runs_on_the_cpu(tmp_path):
    """JetMoE's router turns expert counts into a list (`.tolist()`), which meta cannot: all four commands answer
    from the CPU twin; KV bytes and FLOPs equal transformers' own CPU forward with random weights (every token
    still reaches top_k experts of each mixture, whatever the weights)."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = _default("jetmoe", num_hidden_layers=2, hidden_size=64, intermediate_size=128, kv_channels=16,
                   num_key_value_heads=2, vocab_size=512)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    config = transformers.AutoConfig.for_model("jetmoe", **{k: v for k, v in cfg.items() if k != "model_type"})
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = model(input_ids=torch.randint(0, 512, (1, 16)), use_cache=True)
    kv = sum(t.numel() // t.shape[-2] * 2 for layer in out.cache.layers for t in (layer.keys, layer.values))
    result = runner.invoke(app, ["memory", str(tmp_path), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kv_bytes_per_token"] == kv
    result = runner.invoke(app, ["flops", str(tmp_path), "--seq-len", "16", "--context", "8", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["prefill_flops"] == counter.get_total_flops() and data["decode_flops"] > 0
    assert data["notes"][0].startswith("run on the CPU with every weight zero")
    for args in (["params", str(tmp_path)], ["trace", "-m", str(tmp_path), "--seq-len", "8"]):
        assert runner.invoke(app, [*args, "-f", "json"]).exit_code == 0


def test_a_cache_without_layers_is_read_by_layer_index():
    """xLSTM's cache keeps no `layers`: a dict `rnn_state` of layer index -> (C, n, m). Each layer's state is
    what transformers' own cache holds for it after the forward (shapes and widths), and no KV."""
    cfg = _default("xlstm", num_hidden_layers=2, hidden_size=128, num_heads=2, vocab_size=256)
    m = measure_cache(cfg)
    config = transformers.AutoConfig.for_model("xlstm", **{k: v for k, v in cfg.items() if k != "model_type"})
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config).to(torch.bfloat16).eval()
    with torch.no_grad():
        cache = model(input_ids=torch.zeros(1, 4, dtype=torch.long, device="meta"), use_cache=True).cache
    per_layer = {i: sum(t.numel() * t.element_size() for t in held) for i, held in cache.rnn_state.items()}
    assert len(per_layer) == 2 and m.kv_layers == 0
    assert {x.index: x.state_bytes for x in m.layers} == per_layer


# Models that return no cache object (transformers 5.25). Tiny configs; each one's oracle reads transformers' own
# tensors by their own names: RWKV's `outputs.state`, XLNet's `outputs.mems`, RecurrentGemma's module states and the
# cache `generate` returns, XLM's cache from `generate`; GPT-1 takes no cache and returns none.
KEEPS = {
    "rwkv": _default("rwkv", num_hidden_layers=2, hidden_size=64, attention_hidden_size=64, intermediate_size=128,
                     vocab_size=256, context_length=64),
    "recurrent_gemma": _default("recurrent_gemma", num_hidden_layers=3, hidden_size=64, lru_width=64,
                                intermediate_size=128, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                                vocab_size=256, attention_window_size=16),
    "xlm": _default("xlm", n_layers=2, emb_dim=64, n_heads=2, vocab_size=256, max_position_embeddings=64),
    "xlnet": _default("xlnet", n_layer=2, d_model=64, n_head=2, d_inner=128, vocab_size=256, mem_len=16),
    "openai-gpt": _default("openai-gpt", n_layer=2, n_embd=64, n_head=2, vocab_size=256, n_positions=64),
}


def _kv_per_token(cache) -> int:
    """Elements of keys and values per token over a transformers cache's layers."""
    return sum((x.keys.numel() + x.values.numel()) // x.keys.shape[-2] for x in cache.layers
               if getattr(x, "keys", None) is not None and x.keys.numel())


def _transformers_keeps(name: str) -> tuple[int, int, int | None]:
    """(KV elements per token, state bytes per sequence, window) from transformers' own tensors after its own
    forward (CPU, random weights, 4 tokens of one sequence) or `generate`."""
    cfg = KEEPS[name]
    config = transformers.AutoConfig.for_model(name, **{k: v for k, v in cfg.items() if k != "model_type"})
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).to(torch.bfloat16).eval()
    ids = torch.randint(5, 200, (1, 4))
    with torch.no_grad():
        if name == "rwkv":
            return 0, sum(t.numel() * t.element_size() for t in model(ids, use_cache=True).state), None
        if name == "xlnet":
            mems = model(ids).mems
            return sum(t.numel() // t.shape[0] for t in mems), 0, config.mem_len
        if name == "openai-gpt":
            out = model(ids)
            assert hf_run.cache_argument(model) is None and not any("cache" in k for k in out.keys())
            return 0, 0, None
        cache = model.generate(ids, max_new_tokens=1, do_sample=False, return_dict_in_generate=True).cache
    if name == "xlm":
        return _kv_per_token(cache), 0, None
    states = [getattr(m, a) for m in model.modules() for a in ("conv1d_state", "recurrent_states")
              if isinstance(getattr(m, a, None), torch.Tensor)]  # RecurrentGemma's recurrent blocks' own names
    window = next(x.sliding_window for x in cache.layers if hasattr(x, "sliding_window"))
    return _kv_per_token(cache), sum(t.numel() * t.element_size() for t in states), window


@pytest.mark.parametrize("name", list(KEEPS))
def test_what_a_forward_keeps_outside_a_cache_is_measured(name, tmp_path):
    """KV per token, state per sequence and the window equal transformers' own tensors (GPT-1: KV 0, it keeps
    nothing). XLM's forward reads `lengths.max().item()`: the CPU twin answers, and `memory`'s path line says so."""
    kv, state, window = _transformers_keeps(name)
    m = measure_cache(KEEPS[name])
    assert (m.kv_bytes_per_token(), m.state_bytes_per_sequence()) == (kv * 2, state)
    assert {x.window for x in m.layers if x.keeps_kv} == ({window} if kv else set())
    assert m.keeps_cache == (name != "openai-gpt")
    if name == "xlm":
        (tmp_path / "config.json").write_text(json.dumps(KEEPS[name]))
        result = runner.invoke(app, ["memory", str(tmp_path), "--gpu", "H100-80GB"])
        assert result.exit_code == 0, result.output
        assert "from transformers 5.25 on the CPU with zero weights (XLMWithLMHeadModel; no native family)" in \
            " ".join(result.stdout.split())


def test_a_model_that_keeps_nothing_decodes_by_recomputing_the_prefix(tmp_path):
    """GPT-1 keeps no cache: `memory` answers KV 0 and says it keeps nothing; its decode step is transformers'
    forward of the context + 1 tokens, counted by FlopCounterMode over transformers' own model."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = KEEPS["openai-gpt"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    result = runner.invoke(app, ["memory", str(tmp_path), "--gpu", "H100-80GB", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["keeps_cache"], data["kv_bytes_per_token"], data["state_bytes_per_sequence"]) == (False, 0, 0)
    assert "keeps no cache" in data["notes"][-1]
    f = measure_flops(cfg, "config.json", 16, 8)
    config = transformers.AutoConfig.for_model("openai-gpt", **{k: v for k, v in cfg.items() if k != "model_type"})
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model = model.to(torch.bfloat16).eval().requires_grad_(False)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(input_ids=torch.zeros(1, 9, dtype=torch.long, device="meta"))
    assert f.decode == counter.get_total_flops() and "recomputes the whole prefix" in f.notes[0]


def test_an_error_the_cpu_shares_is_not_blamed_on_the_meta_device(tmp_path):
    """X-MOD's default config names no language: transformers' own forward fails on the CPU as on meta, so the
    one line says the same error happens on any device instead of blaming meta."""
    cfg = _default("xmod", num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=2,
                   vocab_size=256)
    config = transformers.AutoConfig.for_model("xmod", **{k: v for k, v in cfg.items() if k != "model_type"})
    with pytest.raises(Exception, match="Input language unknown"):
        transformers.AutoModelForCausalLM.from_config(config).eval()(torch.zeros(1, 4, dtype=torch.long))
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    for args in (["memory", str(tmp_path)], ["trace", "-m", str(tmp_path), "--seq-len", "8"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
        assert "cannot run xmod from this config on any device (the same error on the meta device and on the " \
               "CPU): Input language unknown" in result.stderr
