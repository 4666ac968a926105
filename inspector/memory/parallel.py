"""Per-rank weights and KV cache under tensor, pipeline and expert parallelism, as vLLM loads them.

Pure arithmetic over an Accounting's entries; each rule is vLLM's (vllm-project/vllm, main of
2026, files named beside each rule; notes27-ranks.md has the details):

- Embedding and LM head are vocab-parallel (`VocabParallelEmbedding`, `ParallelLMHead` in
  model_executor/layers/vocab_parallel_embedding.py): the vocabulary is padded to a multiple of
  DEFAULT_VOCAB_PADDING_SIZE = 64 (`pad_vocab_size`), then cut into TP equal slices (`divide`, which
  refuses a remainder); the padding rows are allocated (and zero-filled) on the last slices.
- Column-parallel linears (q, k, v, gate, up, MLA's q_b and kv_b) split their output rows over TP,
  biases with them; row-parallel linears (o, down) split their input columns, and their bias is
  whole on every rank (`RowParallelLinear`). Norms, routers (`ReplicatedLinear` gates), MLA's q_a and
  kv_a, position embeddings and the shared-expert gate are whole on every rank.
- `QKVParallelLinear` (model_executor/layers/linear.py): num_heads / TP query heads per rank; kv heads
  num_kv_heads / TP, or, when TP >= num_kv_heads, one head per rank, replicated TP / num_kv_heads
  times (both divisions must be exact).
- Routed experts (`FusedMoE`, model_executor/layers/fused_moe/layer.py and config.py): without
  --enable-expert-parallel the MoE TP size is TP × DP (`flatten_tp_across_dp`) and every expert's
  intermediate width is split over it (asserted exact); the down projection's bias is whole on each
  rank. With it, EP = TP × DP and whole experts go to ranks (`determine_expert_map`, linear
  placement): E // EP each, the first E % EP ranks one more.
- Pipeline parallelism (`get_pp_indices`, distributed/utils.py): L // PP layers per stage, the
  remainder one each to the stages before the last, counting back from it (or VLLM_PP_LAYER_PARTITION,
  `Layout.partition`). The embedding sits on the first stage, the final norm and LM head on the last;
  a tied LM head on PP > 1 makes the last stage hold its own copy of the embedding (llama.py and most
  models: `embed_tokens` exists `if is_first_rank or (tie_word_embeddings and is_last_rank)`).
- Data parallelism copies everything but the routed experts.
- KV cache per rank: its stage's layers, its kv heads (MLA's latent whole on every rank).

Every rank's elements are split into its `own` share of the model's one copy, `copy` (replicated
tensors, kv-head replicas, DP replicas) and `padding` (vocab rows past the vocabulary), so that the
owns of all ranks add up to the model's parameters exactly. Vision towers and projectors are placed on
every stage (vLLM's VLMs build `self.visual` in `__init__` whatever the stage, qwen2_vl.py; the
first stage's counts as the one copy), matrices split over TP when their rows divide (vLLM's default
mm_encoder_tp_mode="weights" shards most towers' linears): an assumption, marked in `RankPlan.notes`.
DeepSeek-V3's multi-token-prediction layer is left out (vLLM loads it only for speculative decoding),
as are stored buffers (the router score-correction bias).
"""

from __future__ import annotations

from typing import Callable, Iterable, NamedTuple

from inspector.errors import InspectError
from inspector.inventory.accounting import Accounting
from inspector.inventory.entry import HEAD, LM, MTP, WeightEntry

VOCAB_PADDING = 64  # vocab_parallel_embedding.py: DEFAULT_VOCAB_PADDING_SIZE
# The smallest layout is searched the way vLLM's docs deploy ("Distributed inference and serving": tensor
# parallel within a node, pipeline parallel across nodes): 1, 2, 4 or 8 GPUs of one node, then whole nodes
# of GPUS_PER_NODE with TP filling each node and one pipeline stage per node. At a GPU count, the widest TP
# vLLM accepts for the model comes first (a narrower TP with more stages when the heads do not divide).
GPUS_PER_NODE = 8
SEARCH_TP = (1, 2, 4, 8)
SEARCH_MAX_NODES = 16

