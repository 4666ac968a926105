"""The decoder LLM's spec: a frozen record of everything downstream needs from a (text) config.

`text_spec_from_reader(reader, family)` reads the fields, applies the family's differences
(`inspector.spec.families`) and works out derived values once (head_dim, kv groups, widths).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from inspector.errors import InspectError
from inspector.spec.config_reader import ConfigReader, flag, token_ids
from inspector.spec.families import FAMILIES, Family
from inspector.spec.rope import read_rope


@dataclass(frozen=True)
class TextSpec:
    """A decoder LLM, family differences already resolved to plain fields."""

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tie_embeddings: bool
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    qk_norm: bool
    fused_qkv: bool
    fused_gate_up: bool
    qkv_layout: str
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    hidden_act: str = "silu"
    rope_scaling: Mapping[str, Any] | None = field(default=None, compare=False)
    sliding_window: int | None = None
    prefix: str = ""
    names: Mapping[str, str] = field(default_factory=lambda: FAMILIES["llama"].names, repr=False, compare=False)
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    torch_dtype: str | None = None
    # derived, filled in __post_init__
    q_dim: int = field(init=False)
    kv_dim: int = field(init=False)
    kv_groups: int = field(init=False)

    def __post_init__(self) -> None:
        assert self.num_heads % self.num_kv_heads == 0, "checked by text_spec_from_reader"
        object.__setattr__(self, "q_dim", self.num_heads * self.head_dim)
        object.__setattr__(self, "kv_dim", self.num_kv_heads * self.head_dim)
        object.__setattr__(self, "kv_groups", self.num_heads // self.num_kv_heads)

    def name(self, role: str, layer: int | None = None, suffix: str = "") -> str:
        """Checkpoint name of a tensor role, e.g. name("q", 3, ".weight")."""
        template = self.prefix + self.names[role] + suffix
        return template.format(layer) if layer is not None else template


def text_spec_from_reader(r: ConfigReader, family: Family, prefix: str = "") -> TextSpec:
    """Read a decoder LLM's fields with `family`'s differences applied."""
    hidden = r.int("hidden_size")
    heads = r.int("num_attention_heads")
    if r.has("head_dim"):
        head_dim = r.int("head_dim")
    else:
        if hidden % heads:
            raise InspectError(
                f"{r.where}: hidden_size ({hidden}) is not a multiple of "
                f"num_attention_heads ({heads}) and no head_dim is given"
            )
        head_dim = hidden // heads
    kv_heads = r.int("num_key_value_heads", heads)
    if heads % kv_heads:
        raise InspectError(
            f"{r.where}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv_heads})"
        )
    rope_theta, rope_scaling = read_rope(r, head_dim)
    sliding = r.raw("sliding_window")
    if sliding is not None and r.raw("use_sliding_window", True) is False:
        sliding = None
    for key in ("max_window_layers", "attention_dropout", "initializer_range", "use_cache",
                "architectures", "transformers_version", "model_type", "_name_or_path"):
        r.used.add(key)
    return TextSpec(
        model_type=family.model_type,
        vocab_size=r.int("vocab_size"),
        hidden_size=hidden,
        intermediate_size=r.int("intermediate_size"),
        num_layers=r.int("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        tie_embeddings=r.bool("tie_word_embeddings", False),
        qkv_bias=flag(r, family.qkv_bias),
        o_bias=flag(r, family.o_bias),
        mlp_bias=flag(r, family.mlp_bias),
        qk_norm=family.qk_norm,
        fused_qkv=family.fused_qkv,
        fused_gate_up=family.fused_gate_up,
        qkv_layout=family.qkv_layout,
        rms_norm_eps=r.float("rms_norm_eps", 1e-6),
        rope_theta=rope_theta,
        max_position_embeddings=r.int("max_position_embeddings", 2048),
        hidden_act=r.str("hidden_act", "silu"),
        rope_scaling=MappingProxyType(dict(rope_scaling)) if rope_scaling else None,
        sliding_window=sliding if isinstance(sliding, int) and not isinstance(sliding, bool) else None,
        prefix=prefix,
        names=family.names,
        bos_token_id=(token_ids(r, "bos_token_id") or (None,))[0],
        eos_token_ids=token_ids(r, "eos_token_id"),
        torch_dtype=r.raw("torch_dtype") if isinstance(r.raw("torch_dtype"), str) else None,
    )


