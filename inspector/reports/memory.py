"""Reports of `inspect memory`: one table per scenario, the KV cache and activation details, the verdict.

Each scenario's table has a component, its bytes per GPU and on the CPU, and its formula; vLLM's start-up
lines are shown in its own words, and peft's line. Number formatting lives here and in render only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.inventory.accounting import Accounting
from inspector.memory.fit import Verdict, gib
from inspector.memory.serving import vllm_indexer_bytes
from inspector.reports.render import Report, Section
from inspector.units import n

if TYPE_CHECKING:  # serving's modules (vllm, parallel) load only when serving, training's when training
    from inspector.memory.serving import Serving
    from inspector.memory.training import Training

SOURCES = {
    "anatomy": "Hugging Face's \"Model training anatomy\" guide (18 B per parameter for mixed-precision AdamW)",
    "deepspeed": "DeepSpeed's estimate_zero2/zero3_model_states_mem_needs (deepspeed.runtime.zero)",
    "korthikanti": "Korthikanti et al. 2022, \"Reducing Activation Recomputation in Large Transformer Models\"",
}


def _b(x: int) -> str:
    return f"{gib(x)} ({n(x)} B)"


def _verdict_section(v: Verdict) -> Section:
    rows = [["Verdict", v.text]]
    rows += [["Would fit with", s] for s in v.suggestions]
    return Section("Verdict", ["", ""], rows)


# --------------------------------------------------------------------------- serving


def vllm_lines(s: Serving) -> list[str]:
    """The lines vLLM logs at start-up, in its words (vllm/v1/worker/gpu_worker.py, vllm/v1/core/kv_cache_utils.py)."""
    return [f"Available KV cache memory: {max(s.kv_available, 0) / 2**30:.2f} GiB",
            f"GPU KV cache size: {s.kv_tokens:,} tokens",
            f"Maximum concurrency for {s.max_model_len:,} tokens per request: {s.concurrency:.2f}x"]


def _kv_rule(acc: Accounting, s: Serving) -> str:
    t, o = acc.spec.text, s.options
    width = s.token_layer_bytes
    if t.mla is not None and t.indexer is not None:
        latent = width - vllm_indexer_bytes(t)
        size = latent // (t.mla.kv_lora_rank + t.mla.qk_rope_head_dim)
        rule = (f"({t.mla.kv_lora_rank} + {t.mla.qk_rope_head_dim}) × {size}" if size > 1 else
                f"vLLM's fp8_ds_mla: {t.mla.kv_lora_rank} fp8 + float32 scales + {t.mla.qk_rope_head_dim} × 2 (bf16)")
        return (f"MLA latent: (kv_lora_rank + qk_rope_head_dim) × {o.kv_dtype} = {rule} = {n(latent)} B, "
                f"plus the indexer's key in vLLM's fp8 cache: {t.indexer.head_dim} + {t.indexer.head_dim} / 128 × 4 "
                f"(float32 scales) = {vllm_indexer_bytes(t)} B; {n(width)} B")
    if t.mla is not None:
        return (f"MLA latent: (kv_lora_rank + qk_rope_head_dim) × {o.kv_dtype} = ({t.mla.kv_lora_rank} + "
                f"{t.mla.qk_rope_head_dim}) × {width // (t.mla.kv_lora_rank + t.mla.qk_rope_head_dim)} = {n(width)} B")
    heads = max(1, t.num_kv_heads // o.tp)  # vLLM replicates a kv head over tp // kv_heads ranks
    split = f" (of {t.num_kv_heads}, over {o.tp} GPUs)" if o.tp > 1 else ""
    return (f"2 × kv_heads{split} × head_dim × {o.kv_dtype} = 2 × {heads} × {t.head_dim} × "
            f"{width // (2 * heads * t.head_dim)} = {n(width)} B")


def _group_count(s: Serving) -> int:
    return len(s.hybrid.groups) if s.hybrid is not None else len(s.groups)


def _hybrid_notes(acc: Accounting, s: Serving) -> list[str]:
    """What the hybrid allocator did, in vLLM's words, and the state's widths (memory.native_hybrid)."""
    from inspector.inventory.accounting import kv_line
    from inspector.memory.native_hybrid import SOURCE_VLLM

    if s.hybrid is None:
        return []
    t = acc.spec.text
    g = t.linear
    widths = ("conv states of kernel - 1 inputs in the model's dtype (--mamba-cache-dtype auto; assumed 16-bit), the "
              "recurrent state in float32 (kda_state_dtype)" if g.kind == "kda" else
              "conv state of kernel - 1 inputs and the recurrent state, both in the model's dtype: "
              "--mamba-cache-dtype auto; assumed 16-bit")
    return [f"{kv_line(t)}; {g.mixer_name} layers: one state page per sequence "
            f"({widths}), padded to the attention page, the attention block "
            f"size raised until its page holds a layer's state ({SOURCE_VLLM}); status: exact (vLLM's formulas).",
            *s.hybrid.notes]


def _groups_text(s: Serving) -> str:
    if s.hybrid is not None:
        p = s.hybrid
        kinds = [f"{len(g.layers)} {'state' if g.kind == 'state' else g.kind}" for g in p.groups]
        return f"{len(p.groups)} group(s) of {p.group_size} layers: " + ", ".join(kinds)
    kinds = []
    for g in s.groups:
        kinds.append(f"{len(g.layers)} {'sliding-window (' + n(g.window) + ')' if g.kind == 'sliding' else 'full'}")
    return f"{len(s.groups)} group(s) of {s.group_size} layers: " + ", ".join(kinds)


def _gpu_status(s: Serving) -> str:
    g = s.gpu
    return {"calibrated": "calibrated", "assumed": "assumed (--gpu-memory-gib)", "given": "input"}.get(
        g.torch_status, "input")


def _short(text: str) -> str:
    """A source as the table cites it: the long llm-d URL as [llm-d] (the notes give it in full)."""
    from inspector.memory.vllm import LLMD_TABLE

    return text.replace(LLMD_TABLE, "[llm-d]")


def _vision_rows(b) -> list[list[str]]:
    """A vision-language model's encoder profile (inside the activation peak above, not added to it)."""
    vision = [t for t in b.terms if t.name == "vision_encoder_profile"]
    return [["  of which: vision encoder profile", _b(t.bytes), f"{t.status} (--images-per-prompt)", t.source]
            for t in vision]


