"""Training peaks: the loss's bytes per logit and the activations transformers keeps, counted to the
byte on CPU with torch's own machinery (a TorchDispatchMode that tracks live storages, saved-tensor
hooks), and the published measurements of fixtures/training/ reproduced within stated tolerances."""

from __future__ import annotations

import json
import weakref
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import tiny_config
from inspector.inventory.accounting import account
from inspector.memory.activations import LOSS_PER_LOGIT, Adapters, saved_layer, saved_model_extra
from inspector.memory.gpus import gpu
from inspector.memory.lora import LoraOptions
from inspector.memory.training import LOSS, STEP, TrainOptions, plan
from inspector.source import load_spec

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"
LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def _plan(model: str, **options):
    return plan(account(load_spec(model)), gpu("H100-80GB"), TrainOptions(**options))


# --------------------------------------------------------------------------- arithmetic, no torch


def test_loss_is_fourteen_bytes_per_logit():
    tr = _plan("llama-3.2-1b", mode="lora", lora=LoraOptions(rank=16, targets=LLAMA_TARGETS))
    row = next(r for r in tr.rows if r.name.startswith("Logits and cross-entropy"))
    assert LOSS_PER_LOGIT == 14
    assert row.gpu == 14 * 2048 * 128_256 and row.phases == (LOSS,)


def test_peak_is_the_largest_phase_not_the_sum():
    tr = _plan("llama-3.2-1b", mode="full", precision="bf16")
    sums = {p: tr.phase_bytes(p) for p in tr.phases}
    assert tr.per_gpu == max(sums.values()) < sum(r.gpu for r in tr.rows)
    grads = next(r for r in tr.rows if r.name.startswith("Gradients"))
    assert grads.phases == (STEP,)  # zero_grad(set_to_none=True): none at the start of backward


def test_pure_bf16_adamw_is_eight_bytes_per_parameter():
    p = 1_235_814_400
    tr = _plan("llama-3.2-1b", mode="full", precision="bf16")
    rows = {r.name.split(" (")[0]: r.gpu for r in tr.rows}
    assert (rows["Weights"], rows["Gradients"], rows["Optimizer states"]) == (2 * p, 2 * p, 4 * p)
    assert rows["Optimizer step temporaries"] == 2 * p  # foreach AdamW's sqrt(v), bf16
    mixed = {r.name.split(" (")[0]: r.gpu for r in _plan("llama-3.2-1b", mode="full").rows}
    assert (mixed["Weights"], mixed["Gradients"], mixed["Optimizer states"]) == (6 * p, 4 * p, 8 * p)


def test_recompute_keeps_layer_boundaries_and_one_layer():
    t = load_spec("llama-3.2-1b").text
    tr = _plan("llama-3.2-1b", mode="full", recompute="full", seq_len=1024)
    rows = {r.name.split(" (")[0]: r for r in tr.rows}
    extra = saved_model_extra(t, None) * 1024
    assert rows["Activations"].gpu == 16 * 1024 * 2 * 2048 + extra
    assert rows["One layer recomputed during backward"].gpu == saved_layer(t, None)[0] * 1024
    assert rows["One layer recomputed during backward"].phases == ("recompute",)


def test_deepspeed_rows_are_untouched_by_precision_and_phases():
    tr = _plan("llama-3.1-8b", mode="full", zero=3, gpus_per_node=8)
    assert tr.rows[0].gpu == 4 * 525_336_576 + int(18 * 8_030_261_248 / 8)  # DeepSpeed's estimator
    with pytest.raises(Exception, match="bf16"):
        _plan("llama-3.1-8b", mode="full", zero=3, gpus_per_node=8, precision="bf16")


# --------------------------------------------------------------------------- published measurements


def _measurements() -> list[dict]:
    return json.loads((FIXTURES / "measurements.json").read_text())["measurements"]


@pytest.mark.parametrize("case", _measurements(), ids=lambda c: c["id"])
def test_published_measurement(case):
    """Each case says its tolerance and why (fixtures/training/README.md); nothing is fitted to it."""
    o = case["options"]
    lora = LoraOptions(rank=o["lora_rank"], targets=tuple(o["lora_targets"])) if "lora_rank" in o \
        else LoraOptions()
    local = FIXTURES / case["model"]
    tr = _plan(str(local) if local.is_dir() else case["model"], mode=o["mode"], precision=o["precision"],
               seq_len=o["seq_len"], micro_batch=o["micro_batch"], lora=lora,
               overhead_bytes=0)  # max_memory_allocated does not see the CUDA context
    ours, measured = tr.per_gpu, case["measured_bytes"]
    if "params" in case:  # the run's own parameter count, as it logged it
        assert tr.params == case["params"]
    if case["check"] == "bound":  # measured is max_memory_reserved over a whole run: an upper bound
        assert ours <= measured
        assert ours >= (1 - case["tolerance"]) * measured
    else:
        assert abs(ours - measured) <= case["tolerance"] * measured, (ours, measured)


# --------------------------------------------------------------------------- torch oracles (CPU)


def _torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return torch


