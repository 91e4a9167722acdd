"""users.auth.TokenSource: one token per process, renewed ahead of expiry, never inside a call.

Driven with an injected clock and a stand-in for google-auth credentials (the real library against
the emulator's token endpoint is in tests/e2e/test_vertex_run.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import gevent
import pytest
from gevent.event import Event

from users.auth import REFRESH_AHEAD_S, AuthError, AuthEvent, TokenSource
from users.transports.genai_sdk import SourceCredentials


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeCredentials:
    """google-auth's shape: refresh(request) sets token and a naive-UTC expiry."""

    def __init__(self, clock: Clock, lifetime_s: float, fail: bool = False) -> None:
        self.clock, self.lifetime_s, self.fail = clock, lifetime_s, fail
        self.token: str | None = None
        self.expiry: datetime | None = None
        self.calls = 0
        self.gate: Event | None = None  # when set, refresh waits for it

    def refresh(self, request: object) -> None:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait()
        if self.fail:
            raise RuntimeError(f"token endpoint said no to {self.token}")
        self.token = f"ya29.test-token-{self.calls:04d}"
        self.expiry = datetime.fromtimestamp(self.clock() + self.lifetime_s, UTC).replace(tzinfo=None)


def make(
    lifetime_s: float = 3600.0, **kwargs: object
) -> tuple[TokenSource, FakeCredentials, Clock, list[AuthEvent], list[str]]:
    clock = Clock()
    credentials = FakeCredentials(clock, lifetime_s, **kwargs)  # type: ignore[arg-type]
    events: list[AuthEvent] = []
    tokens: list[str] = []
    source = TokenSource(credentials, clock=clock, on_token=tokens.append, on_event=events.append)
    return source, credentials, clock, events, tokens


def test_first_token_and_when_it_is_renewed() -> None:
    source, credentials, clock, events, tokens = make(3600.0)
    source.fetch()
    assert source.token() == "ya29.test-token-0001" and tokens == ["ya29.test-token-0001"]
    assert [e.event for e in events] == ["refresh"] and events[0].detail == "expires_in_s=3600"
    assert source.refresh_due() == pytest.approx(clock.now + 3600 - REFRESH_AHEAD_S)
    short, _, short_clock, _, _ = make(8.0)
    short.fetch()
    assert short.refresh_due() == pytest.approx(short_clock.now + 6.0)  # a quarter of a short life


def test_a_call_waits_only_for_an_expired_token_and_the_wait_is_recorded() -> None:
    source, credentials, clock, events, _ = make(60.0)
    source.fetch()
    source.wait_valid()
    assert credentials.calls == 1 and [e.event for e in events] == ["refresh"]
    clock.now += 61
    assert source.expired()
    source.wait_valid()
    assert credentials.calls == 2 and source.token() == "ya29.test-token-0002"
    assert [e.event for e in events] == ["refresh", "refresh", "wait"]


def test_a_failed_renewal_is_recorded_redacted_and_the_first_fetch_fails_with_one_line() -> None:
    source, credentials, clock, events, _ = make(60.0)
    source.fetch()
    credentials.fail = True
    assert not source.renew()
    assert events[-1].event == "refresh_failed"
    assert "ya29.test-token-0001" not in events[-1].detail and "token endpoint said no" in events[-1].detail
    assert source.token() == "ya29.test-token-0001"  # the old one still serves until it expires
    clock.now += 61
    with pytest.raises(AuthError, match="the last renewal failed"):
        source.wait_valid()
    broken, _, _, _, _ = make(60.0, fail=True)
    with pytest.raises(AuthError, match="no access token: RuntimeError"):
        broken.fetch()


def test_callers_that_find_a_renewal_under_way_join_it() -> None:
    source, credentials, _, _, _ = make(60.0)
    credentials.gate = Event()
    first = gevent.spawn(source.renew)
    second = gevent.spawn(source.renew)
    gevent.idle()  # both have started; the first is inside refresh, the second waits for it
    credentials.gate.set()
    assert first.get(timeout=10) and second.get(timeout=10)
    assert credentials.calls == 1


