"""Activation memory: the peak of one prefill (serving), and what training stores for the backward pass.

Training follows Korthikanti et al.; each figure comes with the formula it comes from.

Prefill, in 16-bit (a = 2 bytes) over T tokens, split over `tp` tensor-parallel GPUs:
    layer peak = T · a · (2·d + max(attention width, MLP width) / tp)
    (the residual stream and its normed copy, plus the widest intermediate of a layer: q, k, v
    and the attention output; or gate, up and their product; or top-k routed experts' and the
    shared experts' intermediates of a token), and
    logits = T·d·a + rows · V · (a + 4)  (the last hidden states, the 16-bit logits of the rows
    that are kept and their fp32 copy). vLLM keeps the last position of each sequence; a plain
    transformers forward keeps every position, and for small models those logits dominate.

Training (Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models",
2022), per layer in 16-bit without tensor parallelism: s·b·h·(34 + 5·a·s/h) bytes; selective
recomputation (and FlashAttention, which never stores the s×s scores) leaves 34·s·b·h; full
recomputation keeps only each layer's input, 2·s·b·h, plus one layer's activations while it is
recomputed. The fp32 logits for the loss add 4·s·b·V.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.spec.text import TextSpec
from inspector.units import n

ACT_BYTES = 2
RECOMPUTE = ("none", "selective", "full")
ATTENTION = ("flash", "eager")


@dataclass(frozen=True)
class Term:
    name: str
    bytes: int
    formula: str


def attention_width(t: TextSpec) -> int:
    """Per token: q, k and v (MLA: q, the kv latent and its expanded keys and values) and the output."""
    if t.mla is not None:
        m, h = t.mla, t.num_heads
        return h * m.qk_head_dim + m.kv_lora_rank + m.qk_rope_head_dim + h * (m.qk_nope_head_dim + m.v_head_dim) \
            + h * m.v_head_dim
    return t.q_dim + 2 * t.kv_dim + t.attn_out_dim


def mlp_width(t: TextSpec) -> int:
    """Per token, the widest feed-forward intermediate of any layer."""
    dense = (2 if t.mlp == "plain" else 3) * t.intermediate_size
    if t.moe is None:
        return dense
    m = t.moe
    routed = 3 * (m.top_k or m.num_experts) * m.expert_intermediate + 3 * m.shared_intermediate + m.num_experts
    dense_layers = t.num_layers - len(m.layers)
    return max(routed, dense) if dense_layers else routed


def prefill_terms(t: TextSpec, tokens: int, logit_rows: int, tp: int = 1) -> tuple[Term, Term]:
    """(layer peak, logits stage) of one forward pass over `tokens` tokens."""
    d, a = t.hidden_size, ACT_BYTES
    attn, mlp = attention_width(t), mlp_width(t)
    widest = max(attn, mlp)
    which = "attention" if attn >= mlp else "MLP"
    split = f" / {tp}" if tp > 1 else ""
    layer = Term("Layer peak", tokens * a * (2 * d + widest // tp),
                 f"T·a·(2·d + {which} width{split}) = {n(tokens)} × {a} × (2 × {d} + {n(widest)}{split})")
    logits = Term("Logits", tokens * d * a + logit_rows * t.vocab_size * (a + 4),
                  f"T·d·a + rows·V·(a + 4) = {n(tokens)} × {d} × {a} + {n(logit_rows)} × {n(t.vocab_size)} × 6")
    return layer, logits


def korthikanti_layer(t: TextSpec, seq: int, batch: int, recompute: str, attention: str) -> tuple[int, str]:
    """Bytes one layer keeps for the backward pass, and its formula."""
    s, b, h, heads = seq, batch, t.hidden_size, t.num_heads
    scores = 5 * heads * s * s * b
    if recompute == "full":
        return 2 * s * b * h, f"2·s·b·h = 2 × {n(s)} × {b} × {h}"
    if recompute == "selective" or attention == "flash":
        return 34 * s * b * h, f"34·s·b·h = 34 × {n(s)} × {b} × {h}"
    return 34 * s * b * h + scores, f"34·s·b·h + 5·a·s²·b = 34 × {n(s)} × {b} × {h} + 5 × {heads} × {n(s)}² × {b}"


def training_terms(t: TextSpec, seq: int, batch: int, recompute: str, attention: str) -> list[Term]:
    """The activations a training step keeps: the layers, the recomputed layer, the fp32 logits."""
    per_layer, formula = korthikanti_layer(t, seq, batch, recompute, attention)
    layers = t.num_layers
    terms = [Term(f"Activations ({layers} layers, recompute {recompute}, {attention} attention)",
                  layers * per_layer, f"{layers} × [{formula}]")]
    if recompute == "full":
        one, one_formula = korthikanti_layer(t, seq, batch, "none", attention)
        terms.append(Term("One layer recomputed during backward", one, one_formula))
    terms.append(Term("Logits in fp32 for the loss", 4 * seq * batch * t.vocab_size,
                      f"4·s·b·V = 4 × {n(seq)} × {batch} × {n(t.vocab_size)}"))
    return terms


def eager_extra(t: TextSpec, seq: int, batch: int) -> int:
    """What storing the attention scores adds over all layers (the s² term FlashAttention drops)."""
    return t.num_layers * 5 * t.num_heads * seq * seq * batch
