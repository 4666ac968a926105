"""The FLOPs ledger: matmul FLOPs of one forward pass, per row of the `params` table, as computed and as needed.

Pure arithmetic over the inventory (`Accounting.entries`) and the text spec; no torch. A multiply-add
is 2 FLOPs. "As computed" is what the kernels of an eager or SDPA forward do and what
`torch.utils.flop_counter.FlopCounterMode` counts (its matmul ops: mm, addmm, bmm, baddbmm, SDPA):

- every projection matrix, 2 * (its elements) per token it is applied to (a bias add is not counted);
- the full score matrix Q K^T and the product P V of every layer, over all cached + new keys, masked or
  not (a causal, sliding-window or chunked mask only sets scores to -inf);
- latent attention (MLA) in the plain form of the reference model and transformers: kv_b expands the
  latent of every cached and new position at every step;
- the routed experts at a given load (`Pass.experts_per_token`, default top_k; the reference model on
  the meta device runs expert 0 on every token: 1), the router, shared experts and their gates on every token;
- the LM head at every new position, or at the last one only (`Pass.last_logits`).

Not counted, as FlopCounterMode does not count them: embedding lookups, norms, RoPE, softmax,
activations, soft-capping, residual adds, biases, routing (top-k, sigmoid). "As needed" counts the
same projections, but each query only against the keys it may see (causal: keys 0..p; a sliding
window caps it at the window; Llama 4's chunks at the query's own chunk), and each MLA latent
expanded once (when it enters the cache). A text forward does not run the vision tower and projector
(`Ledger.skipped` names their rows), Mllama's cross-attention layers or DeepSeek-V3's
multi-token-prediction module: their rows count 0. `vision_ledger` counts a tower and projector for
one image (`vision_pass`), and `merged` adds it to the text ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from inspector.errors import InspectError, whole_number
from inspector.inventory.entry import ALTUP, ATTN, EXPERTS, HEAD, LM, WeightEntry
from inspector.spec.text import TextSpec

NO_MATMUL_ROLES = frozenset({"embed", "pos_embed", "ple_embed",  # looked up by token id, not multiplied
                             "kda_a_log"})  # Kimi's per-head decay rate, stored (1, 1, h, 1): elementwise
MAX_TOKENS = 2**40


@dataclass(frozen=True)
class Pass:
    """One forward pass: `new` tokens per sequence after `cached` ones already in the KV cache, for
    `batch` sequences; logits at every new position or (`last_logits`) at the last one only.
    `experts_per_token`: routed experts each token runs in an MoE layer (None: the model's top_k).
    `sliding_cache`: a sliding-window layer's cache keeps only its last window - 1 tokens
    (transformers' DynamicSlidingWindowLayer; vLLM frees the blocks past the window), so a cached
    pass computes scores over min(cached, window - 1) + new keys there; without it, over all of them
    (the reference model's cache keeps every token)."""

    new: int
    cached: int = 0
    batch: int = 1
    last_logits: bool = False
    experts_per_token: float | None = None
    sliding_cache: bool = False

    def __post_init__(self) -> None:
        whole_number(self.new, "tokens", 1, MAX_TOKENS)
        whole_number(self.cached, "context", 0, MAX_TOKENS)
        whole_number(self.batch, "batch", 1, MAX_TOKENS)
        if self.experts_per_token is not None and not 0 <= self.experts_per_token <= 2**20:
            raise InspectError(f"experts per token must be from 0 to 2**20, got {self.experts_per_token!r}")

    @property
    def label(self) -> str:
        what = f"prefill of {self.new:,} tokens" if not self.cached else \
            f"{self.new:,} token(s) after {self.cached:,} cached"
        logits = "logits at the last position" if self.last_logits and self.new > 1 else "logits at every position"
        return f"{what}, batch {self.batch}, {logits}"


def prefill(tokens: int, batch: int = 1, last_logits: bool = False, experts_per_token: float | None = None) -> Pass:
    """A prefill of `tokens` prompt tokens per sequence."""
    return Pass(tokens, 0, batch, last_logits, experts_per_token)


def decode(context: int, batch: int = 1, experts_per_token: float | None = None, sliding_cache: bool = False) -> Pass:
    """One decode step at context `context`: one new token per sequence attends to the `context`
    cached tokens and itself (context + 1 keys; `Pass.sliding_cache` caps sliding-window layers)."""
    return Pass(1, context, batch, True, experts_per_token, sliding_cache)


@dataclass(frozen=True)
class RowFlops:
    """FLOPs of one `params` row (all its repetitions) in one pass: as computed and as needed."""

    component: str
    name: str
    computed: float
    needed: float

    @property
    def key(self) -> tuple[str, str]:
        return self.component, self.name


@dataclass(frozen=True)
class Ledger:
    """The rows of one pass, in the order of the `params` table, and the components not counted."""

    step: Pass
    rows: tuple[RowFlops, ...]
    skipped: tuple[str, ...] = ()

    @property
    def computed(self) -> float:
        return sum(r.computed for r in self.rows)

    @property
    def needed(self) -> float:
        return sum(r.needed for r in self.rows)

    def by_row(self) -> dict[tuple[str, str], RowFlops]:
        """Rows keyed as the `params` rows are, (component, row name)."""
        return {r.key: r for r in self.rows}


# --------------------------------------------------------------------------- per tensor


def matmul_size(e: WeightEntry, t: TextSpec) -> int:
    """Multiply-adds per token of one stored tensor: its elements if it is a projection matrix (a
    fused experts tensor: one expert's share), else 0 (norms, biases, sinks, embeddings, gates)."""
    if len(e.shape) < 2 or e.role in NO_MATMUL_ROLES or e.role.endswith("bias") or not e.parameter:
        return 0
    if e.group == EXPERTS and e.expert is None and t.moe is not None:  # (E, ...) fused: one expert
        return e.numel // t.moe.num_experts
    return e.numel


def expert_share(t: TextSpec, step: Pass) -> Fraction:
    """Routed experts each token runs: the pass's load, else top_k."""
    if step.experts_per_token is not None:
        return Fraction(step.experts_per_token)
    if t.moe is None or t.moe.top_k is None:
        raise InspectError(f"{t.model_type}: experts per token are not given; pass experts_per_token")
    return Fraction(t.moe.top_k)


def _kind(e: WeightEntry) -> str:
    """Which token rows a tensor is applied to (the keys of `token_rows`)."""
    if e.role == "kv_b.weight":
        return "latents"
    if e.group == EXPERTS:
        return "expert" if e.expert is not None else "experts_fused"
    return "head" if e.group == HEAD else "tokens"


def token_rows(t: TextSpec, step: Pass) -> dict[str, tuple[Fraction, Fraction]]:
    """Token rows, (as computed, as needed), over the whole batch, that a tensor of each kind is applied
    to: every new token; the LM head's positions; MLA's kv_b (plain form: every cached and new latent,
    each pass); one routed expert of E (its share of the routed tokens), or a fused tensor's expert."""
    b, n = step.batch, step.new
    head = b * (1 if step.last_logits else n)
    rows = {"tokens": (b * n, b * n), "head": (head, head), "latents": (b * (step.cached + n), b * n)}
    if t.moe is not None:
        routed = b * n * expert_share(t, step)
        rows["expert"] = (routed / t.moe.num_experts,) * 2
        rows["experts_fused"] = (routed,) * 2
    return {k: (Fraction(c), Fraction(d)) for k, (c, d) in rows.items()}


# --------------------------------------------------------------------------- attention


def visible_keys(step: Pass, window: int | None, chunk: int | None) -> int:
    """Keys the new queries of one sequence may see, summed over the queries (positions
    cached .. cached+new-1): causal, capped by a sliding window, or within a chunk."""
    first, last = step.cached, step.cached + step.new - 1
    if chunk:
        return sum(_causal_sum(a, b) for a, b in _chunk_spans(first, last, chunk))
    if not window:
        return _causal_sum(first + 1, last + 1)
    edge = min(last, window - 1)  # queries at p < window see p + 1 keys, later ones see `window`
    below = _causal_sum(first + 1, edge + 1) if first <= edge else 0
    return below + window * (last - max(first, window) + 1) if last >= window else below


def _causal_sum(a: int, b: int) -> int:
    """a + (a+1) + ... + b (0 when b < a)."""
    return (a + b) * (b - a + 1) // 2 if b >= a else 0


def _chunk_spans(first: int, last: int, chunk: int):
    """(keys seen by the first query, by the last query) within each chunk the queries span."""
    start = first
    while start <= last:
        end = min(last, (start // chunk + 1) * chunk - 1)
        yield start % chunk + 1, end % chunk + 1
        start = end + 1


def attention_flops(t: TextSpec, layer: int, step: Pass) -> tuple[int, int]:
    """Q K^T and P V of one layer, (as computed: every query against every key; as needed). DeepSeek-V3.2's
    MLA is computed over every key (transformers and the reference mask the keys its indexer drops) but needs
    only each query's top index_topk of the keys it may see; its indexer's own scores are `indexer_flops`."""
    d_qk = t.layer_head_dim(layer)  # (Gemma 4: its full layers' global_head_dim)
    d_v = t.mla.v_head_dim if t.mla else d_qk
    per_pair = 2 * step.batch * t.num_heads * (d_qk + d_v)  # one query against one key, all heads
    cached, window = step.cached, t.window(layer)
    if step.sliding_cache and window and cached:
        cached = min(cached, window - 1)
    computed = per_pair * step.new * (cached + step.new)
    if t.indexer is not None:
        return computed, per_pair * capped_keys(step, t.indexer.topk)
    return computed, per_pair * visible_keys(step, t.window(layer), t.chunk(layer))


def capped_keys(step: Pass, cap: int) -> int:
    """Keys the new queries of one sequence attend to when each keeps at most `cap` of the keys it may see
    (causal): sum over positions p of min(p + 1, cap)."""
    first, last = step.cached, step.cached + step.new - 1
    edge = min(last, cap - 1)  # queries at p < cap see p + 1 keys, later ones `cap`
    below = _causal_sum(first + 1, edge + 1) if first <= edge else 0
    return below + cap * (last - max(first, cap) + 1) if last >= cap else below


def indexer_flops(t: TextSpec, step: Pass) -> tuple[int, int]:
    """DeepSeek-V3.2's lightning indexer in all layers, beyond its projections (counted with them): the scores
    q . k of h_I heads of d_I against every cached and new key, and the per-head weights times those scores
    (h_I multiply-adds per query and key): 2 h_I (d_I + 1) FLOPs per query and key, as FlopCounterMode counts
    transformers' DeepseekV32Indexer (two matmuls; ReLU, top-k and the mask are not counted). As needed: the
    keys each query may see (causal)."""
    x = t.indexer
    per_pair = 2 * step.batch * x.heads * (x.head_dim + 1)
    computed = per_pair * step.new * (step.cached + step.new)
    return t.num_layers * computed, t.num_layers * per_pair * visible_keys(step, None, None)


# --------------------------------------------------------------------------- Gated DeltaNet

# Mamba2's selective scan is elementwise (a decayed outer product B x^T into the (head_dim, state) state per
# head, then the state read against C: ~4 heads x head_dim x state FLOPs per token), run so by the reference
# and by transformers' recurrent step; FlopCounterMode counts no elementwise op, nor does the ledger
SSM_SCAN_SKIPPED = "language_model: Mamba2 selective scan (elementwise, ~4 x heads x head_dim x state per token)"
GDN_CHUNK = 64  # transformers' torch_chunk_gated_delta_rule chunk_size (models/qwen3_next/modeling_qwen3_next.py)


def deltanet_flops(t: TextSpec, step: Pass) -> tuple[int, int]:  # Kimi's KDA too: see the end of the docstring
    """(as computed, as needed) FLOPs of all Gated DeltaNet layers beyond their projections and the conv's
    n outputs. As computed = FlopCounterMode over transformers' torch fallback (and the reference): a
    prefill runs torch_chunk_gated_delta_rule, padded to chunks of C = 64, whose matmuls per value head
    and chunk are (k beta) k^T and q k^T (C x d_k x C each), reads of the state W S and q S (C x d_k x
    d_v each), scores x new values (C x C x d_v) and the state update k^T u (d_k x C x d_v); its
    triangular solves are not counted by FlopCounterMode (no flop formula for them), and a decode token
    (cached > 0, new == 1) runs torch_recurrent_gated_delta_rule, elementwise only: 0. The conv computes
    n + kernel - 1 outputs on a fresh sequence (causal_conv1d_fn pads both sides) and n + 1 on a cached
    one (causal_conv1d_update). As needed: the delta rule token by token, S^T k, k delta^T and S^T q
    (3 d_k d_v multiply-adds per head and token), and the conv's n outputs (counted with the projections).
    Kimi Delta Attention (transformers' chunk_kimi_delta_attention) builds its within-chunk products elementwise
    (per-channel decays) and instead multiplies the solved system by v beta and by k beta exp(g) (C x C x d_v and
    C x C x d_k): with d_k == d_v, as every KDA layer has, the same count; its three convs are one conv_dim conv."""
    g, b, n = t.linear, step.batch, step.new
    layers = len(g.layers)
    extra = g.conv_kernel - 1 if step.cached == 0 else 1
    if g.kind == "kda" and step.cached and n > 1:  # Kimi's cached multi-token conv pads both sides (kda.kimi_conv)
        extra = 2 * g.conv_kernel - 1
    conv = 2 * b * extra * g.conv_dim * g.conv_kernel
    recurrent = step.cached > 0 and n == 1
    padded = -(-n // GDN_CHUNK) * GDN_CHUNK
    c, dk, dv = GDN_CHUNK, g.key_head_dim, g.value_head_dim
    chunked = 0 if recurrent else 2 * padded * (2 * c * dk + c * dv + 3 * dk * dv)
    computed = layers * (conv + b * g.value_heads * chunked)
    needed = layers * b * g.value_heads * n * 2 * 3 * dk * dv
    return computed, needed


def altup_flops(t: TextSpec, step: Pass) -> int:
    """Gemma 3n's AltUp beyond one use of each of its tensors, every layer and new token: the prediction
    mixes the k streams with a k x k matrix per token (d k^2 multiply-adds), and the router runs twice
    (over the active stream before the layer and over its output after it: one more k d)."""
    k, d = t.per_layer.altup_inputs, t.hidden_size
    return 2 * step.batch * step.new * t.num_layers * (d * k * k + k * d)


# --------------------------------------------------------------------------- the ledger


def matmul_sizes(acc) -> tuple[dict[tuple[str, str, str], int], tuple[str, ...]]:
    """Multiply-adds per token row, summed over a row's repetitions, keyed (component, row, kind of
    token rows); and the rows with matmuls that a text forward does not run."""
    t = acc.spec.text
    from inspector.inventory.model import CROSS

    sizes: dict[tuple[str, str, str], int] = {}
    skipped: dict[str, None] = {}
    for e in acc.entries:
        size = matmul_size(e, t)
        if not size:
            continue
        if e.component != LM or e.group == CROSS:
            skipped[f"{e.component}: {e.group}"] = None
            continue
        key = (e.component, e.group, _kind(e))
        sizes[key] = sizes.get(key, 0) + size
    return sizes, tuple(skipped)


def ledger(acc, step: Pass) -> Ledger:
    """The FLOPs of `step` per `params` row of `acc` (an inspector.inventory.accounting.Accounting)."""
    t = acc.spec.text
    if t is None:
        raise InspectError(f"{acc.spec.name}: no FLOPs without a native family (the inventory came through "
                           "transformers)")
    sums = {(r.component, r.name): [0, 0] for r in acc.rows}
    sizes, skipped = matmul_sizes(acc)
    rows_of = token_rows(t, step)
    for (component, group, kind), size in sizes.items():
        computed, needed = rows_of[kind]
        sums[(component, group)][0] += 2 * size * computed
        sums[(component, group)][1] += 2 * size * needed
    for i in range(t.num_layers):
        if i not in acc.spec.cross_layers and t.has_attention(i):
            computed, needed = attention_flops(t, i, step)
            sums[(LM, ATTN)][0] += computed
            sums[(LM, ATTN)][1] += needed
    if t.indexer is not None:  # DeepSeek-V3.2: the indexer's scores, on the attention row
        computed, needed = indexer_flops(t, step)
        sums[(LM, ATTN)][0] += computed
        sums[(LM, ATTN)][1] += needed
    if t.linear is not None and t.linear.layers and t.linear.kind == "mamba2":
        skipped = (*skipped, SSM_SCAN_SKIPPED)
    delta = t.linear is not None and t.linear.layers and (t.linear.kind.startswith("gdn") or t.linear.kind == "kda")
    if delta:  # Gated DeltaNet / KDA: the recurrence and the conv's extra outputs, on the conv's row
        row = next((e.component, e.group) for e in acc.entries if e.role in ("gdn_conv", "kda_q_conv"))
        computed, needed = deltanet_flops(t, step)
        sums[row][0] += computed
        sums[row][1] += needed
    if t.per_layer is not None and t.per_layer.altup_inputs:  # beyond its tensors, on the AltUp row
        extra = altup_flops(t, step)
        sums[(LM, ALTUP)][0] += extra
        sums[(LM, ALTUP)][1] += extra
    rows = tuple(RowFlops(c, name, _exact(v[0]), _exact(v[1])) for (c, name), v in sums.items())
    return Ledger(step, rows, skipped)


def _exact(value: int | Fraction) -> int | float:
    """An int when the count is whole (every count but a fractional expert load), else a float."""
    value = Fraction(value)
    return value.numerator if value.denominator == 1 else float(value)


def forward_flops(acc, step: Pass) -> tuple[float, float]:
    """(as computed, as needed) FLOPs of the whole pass."""
    book = ledger(acc, step)
    return book.computed, book.needed


# --------------------------------------------------------------------------- vision tower and projector


@dataclass(frozen=True)
class VisionPass:
    """What the images of one request put through the tower: `sequences` encoder sequences (tiles,
    or one packed image) of `length` positions each (patches, plus a class token where the tower has
    one), `patches` patch-embedding rows in all, and `projector_rows` rows each projector matrix sees.
    `windows`: Qwen2.5-VL's attention windows, patches in each (its windowed blocks need only those)."""

    sequences: int
    length: int
    patches: int
    projector_rows: int
    windows: tuple[int, ...] = ()


def vision_ledger(acc, vp: VisionPass) -> Ledger:
    """The vision encoder's and projector's rows for `vp`, as computed (= as needed: a tower attends
    both ways, every position to every position of its sequence). Exact against FlopCounterMode for
    towers whose blocks all attend over whole sequences and whose projector sees `projector_rows`
    (Qwen2-VL, Qwen2.5-VL as the reference computes it: full scores, windows by mask; Qwen3-VL, Gemma 3,
    InternVL, SmolVLM, Pixtral, Llama 4, LLaVA-OneVision); as needed, Qwen2.5-VL's windowed blocks
    attend within `vp.windows` only. Mllama's tower is not modelled. One image per pass: the reference
    packs several images of a request into one sequence with a block mask (computed over all of them)."""
    v = acc.spec.vision
    if v is None:
        raise InspectError(f"{acc.spec.name} has no vision tower")
    enc = v.encoder
    sums = {(r.component, r.name): 0 for r in acc.rows if r.component in (VISION, PROJECTOR)}
    for e in acc.entries:  # (an audio tower, Gemma 4's, takes no part in an image's pass)
        if e.component not in (VISION, PROJECTOR) or "pos_embed" in e.role or "class_embed" in e.role:
            continue
        size = matmul_size(e, acc.spec.text)
        rows = vp.patches if e.role.endswith("patch_embed.weight") else \
            vp.projector_rows if e.component == PROJECTOR else vp.sequences * vp.length
        sums[(e.component, e.group)] += 2 * size * rows
    per_pair = 4 * enc.num_heads * enc.head_dim  # Q K^T and P V, one query against one key
    layers = enc.depth + enc.global_depth
    computed = per_pair * vp.length**2 * vp.sequences * layers
    windowed = enc.depth - len(enc.fullatt_blocks) if vp.windows else 0
    needed = computed - per_pair * windowed * (vp.length**2 * vp.sequences - sum(w * w for w in vp.windows))
    rows = tuple(RowFlops(c, name, value + (computed if (c, name) == (VISION, ATTN) else 0),
                          value + (needed if (c, name) == (VISION, ATTN) else 0)) for (c, name), value in sums.items())
    return Ledger(Pass(vp.sequences * vp.length), rows)


VISION, PROJECTOR = "vision_encoder", "projector"
PER_PATCH_PROJECTORS = frozenset({"mlp"})  # LLaVA's MLP projects every patch; unpadding and newlines come after


def vision_pass(v, it) -> VisionPass:
    """The VisionPass of one image: `v` its VisionSpec, `it` the ImageTokens of inspector.image.rules
    (tiles, patches in all, image tokens). The tower runs each tile as a sequence (a packed Qwen or
    Pixtral image is one sequence), with the class token where it has one; the projector sees every
    image token (LLaVA's MLP: every patch)."""
    if v.encoder.tower == "mllama":
        raise InspectError("Mllama's tiled tower (gated global layers, padded tiles) has no FLOPs ledger yet")
    tiles = max(it.tiles, 1)
    per_tile = it.patches // tiles
    cls = 1 if v.encoder.embed.class_token else 0
    rows = it.patches if v.projector.kind in PER_PATCH_PROJECTORS else it.tokens
    windows = qwen_windows(v, it.grid) if v.encoder.window_size else ()
    return VisionPass(tiles, per_tile + cls, it.patches, rows, windows)


def qwen_windows(v, grid: tuple[int, int, int]) -> tuple[int, ...]:
    """Qwen2.5-VL's windows over a (t, h, w) patch grid, patches in each: window_size pixels a side,
    laid over the grid of merged tokens row by row, the last row and column of windows cut short."""
    m = v.projector.merge_size
    win = v.encoder.window_size // m // v.encoder.embed.patch_size  # merged tokens a side
    t, h, w = grid

    def spans(n: int) -> list[int]:
        return [win] * (n // win) + ([n % win] if n % win else [])

    return tuple(a * b * m * m for _ in range(t) for a in spans(h // m) for b in spans(w // m))


def merged(text: Ledger, *images: Ledger) -> Ledger:
    """A text ledger with the vision rows of each image's ledger added (rows keyed as `params`'s)."""
    extra: dict[tuple[str, str], list[float]] = {}
    for book in images:
        for r in book.rows:
            cell = extra.setdefault(r.key, [0, 0])
            cell[0] += r.computed
            cell[1] += r.needed
    rows = tuple(RowFlops(r.component, r.name, r.computed + extra.get(r.key, (0, 0))[0],
                          r.needed + extra.get(r.key, (0, 0))[1]) for r in text.rows)
    counted = {key for key, cell in extra.items() if cell[0]}
    skipped = tuple(s for s in text.skipped if tuple(s.split(": ", 1)) not in counted)
    return Ledger(text.step, rows, skipped)
