"""Client policies: what the client itself does about 429s, 5xx and its quota (--client-policy).

A policy is one module that registers itself here with `register_policy(PolicyKind(...))`: its
name in --client-policy, its place in the admission order, and `build`, which makes the process's
component from a BuildContext. Every attempt of a call goes through the run's components in that
order (chain.PolicyChain): admission before it (may wait, may shed, may send it to another model),
settlement after it (its error kind, HTTP status, RetryInfo delay and prompt tokens).

Built in: `breaker` (circuit breaker, first: an open breaker sheds or redirects without waiting in
a queue), `limiter` (client-side token buckets from the quota), `aimd` (adaptive concurrency, last:
it holds a place in flight only once the call may go). `retry` is the default and no component:
retries always come from --retries (users/retry.py).

The registry holds kinds of policy (code), never a run: the process's chain lives in the run
context (users/policies/runtime.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BUILTIN_MODULES = ("users.policies.breaker", "users.policies.limiter", "users.policies.aimd")


@dataclass(frozen=True, slots=True)
class PolicyKind:
    name: str
    order: int  # admission order: lower admits first
    help: str
    build: Callable[[Any], Any]  # BuildContext -> a chain.Component


_POLICIES: dict[str, PolicyKind] = {}


def register_policy(kind: PolicyKind) -> PolicyKind:
    known = _POLICIES.get(kind.name)
    if known is not None and known.build is not kind.build:
        raise ValueError(f"client policy {kind.name!r} is already registered")
    _POLICIES[kind.name] = kind
    return kind


def policy_kinds() -> dict[str, PolicyKind]:
    """Every registered policy, in admission order."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    return dict(sorted(_POLICIES.items(), key=lambda item: (item[1].order, item[0])))


def policy_names() -> tuple[str, ...]:
    return tuple(policy_kinds())
