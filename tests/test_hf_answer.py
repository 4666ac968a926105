"""`memory` and `flops` for models with no native family, through transformers on the meta device (issue 24, items 3-4).

Oracles, never our own code: transformers 5.25's cache object after a meta forward (its layers' tensor
shapes, read here independently of inspector.runtime.hf_cache), torch's FlopCounterMode around the
same model's forward, and vLLM's state-shape formulas (vllm/model_executor/layers/mamba/mamba_utils.py
`MambaStateShapeCalculator`: gated_delta_net_state_shape, mamba2_state_shape, kda_state_shape; widths from
`MambaStateDtypeCalculator`) applied to config.json's fields. Configs are transformers' own defaults
(`AutoConfig.for_model`), shrunk to a few layers (keeping at least one attention layer) so each case
takes about a second. The arithmetic of vLLM's hybrid allocator (inspector.memory.vllm_hybrid) is also
checked without torch against the figures its formulas give by hand.
"""

from __future__ import annotations

import json
import math
import os

import pytest
from typer.testing import CliRunner

from inspector.memory.vllm_hybrid import AttnLayer, HybridInput, StateLayer, hybrid_plan, state_bytes

runner = CliRunner()

# ---------------------------------------------------------------------- pure arithmetic (no torch)

# Qwen3-Next-80B-A3B's Gated DeltaNet layer as transformers 5.25 holds it for one sequence (conv
# states [conv_dim, kernel] in bf16, recurrent [Hv, dk, dv] in float32), from its config.json
# (https://huggingface.co/Qwen/Qwen3-Next-80B-A3B-Instruct/blob/main/config.json: linear_num_key_heads 16,
# linear_key_head_dim 128, linear_num_value_heads 32, linear_value_head_dim 128, linear_conv_kernel_dim 4;
# num_key_value_heads 2, head_dim 256).
GDN = StateLayer(0, (("conv_states[0]", (8192, 4), "bfloat16"), ("recurrent_states[0]", (32, 128, 128), "float32")))
FULL = AttnLayer(3, 2 * 2 * 256)  # keys + values: 2 kv heads x 256


def test_gdn_state_page_is_vllms_shape_at_the_model_width():
    """vLLM: conv (kernel - 1) x conv_dim, temporal Hv x dv x dk, both bf16 (--mamba-ssm-cache-dtype auto)."""
    inp = HybridInput((FULL,), (GDN,), 4096, 8192)
    assert state_bytes(GDN, inp) == 3 * 8192 * 2 + 32 * 128 * 128 * 2 == 1_097_728
    assert state_bytes(GDN, inp._replace(ssm_dtype="float32")) == 3 * 8192 * 2 + 32 * 128 * 128 * 4


def test_block_size_raised_and_state_padded_to_one_attention_page():
    """_align_hybrid_block_size: block = 16 x cdiv(state, 16 x 2,048 B); the state page padded to it."""
    inp = HybridInput((FULL,), (GDN, GDN._replace(index=1), GDN._replace(index=2)), 4096, 8192)
    plan = hybrid_plan(inp, available=10 * 2**30)
    assert plan.block_size == 16 * math.ceil(1_097_728 / (16 * 2048)) == 544
    assert plan.page == 544 * 2048 == 1_114_112
    assert any("Padding mamba page size by 1.49%" in n for n in plan.notes)
    assert plan.group_size == 1 and len(plan.groups) == 4
    assert plan.num_blocks == 10 * 2**30 // plan.page
    per_request = math.ceil(4096 / 544) + 3  # the full layer's blocks + one page per state layer
    assert plan.concurrency == plan.num_blocks / per_request


def test_no_attention_layer_pages_the_state_alone():
    inp = HybridInput((), (GDN,), 4096, 8192)
    plan = hybrid_plan(inp, available=2**30)
    assert plan.page == plan.state_page == 1_097_728 and plan.num_blocks == 2**30 // 1_097_728


