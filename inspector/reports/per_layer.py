"""Config rows and JSON of Gemma 3n / Gemma 4's per-layer record (inspector.spec.per_layer), for `inspect config`."""

from __future__ import annotations

from typing import Any

from inspector.inventory.accounting import kv_line
from inspector.reports.arch_text import layers_text


def _grouped(values: tuple, layers: range) -> str:
    """"256 on layers 0, 1, ... (25 layers); 512 on layers 5, 11, ..." for per-layer values."""
    by_value: dict[Any, list[int]] = {}
    for i in layers:
        by_value.setdefault(values[i], []).append(i)
    return "; ".join(f"{v:,} on {layers_text(tuple(ls))}" if isinstance(v, int) else f"{v:g} on {layers_text(tuple(ls))}"
                     for v, ls in by_value.items())


def per_layer_config_rows(t) -> list[tuple[str, Any]]:
    """Rows only for Gemma 3n / 4: head dims, kv heads and MLP widths where they differ, the KV-shared layers,
    keys doubling as values, per-layer inputs, AltUp / LAuReL, activation sparsity."""
    p = t.per_layer
    if p is None:
        return []
    every = range(t.num_layers)
    shared = tuple(i for i in every if p.is_shared(i))
    rows: list[tuple[str, Any]] = [("attention scores", "Q K^T unscaled (q/k norms set the scale); V RMS-normed")]
    if len(set(p.head_dims)) > 1 or len(set(p.kv_heads)) > 1:
        rows += [("d_h per layer", _grouped(p.head_dims, every)), ("kv heads per layer", _grouped(p.kv_heads, every))]
    if any(p.k_eq_v):
        rows.append(("keys double as values (no v_proj)", layers_text(tuple(i for i in every if p.k_eq_v[i]))))
    if shared:
        sources = ", ".join(f"{i}<-{p.kv_source[i]}" for i in shared)
        rows.append(("KV-shared layers (reuse layer)", f"{len(shared)}: {sources}"))
    rows.append(("KV cache", kv_line(t)))
    if len(set(p.widths)) > 1:
        rows.append(("d_inter per layer", _grouped(p.widths, every)))
    if p.ple_dim:
        rows.append(("per-layer inputs (PLE)", f"{p.ple_dim} per layer, table of {p.ple_vocab:,} rows"))
    if p.altup_inputs:
        rows += [("AltUp streams (active)", f"{p.altup_inputs} ({p.altup_active})"), ("LAuReL rank", p.laurel_rank)]
    if any(p.sparsity):
        rows.append(("activation sparsity", _grouped(p.sparsity, every)))
    return rows


def per_layer_json(t) -> dict[str, Any] | None:
    p = t.per_layer
    if p is None:
        return None
    return {"head_dims": list(p.head_dims), "kv_heads": list(p.kv_heads), "kv_source": list(p.kv_source),
            "k_eq_v": list(p.k_eq_v), "intermediate_sizes": list(p.widths), "activation_sparsity": list(p.sparsity),
            "per_layer_input_size": p.ple_dim, "per_layer_input_vocab": p.ple_vocab,
            "altup_inputs": p.altup_inputs, "laurel_rank": p.laurel_rank, "kv_layers": list(t.kv_layers)}


def _effective(acc) -> int | None:
    """The total without the per-layer input table: what Gemma's E-models call effective parameters (the
    table can live off the accelerator; HF blog "Gemma 3n fully available in the open-source ecosystem!")."""
    t = acc.spec.text
    if t is None or t.per_layer is None or not t.per_layer.ple_dim:
        return None
    return acc.totals.total_params - sum(e.numel for e in acc.entries if e.role == "ple_embed")


def per_layer_total_rows(acc, billions) -> list[tuple[str, str]]:
    """`inspect params` totals rows of Gemma 3n / 4: the effective count and the layers that keep a KV cache."""
    effective, t = _effective(acc), acc.spec.text
    rows = []
    if effective is not None:
        rows.append(("Without the per-layer input table (Gemma's 'effective' parameters)",
                     f"{effective:,} ({billions(effective)})"))
    if t is not None and t.per_layer is not None:
        rows.append(("Layers with a KV cache (the KV-shared ones read another layer's)", kv_line(t)))
    return rows


def per_layer_totals_json(acc) -> dict[str, Any]:
    t = acc.spec.text
    if t is None or t.per_layer is None:
        return {}
    effective = _effective(acc)
    return {"kv_layers": len(t.kv_layers), "kv_layers_line": kv_line(t),
            **({"effective_params": effective} if effective is not None else {})}


def per_layer_serving_json(acc, s, kv_dtype_bytes: int) -> dict[str, Any]:
    """`inspect memory` JSON keys of Gemma 3n / 4 that the transformers path gives (runtime.hf_answer): the
    layers keeping KV, their bytes per token, no recurrent state, and vLLM's page and groups."""
    from inspector.inventory.accounting import kv_bytes_per_token

    t = acc.spec.text
    return {"path": "native", "kv_layers": len(t.kv_layers), "kv_bytes_per_token": kv_bytes_per_token(t, kv_dtype_bytes),
            "state_bytes_per_sequence": 0, "page_bytes": s.page_bytes, "block_size": s.options.block_size,
            "groups": len(s.groups), "group_size": s.group_size}
