"""The FLOPs ledger (inspector.compute) against independent counts: torch's FlopCounterMode on the meta device
over the reference model and over transformers' eager model (prefill at two lengths, one decode step), every
family tiny and a few real shapes (MoE at a uniform expert load, top_k per token by default); a brute-force
count of the keys a query may see, training as forward + backward counted by torch, and the published figures
of PaLM and Megatron-LM (fixtures/compute/, sources in its README)."""

from __future__ import annotations

import contextlib
import copy
import inspect as pyinspect
import json

import pytest

from conftest import ROOT, tiny_config
from inspector.compute.conventions import (
    decode_bytes, megatron_flops, megatron_iteration_flops, train_flops, train_flops_6nd,
)
from inspector.compute.flops import Pass, decode, ledger, prefill, visible_keys
from inspector.errors import InspectError
from inspector.inventory.accounting import account
from inspector.spec.model import from_hf_config
from inspector.spec.presets import get_preset

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from test_reference_families import CASES  # noqa: E402  tiny configs of every family with a reference forward
from ssm_configs import SSM_FORWARD  # noqa: E402

# The families CASES leaves out, tiny; with CASES every native family (the hybrids' Gated DeltaNet recurrence has no matmul in the reference: neither side counts it)
EXTRA_CASES = {
    "llama": tiny_config("llama"), "mistral": tiny_config("mistral", sliding_window=4), "qwen2": tiny_config("qwen2"),
    "qwen3": tiny_config("qwen3", head_dim=8), "phi3": tiny_config("phi3", pad_token_id=0),
    "gpt2": {"model_type": "gpt2", "vocab_size": 101, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64},
    "internlm2": tiny_config("internlm2"),  # not in transformers (remote code): the reference only
    "qwen3_next": tiny_config("qwen3_next", head_dim=8, num_hidden_layers=4, linear_num_key_heads=2,
                              linear_num_value_heads=4, linear_key_head_dim=8, linear_value_head_dim=8,
                              num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                              shared_expert_intermediate_size=16),
    "qwen3_5_text": tiny_config("qwen3_5_text", head_dim=8, num_hidden_layers=4, linear_num_key_heads=2,
                                linear_num_value_heads=4, linear_key_head_dim=8, linear_value_head_dim=8),
    "qwen3_5_moe_text": tiny_config("qwen3_5_moe_text", head_dim=8, num_hidden_layers=4, linear_num_key_heads=2,
                                    linear_num_value_heads=4, linear_key_head_dim=8, linear_value_head_dim=8,
                                    num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                                    shared_expert_intermediate_size=16),
    # -- issue 24 (helper dsa): DeepSeek-V3.2, an index_topk that drops keys (the reference computes every score)
    "deepseek_v32": tiny_config("deepseek_v32", num_hidden_layers=2, first_k_dense_replace=1, n_routed_experts=4,
                                num_experts_per_tok=2, n_group=2, topk_group=1, moe_intermediate_size=16,
                                kv_lora_rank=16, q_lora_rank=24, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=6,
                                num_key_value_heads=4, index_n_heads=4, index_head_dim=8, index_topk=3),
    # -- issue 24 (helper dsa): Kimi Linear, KDA layers around one NoPE MLA layer
    "kimi_linear": tiny_config("kimi_linear", num_hidden_layers=2, q_lora_rank=None, kv_lora_rank=16,
                               qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, num_key_value_heads=4,
                               num_experts=4, num_experts_per_token=2, moe_intermediate_size=16, pad_token_id=0,
                               bos_token_id=1, eos_token_id=2, linear_attn_config={
                                   "kda_layers": [1], "full_attn_layers": [2], "head_dim": 8, "num_heads": 2,
                                   "short_conv_kernel_size": 4}),
    # Gemma 4 / Gemma 3n (helper gem): sliding, full, KV-shared layers; k_eq_v global heads, double-wide MLP, PLE;
    # AltUp (3 streams), LAuReL, activation sparsity
    "gemma4_text": tiny_config("gemma4_text", head_dim=8, num_hidden_layers=4, sliding_window=4, num_kv_shared_layers=2,
                               layer_types=["sliding_attention", "full_attention"] * 2, use_double_wide_mlp=True,
                               attention_k_eq_v=True, num_global_key_value_heads=1, global_head_dim=16,
                               hidden_size_per_layer_input=4, vocab_size_per_layer_input=101),
    "gemma4_text-moe": tiny_config("gemma4_text", head_dim=8, num_hidden_layers=2, sliding_window=4,
                                   layer_types=["sliding_attention", "full_attention"], enable_moe_block=True,
                                   num_experts=4, top_k_experts=2, moe_intermediate_size=16,
                                   hidden_size_per_layer_input=0),
    "gemma3n_text": tiny_config("gemma3n_text", head_dim=8, num_hidden_layers=4, sliding_window=4,
                                num_kv_shared_layers=2, layer_types=["sliding_attention", "full_attention"] * 2,
                                intermediate_size=[48, 40, 48, 64], laurel_rank=4, hidden_size_per_layer_input=4,
                                vocab_size_per_layer_input=50, activation_sparsity_pattern=[0.95, 0.0, 0.0, 0.0],
                                altup_num_inputs=3),
    "deepseek_v2": tiny_config("deepseek_v2", n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
                               kv_lora_rank=16, q_lora_rank=None, qk_nope_head_dim=8, qk_rope_head_dim=4,
                               v_head_dim=8, num_key_value_heads=4, first_k_dense_replace=1, n_shared_experts=1),
}
# Mamba2 / short-convolution hybrids: the selective scan is elementwise in the reference (neither side counts it)
EXTRA_CASES.update({name: SSM_FORWARD[name] for name in ("nemotron_moe", "lfm2", "granitemoehybrid",
                                                                   "granitemoehybrid-moe-rope", "falcon_h1",
                                                                   "nemotron_h-latent-moe")})
