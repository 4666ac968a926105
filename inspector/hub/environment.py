"""The Hub's environment variables, checked in one place before huggingface_hub reads them.

huggingface_hub reads HF_ENDPOINT, HF_HUB_DOWNLOAD_TIMEOUT and HF_HUB_ETAG_TIMEOUT once, when it is
first imported (`int()` of the timeouts: "nan" is a ValueError there, at import), and the
reachability probe parses HF_ENDPOINT itself: a value that did not parse used to send the probe to
the real Hub. `check_hub_environment()` refuses what huggingface_hub could not use, in one line
naming the variable and its value, and returns the endpoint's host and port; every function of
inspector.hub (and the transformers fallback) calls it before huggingface_hub is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from inspector.errors import InspectError, printable

DEFAULT_ENDPOINT = "https://huggingface.co"
TIMEOUT_VARIABLES = ("HF_HUB_DOWNLOAD_TIMEOUT", "HF_HUB_ETAG_TIMEOUT")
MAX_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Endpoint:
    url: str
    host: str
    port: int


def _endpoint() -> Endpoint:
    text = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    shown = printable(repr(text), 100)
    try:
        url = urlsplit(text.strip())
        port = url.port  # a port out of 0-65535 is a ValueError here
    except ValueError as exc:
        raise InspectError(f"HF_ENDPOINT {shown}: not a URL ({printable(exc, 80)})") from None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise InspectError(f"HF_ENDPOINT {shown}: expected http(s)://host[:port], such as {DEFAULT_ENDPOINT}")
    if port == 0:
        raise InspectError(f"HF_ENDPOINT {shown}: port 0 cannot be connected to")
    return Endpoint(text, url.hostname, port or (443 if url.scheme == "https" else 80))


def _check_timeouts() -> None:
    for name in TIMEOUT_VARIABLES:
        value = os.environ.get(name)
        if value is None:
            continue
        digits = value.strip()
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 6 and 1 <= int(digits) <= MAX_TIMEOUT_S):
            raise InspectError(f"{name} {printable(repr(value), 60)}: expected a whole number of seconds from 1 to "
                               f"{MAX_TIMEOUT_S} (huggingface_hub reads it with int())")


def check_hub_environment() -> Endpoint:
    """The Hub endpoint (host and port), after checking every Hub variable huggingface_hub reads."""
    _check_timeouts()
    return _endpoint()
