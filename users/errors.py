"""The error taxonomy: every transport's exceptions map to one kind from core.outcome.

The one classification every transport shares: an API error (an HTTP status, or the code of a
google.rpc.Status body) gets its kind from `api_error`; anything else from `classify`, told only
which of the transport's own exception types mean a timeout and which a dropped connection. What
is left (a reply that could not be read) is invalid_response.
"""

from __future__ import annotations

import re

from gevent import GreenletExit

from core import outcome
from core.outcome import Outcome
from core.secrets import redact as redact_secrets

MAX_MESSAGE_CHARS = 300


class CallError(Exception):
    """A classified failure of one attempt, carrying what retries and the Outcome need."""

    def __init__(
        self, kind: str, message: str, *, http_status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.http_status = http_status
        self.retry_after_s = retry_after_s


class CallCancelled(GreenletExit):
    """The user was killed (Locust's stop) while a call was in flight, retrying or backing off.

    Raised by GeminiUser.execute in place of the GreenletExit that killed it, carrying the call's
    Outcome (kind `cancelled`, its attempts so far) so the caller records it before the greenlet
    dies. A GreenletExit still: Locust and gevent treat it as the kill it is.
    """

    def __init__(self, call: Outcome) -> None:
        super().__init__(f"cancelled: {call.error_message}")
        self.outcome = call


def redact(text: str, known: tuple[str, ...] = ()) -> str:
    """Remove API keys from a message, whether we know the key or only its shape, in every form a
    library prints it (core.secrets); then one line of at most MAX_MESSAGE_CHARS. Redacted before
    the whitespace is folded, which would change an escaped or spaced key."""
    text = " ".join(redact_secrets(text, known).split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def kind_for_status(status: int) -> str:
    # A 504 (DEADLINE_EXCEEDED) is the server's answer, a 5xx like any other: server_error. `timeout`
    # is our own client giving up (--timeout), when no answer came at all.
    if status == 429:
        return outcome.RATE_LIMITED
    if status >= 500:
        return outcome.SERVER_ERROR
    return outcome.CLIENT_ERROR


def parse_retry_delay(value: str | float | int | None) -> float | None:
    """google.rpc.RetryInfo.retryDelay comes as a Duration string such as "22s" or "1.5s"."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", value)
    return float(match.group(1)) if match else None


def retry_delay_from_details(details: object) -> float | None:
    """Find RetryInfo in an error body's `details` list (or a whole error body)."""
    if isinstance(details, dict):
        details = details.get("error", details).get("details", [])
    if not isinstance(details, list):
        return None
    for item in details:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return parse_retry_delay(item.get("retryDelay"))
    return None


Secrets = tuple[str, ...]


def api_error(
    code: int | None, status: str | None, message: str | None, details: object, secrets: Secrets
) -> CallError:
    """An error the API answered with: the kind from its code, RetryInfo from its details.

    No code (a body that says error but not which) is an unusable reply: invalid_response.
    """
    code = code if isinstance(code, int) and code > 0 else None
    text = f"{code or ''} {status or ''} {message or ''}".strip()
    return CallError(
        kind_for_status(code) if code else outcome.INVALID_RESPONSE,
        redact(text, secrets),
        http_status=code,
        retry_after_s=retry_delay_from_details(details),
    )


def timeout_error(detail: str, secrets: Secrets) -> CallError:
    return CallError(outcome.TIMEOUT, redact(f"timeout: {detail}", secrets))


def classify(
    exc: BaseException,
    secrets: Secrets,
    *,
    timeouts: tuple[type[BaseException], ...] = (),
    connections: tuple[type[BaseException], ...] = (),
) -> CallError:
    """The kind of a failure that is not an API error. Timeouts are checked before connections:
    HTTP clients make their timeouts subclasses of their transport errors."""
    if isinstance(exc, CallError):
        return exc
    if isinstance(exc, timeouts):
        return timeout_error(repr(exc), secrets)
    if isinstance(exc, connections):
        return CallError(outcome.CONNECTION, redact(f"{type(exc).__name__}: {exc}", secrets))
    # Malformed JSON, a reply that fails the SDK's schema, anything else the client trips on.
    return CallError(outcome.INVALID_RESPONSE, redact(f"{type(exc).__name__}: {exc}", secrets))
