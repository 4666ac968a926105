"""`memory` and `flops` for a model with no native family: transformers' own cache and FLOPs on the meta device.

The one rule for which path answers (issue 24, item 4): a native family answers from its spec, with no
torch; any other model that transformers builds answers from here, saying so in one line ("from
transformers X.Y on the meta device", or "on the CPU with zero weights" where hf_run's CPU twin ran the
forward); without torch/transformers the inventory's import names the
`hf` extra in one line (inspector.inventory.transformers_meta). Parameters and weights come from the
transformers-meta inventory (`params`' own), KV and state bytes from `hf_cache.measure_cache`, FLOPs
from `hf_flops.measure_flops`, and vLLM's start-up arithmetic from inspector.memory.vllm (the budget
terms) and inspector.memory.vllm_hybrid (pages, groups and blocks of a hybrid model).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from inspector.errors import InspectError
from inspector.memory.native_hybrid import SOURCE_VLLM
from inspector.memory.vllm_hybrid import AttnLayer, HybridInput, HybridPlan, StateLayer, hybrid_plan, state_bytes
from inspector.reports.render import Report, Section

KDA = ("kimi_linear",)  # vLLM's kda_state_dtype: the recurrent state in float32 (mamba_utils.py)


# config.json's trained length: the smallest of the keys vLLM reads (vllm/config/model.py _get_and_verify_max_len,
# `possible_keys`), and 2048 when none is there (its `default_max_len`, logged as a warning)
LENGTH_FIELDS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "model_max_length",
                 "max_target_positions", "max_sequence_length", "max_seq_length", "seq_len")
DEFAULT_MAX_LEN = 2048


class HfServe(NamedTuple):
    """The serving options that apply to a model served through transformers' measure (vLLM's names)."""

    gpu: str = "H100-80GB"
    gpu_memory_gib: float | None = None
    overhead_gib: float | None = None
    kv_dtype: str = "bf16"
    block_size: int = 16
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    engine: str | None = None
    vllm_version: str | None = None
    enforce_eager: bool = False
    kv_cache_memory: int | None = None


class HfMemory(NamedTuple):
    acc: Any  # the transformers-meta Accounting (params' own)
    measure: Any  # hf_cache.CacheMeasure
    budget: Any  # memory.vllm.VllmBudget
    plan: HybridPlan
    inp: HybridInput
    weights: int
    max_model_len: int
    weight_notes: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        return self.plan.num_blocks > 0 and not any(n.startswith("vLLM refuses") for n in self.plan.notes)


def text_fields(cfg: dict) -> dict:
    """The language model's fields: `text_config` of a wrapper, else the config itself."""
    inner = cfg.get("text_config")
    return inner if isinstance(inner, dict) else cfg


