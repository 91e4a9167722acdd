"""Transports: how one call reaches the API. Each turns a CallSpec into a CallResult or a CallError."""

from __future__ import annotations

from typing import Protocol

from users.call import CallResult, CallSpec, CallTimer


class Transport(Protocol):
    name: str

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        """Make one attempt. Raise users.errors.CallError, classified, on any failure."""
        ...

    def close(self) -> None: ...


TRANSPORT_NAMES = ("genai", "legacy", "http")


def make_transport(name: str, *, base_url: str, api_key: str, timeout_s: float) -> Transport:
    if name == "genai":
        from users.transports.genai_sdk import GenaiTransport

        return GenaiTransport(base_url=base_url, api_key=api_key, timeout_s=timeout_s)
    if name == "legacy":
        from users.transports.legacy_sdk import LegacyTransport

        return LegacyTransport(base_url=base_url, api_key=api_key, timeout_s=timeout_s)
    if name == "http":
        from users.transports.raw_http import RawHttpTransport

        return RawHttpTransport(base_url=base_url, api_key=api_key, timeout_s=timeout_s)
    raise ValueError(f"unknown transport {name!r}: choose one of {', '.join(TRANSPORT_NAMES)}")
