"""Who may call the Vertex routes: the access tokens POST /token issues (emulator.oauth), and the
one check both fronts run on a Vertex request (authorize).

A token is self-validating, so nothing is stored: `ya29.e-` and 48 URL-safe characters,
the base64 of a payload (format, scope flags, when it was issued in milliseconds since the epoch,
its lifetime in seconds, random bytes) and the first 16 bytes of its HMAC-SHA256 under the
emulator's secret. The secret is drawn once at launch (emulator.__main__) and inherited by the
forked workers of --workers, so a token one worker issued is good at every other, and memory does
not grow with the tokens a long run issues. The fixed prefix lets a test grep a results folder
for a leaked token; stats and config never show a token or the secret.

Time is `clock`, epoch seconds (tests pass a manual one): real time, never the emulator's scaled
time, because google-auth counts the `expires_in` it is told in real seconds. expire_all() makes
every token issued so far expire at once (POST /emulator/tokens/expire: a token that runs out
while the client still holds it, without waiting an hour; with --workers every worker learns it
through the control file within 0.25 s).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import os
import struct
import time
from collections.abc import Callable

from emulator import vertex
from emulator.errors import ApiError
from emulator.vertex import VertexTarget

# Short and wordless: a client's redactor hides any 8 characters of a token it knows, and a prefix
# holding "emulator" would hide that word in every log line of the run.
PREFIX = "ya29.e-"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_LIFETIME_S = 3599  # what Google's token endpoint answers
_FORMAT = 1
_PAYLOAD = struct.Struct(">BBQI6s")  # format, scope flags, issued (ms), lifetime (s), random
_MAC_BYTES = 16
_TOKEN_CHARS = len(PREFIX) + (_PAYLOAD.size + _MAC_BYTES) * 4 // 3
_CLOUD_PLATFORM_FLAG = 1
VERIFIED_KEPT = 10_000  # verified tokens remembered (forgotten all at once when full: bounded memory)


class Check(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"  # not one of this emulator's tokens
    EXPIRED = "expired"
    SCOPE_INSUFFICIENT = "scope insufficient"  # granted without cloud-platform


class AccessTokens:
    """Issues and checks access tokens; `secret` (None: a fresh one) is shared by every process
    that must accept the same tokens."""

    def __init__(
        self,
        secret: bytes | None = None,
        lifetime_s: int = DEFAULT_LIFETIME_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret if secret is not None else os.urandom(32)
        self.lifetime_s = lifetime_s
        self.clock = clock
        self.expired_before_ms = 0  # tokens issued at or before this are expired (expire_all)
        # Tokens whose MAC was verified: (flags, issued ms, lifetime s). A run sends one token
        # thousands of times, and the HMAC was most of a Vertex request's extra cost.
        self._verified: dict[str, tuple[int, int, int]] = {}

    def issue(self, scopes: frozenset[str]) -> tuple[str, int]:
        """A new token granting `scopes`, and its lifetime in seconds (the answer's expires_in)."""
        # Never at or before a cut-off: a token issued in the millisecond of expire_all stays good.
        issued_ms = max(int(self.clock() * 1000), self.expired_before_ms + 1)
        flags = _CLOUD_PLATFORM_FLAG if CLOUD_PLATFORM in scopes else 0
        payload = _PAYLOAD.pack(_FORMAT, flags, issued_ms, self.lifetime_s, os.urandom(6))
        token = base64.urlsafe_b64encode(payload + self._mac(payload)).decode()
        return PREFIX + token, self.lifetime_s

    def check(self, token: str) -> Check:
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify(token)
            if verified is None:
                return Check.INVALID
            if len(self._verified) >= VERIFIED_KEPT:
                self._verified.clear()
            self._verified[token] = verified
        flags, issued_ms, lifetime_s = verified
        if issued_ms <= self.expired_before_ms or self.clock() * 1000 >= issued_ms + lifetime_s * 1000:
            return Check.EXPIRED
        return Check.VALID if flags & _CLOUD_PLATFORM_FLAG else Check.SCOPE_INSUFFICIENT

    def _verify(self, token: str) -> tuple[int, int, int] | None:
        """(flags, issued ms, lifetime s) of a token this emulator's secret signed, else None."""
        if len(token) != _TOKEN_CHARS or not token.startswith(PREFIX):
            return None
        try:
            raw = base64.urlsafe_b64decode(token[len(PREFIX) :])
        except (binascii.Error, ValueError):
            return None
        payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None  # forged, or issued by another emulator (another secret)
        form, flags, issued_ms, lifetime_s, _ = _PAYLOAD.unpack(payload)
        return (flags, issued_ms, lifetime_s) if form == _FORMAT else None

    def expire_all(self, before_ms: int | None = None) -> int:
        """Expire every token issued until now (or until `before_ms`, a sibling's cut-off); the
        cut-off in force, which only ever moves forward."""
        cut = int(self.clock() * 1000) if before_ms is None else before_ms
        self.expired_before_ms = max(self.expired_before_ms, cut)
        return self.expired_before_ms

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; "" for another scheme or an empty
    token (credentials, but not ones Vertex takes); None without the header."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authorize(
    tokens: AccessTokens,
    target: VertexTarget,
    authorization: str | None,
    api_key: str | None,
    accepted_keys: list[str] | None,
    version: str,
    method: str,
) -> str:
    """The caller of a Vertex request (VertexTarget.caller), or the ApiError that refuses it:
    a project route needs one of our bearer tokens with cloud-platform scope; an express route
    an API key, held to the config's accepted_keys like the Developer API's."""
    if target.express:
        if not api_key:
            raise missing_credentials(version, method)
        if accepted_keys is not None and api_key not in accepted_keys:
            raise invalid_key(version, method)
        return target.caller(api_key)
    token = bearer_token(authorization)
    if token is None:
        raise api_keys_unsupported(version, method) if api_key else missing_credentials(version, method)
    check = tokens.check(token)
    if check is Check.SCOPE_INSUFFICIENT:
        raise insufficient_scopes(version, method)
    if check is not Check.VALID:
        reason = "ACCESS_TOKEN_EXPIRED" if check is Check.EXPIRED else "ACCESS_TOKEN_TYPE_UNSUPPORTED"
        raise invalid_credentials(reason, version, method)
    return target.caller(api_key)