class _LiveBytes:
    """A TorchDispatchMode that adds each new storage an op returns and drops it when torch frees it."""

    def __new__(cls, torch):
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten

        class Live(TorchDispatchMode):
            def __init__(self):
                super().__init__()
                self.live: dict[int, int] = {}
                self.cur = self.peak = 0

            def _free(self, key):
                self.cur -= self.live.pop(key)

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in tree_flatten(out)[0]:
                    if isinstance(t, torch.Tensor):
                        s = t.untyped_storage()
                        key = s.data_ptr()
                        if key and key not in self.live:
                            self.live[key] = s.nbytes()
                            self.cur += s.nbytes()
                            self.peak = max(self.peak, self.cur)
                            weakref.finalize(s, self._free, key)
                return out

        return Live()


def _loss_peak(torch, tokens: int, vocab: int, hold_logits: bool) -> int:
    from transformers.loss.loss_utils import ForCausalLMLoss

    torch.manual_seed(0)
    head = torch.randn(vocab, 16, dtype=torch.bfloat16)
    hidden = torch.randn(1, tokens, 16, dtype=torch.bfloat16, requires_grad=True)
    labels = torch.randint(0, vocab, (1, tokens))
    mode = _LiveBytes(torch)
    with mode:
        logits = torch.nn.functional.linear(hidden, head)  # the LM head's 16-bit logits
        loss = ForCausalLMLoss(logits, labels, vocab)
        if not hold_logits:
            del logits
        loss.backward()
    return mode.peak


@pytest.mark.parametrize("hold,per_logit", [(True, LOSS_PER_LOGIT), (False, LOSS_PER_LOGIT - 2)])
def test_loss_bytes_per_logit_counted_by_torch(hold, per_logit):
    """peak(N, V) = k·N·V + α·N + β·V + γ; the mixed difference isolates k·N·V exactly."""
    torch = _torch()
    n, v = 64, 512
    k = (_loss_peak(torch, 2 * n, 2 * v, hold) - _loss_peak(torch, 2 * n, v, hold)
         - _loss_peak(torch, n, 2 * v, hold) + _loss_peak(torch, n, v, hold))
    assert k == per_logit * n * v


def _saved_bytes(torch, cfg: dict, adapters: Adapters | None, tokens: int) -> int:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**cfg)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).to(torch.bfloat16)
    if adapters is not None:
        peft = pytest.importorskip("peft")
        model = peft.get_peft_model(model, peft.LoraConfig(r=adapters.rank, target_modules=list(adapters.names)),
                                    autocast_adapter_dtype=adapters.dtype_bytes == 4)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        key = t.untyped_storage().data_ptr()
        if key not in params:
            seen.setdefault(key, t.untyped_storage().nbytes())
        return t

    ids = torch.randint(0, cfg["vocab_size"], (1, tokens))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids, use_cache=False)
    return sum(seen.values())


ORACLE_CASES = [
    ("full", None),
    ("lora-bf16-attn", Adapters(LLAMA_TARGETS, 4, 2)),
    ("lora-fp32-attn", Adapters(LLAMA_TARGETS, 4, 4)),
    ("lora-bf16-all", Adapters(LLAMA_TARGETS + ("gate_proj", "up_proj", "down_proj"), 4, 2)),
    ("lora-fp32-mlp", Adapters(("gate_proj", "down_proj"), 4, 4)),
]


@pytest.mark.parametrize("name,adapters", ORACLE_CASES, ids=[c[0] for c in ORACLE_CASES])
def test_saved_activations_counted_by_autograd(tmp_path, name, adapters):
    """What autograd saves, per layer and outside the layers, equals saved_layer/saved_model_extra."""
    torch = _torch()
    cfg = tiny_config("llama", hidden_size=64, intermediate_size=160, num_attention_heads=4, num_key_value_heads=2,
                      vocab_size=128)
    tokens = 32
    totals = {}
    for layers in (2, 4):  # the first layer differs (frozen embeddings): two layers and more
        c = dict(cfg, num_hidden_layers=layers)
        totals[layers] = _saved_bytes(torch, c, adapters, tokens)
    (tmp_path / "config.json").write_text(json.dumps(dict(cfg, num_hidden_layers=2)))
    t = load_spec(str(tmp_path)).text
    per_layer = saved_layer(t, adapters)[0]
    assert totals[4] - totals[2] == 2 * per_layer * tokens
    # two layers + outside the layers + the loss's saved log_softmax output (fp32) and its scalar total weight;
    # the labels' storage holds the one padded position (8 B) beyond the per-token count
    loss_saved = 4 * tokens * cfg["vocab_size"] + 4 + 8
    assert totals[2] == 2 * per_layer * tokens + saved_model_extra(t, adapters) * tokens + loss_saved


def test_precision_field_is_a_record_field():
    o = replace(TrainOptions(), precision="bf16")
    assert o.precision == "bf16" and TrainOptions().precision == "mixed"


def test_autocast_lora_keeps_fp32_states_and_16_bit_inputs():
    """Under torch.autocast peft skips its input cast (peft.tuners.lora.layer: requires_conversion = not
    torch.is_autocast_enabled()), so the adapters read the 16-bit input; the states stay fp32."""
    lora = LoraOptions(rank=16, targets=LLAMA_TARGETS)
    rows = {p: {r.name.split(" (")[0]: r.gpu for r in _plan("llama-3.2-1b", mode="lora", lora=lora,
                                                             precision=p).rows}
            for p in ("mixed", "autocast", "bf16")}
    assert rows["autocast"]["Adapter optimizer states"] == rows["mixed"]["Adapter optimizer states"] == 8 * 3_407_872
    assert rows["autocast"]["Activations"] == rows["bf16"]["Activations"] < rows["mixed"]["Activations"]
