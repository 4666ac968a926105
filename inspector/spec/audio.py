"""Audio towers of multimodal models as data: an `AudioKind` lists its tensors, an `AudioSpec` is one read config.

An audio encoder kind is its tensors (before the layers, per layer, after), each a name template relative
to the wrapper's audio prefix, a shape in dimension symbols, and its table row; the symbols are resolved
once from `audio_config` (transformers' class defaults for what a sparse file leaves out). A "clipped"
linear is transformers' ClippableLinear: its weight under ".linear", and while the config's switch is on,
four stored scalar buffers (input/output min/max). The projection into the LLM (a wrapper's
`audio_projector_prefix`) is one linear from the tower's output width to the LLM's. Nothing downstream
branches on a kind's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from inspector.errors import InspectError
from inspector.spec.config_reader import ConfigReader

SUBSAMPLE, CONFORMER_FF, CONFORMER_ATTN = "Subsampling convolutions", "Conformer feed-forward", "Conformer attention"
CONFORMER_CONV, CONFORMER_NORM = "Conformer convolution", "Conformer norms"
AUDIO_OUT, AUDIO_PROJ = "Output projection", "Audio projection (into the LLM)"


@dataclass(frozen=True)
class AudioTensor:
    """One stored tensor: `template` under the audio prefix ("{}" = layer), `shape` in dimension symbols
    (AudioSpec.dims), `op` "weight" | "linear" | "clip" (ClippableLinear) | "bias"."""

    template: str
    shape: tuple[str, ...]
    row: str
    op: str = "weight"


@dataclass(frozen=True)
class AudioKind:
    kind: str
    description: str
    keys: Mapping[str, str] = field(hash=False)  # field -> audio_config key
    defaults: Mapping[str, Any] = field(hash=False)  # field -> transformers' class default
    stem: tuple[AudioTensor, ...]
    layer: tuple[AudioTensor, ...]
    head: tuple[AudioTensor, ...]
    projector: str = "embedding_projection"  # the linear into the LLM, under the wrapper's audio_projector_prefix


def _t(template: str, *shape: str, row: str = CONFORMER_FF, op: str = "weight") -> AudioTensor:
    return AudioTensor(template, tuple(shape), row, op)


_FF = tuple(t for i in (1, 2) for t in (
    _t(f"layers.{{}}.feed_forward{i}.ffw_layer_1", "ff", "d", op="clip"),
    _t(f"layers.{{}}.feed_forward{i}.ffw_layer_2", "d", "ff", op="clip"),
    _t(f"layers.{{}}.feed_forward{i}.pre_layer_norm.weight", "d"),
    _t(f"layers.{{}}.feed_forward{i}.post_layer_norm.weight", "d")))

# Gemma 4's USM-style conformer: transformers 5.25 models/gemma4/modeling_gemma4.py (Gemma4AudioModel:
# Gemma4AudioSubSampleConvProjection, Gemma4AudioLayer = two half-step feed-forwards, chunked attention
# with relative positions and a per-dimension scale, a light depthwise convolution; class defaults of
# Gemma4AudioConfig). The subsampler's input projection is (c0 // 4) * c1 wide as transformers builds it.
AUDIO_KINDS: Mapping[str, AudioKind] = MappingProxyType({k.kind: k for k in (
    AudioKind(
        "gemma4_audio", "USM conformer: two stride-2 conv layers, {layers} conformer layers (d {d}, {heads} heads, "
        "chunked local attention), output linear {d}->{out}",
        MappingProxyType(dict(d="hidden_size", layers="num_hidden_layers", heads="num_attention_heads",
                              channels="subsampling_conv_channels", kernel="conv_kernel_size",
                              out="output_proj_dims", clip="use_clipped_linears", eps="rms_norm_eps",
                              act="hidden_act")),
        MappingProxyType(dict(d=1024, layers=12, heads=8, channels=(128, 32), kernel=5, out=1536, clip=True,
                              eps=1e-6, act="silu")),
        stem=(_t("subsample_conv_projection.layer0.conv.weight", "c0", "one", "three", "three", row=SUBSAMPLE),
              _t("subsample_conv_projection.layer0.norm.weight", "c0", row=SUBSAMPLE),
              _t("subsample_conv_projection.layer1.conv.weight", "c1", "c0", "three", "three", row=SUBSAMPLE),
              _t("subsample_conv_projection.layer1.norm.weight", "c1", row=SUBSAMPLE),
              _t("subsample_conv_projection.input_proj_linear.weight", "d", "p_in", row=SUBSAMPLE)),
        layer=_FF + (
            _t("layers.{}.self_attn.per_dim_scale", "hd", row=CONFORMER_ATTN),
            *(_t(f"layers.{{}}.self_attn.{r}", "d", "d", row=CONFORMER_ATTN, op="clip")
              for r in ("q_proj", "k_proj", "v_proj", "post")),
            _t("layers.{}.self_attn.relative_k_proj.weight", "d", "d", row=CONFORMER_ATTN),
            _t("layers.{}.lconv1d.linear_start", "d2", "d", row=CONFORMER_CONV, op="clip"),
            _t("layers.{}.lconv1d.linear_end", "d", "d", row=CONFORMER_CONV, op="clip"),
            _t("layers.{}.lconv1d.depthwise_conv1d.weight", "d", "one", "kernel", row=CONFORMER_CONV),
            _t("layers.{}.lconv1d.pre_layer_norm.weight", "d", row=CONFORMER_CONV),
            _t("layers.{}.lconv1d.conv_norm.weight", "d", row=CONFORMER_CONV),
            *(_t(f"layers.{{}}.{r}.weight", "d", row=CONFORMER_NORM)
              for r in ("norm_pre_attn", "norm_post_attn", "norm_out"))),
        head=(_t("output_proj.weight", "out", "d", row=AUDIO_OUT), _t("output_proj.bias", "out", row=AUDIO_OUT)),
    ),
)})


@dataclass(frozen=True)
class AudioSpec:
    """An audio tower and its projection into the LLM: the kind, the resolved widths and the names' prefixes."""

    kind: str
    description: str
    layers: int
    hidden_size: int
    heads: int
    out_size: int  # the tower's output width (the projection's input)
    text_hidden: int
    clip: bool
    norm_eps: float
    act: str
    prefix: str
    projector_prefix: str
    dims: Mapping[str, int] = field(repr=False, compare=False)


