"""What varies from layer to layer, and the two sub-records of the text spec: experts and latent attention.

`MoESpec`: how many experts, how many a token uses, their width, shared experts, and which layers
have experts at all (the families' rules: Qwen's `decoder_sparse_step` and `mlp_only_layers`,
DeepSeek's `first_k_dense_replace`, Llama 4's `moe_layers` / `interleave_moe_layer_step`).
`RoutingSpec` (inside MoESpec): how the router turns logits into top-k weights, read only by the
reference forward pass. `MLASpec`: DeepSeek's multi-head latent attention ranks. `read_layer_types`: each layer's attention
(full, sliding window, chunked), from `layer_types` or the family's alternation rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inspector.errors import InspectError
from inspector.limits import MAX_EXPERT_INSTANCES, MAX_EXPERTS, MAX_SHARED_EXPERTS
from inspector.spec.config_reader import ConfigReader
from inspector.spec.families import Family

@dataclass(frozen=True)
class RoutingSpec:
    """How a router picks and weighs its experts (inspector.reference.moe applies the rule).

    `rule` (families.ROUTING_RULES): softmax over all experts then top-k (Qwen, OLMoE), top-k logits
    then softmax over those k (Mixtral, gpt-oss), DeepSeek-V3's sigmoid scores with a selection bias
    and grouped top-k, Llama 4's sigmoid of the top-k logits, PhiMoE's sparsemixer.
    """

    rule: str = "softmax_topk"
    norm_topk_prob: bool = False  # renormalise the k weights to sum to 1
    n_group: int = 1  # DeepSeek-V3: experts split into groups, the best `topk_group` groups kept
    topk_group: int = 1
    scaling: float = 1.0  # routed_scaling_factor: the routed experts' weights multiplied by it
    jitter_eps: float = 0.0  # PhiMoE's sparsemixer threshold (router_jitter_noise)
    weight_input: bool = False  # Llama 4: the weight scales the expert's input, not its output
    expert_act: str = "gated"  # families.EXPERT_ACTIVATIONS
    swiglu_alpha: float = 1.702  # gpt-oss clamped SwiGLU: gate * sigmoid(alpha * gate) * (up + 1)
    swiglu_limit: float = 7.0  # gate clamped above, up clamped to [-limit, limit]


@dataclass(frozen=True)
class MoESpec:
    """A mixture-of-experts block: `top_k` of `num_experts` routed experts per token, plus shared ones."""

    num_experts: int
    top_k: int | None  # None: the config does not say (no active-parameter count then)
    expert_intermediate: int
    shared_intermediate: int  # total width of the shared expert(s); 0 = none
    shared_expert_gate: bool  # Qwen2-MoE: sigmoid(x W) scales the shared expert
    router_bias: bool
    expert_bias: bool
    score_bias: bool  # DeepSeek-V3's e_score_correction_bias (a stored buffer)
    fused: bool  # the checkpoint stores a layer's experts as one tensor
    layers: tuple[int, ...]  # indices of the layers that have experts
    routing: RoutingSpec = RoutingSpec()
    shared_bias: bool = False  # the shared experts have the MLP's biases when it has them (ERNIE 4.5)
    score_bias_param: bool = False  # the selection bias is stored as a frozen (1, E) parameter (ERNIE 4.5)
    gated: bool = True  # False: up/down experts (Nemotron-H's relu2), no gate projection
    fused_out_in: bool = False  # fused experts stored (E, out, in) (Granite), not (E, in, out) (gpt-oss, Llama 4)
    latent: int = 0  # Nemotron-H's moe_latent_size: experts read and write this width, projected from and back to d
    layer_set: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer_set", frozenset(self.layers))


@dataclass(frozen=True)
class MLASpec:
    """Multi-head latent attention: q and kv go through low-rank latents; the cache holds the kv latent."""

    q_lora_rank: int  # 0: q is projected directly
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim


def _layer_list(r: ConfigReader, key: str, layers: int) -> list[int]:
    value = r.raw(key, [])
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise InspectError(f"{r.where}: field '{r._field(key)}' must be a list of layer indices, got {value!r}")
    bad = [i for i in value if not 0 <= i < layers]
    if bad:
        raise InspectError(f"{r.where}: field '{r._field(key)}' names layer {bad[0]}, but there are {layers} layers")
    return value


def _moe_layers(r: ConfigReader, layers: int, family: Family) -> tuple[int, ...]:
    """Which layers have experts; every rule the families use, applied when its key is present
    (`mlp_layer_types`: one "dense" or "sparse" per layer, DeepSeek-V3.2's and Kimi Linear's list)."""
    if r.has("moe_layers"):
        return tuple(sorted(set(_layer_list(r, "moe_layers", layers))))
    if r.has("mlp_layer_types"):
        return _sparse_layers(r, layers)
    step = r.first(("interleave_moe_layer_step", "moe_layer_interval"), "int", family.defaults, 1)
    sparse = r.int("decoder_sparse_step", 1)
    dense_only = set(_layer_list(r, "mlp_only_layers", layers))
    first_dense = r.first(("first_k_dense_replace",), "int", family.defaults, 0, minimum=0)
    start, end = _moe_span(r, family, layers)
    return tuple(i for i in range(layers)
                 if (i + 1) % step == 0 and (i + 1) % sparse == 0 and i not in dense_only and i >= first_dense
                 and start <= i <= end)


def _moe_span(r: ConfigReader, family: Family, layers: int) -> tuple[int, int]:
    """ERNIE 4.5's rule: experts from moe_layer_start_index to moe_layer_end_index (inclusive), every
    moe_layer_interval-th layer (read into the interleave step); else every layer."""
    if "moe_layer_start_index" not in family.defaults:
        return 0, layers
    start = r.first(("moe_layer_start_index",), "int", family.defaults, 0, minimum=0)
    end = r.first(("moe_layer_end_index",), "int", family.defaults, 0, minimum=-1)
    return start, layers - 1 if end == -1 else end


def _sparse_layers(r: ConfigReader, layers: int) -> tuple[int, ...]:
    value = r.raw("mlp_layer_types")
    if not isinstance(value, list) or len(value) != layers or any(v not in ("dense", "sparse") for v in value):
        raise InspectError(f"{r.where}: field '{r._field('mlp_layer_types')}' must list {layers} of dense, sparse, "
                           f"got {str(value)[:80]}")
    return tuple(i for i, v in enumerate(value) if v == "sparse")


def read_moe(r: ConfigReader, family: Family, layers: int, hidden: int) -> MoESpec | None:
    """The experts of an MoE family's config; None when it has none (num_experts 0)."""
    assert family.moe is not None
    experts = _every_layer(r, family, "num_experts", 0, minimum=0, maximum=MAX_EXPERTS)
    if experts == 0:
        return None
    top_k = _every_layer(r, family, "top_k", 0, minimum=1, maximum=MAX_EXPERTS) or None
    if top_k is not None and top_k > experts:
        key = next(k for k in family.config_keys("top_k") if r.has(k))
        raise InspectError(f"{r.where}: field '{r._field(key)}' ({top_k}) exceeds the number of experts ({experts})")
    width = r.first(family.config_keys("expert_intermediate"), "int", family.defaults)
    shared_keys = family.config_keys("n_shared_experts")  # Kimi Linear: num_shared_experts
    if family.moe.shared_key:  # Nemotron-H, Granite 4.0-H: the shared expert's own width key
        shared = r.first((family.moe.shared_key,), "int", family.defaults, 0, minimum=0)
    elif r.has("shared_expert_intermediate_size"):
        shared = r.int("shared_expert_intermediate_size", minimum=0)
    elif any(r.has(k) or k in family.defaults for k in shared_keys):
        shared = r.first(shared_keys, "int", family.defaults, 0, minimum=0, maximum=MAX_SHARED_EXPERTS) * width
    else:
        shared = width if family.moe.shared_expert else 0
    moe_layers = _moe_layers(r, layers, family)
    if len(moe_layers) * experts > MAX_EXPERT_INSTANCES:
        key = next(k for k in family.config_keys("num_experts") if r.has(k))
        raise InspectError(f"{r.where}: field '{r._field(key)}' ({experts:,}) times {len(moe_layers):,} expert "
                           f"layers is over {MAX_EXPERT_INSTANCES:,} experts in all")
    return MoESpec(experts, top_k, width, shared, family.moe.shared_expert_gate and shared > 0,
                   family.moe.router_bias, family.moe.expert_bias, family.moe.score_bias, family.moe.fused,
                   moe_layers, read_routing(r, family, experts), shared_bias=family.moe.shared_bias,
                   score_bias_param=family.moe.score_bias_param, gated=family.moe.gated,
                   fused_out_in=family.moe.fused_out_in,
                   latent=r.int(family.moe.latent_key) if family.moe.latent_key and r.has(family.moe.latent_key) else 0)


