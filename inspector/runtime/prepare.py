"""Everything `trace` and `run` need before a forward pass: the spec, the weights, the tokenizer,
the device and dtype, and the model built (on meta with no weights, or loaded by inventory names).

MODEL can be a checkpoint directory (config.json + safetensors [+ tokenizer.json]), a .gguf file
(config, weights and tokenizer all inside), a preset or a Hub id. Without weights the model runs on
the meta device (shapes only); a preset whose `tokenizer` is "qwen2-bpe" tokenizes offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from inspector.errors import InspectError
from inspector.hub import hub_snapshot
from inspector.spec.model import ModelSpec, from_hf_config
from inspector.spec.presets import find_preset
from inspector.spec.resolve import ModelSource, resolve
from inspector.units import TORCH_DTYPE_BYTES, human_bytes

DEFAULT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
DTYPES = ("auto", *TORCH_DTYPE_BYTES)
DEVICES = ("auto", "cpu", "cuda", "meta")


@dataclass
class Runtime:
    spec: ModelSpec
    model: Any  # inspector.reference.TextModel
    tokenizer: Any  # inspector.tokenizer.text_tokenizer.TextTokenizer
    device: Any  # torch.device
    dtype: Any  # torch.dtype
    weights: str | None

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def _has_safetensors(directory: Path | None) -> bool:
    return directory is not None and any(directory.glob("*.safetensors"))


def locate(model: str, weights: str | None) -> tuple[ModelSpec, Any, str]:
    """(spec, weights: a path, an opened GGUF source or None, tokenizer source) for MODEL / --weights."""
    path = Path(model).expanduser()
    if path.suffix.lower() == ".gguf" and os.path.lexists(path):  # a special file is refused by the reader
        from inspector.checkpoint.tensors import GGUFSource

        source = GGUFSource(path)  # parsed once: config here, tensors when loading
        spec = from_hf_config(source.config, path.name, str(path), str(path))
        return spec, weights or source, str(path)
    src: ModelSource = resolve(model)
    spec = from_hf_config(src.config, src.name, src.where, src.where, preprocessor=src.preprocessor)
    if weights is None and _has_safetensors(src.directory):
        weights = str(src.directory)
    preset = find_preset(model) if src.kind == "preset" else None
    if preset is not None and preset.tokenizer:
        tok = preset.tokenizer
    elif src.directory is not None and (src.directory / "tokenizer.json").exists():
        tok = str(src.directory)
    elif isinstance(weights, str) and Path(weights).suffix == ".gguf":
        tok = weights
    else:
        tok = src.hub_id or model
    return spec, weights, tok


def load_tokenizer_for(source: str, override: str | None = None):
    from inspector.tokenizer.qwen_bpe import embedded_qwen_tokenizer
    from inspector.tokenizer.load import load_tokenizer

    if override:
        return load_tokenizer(override)
    if source == "qwen2-bpe":
        return embedded_qwen_tokenizer()
    return load_tokenizer(source)


def pick_device(device: str, has_weights: bool):
    import torch

    if device not in DEVICES:
        raise InspectError(f"unknown device {device!r} (choose from {', '.join(DEVICES)})")
    if device == "auto":
        if not has_weights:
            return torch.device("meta")
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InspectError("--device cuda: no CUDA device is available here (try --device cpu or meta)")
    return torch.device(device)


def pick_dtype(dtype: str, device, spec: ModelSpec):
    import torch

    if dtype not in DTYPES:
        raise InspectError(f"unknown dtype {dtype!r} (choose from {', '.join(DTYPES)})")
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16
        if device.type == "meta":  # the config's dtype, when it is one a model runs in
            return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
                    "float64": torch.float64}.get(spec.text.torch_dtype or "", torch.bfloat16)
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def available_bytes(device) -> int | None:
    import torch

    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return None


def check_fits(spec: ModelSpec, device, dtype) -> None:
    """Refuse, with the size from `params`, a model whose weights cannot fit on the device."""
    from inspector.inventory.accounting import account

    free = available_bytes(device)
    params = account(spec).totals.total_params
    need = params * TORCH_DTYPE_BYTES.get(str(dtype).removeprefix("torch."), 4)
    if free is not None and need > free:
        raise InspectError(
            f"{spec.name}: {params:,} parameters need {human_bytes(need)} in {str(dtype).removeprefix('torch.')}, "
            f"but {device} has {human_bytes(free)} free (try --dtype bfloat16, another device, or --device meta)"
        )


def _all_shards(folder: Path) -> bool:
    """A snapshot holds every shard its index names (a download cut short is not a checkpoint)."""
    from inspector.checkpoint.sharded import INDEX_NAME, read_index

    if not (folder / INDEX_NAME).is_file():
        return True
    try:
        return all((folder / name).is_file() for name in set(read_index(folder / INDEX_NAME)[0].values()))
    except InspectError:
        return False


def hub_weights(repo_id: str) -> str:
    """A Hub repo's safetensors (and config) through huggingface_hub's cache."""
    patterns = ["*.safetensors", "*.safetensors.index.json", "config.json"]
    hint = "; give --weights PATH or a checkpoint directory, or use --device meta for shapes only"
    return str(hub_snapshot(repo_id, patterns, "weights", "*.safetensors", hint=hint, complete=_all_shards))


def prepare(model: str | None, weights: str | None = None, device: str = "auto", dtype: str = "auto",
            tokenizer: str | None = None, need_weights: bool = False,
            before_model: Callable[[ModelSpec, Any], None] | None = None) -> Runtime:
    """Resolve, choose device/dtype, load the tokenizer, build or load the model.

    `before_model(spec, tokenizer)` runs before the model is built or its weights loaded: the place
    to check prompts against the model (context length, vocabulary) before any work."""
    from inspector.reference.text import TextModel

    pick_device(device, True)  # validate the device name (and cuda's presence) before any download
    if dtype not in DTYPES:
        raise InspectError(f"unknown dtype {dtype!r} (choose from {', '.join(DTYPES)})")
    spec, weights, tok_source = locate(model or DEFAULT_MODEL, weights)
    explicit_device = device
    if weights is None and (need_weights or explicit_device not in ("auto", "meta")):
        hub_id = (find_preset(model or DEFAULT_MODEL) or None)
        repo = hub_id.hub_id if hub_id else (model if model and "/" in model and not Path(model).exists() else None)
        if repo is None:
            raise InspectError(f"{spec.name}: no weights found (no *.safetensors beside its config.json); "
                               f"give --weights PATH, or use --device meta for shapes only")
        weights = hub_weights(repo)
    dev = pick_device(device, weights is not None)
    if need_weights and dev.type == "meta":
        raise InspectError("`run` generates text and needs real weights: --device meta gives shapes only (use `trace`)")
    torch_dtype = pick_dtype(dtype, dev, spec)
    tok = load_tokenizer_for(tok_source, tokenizer)
    if before_model is not None:
        before_model(spec, tok)
    if dev.type == "meta":
        net = TextModel(spec.text, device="meta", dtype=torch_dtype).eval()
    else:
        from inspector.reference.load import load_model

        check_fits(spec, dev, torch_dtype)
        net = load_model(weights, spec.text, torch_dtype, dev)
    label = str(getattr(weights, "path", weights)) if weights is not None else None
    return Runtime(spec, net, tok, dev, torch_dtype, label if dev.type != "meta" else None)