def _main_rows(s: Serving) -> list[list[str]]:
    o, b = s.options, s.budget
    act, kv = b.term("activation_peak"), b.term("kv_cache")
    act_status = act.status + (" (--max-num-batched-tokens, --max-num-seqs)" if act.status == "assumed" else "")
    nt = b.term("non_torch")
    nt_status = nt.status + (" (--overhead-gib)" if nt.status == "assumed" else "")
    gpu_source = s.gpu.torch_source or s.gpu.source
    return [
        ["GPU total (torch)", _b(s.gpu.total), _gpu_status(s), f"torch.cuda.mem_get_info()[1]: {gpu_source}"],
        ["GPU memory vLLM may use", _b(s.usable), "exact", f"{o.gpu_memory_utilization:g} × {gib(s.gpu.total)}"],
        [s.weights.name, _b(s.weights.bytes), s.weights_status, s.weights.formula],
        [f"Activation peak (profile run, {n(b.max_num_batched_tokens)} tokens)", _b(s.activations), act_status,
         _short(act.source)],
        *_vision_rows(b),
        [s.overhead.name, _b(s.overhead.bytes), nt_status, _short(nt.source)],
        ["CUDA graphs", _b(b.term("cuda_graphs").bytes), b.term("cuda_graphs").status, b.term("cuda_graphs").source],
        ["KV cache (the rest)", _b(max(s.kv_available, 0)), kv.status if kv.status != "calibrated" else
         "from the terms above", kv.source],
    ]


