"""FLOPs beside the ledger: the published conventions, bytes read per decode step, and training compute.

Pure arithmetic; every formula names its source. The conventions are per token; the ledger's exact
count is what `inspector.compute.flops` gives. Training multiplies an exact forward by 3 (the backward
of every matmul is two matmuls of its size: one for the input's gradient, one for the weight's) and,
with full recomputation, adds one more forward of the decoder layers (not of the LM head), which is
how Narayanan et al. 2021 count (their equation 3; its approximation 8·T·P).
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.compute.flops import Ledger, Pass, ledger, prefill
from inspector.errors import InspectError, whole_number
from inspector.inventory.entry import EXPERTS, HEAD, LM

# Sources of the conventions (the fixture README fixtures/compute/README.md repeats them):
KAPLAN = ("Kaplan et al. 2020, Scaling Laws for Neural Language Models, section 2.1 and Table 1 "
          "(https://arxiv.org/abs/2001.08361): C_forward = 2N + 2 n_layer n_ctx d_attn per token, N without embeddings")
PALM = ("Chowdhery et al. 2022, PaLM, Appendix B (https://arxiv.org/abs/2204.02311): "
        "6N + 12 L H Q T training FLOPs per token (L layers, H heads, Q head dim, T sequence length)")
MEGATRON = ("Narayanan et al. 2021, Efficient Large-Scale Language Model Training on GPU Clusters Using "
            "Megatron-LM, section 5.1 (https://arxiv.org/abs/2104.04473): F = 96 B s l h^2 (1 + s/(6h) + "
            "V/(16 l h)) per iteration with full recomputation (eq. 3), about 8 T P in all (eq. 4)")
RULE_2N = "2 FLOPs (one multiply-add) per parameter per token: the forward-pass rule of Kaplan et al. 2020"
RULE_6N = "6 FLOPs per parameter per training token (forward 2N, backward 4N): Kaplan et al. 2020, PaLM Appendix B"


@dataclass(frozen=True)
class Convention:
    """One published convention's count, with its formula and source."""

    name: str
    formula: str
    source: str
    flops: float


@dataclass(frozen=True)
class ParamCounts:
    """The parameter counts the conventions use: all (stored), without embeddings, and those a token uses."""

    total: int
    non_embedding: int
    active: int  # total for a dense model
    active_non_embedding: int


def param_counts(acc) -> ParamCounts:
    """The language model's counts (a VLM's vision tower and projector are not in a text forward)."""
    t = acc.totals
    total = t.components.get(LM, t.total_params)
    active = total - (t.total_params - t.moe.active_params) if t.moe is not None else total
    return ParamCounts(total, total - t.embedding_params, active, active - t.embedding_params)


def _attention_dims(acc) -> tuple[int, int, int]:
    """(layers, heads, head dim) of the conventions' attention term; d_attn = heads x head dim."""
    t = acc.spec.text
    return t.num_layers, t.num_heads, t.head_dim


def forward_conventions(acc, step: Pass) -> list[Convention]:
    """The conventions' count of one forward pass of `step` (b·n new tokens at context cached + n)."""
    p, tokens = param_counts(acc), step.batch * step.new
    layers, heads, head_dim = _attention_dims(acc)
    ctx = step.cached + step.new
    kaplan = 2 * layers * ctx * heads * head_dim
    return [
        Convention("2N", "2 × parameters × tokens", RULE_2N, 2 * p.active * tokens),
        Convention("2N, without embeddings", "2 × non-embedding parameters × tokens", RULE_2N,
                   2 * p.active_non_embedding * tokens),
        Convention("Kaplan", "(2 N + 2 n_layer n_ctx d_attn) × tokens, N without embeddings", KAPLAN,
                   (2 * p.active_non_embedding + kaplan) * tokens),
        Convention("Kaplan, with embeddings", "(2 N + 2 n_layer n_ctx d_attn) × tokens, N with embeddings",
                   KAPLAN, (2 * p.active + kaplan) * tokens),
    ]


# --------------------------------------------------------------------------- decode: bytes and intensity


@dataclass(frozen=True)
class DecodeBytes:
    """What one decode step reads: the weights once, the KV cache at its context; and its intensity."""

    step: Pass
    weight_params: float  # parameters read (embedding rows of the batch, routed experts touched)
    weight_bytes: float
    kv_bytes: int
    flops_computed: float
    flops_needed: float

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.kv_bytes

    @property
    def intensity(self) -> float:
        """FLOPs (as needed) per byte read."""
        return self.flops_needed / self.bytes


def experts_touched(experts: int, top_k: float, batch: int) -> float:
    """Expected distinct experts a layer runs for `batch` tokens when each picks top_k of E at random
    (assumed: uniform, independent routing): E (1 - (1 - k/E)^B)."""
    return experts * (1 - (1 - top_k / experts) ** batch)