# ---- Vertex's refusals (the texts are Google's) ------------------------------------------------

_SIGN_IN = "See https://developers.google.com/identity/sign-in/web/devconsole-project."


def missing_credentials(version: str, method: str) -> ApiError:
    return ApiError(
        401,
        "Request is missing required authentication credential. Expected OAuth 2 access token, login "
        f"cookie or other valid authentication credential. {_SIGN_IN}",
        [vertex.error_info("CREDENTIALS_MISSING", version, method)],
    )


def api_keys_unsupported(version: str, method: str) -> ApiError:
    """An API key, and no token, on a project route."""
    return ApiError(
        401,
        "API keys are not supported by this API. Expected OAuth2 access token or other authentication "
        "credentials that assert a principal. See https://cloud.google.com/docs/authentication",
        [vertex.error_info("CREDENTIALS_MISSING", version, method)],
    )


def invalid_credentials(reason: str, version: str, method: str) -> ApiError:
    return ApiError(
        401,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
        f"or other valid authentication credential. {_SIGN_IN}",
        [vertex.error_info(reason, version, method)],
    )


def insufficient_scopes(version: str, method: str) -> ApiError:
    return ApiError(
        403,
        "Request had insufficient authentication scopes.",
        [vertex.error_info("ACCESS_TOKEN_SCOPE_INSUFFICIENT", version, method)],
    )


def invalid_key(version: str, method: str) -> ApiError:
    return ApiError(
        400,
        "API key not valid. Please pass a valid API key.",
        [vertex.error_info("API_KEY_INVALID", version, method)],
    )