def _kv_rows(acc: Accounting, s: Serving) -> list[list[str]]:
    block = s.hybrid.block_size if s.hybrid is not None else s.options.block_size
    per_block = [["Per block per layer",
                  f"block_size × per token = {block} × {n(s.token_layer_bytes)} = {n(s.page_bytes)} B"]]
    if s.hybrid is not None:
        p = s.hybrid
        per_block = [["Attention page (one block of one layer)", f"{block} × {n(s.token_layer_bytes)} = "
                      f"{n(p.attention_page)} B"],
                     ["State page (one sequence of one linear layer)", f"{n(p.state_page)} B, padded to {n(p.page)} B"]]
    return [
        ["Per token per layer (one GPU)", _kv_rule(acc, s)],
        *per_block,
        ["Layout", _groups_text(s)],
        ["Blocks", f"KV memory // block // layers per group = {n(max(s.kv_available, 0))} // {n(s.page_bytes)} // "
                   f"{s.group_size} = {n(s.num_blocks)}"],
        ["Tokens", f"blocks // groups × block_size = {n(s.num_blocks)} // {_group_count(s)} × {block} = "
                   f"{n(s.kv_tokens)}"],
        [f"One request of {n(s.max_model_len)} tokens (max_model_len)", _b(s.one_request_bytes)],
        ["Largest context of one request", f"{n(s.largest_context)} tokens"
         + (" (all of max_model_len)" if s.largest_context == s.max_model_len else " (KV memory limit)")],
    ]


def _ranks_section(acc: Accounting, s: Serving) -> Section:
    """One row per distinct rank (ranks holding the same bytes and layers are merged)."""
    rows: list[list[str]] = []
    for r in s.ranks.ranks:
        key = [f"layers {r.layers[0]}-{r.layers[1] - 1}", _b(int(r.weights_bytes)), f"{n(r.kv_bytes_per_token)} B"]
        if rows and rows[-1][1:] == key and rows[-1][0].startswith(f"PP {r.pp_rank} "):
            rows[-1][0] = f"PP {r.pp_rank} TP {rows[-1][0].split('TP ')[1].split('-')[0]}-{r.tp_rank}"
        else:
            rows.append([f"PP {r.pp_rank} TP {r.tp_rank}", *key])
    notes = list(s.ranks.notes) if acc.spec.is_vlm else []
    notes.append("vLLM sizes the KV cache on every rank from the same budget; the rank with the most weights "
                 "(the one in the table above) decides.")
    return Section(f"Per rank ({s.ranks.layout.label()})", ["Ranks", "Layers", "Weights", "KV per token (its layers)"],
                   rows, notes)


def _weights_notes(o, prefix: str = "Weights: ", end: str = ".") -> list[str]:
    """How the weights were read: the headers matched (what was left out), or why they were not used."""
    stored = o.stored.notes if o.stored is not None and not o.dtype_given else ()
    return [f"{prefix}{note}{end}" for note in (*stored, *o.weights_notes)]


def serving_report(acc: Accounting, s: Serving, v: Verdict) -> Report:
    from inspector.memory.vllm import LLMD_TABLE

    o, b = s.options, s.budget
    lay = o.layout
    where = f"{lay.world} × {s.gpu.name}" if lay.world > 1 else s.gpu.name
    setup = f"{lay.label()}, " if lay.world > 1 else ""
    notes = ["Status: exact = vLLM's formula, no measurement; calibrated = a published measurement (its source "
             "named); assumed = a modelling choice (the flag that changes it); input = given.",
             f"[llm-d] = llm-d/llm-d-benchmark, config_explorer/empirical-vllm-memory-results.md ({LLMD_TABLE})."]
    notes += _weights_notes(o)
    notes += list(b.notes)
    sections = [
        Section(f"Serving {acc.spec.name} on {where} ({setup}{o.engine}, vLLM {o.vllm_version or 'newest'}, paged KV cache, {o.kv_dtype} KV)",
                ["Component", "Per GPU", "Status", "Source / formula"], _main_rows(s), notes),
        Section("KV cache", ["", ""], _kv_rows(acc, s), _hybrid_notes(acc, s)),
    ]
    if lay.world > 1:
        sections.append(_ranks_section(acc, s))
    sections += [Section("What vLLM would log at start-up", ["line"], [[line] for line in vllm_lines(s)]),
                 _verdict_section(v)]
    return Report(sections, _serving_json(acc, s, v))


