"""The decoder LLM's spec: a frozen record of everything downstream needs from a (text) config.

`text_spec_from_reader(reader, family)` reads the fields, applies the family's differences
(`inspector.spec.families`) and works out derived values once (head_dim, kv groups, widths, which
layers are mixture-of-experts layers, each layer's attention window). The parts a decoder layer is
made of are plain fields (`attention`, `mlp`); its norms are the records of `inspector.spec.norms`
(`norm`, `placement`, `qk_norm_kind`), looked up once here, so a family naming a norm that the
tables lack is refused when its config is read. Mixture of experts and multi-head latent attention
are sub-records (`moe`, `mla`) that are None for other families.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from inspector.errors import InspectError
from inspector.limits import MAX_MTP_LAYERS
from inspector.spec.config_reader import ConfigReader, flag, token_ids
from inspector.spec.families import FAMILIES, Family
from inspector.spec.layers import (
    IndexerSpec, LinearAttnSpec, MLASpec, MoESpec, read_indexer, read_kda, read_layer_types, read_linear_attention,
    read_mla, read_moe, read_no_rope_layers,
)
from inspector.spec.per_layer import PerLayerSpec, read_per_layer
from inspector.spec.norms import NORMS, PLACEMENTS, NormKind, Placement, QKNorm, norm_kind, placement, qk_norm
from inspector.spec.rope import read_rope
from inspector.spec.ssm import SSM_KINDS, MupSpec, ff_width, read_blocks, read_mup, read_ssm


# The deepest model this tool answers for: every layer is a row of tensors, and real models have a
# few hundred; a config asking for a billion is refused rather than listed.
MAX_LAYERS = 100_000


@dataclass(frozen=True)
class TextSpec:
    """A decoder LLM, family differences already resolved to plain fields."""

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int  # the dense MLP width (dense layers of MoE models)
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tie_embeddings: bool
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    rms_norm_eps: float  # the eps of whichever norm the family uses
    rope_theta: float
    max_position_embeddings: int
    hidden_act: str = "silu"
    attention: str = "qkv"  # families.ATTENTION_KINDS
    mlp: str = "gated"  # families.MLP_KINDS
    norm: NormKind = NORMS["rms"]
    placement: Placement = PLACEMENTS["pre"]
    qk_norm_kind: QKNorm | None = None  # a norm of q and k before RoPE, per head or over all heads
    lm_head_bias: bool = False
    learned_positions: bool = False
    transposed_linears: bool = False
    embed_scale: bool = False
    attention_sinks: bool = False
    partial_rotary_factor: float = 1.0
    rope_scaling: Mapping[str, Any] | None = field(default=None, compare=False)
    rope_local_theta: float | None = None  # Gemma 3's sliding layers
    sliding_window: int | None = None
    layer_types: tuple[str, ...] = ()  # per layer: "full" | "sliding" | "chunked"; () = all full
    no_rope_layers: tuple[int, ...] = ()  # layers that skip RoPE (SmolLM3, Llama 4)
    attn_softcap: float | None = None  # Gemma 2: tanh soft-capping of attention scores
    final_softcap: float | None = None  # Gemma 2: tanh soft-capping of the logits
    query_pre_attn_scalar: float | None = None  # Gemma 2/3: scores scaled by its -1/2 power
    multipliers: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # embedding, attention, residual, logits
    moe: MoESpec | None = None
    mla: MLASpec | None = None
    mtp_layers: int = 0  # DeepSeek-V3's multi-token-prediction module: stored, not part of the model
    mtp_naming: str = "deepseek"  # "deepseek": model.layers.{L+j}.*; "qwen": mtp.fc, mtp.layers.{j}.*, mtp.norm
    linear: LinearAttnSpec | None = None  # hybrid families: the Gated DeltaNet / Mamba2 / short-conv layers and sizes
    blocks: tuple[str, ...] = ()  # Nemotron-H: each layer's one block ("linear" | "attention" | "mlp" | "moe")
    mup: MupSpec | None = None  # Falcon-H1's muP multipliers
    attn_output_gate: bool = False  # Qwen3-Next: q_proj yields q and a gate; o_proj(attn * sigmoid(gate))
    indexer: IndexerSpec | None = None  # DeepSeek-V3.2: the lightning indexer of every MLA layer
    per_layer: PerLayerSpec | None = None  # Gemma 3n / 4: per-layer sizes, shared KV, PLE, AltUp
    # -- attention details only the reference forward pass reads (families.Family has their sources) --
    rope_interleaved: bool = False  # RoPE rotates pairs (2i, 2i+1) (GLM-4, Cohere 2, Llama 4, DeepSeek-V3)
    attention_chunk: int | None = None  # Llama 4: "chunked" layers attend within chunks of this size
    qk_l2_norm: bool = False  # Llama 4: weightless L2 (RMS) norm of q and k per head, RoPE layers only
    qk_norm_after_rope: bool = False  # Hunyuan: the per-head q/k norms follow RoPE
    attn_temperature: tuple[float, float] | None = None  # Llama 4 NoPE layers: (attn_scale, floor_scale)
    prefix: str = ""
    names: Mapping[str, str] = field(default_factory=lambda: FAMILIES["llama"].names, repr=False, compare=False)
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    torch_dtype: str | None = field(default=None, compare=False)  # storage, not architecture
    # derived, filled in __post_init__
    q_dim: int = field(init=False)
    kv_dim: int = field(init=False)
    kv_groups: int = field(init=False)

    def __post_init__(self) -> None:
        assert self.num_heads % self.num_kv_heads == 0, "checked by text_spec_from_reader"
        q_head = self.mla.qk_head_dim if self.mla else self.head_dim
        object.__setattr__(self, "q_dim", self.num_heads * q_head)
        object.__setattr__(self, "kv_dim", self.num_kv_heads * self.head_dim)
        object.__setattr__(self, "kv_groups", self.num_heads // self.num_kv_heads)

    # the first version's flags, derived from the parts
    @property
    def qk_norm(self) -> bool:
        return self.qk_norm_kind is not None

    @property
    def fused_qkv(self) -> bool:
        return self.attention in ("qkv_fused", "qkv_grouped", "qkv_per_head")

    @property
    def fused_gate_up(self) -> bool:
        return self.mlp == "gated_fused"

    @property
    def attn_out_dim(self) -> int:
        """Width of the concatenated heads that W_o maps back to d."""
        return self.num_heads * (self.mla.v_head_dim if self.mla else self.head_dim)

    def is_linear_layer(self, layer: int) -> bool:
        """A layer with a linear-attention / state-space mixer (Gated DeltaNet, Mamba2, short convolution): it
        keeps a fixed state (and, in Falcon-H1's parallel layers, a KV cache beside it)."""
        return self.linear is not None and layer in self.linear.layers

    def has_attention(self, layer: int) -> bool:
        """A layer with softmax attention, hence a KV cache."""
        if self.blocks:
            return self.blocks[layer] == "attention"
        return not self.is_linear_layer(layer) or self.linear.parallel

    def has_feed_forward(self, layer: int) -> bool:
        """A layer with an MLP or experts (all of them, except Nemotron-H's mixer-only blocks)."""
        return not self.blocks or self.blocks[layer] in ("mlp", "moe")

    @property
    def kv_layers(self) -> tuple[int, ...]:
        """The layers that keep a KV cache (those with attention, Gemma's KV-shared ones left out)."""
        p = self.per_layer
        return tuple(i for i in range(self.num_layers) if self.has_attention(i) and not (p and p.is_shared(i)))

    def layer_head_dim(self, layer: int) -> int:
        return self.per_layer.head_dims[layer] if self.per_layer else self.head_dim

    def layer_kv_heads(self, layer: int) -> int:
        return self.per_layer.kv_heads[layer] if self.per_layer else self.num_kv_heads

    def mlp_width(self, layer: int) -> int:
        """The dense MLP width of `layer` (Gemma 3n lists one per layer; Gemma 4 doubles the KV-shared ones)."""
        return self.per_layer.widths[layer] if self.per_layer else self.intermediate_size

    def at_layer(self, layer: int) -> "TextSpec":
        """This spec with `layer`'s head_dim, kv heads and MLP width as the plain fields (Gemma 3n / 4)."""
        if self.per_layer is None:
            return self
        return replace(self, head_dim=self.layer_head_dim(layer), num_kv_heads=self.layer_kv_heads(layer),
                       intermediate_size=self.mlp_width(layer))

    def is_moe_layer(self, layer: int) -> bool:
        return self.moe is not None and layer in self.moe.layer_set

    def window(self, layer: int) -> int | None:
        """The attention window of `layer` (None: it sees the whole context)."""
        if self.layer_types:
            return self.sliding_window if self.layer_types[layer] != "full" else None
        return self.sliding_window

    def chunk(self, layer: int) -> int | None:
        """The attention chunk of a "chunked" layer (keys only from the query's own chunk), else None."""
        return self.attention_chunk if self.layer_types and self.layer_types[layer] == "chunked" else None

    def name(self, role: str, layer: int | None = None, suffix: str = "", expert: int | None = None) -> str:
        """Checkpoint name of a tensor role, e.g. name("q", 3, ".weight")."""
        return (self.prefix + self.names[role] + suffix).format(i=layer, e=expert)


# --------------------------------------------------------------------------- reading


def _get(r: ConfigReader, family: Family, fieldname: str, kind: str, default: Any = None, **kw: Any) -> Any:
    """A standard field under whichever config key the family uses, else its class default."""
    return r.first(family.config_keys(fieldname), kind, family.defaults, default, **kw)


def _switch(r: ConfigReader, family: Family, setting: bool | str) -> bool:
    if isinstance(setting, str) and not r.has(setting) and setting in family.defaults:
        return bool(family.defaults[setting])
    return flag(r, setting)


def _heads(r: ConfigReader, family: Family, hidden: int) -> tuple[int, int, int]:
    heads = _get(r, family, "num_heads", "int")
    if r.has("head_dim") or "head_dim" in family.defaults:
        head_dim = r.int("head_dim") if r.has("head_dim") else family.defaults["head_dim"]
    else:
        if hidden % heads and not family.head_dim_floor:
            raise InspectError(
                f"{r.where}: hidden_size ({hidden}) is not a multiple of "
                f"num_attention_heads ({heads}) and no head_dim is given"
            )
        head_dim = hidden // heads
    kv_heads = _get(r, family, "num_kv_heads", "int", heads)
    if heads % kv_heads:
        raise InspectError(
            f"{r.where}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv_heads})"
        )
    return heads, kv_heads, head_dim


def _placement(r: ConfigReader, family: Family) -> Placement:
    """The family's norm placement; GPT-NeoX's `use_parallel_residual: false` turns its parallel
    block into a plain pre-norm one."""
    place = placement(family.placement, f"family '{family.model_type}'")
    if place.parallel and r.raw("use_parallel_residual", True) is False:
        return PLACEMENTS["pre"]
    return place


def _qk_norm(r: ConfigReader, family: Family) -> QKNorm | None:
    """The family's q/k norm, unless its config switch (Phi's `qk_layernorm`) leaves it off."""
    kind = qk_norm(family.qk_norm, f"family '{family.model_type}'")
    return None if family.qk_norm_switch and not r.bool(family.qk_norm_switch, False) else kind


def _sliding_window(r: ConfigReader) -> int | None:
    """The window, when one is used (Qwen's `use_sliding_window: false` switches it off, whatever
    `sliding_window` says); a window in use holds at least one token."""
    r.used.add("sliding_window")
    if r.cfg.get("sliding_window") is None or r.raw("use_sliding_window", True) is False:
        return None
    return r.int("sliding_window")


def _multipliers(r: ConfigReader) -> tuple[float, float, float, float]:
    """Granite's embedding/attention/residual multipliers and logits divisor, Cohere's logit scale."""
    logits = 1.0 / r.float("logits_scaling") if r.has("logits_scaling") else \
        r.float("logit_scale", r.float("lm_head_multiplier", 1.0))  # (Falcon-H1's lm_head_multiplier)
    return (r.float("embedding_multiplier", 1.0), r.float("attention_multiplier", 0.0) or 0.0,
            r.float("residual_multiplier", 1.0), logits)


def _temperature(r: ConfigReader, family: Family) -> tuple[float, float] | None:
    """Llama 4's attention temperature tuning of NoPE layers: (attn_scale, floor_scale), or None."""
    if not family.temperature_tuning or not _switch(r, family, "attn_temperature_tuning"):
        return None
    return _get(r, family, "attn_scale", "float"), float(_get(r, family, "floor_scale", "int"))


def _bos_id(r: ConfigReader, family: Family, vocab: int) -> int | None:
    """bos_token_id: a token id inside the vocabulary (the id is fed to the model first: past the
    vocabulary it has no embedding row), except the family's transformers class default, which a
    config saved from the class with a smaller vocabulary carries (StarCoder2's lies past its own).
    eos_token_id is not held to this: transformers' defaults put it past small vocabularies in
    many families (OLMo 2, Phi-3, GLM-4...), and it is only compared with generated ids."""
    ids = token_ids(r, "bos_token_id")
    if ids and ids[0] >= vocab and ids[0] != family.defaults.get("bos_token_id"):
        raise r.fail("bos_token_id", f"must be a token id below vocab_size ({vocab:,})", r.raw("bos_token_id"))
    return ids[0] if ids else None


def _softcap(r: ConfigReader, key: str) -> float | None:
    return r.float(key) if r.has(key) else None


def text_spec_from_reader(r: ConfigReader, family: Family, prefix: str = "") -> TextSpec:
    """Read a decoder LLM's fields with `family`'s differences applied."""
    hidden = _get(r, family, "hidden_size", "int")
    blocks, layers = _layer_count(r, family)
    heads, kv_heads, head_dim = _heads(r, family, hidden)
    mla = read_mla(r) if family.attention == "mla" else None
    moe = _block_moe(read_moe(r, family, layers, hidden), blocks) if family.moe and _moe_switch(r, family) else None
    theta, scaling, local_theta, partial = _rope(r, family, mla.qk_rope_head_dim if mla else head_dim)
    sliding = _sliding_window(r)
    per_layer = _per_layer(r, family, layers, sliding, head_dim, kv_heads)
    inter = per_layer.widths[0] if per_layer else _get(r, family, "dense_intermediate" if moe else "intermediate_size",
                                                       "int", 4 * hidden if family.learned_positions else None)
    inter = ff_width(r, inter) if family.auto_ff_dim else inter
    for key in ("max_window_layers", "attention_dropout", "initializer_range", "use_cache",
                "architectures", "transformers_version", "model_type", "_name_or_path"):
        r.used.add(key)
    vocab = _get(r, family, "vocab_size", "int")
    bos, eos = _bos_id(r, family, vocab), token_ids(r, "eos_token_id")
    linear = (read_kda(r, family, layers) if family.linear_attention == "kda" else
              read_ssm(r, family, hidden, layers, blocks) if family.linear_attention in SSM_KINDS else
              read_linear_attention(r, family, layers) if family.linear_attention else None)
    layer_types = () if linear else read_layer_types(r, layers, family.sliding_pattern if sliding else 0)
    if per_layer is not None:
        layer_types = _gemma_types(r, family, layers, sliding)
    no_rope = _no_rope(r, family, layers, layer_types)
    chunk = _get(r, family, "attention_chunk_size", "int", 0) if family.chunked_attention else 0
    if chunk and not r.has("layer_types"):  # Llama 4: RoPE layers are chunked, NoPE layers global
        layer_types = tuple("full" if i in no_rope else "chunked" for i in range(layers))
    return TextSpec(
        model_type=family.model_type, vocab_size=vocab, hidden_size=hidden,
        intermediate_size=inter, num_layers=layers, num_heads=heads, num_kv_heads=kv_heads,
        head_dim=mla.qk_head_dim if mla else head_dim,
        tie_embeddings=r.bool("tie_word_embeddings", bool(family.defaults.get("tie_word_embeddings", False))),
        qkv_bias=_switch(r, family, family.qkv_bias), o_bias=_switch(r, family, family.o_bias),
        mlp_bias=_switch(r, family, family.mlp_bias), lm_head_bias=_switch(r, family, family.lm_head_bias),
        rms_norm_eps=_get(r, family, "norm_eps", "float", 1e-6),
        rope_theta=theta, max_position_embeddings=_get(r, family, "max_position_embeddings", "int", 2048),
        hidden_act=_get(r, family, "hidden_act", "str", "silu"),
        attention=family.attention, mlp=family.mlp, norm=norm_kind(family.norm, f"family '{family.model_type}'"),
        placement=_placement(r, family), qk_norm_kind=_qk_norm(r, family), learned_positions=family.learned_positions,
        transposed_linears=family.transposed_linears, embed_scale=family.embed_scale,
        attention_sinks=family.attention_sinks, partial_rotary_factor=partial,
        rope_scaling=scaling, rope_local_theta=local_theta, sliding_window=sliding,
        layer_types=layer_types, no_rope_layers=no_rope,
        attn_softcap=_softcap(r, "attn_logit_softcapping"), final_softcap=_softcap(r, "final_logit_softcapping"),
        query_pre_attn_scalar=_softcap(r, "query_pre_attn_scalar"), multipliers=_multipliers(r),
        linear=linear, attn_output_gate=family.attn_output_gate, per_layer=per_layer, blocks=blocks,
        mup=read_mup(r) if family.mup else None,
        moe=moe, mla=mla, mtp_layers=_mtp_layers(r, family, mla is not None),
        indexer=read_indexer(r, family, mla.qk_rope_head_dim) if family.indexer and mla else None,
        mtp_naming="qwen" if family.mtp_keys else "deepseek",
        rope_interleaved=_switch(r, family, family.rope_interleaved), attention_chunk=chunk or None,
        qk_l2_norm=bool(family.qk_l2_norm) and _switch(r, family, family.qk_l2_norm),
        attn_temperature=_temperature(r, family), qk_norm_after_rope=family.qk_norm_after_rope,
        prefix=prefix, names=family.names,
        bos_token_id=bos, eos_token_ids=eos,
        torch_dtype=_dtype_name(r),
    )


def _rope(r: ConfigReader, family: Family, rope_dim: int) -> tuple:
    """read_rope with the family's rules: Gemma 3n / 4's class RoPE defaults for a sparse config, the family's
    partial-rotary default, and OLMo 3's plain (unscaled) sliding layers when a legacy scaling applies to the rest."""
    _rope_defaults(r, family)
    theta, scaling, local_theta, partial = read_rope(r, rope_dim, _partial_default(r, family, rope_dim))
    if family.sliding_rope_plain and scaling and local_theta is None:  # OLMo 3: YaRN on the full layers only
        local_theta = theta
    return theta, scaling, local_theta, partial


def _partial_default(r: ConfigReader, family: Family, head_dim: int) -> float:
    """The rotary fraction when the config names none: MiniMax-M2's legacy `rotary_dim` (rotated dimensions of
    a head; transformers MiniMaxM2Config turns it into rotary_dim / head_dim), else the family's class default."""
    keys = family.keys.get("rotary_dim", ())
    if keys and r.has(keys[0]):
        return r.int(keys[0], minimum=1) / head_dim
    return family.defaults.get("partial_rotary_factor", 1.0)


_ROPE_KEYS = ("rope_parameters", "rope_theta", "rope_local_base_freq")
_READ_AS_WRITTEN = ("sliding_window", "final_logit_softcapping")  # read from the config only, not its family


def _rope_defaults(r: ConfigReader, family: Family) -> None:
    """Gemma 3n / 4: a sparse config gets the class defaults of the keys read from the config alone: the
    RoPE settings when `rope_parameters` is absent (Gemma 4's per-layer-type parameters, Gemma 3n's global
    and local bases), the sliding window and the logit soft-cap (Gemma 3n: 30)."""
    if not family.per_layer:
        return
    keys = _READ_AS_WRITTEN + (() if r.has("rope_parameters") else _ROPE_KEYS)
    added = {k: family.defaults[k] for k in keys if k in family.defaults and k not in r.cfg}
    if added:
        r.cfg = {**r.cfg, **added}


def _moe_switch(r: ConfigReader, family: Family) -> bool:
    """Gemma 4 has experts only with `enable_moe_block` (whatever num_experts says); other MoE families always."""
    if not family.per_layer:
        return True
    for key in ("num_experts", "top_k_experts", "moe_intermediate_size"):
        r.used.add(key)
    enabled = r.bool("enable_moe_block", False)
    if enabled and not r.has("num_experts"):  # transformers' Gemma4TextExperts needs it
        raise r.fail("enable_moe_block", "needs num_experts (and top_k_experts, moe_intermediate_size)", True)
    return enabled


def _gemma_types(r: ConfigReader, family: Family, layers: int, sliding: int | None) -> tuple[str, ...]:
    """Gemma 3n / 4 layer types; Gemma 4 forces its last layer to full attention (Gemma4TextConfig.__post_init__)."""
    types = read_layer_types(r, layers, family.sliding_pattern if sliding else 0) or ("full",) * layers
    if family.global_heads and types[-1] != "full":
        types = types[:-1] + ("full",)
    return () if all(t == "full" for t in types) else types


def _per_layer(r: ConfigReader, family: Family, layers: int, sliding: int | None, head_dim: int,
               kv_heads: int) -> PerLayerSpec | None:
    """Gemma 3n / 4's per-layer record (None for other families)."""
    if not family.per_layer:
        return None
    for key in ("altup_coef_clip", "altup_lr_multiplier", "query_pre_attn_scalar", "use_bidirectional_attention",
                "pad_token_id", "vocab_size_per_layer_input", "expert_intermediate_size"):
        r.used.add(key)  # training-only clip; scores are unscaled (scaling 1.0) whatever the scalar says
    if r.raw("use_bidirectional_attention") == "all":  # Gemma 4 as an encoder: no causal mask, window (w // 2) + 1
        raise r.fail("use_bidirectional_attention", "'all' (bidirectional text attention) is not supported", "all")
    return read_per_layer(r, family, _gemma_types(r, family, layers, sliding) or ("full",) * layers,
                          head_dim, kv_heads)


def _layer_count(r: ConfigReader, family: Family) -> tuple[tuple[str, ...], int]:
    """(Nemotron-H's block pattern or (), the number of layers): a block pattern's length is the layer count."""
    blocks = read_blocks(r) if family.single_block else ()
    if len(blocks) > MAX_LAYERS:
        raise InspectError(f"{r.where}: {len(blocks):,} layers in the block pattern, more than {MAX_LAYERS:,}")
    return blocks, len(blocks) if blocks else _get(r, family, "num_layers", "int", maximum=MAX_LAYERS)


def _no_rope(r: ConfigReader, family: Family, layers: int, layer_types: tuple[str, ...]) -> tuple[int, ...]:
    """The layers that skip RoPE: the config's list, or every layer by the family's rule."""
    listed = read_no_rope_layers(r, layers, family)  # (read in every case: its keys are the config's)
    if family.nope_unless_rope and r.raw("position_embedding_type") != "rope":  # Granite 4.0-H: NoPE
        return tuple(range(layers))
    if family.rope_on == "sliding":  # Cohere 2: only the sliding-window layers rotate
        return tuple(i for i in range(layers) if not layer_types or layer_types[i] == "full")
    if family.rope_on == "none":  # Kimi Linear: no layer rotates (its MLA is NoPE)
        return tuple(range(layers))
    return listed


def _block_moe(moe: MoESpec | None, blocks: tuple[str, ...]) -> MoESpec | None:
    """Nemotron-H: the experts sit in the "moe" blocks only (None when no block is one)."""
    if moe is None or not blocks:
        return moe
    layers = tuple(i for i, b in enumerate(blocks) if b == "moe")
    return replace(moe, layers=layers) if layers else None


def _mtp_layers(r: ConfigReader, family: Family, mla: bool) -> int:
    """Multi-token-prediction layers stored beside the model: DeepSeek's num_nextn_predict_layers (MLA
    families), or the first of the family's `mtp_keys` (Qwen3-Next, Qwen3.5; 1 when none is given)."""
    if family.mtp_keys:
        return r.first(family.mtp_keys, "int", None, 1, minimum=0, maximum=MAX_MTP_LAYERS)
    deepseek_layout = mla or "mtp_eh_proj" in family.names  # GLM-4.5 stores its MTP layer as DeepSeek does
    return r.int("num_nextn_predict_layers", 0, minimum=0, maximum=MAX_MTP_LAYERS) if deepseek_layout else 0


def _dtype_name(r: ConfigReader) -> str | None:
    """`torch_dtype` (transformers 4) or `dtype` (transformers 5), when it is a string (both are
    read, so FIELD_RULES checks whichever the config holds)."""
    values = [r.raw(key) for key in ("torch_dtype", "dtype")]
    return next((v for v in values if isinstance(v, str)), None)