# FLOPs see no difference between a case and its variant when the variant changes only what is not counted
# (norms, the order of residual additions): those are left to test_reference_families. Cases with several
# layers of one kind are cut to one layer of each kind, for time (every layer of a kind counts alike).
FLOP_IDENTICAL = {"gpt_neox-sequential": "gpt_neox", "phi-qk-layernorm": "phi"}
ONE_LAYER_OF_EACH_KIND = {
    "gemma2": {"num_hidden_layers": 2},  # sliding, full
    "gemma3_text": {"num_hidden_layers": 2, "layer_types": ["sliding_attention", "full_attention"]},
    "cohere2": {"num_hidden_layers": 2, "layer_types": ["sliding_attention", "full_attention"]},
    "smollm3": {"num_hidden_layers": 2, "no_rope_layers": [1, 0]},  # RoPE, NoPE
    "gpt_oss": {"num_hidden_layers": 2},  # sliding, full
}
CASES = {name: {**cfg, **ONE_LAYER_OF_EACH_KIND.get(name, {})}
         for name, cfg in {**CASES, **EXTRA_CASES}.items() if name not in FLOP_IDENTICAL}
NOT_IN_TRANSFORMERS = {"internlm2"}
VARIANTS = {"gemma-untied-bias", "deepseek_v3-no-q-latent-yarn"}  # a second config of a family
PUBLISHED = json.loads((ROOT / "fixtures" / "compute" / "published.json").read_text())
BATCH, LENGTHS, CONTEXT = 2, (5, 9), 9
# Real shapes on meta, beside the tiny configs of every family (CASES, which cover every family): MoE
# (Qwen3-30B-A3B), fused experts with biases, sinks and alternating sliding windows (gpt-oss), a VLM's
# language model with M-RoPE (Qwen2-VL). The first layers of each, one of every layer kind (gpt-oss: a
# sliding and a full one; all layers of a kind alike): the shapes are real, the time small. A run over every
# text preset at full size matched too (not in the suite). Llama-3.1-8B in test_llama_8b_prefill_figure.
PRESETS = {"qwen3-30b-a3b": 1, "gpt-oss-20b": 2, "qwen2-vl-2b": 1}
# transformers' eager model on meta, a real shape (2 layers: gemma-2's sliding and global layer both). A run
# over every dense preset matched too (not in the suite); Llama-3.1-8B's shape is test_llama_8b_prefill_figure's.
DENSE_PRESETS = {"gemma-2-2b": 2}


