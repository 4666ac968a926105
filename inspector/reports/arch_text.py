"""The words of the architecture figures: box titles, notes with head counts, operation lines.

Box titles go by tensor role; the operation lines (RoPE, softmax, gating, routing) are all worked out from
spec fields.

`spec` is a TextSpec (decoder LLM) or an EncoderSpec (vision tower); the few fields they do not
share are read with getattr defaults, never by model name.
"""

from __future__ import annotations

from inspector.units import n

ROLE_TITLES = {
    "q": "W_q", "k": "W_k", "v": "W_v", "qkv": "W_qkv (q, k, v fused)", "o": "W_o", "proj": "W_o (proj)",
    "q_norm": "q norm", "k_norm": "k norm", "sinks": "Attention sinks",
    "q_a": "W_q down (to latent)", "q_a_norm": "q latent norm", "q_b": "W_q up (to heads)",
    "kv_a": "W_kv down (latent + RoPE key)", "kv_a_norm": "kv latent norm", "kv_b": "W_kv up (k_nope, v)",
    "gate": "W_gate", "up": "W_up", "down": "W_down", "gate_up": "W_gate_up (fused)",
    "fc1": "fc1 (up)", "fc2": "fc2 (down)",
    "router": "Router W_router", "router_score_bias": "Score-correction bias",
    "shared": "Shared expert", "shared_expert_gate": "Shared-expert gate",
}

ACTIVATIONS = {"silu": "SiLU", "gelu": "GELU", "gelu_pytorch_tanh": "GELU (tanh)", "gelu_new": "GELU (tanh)",
               "quick_gelu": "QuickGELU", "relu": "ReLU", "relu2": "ReLU²", "swiglu": "SiLU"}


def role_title(role: str) -> str:
    return ROLE_TITLES.get(role, role)


def _act(name: str) -> str:
    return ACTIVATIONS.get(name, name)


def _is_text(spec) -> bool:
    return hasattr(spec, "num_kv_heads")


def role_note(spec, role: str) -> str:
    """Head counts under a projection's title, from the spec."""
    h, d_h = spec.num_heads, spec.head_dim
    if not _is_text(spec):
        return {"qkv": f"{h} heads × {d_h}, fused", "proj": f"{h} heads × {d_h} → d_img"}.get(role, "")
    kv, mla, moe = spec.num_kv_heads, spec.mla, spec.moe
    notes = {"q": f"{h} heads × {spec.q_dim // h}", "k": f"{kv} kv heads × {d_h}", "v": f"{kv} kv heads × {d_h}",
             "qkv": f"{h} q + 2 × {kv} kv heads × {d_h}", "o": f"{h} heads × {spec.attn_out_dim // h} → d",
             "q_norm": spec.qk_norm_kind.label if spec.qk_norm_kind else "",
             "k_norm": spec.qk_norm_kind.label if spec.qk_norm_kind else "",
             "sinks": "one learned logit per head"}
    if mla is not None:
        notes.update(q_a=f"latent {mla.q_lora_rank}", q_b=f"{h} heads × {mla.qk_head_dim}",
                     kv_a=f"latent {mla.kv_lora_rank} + RoPE key {mla.qk_rope_head_dim}",
                     kv_b=f"{h} heads × ({mla.qk_nope_head_dim} k + {mla.v_head_dim} v)",
                     q=f"{h} heads × {mla.qk_head_dim}")
    if moe is not None:
        notes.update(router=f"d → {moe.num_experts} scores", router_score_bias="buffer: steers top-k choice",
                     shared=f"width {n(moe.shared_intermediate)}", shared_expert_gate="sigmoid(x W) scales it")
    return notes.get(role, "")


def attention_title(spec) -> str:
    h, d_h = spec.num_heads, spec.head_dim
    if not _is_text(spec):
        return f"Self-attention: {h} heads, d_h {d_h}"
    if spec.mla is not None:
        return f"Multi-head latent attention: {h} heads, d_h {spec.mla.qk_head_dim} (q, k) / {spec.mla.v_head_dim} (v)"
    kv = spec.num_kv_heads
    kind = "MHA" if kv == h else ("MQA" if kv == 1 else "GQA")
    return f"Self-attention, {kind}: {h} query heads, {kv} kv heads, d_h {d_h}"


