"""Reports of `params`, `config` and `presets`: accounting and specs laid out as the book's tables.

The tables are those of *Implementations of Large Language Models*.

`params` with one model: the per-layer table (Tables 1.2/1.4, and 2.2 for VLMs, one section per
component) and a totals block. With several models: the same side by side (Table 1.4 layout).
`config`: Table 1.3 (and 2.1 for VLMs). Number formatting lives here and in render only.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspector.errors import warn
from inspector.inventory.accounting import COMPONENT_ORDER, Accounting, Row, kv_line, linear_state
from inspector.inventory.entry import MTP
from inspector.reports.arch_text import layers_text
from inspector.reports.per_layer import (
    per_layer_config_rows, per_layer_json, per_layer_total_rows, per_layer_totals_json,
)
from inspector.reports.render import Report, Section
from inspector.spec.model import ModelSpec
from inspector.units import KV_DTYPE_BYTES, Count, billions, human_bytes, n, plural

if TYPE_CHECKING:  # --flops only: params without it loads no FLOPs arithmetic (cold start)
    from inspector.reports.params_flops import FlopsColumn, ModelFlops

COMPONENT_TITLES = {
    "vision_encoder": "Vision encoder",
    "projector": "Projector / merger",
    "audio_encoder": "Audio encoder and its projection",
    "language_model": "Language model",
    MTP: "Multi-token prediction module (stored beside the model, not counted in its total)",
}
SHOWN_COMPONENTS = (*COMPONENT_ORDER, MTP)


def short_name(template: str) -> str:
    """'model.layers.N.self_attn.q_proj.weight' -> 'self_attn.q_proj.weight'."""
    return template.split(".N.", 1)[1] if ".N." in template else template


def weights_cell(row: Row) -> list[str]:
    return [f"{short_name(name)}: {tuple(shape)}" for name, shape in row.weights]


def params_cell(row: Row) -> str:
    text = f"{n(row.params)} × {row.repeat}" if row.repeat > 1 else n(row.params)
    if not row.parameter:
        return f"{text} (buffer, not a parameter)"
    return f"{text} (tied, not stored)" if not row.stored else text


def counted(row: Row) -> bool:
    """Whether a row adds to the subtotal: stored parameters only."""
    return row.stored and row.parameter


def _row_json(row: Row) -> dict[str, Any]:
    return {
        "component": row.component,
        "name": row.name,
        "repeat": row.repeat,
        "weights": {name: list(shape) for name, shape in row.weights},
        "params": row.params,
        "params_total": row.total,
        "stored": row.stored,
    }


def params_json(acc: Accounting, context: int, batch: int, kv_dtype: str = "bf16") -> dict[str, Any]:
    t, spec = acc.totals, acc.spec
    return {
        "model": spec.name,
        "source": spec.source,
        "architecture": spec.architecture,
        "model_type": spec.model_type,
        "total_params": t.total_params,
        "total_params_untied": t.total_params_untied,
        "embedding_params": t.embedding_params,
        "non_embedding_params": t.non_embedding_params,
        "tied_embeddings": t.tied_embeddings,
        "components": dict(t.components),
        "weight_bytes": {k: int(v) for k, v in t.weight_bytes.items()},
        **({"kv_cache_bytes_per_token": t.kv_cache_bytes_per_token * KV_DTYPE_BYTES[kv_dtype] // 2,
            "kv_cache": {"context": context, "batch": batch, "dtype": kv_dtype,
                         "bytes": acc.kv_cache_bytes(context, batch, KV_DTYPE_BYTES[kv_dtype])}}
           if spec.text is not None else {}),
        **_state_json(spec.text),
        **per_layer_totals_json(acc),
        **_moe_json(acc),
        **_origin_json(acc),
        **({"stored_beside_model": dict(t.extra)} if t.extra else {}),
        **({"stored_checkpoint": {"file": acc.stored.file, "bytes": acc.stored.nbytes,
                                  "dtypes": {d: {"tensors": k, "params": p, "bytes": b}
                                             for d, k, p, b in acc.stored.dtypes}}} if acc.stored else {}),
        "rows": [_row_json(r) for r in acc.rows],
    }


def _state_json(text) -> dict[str, Any]:
    """Hybrid models: the layers with a KV cache and the linear-attention state (conv in bf16, recurrent
    in fp32, as transformers holds them)."""
    state = linear_state(text) if text is not None else None
    if state is None:
        return {}
    return {"kv_layers": len(text.kv_layers), "kv_layers_line": kv_line(text),
            "linear_state": {"layers": state.layers, "conv_shape": list(state.conv_shape),
                             "recurrent_shape": list(state.recurrent_shape), "conv_bytes_per_layer": state.conv_bytes,
                             "recurrent_bytes_per_layer": state.recurrent_bytes,
                             "bytes_per_sequence": state.bytes_per_sequence}}


def _moe_json(acc: Accounting) -> dict[str, Any]:
    m = acc.totals.moe
    if m is None:
        return {}
    return {"moe": {"active_params": m.active_params,
                    "active_params_without_embedding": m.active_params - _input_embedding(acc),
                    "active_definition": m.definition, "routed_expert_params": m.routed_expert_params,
                    "experts": m.experts, "top_k": m.top_k, "moe_layers": m.moe_layers}}


def _origin_json(acc: Accounting) -> dict[str, Any]:
    """Where the inventory came from, for a model counted through transformers."""
    if acc.origin.native:
        return {}
    return {"inventory": {"source": str(acc.origin), "transformers_version": acc.spec.transformers_version,
                          "model_class": acc.spec.class_name, "seconds": round(acc.spec.seconds, 3)}}


def _origin_note(acc: Accounting) -> str | None:
    if acc.origin.native:
        return None
    extra = "".join(f"; {note}" for note in acc.spec.notes)
    return (f"{acc.spec.name}: {acc.origin}: {acc.spec.class_name} built in {acc.spec.seconds:.2f} s; "
            f"no KV-cache estimate without a native family{extra}.")


def _input_embedding(acc: Accounting) -> int:
    return sum(e.numel for e in acc.entries if e.role == "embed")


def _totals_rows(acc: Accounting, context: int, batch: int, kv_dtype: str = "bf16") -> list[tuple[str, str]]:
    t = acc.totals
    rows = [
        ("Total parameters (stored; a tied LM head counted once)",
         f"{n(t.total_params)} ({billions(t.total_params)})"),
        ("Total with the LM head counted separately (as Table 1.4 of Implementations of Large Language Models)",
         f"{n(t.total_params_untied)} ({billions(t.total_params_untied)})"),
        ("Embedding parameters (token embedding + stored LM head)", n(t.embedding_params)),
        ("Non-embedding parameters (model-card definition)",
         f"{n(t.non_embedding_params)} ({billions(t.non_embedding_params)})"),
    ]
    if len(t.components) > 1:
        rows += [(COMPONENT_TITLES[c], n(t.components[c])) for c in COMPONENT_ORDER if c in t.components]
        vision = sum(v for c, v in t.components.items() if c in ("vision_encoder", "projector"))
        if vision:
            rows.append(("Vision encoder + projector (the 'Total' of Table 2.2 of Implementations of Large Language "
                         "Models)", n(vision)))
    rows += _moe_rows(acc)
    rows += per_layer_total_rows(acc, billions)  # Gemma 3n / 4
    if acc.stored is not None:
        kinds = "; ".join(f"{d}: {plural(k, 'tensor')}, {human_bytes(b)}" for d, k, _, b in acc.stored.dtypes)
        rows.append((f"Stored in {Path(acc.stored.file).name} (bytes on disk, by stored type)",
                     f"{human_bytes(acc.stored.nbytes)} ({kinds})"))
    rows += [(f"Weight memory, {k}", human_bytes(v)) for k, v in t.weight_bytes.items()]
    rows += _kv_rows(acc, context, batch, kv_dtype)
    return rows


def _moe_rows(acc: Accounting) -> list[tuple[str, str]]:
    m, t = acc.totals.moe, acc.totals
    rows: list[tuple[str, str]] = []
    if m is not None:
        share = m.routed_expert_params / t.total_params
        rows += [
            (f"Routed experts ({m.experts} per MoE layer × {m.moe_layers} MoE layers)",
             f"{n(m.routed_expert_params)} ({billions(m.routed_expert_params)}, {share:.1%} of the total)"),
            (f"Active parameters per token (top-{m.top_k} of {m.experts} routed experts; see the note)",
             f"{n(m.active_params)} ({billions(m.active_params)})"),
            ("Active parameters per token without the input embedding (the gpt-oss model card's convention)",
             f"{n(m.active_params - _input_embedding(acc))} ({billions(m.active_params - _input_embedding(acc))})"),
        ]
    for name, count in t.extra.items():
        rows.append((f"{COMPONENT_TITLES[name]}", f"{n(count)} ({billions(count)})"))
    return rows


def _kv_rows(acc: Accounting, context: int, batch: int, kv_dtype: str = "bf16") -> list[tuple[str, str]]:
    t, text = acc.totals, acc.spec.text
    if text is None:
        return []
    size = KV_DTYPE_BYTES[kv_dtype]
    per_token = t.kv_cache_bytes_per_token * size // 2
    if text.mla is not None and text.indexer is not None:  # DeepSeek-V3.2: its indexer's key beside the latent
        m, d_i = text.mla, text.indexer.head_dim
        rule = (f"{n(per_token)} B (MLA caches the compressed latent, the lightning indexer its key: "
                f"{len(text.kv_layers)} × ({m.kv_lora_rank} + {m.qk_rope_head_dim} + {d_i}) × {size})")
        label = (f"KV cache per token, {kv_dtype} (layers × (kv_lora_rank + qk_rope_head_dim + index_head_dim) × "
                 f"{size} B)")
    elif text.mla is not None:
        m = text.mla
        rule = (f"{n(per_token)} B (MLA caches the compressed latent: "
                f"{len(text.kv_layers)} × ({m.kv_lora_rank} + {m.qk_rope_head_dim}) × {size})")
        label = f"KV cache per token, {kv_dtype} (layers × (kv_lora_rank + qk_rope_head_dim) × {size} B)"
    elif text.per_layer is not None:  # Gemma 3n / 4: sizes per layer, KV-shared layers keep no cache
        shapes = {}
        for i in text.kv_layers:
            key = (text.layer_kv_heads(i), text.layer_head_dim(i))
            shapes[key] = shapes.get(key, 0) + 1
        terms = " + ".join(f"2 × {c} × {kv} × {hd} × {size}" for (kv, hd), c in shapes.items())
        rule = f"{n(per_token)} B ({terms})"
        label = f"KV cache per token, {kv_dtype} (2 × layers × kv_heads × head_dim × {size} B)"
    else:
        rule = (f"{n(per_token)} B "
                f"(2 × {len(text.kv_layers)} × {text.num_kv_heads} × {text.head_dim} × {size})")
        label = f"KV cache per token, {kv_dtype} (2 × layers × kv_heads × head_dim × {size} B)"
    rows = [(label, rule)]
    rows.extend(_state_rows(text))
    windowed = sum(1 for i in range(text.num_layers) if text.window(i))
    what = f"KV cache, context {n(context)} × batch {batch}"
    if windowed:
        what += f" ({windowed} of {text.num_layers} layers keep only the last {n(text.sliding_window)} tokens)"
    rows.append((what, human_bytes(acc.kv_cache_bytes(context, batch, size))))
    return rows


def _state_rows(text) -> list[tuple[str, str]]:
    """Hybrid models: which layers keep a KV cache, and the fixed state the others keep per sequence."""
    state = linear_state(text)
    if state is None:
        return []
    (ch, pos), shape = state.conv_shape, state.recurrent_shape
    per_layer = f"{n(state.bytes_per_layer)} B per layer: conv {ch} × {pos} × {state.conv_bytes // (ch * pos)} B"
    if shape:
        per_layer += (f" + recurrent {' × '.join(map(str, shape))} × "
                      f"{state.recurrent_bytes // math.prod(shape)} B (fp32)")
    return [("Layers with a KV cache", kv_line(text)),
            (f"Linear-attention state per sequence ({state.layers} {text.linear.mixer_name} layers, as transformers "
             "holds it)",
             f"{n(state.bytes_per_sequence)} B ({human_bytes(state.bytes_per_sequence)}; {per_layer})")]


def _tie_note(acc: Accounting) -> str | None:
    t = acc.totals
    if not t.tied_embeddings:
        return None
    return (f"{acc.spec.name}: tie_word_embeddings is true, so the LM head shares the token embedding "
            f"matrix. The checkpoint stores {n(t.total_params)} parameters; counting the head "
            f"separately, as Table 1.4 of Implementations of Large Language Models does, gives {n(t.total_params_untied)} "
            f"(+{n(t.total_params_untied - t.total_params)}).")


def _component_keys(accs: list[Accounting]) -> list[str]:
    present = {r.component for a in accs for r in a.rows}
    return [c for c in SHOWN_COMPONENTS if c in present]


def _merged_order(sequences: list[list[str]]) -> list[str]:
    """Row names of several models in one order: a name missing from the first model goes right
    after the name that precedes it in its own model (so Table 2.2's rows stay in place)."""
    keys: list[str] = []
    for seq in sequences:
        for i, name in enumerate(seq):
            if name in keys:
                continue
            prev = next((seq[j] for j in range(i - 1, -1, -1) if seq[j] in keys), None)
            keys.insert(keys.index(prev) + 1 if prev is not None else 0, name)
    return keys


def _warn_past_context(accs: list[Accounting], context: int, flag: str = "--context",
                       what: str = "the KV-cache figure") -> None:
    """One warning per model whose max_position_embeddings is below `context` (given as `flag`)."""
    for a in accs:
        limit = a.spec.text.max_position_embeddings if a.spec.text is not None else None
        if limit and context > limit:
            warn(f"{a.spec.name}: {flag} {context:,} is past its max_position_embeddings ({limit:,}); "
                 f"{what} is for a context the model was not trained for")


@dataclass(frozen=True)
class ParamsOptions:
    """What `inspect params` was asked beside the models: the KV cache's context, batch and dtype, the
    totals block alone, and `flops` (--flops: a FLOPs column, a prefill of flops.seq_len tokens)."""

    context: int = 4096
    batch: int = 1
    totals_only: bool = False
    kv_dtype: str = "bf16"
    flops: FlopsColumn | None = None


def params_report(accs: list[Accounting], options: ParamsOptions = ParamsOptions()) -> Report:
    """The per-layer sections and the totals block (`totals_only`: the totals block alone)."""
    o = options
    _warn_past_context(accs, o.context)
    if o.flops:
        _warn_past_context(accs, o.flops.seq_len, "--seq-len", "the FLOPs column")
    flops = _flops(accs, o.flops)
    sections = _layer_sections(accs, flops)
    total_labels = [label for label, _ in _totals_rows(accs[0], o.context, o.batch, o.kv_dtype)]
    totals_by_model = [dict(_totals_rows(a, o.context, o.batch, o.kv_dtype)) for a in accs]
    if flops:
        for d, f in zip(totals_by_model, flops):
            d[f.col.title()] = f"{n(f.total)} ({f.total:.3e})"
    labels = total_labels + [l for d in totals_by_model for l in d if l not in total_labels]
    headers = ["Figure", *[a.spec.name for a in accs]] if len(accs) > 1 else ["Figure", "Value"]  # the title says Totals
    sections.append(Section("Totals", headers, [[l, *[d.get(l, "") for d in totals_by_model]] for l in labels]))
    notes = [note for a in accs if (note := _origin_note(a))]
    notes += [note for a in accs if (note := _tie_note(a))]
    notes += [f"{a.spec.name}: active parameters per token = {a.totals.moe.definition}."
              for a in accs if a.totals.moe is not None]
    notes += _flops_notes(accs, flops)

    payload = [_payload(a, o, f) for a, f in zip(accs, flops or [None] * len(accs))]
    if o.totals_only:
        sections = sections[-1:]
    headers, csv_rows = _csv(accs, payload, o.totals_only, flops)
    return Report(sections, payload[0] if len(payload) == 1 else payload, headers, csv_rows, notes)


def _flops(accs: list[Accounting], col: FlopsColumn | None) -> list[ModelFlops] | None:
    """Each model's FLOPs column (--flops), else None."""
    if col is None:
        return None
    from inspector.reports.params_flops import model_flops

    return [model_flops(a, col) for a in accs]


def _flops_notes(accs: list[Accounting], flops: list[ModelFlops] | None) -> list[str]:
    if not flops:
        return []
    from inspector.reports.params_flops import flops_notes

    return flops_notes([a.spec.name for a in accs], flops)


def _layer_sections(accs: list[Accounting], flops: list[ModelFlops] | None) -> list[Section]:
    """One section per component (its rows; several models side by side), with the FLOPs column."""
    sections: list[Section] = []
    components = _component_keys(accs)
    for comp in components:
        title = COMPONENT_TITLES[comp] if len(components) > 1 else ""
        if len(accs) == 1:
            sections.append(_one_model_section(accs[0], comp, title, flops[0] if flops else None))
        else:
            sections.append(_side_by_side_section(accs, comp, title, flops))
    return sections


def _one_model_section(acc: Accounting, comp: str, title: str, flops: ModelFlops | None) -> Section:
    rows = [[r.name, r.repeat, weights_cell(r), params_cell(r), Count(r.total if counted(r) else 0)]
            + ([Count(flops.by_row[(r.component, r.name)])] if flops else [])
            for r in acc.rows if r.component == comp]
    sub = sum(r.total for r in acc.rows if r.component == comp and counted(r))
    rows.append(["Subtotal" if title else "Total", "", "", "", Count(sub)]
                + ([Count(sum(flops.by_row[(r.component, r.name)] for r in acc.rows if r.component == comp))] if flops else []))
    headers = ["Layer", "Repeat", "Weight shapes", "Params", "Total"] + ([flops.col.header()] if flops else [])
    return Section(title, headers, rows)


def _side_by_side_section(accs: list[Accounting], comp: str, title: str, flops: list[ModelFlops] | None) -> Section:
    keys = _merged_order([[r.name for r in a.rows if r.component == comp] for a in accs])
    headers = ["Layer"]
    for a in accs:
        headers += [f"{a.spec.name} weights", f"{a.spec.name} params"] + ([f"{a.spec.name} FLOPs"] if flops else [])
    rows = []
    for key in keys:
        line: list[Any] = [key]
        for i, a in enumerate(accs):
            row = next((r for r in a.rows if r.component == comp and r.name == key), None)
            line += [weights_cell(row), params_cell(row)] if row else ["—", "—"]
            if flops:
                line.append(Count(flops[i].by_row[(row.component, row.name)]) if row else "—")
        rows.append(line)
    sub = ["Subtotal" if title else "Total (stored)"]
    for i, a in enumerate(accs):
        sub += ["", n(sum(r.total for r in a.rows if r.component == comp and counted(r)))]
        if flops:
            sub.append(n(sum(flops[i].by_row[(r.component, r.name)] for r in a.rows if r.component == comp)))
    rows.append(sub)
    return Section(title, headers, rows)


def _payload(acc: Accounting, o: ParamsOptions, flops: ModelFlops | None) -> dict[str, Any]:
    """params_json, with --flops the `flops` block and each row's `prefill_flops`."""
    data = params_json(acc, o.context, o.batch, o.kv_dtype)
    if flops:
        data["flops"] = flops.json()
        for r, row in zip(acc.rows, data["rows"]):
            row["prefill_flops"] = flops.by_row[(r.component, r.name)]
    return data


CSV_HEADERS = ["model", "section", "component", "name", "repeat", "weights", "params", "params_total", "stored",
               "value"]


def _csv(accs: list[Accounting], payload: list[dict], totals_only: bool,
         flops: list[ModelFlops] | None) -> tuple[list[str], list[list[Any]]]:
    """The CSV headers and rows: one per params row (with --flops its prefill_flops), then every figure of
    the totals block as a plain number."""
    extra = [""] if flops else []
    rows = [] if totals_only else [
        [a.spec.name, "layers", r.component, r.name, r.repeat, weights_cell(r), r.params, r.total, r.stored, ""]
        + ([flops[i].by_row[(r.component, r.name)]] if flops else [])
        for i, a in enumerate(accs) for r in a.rows
    ]
    for a, data in zip(accs, payload):  # every figure of the totals block, as a plain number
        rows += [[a.spec.name, "totals", "", key, "", "", "", "", "", value] + extra for key, value in _figures(data)]
    return CSV_HEADERS + (["prefill_flops"] if flops else []), rows


def _figures(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """The numbers of a params JSON payload outside its rows, as (dotted key, number)."""
    out: list[tuple[str, Any]] = []
    for key, value in data.items() if isinstance(data, dict) else ():
        if key == "rows":
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _figures(value, path + ".")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((path, value))
    return out


# --------------------------------------------------------------------------- config (Table 1.3)


def _text_config_rows(spec: ModelSpec) -> list[tuple[str, Any]]:
    t = spec.text
    scaling = dict(t.rope_scaling) if t.rope_scaling else None
    return [
        ("family (model_type)", spec.model_type if not spec.is_vlm else f"{spec.model_type} / {t.model_type}"),
        ("n_v (vocabulary size)", Count(t.vocab_size)),
        ("d (hidden size)", t.hidden_size),
        ("n_layers", t.num_layers),
        ("n_h (attention heads)", t.num_heads),
        ("n_kvheads (key/value heads)", t.num_kv_heads),
        ("d_inter (MLP size)", _dense_width(t)),
        ("d_h (head dim)", t.head_dim),
        ("kv groups (n_h / n_kvheads)", t.kv_groups),
        ("tied embeddings", "yes" if t.tie_embeddings else "no"),
        ("q/k/v bias", "yes" if t.qkv_bias else "no"),
        ("q/k RMSNorm", "yes" if t.qk_norm else "no"),
        ("fused qkv / gate_up", f"{'yes' if t.fused_qkv else 'no'} / {'yes' if t.fused_gate_up else 'no'}"),
        ("rope theta", Count(t.rope_theta) if float(t.rope_theta).is_integer() else t.rope_theta),
        ("rope scaling", ", ".join(f"{k}={v}" for k, v in scaling.items()) if scaling else "none"),
        ("max positions", Count(t.max_position_embeddings)),
        ("norm epsilon", f"{t.rms_norm_eps:g}"),
        ("sliding window", Count(t.sliding_window) if t.sliding_window else "none"),
    ]


def _dense_layers(t) -> tuple[int, ...]:
    return tuple(i for i in range(t.num_layers) if not t.is_moe_layer(i))


def _dense_width(t) -> Any:
    """The plain MLP's width where some layer has one; an MoE model with experts in every layer has none."""
    dense = _dense_layers(t)
    if not dense:
        return "none: every layer has experts"
    return t.intermediate_size if len(dense) == t.num_layers else f"{t.intermediate_size} ({layers_text(dense)})"


def _moe_config_rows(t) -> list[tuple[str, Any]]:
    """Experts, from the spec's MoESpec (rows only for models that have experts)."""
    m = t.moe
    if m is None:
        return []
    dense = _dense_layers(t)
    return [
        ("experts (routed, per MoE layer)", m.num_experts),
        ("top-k (experts per token)", m.top_k if m.top_k is not None else "not given"),
        ("expert width (d_inter per expert)", m.expert_intermediate),
        ("shared experts (total width)", m.shared_intermediate or "none"),
        ("layers with experts", f"{len(m.layers)} of {t.num_layers}: {layers_text(m.layers)}" if m.layers else "none"),
        ("dense MLP layers", f"{len(dense)}: {layers_text(dense)}" if dense else "none"),
    ]


def _mla_config_rows(t) -> list[tuple[str, Any]]:
    """Multi-head latent attention ranks, from the spec's MLASpec."""
    a = t.mla
    if a is None:
        return []
    return [
        ("q_lora_rank (q latent)", a.q_lora_rank or "none: q projected directly"),
        ("kv_lora_rank (kv latent, cached)", a.kv_lora_rank),
        ("qk head dim (nope + rope)", f"{a.qk_nope_head_dim} + {a.qk_rope_head_dim}"
                                      + (" (no RoPE applied)" if t.no_rope_layers else "")),
        ("v head dim", a.v_head_dim),
        *_indexer_config_rows(t),
    ]


def _indexer_config_rows(t) -> list[tuple[str, Any]]:
    """DeepSeek-V3.2's lightning indexer, from the spec's IndexerSpec."""
    x = t.indexer
    if x is None:
        return []
    return [("lightning indexer (DeepSeek Sparse Attention)",
             f"{x.heads} heads x {x.head_dim} (first {x.rope_dim} rotated), one cached key of {x.head_dim} per token; "
             f"each query attends to its top {x.topk:,} keys")]


_ATTENTION_WORDS = {"full": "full", "sliding": "sliding window", "chunked": "chunked"}


def _layer_types_rows(t) -> list[tuple[str, Any]]:
    """Which layers attend how, from the spec's per-layer attention (rows only where layers differ)."""
    if not t.layer_types:
        return []
    kinds: dict[str, list[int]] = {}
    for i, kind in enumerate(t.layer_types):
        kinds.setdefault(kind, []).append(i)
    parts = []
    for kind, layers in kinds.items():
        size = t.sliding_window if kind == "sliding" else t.attention_chunk if kind == "chunked" else None
        what = _ATTENTION_WORDS.get(kind, kind) + (f" {size}" if size else "")
        parts.append(f"{what} on {layers_text(tuple(layers))}")
    return [("attention per layer", "; ".join(parts))]


def _linear_config_rows(t) -> list[tuple[str, Any]]:
    """Hybrid models: which layers are Gated DeltaNet and its sizes (the spec's LinearAttnSpec)."""
    g = t.linear
    if g is None:
        return []
    full, name = t.kv_layers, g.mixer_name
    gated = "gated full" if t.attn_output_gate else "full"
    return [
        ("attention per layer", f"{name} on {len(g.layers)}: {layers_text(g.layers)}; "
                                f"{gated} attention on {len(full)}: {layers_text(full)}" if full else
                                f"{name} on all {len(g.layers)}"),
        *_mixer_size_rows(g),
        ("KV cache", kv_line(t)),
    ]


def _mixer_size_rows(g) -> list[tuple[str, Any]]:
    """The linear mixer's sizes in its own words (spec.layers.LinearAttnSpec)."""
    if g.kind == "mamba2":
        return [("Mamba2 heads × head dim", f"{g.value_heads} × {g.value_head_dim} (inner {g.value_dim})"),
                ("Mamba2 state size / groups", f"{g.key_head_dim} / {g.key_heads}"),
                ("Mamba2 conv kernel", g.conv_kernel)]
    if g.kind == "shortconv":
        return [("short convolution kernel (L_cache)", g.conv_kernel)]
    return [("linear attention heads (k / v)", f"{g.key_heads} / {g.value_heads}"),
            ("linear attention head dims (k / v)", f"{g.key_head_dim} / {g.value_head_dim}"),
            ("linear attention conv kernel", g.conv_kernel)]


def _config_rows(spec: ModelSpec) -> list[tuple[str, Any]]:
    t = spec.text
    return [*_text_config_rows(spec), *_moe_config_rows(t), *_mla_config_rows(t), *_layer_types_rows(t),
            *_linear_config_rows(t), *per_layer_config_rows(t)]


def _spec_json(spec: ModelSpec) -> dict[str, Any]:
    t = spec.text
    out = {
        "model": spec.name, "source": spec.source, "model_type": spec.model_type,
        "architecture": spec.architecture,
        "text": {k: getattr(t, k) for k in (
            "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads",
            "num_kv_heads", "head_dim", "kv_groups", "tie_embeddings", "qkv_bias", "o_bias", "mlp_bias",
            "qk_norm", "fused_qkv", "fused_gate_up", "rms_norm_eps", "rope_theta",
            "max_position_embeddings", "sliding_window", "hidden_act")},
    }
    out["text"]["rope_scaling"] = dict(t.rope_scaling) if t.rope_scaling else None
    out["text"]["dense_mlp_layers"] = list(_dense_layers(t))
    if t.per_layer is not None:  # Gemma 3n / 4
        out["text"]["per_layer"] = per_layer_json(t)
    if t.moe is not None:
        m = t.moe
        out["text"]["moe"] = {"num_experts": m.num_experts, "top_k": m.top_k,
                              "expert_intermediate_size": m.expert_intermediate,
                              "shared_intermediate_size": m.shared_intermediate, "layers": list(m.layers)}
    if t.mla is not None:
        a = t.mla
        out["text"]["mla"] = {"q_lora_rank": a.q_lora_rank or None, "kv_lora_rank": a.kv_lora_rank,
                              "qk_nope_head_dim": a.qk_nope_head_dim, "qk_rope_head_dim": a.qk_rope_head_dim,
                              "v_head_dim": a.v_head_dim}
    if t.layer_types:
        out["text"]["layer_types"] = list(t.layer_types)
    if spec.ignored_keys:
        out["ignored_keys"] = list(spec.ignored_keys)
    return out


def config_report(specs: list[ModelSpec]) -> Report:
    per_model = [dict(_config_rows(s)) for s in specs]
    labels = _merged_order([[label for label, _ in _config_rows(s)] for s in specs])
    rows = [[label, *[d.get(label, "") for d in per_model]] for label in labels]
    sections = [Section("Language model" if any(s.is_vlm for s in specs) else "",
                        ["Configuration", *[s.name for s in specs]], rows)]
    payload = [_spec_json(s) for s in specs]
    if any(s.is_vlm for s in specs):
        from inspector.reports.vision import vision_config_section, vision_spec_json

        sections.insert(0, vision_config_section(specs))
        for s, p in zip(specs, payload):
            if s.is_vlm:
                p["vision"] = vision_spec_json(s)
    for s, p in zip(specs, payload):  # Gemma 4: the audio tower's resolved sizes (inspector.spec.audio)
        if s.audio is not None:
            p["audio"] = {k: v for k, v in vars(s.audio).items() if k != "dims"} | {"dims": dict(s.audio.dims)}
    return Report(sections, payload[0] if len(payload) == 1 else payload)


def presets_report(presets, counts: list[int | None]) -> Report:
    """The presets with their stored parameter counts (None: no native family, `params` counts it
    through transformers)."""
    rows = [[p.hub_id, ", ".join(p.aliases), p.config.get("model_type"),
             Count(c) if c is not None else "(through transformers)", p.source] for p, c in zip(presets, counts)]
    data = [{"hub_id": p.hub_id, "aliases": list(p.aliases), "model_type": p.config.get("model_type"),
             "total_params": c, "source": p.source} for p, c in zip(presets, counts)]
    return Report([Section("Embedded presets", ["Hub id", "Aliases", "model_type", "Parameters", "Source"], rows)],
                  data)


__all__ = ["params_report", "config_report", "presets_report"]
