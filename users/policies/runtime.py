"""The process's client policy in the run context: checked options, the chain every user's attempts
go through, the policy log and, in a distributed run, the shared signal.

    init (every node)        install(): the messages and the test_start / test_stop listeners
    configure (start-up and  configure_policy(): the options checked into PolicySettings (one
      each test's start)       OptionError line each), the fallback model's price where needed
    test_start               a fresh chain (local, worker), the master's controller and first signal
    test_stop                the loops stopped, the policy log flushed and closed

One chain per process, shared by all its users, kept in the run context: never a module global.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
from locust.runners import MasterRunner, WorkerRunner

from core.context import run_context
from users.policies import policy_kinds, policy_names
from users.policies.chain import BuildContext, Clock, EventLog, PolicyChain
from users.policies.log import PolicyLog
from users.policies.options import PolicySettings
from users.policies.shared import MasterSignal, Signal, WorkerSignal
from users.state import users_state


@dataclass
class PolicyState:
    settings: PolicySettings | None = None
    chain: PolicyChain | None = None
    log: PolicyLog | None = None
    master: MasterSignal | None = None
    worker: WorkerSignal | None = None
    clock: Clock = time.monotonic  # what the policies' waits and windows read (tests inject theirs)
    sleep: Callable[[float], object] = gevent.sleep


def policy_state(environment: Any) -> PolicyState:
    return run_context(environment).ensure(PolicyState)


def policy_of(environment: Any) -> PolicyChain | None:
    """The chain this process's users send their attempts through; None for retries only."""
    return policy_state(environment).chain


def role_of(environment: Any) -> str:
    runner = getattr(environment, "runner", None)
    if isinstance(runner, MasterRunner):
        return "master"
    return "worker" if isinstance(runner, WorkerRunner) else "local"


def check_policy_options(options: Any, *, model: str) -> PolicySettings:
    """The options checked (one OptionError line each), without changing the run."""
    return PolicySettings.from_options(options, model=model, known=policy_names())


def configure_policy(environment: Any, options: Any) -> PolicySettings:
    """Check the options into this process's PolicySettings (the fallback model's price is checked
    with the run's other models: users/paid_models.py)."""
    users = users_state(environment)
    settings = check_policy_options(options, model=users.settings.model)  # type: ignore[union-attr]
    policy_state(environment).settings = settings
    return settings


def build_chain(
    settings: PolicySettings, model: str, clock: Clock, sleep: Callable[[float], object], log: EventLog,
    *, follower: bool = False,
) -> PolicyChain | None:  # fmt: skip
    if not settings.names:
        return None
    kinds = policy_kinds()
    context = BuildContext(settings, model, clock, sleep, log, follower)
    return PolicyChain(settings.label, tuple(kinds[name].build(context) for name in settings.names))


def install(environment: Any) -> None:
    """At init, on every node: the signal's messages (a worker's must exist before the first spawn
    message) and the listeners that build and end each test's policy."""
    state = policy_state(environment)
    if state.log is not None:
        return
    role = role_of(environment)
    state.log = PolicyLog(environment, role)
    if role == "master":
        master = state.master = MasterSignal(environment, state.log)
        # No signal after the stop begins: every one logged reaches workers still running.
        environment.events.test_stopping.add_listener(lambda **_: master.stop())
    elif role == "worker":
        state.worker = WorkerSignal(environment, lambda signal: _follow(environment, signal))
    environment.events.test_start.add_listener(lambda **_: start_policy(environment))
    environment.events.test_stop.add_listener(lambda **_: stop_policy(environment))


def start_policy(environment: Any) -> None:
    """A test starts: a fresh chain for this process's users (none on a master, which sends no
    calls: it runs the shared signal instead)."""
    state = policy_state(environment)
    settings, log = state.settings, state.log
    if settings is None or log is None:
        return
    if state.master is not None:
        state.chain = None
        if settings.aimd is not None or settings.limiter is not None:
            state.master.start(settings)
        return
    model = users_state(environment).settings.model  # type: ignore[union-attr]
    follower = state.worker is not None
    state.chain = build_chain(settings, model, state.clock, state.sleep, log, follower=follower)
    if state.chain is None or state.worker is None:
        return
    if state.worker.latest is not None:
        _follow(environment, state.worker.latest)
    aimd = state.chain.component("aimd")
    if aimd is not None:
        state.worker.start(aimd.drain)


def stop_policy(environment: Any) -> None:
    state = policy_state(environment)
    for side in (state.master, state.worker):
        if side is not None:
            side.stop()
    if state.log is not None:
        state.log.close()


def _follow(environment: Any, signal: Signal) -> None:
    """A worker applies the master's signal to its chain (kept for the chain the next test builds)."""
    chain = policy_of(environment)
    if chain is None:
        return
    aimd = chain.component("aimd")
    if aimd is not None and signal.share is not None:
        aimd.follow(signal.share, signal.detail())
        aimd.hold_until(signal.hold_until)
    limiter = chain.component("limiter")
    if limiter is not None:
        limiter.share(signal.workers)
