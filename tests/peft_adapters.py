"""LoRA adapters written by peft itself (its `save_pretrained`), for the adapter tests and the docs.

peft wraps a transformers model built on the meta device from a config dict, the model's tensors
are then made real but left uninitialised (`to_empty`: an adapter's header does not depend on its
values), and peft saves the adapter as it would after training. `base_model_name_or_path` is set to
the base given (a preset here: the Hub is not reached). Used by tests/test_adapter_verify.py and, as
`python tests/peft_adapters.py DIR`, by the docs pages (docs/verify.md), which verify what it writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"


def make_adapter(cfg: dict, directory: Path, base: str, **lora) -> tuple[int, int]:
    """peft's adapter of `cfg` (a config.json dict) saved in `directory`; returns peft's
    get_nb_trainable_parameters(): (trainable, all params)."""
    import peft
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**cfg)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(**lora))
    counts = wrapped.get_nb_trainable_parameters()
    wrapped.to_empty(device="cpu")
    wrapped.save_pretrained(str(directory))
    path = directory / "adapter_config.json"
    saved = json.loads(path.read_text())
    saved["base_model_name_or_path"] = base
    path.write_text(json.dumps(saved, indent=2))
    return counts


def smollm2_config() -> dict:
    """SmolLM2-135M-Instruct's config.json as the `inspect` preset holds it (from the model's GGUF metadata)."""
    from inspector.spec.presets import find_preset

    cfg = dict(find_preset(SMOLLM2).config)
    cfg.pop("architectures", None)
    return cfg


if __name__ == "__main__":  # the docs' adapter: r 8 on q_proj and v_proj, lm_head saved whole
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the clone's inspector, for the preset
    out = Path(sys.argv[1])
    make_adapter(smollm2_config(), out, SMOLLM2, r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                 modules_to_save=["lm_head"])
    print(out)