def test_too_little_memory_refuses_to_start():
    plan = hybrid_plan(HybridInput((FULL,), (GDN,), 4096, 8192), available=1_114_112)
    assert plan.num_blocks == 1 and any(n.startswith("vLLM refuses") for n in plan.notes)


NO_TORCH = """
import sys
sys.modules["torch"] = None  # `import torch` raises ModuleNotFoundError, as when it is not installed
from inspector.cli import main
sys.argv = ["inspect", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("command", [["memory", "--gpu", "H100-80GB"], ["flops", "--seq-len", "128"]])
def test_without_torch_one_line_names_the_extra(command, tmp_path):
    """No torch: a model with no native family gets one line naming the `hf` extra, exit 2."""
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "glm_moe_dsa", "num_hidden_layers": 4}))
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", NO_TORCH, command[0], str(tmp_path), *command[1:]],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=root,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)})
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.count("\n") == 1 and 'pip install "llm-inspector[hf]"' in done.stderr, done.stderr


# ---------------------------------------------------------------------- through transformers on meta

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from inspector.cli.app import app  # noqa: E402
from inspector.inventory.accounting import kv_bytes_per_token_layer  # noqa: E402
from inspector.inventory.load import account_config  # noqa: E402
from inspector.runtime.hf_cache import measure_cache  # noqa: E402
from hf_reference import config_dirs as write_config_dirs  # noqa: E402


def _default(model_type: str, **overrides) -> dict:
    cfg = transformers.AutoConfig.for_model(model_type, **overrides).to_dict()
    cfg["model_type"] = model_type
    return cfg


# Non-native architectures (issue 24's list), shrunk: layer counts chosen so at least one attention layer
# is kept; Jamba with 4 experts on its second layer (its Mamba1 reference scan loops per token: context 16 below).
SAMPLE = {
    "qwen3_next": _default("qwen3_next", num_hidden_layers=4),
    "kimi_linear": _default("kimi_linear", num_hidden_layers=4, linear_attn_config={
        "kda_layers": [1, 2, 3], "full_attn_layers": [4], "head_dim": 128, "num_heads": 32,
        "short_conv_kernel_size": 4}),
    "jamba": _default("jamba", num_hidden_layers=2, attn_layer_offset=1, attn_layer_period=2, expert_layer_offset=1,
                      expert_layer_period=2, num_experts=4),
    "falcon_h1": _default("falcon_h1", num_hidden_layers=2),
    "nemotron_h": _default("nemotron_h", num_hidden_layers=4, hybrid_override_pattern="M-*-"),
    # Bamba (Mamba2 + attention, no native family): the transformers path's Mamba2 sample since nemotron_h and
    # falcon_h1 answer natively
    "bamba": _default("bamba", num_hidden_layers=2, attn_layer_indices=[1]),
    # glm4_moe and minimax_m2 are native since issue 24 (helper moe4): GLM-4.7-Flash (glm4_moe_lite, MLA + DeepSeek-V3
    # MoE) and EXAONE MoE stand in for them as non-native MoE samples
    "glm4_moe_lite": _default("glm4_moe_lite", num_hidden_layers=2),
    "exaone_moe": _default("exaone_moe", num_hidden_layers=2),
    "glm_moe_dsa": _default("glm_moe_dsa", num_hidden_layers=2),
    "gemma3n_text": _default("gemma3n_text", num_hidden_layers=4, num_kv_shared_layers=2),
}


# qwen3_next has a native family since m24n (merged after m24): `memory` and `flops` answer natively for it, with
# vLLM's GDN state page (memory.native_hybrid -> memory.vllm_hybrid) and the chunked delta rule's FLOPs
# (compute.flops.deltanet_flops); the checks below hold on either path.
# kimi_linear is native too since issue 24 (helper dsa): vLLM's KDA state page through the same arithmetic;
# falcon_h1 and nemotron_h since helper ssm (the Mamba2 hybrids), gemma3n_text since helper gem.
NATIVE = ("qwen3_next", "kimi_linear", "gemma3n_text", "falcon_h1", "nemotron_h")  # sample configs a native family
# answers (the same figures through the spec)


def _build(cfg: dict):
    config = transformers.AutoConfig.for_model(cfg["model_type"], **{k: v for k, v in cfg.items()
                                                                        if k != "model_type"})
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    return model.to(torch.bfloat16).eval().requires_grad_(False)


def _forward(model, tokens: int, **kw):
    ids = torch.zeros(1, tokens, dtype=torch.long, device="meta")
    positions = torch.arange(tokens, device="meta")[None]
    with torch.no_grad():
        try:
            return model(input_ids=ids, position_ids=positions, use_cache=True,
                         attention_mask=torch.ones(1, tokens, dtype=torch.long, device="meta"), **kw)
        except Exception as e:  # a recurrent mask that reads values: the same without a mask
            if "meta" not in str(e):
                raise
            return model(input_ids=ids, position_ids=positions, use_cache=True, attention_mask=None, **kw)


def _cache_oracle(cfg: dict, tokens: int = 4) -> tuple[int, int, int]:
    """(KV bytes per token at bf16, state bytes per sequence, layers keeping KV) read off transformers'
    own cache: keys/values [1, heads, T, d] (and an indexer's [1, T, d]); conv/recurrent states."""
    cache = _forward(_build(cfg), tokens).cache
    kv = state = kv_layers = 0
    for layer in cache.layers:
        seen, per = [], 0
        for name, axis in (("keys", -2), ("values", -2), ("indexer_keys", 1)):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor) and t.dim() >= 3 and all(t is not s for s in seen):
                seen.append(t)
                per += t.numel() // t.shape[axis]
        kv, kv_layers = kv + per * 2, kv_layers + (per > 0)
        for name in ("conv_states", "recurrent_states"):
            for t in (getattr(layer, name, None) or {}).values():
                state += t.numel() * t.element_size()
    return kv, state, kv_layers


