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
UNKNOWN_LIFETIME_S = 3600.0  # a credential that states no expiry: renewed hourly


class AuthError(OptionError):
    """No token could be had: one line saying why and what to set (start-up prints it, exits 2)."""


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """One renewal (`refresh`) or one call's wait for it (`wait`): for the auth log."""

    event: str  # refresh | refresh_failed | wait
    duration_ms: float
    detail: str = ""


class TokenSource:
    """The process's access token from google-auth `credentials`, renewed ahead of its expiry.

    `clock` is wall time in epoch seconds (google-auth's expiry is wall time too); tests inject one.
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
        self._refresher: gevent.Greenlet | None = None
        self.refreshes = 0
        self.failures = 0

    # ---- what the transports ask -------------------------------------------------------------

    def token(self) -> str:
        """The current token, never waiting (callers waited in wait_valid before their clock)."""
        return self._token

    @property
    def credentials(self) -> Any:
        return self._credentials

    def expired(self) -> bool:
        return not self._token or self._clock() >= self._expires_at

    def refresh_due(self) -> float:
        """Epoch seconds at which the token should be renewed."""
        lifetime = self._expires_at - self._obtained
        return self._expires_at - min(REFRESH_AHEAD_S, lifetime / 4)

    def wait_valid(self) -> None:
        """Return once the token is valid, renewing it first if it has expired; the wait is
        recorded. Raises AuthError when the renewal fails (the call then fails as client_error)."""
        if not self.expired():
            return
        started = time.perf_counter()
        self.renew()
        self._on_event(AuthEvent("wait", (time.perf_counter() - started) * 1000.0))
        if self.expired():
            raise AuthError(f"no valid access token: the last renewal failed ({self._last_error})")

    # ---- renewal ---------------------------------------------------------------------------------

    def fetch(self) -> None:
        """The first token, before any load: raises AuthError with the reason."""
        self.renew()
        if not self._token:
            raise AuthError(f"no access token: {self._last_error}")

    def renew(self) -> bool:
        """Renew now, or join a renewal already under way. True when it succeeded."""
        if self._renewing is not None:
            self._renewing.wait()
            return not self.expired()
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
        except Exception as exc:  # noqa: BLE001 - google-auth raises many kinds; each is recorded
            self.failures += 1
            self._last_error = redact(f"{type(exc).__name__}: {exc}", (self._token,))[:300]
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            self._on_event(AuthEvent("refresh_failed", elapsed_ms, self._last_error))
            logger.warning("Vertex AI access token renewal failed: %s", self._last_error)
            return False
        self._on_token(token)  # the redactor knows it before anything can print it
        now = self._clock()
        expiry = self._credentials.expiry
        self._token, self._obtained = token, now
        self._expires_at = _expiry(expiry) if expiry else now + UNKNOWN_LIFETIME_S
        self.refreshes += 1
        left_s = max(0.0, self._expires_at - now)
        self._on_event(
            AuthEvent("refresh", (time.perf_counter() - started) * 1000.0, f"expires_in_s={left_s:.0f}")
        )
        return True

    def start_refresher(self) -> None:
        """Renew in the background from now on, each time refresh_due comes."""
        if self._refresher is None:
            self._refresher = gevent.spawn(self._refresh_loop)

    def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.kill(block=False)
            self._refresher = None

    def _refresh_loop(self) -> None:
        retry_s = RETRY_FIRST_S
        while True:
            # why: a timer until the renewal is due is the event this loop waits for
            gevent.sleep(max(0.0, self.refresh_due() - self._clock()))
            if self.renew():
                retry_s = RETRY_FIRST_S
                continue
            # why: a failed renewal is tried again after a growing pause, while the token lasts
            gevent.sleep(retry_s)
            retry_s = min(retry_s * 2, RETRY_MAX_S)


def _expiry(expiry: datetime) -> float:
    """google-auth's expiry is a naive UTC datetime."""
    return (expiry if expiry.tzinfo else expiry.replace(tzinfo=UTC)).timestamp()


def load_credentials(credentials_file: str = "") -> tuple[Any, str]:
    """google-auth credentials with the cloud-platform scope and the project they name: from
    `credentials_file` (a service-account or authorized-user JSON) when given, else the
    application-default credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, the metadata
    server). Raises AuthError with what to set."""
    import google.auth
    from google.auth import exceptions

    try:
        if credentials_file:
            credentials, project = google.auth.load_credentials_from_file(
                credentials_file, scopes=[CLOUD_PLATFORM]
            )
        else:
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