def _int(cfg: dict, *names: str, default: int = 0) -> int:
    for name in names:
        value = cfg.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def model_dims(cfg: dict, measure, kv_dtype_bytes: int):
    """vLLM's dimensions for its profile-run terms, read from config.json by transformers' usual names
    (assumed: a field under another name falls back to a default; only the activation and CUDA-graph
    terms use them)."""
    from inspector.memory.vllm import ModelDims

    t = text_fields(cfg)
    hidden = _int(t, "hidden_size", "d_model", "n_embd", default=4096)
    heads = _int(t, "num_attention_heads", "n_head", default=32)
    return ModelDims(
        vocab=_int(t, "vocab_size", default=32000), hidden=hidden,
        intermediate=_int(t, "intermediate_size", "ffn_dim", "n_inner", default=4 * hidden),
        layers=len(measure.layers), heads=heads, kv_heads=_int(t, "num_key_value_heads", default=heads),
        head_dim=_int(t, "head_dim", default=hidden // heads), kv_dtype_bytes=kv_dtype_bytes,
        experts_top_k=_int(t, "num_experts_per_tok", "moe_topk", "top_k"),
        expert_intermediate=_int(t, "moe_intermediate_size", "expert_intermediate_size"))


def hybrid_input(measure, model_type: str, length: int, step: int, s: HfServe, kv_bytes: int) -> HybridInput:
    """The measured layers as vLLM's hybrid allocator sees them: attention layers by their per-token
    elements and window, state layers by transformers' state tensors."""
    attention = tuple(AttnLayer(x.index, x.kv_elements_per_token, x.window) for x in measure.layers if x.keeps_kv)
    states = tuple(StateLayer(x.index, x.state_shapes) for x in measure.layers if x.state_shapes)
    return HybridInput(attention, states, length, step, s.block_size, kv_bytes, fp32_recurrent=model_type in KDA)


def _device(s: HfServe):
    from inspector.memory.gpus import gpu, gpu_memory_gib
    from inspector.memory.vllm import Device

    device = gpu(s.gpu)
    if s.gpu_memory_gib is not None:
        device = gpu_memory_gib(s.gpu_memory_gib, device)
    return Device(device.name, device.total)


def _settings(s: HfServe, length: int):
    from inspector.memory.gpus import gib_bytes
    from inspector.memory.vllm import VllmSettings
    from inspector.memory.vllm_versions import resolve

    release = resolve(s.vllm_version, s.engine)
    if release.engine != "vllm-v1":
        raise InspectError(f"--engine {release.engine}: a model served through transformers' measure follows "
                           "vLLM V1's hybrid allocator only")
    overhead = None if s.overhead_gib is None else gib_bytes(s.overhead_gib, "--overhead-gib")
    return VllmSettings(engine=release.engine, gpu_memory_utilization=s.gpu_memory_utilization, max_model_len=length,
                        max_num_batched_tokens=s.max_num_batched_tokens, max_num_seqs=s.max_num_seqs,
                        block_size=s.block_size, enforce_eager=s.enforce_eager, kv_cache_memory=s.kv_cache_memory,
                        non_torch_bytes=overhead, vllm_version=release.text)


def hf_memory(cfg: dict, acc, where: str, s: HfServe) -> HfMemory:
    """vLLM's start-up budget and its hybrid cache layout for a model with no native family."""
    from inspector.memory.quant import KV_BYTES, KV_DTYPES, check_dtype
    from inspector.memory.vllm import vllm_budget
    from inspector.runtime.hf_cache import measure_cache

    kv_bytes = KV_BYTES[check_dtype(s.kv_dtype, KV_DTYPES, "--kv-dtype")]
    t = text_fields(cfg)
    length = s.max_model_len or min((_int(t, key) for key in LENGTH_FIELDS if _int(t, key)), default=0)
    notes = () if length else (f"max_model_len {DEFAULT_MAX_LEN:,}: config.json names no length, vLLM assumes "
                               f"{DEFAULT_MAX_LEN:,} (_get_and_verify_max_len); --max-model-len sets it",)
    length = length or DEFAULT_MAX_LEN
    settings = _settings(s, length)
    device = _device(s)
    measure = measure_cache(cfg, where, dtype_bytes=kv_bytes)
    weights = int(acc.totals.weight_bytes["bf16/fp16"])
    budget = vllm_budget(model_dims(cfg, measure, kv_bytes), settings, device, weights)
    inp = hybrid_input(measure, str(cfg.get("model_type")), length, budget.max_num_batched_tokens, s, kv_bytes)
    plan = hybrid_plan(inp, budget.kv_cache_bytes)
    if isinstance(cfg.get("vision_config"), dict):
        notes += ("a vision-language model: vLLM's encoder profile run and encoder cache are not counted here "
                  "(assumed 0; the native path models them)",)
    if cfg.get("quantization_config"):
        notes += ("weights: the transformers-meta inventory at 16 bits (assumed: config.json's quantization_config "
                  "is not read on this path)",)
    return HfMemory(acc, measure, budget, plan, inp, weights, length, notes)


def path_line(version: str, class_name: str, notes: tuple[str, ...] = ()) -> str:
    """The one line naming the path that answered and where its forward ran (`notes`: the measure's, which say
    when the CPU twin ran it: `hf_run.ran_on`)."""
    from inspector.runtime.hf_run import ran_on

    major_minor = ".".join(version.split(".")[:2])
    return f"from transformers {major_minor} {ran_on(tuple(notes))} ({class_name}; no native family)"


def _kind_rows(r: HfMemory) -> list[list[Any]]:
    rows = []
    for k in r.measure.by_kind():
        first = next(x for x in r.measure.layers if x.index == k.layers[0])
        vllm_state = state_bytes(StateLayer(first.index, first.state_shapes), r.inp) if first.state_shapes else 0
        rows.append([k.kind, k.cache_class, len(k.layers), f"{k.kv_bytes_per_token:,}",
                     f"{k.window:,}" if k.window else "", f"{k.state_bytes:,}", f"{vllm_state:,}"])
    return rows


def _state_notes(r: HfMemory) -> list[str]:
    m, inp = r.measure, r.inp
    notes = [m.kv_line()]
    if inp.states:
        width = "float32 (KDA)" if inp.fp32_recurrent else "the model's dtype (--mamba-ssm-cache-dtype auto; "\
            "assumed: a config or flag asking float32 doubles it)"
        notes.append(f"state per sequence: {m.state_bytes_per_sequence():,} B as transformers holds it; "
                     f"vLLM: conv state of kernel - 1 inputs in the model's dtype, recurrent state in {width}, "
                     f"one page per layer per sequence, padded to the attention page ({SOURCE_VLLM})")
    if any(x.kind in ("indexed",) for x in m.layers):
        notes.append("indexer keys counted at the KV dtype like the latent (assumed: vLLM keeps the sparse "
                     "indexer's cache in a spec of its own)")
    return notes + list(m.notes)


def memory_report(r: HfMemory) -> Report:
    """The report of `inspect memory` for a model served through transformers' measure."""
    m, p, b = r.measure, r.plan, r.budget
    from inspector.runtime.hf_run import ran_on

    kinds = Section(f"Cache per layer kind (what transformers keeps after a forward {ran_on(tuple(m.notes))})",
                    ["kind", "cache class", "layers", "KV B/token/layer", "window", "state B/seq/layer (transformers)",
                     "state B/seq/layer (vLLM)"], _kind_rows(r), _state_notes(r))
    terms = [t for t in b.terms if t.name != "batch_defaults"]
    budget = Section(f"vLLM {b.settings.release.text} budget on {r.budget.settings.max_model_len:,}-token requests",
                     ["term", "GiB", "status", "source"],
                     [[t.name, f"{t.gib:.2f}", t.status, t.source] for t in terms], list(r.weight_notes))
    layout = Section("vLLM hybrid cache layout", ["what", "value"], [
        ["parameters (as `params` counts them)", f"{r.acc.totals.total_params:,}"],
        ["block size (tokens)", f"{p.block_size:,}"], ["page (bytes, every layer)", f"{p.page:,}"],
        ["attention page before padding", f"{p.attention_page:,}"], ["state page before padding", f"{p.state_page:,}"],
        ["groups x layers per group", f"{len(p.groups)} x {p.group_size}"], ["blocks", f"{p.num_blocks:,}"],
        ["GPU KV cache size (tokens)", f"{p.kv_tokens:,}"], ["one request (bytes)", f"{p.request_bytes:,}"],
        ["maximum concurrency", f"{p.concurrency:.2f}x"], ["fits", "yes" if r.fits else "no"]], list(p.notes))
    data = {**b.json_fields(), "path": "transformers", "transformers_version": m.transformers_version, "class": m.class_name,
            "params": r.acc.totals.total_params, "weights_bytes": r.weights, "layers": len(m.layers),
            "kv_layers": m.kv_layers, "kv_bytes_per_token": m.kv_bytes_per_token(),
            "kv_bytes_per_sequence": m.kv_bytes_per_sequence(r.max_model_len),
            "state_bytes_per_sequence": m.state_bytes_per_sequence(),
            "vllm_state_page_bytes": p.state_page, "page_bytes": p.page, "block_size": p.block_size,
            "groups": len(p.groups), "group_size": p.group_size, "num_blocks": p.num_blocks, "kv_cache_tokens": p.kv_tokens, "max_concurrency": round(p.concurrency, 2),
            "fits": r.fits, "kv_cache_bytes": b.kv_cache_bytes, "keeps_cache": m.keeps_cache, "notes": list(m.notes)}
    return Report([kinds, budget, layout], data, notes=[path_line(m.transformers_version, m.class_name, m.notes)])


def flops_report(m, acc) -> Report:
    """The report of `inspect flops` for a model measured under FlopCounterMode on meta."""
    rows = [[f"prefill ({m.batch} x {m.seq_len:,} tokens)", f"{m.prefill:,}", f"{m.prefill_head:,}",
             f"{m.prefill / (m.batch * m.seq_len):,.0f}"]]
    if m.decode is not None:
        rows.append([f"decode (1 token at context {m.context:,}, batch {m.batch})", f"{m.decode:,}",
                     f"{m.decode_head:,}", f"{m.decode / m.batch:,.0f}"])
    notes = [f"parameters: {acc.totals.total_params:,} (as `params` counts them)",
             "as computed: torch's FlopCounterMode over transformers' forward (2 FLOPs per multiply-add, the full "
             "score matrix, logits at every position)", *m.notes]
    section = Section("FLOPs (torch.utils.flop_counter.FlopCounterMode)", ["pass", "FLOPs", "of which lm_head",
                                                                          "per token"], rows, notes)
    data = {"path": "transformers", "transformers_version": m.transformers_version, "class": m.class_name,
            "params": acc.totals.total_params, "seq_len": m.seq_len, "batch": m.batch, "context": m.context,
            "prefill_flops": m.prefill, "prefill_head_flops": m.prefill_head, "decode_flops": m.decode,
            "decode_head_flops": m.decode_head, "notes": list(m.notes)}
    return Report([section], data, notes=[path_line(m.transformers_version, m.class_name, m.notes)])