def _every_layer(r: ConfigReader, family: Family, fieldname: str, default: int, **kw) -> int:
    """An int field that Hunyuan may give per layer (`moe_topk: [8, 8, ...]`): a list of one repeated value is
    that value; different values per layer are refused in one line (every layer is built alike here)."""
    keys = family.config_keys(fieldname)
    key = next((k for k in keys if r.has(k)), None)
    value = r.raw(key) if key else None
    if not isinstance(value, list):
        return r.first(keys, "int", family.defaults, default, **kw)
    if not value or any(v != value[0] for v in value):
        raise r.fail(key, "must give one value for every layer (per-layer values are not supported)", value)
    return ConfigReader({key: value[0]}, r.where, r.path).int(key, **kw)


def _flag(r: ConfigReader, keys: tuple[str, ...], defaults) -> bool:
    """The first of `keys` present (true or false), else the family's default for it, else False."""
    key = next((k for k in keys if r.has(k)), None)
    if key is not None:
        return r.bool(key, False)
    return bool(next((defaults[k] for k in keys if k in defaults), False))


def read_routing(r: ConfigReader, family: Family, experts: int) -> RoutingSpec:
    """The routing rule (family data) and its settings (config keys, else the family's defaults)."""
    m, d = family.moe, family.defaults

    def get(key: str, kind: str, default):
        return r.first(family.config_keys(key), kind, d, default)

    # DeepSeek-V2 groups its experts only with topk_method "group_limited_greedy" (transformers' default: "greedy")
    grouped = m.routing == "sigmoid_grouped" or (
        m.routing == "group_limited_greedy" and get("topk_method", "str", "greedy") == "group_limited_greedy")
    groups = get("n_group", "int", 1) if grouped else 1
    if experts % groups:
        raise InspectError(f"{r.where}: field '{r._field('n_group')}' ({groups}) does not divide the {experts} experts")
    kept_groups = get("topk_group", "int", 1) if groups > 1 else 1
    if kept_groups > groups:  # the router keeps the best topk_group of n_group groups
        raise InspectError(f"{r.where}: field '{r._field('topk_group')}' ({kept_groups}) exceeds "
                           f"'{r._field('n_group')}' ({groups})")
    return RoutingSpec(
        rule=m.routing, norm_topk_prob=_flag(r, family.config_keys("norm_topk_prob"), d),
        n_group=groups, topk_group=kept_groups,
        scaling=get("routed_scaling_factor", "float", 1.0), jitter_eps=get("router_jitter_noise", "float", 0.0),
        weight_input=m.weight_input, expert_act=m.expert_act,
        swiglu_alpha=get("swiglu_alpha", "float", 1.702), swiglu_limit=get("swiglu_limit", "float", 7.0),
    )