def _hybrid_json(acc: Accounting, s: Serving) -> dict[str, Any]:
    """The keys the transformers path gives a hybrid model (runtime.hf_answer), from the spec and the plan."""
    from inspector.inventory.accounting import kv_bytes_per_token, linear_state
    from inspector.memory.quant import KV_BYTES

    t, p = acc.spec.text, s.hybrid
    state = linear_state(t)
    return {"path": "native", "kv_layers": len(t.kv_layers),
            "kv_bytes_per_token": kv_bytes_per_token(t, KV_BYTES[s.options.kv_dtype]),
            "state_bytes_per_sequence": state.bytes_per_sequence if state is not None else 0,
            "vllm_state_page_bytes": p.state_page, "page_bytes": p.page, "block_size": p.block_size,
            "groups": len(p.groups), "group_size": p.group_size, "hybrid_notes": list(p.notes)}


def _serving_json(acc: Accounting, s: Serving, v: Verdict) -> dict[str, Any]:
    out = _serving_json_keys(acc, s, v)
    if s.hybrid is not None:  # a spec with Gated DeltaNet layers: vLLM's hybrid allocator's figures
        out.update(_hybrid_json(acc, s))
    elif acc.spec.text is not None and acc.spec.text.per_layer is not None:  # Gemma 3n / 4: KV-shared layers
        from inspector.memory.quant import KV_BYTES
        from inspector.reports.per_layer import per_layer_serving_json

        out.update(per_layer_serving_json(acc, s, KV_BYTES[s.options.kv_dtype]))
    vision = [t for t in s.budget.terms if t.name == "vision_encoder_profile"]
    if vision:  # vision-language models only: the encoder's profile peak (part of activation_peak_bytes)
        out["vision_encoder_profile_bytes"] = vision[0].bytes
        out["images_per_prompt"] = s.options.images_per_prompt
    return out


def _serving_json_keys(acc: Accounting, s: Serving, v: Verdict) -> dict[str, Any]:
    from inspector.memory.serving import weights_source

    o, b = s.options, s.budget
    return {
        "model": acc.spec.name, "scenario": "serve", "gpu": s.gpu.name, "gpu_bytes": s.gpu.bytes, "gpus": o.gpus,
        "tp": o.tp, "pp": o.pp, "ep": o.ep, "engine": o.engine, "vllm_version": o.vllm_version,
        "dtype": o.dtype, "kv_dtype": o.kv_dtype, "block_size": o.block_size,
        "gpu_memory_utilization": o.gpu_memory_utilization, "max_model_len": s.max_model_len,
        "max_num_batched_tokens": b.max_num_batched_tokens, "max_num_seqs": b.max_num_seqs,
        "usable_bytes": s.usable, "weights_bytes": s.weights.bytes, "activation_bytes": s.activations,
        "layer_peak_bytes": s.layer_peak.bytes, "logits_bytes": s.logits.bytes,
        "all_logits_bytes": s.all_logits.bytes, "overhead_bytes": s.overhead.bytes,
        "gpu_total_bytes": s.gpu.total, "activation_peak_bytes": s.activations, "non_torch_bytes": s.overhead.bytes,
        "kv_cache_bytes": max(s.kv_available, 0), "kv_bytes_per_token_layer": s.token_layer_bytes,
        "block_bytes_per_layer": s.page_bytes, "kv_groups": [[g.kind, g.window, len(g.layers)] for g in s.groups],
        "layers_per_group": s.group_size, "num_blocks": s.num_blocks, "kv_cache_tokens": s.kv_tokens,
        "max_concurrency": s.concurrency, "one_request_bytes": s.one_request_bytes,
        "largest_context": s.largest_context, "vllm_log": vllm_lines(s),
        "terms": [{"name": t.name, "bytes": t.bytes, "status": t.status, "source": t.source} for t in b.terms],
        "gpu_total_status": s.gpu.torch_status or "input", "weights_status": s.weights_status,
        "weights_source": weights_source(o), "weights_notes": _weights_notes(o, "", ""),
        "checkpoint_weights_bytes": s.weights.bytes - sum(x.bytes for x in s.load_extras),
        "load_extras": [{"name": x.name, "bytes": x.bytes, "status": x.status, "source": x.source}
                        for x in s.load_extras],
        "ranks": [{"pp_rank": r.pp_rank, "tp_rank": r.tp_rank, "dp_rank": r.dp_rank, "layers": list(r.layers),
                   "weights_bytes": int(r.weights_bytes), "kv_bytes_per_token": r.kv_bytes_per_token}
                  for r in s.ranks.ranks],
        "fits": v.fits, "verdict": v.text, "would_fit_with": list(v.suggestions),
    }


