"""Transports: how one call reaches the API. Each turns a CallSpec into a CallResult or a CallError."""

from __future__ import annotations

import importlib
from typing import Protocol

from users.call import CallResult, CallSpec, CallTimer


class Transport(Protocol):
    name: str

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        """Make one attempt. Raise users.errors.CallError, classified, on any failure."""
        ...

    def close(self) -> None: ...


# name -> (module, class). Imported on first use: each SDK takes about a second to import.
_TRANSPORTS = {
    "genai": ("users.transports.genai_sdk", "GenaiTransport"),
    "legacy": ("users.transports.legacy_sdk", "LegacyTransport"),
    "http": ("users.transports.raw_http", "RawHttpTransport"),
}
TRANSPORT_NAMES = tuple(_TRANSPORTS)


def transport_class(name: str) -> type:
    """The transport's class, importing its module. Call it before the load starts: an import
    inside a user's on_start would stall every greenlet of the process for that second."""
    try:
        module, cls = _TRANSPORTS[name]
    except KeyError:
        raise ValueError(f"unknown transport {name!r}: choose one of {', '.join(TRANSPORT_NAMES)}") from None
    return getattr(importlib.import_module(module), cls)


def make_transport(name: str, *, base_url: str, api_key: str, timeout_s: float) -> Transport:
    return transport_class(name)(base_url=base_url, api_key=api_key, timeout_s=timeout_s)