def read_mla(r: ConfigReader) -> MLASpec:
    q_rank = r.raw("q_lora_rank")
    return MLASpec(
        q_lora_rank=0 if q_rank is None else r.int("q_lora_rank"),
        kv_lora_rank=r.int("kv_lora_rank"), qk_nope_head_dim=r.int("qk_nope_head_dim"),
        qk_rope_head_dim=r.int("qk_rope_head_dim"), v_head_dim=r.int("v_head_dim"),
    )


_LAYER_TYPES = {"full_attention": "full", "sliding_attention": "sliding", "chunked_attention": "chunked",
                "indexed_attention": "full"}  # DeepSeek-V3.2: every layer full, keys picked by its indexer


def read_layer_types(r: ConfigReader, layers: int, pattern: int) -> tuple[str, ...]:
    """Each layer's attention: `layer_types` when given, else every `pattern`-th layer full."""
    value = r.raw("layer_types")
    if value is not None:
        if not isinstance(value, list) or len(value) != layers or any(v not in _LAYER_TYPES for v in value):
            raise InspectError(
                f"{r.where}: field '{r._field('layer_types')}' must list {layers} of "
                f"{', '.join(_LAYER_TYPES)}, got {str(value)[:80]}"
            )
        types = tuple(_LAYER_TYPES[v] for v in value)
        return () if all(t == "full" for t in types) else types
    pattern = r.int("sliding_window_pattern", pattern) if pattern else 0
    if not pattern:
        return ()
    return tuple("sliding" if (i + 1) % pattern else "full" for i in range(layers))