def preset_acc(name: str, layers: int | None = None):
    p = get_preset(name)
    return account(from_hf_config(first_layers(p.config, layers), p.hub_id))


def first_layers(config: dict, layers: int | None) -> dict:
    """A config cut to its first `layers` layers (its per-layer lists too); None: as it is. A deep copy:
    transformers writes into the nested dicts it is given (rope_theta into rope_scaling), and a preset's
    config is shared by every test of the process."""
    cfg = copy.deepcopy(dict(config))
    if not layers:
        return cfg
    cfg["num_hidden_layers"] = layers
    if isinstance(cfg.get("layer_types"), list):
        cfg["layer_types"] = cfg["layer_types"][:layers]
    return cfg


def counted(fn, out: list | None = None) -> int:
    """FlopCounterMode's total over `fn()`; its result appended to `out` when given."""
    with FlopCounterMode(display=False) as fc:
        result = fn()
    if out is not None:
        out.append(result)
    return fc.get_total_flops()


def reference_meta(spec, device: str = "meta"):
    """The reference text model of `spec`, built on `device` (meta: no memory), frozen; skips a family
    the reference has no forward pass for."""
    from inspector.reference.text import TextModel

    try:
        model = TextModel(spec.text, device=device).eval()
    except InspectError as e:
        if "no forward pass" in str(e):
            pytest.skip(str(e))
        raise
    return model.requires_grad_(False)  # torch's module tracker needs grad_fns on tensors that require grad


def ids(n: int, device: str = "meta"):
    return torch.zeros(BATCH, n, dtype=torch.long, device=device)


def reference_counts(spec, device: str = "meta", load: int | str | None = "top_k") -> tuple[list[int], int]:
    """FlopCounterMode over the reference forward: prefills of LENGTHS (the last one into a fresh cache),
    then a decode step after it (CONTEXT is the last length: three forwards, not four). On meta a MoE layer
    runs `load` experts per token spread evenly over the experts ("top_k": the model's; see
    uniform_experts; None: the reference's own stand-in, expert 0 on every token). On "cpu" the weights are
    random (seeded): a MoE router really picks top_k experts per token."""
    assert CONTEXT == LENGTHS[-1]
    model = reference_meta(spec, device)
    if device == "cpu":
        torch.manual_seed(0)
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.5)
    if load == "top_k":
        load = spec.text.moe.top_k if spec.text.moe else None
    with torch.no_grad(), uniform_experts(load):
        prefills = [counted(lambda: model(ids(n, device))) for n in LENGTHS[:-1]]
        cache = model.new_cache()
        prefills.append(counted(lambda: model(ids(CONTEXT, device), cache=cache)))
        step = counted(lambda: model(ids(1, device), cache=cache))
    return prefills, step


@contextlib.contextmanager
def uniform_experts(load: int | None):
    """On meta the reference has no routing decisions (expert 0 stands for the chosen experts, on every
    token). Within this block a meta MoE layer runs instead `load` experts per token, its T·load
    (token, slot) pairs dealt round-robin over the E experts (pair p to expert p mod E): a uniform
    load, every expert on ceil or floor of T·load/E tokens. None, or off meta: the reference as it is."""
    from inspector.reference.moe import MoE

    routed = MoE._routed

    def dealt(self, x, weights, ids, counts):
        if not x.is_meta or load is None:
            return routed(self, x, weights, ids, counts)
        pairs, out = x.shape[0] * load, torch.zeros_like(x)
        for e in range(min(self.n_experts, pairs)):
            out = out + self.experts.run(e, x[: len(range(e, pairs, self.n_experts))]).sum(0)
        return out

    MoE._routed = dealt
    try:
        yield
    finally:
        MoE._routed = routed


