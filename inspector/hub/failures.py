"""What went wrong with a Hub request, in one line naming the repo and the step.

`describe` picks the most telling exception of a chain (huggingface_hub's HTTP errors first, then
httpx's transport errors).
"""

from __future__ import annotations

import time
from typing import Any

from inspector.errors import printable
from inspector.hub.environment import check_hub_environment


def answer_timeout() -> float:
    """Seconds without an answer after which a request is reported as hung: huggingface_hub's own
    HF_HUB_DOWNLOAD_TIMEOUT (default 10)."""
    check_hub_environment()
    from huggingface_hub import constants

    return float(constants.HF_HUB_DOWNLOAD_TIMEOUT)


def endpoint() -> str:
    check_hub_environment()
    from huggingface_hub import constants

    return constants.ENDPOINT


def chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return out


def _status_reason(exc: BaseException) -> str | None:
    from huggingface_hub import errors as hf

    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(exc, hf.GatedRepoError):
        if status == 403:
            return "the repo is gated and this token has not been granted access (HTTP 403); ask for access on its page"
        return "the repo is gated (HTTP 401): accept its terms on the Hub and set HF_TOKEN"
    for cls_name, text in (
        ("RevisionNotFoundError", "no such revision on the Hugging Face Hub"),
        ("RepositoryNotFoundError", "no such model repo on the Hugging Face Hub (or it is private; set HF_TOKEN)"),
        ("RemoteEntryNotFoundError", "the file is not in the repo"),
        ("NotASafetensorsRepoError", "the repo has no model.safetensors or model.safetensors.index.json"),
        ("HFValidationError", "not a valid repo id"),
    ):
        cls = getattr(hf, cls_name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return text
    if isinstance(exc, hf.HfHubHTTPError) and status is not None:
        phrase = getattr(response, "reason_phrase", "") or ""
        if status == 429:
            wait = retry_after(response)
            return "the Hub is rate-limiting requests (HTTP 429" + (f", Retry-After {wait:g} s)" if wait else ")")
        return f"the Hub answered HTTP {status}" + (f" {phrase}" if phrase else "")
    return None


def network_reason(exc: BaseException) -> str | None:
    names = {c.__name__ for c in type(exc).__mro__}
    if "OfflineModeIsEnabled" in names:
        return "HF_HUB_OFFLINE is set, so the Hub cannot be asked"
    if "ConnectTimeout" in names:
        return f"could not connect to the Hub at {endpoint()} within {answer_timeout():g} s"
    if "TimeoutException" in names:
        return f"no answer from the Hub within {answer_timeout():g} s (it accepted the connection)"
    if "RemoteProtocolError" in names:
        return "the Hub closed the connection before the answer was complete"
    if "ReadError" in names or "ConnectionResetError" in names:
        return "the connection to the Hub was reset in the middle of the answer"
    if "ConnectError" in names or "NetworkError" in names:
        return f"cannot reach the Hugging Face Hub at {endpoint()} (offline?)"
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return "the download arrived truncated (fewer bytes than the Hub announced)"
    return None


def describe(repo_id: str, exc: BaseException, doing: str, revision: str | None = None) -> str:
    """One line: `repo[@revision]: doing: what went wrong`, from the most telling exception in the chain."""
    what = printable(repo_id if revision is None else f"{repo_id}@{revision}")
    errors = chain(exc)
    for finder in (_status_reason, network_reason):
        for e in errors:
            reason = finder(e)
            if reason:
                return f"{what}: {doing}: {reason}"
    if any(type(e).__name__ == "LocalEntryNotFoundError" for e in errors):
        return f"{what}: {doing}: not in the local cache, and the Hub could not be asked"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{what}: {doing} failed ({type(exc).__name__}: {printable(first)})"


def retry_after(response: Any) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date), or None."""
    value = (getattr(response, "headers", None) or {}).get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value[:12])  # digits bounded (float() of a long string is slow)
    import email.utils

    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None