def read_no_rope_layers(r: ConfigReader, layers: int, family: Family | None = None) -> tuple[int, ...]:
    """Layers that skip RoPE: `no_rope_layers` holds one 0/1 flag per layer (0 = no RoPE); when it
    is absent or empty, every `no_rope_layer_interval`-th layer (a key Llama 4's class defaults)."""
    value = r.raw("no_rope_layers")
    if not value:
        defaults = family.defaults if family is not None else None
        interval = r.first(("no_rope_layer_interval",), "int", defaults, 0) if family is not None else 0
        return tuple(i for i in range(layers) if (i + 1) % interval == 0) if interval else ()
    if not isinstance(value, list) or len(value) != layers or any(v not in (0, 1) for v in value):
        raise InspectError(f"{r.where}: field '{r._field('no_rope_layers')}' must be {layers} flags of 0 or 1")
    return tuple(i for i, v in enumerate(value) if v == 0)


@dataclass(frozen=True)
class LinearAttnSpec:
    """Gated DeltaNet (Qwen3-Next, Qwen3.5): per layer a short causal depthwise convolution over
    q, k and v, then a delta-rule recurrence whose state is one (key_head_dim x value_head_dim)
    matrix per value head. A sequence keeps that state and the convolution's last inputs, not a
    KV cache (transformers' LinearAttentionLayer: conv_states, recurrent_states).

    Mamba2 (Nemotron-H, Granite 4.0-H, Falcon-H1) is the same record read as state-space duality reads it:
    C, B and x play q, k and v, so key heads = n_groups, key_head_dim = ssm_state_size, value heads = the
    Mamba heads, value_head_dim = their head dim; the convolution runs over x, B and C (conv_dim = inner +
    2 n_groups state) and the state is (heads, head_dim, state_size). LFM2's short convolution has no keys
    and one "value head" as wide as the model: conv_dim = hidden, no recurrent state."""

    kind: str  # families.LINEAR_ATTENTION_KINDS: "gdn_fused" | "gdn_split" | "kda" | "mamba2" | "shortconv"
    key_heads: int
    value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int
    layers: tuple[int, ...]  # the layers that are linear attention
    # -- Mamba2 and short-convolution mixers (inspector.spec.ssm reads them; Gated DeltaNet leaves the defaults) --
    conv_bias: bool = False  # the depthwise convolution has a bias
    proj_bias: bool = False  # in_proj has a bias
    out_bias: bool = False  # out_proj has a bias
    gated_norm: bool = True  # Mamba2: the gated RMS norm over the inner width before out_proj (Falcon-H1: optional)
    norm_groups: int = 1  # Mamba2: that norm normalises each of this many groups of the inner width on its own
    parallel: bool = False  # Falcon-H1: every layer runs attention and the mixer side by side
    norm_before_gate: bool = False  # Falcon-H1's mamba_norm_before_gate: norm(y) * SiLU(z), not norm(y * SiLU(z))

    @property
    def mixer_name(self) -> str:
        """What the reports call these layers."""
        return {"mamba2": "Mamba2", "shortconv": "short convolution", "kda": "Kimi Delta Attention"}.get(
            self.kind, "Gated DeltaNet")

    def recurrent_shape(self) -> tuple[int, ...]:
        """One layer's recurrent state of one sequence, as transformers holds it (() for a short convolution):
        Gated DeltaNet (value_heads, key_head_dim, value_head_dim); Mamba2 (heads, head_dim, state_size)."""
        if not self.key_heads:
            return ()
        if self.kind == "mamba2":
            return (self.value_heads, self.value_head_dim, self.key_head_dim)
        return (self.value_heads, self.key_head_dim, self.value_head_dim)

    @property
    def label(self) -> str:
        """What the layers are called in tables (= mixer_name): "Gated DeltaNet", "Kimi Delta Attention", ..."""
        return self.mixer_name

    @property
    def key_dim(self) -> int:
        return self.key_heads * self.key_head_dim

    @property
    def value_dim(self) -> int:
        return self.value_heads * self.value_head_dim

    @property
    def conv_dim(self) -> int:
        """The channels the convolution runs over: q, k and v side by side."""
        return 2 * self.key_dim + self.value_dim

    def conv_state_elements(self) -> int:
        """The convolution state of one sequence: conv_dim channels x conv_kernel positions (what
        transformers holds; vLLM and llama.cpp keep conv_kernel - 1 of them)."""
        return self.conv_dim * self.conv_kernel

    def recurrent_state_elements(self) -> int:
        """The delta-rule state of one sequence: value_heads matrices of key_head_dim x value_head_dim."""
        return self.value_heads * self.key_head_dim * self.value_head_dim


_MIXER_TYPES = ("full_attention", "linear_attention")