def test_the_background_renewal_comes_before_expiry() -> None:
    """Real wall clock: a token living 4 s is renewed at 3 s, found by its event (no sleep)."""
    import time

    renewed = Event()
    credentials = FakeCredentials(time.time, 4.0)  # type: ignore[arg-type]
    events: list[AuthEvent] = []

    def on_event(event: AuthEvent) -> None:
        events.append(event)
        if len(events) == 2:
            renewed.set()

    source = TokenSource(credentials, on_event=on_event)
    source.fetch()
    first_expiry = source._expires_at
    source.start_refresher()
    try:
        assert renewed.wait(timeout=30), "the token was not renewed in the background"
        renewed_at = time.time()
    finally:
        source.stop()
    assert [e.event for e in events] == ["refresh", "refresh"]
    assert source.token() == "ya29.test-token-0002" and source._expires_at > first_expiry
    # A second before the first token expired: a renewal at expiry would be a second late.
    assert renewed_at < first_expiry, (renewed_at, first_expiry)


def test_the_sdk_sees_the_source_s_state_and_never_renews_inside_a_call() -> None:
    source, credentials, clock, _, _ = make(60.0)
    source.fetch()
    credentials.quota_project_id = "billing-project"
    sdk_view = SourceCredentials(source)
    # google-auth's own test would call a 60 s token expired (within 3m45s of expiry): the SDK
    # would then refresh inside every call.
    assert sdk_view.token == "ya29.test-token-0001" and not sdk_view.expired and sdk_view.valid
    assert sdk_view.quota_project_id == "billing-project"  # the SDK sends it as x-goog-user-project
    clock.now += 61
    assert sdk_view.expired
    sdk_view.refresh(None)  # what the SDK does with expired credentials, inside the call
    assert credentials.calls == 1 and sdk_view.token == "ya29.test-token-0001"


def test_a_failing_token_endpoint_is_asked_again_only_after_a_growing_pause() -> None:
    source, credentials, clock, events, _ = make(60.0)
    source.fetch()
    credentials.fail = True
    clock.now += 61  # expired
    with pytest.raises(AuthError):
        source.wait_valid()
    assert credentials.calls == 2
    for _ in range(50):  # a call after another finds the token expired: none asks the endpoint
        with pytest.raises(AuthError, match="the last renewal failed"):
            source.wait_valid()
    assert credentials.calls == 2 and source.next_attempt() == pytest.approx(clock.now + 1.0)
    clock.now += 1.0
    assert not source.renew() and credentials.calls == 3
    assert source.next_attempt() == pytest.approx(clock.now + 2.0)  # the pause doubles
    clock.now += 2.0
    credentials.fail = False
    source.wait_valid()  # the endpoint is back: the next call renews, waits, and goes
    assert credentials.calls == 4 and not source.expired()
    assert [e.event for e in events].count("refresh_failed") == 2 and events[-1].event == "wait"


def test_a_token_that_arrives_expired_is_a_failure_not_a_loop() -> None:
    source, credentials, clock, events, _ = make(0.0)
    assert not source.renew()
    assert events[-1].event == "refresh_failed" and "already expired" in events[-1].detail
    assert source.next_attempt() > clock.now  # a pause before the next try


def test_a_401_makes_a_token_that_served_a_while_stale() -> None:
    source, credentials, clock, _, _ = make(3600.0)
    source.fetch()
    source.invalidate()  # a 401 right after a renewal was for the old token: kept
    assert not source.expired()
    clock.now += 30
    source.invalidate()
    assert source.expired()
    source.wait_valid()
    assert credentials.calls == 2 and not source.expired()


def test_an_auth_log_that_cannot_write_does_not_stop_the_renewals() -> None:
    clock = Clock()
    credentials = FakeCredentials(clock, 60.0)

    def broken(event: AuthEvent) -> None:
        raise OSError("disk full")

    source = TokenSource(credentials, clock=clock, on_event=broken)
    assert source.renew() and source.token() == "ya29.test-token-0001"
