"""What of a config.json may reach transformers' meta build, and the sealed room it builds in.

A config.json is data, but a few of its fields make transformers run or fetch code: `auto_map`
(a repository's own modules), `attn_implementation: "org/name"` (a Hub kernel, downloaded and
imported with the `kernels` package; "flash_attention_2" without flash-attn falls back to one too),
`backbone: "owner/name"` (another repository's config, or a timm model by name), a timm wrapper's
`architecture: "hf-hub:owner/name"`. `safe_fields` drops the fields that name code and change no
shape, and refuses, in one line, those whose value names another repository or model (counting it
would need that repository). `bounded` refuses sizes that transformers would take minutes to build
or that no model has, before anything is built. `sealed` is the room: offline, no Hub kernels,
whatever the environment says.

Found in transformers 5.25 by reading `configuration_utils.py` (attn/experts implementation),
`modeling_utils.py` (`_check_and_adjust_attn_implementation`: `is_kernel`, the flash-attention
kernel fallback), `integrations/hub_kernels.py` (`get_kernel`, `lazy_load_kernel`,
`USE_HUB_KERNELS`), `backbone_utils.py` (`consolidate_backbone_kwargs_to_config`: `repo_exists`,
`get_config_dict`, timm) and `models/timm_wrapper` (`timm.create_model(config.architecture)`).
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

from inspector.errors import InspectError, printable
from inspector.spec.config_reader import MAX_INT

# Dropped wherever they appear (nested configs too): they name code or a kernel, or switch code
# paths, and change no parameter's shape. The build itself is asked for eager attention.
DROPPED = frozenset({
    "auto_map", "custom_pipelines", "trust_remote_code", "_name_or_path",
    "attn_implementation", "_attn_implementation", "_attn_implementation_internal", "_attn_implementation_autoset",
    "experts_implementation", "_experts_implementation", "_experts_implementation_internal",
    "use_kernels", "kernel_config", "quantization_config", "use_pretrained_backbone",
})
# Refused when they hold a name: transformers would fetch that repository's config or a timm model
# (`architecture`: only a name with "/" or ":", as timm's "hf-hub:owner/name"; a plain one is a class).
NAMING = frozenset({"backbone", "backbone_config", "architecture"})
# The build's time grows with layers: about 2 ms a layer on meta, so 1,000 layers take about 2 s;
# real models have at most a few hundred. transformers 5.25 fuses experts into 3D parameters, so
# their number costs no time (jetmoe: 24 layers x 8 or x 1,024 experts both build in 0.06 s); the
# bound on layers x experts only refuses the absurd (Kimi K2: 61 x 384 = 23,424; Doge's 16,384
# one-neuron experts: 32 x 16,384 = 524,288).
MAX_META_LAYERS = 1_000
MAX_META_EXPERT_BLOCKS = 1_000_000
MAX_META_PARAMS = 10**14  # 100 trillion: fifty times the largest published model
_LAYERS = re.compile(r"(^|_)(layers?|depth)$")
_EXPERTS = re.compile(r"(^|_)experts$")
_SIZES = re.compile(r"(^|_)(size|dim|heads|head|embd|inner|experts|layers?|depth)$")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def safe_fields(cfg: dict[str, Any], where: str, path: str = "") -> dict[str, Any]:
    """A copy of `cfg` without the DROPPED fields, refusing a NAMING field that holds a name."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        field = f"{path}{key}"
        if key in DROPPED or (isinstance(key, str) and key.endswith("_implementation")):
            continue
        if key in NAMING and isinstance(value, str) and (key != "architecture" or re.search(r"[/:]", value)):
            raise InspectError(
                f"{where}: field '{field}' names another model ({printable(value[:80])!r}): transformers would "
                f"fetch its config or code to build this one, which is never done here")
        out[key] = safe_fields(value, where, f"{field}.") if isinstance(value, dict) else value
    return out


def _walk(cfg: dict[str, Any], path: str = ""):
    for key, value in cfg.items():
        if isinstance(value, dict):
            yield from _walk(value, f"{path}{key}.")
        elif isinstance(key, str):
            yield f"{path}{key}", key, value


def _first(cfg: dict[str, Any], *keys: str, default: int = 1) -> int:
    """The first positive integer of `keys`, in text_config before the top level."""
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    return next((v for k in keys for c in (text, cfg) if _is_int(v := c.get(k)) and v > 0), default)


def bounded(cfg: dict[str, Any], where: str) -> None:
    """Refuse, before building, a size no model has: a size field above 2^31 - 1, layers above
    MAX_META_LAYERS, layers x experts above MAX_META_EXPERT_BLOCKS, or a rough parameter count
    (embeddings + attention + MLP per layer) above MAX_META_PARAMS."""
    layers = experts = 1
    for field, key, value in _walk(cfg):
        if not _is_int(value):
            continue
        if _SIZES.search(key) and abs(value) > MAX_INT:
            raise InspectError(f"{where}: field '{field}' must be at most {MAX_INT:,}, got {value:,}")
        if _LAYERS.search(key):
            if value > MAX_META_LAYERS:
                raise InspectError(f"{where}: field '{field}' must be at most {MAX_META_LAYERS:,} to be built "
                                   f"through transformers, got {value:,}")
            layers = max(layers, value)
        elif _EXPERTS.search(key):
            experts = max(experts, value)
    if layers * experts > MAX_META_EXPERT_BLOCKS:
        raise InspectError(f"{where}: {layers:,} layers x {experts:,} experts is above the {MAX_META_EXPERT_BLOCKS:,} "
                           f"expert blocks built through transformers")
    hidden = _first(cfg, "hidden_size", "d_model", "n_embd", "dim")
    inner = _first(cfg, "moe_intermediate_size", "intermediate_size", "ffn_dim", "n_inner", default=4 * hidden)
    estimate = 2 * _first(cfg, "vocab_size") * hidden + layers * (4 * hidden * hidden + 3 * hidden * inner * experts)
    if estimate > MAX_META_PARAMS:
        raise InspectError(f"{where}: this config describes about {estimate:.1e} parameters (hidden_size {hidden:,}, "
                           f"{layers:,} layers, {experts:,} experts); at most {MAX_META_PARAMS:.0e} are built "
                           f"through transformers")


@contextlib.contextmanager
def sealed():
    """Offline and without Hub kernels for the build, whatever the environment says; restored after."""
    import huggingface_hub.constants as hub_constants

    names = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "USE_HUB_KERNELS": "NO"}
    saved_env = {k: os.environ.get(k) for k in names}
    saved_flag = hub_constants.HF_HUB_OFFLINE
    os.environ.update(names)
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = saved_flag
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
