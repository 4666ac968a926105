"""transformers' vision-language models on the meta device, and their names for our checkpoint names.

`hf_vlm(cfg)` builds AutoModelForImageTextToText from a config dict on meta. `load_names(names, model)`
renames published checkpoint names the way transformers does when it loads them
(core_model_loading.rename_source_key with the model's own conversion mapping, scopes included), so
an inventory can be compared with the model's state dict name for name.
"""

from __future__ import annotations

import copy

import torch

torch.set_num_threads(1)


def hf_config(cfg: dict):
    from transformers import AutoConfig

    cfg = copy.deepcopy(cfg)
    return AutoConfig.for_model(cfg.pop("model_type"), **{k: v for k, v in cfg.items() if k != "architectures"})


def hf_vlm(cfg: dict, device: str = "meta"):
    from transformers import AutoModelForImageTextToText

    with torch.device(device):
        return AutoModelForImageTextToText.from_config(hf_config(cfg))


def load_names(shapes: dict[str, tuple[int, ...]], model) -> dict[str, tuple[int, ...]]:
    """{checkpoint name: shape} -> {transformers parameter name: shape}, by transformers' load-time rules."""
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightConverter, rename_source_key

    transforms = get_model_conversion_mapping(model)
    renamings = [t for t in transforms if not isinstance(t, WeightConverter)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    meta = model.state_dict()
    out = {}
    for name, shape in shapes.items():
        renamed, converter = rename_source_key(name, renamings, converters, model.base_model_prefix, meta)
        assert converter is None, f"{name}: transformers would convert it ({converter}); compare shapes by hand"
        out[renamed] = shape
    return out


def compare(entries, model) -> None:
    """Every name and shape of our inventory equals transformers' state dict (tied heads included)."""
    ours = load_names({e.name: e.shape for e in entries}, model)
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, extra = sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs))
    assert not missing and not extra, f"missing {missing[:5]}, extra {extra[:5]}"
    wrong = [(k, s, theirs[k]) for k, s in ours.items() if s != theirs[k]]
    assert not wrong, f"tensor '{wrong[0][0]}': expected {wrong[0][2]}, found {wrong[0][1]}"
