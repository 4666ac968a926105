"""The inventory of a decoder LLM: every tensor its checkpoint holds, in checkpoint order.

A layer is composed of parts picked by the spec: the norms its placement puts where (records of
inspector.spec.norms: the kind says whether a norm has a bias, the placement where it sits), the
attention kind (separate, fused, grouped or per-head q/k/v, or multi-head latent attention), and
the feed-forward kind (a gated or plain MLP, or a router plus experts). A part's tensors go to one
`Site` (layer, component, table row, expert). Names are those of the published
Hugging Face checkpoints, from the family's name templates. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

from inspector.inventory.entry import (
    ATTN, DENSE_MLP, EMBED, EXPERTS, HEAD, KDA_ATTN, LATENT, LINEAR_ATTN, LM, MLP, MTP, MTP_HEAD, MTP_PROJ, POS_EMBED,
    ROUTER, ROUTER_BIAS, SHARED_EXPERT, SHORT_CONV, SSM, WeightEntry, norm_row,
)
from inspector.inventory.per_layer import (
    attention_row, gemma_experts, gemma_layer_extras, gemma_model_extras, mlp_row,
)
from inspector.spec.text import TextSpec

Entries = Iterator[WeightEntry]


class Site(NamedTuple):
    """Where a part's tensors go: the spec that names them, their layer, their component and table
    row, and the routed expert they belong to (None outside the experts)."""

    t: TextSpec
    layer: int | None
    component: str
    group: str
    expert: int | None = None


def _linear(at: Site, role: str, out_f: int, in_f: int, bias: bool) -> Entries:
    """A projection from `in_f` to `out_f` features (GPT-2's Conv1D stores it transposed), with its bias."""
    t, i, c, group, e = at
    shape = (in_f, out_f) if t.transposed_linears else (out_f, in_f)
    yield WeightEntry(t.name(role, i, ".weight", e), shape, c, group, role + ".weight", i, expert=e)
    if bias:
        yield WeightEntry(t.name(role, i, ".bias", e), (out_f,), c, group, role + ".bias", i, expert=e)


def _norm(at: Site, role: str, dim: int) -> Entries:
    """A norm of the spec's kind over `dim` features: its weight, and its bias when the kind has one."""
    t, i, c, group, _ = at
    yield WeightEntry(t.name(role, i, ".weight"), (dim,), c, group, role + ".weight", i)
    if t.norm.bias:
        yield WeightEntry(t.name(role, i, ".bias"), (dim,), c, group, role + ".bias", i)


def _layer_norms(t: TextSpec, i: int | None, c: str, roles: tuple[str, ...]) -> Entries:
    """The norms over d at one point of the model (a placement's, or the final one), each in its own row."""
    for role in roles:
        yield from _norm(Site(t, i, c, norm_row(t, role)), role, t.hidden_size)


def _raw(at: Site, role: str, shape: tuple[int, ...], parameter: bool = True) -> WeightEntry:
    """A tensor whose template is its full name (fused experts, sinks, buffers)."""
    return WeightEntry(at.t.name(role, at.layer), shape, at.component, at.group, role, at.layer, parameter=parameter)


# --------------------------------------------------------------------------- attention


def _attention(t: TextSpec, i: int, c: str) -> Entries:
    p = t.per_layer  # Gemma 3n / 4: this layer's sizes; a KV-shared layer has no K/V parts, k_eq_v no V
    shared, k_eq_v = (p.is_shared(i), p.k_eq_v[i]) if p else (False, False)
    group = attention_row(t, i) if p else ATTN
    t = t.at_layer(i)
    d, bias, at = t.hidden_size, t.qkv_bias, Site(t, i, c, group)
    if t.mla is not None:
        yield from _mla(at)
    elif t.fused_qkv:
        yield from _linear(at, "qkv", t.q_dim + 2 * t.kv_dim, d, bias)
    else:  # a gated attention's q_proj yields the query and its output gate, head by head
        yield from _linear(at, "q", 2 * t.q_dim if t.attn_output_gate else t.q_dim, d, bias)
        if not shared:
            yield from _linear(at, "k", t.kv_dim, d, bias)
        if not (shared or k_eq_v):
            yield from _linear(at, "v", t.kv_dim, d, bias)
    yield from _linear(at, "o", d, t.attn_out_dim, t.o_bias)
    if t.qk_norm_kind is not None:
        per_head = t.qk_norm_kind.per_head
        yield from _norm(at, "q_norm", t.head_dim if per_head else t.q_dim)
        if not shared:
            yield from _norm(at, "k_norm", t.head_dim if per_head else t.kv_dim)
    if t.attention_sinks:
        yield _raw(at, "sinks", (t.num_heads,))
    if t.indexer is not None:
        yield from _indexer(at)


def _indexer(at: Site) -> Entries:
    """DeepSeek-V3.2's lightning indexer: query heads from the q latent, one key per token from x (normalised by a
    LayerNorm with a bias, whatever the family's norm), and a weight per head from x."""
    t = at.t
    x, d, i = t.indexer, t.hidden_size, at.layer
    yield from _linear(at, "indexer_wq_b", x.heads * x.head_dim, t.mla.q_lora_rank, False)
    yield from _linear(at, "indexer_wk", x.head_dim, d, False)
    for kind in ("weight", "bias"):
        yield WeightEntry(t.name("indexer_k_norm", i, "." + kind), (x.head_dim,), at.component, at.group,
                          "indexer_k_norm." + kind, i)
    yield from _linear(at, "indexer_weights_proj", x.heads, d, False)


def _mla(at: Site) -> Entries:
    """q through a low-rank latent (or directly), kv through one shared latent plus a RoPE key."""
    t = at.t
    m, d, h = t.mla, t.hidden_size, t.num_heads
    if m.q_lora_rank:
        yield from _linear(at, "q_a", m.q_lora_rank, d, t.qkv_bias)
        yield from _norm(at, "q_a_norm", m.q_lora_rank)
        yield from _linear(at, "q_b", h * m.qk_head_dim, m.q_lora_rank, False)
    else:
        yield from _linear(at, "q", h * m.qk_head_dim, d, False)
    yield from _linear(at, "kv_a", m.kv_lora_rank + m.qk_rope_head_dim, d, t.qkv_bias)
    yield from _norm(at, "kv_a_norm", m.kv_lora_rank)
    yield from _linear(at, "kv_b", h * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank, False)


def _gated_deltanet(t: TextSpec, i: int, c: str) -> Entries:
    """A Gated DeltaNet token mixer: input projections (q, k, v, the output gate z, the update
    strength b and the decay a; fused into two or stored as four), the depthwise convolution over
    q, k and v, the per-head decay parameters, the gated norm over a value head and the output."""
    g, d, at = t.linear, t.hidden_size, Site(t, i, c, LINEAR_ATTN)
    if g.kind == "kda":
        yield from _kimi_delta(Site(t, i, c, KDA_ATTN))
        return
    yield _raw(at, "gdn_conv", (g.conv_dim, 1, g.conv_kernel))
    if g.kind == "gdn_fused":
        yield from _linear(at, "gdn_qkvz", 2 * g.key_dim + 2 * g.value_dim, d, False)
        yield from _linear(at, "gdn_ba", 2 * g.value_heads, d, False)
    else:
        yield from _linear(at, "gdn_qkv", g.conv_dim, d, False)
        yield from _linear(at, "gdn_z", g.value_dim, d, False)
        yield from _linear(at, "gdn_b", g.value_heads, d, False)
        yield from _linear(at, "gdn_a", g.value_heads, d, False)
    yield _raw(at, "gdn_dt_bias", (g.value_heads,))
    yield _raw(at, "gdn_a_log", (g.value_heads,))
    yield WeightEntry(t.name("gdn_norm", i, ".weight"), (g.value_head_dim,), c, LINEAR_ATTN, "gdn_norm.weight", i)
    yield from _linear(at, "gdn_out", d, g.value_dim, False)


def _kimi_delta(at: Site) -> Entries:
    """A Kimi Delta Attention token mixer (Kimi Linear): q, k, v projections and a short depthwise conv for each,
    the per-channel forget gate (f_a then f_b, a low-rank projection, plus dt_bias; A_log per head), the update
    strength b per head, the low-rank output gate (g_a, g_b), the gated RMS norm over a head and o_proj."""
    t, i = at.t, at.layer
    g, d = t.linear, t.hidden_size
    width, heads, dim = g.key_dim, g.key_heads, g.key_head_dim
    for role in ("kda_q", "kda_k", "kda_v"):
        yield from _linear(at, role, width, d, False)
    for role in ("kda_q_conv", "kda_k_conv", "kda_v_conv"):
        yield _raw(at, role, (width, 1, g.conv_kernel))
    yield _raw(at, "kda_a_log", (1, 1, heads, 1))
    yield from _linear(at, "kda_f_a", dim, d, False)
    yield from _linear(at, "kda_f_b", width, dim, False)
    yield _raw(at, "kda_dt_bias", (width,))
    yield from _linear(at, "kda_b", heads, d, False)
    yield from _linear(at, "kda_g_a", dim, d, False)
    yield from _linear(at, "kda_g_b", width, dim, False)
    yield WeightEntry(t.name("kda_norm", i, ".weight"), (dim,), at.component, at.group, "kda_norm.weight", i)
    yield from _linear(at, "kda_out", d, width, False)


def _mamba2(t: TextSpec, i: int, c: str) -> Entries:
    """A Mamba2 mixer: in_proj (d -> gate z, the conv's x B C, one dt per head), the depthwise convolution
    over x B C, the per-head dt bias, A (as log) and skip D, the gated norm over the inner width, out_proj."""
    g, at = t.linear, Site(t, i, c, SSM)
    inner = g.value_dim
    yield from _linear(at, "ssm_in", inner + g.conv_dim + g.value_heads, t.hidden_size, g.proj_bias)
    yield WeightEntry(t.name("ssm_conv", i, ".weight"), (g.conv_dim, 1, g.conv_kernel), c, SSM, "ssm_conv.weight", i)
    if g.conv_bias:
        yield WeightEntry(t.name("ssm_conv", i, ".bias"), (g.conv_dim,), c, SSM, "ssm_conv.bias", i)
    for role in ("ssm_dt_bias", "ssm_a_log", "ssm_d"):
        yield _raw(at, role, (g.value_heads,))
    if g.gated_norm:
        yield WeightEntry(t.name("ssm_norm", i, ".weight"), (inner,), c, SSM, "ssm_norm.weight", i)
    yield from _linear(at, "ssm_out", t.hidden_size, inner, g.out_bias)


def _short_conv(t: TextSpec, i: int, c: str) -> Entries:
    """LFM2's gated short convolution: in_proj (d -> B, C, x), the depthwise convolution, out_proj."""
    g, d, at = t.linear, t.hidden_size, Site(t, i, c, SHORT_CONV)
    yield WeightEntry(t.name("ssm_conv", i, ".weight"), (d, 1, g.conv_kernel), c, SHORT_CONV, "ssm_conv.weight", i)
    if g.conv_bias:
        yield WeightEntry(t.name("ssm_conv", i, ".bias"), (d,), c, SHORT_CONV, "ssm_conv.bias", i)
    yield from _linear(at, "ssm_in", 3 * d, d, g.proj_bias)
    yield from _linear(at, "ssm_out", d, d, g.out_bias)


MIXERS = {"gdn_fused": _gated_deltanet, "gdn_split": _gated_deltanet, "kda": _gated_deltanet,  # (KDA: _kimi_delta)
          "mamba2": _mamba2, "shortconv": _short_conv}


def _mixers(t: TextSpec, i: int, c: str) -> Entries:
    """The token mixers of layer `i`: attention, the linear/state-space mixer, or both side by side (Falcon-H1)."""
    if t.has_attention(i):
        yield from _attention(t, i, c)
    if t.is_linear_layer(i):
        yield from MIXERS[t.linear.kind](t, i, c)


# --------------------------------------------------------------------------- feed-forward


def _mlp(at: Site, width: int, prefix: str = "", bias: bool | None = None) -> Entries:
    t, d = at.t, at.t.hidden_size
    bias = t.mlp_bias if bias is None else bias
    if t.mlp == "plain":  # a shared expert's up/down (Nemotron-H), else fc1/fc2
        yield from _linear(at, prefix + "up" if prefix else "fc1", width, d, bias)
        yield from _linear(at, prefix + "down" if prefix else "fc2", d, width, bias)
        return
    if t.mlp == "gated_fused" and (not prefix or prefix + "gate_up" in t.names):
        yield from _linear(at, prefix + "gate_up", 2 * width, d, bias)
    else:
        yield from _linear(at, prefix + "gate", width, d, bias)
        yield from _linear(at, prefix + "up", width, d, bias)
    yield from _linear(at, prefix + "down", d, width, bias)


def _experts(t: TextSpec, i: int, c: str) -> Entries:
    """Router, routed experts (one by one, or fused as stored), shared expert(s)."""
    m, d = t.moe, t.hidden_size
    yield from _linear(Site(t, i, c, ROUTER), "router", m.num_experts, d, m.router_bias)
    if m.score_bias:  # a buffer (DeepSeek-V3), or ERNIE 4.5's frozen (1, E) parameter
        shape = (1, m.num_experts) if m.score_bias_param else (m.num_experts,)
        yield _raw(Site(t, i, c, ROUTER_BIAS), "router_score_bias", shape, parameter=m.score_bias_param)
    if m.latent:  # Nemotron-H: the routed experts work in the latent width
        yield from _linear(Site(t, i, c, LATENT), "moe_latent_in", m.latent, d, t.mlp_bias)
        yield from _linear(Site(t, i, c, LATENT), "moe_latent_out", d, m.latent, t.mlp_bias)
        d = m.latent
    if m.fused:
        e, w, at = m.num_experts, m.expert_intermediate, Site(t, i, c, EXPERTS)
        yield _raw(at, "experts_gate_up", (e, 2 * w, d) if m.fused_out_in else (e, d, 2 * w))
        if m.expert_bias:
            yield _raw(at, "experts_gate_up_bias", (e, 2 * w))
        yield _raw(at, "experts_down", (e, d, w) if m.fused_out_in else (e, w, d))
        if m.expert_bias:
            yield _raw(at, "experts_down_bias", (e, d))
    else:
        for e in range(m.num_experts):
            at = Site(t, i, c, EXPERTS, e)
            if m.gated:
                yield from _linear(at, "expert_gate", m.expert_intermediate, d, m.expert_bias)
            yield from _linear(at, "expert_up", m.expert_intermediate, d, m.expert_bias)
            yield from _linear(at, "expert_down", d, m.expert_intermediate, m.expert_bias)
    d = t.hidden_size  # the shared expert reads the model width
    if m.shared_intermediate:
        shared = Site(t, i, c, SHARED_EXPERT)
        # ERNIE 4.5's shared experts take use_bias (shared_bias); Nemotron-H's (non-gated experts) is its own MLP
        # class, biased by mlp_bias
        bias = t.mlp_bias and (m.shared_bias or not m.gated)
        yield from _mlp(shared, m.shared_intermediate, prefix="shared_", bias=bias)
        if m.shared_expert_gate:
            yield from _linear(shared, "shared_expert_gate", 1, d, False)


def _feed_forward(t: TextSpec, i: int, c: str) -> Entries:
    if t.per_layer is not None and t.is_moe_layer(i):  # Gemma 4: experts beside the dense MLP
        yield from _mlp(Site(t, i, c, mlp_row(t, i)), t.mlp_width(i))
        yield from gemma_experts(t, i)
        return
    if t.is_moe_layer(i) or (c == MTP and t.moe is not None):
        yield from _experts(t, i, c)
    else:
        group = mlp_row(t, i) if t.per_layer else DENSE_MLP if t.moe is not None else MLP
        yield from _mlp(Site(t, i, c, group), t.mlp_width(i))


# --------------------------------------------------------------------------- layers and model


def _layer(t: TextSpec, i: int, c: str = LM) -> Entries:
    """One decoder layer in checkpoint order: the placement's norms around attention and the feed-forward part
    (Nemotron-H: one norm, then the layer's one block)."""
    p = t.placement
    yield from _layer_norms(t, i, c, p.before_attn)
    if t.blocks and t.blocks[i] in ("mlp", "moe"):
        yield from _feed_forward(t, i, c)
        return
    yield from _mixers(t, i, c)
    if not t.has_feed_forward(i):
        return
    yield from _layer_norms(t, i, c, p.after_attn + p.before_mlp)
    yield from _feed_forward(t, i, c)
    yield from _layer_norms(t, i, c, p.after_mlp)
    if t.per_layer is not None and c == LM:
        yield from gemma_layer_extras(t, i)


def _mtp(t: TextSpec, i: int) -> Entries:
    """DeepSeek-V3's multi-token-prediction module, stored as layer `i` after the model's layers:
    its own embedding, two norms and a projection, one decoder layer, and its own head."""
    d, v = t.hidden_size, t.vocab_size
    shapes = {"mtp_embed": (v, d), "mtp_enorm": (d,), "mtp_hnorm": (d,), "mtp_eh_proj": (d, 2 * d)}
    for role, shape in shapes.items():
        yield WeightEntry(t.name(role, i), shape, MTP, MTP_PROJ, role, i, optional=True)
    for e in _layer(t, i, MTP):
        yield WeightEntry(e.name, e.shape, MTP, e.group, e.role, e.layer, expert=e.expert, parameter=e.parameter,
                          optional=True)
    for role, shape in (("mtp_head_norm", (d,)), ("mtp_head", (v, d))):
        yield WeightEntry(t.name(role, i), shape, MTP, MTP_HEAD, role, i, optional=True)


def _qwen_mtp(t: TextSpec, i: int) -> Entries:
    """Qwen3-Next / Qwen3.5's multi-token-prediction module j = i - num_layers, stored under mtp.*: the norms of
    the embedding and of the hidden state, fc (2d -> d), one full-attention decoder layer, a final norm
    (vLLM qwen3_next_mtp.py; the embedding and LM head are the model's)."""
    d, j = t.hidden_size, i - t.num_layers
    for role, name, shape in (("mtp_enorm", "pre_fc_norm_embedding.weight", (d,)),
                              ("mtp_hnorm", "pre_fc_norm_hidden.weight", (d,)), ("mtp_eh_proj", "fc.weight", (d, 2 * d))):
        if j == 0:
            yield WeightEntry("mtp." + name, shape, MTP, MTP_PROJ, role, i, optional=True)
    layer = t.name("attn_norm", i).split(f".{i}.")[0] + f".{i}."  # e.g. model.layers.48.
    for e in _layer(t, i, MTP):
        yield WeightEntry(e.name.replace(layer, f"mtp.layers.{j}.", 1), e.shape, MTP, e.group, e.role, e.layer,
                          expert=e.expert, parameter=e.parameter, optional=True)
    if j == t.mtp_layers - 1:
        yield WeightEntry("mtp.norm.weight", (d,), MTP, MTP_HEAD, "mtp_head_norm", i, optional=True)


def text_inventory(t: TextSpec) -> list[WeightEntry]:
    """Every tensor of a decoder LLM, tied LM head included (with stored=False)."""
    embed = t.name("embed")
    out = [WeightEntry(embed, (t.vocab_size, t.hidden_size), LM, EMBED, "embed")]
    if t.learned_positions:
        out.append(WeightEntry(t.name("pos_embed"), (t.max_position_embeddings, t.hidden_size), LM, POS_EMBED,
                               "pos_embed"))
    for i in range(t.num_layers):
        out.extend(_layer(t, i))
    out.extend(_layer_norms(t, None, LM, ("final_norm",)))
    if t.per_layer is not None:
        out.extend(gemma_model_extras(t))
    tied = embed if t.tie_embeddings else None
    out.append(WeightEntry(t.name("lm_head", suffix=".weight"), (t.vocab_size, t.hidden_size), LM, HEAD,
                           "lm_head", stored=not tied, tied_to=tied))
    if t.lm_head_bias:
        out.append(WeightEntry(t.name("lm_head", suffix=".bias"), (t.vocab_size,), LM, HEAD, "lm_head.bias"))
    mtp = _qwen_mtp if t.mtp_naming == "qwen" else _mtp
    for i in range(t.num_layers, t.num_layers + t.mtp_layers):
        out.extend(mtp(t, i))
    return out
