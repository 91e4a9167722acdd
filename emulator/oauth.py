"""POST /token: the OAuth 2 token endpoint, as google-auth asks it for an access token.

Two grants, form-encoded (application/x-www-form-urlencoded) as google-auth sends them:
- `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`: a service account
  (google.oauth2.service_account.Credentials, a service-account JSON whose token_uri is this
  emulator's /token). The JWT must be RS256 with `iss`, an `aud` ending in /token (google-auth
  sends Google's own https://oauth2.googleapis.com/token whatever the token_uri), `iat` and `exp`
  at most an hour apart and around now, and a `scope`; the scopes it names are what the token
  grants (the Vertex routes want cloud-platform: emulator.auth).
- `grant_type=refresh_token&client_id=..&client_secret=..&refresh_token=..[&scope=..]`: a user's
  credentials (authorized_user ADC, as gcloud writes them). Any non-empty values are taken; the
  token grants the `scope` asked for, else cloud-platform.
The answer is Google's: {"access_token": "ya29.e-...", "expires_in": <the emulator's token
lifetime>, "token_type": "Bearer"} (plus "scope" for a refresh). A refusal is Google's too: 400
{"error": "invalid_grant" | "invalid_scope" | "invalid_request" | "unsupported_grant_type",
"error_description": ...}, 401 "invalid_client" for a refresh without its client.

The JWT's signature cannot be verified: the emulator has never seen the service account's public
key (Google looks it up by the key id). It must be there, non-empty base64url, and that is all; so
any well-formed assertion gets a token. What is checked is what a broken client gets wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import urllib.parse
from collections.abc import Mapping
from typing import Any

from emulator.auth import CLOUD_PLATFORM, AccessTokens

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REFRESH = "refresh_token"
MAX_JWT_LIFETIME_S = 3600
# How far the caller's clock may be off ours. Google publishes none; google-auth sets iat to now.
CLOCK_SKEW_S = 60
MAX_FORM_BYTES = 1 << 16
_TIMEFRAME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)


class OAuthError(Exception):
    """A refused token request: the HTTP status and Google's error body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def parse_form(raw: bytes) -> dict[str, str]:
    """A form-encoded body's fields (the first value of each)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise OAuthError(400, "invalid_request", "The request body is not UTF-8 form data.") from None
    return {name: values[0] for name, values in urllib.parse.parse_qs(text, keep_blank_values=True).items()}


def grant(form: Mapping[str, str], tokens: AccessTokens) -> dict[str, Any]:
    """The token endpoint's answer to one request's fields, or OAuthError."""
    grant_type = form.get("grant_type", "")
    if grant_type == JWT_BEARER:
        assertion = form.get("assertion")
        if not assertion:
            raise OAuthError(400, "invalid_request", "Missing required parameter: assertion")
        scopes = assertion_scopes(assertion, tokens.clock())
    elif grant_type == REFRESH:
        scopes = refresh_scopes(form)
    else:
        raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
    token, lifetime = tokens.issue(scopes)
    answer: dict[str, Any] = {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
    if grant_type == REFRESH:
        answer["scope"] = " ".join(sorted(scopes))
    return answer


def assertion_scopes(assertion: str, now: float) -> frozenset[str]:
    """The scopes a service account's JWT asks for, once its form and claims pass (see above)."""
    pieces = assertion.split(".")
    if len(pieces) != 3:
        raise OAuthError(400, "invalid_grant", "Invalid JWT: the assertion is not header.payload.signature.")
    header, claims = _json_part(pieces[0], "header"), _json_part(pieces[1], "payload")
    if header.get("alg") != "RS256":
        raise OAuthError(400, "invalid_grant", f"Invalid JWT: alg must be RS256, got {header.get('alg')!r}.")
    if not _base64url(pieces[2]):
        raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise OAuthError(400, "invalid_grant", "Invalid JWT: no iss claim (the service account's email).")
    audience = claims.get("aud")
    if not isinstance(audience, str) or not audience.endswith("/token"):
        raise OAuthError(400, "invalid_grant", "Invalid JWT: Failed audience check.")
    issued, expires = claims.get("iat"), claims.get("exp")
    if not (_seconds(issued) and _seconds(expires)):
        raise OAuthError(400, "invalid_grant", _TIMEFRAME)
    assert isinstance(issued, int | float) and isinstance(expires, int | float)
    if (
        not 0 < expires - issued <= MAX_JWT_LIFETIME_S
        or issued > now + CLOCK_SKEW_S
        or expires < now - CLOCK_SKEW_S
    ):
        raise OAuthError(400, "invalid_grant", _TIMEFRAME)
    scope = claims.get("scope")
    scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
    if not scopes:
        raise OAuthError(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    return scopes


def refresh_scopes(form: Mapping[str, str]) -> frozenset[str]:
    if not form.get("client_id") or not form.get("client_secret"):
        raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
    if not form.get("refresh_token"):
        raise OAuthError(400, "invalid_request", "Missing required parameter: refresh_token")
    return frozenset(form.get("scope", "").split()) or frozenset({CLOUD_PLATFORM})


def _base64url(piece: str) -> bytes:
    """The bytes of an unpadded base64url piece; b"" when it is empty or not base64url."""
    if not piece or "=" in piece:
        return b""
    try:
        return base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4))
    except (binascii.Error, ValueError):
        return b""


def _json_part(piece: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_base64url(piece))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise OAuthError(400, "invalid_grant", f"Invalid JWT: the {what} is not base64url JSON.")
    return value


def _seconds(value: Any) -> bool:
    """A JWT NumericDate: a finite number, not a boolean."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
