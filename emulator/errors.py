"""Error bodies shaped like the real API: {"error": {"code", "message", "status", "details"}}.

The SDKs build their exception from these fields (google-genai: code/status/message/details;
google-api-core: the HTTP status plus message), so messages and statuses copy the real ones.
"""

from __future__ import annotations

import json
from typing import Any

STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
HELP = "type.googleapis.com/google.rpc.Help"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


class ApiError(Exception):
    """Raised anywhere in request handling; the server turns it into the JSON error response."""

    def __init__(self, code: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []
        self.headers: dict[str, str] = {}
        self.fault = ""  # set when an injected fault or a limit caused it, for the stats
        self.limits: tuple[str, ...] = ()  # a quota 429: every limit it broke (rpm, tpm, rpd)

    @property
    def status(self) -> str:
        return STATUS_BY_CODE.get(self.code, "UNKNOWN")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def body_bytes(self) -> bytes:
        return json.dumps(self.body(), indent=2).encode()


def invalid_argument(message: str, field: str | None = None) -> ApiError:
    details: list[dict[str, Any]] = []
    if field is not None:
        details.append({"@type": BAD_REQUEST, "fieldViolations": [{"field": field, "description": message}]})
    return ApiError(400, message, details)


def missing_key() -> ApiError:
    return ApiError(
        403,
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
        [
            {
                "@type": ERROR_INFO,
                "reason": "CONSUMER_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    )


def invalid_key() -> ApiError:
    return ApiError(
        400,
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": ERROR_INFO,
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    )


def model_not_found(model: str, version: str, method: str) -> ApiError:
    return ApiError(
        404,
        f"models/{model} is not found for API version {version}, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods.",
    )


def model_retired(model: str) -> ApiError:
    """A model shut down on its announced date: the real API's text since 2026."""
    return ApiError(
        404,
        f"This model models/{model} is no longer available. Please update your code to use a newer "
        "model for the latest features and improvements.",
    )


def server_error(code: int) -> ApiError:
    messages = {
        500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        # The 2026 text (docs/research/latency-and-quotas-2026-11-29.md); before: "The model is
        # overloaded. Please try again later."
        503: "This model is currently experiencing high demand. Spikes in demand are usually temporary. "
        "Please try again later.",
        504: "Deadline expired before operation could complete.",
    }
    return ApiError(code, messages.get(code, "Internal error encountered."))