def ledger_counts(acc, load: float | None = None, sliding_cache: bool = False) -> tuple[list[int], int]:
    prefills = [ledger(acc, Pass(n, 0, BATCH, False, load)).computed for n in LENGTHS]
    return prefills, ledger(acc, decode(CONTEXT, BATCH, load, sliding_cache)).computed


def meta_load(acc) -> float | None:
    """The reference's own stand-in on meta runs expert 0 on every token (no routing decisions): one
    expert per token."""
    return 1 if acc.spec.text.moe is not None else None


# --------------------------------------------------------------------------- the figure


def test_llama_8b_prefill_figure():
    acc = preset_acc("llama-3.1-8b")
    t, book = acc.spec.text, ledger(acc, prefill(128))
    assert book.computed == 1_929_782_493_184
    matmul = sum(e.numel for e in acc.entries if len(e.shape) == 2 and e.role != "embed")
    assert book.computed == 2 * 128 * matmul + 4 * t.num_layers * 128**2 * t.hidden_size
    two = preset_acc("llama-3.1-8b", 2)  # torch's count over the first 2 layers (all 32 alike): the same rule
    model = reference_meta(two.spec)
    with torch.no_grad():
        assert counted(lambda: model(torch.zeros(1, 128, dtype=torch.long, device="meta"))) == \
            ledger(two, prefill(128)).computed


# --------------------------------------------------------------------------- the reference model


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_reference_tiny_families(case):
    """Every family, tiny, on the meta device; a MoE layer at a uniform load of top_k experts per token
    (the ledger's default load)."""
    spec = from_hf_config(CASES[case], case)
    assert reference_counts(spec) == ledger_counts(account(spec))


@pytest.mark.parametrize("name", list(PRESETS), ids=list(PRESETS))
def test_reference_presets(name):
    """Real shapes on meta; Qwen3-30B-A3B at a uniform load of top_k = 8 of its 128 experts per token,
    gpt-oss-20b at the reference's own stand-in (expert 0 on every token: one expert per token; dealing
    its 4 of 32 experts runs 32 expert calls a layer, for time; the tiny gpt_oss is dealt)."""
    acc = preset_acc(name, PRESETS[name])
    load = None if name == "gpt-oss-20b" else "top_k"
    assert reference_counts(acc.spec, load=load) == ledger_counts(acc, meta_load(acc) if load is None else None)


def test_reference_moe_at_a_given_load():
    """A tiny Mixtral (4 experts, top_k 2) on meta at loads other than top_k: the reference's own stand-in
    (expert 0 on every token: one expert per token) and a uniform load of 3 experts per token == the
    ledger at that load. On CPU with random weights its router really routes: top_k experts per token ==
    the ledger's default load."""
    spec = from_hf_config(CASES["mixtral"], "mixtral")
    acc = account(spec)
    assert reference_counts(spec, load=None) == ledger_counts(acc, meta_load(acc))
    assert reference_counts(spec, load=3) == ledger_counts(acc, 3)
    assert reference_counts(spec, "cpu") == ledger_counts(acc)


# --------------------------------------------------------------------------- transformers, eager, on meta


def hf_meta(cfg: dict, device: str = "meta"):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**cfg), attn_implementation="eager")
    return model.eval().requires_grad_(False)


