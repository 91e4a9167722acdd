"""Vertex AI credentials: one OAuth 2 access token per process, refreshed before it expires.

Vertex takes a bearer token from a service account (GOOGLE_APPLICATION_CREDENTIALS) or the
application-default credentials (google-auth finds them both). Left to the SDK, a token is
refreshed inside the call that finds it stale: that call's latency would hold a JWT signature and
a round trip to the token endpoint, and every user of the process would queue behind it. Here a
`TokenSource` fetches the process's token before the load starts and a greenlet of its own renews
it REFRESH_AHEAD before expiry (a quarter of the lifetime, for a short-lived token), so no call
waits. Should a call still find the token expired (the renewal failed, or the process is so busy
its greenlet ran late), it waits for the renewal before its clock starts (`wait_valid`), and the
wait is recorded. Every renewal and wait is an event for the auth log (metrics.event_log).

Tokens are secrets: each new one is handed to `on_token` (the run's redactor) before any use.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import gevent
from gevent.event import Event

from core.options import OptionError
from core.secrets import redact

logger = logging.getLogger(__name__)

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
REFRESH_AHEAD_S = 300.0  # renew this long before expiry (google-auth itself waits until 225 s)
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 30.0  # a failed renewal is tried again after these
EXPIRY_MARGIN_S = 10.0  # a token is treated as expired this long before (a tenth, if short-lived)
MIN_PAUSE_S = 0.25  # the refresher's shortest sleep
MIN_TOKEN_AGE_S = 5.0  # a 401 makes a token stale only once it has served this long
UNKNOWN_LIFETIME_S = 3600.0  # a credential that states no expiry: renewed hourly


class AuthError(OptionError):
    """No token could be had: one line saying why and what to set (start-up prints it, exits 2)."""


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """One renewal (`refresh`) or one call's wait for it (`wait`): for the auth log."""

    event: str  # refresh | refresh_failed | wait | in_force
    duration_ms: float
    detail: str = ""


