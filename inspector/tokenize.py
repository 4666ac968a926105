"""Tokenization for `inspect trace` / `inspect run`: text -> token ids -> text, and chat formatting.

This module owns:

* `TextTokenizer`, a small wrapper around a `tokenizers.Tokenizer` with the facts the trace needs
  (end-of-sequence ids, the BOS id, the chat template, where it came from);
* `load_tokenizer(source)` for a local model directory (`tokenizer.json` plus the optional
  `tokenizer_config.json`, `chat_template.jinja`, `generation_config.json`), a `.gguf` file (a
  byte-level BPE tokenizer rebuilt from its `tokenizer.ggml.*` metadata), or a Hugging Face Hub id;
* the offline default, Qwen2/Qwen2.5's byte-level BPE, lives in `inspector.qwen_bpe`; GGUF tokenizers
  in `inspector.gguf_tokenizer`; the byte-level building blocks in `inspector.bytelevel`.

Chat templates are rendered by `inspector.chat`. `tokenizers`, `jinja2`, `huggingface_hub` are
imported lazily inside functions, so importing this module is cheap. Nothing here prints; bad input
raises a one-line `InspectError`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.bytelevel import _BYTE_ALPHABET, _byte_level_decode
from inspector.errors import InspectError


# --------------------------------------------------------------------------------------------
# The wrapper.


@dataclass(frozen=True)
class TextTokenizer:
    """A `tokenizers.Tokenizer` plus what the trace needs to know about it."""

    tokenizer: Any  # tokenizers.Tokenizer (not imported at module level)
    eos_ids: tuple[int, ...] = ()
    bos_id: int | None = None
    chat_template: str | None = None
    source: str = ""

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    @property
    def bos_token(self) -> str | None:
        return None if self.bos_id is None else self.tokenizer.id_to_token(self.bos_id)

    @property
    def eos_token(self) -> str | None:
        return self.tokenizer.id_to_token(self.eos_ids[0]) if self.eos_ids else None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids for `text`. `add_special_tokens` lets the tokenizer add e.g. BOS (the model's usual input)."""
        if not isinstance(text, str):
            raise InspectError(f"prompt: expected text, got {type(text).__name__}")
        if not text:
            raise InspectError("prompt: empty; give some text to tokenize")
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        self._check_ids(ids)
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_strings(self, ids: list[int]) -> list[str]:
        """One display string per id: the token's own text.

        For byte-level BPE that is the token's bytes as UTF-8 (so " the", not "Ġthe"); a token
        that holds part of a multi-byte character shows its bytes as `\\xNN` escapes. For other
        tokenizers it is the vocabulary entry as is ("##ing", "▁the").
        """
        self._check_ids(ids)
        byte_level = self._is_byte_level()
        out = []
        for i in ids:
            token = self.tokenizer.id_to_token(int(i))
            if token is None:
                out.append(f"<id {int(i)}>")
            elif byte_level and int(i) not in self._added_ids() and set(token) <= _BYTE_ALPHABET:
                out.append(_byte_level_decode(token))
            else:
                out.append(token)
        return out

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True, **extra: Any) -> str:
        """The prompt text for a conversation, rendered with this tokenizer's chat template."""
        from .chat import render_chat_template

        return render_chat_template(
            self.chat_template,
            messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            source=self.source,
            **extra,
        )

    def encode_chat(self, messages: list[dict], add_generation_prompt: bool = True, **extra: Any) -> list[int]:
        """Token ids of the rendered chat prompt (no extra BOS: the template writes its own, as transformers does)."""
        return self.encode(self.apply_chat_template(messages, add_generation_prompt, **extra), add_special_tokens=False)

    # -- helpers --

    def _check_ids(self, ids) -> None:
        n = self.vocab_size
        for i in ids:
            if not isinstance(i, int) and not hasattr(i, "__index__"):
                raise InspectError(f"token id {i!r}: not an integer")
            if not 0 <= int(i) < n:
                raise InspectError(f"token id {int(i)}: out of range for a vocabulary of {n} ({self.source})")

    def _is_byte_level(self) -> bool:
        from tokenizers import decoders

        return isinstance(self.tokenizer.decoder, decoders.ByteLevel)

    def _added_ids(self) -> frozenset[int]:
        cached = self.__dict__.get("_added_cache")
        if cached is None:
            cached = frozenset(self.tokenizer.get_added_tokens_decoder())
            object.__setattr__(self, "_added_cache", cached)
        return cached