_Q_ROLES = ("q", "q_b", "kv_b", "sinks")  # split by query heads
_KV_ROLES = ("k", "v")
_COLUMN_ROLES = ("gate", "up", "gate_up", "fc1", "shared_gate", "shared_up")
_ROW_ROLES = ("o", "down", "fc2", "shared_down")
_EXPERT_COLUMN = ("expert_gate", "expert_up", "experts_gate_up", "experts_gate_up_bias")
_EXPERT_ROW = ("expert_down", "experts_down")
_EXPERT_BIAS_WHOLE = ("experts_down_bias",)


class Layout(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """--tensor-parallel-size, --pipeline-parallel-size, --data-parallel-size and
    --enable-expert-parallel (EP = tp × dp); `partition` is VLLM_PP_LAYER_PARTITION (layers per stage)."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: bool = False
    partition: tuple[int, ...] | None = None

    @property
    def world(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def moe_size(self) -> int:
        """The ranks the routed experts are spread over (vLLM's flattened TP × DP)."""
        return self.tp * self.dp

    def label(self) -> str:
        parts = [f"TP {self.tp}"] + [f"{k} {v}" for k, v in (("PP", self.pp), ("DP", self.dp)) if v > 1]
        return " × ".join(parts) + (f" with EP {self.moe_size}" if self.ep else "")


class RankShare(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """One GPU: where it sits, what it holds (elements and bytes) and what one token of KV costs it."""

    pp_rank: int
    dp_rank: int
    tp_rank: int
    layers: tuple[int, int]  # [start, end) of its stage
    experts: int  # routed experts per MoE layer it holds (whole, or a slice of each)
    kv_heads: int  # kv heads per attention layer (MLA: its one latent)
    own: int  # elements: its share of the model's one copy
    copy: int  # elements also held elsewhere: replicated tensors, kv-head replicas, DP replicas
    padding: int  # elements: vocab rows past the vocabulary
    weights_bytes: int
    kv_bytes_per_token: int

    @property
    def elements(self) -> int:
        return self.own + self.copy + self.padding


class RankPlan(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """Every rank of a layout; `model_params` is the model's one copy (the owns add up to it)."""

    model: str
    layout: Layout
    ranks: tuple[RankShare, ...]
    model_params: int
    notes: tuple[str, ...] = ()

    @property
    def largest(self) -> RankShare:
        """The rank that decides whether the layout fits: most weight bytes, then most KV per token."""
        return max(self.ranks, key=lambda r: (r.weights_bytes, r.kv_bytes_per_token))

    @property
    def smallest_kv(self) -> RankShare:
        return min(self.ranks, key=lambda r: r.kv_bytes_per_token)


def _fail(acc: Accounting, what: str) -> InspectError:
    return InspectError(f"{acc.spec.name}: {what}")


# --------------------------------------------------------------------------- vLLM's rules


def pad_vocab(vocab: int, pad_to: int = VOCAB_PADDING) -> int:
    """vLLM's pad_vocab_size: the vocabulary rounded up to a multiple of `pad_to`."""
    return -(-vocab // pad_to) * pad_to


def pp_indices(num_layers: int, pp_rank: int, pp: int, partition: tuple[int, ...] | None = None) -> tuple[int, int]:
    """vLLM's get_pp_indices: [start, end) of stage `pp_rank`."""
    if partition is not None:
        parts = list(partition)
    else:
        parts = [num_layers // pp] * pp
        for i in range(2, num_layers % pp + 2):  # the remainder, one each, to the stages before the last
            parts[-i] += 1
    start = sum(parts[:pp_rank])
    return start, start + parts[pp_rank]


def local_experts(experts: int, ep: int, ep_rank: int) -> tuple[int, int]:
    """vLLM's determine_expert_map (linear placement): (first expert, how many) on `ep_rank`."""
    base, rem = divmod(experts, ep)
    return ep_rank * base + min(ep_rank, rem), base + (1 if ep_rank < rem else 0)


def kv_heads_per_rank(num_kv_heads: int, tp: int) -> int:
    """QKVParallelLinear: num_kv_heads / tp, or one (replicated) when tp >= num_kv_heads."""
    return 1 if tp >= num_kv_heads else num_kv_heads // tp


def check_layout(acc: Accounting, lay: Layout) -> None:
    """vLLM's divisibility rules for this model and layout; one InspectError line naming the value."""
    t = acc.spec.text
    if t is None:
        raise _fail(acc, "no per-rank plan for a model counted through transformers (no native family)")
    for flag, v in (("tensor", lay.tp), ("pipeline", lay.pp), ("data", lay.dp)):
        if not isinstance(v, int) or v < 1:
            raise _fail(acc, f"--{flag}-parallel-size must be a whole number from 1, got {v!r}")
    if t.num_heads % lay.tp:
        raise _fail(acc, f"num_attention_heads ({t.num_heads}) is not divisible by tensor parallel size {lay.tp}")
    if t.mla is None and t.num_kv_heads % lay.tp and lay.tp % t.num_kv_heads:
        raise _fail(acc, f"num_key_value_heads ({t.num_kv_heads}) and tensor parallel size {lay.tp}: "
                         "neither divides the other")
    padded = pad_vocab(t.vocab_size)
    if padded % lay.tp:
        raise _fail(acc, f"the vocabulary padded to {padded:,} (a multiple of {VOCAB_PADDING}) is not divisible "
                         f"by tensor parallel size {lay.tp}")
    _check_widths(acc, lay)
    _check_stages(acc, lay)


def _check_widths(acc: Accounting, lay: Layout) -> None:
    t = acc.spec.text
    m = t.moe
    dense = m is None or len(m.layers) < t.num_layers
    if dense and t.intermediate_size % lay.tp:
        raise _fail(acc, f"intermediate_size ({t.intermediate_size}) is not divisible by tensor parallel size {lay.tp}")
    if m is not None and m.shared_intermediate and m.shared_intermediate % lay.tp:
        raise _fail(acc, f"the shared expert's intermediate size ({m.shared_intermediate}) is not divisible by "
                         f"tensor parallel size {lay.tp}")
    if m is not None and not lay.ep and m.expert_intermediate % lay.moe_size:
        raise _fail(acc, f"moe_intermediate_size ({m.expert_intermediate}) is not divisible by {lay.moe_size} "
                         "(TP × DP, the ranks FusedMoE splits each expert over without --enable-expert-parallel)")


def _check_stages(acc: Accounting, lay: Layout) -> None:
    layers = acc.spec.text.num_layers
    if lay.partition is not None:
        if len(lay.partition) != lay.pp or sum(lay.partition) != layers or min(lay.partition) < 0:
            raise _fail(acc, f"VLLM_PP_LAYER_PARTITION {','.join(map(str, lay.partition))} must give {lay.pp} "
                             f"stages adding up to {layers} layers")
    elif lay.pp > layers:
        raise _fail(acc, f"pipeline parallel size {lay.pp} is more than the {layers} layers (a stage would hold none)")


# --------------------------------------------------------------------------- one tensor on one rank


class _Rank(NamedTuple):  # a NamedTuple: cheaper to define than a dataclass (cold start)
    """The coordinates and stage facts one tensor's share depends on."""

    lay: Layout
    tp_rank: int
    dp_rank: int
    first: bool  # first pipeline stage
    last: bool


def split_axis(e: WeightEntry) -> str:
    """The dimension of a tensor that TP splits: "in" for row-parallel layers (o, down), "out" for the rest."""
    return "in" if _base(e) in _ROW_ROLES + _EXPERT_ROW else "out"


def _base(e: WeightEntry) -> str:
    """The role without its .weight/.bias suffix."""
    return e.role.rsplit(".", 1)[0] if e.role.endswith((".weight", ".bias")) else e.role


def _whole(n: int, r: _Rank, owner: bool = True) -> tuple[int, int, int]:
    """A tensor whole on this rank: owned by one rank (`owner`), a copy on the others."""
    return (n, 0, 0) if owner and r.dp_rank == 0 and r.tp_rank == 0 else (0, n, 0)


def _split(n: int, parts: int, r: _Rank) -> tuple[int, int, int]:
    """1/parts of a tensor; a DP replica's slice is a copy."""
    share = n // parts
    return (share, 0, 0) if r.dp_rank == 0 else (0, share, 0)


def _vocab(e: WeightEntry, vocab: int, r: _Rank, tied_copy: bool) -> tuple[int, int, int]:
    """A vocab-parallel tensor: this TP slice of the padded rows, real rows and padding apart."""
    width = e.numel // vocab
    per = pad_vocab(vocab) // r.lay.tp
    real = max(0, min(vocab, (r.tp_rank + 1) * per) - r.tp_rank * per)
    pad = (per - real) * width
    if tied_copy or r.dp_rank:
        return 0, real * width, pad
    return real * width, 0, pad


def _kv(e: WeightEntry, heads: int, r: _Rank) -> tuple[int, int, int]:
    """k or v (weight or bias): this rank's kv heads; a replica of a head held by an earlier rank is a copy."""
    lay = r.lay
    local = kv_heads_per_rank(heads, lay.tp)
    n = e.numel * local // heads
    owner = lay.tp <= heads or r.tp_rank % (lay.tp // heads) == 0
    return (n, 0, 0) if owner and r.dp_rank == 0 else (0, n, 0)


def _fused_qkv(e: WeightEntry, t, r: _Rank) -> tuple[int, int, int]:
    """A fused qkv tensor: the q rows split, the k and v rows as _kv."""
    per_row = e.numel // (t.q_dim + 2 * t.kv_dim)
    q = _split(t.q_dim * per_row, r.lay.tp, r)
    kv_entry = e._replace(shape=(2 * t.kv_dim * per_row,))
    kv = _kv(kv_entry, t.num_kv_heads, r)
    return q[0] + kv[0], q[1] + kv[1], 0


def _expert(e: WeightEntry, t, r: _Rank) -> tuple[int, int, int]:
    """A routed expert's tensor (one expert's, or all experts' fused): split over TP × DP, or whole under EP."""
    lay, m = r.lay, t.moe
    flat = r.dp_rank * lay.tp + r.tp_rank
    base = _base(e)
    if lay.ep:
        first, count = local_experts(m.num_experts, lay.moe_size, flat)
        if e.expert is not None:
            return (e.numel, 0, 0) if first <= e.expert < first + count else (0, 0, 0)
        return e.numel // m.num_experts * count, 0, 0
    if base in _EXPERT_BIAS_WHOLE or (base == "expert_down" and e.role.endswith(".bias")):
        return (e.numel, 0, 0) if flat == 0 else (0, e.numel, 0)
    return e.numel // lay.moe_size, 0, 0


def share(e: WeightEntry, acc: Accounting, r: _Rank) -> tuple[int, int, int]:
    """(own, copy, padding) elements of tensor `e` on one rank of its stage."""
    t, lay = acc.spec.text, r.lay
    if e.component != LM:  # vision tower, projector: assumed TP-sharded linears, a copy past the first stage
        rows = e.shape[0]
        o, c, p = _split(e.numel, lay.tp, r) if len(e.shape) >= 2 and rows % lay.tp == 0 else _whole(e.numel, r)
        return (o, c, p) if r.first else (0, o + c, p)
    base = _base(e)
    if e.role == "embed" or e.group == HEAD:
        return _vocab(e, t.vocab_size, r, tied_copy=not e.stored)
    if e.expert is not None or base in _EXPERT_COLUMN + _EXPERT_ROW + _EXPERT_BIAS_WHOLE:
        return _expert(e, t, r)
    if base == "qkv":
        return _fused_qkv(e, t, r)
    if base in _KV_ROLES:
        return _kv(e, t.num_kv_heads, r)
    if base in _Q_ROLES or base in _COLUMN_ROLES:
        return _split(e.numel, lay.tp, r)
    if base in _ROW_ROLES and e.role.endswith(".weight"):
        return _split(e.numel, lay.tp, r)
    return _whole(e.numel, r)  # norms, row-parallel biases, routers, q_a/kv_a, positions


# --------------------------------------------------------------------------- the plan


def _stage_entries(acc: Accounting, lay: Layout, pp_rank: int) -> Iterable[WeightEntry]:
    """The tensors stage `pp_rank` holds (a tied head only as the last stage's own embedding copy)."""
    t = acc.spec.text
    start, end = pp_indices(t.num_layers, pp_rank, lay.pp, lay.partition)
    first, last = pp_rank == 0, pp_rank == lay.pp - 1
    for e in acc.entries:
        if not e.parameter or e.component == MTP:
            continue
        if e.component != LM:  # vision tower and projector: built on every stage (qwen2_vl.py and others)
            yield e
        elif e.role in ("embed", "pos_embed"):
            if first:
                yield e
        elif e.layer is not None:
            if start <= e.layer < end:
                yield e
        elif last and (e.stored or not first):  # final norm and head; a tied head only when PP > 1
            yield e


def _kv_token(acc: Accounting, lay: Layout, layers: int, kv_width: int) -> tuple[int, int]:
    """(kv heads per layer, bytes of one token's KV over `layers` layers) on one rank."""
    t = acc.spec.text
    if t.mla is not None:
        return 1, layers * (t.mla.kv_lora_rank + t.mla.qk_rope_head_dim) * kv_width
    heads = kv_heads_per_rank(t.num_kv_heads, lay.tp)
    return heads, layers * 2 * heads * t.head_dim * kv_width


class _Alike(NamedTuple):
    """Tensors of one stage that every rank splits alike (same role, kind and shape: e.g. one expert
    matrix of every layer), with their summed bytes per element and kept-whole bytes."""

    entry: WeightEntry  # one of them: what `share` reads
    numel: int  # of one tensor
    count: int
    width: float  # Σ width(e) over the tensors
    kept: float  # Σ kept_whole(e, split_axis(e)) over the tensors


def _alike(entries: list[WeightEntry], width: Callable[[WeightEntry], float], ep: bool) -> list[_Alike]:
    """`entries` grouped by what `share` reads: a stage of 10^5 expert tensors is a few dozen groups."""
    kept = getattr(width, "kept_whole", None)
    groups: dict[tuple, list] = {}
    for e in entries:
        key = (e.role, e.component, e.group, e.shape, e.stored, e.expert if ep else None)
        g = groups.get(key)
        if g is None:
            g = groups[key] = [e, e.numel, 0, 0.0, 0.0]
        g[2] += 1
        g[3] += width(e)
        if kept is not None:
            g[4] += kept(e, split_axis(e))
    return [_Alike(*g) for g in groups.values()]


def _rank(acc: Accounting, lay: Layout, coords: tuple[int, int, int], groups: list[_Alike],
          kv_width: int) -> RankShare:
    pp_rank, dp_rank, tp_rank = coords
    t = acc.spec.text
    r = _Rank(lay, tp_rank, dp_rank, pp_rank == 0, pp_rank == lay.pp - 1)
    own = copy = pad = nbytes = 0
    for g in groups:
        o, c, p = share(g.entry, acc, r)
        held = o + c + p
        own, copy, pad = own + o * g.count, copy + c * g.count, pad + p * g.count
        nbytes += held * g.width
        # a quantized tensor's parts along the dimension TP does not split (GPTQ's g_idx of a column-parallel
        # layer, a per-channel scale of a row-parallel one) stay whole on every rank holding a share of it
        if g.kept and 0 < held < g.numel:
            nbytes += g.kept * (1 - held / g.numel)
    start, end = pp_indices(t.num_layers, pp_rank, lay.pp, lay.partition)
    heads, kv = _kv_token(acc, lay, end - start, kv_width)
    experts = 0
    if t.moe is not None:
        experts = local_experts(t.moe.num_experts, lay.moe_size, dp_rank * lay.tp + tp_rank)[1] if lay.ep \
            else t.moe.num_experts
    return RankShare(pp_rank, dp_rank, tp_rank, (start, end), experts, heads, own, copy, pad, nbytes, kv)


def _two_bytes(e: WeightEntry) -> int:
    return 2


def rank_plan(acc: Accounting, lay: Layout, width: Callable[[WeightEntry], int] = _two_bytes,
              kv_width: int = 2) -> RankPlan:
    """Every rank of `lay`: elements (own, copy, padding), weight bytes at `width(entry)` bytes per
    element (bf16 by default), and KV bytes per token at `kv_width` bytes per element."""
    check_layout(acc, lay)
    ranks = []
    for pp_rank in range(lay.pp):
        groups = _alike(list(_stage_entries(acc, lay, pp_rank)), width, lay.ep)
        for dp_rank in range(lay.dp):
            ranks.extend(_rank(acc, lay, (pp_rank, dp_rank, tp_rank), groups, kv_width) for tp_rank in range(lay.tp))
    notes = ()
    if any(e.component != LM for e in acc.entries):
        notes = ("vision tower and projector: on every pipeline stage, matrices split over TP (assumed: vLLM's "
                 "default mm_encoder_tp_mode='weights'; 'data' replicates them)",)
    return RankPlan(acc.spec.name, lay, tuple(ranks), acc.totals.total_params, notes)


# --------------------------------------------------------------------------- the smallest layout


def candidate_layouts(max_nodes: int = SEARCH_MAX_NODES, ep: bool = False) -> list[Layout]:
    """Layouts by GPU count: 1, 2, 4 and 8 GPUs of one node, then 2 to max_nodes whole nodes; at each count
    the widest TP first (TP within a node, PP across nodes)."""
    worlds = [w for w in SEARCH_TP if w <= GPUS_PER_NODE] + [GPUS_PER_NODE * k for k in range(2, max_nodes + 1)]
    return [Layout(tp, world // tp, ep=ep and tp > 1)
            for world in worlds for tp in sorted(SEARCH_TP, reverse=True) if tp <= world and world % tp == 0]


def smallest_layout(acc: Accounting, fits: Callable[[RankPlan], bool], gpu_name: str = "GPU",
                    layouts: Iterable[Layout] | None = None,
                    width: Callable[[WeightEntry], int] = _two_bytes, kv_width: int = 2) -> tuple[RankPlan, str]:
    """The first layout (fewest GPUs, see candidate_layouts) whose plan `fits` (a per-rank budget test), and its sentence
    ("fits on 8 × H100-80GB with TP 8"). Layouts vLLM refuses for this model are skipped; when none
    fits, one InspectError line says why, naming the first refusal."""
    refused: list[str] = []
    for lay in layouts if layouts is not None else candidate_layouts():
        try:
            plan = rank_plan(acc, lay, width, kv_width)
        except InspectError as err:
            refused.append(f"{lay.label()}: {str(err).split(': ', 1)[-1]}")
            continue
        if fits(plan):
            return plan, f"fits on {lay.world} × {gpu_name} with {lay.label()}"
    why = f" (skipped {refused[0]}{f', and {len(refused) - 1} more' if len(refused) > 1 else ''})" if refused else ""
    raise _fail(acc, f"no layout up to {SEARCH_MAX_NODES} nodes of {GPUS_PER_NODE} fits on {gpu_name}{why}")


def weights_fit(budget_bytes: int) -> Callable[[RankPlan], bool]:
    """A per-rank budget test on weights alone: the largest rank's weights within `budget_bytes`."""
    return lambda plan: plan.largest.weights_bytes <= budget_bytes


def total_elements(plan: RankPlan) -> tuple[int, int, int]:
    """(own, copy, padding) over all ranks: own equals plan.model_params."""
    return (sum(r.own for r in plan.ranks), sum(r.copy for r in plan.ranks), sum(r.padding for r in plan.ranks))