class TokenSource:
    """The process's access token from google-auth `credentials`, renewed ahead of its expiry.

    `clock` is wall time in epoch seconds (google-auth's expiry is wall time too); tests inject one.
    A failed renewal is not tried again before a growing pause (RETRY_FIRST_S doubling to
    RETRY_MAX_S), whoever asks: a token endpoint that is down must not be asked once per call.
    """

    def __init__(
        self,
        credentials: Any,
        *,
        clock: Callable[[], float] = time.time,
        on_token: Callable[[str], None] = lambda token: None,
        on_event: Callable[[AuthEvent], None] = lambda event: None,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._on_token = on_token
        self._on_event = on_event
        self._token = ""
        self._obtained = 0.0
        self._expires_at = 0.0
        self._renewing: Event | None = None  # set while a renewal is under way: waiters join it
        self._last_error = ""
        self._retry_s = 0.0  # the pause after the last failure; 0 after a success
        self._retry_at = 0.0  # no renewal is tried before this (epoch seconds)
        self._refresher: gevent.Greenlet | None = None

    # ---- what the transports ask -------------------------------------------------------------

    def token(self) -> str:
        """The current token, never waiting (callers waited in wait_valid before their clock)."""
        return self._token

    @property
    def quota_project(self) -> str:
        """The project billed for quota when it is not the called one (user credentials with a
        quota project): sent as x-goog-user-project, as google-genai itself does."""
        return str(getattr(self._credentials, "quota_project_id", None) or "")

    def expired(self) -> bool:
        """True from a little before the expiry on (clocks differ; a call takes time to arrive)."""
        lifetime = self._expires_at - self._obtained
        return not self._token or self._clock() >= self._expires_at - min(EXPIRY_MARGIN_S, lifetime / 10)

    def refresh_due(self) -> float:
        """Epoch seconds at which the token should be renewed."""
        lifetime = self._expires_at - self._obtained
        return self._expires_at - min(REFRESH_AHEAD_S, lifetime / 4)

    def wait_valid(self) -> None:
        """Return once the token is valid, renewing it first if it has expired; the wait is
        recorded. Raises AuthError when there is none (the last renewal failed and the next is
        not due yet), at once: the call then goes out and the API refuses it."""
        if not self.expired():
            return
        started = time.perf_counter()
        if self.renew():
            self._emit(AuthEvent("wait", (time.perf_counter() - started) * 1000.0))
            return
        raise AuthError(f"no valid access token: the last renewal failed ({self._last_error})")

    def announce(self) -> None:
        """Record the token in force (a web-UI test starting with the process's token: its own
        auth log then says how it was signed in)."""
        if self._token:
            self._emit(AuthEvent("in_force", 0.0, f"expires_in_s={self._expires_at - self._clock():.0f}"))

    def join_renewal(self) -> None:
        """Wait for a renewal under way, if any; never start one (the SDK's refresh, in a call)."""
        if self._renewing is not None:
            self._renewing.wait()

    def invalidate(self) -> None:
        """The API refused the token as expired or invalid (401, revoked early): once it has served
        a while, the next call waits for a renewal instead of sending it again. (A token younger
        than MIN_TOKEN_AGE_S is kept: the 401 was most likely for its predecessor.)"""
        if self._token and self._clock() - self._obtained >= MIN_TOKEN_AGE_S:
            self._expires_at = min(self._expires_at, self._clock())

    # ---- renewal ---------------------------------------------------------------------------------

    def fetch(self) -> None:
        """The first token, before any load: raises AuthError with the reason."""
        self.renew()
        if not self._token or self.expired():
            raise AuthError(f"no access token: {self._last_error}")

    def renew(self) -> bool:
        """Renew now, or join a renewal already under way. True when the token is then valid.
        During the pause after a failure nothing is tried: False at once."""
        if self._renewing is not None:
            self._renewing.wait()
            return not self.expired()
        if self._clock() < self._retry_at:
            return False
        self._renewing = Event()
        try:
            return self._renew_once()
        finally:
            renewing, self._renewing = self._renewing, None
            renewing.set()

    def _renew_once(self) -> bool:
        started = time.perf_counter()
        try:
            from google.auth.transport.requests import Request

            self._credentials.refresh(Request())
            token = str(self._credentials.token or "")
            if not token:
                raise ValueError("the token endpoint answered no access_token")
            expiry = self._credentials.expiry
            now = self._clock()
            expires_at = _expiry(expiry) if expiry else now + UNKNOWN_LIFETIME_S
            if expires_at <= now:
                raise ValueError("the token endpoint answered a token that has already expired")
        except Exception as exc:  # noqa: BLE001 - google-auth raises many kinds; each is recorded
            return self._failed(exc, started)
        self._on_token(token)  # the redactor knows it before anything can print it
        self._token, self._obtained, self._expires_at = token, now, expires_at
        self._retry_s = self._retry_at = 0.0
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        self._emit(AuthEvent("refresh", elapsed_ms, f"expires_in_s={expires_at - now:.0f}"))
        return True

    def _failed(self, exc: Exception, started: float) -> bool:
        self._retry_s = min(self._retry_s * 2, RETRY_MAX_S) if self._retry_s else RETRY_FIRST_S
        self._retry_at = self._clock() + self._retry_s
        self._last_error = redact(f"{type(exc).__name__}: {exc}", (self._token,))[:300]
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        self._emit(AuthEvent("refresh_failed", elapsed_ms, self._last_error))
        logger.warning(
            "Vertex AI access token renewal failed (next try in %.0f s): %s", self._retry_s, self._last_error
        )
        return False

    def _emit(self, event: AuthEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # noqa: BLE001 - a log that cannot be written must not stop the renewals
            logger.exception("the auth log could not record a %s", event.event)

    def start_refresher(self) -> None:
        """Renew in the background from now on, each time refresh_due (or the retry) comes."""
        if self._refresher is None:
            self._refresher = gevent.spawn(self._refresh_loop)

    def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.kill(block=False)
            self._refresher = None

    def next_attempt(self) -> float:
        """Epoch seconds of the refresher's next renewal: when due, or the retry after a failure."""
        return self._retry_at if self._retry_at > self._clock() else self.refresh_due()

    def _refresh_loop(self) -> None:
        while True:
            # why: a timer until the renewal (or its retry) is due is the event this loop waits
            # for; never shorter than MIN_PAUSE_S, so no answer of the endpoint can make it spin
            gevent.sleep(max(MIN_PAUSE_S, self.next_attempt() - self._clock()))
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - the refresher outlives any one renewal's failure
                logger.exception("Vertex AI access token renewal raised")


def _expiry(expiry: datetime) -> float:
    """google-auth's expiry is a naive UTC datetime."""
    return (expiry if expiry.tzinfo else expiry.replace(tzinfo=UTC)).timestamp()


def load_credentials() -> tuple[Any, str]:
    """google-auth's application-default credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's,
    the metadata server) with the cloud-platform scope, and the project they name. Raises
    AuthError with what to set."""
    import google.auth
    from google.auth import exceptions

    try:
        credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM])
    except exceptions.DefaultCredentialsError as exc:
        raise AuthError(
            f"no Google Cloud credentials for Vertex AI ({_first_line(exc)}): set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run "
            "`gcloud auth application-default login`, or pass --api-key for Vertex AI express mode"
        ) from None
    except (OSError, ValueError) as exc:
        raise AuthError(f"the credentials file cannot be used: {_first_line(exc)}") from None
    return credentials, str(project or "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def throwaway_service_account(token_uri: str, project: str) -> dict[str, str]:
    """A service-account key made now, whose token endpoint is `token_uri`: how a run against the
    bundled emulator signs in, through the same google-auth path a real key takes. Never saved."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    email = f"load-test@{project}.iam.gserviceaccount.com"
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": str(10**20 + secrets.randbelow(9 * 10**20)),  # 21 digits, as Google's
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }


def service_account_credentials(info: dict[str, str]) -> Any:
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_info(info, scopes=[CLOUD_PLATFORM])