def hf_counts(model) -> tuple[list[int], int]:
    """FlopCounterMode over transformers' forward, attention_mask and position_ids given (on meta it
    cannot infer them): prefills of LENGTHS, then one token after the last (CONTEXT), from its cache."""
    cache_arg = "cache" if "cache" in pyinspect.signature(model.forward).parameters else "past_key_values"
    device = model.device

    def run(n: int, start: int = 0, cache=None):
        mask = torch.ones(BATCH, start + n, dtype=torch.long, device=device)
        pos = torch.arange(start, start + n, device=device)[None].expand(BATCH, n)
        extra = {cache_arg: cache} if cache is not None else {}
        return model(input_ids=ids(n, device), attention_mask=mask, position_ids=pos, use_cache=True, **extra)

    assert CONTEXT == LENGTHS[-1]
    outs: list = []
    with torch.no_grad():
        prefills = [counted(lambda: run(n), outs) for n in LENGTHS]
        step = counted(lambda: run(1, CONTEXT, outs[-1].past_key_values))
    return prefills, step


# Every dense family once (a variant of a family, e.g. gemma-untied-bias, is left to the reference check).
# (transformers 5.25's Gated DeltaNet forward calls .item(), which the meta device refuses: the hybrids' FLOPs are
# checked against the reference model only, test_reference_tiny_families)
DENSE_CASES = [c for c in CASES if from_hf_config(CASES[c], c).text.moe is None and c not in NOT_IN_TRANSFORMERS
               and c not in VARIANTS and from_hf_config(CASES[c], c).text.linear is None]


def test_every_family_has_a_case():
    from inspector.spec.families import FAMILIES

    assert {from_hf_config(cfg, name).model_type for name, cfg in CASES.items()} == set(FAMILIES)


@pytest.mark.parametrize("case", DENSE_CASES, ids=DENSE_CASES)
def test_transformers_eager_tiny(case):
    """Every dense family, tiny, on the meta device. The spec is read from the config transformers saves
    (class defaults written out, as in a published config.json: a tiny dict leaves GLM-4's head_dim to its
    class default of 128)."""
    pytest.importorskip("transformers")
    model = hf_meta(CASES[case])
    acc = account(from_hf_config(model.config.to_dict(), case))
    assert hf_counts(model) == ledger_counts(acc, sliding_cache=True)


@pytest.mark.parametrize("name", list(DENSE_PRESETS), ids=list(DENSE_PRESETS))
def test_transformers_eager_presets(name):
    pytest.importorskip("transformers")
    cfg = first_layers(get_preset(name).config, DENSE_PRESETS[name])
    assert hf_counts(hf_meta(cfg)) == ledger_counts(preset_acc(name, DENSE_PRESETS[name]), sliding_cache=True)


# --------------------------------------------------------------------------- as needed


