"""What the llama.cpp tests share: recorded settings as the predictor's record, and the synthetic GGUFs of
fixtures/llamacpp/synth rebuilt from their committed headers."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from inspector.checkpoint.gguf import GGUFFile, parse_gguf
from inspector.memory.llamacpp import LlamaCppSettings

SYN = Path(__file__).resolve().parent.parent / "fixtures" / "llamacpp" / "synth"
FILES = json.loads((SYN / "files.json").read_text())


def settings(s: dict) -> LlamaCppSettings:
    """The recorded settings (tools/record_llamacpp.py) as the predictor's record."""
    return LlamaCppSettings(n_ctx=s["n_ctx"], n_batch=s["n_batch"], n_ubatch=s["n_ubatch"], n_seq_max=s["n_seq_max"],
                            kv_unified=s["kv_unified"], flash_attn=s["fa"], type_k=s["type_k"], type_v=s["type_v"],
                            swa_full=s["swa_full"], use_mmap=s["use_mmap"])


def synth_gguf(folder: Path, name: str) -> GGUFFile:
    """The synthetic GGUF `name` written into `folder` (its header, then sparse zeros up to the recorded size), parsed."""
    path = folder / f"{name}.gguf"
    path.write_bytes(gzip.decompress((SYN / "headers" / f"{name}.gguf.head.gz").read_bytes()))
    with open(path, "r+b") as f:
        f.truncate(FILES[name]["file_bytes"])
    return parse_gguf(path)


def synth_cache(folder: Path):
    """get(name): the parsed header of synthetic GGUF `name` (synth_gguf in `folder`), built once each."""
    cache: dict[str, GGUFFile] = {}

    def get(name: str) -> GGUFFile:
        if name not in cache:
            cache[name] = synth_gguf(folder, name)
        return cache[name]

    return get
