"""Transports: how one call reaches the API. Each turns a CallSpec into a CallResult or a CallError.

A transport is one module with one class (`name`, `call`, `close`; optionally `payload`), plus one
`register_transport` call that names it. The registry keeps only the class's import path: an SDK
takes about a second to import, so nothing is imported until `transport_class(name)` asks for it,
which start-up does before the load starts. Everything a transport shares with the others (the
request description `users.call.rest_body`, the reply mapping `replies`, the error kinds
`users.errors`) lives outside it, so a new one, in this package or outside it, only sends.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from users.call import CallResult, CallSpec, CallTimer

if TYPE_CHECKING:
    from users.vertex import VertexAccess


class Transport(Protocol):
    name: str

    # A transport registered with backends=("gemini", "vertex") also takes `vertex`: the process's
    # VertexAccess (users/vertex.py), given only on a Vertex run.
    def __init__(self, *, base_url: str, api_key: str, timeout_s: float) -> None: ...

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        """Make one attempt. Raise users.errors.CallError, classified, on any failure."""
        ...

    def close(self) -> None: ...

    # Optional: `payload(spec)`, a staticmethod returning the spec's request in this transport's
    # form, built on first use and kept on the spec (CallSpec.payload). prepare_payloads calls it.


@dataclass(frozen=True, slots=True)
class TransportEntry:
    name: str
    target: str  # "package.module:ClassName", imported on first use
    help: str
    backends: tuple[str, ...] = ("gemini",)  # the APIs it can reach: gemini, vertex


_NAME = re.compile(r"[a-z][a-z0-9_-]*")
# name -> entry, in registration order (the order --transport lists them). Filled at import time
# by the calls below and by modules that add their own; read-only once the load starts.
_registry: dict[str, TransportEntry] = {}


def register_transport(
    name: str,
    target: str,
    *,
    help: str = "",  # noqa: A002 - argparse's word
    backends: tuple[str, ...] = ("gemini",),
) -> None:
    """Make `name` a transport implemented by the class at `target` ("package.module:ClassName").

    The module is not imported here. Registering a name again with the same target does nothing
    (a module imported twice); with another target it is an error, as two transports would fight.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"transport name {name!r}: use lower-case letters, digits, '_' or '-'")
    module, _, cls = target.partition(":")
    if not module or not cls:
        raise ValueError(f"transport {name!r}: target {target!r} must look like 'package.module:ClassName'")
    entry = TransportEntry(name, target, help, tuple(backends))
    known = _registry.get(name)
    if known is not None and known.target != target:
        raise ValueError(f"transport {name!r} is already registered as {known.target}")
    _registry[name] = entry


def transport_names() -> tuple[str, ...]:
    return tuple(_registry)


def transport_backends(name: str) -> tuple[str, ...]:
    """The backends a registered transport reaches (without importing it); () for an unknown one."""
    entry = _registry.get(name)
    return entry.backends if entry is not None else ()


def transport_help() -> str:
    """One line for --transport's help: "genai = google-genai SDK, ..."."""
    return ", ".join(f"{e.name} = {e.help}" if e.help else e.name for e in _registry.values())


def transport_class(name: str) -> type[Transport]:
    """The transport's class, importing its module. Call it before the load starts: an import
    inside a user's on_start would stall every greenlet of the process for that second."""
    try:
        entry = _registry[name]
    except KeyError:
        raise ValueError(f"unknown transport {name!r}: choose one of {', '.join(_registry)}") from None
    module, _, attribute = entry.target.partition(":")
    cls = getattr(importlib.import_module(module), attribute)
    if getattr(cls, "name", None) != name:
        # The name goes onto every Outcome (Outcome.transport): it must be the one the run chose.
        declared = getattr(cls, "name", None)
        raise TypeError(f"{entry.target} is registered as transport {name!r} but its name is {declared!r}")
    return cls


def make_transport(
    name: str, *, base_url: str, api_key: str, timeout_s: float, vertex: VertexAccess | None = None
) -> Transport:
    cls = transport_class(name)
    if vertex is None:
        return cls(base_url=base_url, api_key=api_key, timeout_s=timeout_s)
    return cls(base_url=base_url, api_key=api_key, timeout_s=timeout_s, vertex=vertex)  # type: ignore[call-arg]


def prepare_payloads(name: str, specs: Iterable[CallSpec]) -> int:
    """Encode every spec for this transport now (off the event loop, before the load), so no user
    pays for it on a first call. Returns how many specs were encoded; 0 for a transport that
    encodes nothing ahead (no `payload`)."""
    payload = getattr(transport_class(name), "payload", None)
    if payload is None:
        return 0
    count = 0
    for spec in specs:
        try:
            payload(spec)
        except Exception:  # noqa: BLE001, S112 - each call reports it, classified, as the run goes
            continue
        count += 1
    return count


register_transport(
    "genai",
    "users.transports.genai_sdk:GenaiTransport",
    help="google-genai SDK",
    backends=("gemini", "vertex"),
)
register_transport(
    "legacy", "users.transports.legacy_sdk:LegacyTransport", help="google-generativeai over REST"
)
register_transport(
    "http",
    "users.transports.raw_http:RawHttpTransport",
    help="raw HTTP (fastest)",
    backends=("gemini", "vertex"),
)
