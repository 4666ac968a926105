"""The one error type the library raises for bad input, and the helpers that keep its messages on one line.

The CLI turns an InspectError into one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import re


SHOWN_LIMIT = 240  # the most characters of one echoed value a message shows
MESSAGE_LIMIT = 2000  # the most characters of a whole message


class InspectError(ValueError):
    """Bad or unreadable input: a config, a checkpoint, a prompt, an option.

    The message is a single line that names the thing (file, field, tensor) and, where there
    are two values to compare, both of them. Whatever a message echoes, it stays one printable
    line of bounded length: control characters are escaped and over-long text is cut (`printable`).
    """

    def __init__(self, *args: object) -> None:
        if len(args) == 1:
            args = (printable(args[0], MESSAGE_LIMIT),)
        super().__init__(*args)


# C0 and C1 controls (ESC, BEL: terminal escape and OSC sequences), DEL, line and paragraph
# separators, bidirectional overrides and isolates, lone surrogates.
_OTHER_CONTROLS = r"\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_UNPRINTABLE = re.compile(r"[\x00-\x1f" + _OTHER_CONTROLS + "]")
_UNPRINTABLE_IN_LINES = re.compile(r"[\x00-\x09\x0b-\x1f" + _OTHER_CONTROLS + "]")  # the newline kept
_UNPRINTABLE_IN_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f" + _OTHER_CONTROLS + "]")  # newline and tab kept


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shorten(text: str, limit: int = SHOWN_LIMIT) -> str:
    """`text` cut in the middle to about `limit` characters, saying how long it was:
    'abc…xyz (6,000,000 characters)'."""
    if len(text) <= limit:
        return text
    head = max(limit * 2 // 3, 1)
    tail = max(limit - head - 1, 0)
    return f"{text[:head]}…{text[len(text) - tail:] if tail else ''} ({len(text):,} characters)"


def visible(text: object, tabs: bool = False) -> str:
    """Text for a terminal, kept on its lines: every control character but the newline (and the
    tab, with `tabs`) escaped, so no escape sequence reaches the terminal; nothing is cut."""
    return (_UNPRINTABLE_IN_TEXT if tabs else _UNPRINTABLE_IN_LINES).sub(_escape, str(text))


def printable(text: object, limit: int = SHOWN_LIMIT) -> str:
    """A value safe to put inside a one-line message: control characters (newlines included)
    escaped, and cut to about `limit` characters with an ellipsis and its length."""
    return shorten(_UNPRINTABLE.sub(_escape, str(text)), limit)


def one_line(exc: BaseException | str) -> str:
    """An exception's message squeezed onto one line (at most about 200 characters), control characters escaped."""
    return printable(" ".join(str(exc).split()), 200)


def whole_number(value: object, what: str, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    """`value` as an int in [minimum, maximum] (a bool is not a number), else an InspectError naming
    `what`: the checks an API function makes itself, so that Python callers get the CLI's."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not minimum <= int(value) <= maximum:
        raise InspectError(f"{what} must be a whole number from {minimum:,} to {maximum:,}, "
                           f"got {printable(repr(value), 60)}")
    return int(value)


def quoted(name: str) -> str:
    """A tensor or key name, quoted, on one line."""
    return json.dumps(name)


class InspectWarning(UserWarning):
    """A value that is legal but odd (the CLI shows it as one `warning:` line on stderr)."""


def warn(message: str) -> None:
    """Warn once per message, in one line (see InspectWarning)."""
    import warnings

    warnings.warn(printable(message, MESSAGE_LIMIT), InspectWarning, stacklevel=2)