def brute_visible(step: Pass, window: int | None, chunk: int | None) -> int:
    """Keys each new query may see, pair by pair."""
    total = 0
    for i in range(step.cached, step.cached + step.new):
        for j in range(i + 1):
            if (window is None or j > i - window) and (chunk is None or j // chunk == i // chunk):
                total += 1
    return total


@pytest.mark.parametrize("cached,new", [(0, 1), (0, 7), (0, 40), (5, 1), (33, 1), (3, 20), (17, 9)])
@pytest.mark.parametrize("window,chunk", [(None, None), (4, None), (8, None), (None, 4), (None, 16)])
def test_visible_keys(cached, new, window, chunk):
    step = Pass(new, cached)
    assert visible_keys(step, window, chunk) == brute_visible(step, window, chunk)


def test_as_needed_caps_and_routes():
    acc = preset_acc("gemma-3-1b-it")  # 5 of 6 layers slide over 512 keys
    t, n = acc.spec.text, 1536  # three windows long
    book = ledger(acc, prefill(n))
    per_pair = 2 * t.num_heads * 2 * t.head_dim
    full = sum(1 for i in range(t.num_layers) if t.window(i) is None)
    attention = per_pair * (full * n * (n + 1) // 2 + (t.num_layers - full) * brute_visible(prefill(n), 512, None))
    rows = book.by_row()
    attn_computed = rows[("language_model", "Attention layer")].computed
    assert rows[("language_model", "Attention layer")].needed == attn_computed - per_pair * t.num_layers * n * n + \
        attention
    moe = preset_acc("qwen3-30b-a3b", 4)  # top 8 of 128 experts
    routed = ledger(moe, prefill(16)).by_row()[("language_model", "Experts (routed)")]
    uniform = ledger(moe, prefill(16, experts_per_token=1)).by_row()[("language_model", "Experts (routed)")]
    assert routed.needed == routed.computed == 8 * uniform.computed


# --------------------------------------------------------------------------- training


TRAIN_CASES = {"llama": CASES["llama"], "gemma2": CASES["gemma2"], "phi": CASES["phi"]}


@pytest.mark.parametrize("name", list(TRAIN_CASES), ids=list(TRAIN_CASES))
def test_training_is_three_forwards(name):
    """Forward + backward counted by torch on meta (every parameter trainable) = 3 forwards. Dense
    families only: on meta an MoE layer's router output is unused (expert 0 stands in), so torch
    runs no backward through the router."""
    spec = from_hf_config(TRAIN_CASES[name], name)
    acc = account(spec)
    model = reference_meta(spec).requires_grad_(True)
    n = LENGTHS[1]
    counted_train = counted(lambda: model(ids(n)).sum().backward())
    assert counted_train == 3 * ledger(acc, Pass(n, 0, BATCH, False, meta_load(acc))).computed
    assert train_flops(acc, BATCH * n, n, experts_per_token=meta_load(acc)).computed == counted_train


def test_megatron_equation_3():
    """The ledger with full recomputation equals Narayanan et al.'s eq. 3 on the GPT-3 175B shape."""
    fig = PUBLISHED["megatron_gpt3_175b"]
    cfg = fig["config"]
    acc = account(from_hf_config(cfg, "gpt3-175b"))
    b, s = 1536, fig["seq_len"]
    ours = train_flops(acc, b * s, s, recompute=True).computed
    assert ours == megatron_iteration_flops(b, s, cfg["n_layer"], cfg["n_embd"], cfg["vocab_size"])
    assert acc.totals.total_params == pytest.approx(fig["params"], rel=0.01)
    published = megatron_flops(fig["params"], fig["tokens"])
    assert megatron_flops(acc.totals.total_params, fig["tokens"]) == pytest.approx(published, rel=0.03)
    days = published / (fig["gpus"] * fig["tflops_per_gpu"] * 1e12) / 86400
    assert days == pytest.approx(fig["days"], rel=0.03)


def test_palm_6nd():
    fig = PUBLISHED["palm_540b"]
    acc = account(from_hf_config(fig["config"], "palm-540b"))
    assert acc.totals.total_params == pytest.approx(fig["params"], rel=0.01)
    assert train_flops_6nd(fig["params"], fig["tokens"]) == pytest.approx(fig["train_flops"], rel=0.03)
    train = train_flops(acc, fig["tokens"], 2048)
    assert train.convention("6ND") == pytest.approx(fig["train_flops"], rel=0.03)


# --------------------------------------------------------------------------- bytes per decode step


def test_decode_bytes_llama_8b():
    acc = preset_acc("llama-3.1-8b")
    t = acc.spec.text
    read = decode_bytes(acc, decode(4096))
    embed = t.vocab_size * t.hidden_size
    assert read.weight_params == acc.totals.total_params - embed + t.hidden_size  # one embedding row
    assert read.kv_bytes == 2 * t.num_layers * t.num_kv_heads * t.head_dim * 2 * 4096
    assert read.intensity == read.flops_needed / (read.weight_bytes + read.kv_bytes)
    with pytest.raises(InspectError):
        decode_bytes(acc, prefill(8))


# --------------------------------------------------------------------------- vision towers and projectors


# Two towers of different kinds: windowed blocks with a patch merger (Qwen2.5-VL), tiles with pixel
# shuffle (SmolVLM, 17 tiles). The others (Qwen2-VL, Qwen3-VL, Gemma 3, LLaVA-OneVision, InternVL3, Pixtral,
# Llama 4's tiles with a linear patch embedding) matched too; not in the suite, for its time (the per-family
# text checks on meta above cost more than the CPU ones they replaced).
VLM_PRESETS = ("Qwen/Qwen2.5-VL-7B-Instruct", "HuggingFaceTB/SmolVLM-Instruct")


@pytest.mark.parametrize("model", VLM_PRESETS, ids=[m.split("/")[1] for m in VLM_PRESETS])
def test_vision_tower_and_projector(model):
    """FlopCounterMode over the reference tower and projector on meta (one 300x700 image: several tiles
    for the tiling towers, a non-square grid for the others) == the vision rows of the ledger."""
    from inspector.compute.flops import vision_ledger, vision_pass
    from inspector.image.preprocess import synthetic_image
    from inspector.image.rules import image_pixels, image_tokens
    from inspector.reference.vision import build_vision
    from inspector.source import load_spec

    spec = load_spec(model)
    v, acc = spec.vision, account(spec)
    tower = build_vision(v, device="meta").requires_grad_(False)
    for h, w in ((300, 700),):
        pv, grid, layout = image_pixels(synthetic_image(h, w), v)
        with torch.no_grad():
            got = counted(lambda: tower.features(pv.to("meta"), layout, grid))
        vp = vision_pass(v, image_tokens(v, h, w, spec.text.hidden_size))
        book = vision_ledger(acc, vp)
        assert got == book.computed
        assert (book.needed < book.computed) == bool(vp.windows)  # only Qwen2.5-VL's windows save work
        assert {r.component for r in book.rows if r.computed} == {"vision_encoder", "projector"}


def test_mllama_vision_is_refused():
    from inspector.compute.flops import vision_pass
    from inspector.image.rules import image_tokens
    from inspector.source import load_spec

    v = load_spec("meta-llama/Llama-3.2-11B-Vision-Instruct").vision
    with pytest.raises(InspectError, match="Mllama"):
        vision_pass(v, image_tokens(v, 448, 448, 4096))


def test_figures_of_inspect_flops():
    """The JSON figures issue 22 names, each equal to its ledger; a VLM's image adds its tower once per sequence."""
    from inspector.compute.figures import FlopsRequest, flops_figures, row_flops
    from inspector.compute.flops import merged, vision_ledger, vision_pass
    from inspector.image.rules import image_tokens
    from inspector.source import load_spec

    acc = preset_acc("llama-3.1-8b")
    fig = flops_figures(acc, FlopsRequest(128, 1, 4096, train_tokens=10**9, recompute=True))
    assert fig["prefill_flops"] == 1_929_782_493_184
    assert fig["prefill_flops_last_logits"] == ledger(acc, prefill(128, last_logits=True)).computed
    assert fig["decode_flops"] == ledger(acc, decode(4096)).computed
    assert fig["train_flops_6nd"] == 6 * acc.totals.total_params * 10**9
    assert fig["train_flops"] == train_flops(acc, 10**9, 128, recompute=True).computed
    spec = load_spec("Qwen/Qwen2-VL-2B-Instruct")
    vlm = account(spec)
    vp = vision_pass(spec.vision, image_tokens(spec.vision, 448, 448, spec.text.hidden_size))
    image = vision_ledger(vlm, vp)
    req = FlopsRequest(300, 2, 1000, images=(vp,))
    assert flops_figures(vlm, req)["prefill_flops"] == ledger(vlm, prefill(300, 2)).computed + 2 * image.computed
    rows = row_flops(vlm, req)
    assert set(rows) == {(r.component, r.name) for r in vlm.rows}
    assert sum(cell["prefill"] for cell in rows.values()) == merged(ledger(vlm, prefill(300, 2)), image, image).computed


def test_palm_convention_is_the_exact_count_of_a_tied_model():
    """On PaLM's shape (shared embeddings, no biases) the exact training count is PaLM's 6N + 12LHQT
    with N all parameters but the norms' (the embedding is a lookup, its transpose the LM head)."""
    fig = PUBLISHED["palm_540b"]
    acc = account(from_hf_config(fig["config"], "palm-540b"))
    t, seq, tokens = acc.spec.text, 2048, 2048 * 1000
    norms = sum(e.numel for e in acc.entries if len(e.shape) == 1)
    train = train_flops(acc, tokens, seq)
    palm = train.convention("PaLM")
    assert palm == (6 * acc.totals.total_params + 12 * t.num_layers * t.num_heads * t.head_dim * seq) * tokens
    assert train.computed == palm - 6 * norms * tokens


def test_sdpa_on_meta_counts_the_full_score_matrix():
    """torch's SDPA, causal or not, is counted on meta as Q K^T and P V over every key: "as computed".
    (On CPU torch 2.13's flash kernel for CPU has no FLOPs formula: FlopCounterMode counts 0 there.)"""
    import torch.nn.functional as F

    acc = account(from_hf_config(CASES["llama"], "llama"))
    t = acc.spec.text
    q = torch.zeros(BATCH, t.num_heads, LENGTHS[1], t.head_dim, device="meta")
    from inspector.compute.flops import attention_flops

    computed, needed = attention_flops(t, 0, Pass(LENGTHS[1], 0, BATCH))
    for causal in (False, True):
        assert counted(lambda: F.scaled_dot_product_attention(q, q, q, is_causal=causal)) == computed > needed


def test_qwen25_vl_windows_as_needed():
    """Qwen2.5-VL: the windows vision_pass lays over the grid are those of the reference's window_order
    (an independent implementation in torch), and its windowed blocks need only their windows."""
    from inspector.compute.flops import vision_ledger, vision_pass
    from inspector.image.rules import image_tokens
    from inspector.reference.vision_qwen import window_order
    from inspector.source import load_spec

    spec = load_spec("Qwen/Qwen2.5-VL-7B-Instruct")
    v, acc = spec.vision, account(spec)
    it = image_tokens(v, 300, 700, spec.text.hidden_size)
    vp = vision_pass(v, it)
    assert list(vp.windows) == window_order(v, torch.tensor([it.grid]))[1]
    book = vision_ledger(acc, vp).by_row()[("vision_encoder", "Attention layer")]
    enc = v.encoder
    per_pair, windowed = 4 * enc.num_heads * enc.head_dim, enc.depth - len(enc.fullatt_blocks)
    full = len(enc.fullatt_blocks) * vp.length**2 + windowed * sum(w * w for w in vp.windows)
    assert book.needed - book.computed == per_pair * full - per_pair * enc.depth * vp.length**2


# --------------------------------------------------------------------------- Gated DeltaNet over chunks

HYBRIDS = [c for c in CASES if from_hf_config(CASES[c], c).text.linear is not None]


@pytest.mark.parametrize("case", HYBRIDS, ids=HYBRIDS)
def test_deltanet_prefill_over_several_chunks(case):
    """A prefill of 130 tokens runs the chunked delta rule over 3 chunks of 64 (padded; transformers'
    torch_chunk_gated_delta_rule), then a decode token the recurrent form: FlopCounterMode over the
    reference on meta == the ledger (recurrence and the conv's padded outputs included)."""
    spec = from_hf_config(CASES[case], case)
    model, acc = reference_meta(spec), account(spec)
    with torch.no_grad(), uniform_experts(spec.text.moe.top_k if spec.text.moe else None):
        cache = model.new_cache()
        prefill_count = counted(lambda: model(ids(130), cache=cache))
        step = counted(lambda: model(ids(1), cache=cache))
    assert prefill_count == ledger(acc, Pass(130, 0, BATCH)).computed
    assert step == ledger(acc, Pass(1, 130, BATCH)).computed