@pytest.fixture(scope="module")
def config_dirs(tmp_path_factory):
    return write_config_dirs(tmp_path_factory.mktemp, SAMPLE)


@pytest.mark.parametrize("name", list(SAMPLE))
def test_memory_kv_and_state_equal_transformers_cache(name, config_dirs):
    result = runner.invoke(app, ["memory", config_dirs[name], "--gpu", "H100-80GB", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    kv, state, kv_layers = _cache_oracle(SAMPLE[name])
    assert (data["kv_bytes_per_token"], data["state_bytes_per_sequence"], data["kv_layers"]) == (kv, state, kv_layers)
    # qwen3_next is native since m24n: its spec answers, through the same vLLM hybrid arithmetic (memory.vllm_hybrid)
    path = "native" if name in NATIVE else "transformers"
    assert kv + state > 0 and data["path"] == path and data["kv_cache_bytes"] > 0
    # vLLM's blocks and logged tokens (kv_cache_utils: available // page // group_size; blocks // groups x block)
    assert data["num_blocks"] == data["kv_cache_bytes"] // data["page_bytes"] // data["group_size"]
    assert data["kv_cache_tokens"] == data["num_blocks"] // data["groups"] * data["block_size"]


@pytest.mark.parametrize("name", ["qwen3_next", "kimi_linear", "nemotron_h"])
def test_state_page_is_vllms(name, config_dirs):
    """The state page equals vLLM's shape formulas on config.json's fields (bf16 model, dtype auto)."""
    c = SAMPLE[name]
    if name == "qwen3_next":  # gated_delta_net_state_shape
        conv_dim = 2 * c["linear_key_head_dim"] * c["linear_num_key_heads"] + \
            c["linear_value_head_dim"] * c["linear_num_value_heads"]
        expected = ((c["linear_conv_kernel_dim"] - 1) * conv_dim * 2 +
                    c["linear_num_value_heads"] * c["linear_value_head_dim"] * c["linear_key_head_dim"] * 2)
    elif name == "kimi_linear":  # kda_state_shape, kda_state_dtype (recurrent float32)
        la = c["linear_attn_config"]
        proj = la["num_heads"] * la["head_dim"]
        expected = (la["short_conv_kernel_size"] - 1) * 3 * proj * 2 + la["num_heads"] * la["head_dim"] ** 2 * 4
    else:  # mamba2_state_shape
        inner = c["mamba_num_heads"] * c["mamba_head_dim"]
        conv_dim = inner + 2 * c["n_groups"] * c["ssm_state_size"]
        expected = ((c["conv_kernel"] - 1) * conv_dim * 2 +
                    c["mamba_num_heads"] * c["mamba_head_dim"] * c["ssm_state_size"] * 2)
    result = runner.invoke(app, ["memory", config_dirs[name], "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["vllm_state_page_bytes"] == expected


@pytest.mark.parametrize("tp", [2, 4])
def test_native_state_page_splits_over_tp(tp, config_dirs):
    """vLLM's gated_delta_net_state_shape divides conv_dim and the value heads by tp (mamba_utils.py)."""
    c = SAMPLE["qwen3_next"]
    conv_dim = 2 * c["linear_key_head_dim"] * c["linear_num_key_heads"] + \
        c["linear_value_head_dim"] * c["linear_num_value_heads"]
    expected = ((c["linear_conv_kernel_dim"] - 1) * conv_dim // tp * 2 +
                c["linear_num_value_heads"] // tp * c["linear_value_head_dim"] * c["linear_key_head_dim"] * 2)
    result = runner.invoke(app, ["memory", config_dirs["qwen3_next"], "--tp", str(tp), "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["vllm_state_page_bytes"] == expected
    assert data["page_bytes"] == data["block_size"] * data["kv_bytes_per_token_layer"] >= expected


def test_memory_table_says_the_path_and_the_kv_layers(config_dirs):
    """qwen3_next answers natively (no transformers path line) with vLLM's hybrid layout and its log line."""
    result = runner.invoke(app, ["memory", config_dirs["qwen3_next"], "-f", "md"])
    assert result.exit_code == 0, result.output
    assert "on the meta device" not in result.stdout
    assert "1 of 4 layers keep a KV cache" in result.stdout
    assert "Setting attention block size to 544 tokens" in result.stdout


def _moe_routed(c: dict) -> int:
    """FLOPs per token of the routed experts (gate, up, down at top_k) the meta forward cannot route."""
    if c["model_type"] == "qwen3_next":
        moe_layers = c["num_hidden_layers"]
    elif c["model_type"] == "glm4_moe_lite":  # mlp_layer_types: "dense" first, then "sparse"
        moe_layers = c["mlp_layer_types"].count("sparse")
    else:
        return 0
    return moe_layers * c["num_experts_per_tok"] * 2 * 3 * c["hidden_size"] * c["moe_intermediate_size"]


def _flop_oracle(cfg: dict, seq_len: int, context: int) -> tuple[int, int]:
    from torch.utils.flop_counter import FlopCounterMode

    model = _build(cfg)
    counter = FlopCounterMode(display=False)
    with counter:
        _forward(model, seq_len)
    prefill = counter.get_total_flops() + seq_len * _moe_routed(cfg)
    cache = _forward(model, context).cache
    counter = FlopCounterMode(display=False)
    ids = torch.zeros(1, 1, dtype=torch.long, device="meta")
    with counter, torch.no_grad():
        model(input_ids=ids, position_ids=torch.tensor([[context]], device="meta"), use_cache=True,
              cache=cache, attention_mask=None)
    return prefill, counter.get_total_flops() + _moe_routed(cfg)


FLOPS = ["qwen3_next", "bamba", "glm4_moe_lite", "glm_moe_dsa", "gemma3n_text"]  # (nemotron_h, falcon_h1: native now)


@pytest.mark.parametrize("name", FLOPS)
def test_flops_equal_flop_counter(name, config_dirs):
    result = runner.invoke(app, ["flops", config_dirs[name], "--seq-len", "128", "--context", "64", "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    prefill, decode = _flop_oracle(SAMPLE[name], 128, 64)
    assert data["prefill_flops"] == prefill > 0
    assert data["decode_flops"] == decode > 0


@pytest.mark.parametrize("name", ["kimi_linear", "jamba", "exaone_moe"])
def test_flops_exit_0_with_a_figure(name, config_dirs):
    result = runner.invoke(app, ["flops", config_dirs[name], "--seq-len", "128", "--context", "16", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["prefill_flops"] > 0


def test_roofline_and_training_options_refused_in_one_line(config_dirs):
    result = runner.invoke(app, ["flops", config_dirs["bamba"], "--gpu", "H100-80GB"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "no native family" in result.stderr
    result = runner.invoke(app, ["memory", config_dirs["bamba"], "--tp", "2"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "--tp" in result.stderr


# ---------------------------------------------------------------------- native: both paths agree

def _native_presets():
    from inspector.spec.preset_configs import DENSE, MOE

    for p in MOE + DENSE:
        cfg = json.loads(json.dumps(p.config))
        layers = cfg.get("num_hidden_layers") or cfg.get("n_layer")
        keep = {"gemma3_text": 6, "cohere2": 6, "gemma2": 6, "qwen3_next": 4, "kimi_linear": 4}.get(cfg.get("model_type"), 2)
        for key in ("num_hidden_layers", "n_layer"):
            if key in cfg:
                cfg[key] = min(keep, layers)
        for key, value in list(cfg.items()):
            if isinstance(value, list) and len(value) == layers:
                cfg[key] = value[:keep]
        if "first_k_dense_replace" in cfg:
            cfg["first_k_dense_replace"] = min(cfg["first_k_dense_replace"], 1)
        for key, value in (cfg.get("linear_attn_config") or {}).items():  # Kimi's layer lists, numbered from 1
            if key in ("kda_layers", "full_attn_layers"):
                cfg["linear_attn_config"][key] = [i for i in value if i <= keep]
        yield pytest.param(cfg, id=p.aliases[0] if p.aliases else p.hub_id)


@pytest.mark.parametrize("cfg", list(_native_presets()))
def test_native_and_transformers_kv_bytes_agree(cfg):
    """No silent difference: a native family's KV bytes per token (what `memory` serves from) equal
    transformers' cache on meta, and so do the bytes of one long sequence (windows capped)."""
    acc = account_config(cfg, cfg["model_type"], "config.json")
    m = measure_cache(cfg)
    t = acc.spec.text
    assert m.kv_bytes_per_token() == len(t.kv_layers) * kv_bytes_per_token_layer(t, 2)
    assert m.kv_bytes_per_sequence(8192) == acc.kv_cache_bytes(8192, dtype_bytes=2)


# ---------------------------------------------------------------------- opt-in sweep (minutes: not in the suite)

SWEEP = os.environ.get("INSPECTOR_HF_SWEEP") == "1"


def _sweep_types():
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    from inspector.inventory.load import is_native

    return [t for t in sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES) if not is_native({"model_type": t})]


# Types whose default config transformers 5.25 builds but whose forward transformers itself cannot run as the
# sweep asks (on any device: these are not meta-device limits, which hf_run answers by other inputs or on the CPU
# twin), and the commands that then exit 2 with one line. Everything else that builds must answer all four.
SWEEP_ALLOWED = {
    # BltConfig's per-layer view asks the top config for num_hidden_layers, which Blt's config does not have
    # (transformers 5.25 configuration_utils.py __len__): every forward fails
    "blt": (("memory", "flops", "trace"), "'BltConfig' object has no attribute 'num_hidden_layers'"),
    # DynamicCache(config) makes num_hidden_layers (= encoder_layers, 2) layers for the 24 decoder layers: a cached
    # forward fails (list index out of range); flops answers the prefill without a cache and no decode figure
    "blenderbot": (("memory",), "its cache has 2 layers for 24 decoder layers"),
    # a draft model: its forward needs the target model's shared_kv_states ("inputs_embeds and shared_kv_states
    # cannot be None")
    "gemma4_unified_assistant": (("memory", "flops", "trace"), "needs the target model's shared_kv_states"),
    # 75 B parameters: meta has no kernel for aten::_unique2 and the CPU twin is refused over CPU_MAX_PARAMS
    "kolibri1_1": (("memory", "flops", "trace"), "aten::_unique2 has no meta kernel; over the CPU bound"),
    # X-MOD's adapters need a language: "Input language unknown. Please call set_default_language()" (the default
    # config names none; a real checkpoint's default_language does)
    "xmod": (("memory", "flops", "trace"), "no default language"),
}


def _transformers_total(model_type: str, cfg: dict):
    """transformers' own parameter total for the class `params` builds (image-text-to-text first for a config
    with a vision part, as inventory.transformers_meta._build), or None with the reason it cannot build."""
    config = transformers.AutoConfig.for_model(model_type, **{k: v for k, v in cfg.items() if k != "model_type"})
    autos = [transformers.AutoModelForCausalLM, transformers.AutoModelForImageTextToText, transformers.AutoModel]
    if getattr(config, "vision_config", None) is not None:
        autos[:2] = autos[1::-1]
    try:
        with torch.device("meta"):
            auto = next(a for a in autos if type(config) in a._model_mapping)
            model = auto.from_config(config, attn_implementation="eager")
    except Exception as e:  # transformers cannot build its own default config (dbrx, dots1, ... in 5.25)
        return None, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return sum(p.numel() for p in model.parameters()), ""


@pytest.mark.skipif(not SWEEP, reason="every causal-LM default config at full size: INSPECTOR_HF_SWEEP=1 (minutes)")
@pytest.mark.parametrize("model_type", _sweep_types() if SWEEP else [])
def test_sweep_memory_and_flops_answer_or_say_why(model_type, tmp_path):
    """Each default config transformers builds: `params` gives transformers' total, `memory` a KV or state figure,
    `flops --seq-len 128` a prefill figure and `trace --seq-len 16` its steps (exit 0); SWEEP_ALLOWED's commands
    exit 2 with one line. A default config transformers cannot make or build is skipped with its reason."""
    try:
        cfg = _default(model_type)
    except Exception as e:  # transformers' own default fails its validation (gemma4_assistant in 5.25)
        pytest.skip(f"transformers cannot make a default {model_type} config: {str(e).splitlines()[0]}")
    total, why = _transformers_total(model_type, cfg)
    if total is None:
        pytest.skip(f"transformers {transformers.__version__} cannot build its default {model_type} config: {why}")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    allowed = SWEEP_ALLOWED.get(model_type, ((), ""))[0]
    for name, args in (("params", ["params", str(tmp_path)]),
                       ("memory", ["memory", str(tmp_path), "--gpu", "H100-80GB"]),
                       ("flops", ["flops", str(tmp_path), "--seq-len", "128", "--context", "16"]),
                       ("trace", ["trace", "-m", str(tmp_path), "--device", "meta", "--seq-len", "16"])):
        result = runner.invoke(app, [*args, "-f", "json"])
        if name in allowed:
            assert result.exit_code == 2 and result.stderr.count("\n") == 1, (name, result.output)
            continue
        assert result.exit_code == 0, (name, result.output)
        data = json.loads(result.stdout)
        if name == "params":
            assert data["total_params"] == total
        elif name == "memory":
            # a KV or state figure, or (GPT-1) KV 0 with the line that transformers keeps nothing between steps
            assert data["kv_bytes_per_token"] + data["state_bytes_per_sequence"] > 0 or not data["keeps_cache"]
        elif name == "flops":
            assert data["prefill_flops"] > 0
        else:
            assert data["steps"]


SERVED = ["gemma-3-1b-it", "gpt-oss-20b", "command-r7b", "olmoe-1b-7b", "deepseek-v2-lite"]


@pytest.mark.parametrize("preset", SERVED)
def test_native_serving_and_the_hybrid_layout_agree(preset):
    """No silent difference in vLLM's layout: on the memory the native serving plan leaves for the KV cache,
    the layout over transformers' measured layers gives the same blocks, tokens and concurrency (full,
    sliding-window and MLA layers; vLLM's groups of equally many layers)."""
    from inspector.memory.estimate import MemoryRequest, estimate
    from inspector.runtime.hf_answer import HfServe, hybrid_input
    from inspector.source import resolve

    s = estimate(MemoryRequest(model=preset)).serving
    cfg = resolve(preset).config
    inp = hybrid_input(measure_cache(cfg), cfg["model_type"], s.max_model_len, s.budget.max_num_batched_tokens,
                       HfServe(), 2)
    plan = hybrid_plan(inp, s.kv_available)
    assert (plan.page, plan.group_size, len(plan.groups)) == (s.page_bytes, s.group_size, len(s.groups))
    assert (plan.num_blocks, plan.kv_tokens) == (s.num_blocks, s.kv_tokens)
    assert plan.concurrency == pytest.approx(s.concurrency, rel=1e-12)


def test_check_exits_1_when_vllm_would_not_start(config_dirs):
    """A non-fit is an answer (exit 0); --check makes it exit 1 (glm_moe_dsa's 2 layers do not fit 8 GiB)."""
    result = runner.invoke(app, ["memory", config_dirs["glm_moe_dsa"], "--gpu", "8", "-f", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["fits"] is False, result.output
    assert json.loads(result.stdout)["path"] == "transformers"
    result = runner.invoke(app, ["memory", config_dirs["glm_moe_dsa"], "--gpu", "8", "--check", "-f", "json"])
    assert result.exit_code == 1, result.output


NATIVE_FLOPS = [
    pytest.param(_default("llama", num_hidden_layers=2), id="llama"),
    pytest.param(_default("qwen3", num_hidden_layers=2), id="qwen3"),
    pytest.param(_default("gemma3_text", num_hidden_layers=6, sliding_window=32), id="gemma3_text-sliding"),
    pytest.param(_default("qwen3_moe", num_hidden_layers=2), id="qwen3_moe"),
]


@pytest.mark.parametrize("cfg", NATIVE_FLOPS)
def test_native_ledger_and_transformers_flops_agree(cfg):
    """No silent difference in FLOPs: the native ledger "as computed" (logits at every position; a decode
    step's sliding layers over transformers' capped cache) equals the transformers path on the same config
    (dense, sliding-window and MoE at top_k)."""
    from inspector.compute.flops import decode, forward_flops, prefill
    from inspector.runtime.hf_flops import measure_flops

    acc = account_config(cfg, cfg["model_type"], "config.json")
    m = measure_flops(cfg, "config.json", 128, 64)
    assert m.prefill == forward_flops(acc, prefill(128))[0]
    assert m.decode == forward_flops(acc, decode(64, sliding_cache=True))[0]


@pytest.mark.parametrize("name", ["qwen3_next", "kimi_linear", "jamba", "falcon_h1", "nemotron_h", "glm_moe_dsa",
                                  "gemma3n_text"])
def test_grown_cache_decodes_like_a_full_fill(name, monkeypatch):
    """The decode step against a short forward's cache grown to the context costs what it costs against a
    cache filled by a forward of the whole context (which Mamba1's per-token reference scan makes slow)."""
    from inspector.runtime import hf_flops

    cfg = SAMPLE[name]
    grown = hf_flops.measure_flops(cfg, "config.json", 8, 40)
    monkeypatch.setattr(hf_flops, "FILL", 10**6)  # never grown: the whole context is run
    filled = hf_flops.measure_flops(cfg, "config.json", 8, 40)
    assert grown.decode == filled.decode and grown.decode is not None