def read_linear_layers(r: ConfigReader, layers: int, defaults) -> tuple[int, ...]:
    """Which layers are linear attention: `layer_types` when given, else every
    `full_attention_interval`-th layer full (transformers Qwen3NextConfig's rule)."""
    value = r.raw("layer_types")
    if value is not None:
        if not isinstance(value, list) or len(value) != layers or any(v not in _MIXER_TYPES for v in value):
            raise InspectError(f"{r.where}: field '{r._field('layer_types')}' must list {layers} of "
                               f"{', '.join(_MIXER_TYPES)}, got {str(value)[:80]}")
        return tuple(i for i, v in enumerate(value) if v == "linear_attention")
    interval = r.first(("full_attention_interval",), "int", defaults, 4, minimum=1)
    return tuple(i for i in range(layers) if (i + 1) % interval)


def read_linear_attention(r: ConfigReader, family: Family, layers: int) -> LinearAttnSpec:
    """The Gated DeltaNet sizes (config keys, else the family's class defaults) and its layers."""
    d = family.defaults

    def get(key: str) -> int:
        return r.first((key,), "int", d, None, minimum=1)

    spec = LinearAttnSpec(family.linear_attention, get("linear_num_key_heads"), get("linear_num_value_heads"),
                          get("linear_key_head_dim"), get("linear_value_head_dim"), get("linear_conv_kernel_dim"),
                          read_linear_layers(r, layers, d))
    if spec.value_heads % spec.key_heads:
        raise InspectError(f"{r.where}: field '{r._field('linear_num_value_heads')}' ({spec.value_heads}) is not "
                           f"a multiple of 'linear_num_key_heads' ({spec.key_heads})")
    return spec


@dataclass(frozen=True)
class IndexerSpec:
    """DeepSeek Sparse Attention's lightning indexer (DeepSeek-V3.2, transformers DeepseekV32Indexer): per
    layer, `heads` query heads of `head_dim` from the q latent, one shared key of `head_dim` per token (a
    cache of its own), ReLU(q . k) weighted per head and summed; each query attends to its `topk` best keys.
    Its first `rope_dim` dimensions (qk_rope_head_dim) are rotated, rotate-half pairs."""

    heads: int
    head_dim: int
    topk: int
    rope_dim: int


def read_indexer(r: ConfigReader, family: Family, rope_dim: int) -> IndexerSpec:
    """The indexer's sizes: config keys, else transformers' DeepseekV32Config defaults (family data)."""
    def get(key: str) -> int:
        return r.first((key,), "int", family.defaults, None, minimum=1)

    spec = IndexerSpec(get("index_n_heads"), get("index_head_dim"), get("index_topk"), rope_dim)
    if spec.head_dim < rope_dim:
        raise InspectError(f"{r.where}: field '{r._field('index_head_dim')}' ({spec.head_dim}) is smaller than "
                           f"'qk_rope_head_dim' ({rope_dim})")
    return spec


def read_kda(r: ConfigReader, family: Family, layers: int) -> LinearAttnSpec:
    """Kimi Delta Attention (Kimi Linear): one head count and head dim for q, k and v, the short-conv kernel and
    which layers are KDA. The published config nests them in `linear_attn_config` (num_heads, head_dim,
    short_conv_kernel_size; kda_layers / full_attn_layers numbered from 1); transformers' KimiLinearConfig writes
    linear_num_heads, linear_head_dim, linear_conv_kernel_dim and `layer_types`, and without either list makes
    every layer KDA but layers 4, 8, 12, ... (counting from 0; its __post_init__), the family's class defaults."""
    sub = r.sub("linear_attn_config") if r.has("linear_attn_config") else None

    def get(nested: str, flat: str) -> int:
        if sub is not None and sub.has(nested):
            return sub.int(nested)
        return r.first((flat,), "int", family.defaults, None, minimum=1)

    heads, dim = get("num_heads", "linear_num_heads"), get("head_dim", "linear_head_dim")
    kernel = get("short_conv_kernel_size", "linear_conv_kernel_dim")
    if r.has("layer_types"):
        kda = read_linear_layers(r, layers, family.defaults)
    elif sub is not None and sub.has("kda_layers") and sub.has("full_attn_layers"):
        kda = tuple(sorted(i - 1 for i in _layer_list(sub, "kda_layers", layers + 1)))
        if -1 in kda:
            raise InspectError(f"{r.where}: field '{sub._field('kda_layers')}' numbers layers from 1, got 0")
    else:
        kda = tuple(i for i in range(layers) if not (i and i % 4 == 0))
    return LinearAttnSpec("kda", heads, heads, dim, dim, kernel, kda)