# --------------------------------------------------------------------------------------------
# Loading from a directory, a GGUF file or the Hub.

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_HUB_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "chat_template.json", "generation_config.json", "config.json")


def load_tokenizer(source: str | os.PathLike, revision: str | None = None) -> TextTokenizer:
    """A tokenizer from a model directory, a `.gguf` file, a `tokenizer.json` file, or a Hub id like `Qwen/Qwen2.5-0.5B`."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return _load_dir(path, label=text)
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            from inspector.gguf_tokenizer import load_gguf_tokenizer  # imports this module

            return load_gguf_tokenizer(path)
        if path.name.endswith(".json"):
            return _load_dir(path.parent, label=text, tokenizer_file=path)
        raise InspectError(f"{text}: not a tokenizer (expected a model directory, tokenizer.json or a .gguf file)")
    if _HUB_ID.match(text) and ".." not in text and not text.endswith((".gguf", ".json")):
        return _load_hub(text, revision)
    raise InspectError(f"{text}: no such file or directory (and not a Hub id like 'Qwen/Qwen2.5-0.5B')")


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    from inspector.files import read_json

    data = read_json(path)
    if not isinstance(data, dict):
        raise InspectError(f"{path}: expected a JSON object")
    return data


def _one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split())[:200]


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

    tokenizer_file = tokenizer_file or directory / "tokenizer.json"
    if not tokenizer_file.is_file():
        extra = " (tokenizer.model/vocab-only tokenizers are not supported)" if (directory / "tokenizer.model").is_file() else ""
        raise InspectError(f"{tokenizer_file}: not found{extra}")
    try:
        tok = Tokenizer.from_file(str(tokenizer_file))
    except Exception as exc:
        raise InspectError(f"{tokenizer_file}: not a valid tokenizer.json ({_one_line(exc)})") from None
    # A tokenizer.json may carry training-time padding/truncation (e.g. pad to 128): never for a trace.
    tok.no_padding()
    tok.no_truncation()

    config = _read_json(directory / "tokenizer_config.json") or {}
    # added_tokens_decoder entries the tokenizer.json lacks (only where the id is the next free one).
    added = config.get("added_tokens_decoder")
    if isinstance(added, dict):
        entries = sorted((int(k), v) for k, v in added.items() if str(k).isdigit() and isinstance(v, dict))
        for token_id, entry in entries:
            content = entry.get("content")
            if not isinstance(content, str) or tok.token_to_id(content) is not None:
                continue
            if token_id != tok.get_vocab_size(with_added_tokens=True):
                continue
            added_token = AddedToken(content, special=bool(entry.get("special", False)), normalized=bool(entry.get("normalized", False)))
            (tok.add_special_tokens if entry.get("special") else tok.add_tokens)([added_token])

    # Chat template: chat_template.jinja wins, then chat_template.json, then tokenizer_config.json.
    template = None
    jinja_file = directory / "chat_template.jinja"
    if jinja_file.is_file():
        try:
            template = jinja_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InspectError(f"{jinja_file}: cannot read ({_one_line(exc)})") from None
    if template is None:
        template = _pick_template((_read_json(directory / "chat_template.json") or {}).get("chat_template"))
    if template is None:
        template = _pick_template(config.get("chat_template"))

    def token_id(value: Any) -> int | None:
        content = _token_content(value)
        return tok.token_to_id(content) if content is not None else None

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

    return TextTokenizer(tokenizer=tok, eos_ids=tuple(eos), bos_id=bos_id, chat_template=template, source=label)


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
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError
    except ImportError:
        raise InspectError(f"{repo_id}: huggingface_hub is not installed, cannot fetch the tokenizer") from None
    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=list(_HUB_FILES), etag_timeout=10)
    except GatedRepoError:
        raise InspectError(f"{repo_id}: gated repository; accept its license and log in (hf auth login)") from None
    except RepositoryNotFoundError:
        raise InspectError(f"{repo_id}: no such model on the Hub (or it is private)") from None
    except RevisionNotFoundError:
        raise InspectError(f"{repo_id}: revision {revision!r} not found") from None
    except Exception:
        raise InspectError(f"{repo_id}: tokenizer.json not found (offline?)") from None
    directory = Path(folder)
    if not (directory / "tokenizer.json").is_file():
        raise InspectError(f"{repo_id}: tokenizer.json not found in the repository")
    return _load_dir(directory, label=f"{repo_id} (Hub)")