def weights_read(acc, batch: int, experts_per_token: float | None = None) -> float:
    """Parameters one decode step of `batch` tokens reads: every language-model matrix and norm once
    (a tied LM head reads the embedding matrix), the embedding rows of the batch, and of the routed
    experts those touched (`experts_touched`)."""
    t = acc.spec.text
    base = routed = 0
    for e in acc.entries:
        if e.component != LM or not e.parameter or e.role in ("embed", "pos_embed"):
            continue
        if e.group == EXPERTS:
            routed += e.numel
        elif e.stored or e.group == HEAD:
            base += e.numel
    rows = min(batch, t.vocab_size) * t.hidden_size * (2 if t.learned_positions else 1)
    if t.moe is None or not routed:
        return base + rows
    k = t.moe.top_k if experts_per_token is None else experts_per_token
    if k is None:
        raise InspectError(f"{t.model_type}: experts per token are not given; pass experts_per_token")
    return base + rows + routed * experts_touched(t.moe.num_experts, k, batch) / t.moe.num_experts


def decode_bytes(acc, step: Pass, weight_bytes: float = 2.0, kv_bytes: int = 2) -> DecodeBytes:
    """Bytes read by one decode step (`step` from flops.decode) at `weight_bytes` per parameter and
    `kv_bytes` per cached number (bf16: 2 and 2), with its FLOPs."""
    if step.new != 1 or not step.cached:
        raise InspectError("bytes per decode step need a decode pass: one new token after a context of at least 1")
    params = weights_read(acc, step.batch, step.experts_per_token)
    kv = acc.kv_cache_bytes(step.cached, step.batch, kv_bytes)
    book = ledger(acc, step)
    return DecodeBytes(step, params, params * weight_bytes, kv, book.computed, book.needed)


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainFlops:
    """Training compute for `tokens` tokens in sequences of `seq_len`: the exact count (as computed
    and as needed) and the conventions."""

    tokens: int
    seq_len: int
    recompute: bool
    computed: float
    needed: float
    conventions: tuple[Convention, ...]

    def convention(self, name: str) -> float:
        return next(c.flops for c in self.conventions if c.name == name)


def train_flops_6nd(params: float, tokens: float) -> float:
    """6·N·D: training FLOPs of N parameters over D tokens (Kaplan et al. 2020; PaLM Appendix B)."""
    return 6 * params * tokens


def megatron_flops(params: float, tokens: float) -> float:
    """8·T·P: training FLOPs with full activation recomputation (Narayanan et al. 2021, eq. 4:
    forward 2, backward 4, recomputed forward 2 per parameter and token)."""
    return 8 * tokens * params


def megatron_iteration_flops(batch: int, seq_len: int, layers: int, hidden: int, vocab: int) -> int:
    """Narayanan et al. 2021, eq. 3: 96 B s l h² (1 + s/(6h) + V/(16 l h)) FLOPs per iteration of a
    GPT model (MLP 4h, full recomputation), written in integers: 96Bslh² + 16Bs²lh + 6BshV."""
    b, s, l, h, v = batch, seq_len, layers, hidden, vocab
    return 96 * b * s * l * h * h + 16 * b * s * s * l * h + 6 * b * s * h * v


def _head_share(book: Ledger) -> tuple[float, float]:
    """(as computed, as needed) FLOPs of the LM head rows of a ledger."""
    rows = [r for r in book.rows if r.component == LM and r.name == HEAD]
    return sum(r.computed for r in rows), sum(r.needed for r in rows)


def train_flops(acc, tokens: int, seq_len: int, recompute: bool = False,
                experts_per_token: float | None = None) -> TrainFlops:
    """Training FLOPs for `tokens` tokens in sequences of `seq_len`: 3 forwards (logits at every
    position), and with `recompute` one more forward of the decoder layers; beside them 6ND, PaLM's
    6N + 12LHQT (with and without embeddings) and Megatron's 8TP."""
    tokens, seq_len = whole_number(tokens, "tokens", 1, 2**62), whole_number(seq_len, "sequence length", 1, 2**40)
    book = ledger(acc, prefill(seq_len, experts_per_token=experts_per_token))
    head = _head_share(book)
    per_seq = [3 * total + (total - h if recompute else 0) for total, h in ((book.computed, head[0]),
                                                                              (book.needed, head[1]))]
    p = param_counts(acc)
    layers, heads, head_dim = _attention_dims(acc)
    attn = 12 * layers * heads * head_dim * seq_len
    conventions = (
        Convention("6ND", "6 × parameters × tokens", RULE_6N, train_flops_6nd(p.active, tokens)),
        Convention("6ND, without embeddings", "6 × non-embedding parameters × tokens", RULE_6N,
                   train_flops_6nd(p.active_non_embedding, tokens)),
        Convention("PaLM", "(6N + 12 L H Q T) × tokens, N with embeddings", PALM, (6 * p.active + attn) * tokens),
        Convention("PaLM, without embeddings", "(6N + 12 L H Q T) × tokens, N without embeddings", PALM,
                   (6 * p.active_non_embedding + attn) * tokens),
        Convention("8TP", "8 × tokens × parameters (full recomputation)", MEGATRON, megatron_flops(p.active, tokens)),
    )
    return TrainFlops(tokens, seq_len, recompute, _per_tokens(per_seq[0], tokens, seq_len),
                      _per_tokens(per_seq[1], tokens, seq_len), conventions)


def _per_tokens(per_sequence: float, tokens: int, seq_len: int) -> float:
    """A sequence's FLOPs times tokens / seq_len, exact (an int) when it divides."""
    if isinstance(per_sequence, int) and per_sequence * tokens % seq_len == 0:
        return per_sequence * tokens // seq_len
    return per_sequence * tokens / seq_len