# --------------------------------------------------------------------------- training


def _zero_table(tr: Training) -> Section:
    from inspector.memory.zero import ZeroLayout, model_states

    o = tr.options
    rows = []
    for stage, offload in ((0, "none"), (1, "none"), (1, "optimizer"), (2, "none"), (2, "optimizer"),
                           (3, "none"), (3, "optimizer"), (3, "optimizer+params")):
        z = ZeroLayout(stage, offload, o.gpus_per_node, o.nodes, o.zero_init)
        ms = model_states(tr.params, tr.largest_layer, z, o.optimizer) if o.optimizer != "adamw-fp32" or not stage \
            else None
        if ms is None:
            continue
        mark = " ←" if (stage, offload) == (o.zero, o.offload) else ""
        rows.append([f"ZeRO-{stage}{mark}", offload, _b(ms.gpu), _b(ms.cpu) if ms.cpu else "", ms.formula])
    notes = [f"P = {n(tr.params)} parameters (a tied head once), L = {n(tr.largest_layer)} in the largest module; "
             f"{o.gpus_per_node} GPU(s) per node × {o.nodes} node(s). ZeRO-0 is {SOURCES['anatomy']}; ZeRO-2/3 are "
             f"{SOURCES['deepspeed']} to the byte; ZeRO-1 uses their accounting with the 16-bit gradients whole."]
    return Section("Model states by ZeRO stage (per GPU, per CPU)", ["Stage", "Offload", "Per GPU", "Per CPU",
                                                                       "Formula"], rows, notes)


