"""Everything `trace` and `run` need before a forward pass: spec, weights, tokenizer, device, the model built.

The device and dtype are chosen, and the model is built on meta with no weights, or loaded by inventory
names.

MODEL can be a checkpoint directory (config.json + safetensors [+ tokenizer.json]), a GGUF file
(config, weights and tokenizer all inside), a preset or a Hub id (inspector.source.locate says which). Without weights the model runs on
the meta device (shapes only). A preset whose `tokenizer` names a kind of
inspector.tokenizer.packaged (Qwen2 BPE, Llama 3.2, SmolLM2) tokenizes offline; where no tokenizer
can be had offline (a bare config.json, Phi-3, Mistral), the meta device traces stand-in ids (the
trace's note says so), while cpu/cuda, which need real ids, refuse in one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from inspector.errors import InspectError
from inspector.files import local_path
from inspector.hub import hub_snapshot
from inspector.source import locate
from inspector.spec.model import ModelSpec
from inspector.spec.presets import find_preset
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


def load_tokenizer_for(source: str, override: str | None = None):
    """The tokenizer of --tokenizer, else of a packaged kind (inspector.tokenizer.packaged), a path or a Hub id."""
    from inspector.tokenizer.load import load_tokenizer
    from inspector.tokenizer.packaged import PACKAGED, packaged_tokenizer

    if override:
        return packaged_tokenizer(override) if override in PACKAGED else load_tokenizer(override)
    if source in PACKAGED:
        return packaged_tokenizer(source)
    return load_tokenizer(source)


def _local_tokenizer(source: str) -> bool:
    """Whether `source` names a tokenizer file, or a directory with a `tokenizer.json` of any kind: a
    broken or special file there is an error to report, never a reason to fall back to stand-ins."""
    path = local_path(source, "tokenizer")
    return (os.path.lexists(path) and not path.is_dir()) or os.path.lexists(path / "tokenizer.json")


def tokenizer_or_none(source: str, override: str | None, device) -> Any:
    """The tokenizer or, on the meta device when none can be had offline, None (stand-in ids)."""
    try:
        return load_tokenizer_for(source, override)
    except InspectError:
        if device.type != "meta" or override or _local_tokenizer(source):
            raise
        return None


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


@dataclass(frozen=True)
class ModelChoice:
    """What `trace`, `run` and `chat` run and where: MODEL, --weights, --device, --dtype, --tokenizer
    and the CPU threads (None: `default_threads()`)."""

    model: str | None = None  # None: DEFAULT_MODEL
    weights: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    tokenizer: str | None = None
    threads: int | None = None


def prepare(model: str | None, weights: str | None = None, device: str = "auto", dtype: str = "auto",
            tokenizer: str | None = None, need_weights: bool = False,
            before_model: Callable[[ModelSpec, Any], None] | None = None) -> Runtime:
    """Resolve, choose device/dtype, load the tokenizer, build or load the text model (the Python API's
    spelling of `load_runtime`)."""
    return load_runtime(ModelChoice(model, weights, device, dtype, tokenizer), need_weights, before_model)


def load_runtime(choice: ModelChoice, need_weights: bool = False,
                 before_model: Callable[[ModelSpec, Any], None] | None = None, image: bool = False) -> Runtime:
    """Resolve, choose device/dtype, load the tokenizer, build or load the model: the text model, or with
    `image` the vision-language model (which tokenizes its own prompt, so no tokenizer is loaded; its
    `auto` dtype is float32 on every device).

    `before_model(spec, tokenizer)` runs before the model is built or its weights loaded: the place
    to check prompts against the model (context length, vocabulary) before any work."""
    model, device, dtype = choice.model or DEFAULT_MODEL, choice.device, choice.dtype
    pick_device(device, True)  # validate the device name (and cuda's presence) before any download
    if need_weights and device == "meta":
        raise InspectError("generating text needs real weights; --device meta gives shapes only: use `inspect trace "
                           "... --device meta` for every step's shape")
    if dtype not in DTYPES:
        raise InspectError(f"unknown dtype {dtype!r} (choose from {', '.join(DTYPES)})")
    spec, weights, tok_source = locate(model, choice.weights)
    if image:
        from inspector.reference.vlm import require_vlm

        require_vlm(spec)
    if weights is None and (need_weights or device not in ("auto", "meta")):
        weights = _hub_weights_for(choice.model, spec)
    dev = pick_device(device, weights is not None)
    if need_weights and dev.type == "meta":
        raise InspectError("`run` generates text and needs real weights: --device meta gives shapes only (use `trace`)")
    if image:
        torch_dtype, tok = pick_dtype("float32" if dtype == "auto" else dtype, dev, spec), None
    else:
        torch_dtype = pick_dtype(dtype, dev, spec)
        tok = tokenizer_or_none(tok_source, choice.tokenizer, dev)
    if before_model is not None:
        before_model(spec, tok)
    net = _build(spec, weights, dev, torch_dtype, image)
    label = str(getattr(weights, "path", weights)) if weights is not None else None
    return Runtime(spec, net, tok, dev, torch_dtype, label if dev.type != "meta" else None)


def _hub_weights_for(model: str | None, spec: ModelSpec) -> str:
    """The weights of MODEL from the Hub when it names a repo (a preset's or an owner/name id)."""
    preset = find_preset(model or DEFAULT_MODEL)
    local = model is not None and local_path(model).exists()
    repo = preset.hub_id if preset else (model if model and "/" in model and not local else None)
    if repo is None:
        raise InspectError(f"{spec.name}: no weights found (no *.safetensors beside its config.json); "
                           f"give --weights PATH, or use --device meta for shapes only")
    return hub_weights(repo)


def _build(spec: ModelSpec, weights: Any, dev, torch_dtype, image: bool):
    """The model on the meta device (shapes only), else checked against the device's memory and loaded."""
    if image:
        from inspector.reference.vlm import VLM, load_vlm

        if dev.type == "meta":
            return VLM(spec, device="meta", dtype=torch_dtype)
        if not isinstance(weights, str):
            raise InspectError(f"{spec.name}: an image trace loads safetensors weights, not {weights.path.name}")
        check_fits(spec, dev, torch_dtype)
        return load_vlm(weights, spec, torch_dtype, dev)
    from inspector.reference.text import TextModel

    if dev.type == "meta":
        return TextModel(spec.text, device="meta", dtype=torch_dtype, shapes_only=True).eval()
    from inspector.reference.load import load_model

    check_fits(spec, dev, torch_dtype)
    return load_model(weights, spec.text, torch_dtype, dev)
