"""Tokenization for `inspect trace` / `inspect run`: text -> token ids -> text, and chat formatting.

This module owns `TextTokenizer`, a small wrapper around a `tokenizers.Tokenizer` with the facts the
trace needs (end-of-sequence ids, the BOS id, the chat template, where it came from). Loading lives
in inspector.tokenizer.load; chat templates are rendered by inspector.tokenizer.chat. `tokenizers`, `jinja2`, `huggingface_hub` are
imported lazily inside functions, so importing this module is cheap. Nothing here prints; bad input
raises a one-line `InspectError`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from inspector.tokenizer.bytelevel import BYTE_ALPHABET, byte_level_decode
from inspector.errors import InspectError, one_line, printable

T = TypeVar("T")


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null (Rust's panic hook prints a backtrace header there)."""
    try:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def rust_call(fn: Callable[[], T], what: str, quiet: bool = True) -> T:
    """Call into the Rust tokenizer; its errors and panics (pyo3's PanicException is not an
    Exception) become one InspectError line: `what (reason)`."""
    try:
        with _quiet_stderr() if quiet else contextlib.nullcontext():
            return fn()
    except InspectError:
        raise
    except BaseException as exc:  # noqa: BLE001
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise  # KeyboardInterrupt, SystemExit
        raise InspectError(f"{what} ({one_line(exc) or type(exc).__name__})") from None


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
    template_source: str = ""  # the file the chat template came from, when not `source`

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
        check_utf8(text, "prompt")
        encoding = rust_call(lambda: self.tokenizer.encode(text, add_special_tokens=add_special_tokens),
                             f"{self.source or 'tokenizer'}: cannot tokenize the prompt")
        return list(encoding.ids)

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        self._check_ids(ids)
        return rust_call(lambda: self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens),
                         f"{self.source or 'tokenizer'}: cannot decode ids", quiet=False)

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
            elif byte_level and int(i) not in self._added_ids() and set(token) <= BYTE_ALPHABET:
                out.append(byte_level_decode(token))
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
            source=self.template_source or self.source,
            **extra,
        )

    def chat_prompt(self, messages: list[dict], add_generation_prompt: bool = True, **extra: Any) -> tuple[str, list[int]]:
        """The rendered chat prompt and its ids (no extra BOS: the template writes its own, as transformers does)."""
        text = self.apply_chat_template(messages, add_generation_prompt, **extra)
        if not text:
            raise InspectError(f"{self.template_source or self.source or 'chat template'}: the chat template rendered nothing "
                               "for these messages")
        return text, self.encode(text, add_special_tokens=False)

    def encode_chat(self, messages: list[dict], add_generation_prompt: bool = True, **extra: Any) -> list[int]:
        """Token ids of the rendered chat prompt (see chat_prompt)."""
        return self.chat_prompt(messages, add_generation_prompt, **extra)[1]

    # -- helpers --

    def _check_ids(self, ids) -> None:
        n = self.vocab_size
        for i in ids:
            if not isinstance(i, int) and not hasattr(i, "__index__"):
                raise InspectError(f"token id {printable(repr(i))}: not an integer")
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


def check_utf8(text: str, what: str) -> None:
    """Refuse text that cannot be UTF-8 (lone surrogates: how Python holds undecodable argv bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InspectError(f"{what}: not valid UTF-8 text (undecodable byte at character {exc.start})") from None
