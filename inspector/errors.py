"""The one error type the library raises for bad input, and the helpers that keep its messages on one line.

The CLI turns an InspectError into one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import re


class InspectError(ValueError):
    """Bad or unreadable input: a config, a checkpoint, a prompt, an option.

    The message is a single line that names the thing (file, field, tensor) and, where there
    are two values to compare, both of them.
    """


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def printable(text: object) -> str:
    """A value safe to put inside a one-line message (control characters escaped)."""
    s = str(text)
    if _UNPRINTABLE.search(s):
        return s.encode("unicode_escape", "backslashreplace").decode("ascii")
    return s


def one_line(exc: BaseException | str) -> str:
    """An exception's message squeezed onto one line (at most 200 characters), control characters escaped."""
    return printable(" ".join(str(exc).split())[:200])


def quoted(name: str) -> str:
    """A tensor or key name, quoted, on one line."""
    return json.dumps(name)


class InspectWarning(UserWarning):
    """A value that is legal but odd (the CLI shows it as one `warning:` line on stderr)."""


def warn(message: str) -> None:
    """Warn once per message, in one line (see InspectWarning)."""
    import warnings

    warnings.warn(printable(message), InspectWarning, stacklevel=2)
