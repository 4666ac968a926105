"""Loading a tokenizer: from a local model directory, a GGUF file or a Hub id.

From a local model directory (`tokenizer.json` plus the optional `tokenizer_config.json`,
`chat_template.jinja`, `generation_config.json`), a GGUF file (rebuilt from its `tokenizer.ggml.*` metadata,
inspector.tokenizer.ggml), or a Hugging Face Hub id (through inspector.hub). The offline default,
Qwen2/Qwen2.5's byte-level BPE, is inspector.tokenizer.qwen_bpe.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from inspector import files
from inspector.checkpoint.open import GGUF, format_of
from inspector.errors import InspectError, printable
from inspector.files import local_path
from inspector.hub import hub_snapshot, is_hub_id
from inspector.tokenizer.ggml import load_gguf_tokenizer
from inspector.tokenizer.text_tokenizer import TextTokenizer, rust_call

_HUB_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "chat_template.json", "generation_config.json", "config.json")


def load_tokenizer(source: str | os.PathLike, revision: str | None = None) -> TextTokenizer:
    """A tokenizer from a model directory, a GGUF file, a `tokenizer.json` file, or a Hub id like `Qwen/Qwen2.5-0.5B`."""
    text = str(source)
    path = local_path(text, "tokenizer")
    if path.is_dir():
        return _load_dir(path, label=text)
    if os.path.lexists(path):  # a special file is refused by the reader, by name
        if format_of(path) is GGUF:
            return load_gguf_tokenizer(path)
        if path.name.endswith(".json"):
            return _load_dir(path.parent, label=text, tokenizer_file=path)
        raise InspectError(f"{text}: not a tokenizer (expected a model directory, tokenizer.json or a "
                           f"{GGUF.suffixes[0]} file)")
    if is_hub_id(text) and format_of(text) is not GGUF:  # a GGUF file's name, not a repo
        return _load_hub(text, revision)
    raise InspectError(f"{text}: no such file or directory (and not a Hub id like 'Qwen/Qwen2.5-0.5B')")


def _read_json(path: Path) -> dict | None:
    """An optional JSON object beside the tokenizer (None when absent; a special file, or a link out of
    the directory, is refused)."""
    if not os.path.lexists(path):
        return None
    data = files.read_json(files.confined(path.parent, path, f"the model directory's {path.name}"))
    if not isinstance(data, dict):
        raise InspectError(f"{printable(path)}: expected a JSON object, got {type(data).__name__}")
    return data


def _token_content(value: Any) -> str | None:
    """tokenizer_config's special token entries are a string or {"content": ...}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _int_list(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


def _load_dir(directory: Path, label: str, tokenizer_file: Path | None = None) -> TextTokenizer:
    from tokenizers import AddedToken, Tokenizer

    if tokenizer_file is None:  # found in the directory, not named by the user: confined to it
        tokenizer_file = directory / "tokenizer.json"
        if os.path.lexists(tokenizer_file):
            files.confined(directory, tokenizer_file, "the model directory's tokenizer.json")
    if not os.path.lexists(tokenizer_file):
        extra = " (tokenizer.model/vocab-only tokenizers are not supported)" if (directory / "tokenizer.model").is_file() else ""
        raise InspectError(f"{tokenizer_file}: not found{extra}")
    text = files.read_text(tokenizer_file, "tokenizer", "a tokenizer.json")  # regular file, bounded
    tok = rust_call(lambda: Tokenizer.from_str(text), f"{printable(tokenizer_file)}: not a valid tokenizer.json")
    # A tokenizer.json may carry training-time padding/truncation (e.g. pad to 128): never for a trace.
    tok.no_padding()
    tok.no_truncation()

    config = _read_json(directory / "tokenizer_config.json") or {}
    # added_tokens_decoder entries the tokenizer.json lacks (only where the id is the next free one).
    added = config.get("added_tokens_decoder")
    if isinstance(added, dict):
        entries = sorted((int(k), v) for k, v in added.items()  # digits bounded before int()
                         if k.isascii() and k.isdigit() and len(k) <= 10 and isinstance(v, dict))
        for token_id, entry in entries:
            content = entry.get("content")
            if not isinstance(content, str) or tok.token_to_id(content) is not None:
                continue
            if token_id != tok.get_vocab_size(with_added_tokens=True):
                continue
            added_token = AddedToken(content, special=entry.get("special") is True, normalized=entry.get("normalized") is True)
            rust_call(lambda: (tok.add_special_tokens if entry.get("special") is True else tok.add_tokens)([added_token]),
                      f"{printable(directory / 'tokenizer_config.json')}: cannot add token {printable(repr(content))}")

    template, template_file = _chat_template(directory, config)

    def token_id(value: Any) -> int | None:
        content = _token_content(value)
        return rust_call(lambda: tok.token_to_id(content), label) if content is not None else None

    eos: list[int] = []
    first = token_id(config.get("eos_token"))
    if first is not None:
        eos.append(first)
    gen = _read_json(directory / "generation_config.json") or {}
    model_config = {} if gen else (_read_json(directory / "config.json") or {})
    for i in _int_list(gen.get("eos_token_id")) or _int_list(model_config.get("eos_token_id")):
        if i not in eos:
            eos.append(i)
    bos_id = token_id(config.get("bos_token"))  # (not generation_config's: Qwen lists one its tokenizer never adds)

    return TextTokenizer(tokenizer=tok, eos_ids=tuple(eos), bos_id=bos_id, chat_template=template, source=label,
                         template_source=str(template_file) if template else "")


def _chat_template(directory: Path, config: dict) -> tuple[str | None, Path]:
    """The chat template and its file: chat_template.jinja wins, then chat_template.json, then
    tokenizer_config.json's."""
    jinja_file = directory / "chat_template.jinja"
    if os.path.lexists(jinja_file):
        files.confined(directory, jinja_file, "the model directory's chat_template.jinja")
        return files.read_text(jinja_file, "template", "a chat template"), jinja_file
    template = _pick_template((_read_json(directory / "chat_template.json") or {}).get("chat_template"))
    if template is not None:
        return template, directory / "chat_template.json"
    return _pick_template(config.get("chat_template")), directory / "tokenizer_config.json"


def _pick_template(value: Any) -> str | None:
    """A template string, or the 'default' one of a list of {'name', 'template'}."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list):
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
        chosen = named.get("default") or next((t for t in named.values() if isinstance(t, str)), None)
        return chosen if isinstance(chosen, str) and chosen else None
    return None


def _load_hub(repo_id: str, revision: str | None) -> TextTokenizer:
    directory = hub_snapshot(repo_id, list(_HUB_FILES), "tokenizer files", "tokenizer.json", revision)
    return _load_dir(directory, label=f"{repo_id} (Hub)")