def attention_ops(spec, layers: tuple[int, ...]) -> tuple[str, ...]:
    """Lines of text for what happens between the projections and W_o."""
    if not _is_text(spec):
        extras = [x for x, on in (("q/k norm", spec.qk_norm), ("qkv bias", spec.qkv_bias)) if on]
        lines = [f"positions: {spec.position_encoding}",
                 f"softmax(q kᵀ / √d_h) v over {_vision_scope(spec, layers)} (no causal mask)"
                 + "".join(f" · {x}" for x in extras)]
        if spec.window_size and spec.fullatt_blocks:
            lines.append("full attention only in " + layers_text(tuple(sorted(spec.fullatt_blocks))).replace("layer", "block", 1))
        return tuple(lines)
    t = spec
    if t.mla is not None:
        first = f"RoPE on {t.mla.qk_rope_head_dim} of {t.mla.qk_head_dim} q/k dims"
    elif t.learned_positions:
        first = "positions: learned embedding (no RoPE)"
    else:
        share = f" (on {t.partial_rotary_factor:.0%} of d_h)" if t.partial_rotary_factor < 1 else ""
        first = "RoPE on q, k" + share
    lines = [first + " · softmax(q kᵀ / √d_h + causal mask) v"]
    extra = []
    if t.mla is not None:
        extra.append(f"the KV cache holds the latent: {t.mla.kv_lora_rank} + {t.mla.qk_rope_head_dim} per token")
    elif 1 < t.kv_groups:
        extra.append(f"each kv head serves {t.kv_groups} query heads")
    windowed = sum(1 for i in layers if t.window(i))
    if windowed:
        extra.append(f"sliding window {n(t.sliding_window)} in {windowed} of {len(layers)} layers")
    no_rope = sum(1 for i in layers if i in t.no_rope_layers)
    if no_rope:
        extra.append(f"no RoPE in {no_rope} of {len(layers)} layers")
    if t.attn_softcap:
        extra.append(f"scores soft-capped at {t.attn_softcap:g}")
    biases = [x for x, on in (("q/k/v bias", t.qkv_bias), ("o bias", t.o_bias)) if on]
    if biases:
        extra.append(" and ".join(biases))
    for i in range(0, len(extra), 2):
        lines.append(" · ".join(extra[i:i + 2]))
    return tuple(lines)


def _vision_scope(spec, layers: tuple[int, ...]) -> str:
    """Which patches a vision block attends to: all of them, or windows (Qwen2.5-VL's
    window_size, except in its fullatt_block_indexes)."""
    if not spec.window_size:
        return "all patches"
    windowed = [i for i in layers if i not in spec.fullatt_blocks]
    if not windowed:
        return "all patches"
    scope = f"windows of {spec.window_size} × {spec.window_size} pixels"
    return scope if len(windowed) == len(layers) else f"{scope} in {len(windowed)} of {len(layers)} blocks"


def mlp_title(spec, entries) -> str:
    width = spec.intermediate_size
    gated = spec.mlp != "plain"  # text: "gated"/"plain"...; vision kinds: "gated" gate/up/down or "plain" fc1/fc2
    d = "d" if _is_text(spec) else "d_img"
    return f"MLP ({'gated, ' if gated else ''}{_act(spec.hidden_act)}): {d} → {n(width)} → {d}"


def mlp_ops(spec) -> tuple[str, ...]:
    act = _act(spec.hidden_act)
    if spec.mlp != "plain":
        return (f"{act}(x W_gate) ⊙ (x W_up), then W_down",)
    return (f"{act} between the two linears",)


def moe_title(t) -> str:
    m = t.moe
    top = f"top-{m.top_k} of {m.num_experts}" if m.top_k else f"{m.num_experts}"
    shared = f" + shared expert (width {n(m.shared_intermediate)})" if m.shared_intermediate else ""
    return f"Mixture of experts: {top} routed experts (width {n(m.expert_intermediate)}){shared}"


def moe_ops(t, fused: bool) -> tuple[str, ...]:
    m = t.moe
    k = f"the top-{m.top_k}" if m.top_k else "the chosen"
    lines = [f"each token goes to {k} experts; their outputs are summed, weighted by the router's scores"]
    if m.shared_intermediate:
        lines.append("the shared expert sees every token and is added" + (" (gated)" if m.shared_expert_gate else ""))
    if fused:
        lines.append(f"stored fused: one tensor holds all {m.num_experts} experts ([e] is one expert's slice)")
    return tuple(lines)


def ffn_short(spec, moe: bool) -> str:
    if moe:
        m = spec.moe
        return f"attention + MoE ({m.num_experts} experts)"
    return "attention + MLP"


def layers_text(layers: tuple[int, ...]) -> str:
    """(0..27) -> 'layers 0–27'; every 2nd -> 'layers 1, 3, …, 47 (every 2nd)'."""
    if len(layers) == 1:
        return f"layer {layers[0]}"
    steps = {b - a for a, b in zip(layers, layers[1:])}
    if steps == {1}:
        return f"layers {layers[0]}–{layers[-1]}"
    if len(steps) == 1:
        step = steps.pop()
        return f"layers {layers[0]}, {layers[1]}, …, {layers[-1]} (every {step})"
    head = ", ".join(str(i) for i in layers[:4])
    return f"layers {head}, … ({len(layers)} layers)" if len(layers) > 4 else f"layers {head}"