def training_report(acc: Accounting, tr: Training, v: Verdict) -> Report:
    o = tr.options
    where = f"{o.gpus_per_node * o.nodes} × {tr.gpu.name}" if o.gpus_per_node * o.nodes > 1 else tr.gpu.name
    rows = [[r.name, _b(r.gpu), _b(r.cpu) if r.cpu else "", r.formula] for r in tr.rows]
    rows.append([f"Peak (the largest phase: {tr.peak_phase})", _b(tr.per_gpu), _b(tr.cpu) if tr.cpu else "",
                 "max over phases, not the sum of the rows"])
    korthikanti = any(r.name.startswith("Activations (") and "transformers" not in r.name
                      and "checkpoints" not in r.name for r in tr.rows)
    heads = f"a = {acc.spec.text.num_heads} heads" if korthikanti else f"heads = {acc.spec.text.num_heads}"
    notes = [f"s = {n(o.seq_len)} tokens, b = {o.micro_batch} (micro-batch), h = {acc.spec.text.hidden_size}, "
             f"{heads}, V = {n(acc.spec.text.vocab_size)}; activations "
             + (f"after {SOURCES['korthikanti']}." if korthikanti else
                "as transformers and torch's autograd keep them (f = 4 B fp32, a = 2 B, q/kv = query/key-value "
                "widths, I = MLP width)."),
             "Phases: " + "; ".join(f"{p} {_b(tr.phase_bytes(p))}" for p in tr.phases)
             + ". Gradients exist only at the optimizer step (zero_grad sets them to None); the loss's 14 B per "
               "logit (16-bit logits, log_softmax's fp32 output, two fp32 gradients) peak at the start of backward."]
    moe = acc.spec.text.moe
    if o.mode == "qlora" and moe is not None:
        notes.append("bitsandbytes quantizes nn.Linear modules only: transformers 5 holds the routed experts as 3-D "
                     "parameters, so they stay in 16-bit under QLoRA.")
    if o.attention == "flash" and o.recompute != "full":
        from inspector.memory.activations import eager_extra

        notes.append(f"FlashAttention never stores the s×s attention scores, so the 5·a·s²·b term is gone; with "
                     f"--attention eager they add {gib(eager_extra(acc.spec.text, o.seq_len, o.micro_batch))}.")
    title = {"full": "Full", "lora": "LoRA", "qlora": "QLoRA"}[o.mode]
    sections = [Section(f"{title} fine-tuning of {acc.spec.name} on {where}",
                        ["Component", "Per GPU", "Per CPU", "Formula"], rows, notes)]
    if o.mode == "full":
        sections.append(_zero_table(tr))
    if tr.lora is not None:
        sections.append(_lora_section(tr))
    sections.append(_verdict_section(v))
    return Report(sections, _training_json(acc, tr, v))


def _lora_section(tr: Training) -> Section:
    from inspector.memory.lora import peft_line

    lc, o = tr.lora, tr.options.lora
    rows = [[a.target, a.modules, n(a.trainable), a.formula] for a in lc.adapted]
    notes = [f"peft: {peft_line(lc.trainable, lc.all_params)}",
             f"r = {o.rank}, alpha = {o.alpha} (scaling alpha/r = {o.alpha / o.rank:g}, no effect on memory)"
             + ("; DoRA adds a magnitude vector of `out` per matrix" if o.dora else "")
             + ("; lora_bias gives B a bias of `out`" if o.bias else "")]
    if lc.default_note:
        notes.append(lc.default_note)
    return Section("LoRA adapters (trainable)", ["Target", "Modules", "Trainable", "Formula"], rows, notes)


def _training_json(acc: Accounting, tr: Training, v: Verdict) -> dict[str, Any]:
    o = tr.options
    out: dict[str, Any] = {
        "model": acc.spec.name, "scenario": o.mode, "gpu": tr.gpu.name, "gpu_bytes": tr.gpu.bytes,
        "gpu_total_bytes": tr.gpu.total,
        "gpus_per_node": o.gpus_per_node, "nodes": o.nodes, "optimizer": o.optimizer, "zero": o.zero,
        "offload": o.offload, "seq_len": o.seq_len, "micro_batch": o.micro_batch, "recompute": o.recompute,
        "attention": o.attention, "params": tr.params, "largest_layer_params": tr.largest_layer,
        "rows": [{"name": r.name, "gpu_bytes": r.gpu, "cpu_bytes": r.cpu, "formula": r.formula,
                  "phases": list(r.phases)} for r in tr.rows],
        "per_gpu_bytes": tr.per_gpu, "cpu_bytes": tr.cpu, "precision": o.precision, "peak_phase": tr.peak_phase,
        "phase_bytes": {p: tr.phase_bytes(p) for p in tr.phases},
        "fits": v.fits, "verdict": v.text, "would_fit_with": list(v.suggestions),
    }
    if tr.lora is not None:
        from inspector.memory.lora import peft_line

        lc = tr.lora
        out["lora"] = {"targets": list(lc.targets), "trainable": lc.trainable, "all_params": lc.all_params,
                       "peft_line": peft_line(lc.trainable, lc.all_params),
                       "adapted": {a.target: {"modules": a.modules, "trainable": a.trainable} for a in lc.adapted}}
    return out


__all__ = ["serving_report", "training_report", "vllm_lines"]