def _channels(reader: ConfigReader, key: str, default: tuple[int, int]) -> tuple[int, int]:
    value = reader.raw(key, list(default))
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in value)):
        raise InspectError(f"{reader.where}: field '{reader._field(key)}' must be two positive channel counts, "
                           f"got {str(value)[:60]}")
    return int(value[0]), int(value[1])


def audio_spec_from_config(top: ConfigReader, wrapper, text_hidden: int) -> AudioSpec | None:
    """Read `audio_config` (None when the file has none or it is null: no audio tower)."""
    if not wrapper.audio or top.raw("audio_config") is None:
        top.used.add("audio_config")
        return None
    kind = AUDIO_KINDS[wrapper.audio]
    a = top.sub("audio_config")
    k, dflt = kind.keys, kind.defaults
    d, layers, heads = a.int(k["d"], dflt["d"]), a.int(k["layers"], dflt["layers"]), a.int(k["heads"], dflt["heads"])
    if d % heads:
        raise InspectError(f"{a.where}: field '{a._field(k['heads'])}' ({heads}) does not divide "
                           f"'{a._field(k['d'])}' ({d})")
    c0, c1 = _channels(a, k["channels"], dflt["channels"])
    out = a.int(k["out"], dflt["out"])
    dims = {"d": d, "ff": 4 * d, "d2": 2 * d, "hd": d // heads, "c0": c0, "c1": c1, "p_in": (c0 // 4) * c1,
            "kernel": a.int(k["kernel"], dflt["kernel"]), "out": out, "one": 1, "three": 3, "text": text_hidden}
    return AudioSpec(kind.kind, kind.description.format(layers=layers, d=d, heads=heads, out=out), layers, d, heads,
                     out, text_hidden, a.bool(k["clip"], dflt["clip"]), a.float(k["eps"], dflt["eps"]),
                     a.str(k["act"], dflt["act"]), wrapper.audio_prefix, wrapper.audio_projector_prefix,
                     MappingProxyType(dims))
