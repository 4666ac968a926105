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
recomputed.

What transformers and torch's autograd really keep (`saved_layer`, the default for dense RMSNorm
decoders: Llama, Mistral, Qwen2/3, Gemma...), per token of one layer, a = 2 (bf16), f = 4 (fp32);
counted from transformers 5 (LlamaRMSNorm, LlamaAttention with SDPA, LlamaMLP) and torch's
derivatives.yaml, and checked to the byte with saved-tensor hooks on tiny models
(tests/test_training_peaks.py):
  each RMSNorm: its fp32 upcast of x (f·h) and rsqrt (f), and with a trainable weight also the
      16-bit normed x and the weight·x output the projections read (a·h each);
  attention: q and k after RoPE, v, the output (a·(2·q + 2·kv)) and SDPA's fp32 logsumexp (f·heads);
  gated MLP: gate, up, silu(gate) and their product (4·a·I); with frozen weights the product is
      kept only when down_proj is adapted (mm keeps its input only when the weight needs a gradient);
  LoRA: each adapted module keeps its input: 16-bit adapters share the 16-bit input (q, k and v
      read one tensor), fp32 adapters (peft's autocast_adapter_dtype) keep an fp32 copy each
      (f·in), and lora_A's output (r per module).
The loss (transformers' ForCausalLMLoss: logits.float(), cross_entropy = log_softmax + nll_loss)
peaks at the start of backward, 14 bytes per logit (`LOSS_BYTES`).
"""

from __future__ import annotations

from typing import NamedTuple

from inspector.spec.norms import PLACEMENTS
from inspector.spec.text import TextSpec
from inspector.units import n

ACT_BYTES = 2
RECOMPUTE = ("none", "selective", "full")
ATTENTION = ("flash", "eager")


class Term(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    name: str
    bytes: int
    formula: str


def attention_width(t: TextSpec) -> int:
    """Per token: q, k and v (MLA: q, the kv latent and its expanded keys and values) and the output."""
    if t.mla is not None:
        m, h = t.mla, t.num_heads
        return h * m.qk_head_dim + m.kv_lora_rank + m.qk_rope_head_dim + h * (m.qk_nope_head_dim + m.v_head_dim) \
            + h * m.v_head_dim
    if t.per_layer is not None:  # Gemma 3n / 4: the widest layer (Gemma 4's global layers have their own d_h)
        shapes = {(t.layer_head_dim(i), t.layer_kv_heads(i)) for i in range(t.num_layers)}
        return max(2 * t.num_heads * hd + 2 * kv * hd for hd, kv in shapes)
    return t.q_dim + 2 * t.kv_dim + t.attn_out_dim


def mlp_width(t: TextSpec) -> int:
    """Per token, the widest feed-forward intermediate of any layer."""
    widest = max(t.per_layer.widths) if t.per_layer is not None else t.intermediate_size  # (Gemma 3n / 4)
    dense = (2 if t.mlp == "plain" else 3) * widest
    if t.moe is None:
        return dense
    m = t.moe
    routed = 3 * (m.top_k or m.num_experts) * m.expert_intermediate + 3 * m.shared_intermediate + m.num_experts
    if t.per_layer is not None:  # Gemma 4: the experts run beside the dense MLP in the same layer
        return dense + routed
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


# The loss's bytes per logit at its peak, LogSoftmaxBackward (transformers' ForCausalLMLoss, torch's
# cross_entropy = log_softmax + nll_loss; counted in tests/test_training_peaks.py with a TorchDispatchMode):
LOSS_BYTES = (
    ("16-bit logits the model output holds (outputs.logits)", 2),  # lm_head's output, CausalLMOutputWithPast
    ("log_softmax's fp32 output, saved for its backward", 4),  # logits.float() -> log_softmax keeps its result
    ("nll_loss's gradient (fp32, vocab-wide)", 4),  # nll_loss_backward: a dense (tokens, V) gradient
    ("log_softmax's gradient (fp32)", 4),  # _log_softmax_backward_data's output, while its inputs live
)
LOSS_PER_LOGIT = sum(b for _, b in LOSS_BYTES)  # 14; 12 when the loop drops outputs.logits (HF Trainer)

# Module names whose input a LoRA adapter keeps, by the tensor they read (Llama's naming; peft's targets).
ADAPTER_INPUTS = {"q_proj": "attn_in", "k_proj": "attn_in", "v_proj": "attn_in", "qkv_proj": "attn_in",
                  "o_proj": "attn_out", "gate_proj": "mlp_in", "up_proj": "mlp_in", "gate_up_proj": "mlp_in",
                  "down_proj": "mlp_mid"}


class Adapters(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """What the saved-tensor count needs of LoRA: the adapted module names, the rank, the adapters' bytes."""

    names: tuple[str, ...]
    rank: int
    dtype_bytes: int  # 2: 16-bit adapters; 4: peft's fp32 adapters on a 16-bit model


def counts_saved(t: TextSpec, adapters: Adapters | None) -> bool:
    """Whether `saved_layer` describes this model: dense RMSNorm decoders with q/k/v attention."""
    dense = t.moe is None and t.mla is None and t.norm.rms and not t.norm.offset and t.qk_norm_kind is None \
        and t.mlp != "plain" and t.hidden_act == "silu"
    names = adapters.names if adapters is not None else ()
    return dense and t.placement == PLACEMENTS["pre"] and all(name in ADAPTER_INPUTS for name in names)


def _adapter_inputs(t: TextSpec, ad: Adapters) -> tuple[int, str]:
    width = {"attn_in": t.hidden_size, "attn_out": t.attn_out_dim, "mlp_in": t.hidden_size,
             "mlp_mid": t.intermediate_size}
    groups: dict[str, int] = {}
    for name in ad.names:
        groups[ADAPTER_INPUTS[name]] = groups.get(ADAPTER_INPUTS[name], 0) + 1
    total = ad.rank * ad.dtype_bytes * len(ad.names)  # lora_A's outputs
    if ad.dtype_bytes == 4:  # an fp32 copy of the input per adapted module
        total += sum(4 * width[g] * k for g, k in groups.items())
        return total, f"fp32 inputs of {len(ad.names)} adapted modules + lora_A outputs"
    # 16-bit adapters keep the input tensor itself; attention's output is kept by SDPA anyway
    total += sum(ACT_BYTES * width[g] for g in groups if g != "attn_out")
    return total, "16-bit inputs of the adapted modules + lora_A outputs"


def saved_layer(t: TextSpec, adapters: Adapters | None) -> tuple[int, str]:
    """Bytes one layer keeps for backward per token (adapters None: every weight trains)."""
    a, f, h, q, kv, i = ACT_BYTES, 4, t.hidden_size, t.q_dim, t.kv_dim, t.intermediate_size
    attention = a * (2 * q + 2 * kv) + f * t.num_heads
    if adapters is None:
        norms, mlp = 2 * (f * h + f + 2 * a * h), 4 * a * i
        return norms + attention + mlp, (f"2 norms × (f·h + f + 2·a·h) + a·(2·q + 2·kv) + f·heads + 4·a·I = "
                                         f"{norms} + {attention} + {mlp}")
    down = any(ADAPTER_INPUTS[name] == "mlp_mid" for name in adapters.names)
    norms, mlp = 2 * (f * h + f), 3 * a * i
    extra, what = _adapter_inputs(t, adapters)
    if down and adapters.dtype_bytes == 2:
        what += " (down_proj's input: the product)"
    formula = (f"2 norms × (f·h + f) + a·(2·q + 2·kv) + f·heads + 3·a·I + {what} = "
               f"{norms} + {attention} + {mlp} + {extra}")
    return norms + attention + mlp + extra, formula


def saved_model_extra(t: TextSpec, adapters: Adapters | None) -> int:
    """Per token, outside the layers: the final norm, RoPE's cos and sin, and for full fine-tuning the
    token ids (the embedding's backward) and the LM head's input; LoRA's first norm keeps no fp32
    copy (the frozen embedding's output needs no gradient)."""
    a, f, h = ACT_BYTES, 4, t.hidden_size
    rope = 2 * a * t.head_dim
    labels = 8  # nll_loss keeps the int64 targets
    if adapters is None:
        return 8 + (f * h + f + 2 * a * h) + rope + labels
    # the final norm's (f·h + f), less the first layer's fp32 copy that is not kept; without adapters in
    # attention, the first layer's attention needs no gradient and keeps nothing either
    if any(ADAPTER_INPUTS[name].startswith("attn") for name in adapters.names):
        return rope + labels
    return rope + labels - _first_layer_unsaved(t, adapters.names)


def _first_layer_unsaved(t: TextSpec, names: tuple[str, ...]) -> int:
    """Without adapters in attention, the first layer's residual stream needs no gradient up to its
    MLP: its attention and second norm keep nothing, and of gate, up and silu(gate) the MLP keeps
    only what an adapted gate or up needs (silu keeps gate, the product keeps up and silu(gate))."""
    a, f = ACT_BYTES, 4
    attention = a * (2 * t.q_dim + 2 * t.kv_dim) + f * t.num_heads
    gate = any(name in ("gate_proj", "gate_up_proj") for name in names)
    up = any(name in ("up_proj", "gate_up_proj") for name in names)
    kept = (2 if gate else 0) + (1 if up else 0)  # gate and up (for an adapted gate), silu(gate) (for up)
    return attention + (f * t.hidden_size + f) + (3 - kept) * a * t.intermediate_size


def saved_training_terms(t: TextSpec, seq: int, batch: int, recompute: str, adapters: Adapters | None
                         ) -> list[Term]:
    """The activations of `saved_layer`, with full recomputation's checkpoints at layer boundaries."""
    tokens, layers = seq * batch, t.num_layers
    per_layer, formula = saved_layer(t, adapters)
    extra = saved_model_extra(t, adapters) * tokens
    if recompute != "full":
        return [Term(f"Activations ({layers} layers, as transformers keeps them; recompute {recompute})",
                     layers * per_layer * tokens + extra,
                     f"{layers} × s·b × [{formula}] + {n(extra)} outside the layers")]
    checkpoint = ACT_BYTES * t.hidden_size
    return [Term(f"Activations ({layers} layer checkpoints, recompute full)", layers * checkpoint * tokens + extra,
                 f"{layers} × s·b × a·h = {layers} × {n(tokens)} × {ACT_BYTES} × {t.hidden_size} + {n(extra)}"),
            Term("One layer recomputed during backward", per_layer * tokens, f"s·b × [{formula}]")]


def loss_peak(t: TextSpec, seq: int, batch: int) -> Term:
    """The logits and the cross-entropy at the start of backward (LogSoftmaxBackward)."""
    logits = seq * batch * t.vocab_size
    parts = " + ".join(str(b) for _, b in LOSS_BYTES)
    return Term("Logits and cross-entropy at the start of backward", LOSS_PER_LOGIT * logits,
                f"({parts}) B × s·b·V = {LOSS_PER_LOGIT} × {n(seq)} × {batch} × {n(t.vocab_size)}")


def eager_extra(t: TextSpec, seq: int, batch: int) -> int:
    """What storing the attention scores adds over all layers (the s² term FlashAttention drops)."""
    return t.num_layers * 5 * t.num_heads * seq * seq * batch
