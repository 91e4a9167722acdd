"""The Vertex routes' parts without a server: access tokens on a manual clock (emulator.auth), the
token endpoint's checks of a JWT (emulator.oauth, on JWTs google-auth signs), Vertex's refusals and
createTime (emulator.vertex), and which Vertex heads the lean front takes (emulator.fasthead)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.auth import crypt, jwt

from emulator import auth, oauth, vertex
from emulator.__main__ import parse_args
from emulator.auth import CLOUD_PLATFORM, PREFIX, AccessTokens, Check
from emulator.errors import ApiError, server_error
from emulator.fasthead import parse_head
from emulator.oauth import OAuthError
from emulator.profiles import ConfigError, load_profile
from emulator.vertex import VertexTarget
from tests.service_account import write_service_account
from tests.waiting import ManualClock

NOW = 1_800_000_000.0
SCOPES = frozenset({CLOUD_PLATFORM})


# ---- access tokens ------------------------------------------------------------------------------


def test_a_token_is_good_until_its_lifetime_has_passed_on_the_injected_clock() -> None:
    clock = ManualClock(start=NOW)
    tokens = AccessTokens(b"s" * 32, lifetime_s=3599, clock=clock)
    token, lifetime = tokens.issue(SCOPES)
    assert lifetime == 3599 and token.startswith(PREFIX) and token.isascii()
    assert tokens.check(token) is Check.VALID
    clock.advance(3598.9)
    assert tokens.check(token) is Check.VALID
    clock.advance(0.1)
    assert tokens.check(token) is Check.EXPIRED


def test_a_token_is_good_at_every_process_sharing_the_secret_and_at_no_other() -> None:
    token, _ = AccessTokens(b"a" * 32).issue(SCOPES)
    assert AccessTokens(b"a" * 32).check(token) is Check.VALID, "a sibling worker: the same secret"
    assert AccessTokens(b"b" * 32).check(token) is Check.INVALID, "another emulator"
    assert AccessTokens().check(token) is Check.INVALID, "a fresh secret by default"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),  # the MAC
        lambda t: t[: len(PREFIX)] + ("A" if t[len(PREFIX)] != "A" else "B") + t[len(PREFIX) + 1 :],
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: "ya29.a0AfH6SMBx" + t[len(PREFIX) + 1 :],  # a real-looking Google token
        lambda t: t[:-4] + "!!!!",
        lambda t: "",
    ],
    ids=["mac", "payload", "short", "long", "google", "not base64", "empty"],
)
def test_anything_but_an_issued_token_is_invalid(mangle: Any) -> None:
    tokens = AccessTokens(b"k" * 32)
    token, _ = tokens.issue(SCOPES)
    assert tokens.check(mangle(token)) is Check.INVALID


def test_the_granted_scopes_decide_whether_vertex_takes_the_token() -> None:
    tokens = AccessTokens()
    narrow, _ = tokens.issue(frozenset({"https://www.googleapis.com/auth/userinfo.email"}))
    both, _ = tokens.issue(frozenset({"https://www.googleapis.com/auth/userinfo.email", CLOUD_PLATFORM}))
    assert tokens.check(narrow) is Check.SCOPE_INSUFFICIENT and tokens.check(both) is Check.VALID


def test_expire_all_ends_the_tokens_issued_so_far_and_not_the_next_ones() -> None:
    clock = ManualClock(start=NOW)
    tokens = AccessTokens(clock=clock)
    old, _ = tokens.issue(SCOPES)
    cut = tokens.expire_all()
    new, _ = tokens.issue(SCOPES)  # in the same millisecond as the cut
    assert tokens.check(old) is Check.EXPIRED and tokens.check(new) is Check.VALID
    assert tokens.expire_all(cut - 5000) == cut, "a sibling's older cut-off never moves it back"


def test_authorize_refuses_as_vertex_does() -> None:
    tokens = AccessTokens()
    good, _ = tokens.issue(SCOPES)
    project = VertexTarget("p", "us-central1")

    def refusal(target: VertexTarget, authorization: str | None, key: str | None = None) -> ApiError:
        with pytest.raises(ApiError) as caught:
            auth.authorize(tokens, target, authorization, key, ["k1"], "v1beta1", "generateContent")
        return caught.value

    assert auth.authorize(tokens, project, f"Bearer {good}", None, None, "v1", "generateContent") == (
        "projects/p/locations/us-central1"
    )
    assert auth.authorize(tokens, VertexTarget(), None, "k1", ["k1"], "v1", "countTokens") == "k1"
    missing = refusal(project, None)
    assert (missing.code, missing.status) == (401, "UNAUTHENTICATED")
    assert missing.message.startswith("Request is missing required authentication credential.")
    assert missing.details[0]["reason"] == "CREDENTIALS_MISSING"
    assert missing.details[0]["metadata"] == {
        "service": "aiplatform.googleapis.com",
        "method": "google.cloud.aiplatform.v1beta1.PredictionService.GenerateContent",
    }
    assert refusal(project, None, key="k1").message.startswith("API keys are not supported by this API.")
    for header in ("Bearer nonsense", "Basic dXNlcjpwdw==", "Bearer "):
        invalid = refusal(project, header)
        assert invalid.code == 401 and invalid.details[0]["reason"] == "ACCESS_TOKEN_TYPE_UNSUPPORTED"
        assert invalid.message.startswith("Request had invalid authentication credentials.")
    express = refusal(VertexTarget(), f"Bearer {good}")
    assert express.code == 401 and express.details[0]["reason"] == "CREDENTIALS_MISSING"
    wrong_key = refusal(VertexTarget(), None, key="k2")
    assert wrong_key.code == 400 and wrong_key.details[0]["reason"] == "API_KEY_INVALID"


# ---- the token endpoint's checks ----------------------------------------------------------------


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> crypt.RSASigner:
    account = write_service_account(tmp_path_factory.mktemp("sa") / "sa.json", "http://emu/token")
    info = json.loads(Path(account.path).read_text())
    assert info["type"] == "service_account" and info["client_email"] == account.client_email
    return crypt.RSASigner.from_string(account.private_key_pem, account.private_key_id)


def claims(**changes: Any) -> dict[str, Any]:
    """What google-auth's service-account credentials put in their JWT (aud: Google's endpoint)."""
    base = {
        "iat": int(NOW),
        "exp": int(NOW) + 3600,
        "iss": "load-test@test-project.iam.gserviceaccount.com",
        "aud": "https://oauth2.googleapis.com/token",
        "scope": CLOUD_PLATFORM,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_a_jwt_as_google_auth_signs_it_gets_its_scopes(signer: crypt.RSASigner) -> None:
    assertion = jwt.encode(signer, claims(scope=f"{CLOUD_PLATFORM} openid")).decode()
    assert oauth.assertion_scopes(assertion, NOW) == {CLOUD_PLATFORM, "openid"}
    local = jwt.encode(signer, claims(aud="http://127.0.0.1:8765/token")).decode()
    assert oauth.assertion_scopes(local, NOW + 30) == SCOPES, "any token endpoint's aud, a skewed clock"


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"iss": None}, "invalid_grant", "no iss claim"),
        ({"aud": "https://example.com/other"}, "invalid_grant", "Failed audience check"),
        ({"aud": None}, "invalid_grant", "Failed audience check"),
        ({"exp": int(NOW) + 3601}, "invalid_grant", "short-lived token (60 minutes)"),
        ({"exp": int(NOW) - 1}, "invalid_grant", "short-lived token"),
        ({"iat": int(NOW) + 600, "exp": int(NOW) + 1200}, "invalid_grant", "reasonable timeframe"),
        ({"iat": int(NOW) - 3700, "exp": int(NOW) - 100}, "invalid_grant", "reasonable timeframe"),
        ({"iat": "now"}, "invalid_grant", "iat and exp"),
        ({"exp": True}, "invalid_grant", "iat and exp"),
        ({"scope": None}, "invalid_scope", "Invalid OAuth scope"),
        ({"scope": "  "}, "invalid_scope", "Invalid OAuth scope"),
    ],
    ids=[
        "no iss",
        "other aud",
        "no aud",
        "too long",
        "ended",
        "future",
        "past",
        "iat text",
        "exp bool",
        "no scope",
        "blank scope",
    ],
)
def test_a_jwt_with_a_wrong_claim_is_refused(
    signer: crypt.RSASigner, changes: dict[str, Any], error: str, words: str
) -> None:
    assertion = jwt.encode(signer, claims(**changes)).decode()
    with pytest.raises(OAuthError) as caught:
        oauth.assertion_scopes(assertion, NOW)
    assert (caught.value.status, caught.value.error) == (400, error) and words in caught.value.description


def test_a_malformed_assertion_is_an_invalid_grant(signer: crypt.RSASigner) -> None:
    header, payload, signature = jwt.encode(signer, claims()).decode().split(".")
    hs256 = jwt.encode(signer, claims(), header={"alg": "HS256"}).decode()
    for assertion in (
        "not-a-jwt",
        f"{header}.{payload}",
        f"{header}.{payload}.",  # no signature
        f"{header}.{payload}.{signature}.{signature}",
        f"e30.{payload}.{signature}",  # a header without alg
        f"{header}.bm90IGpzb24.{signature}",  # a payload that is not JSON
        f"{header}.WzFd.{signature}",  # JSON, not an object
        hs256,
    ):
        with pytest.raises(OAuthError) as caught:
            oauth.assertion_scopes(assertion, NOW)
        assert (caught.value.status, caught.value.error) == (400, "invalid_grant"), assertion
        assert caught.value.body()["error_description"].startswith("Invalid JWT")


def test_grant_answers_like_google_and_refuses_what_it_cannot_take(signer: crypt.RSASigner) -> None:
    tokens = AccessTokens(lifetime_s=120, clock=ManualClock(start=NOW))
    assertion = jwt.encode(signer, claims()).decode()
    answer = oauth.grant({"grant_type": oauth.JWT_BEARER, "assertion": assertion}, tokens)
    assert set(answer) == {"access_token", "expires_in", "token_type"}
    assert answer["expires_in"] == 120 and answer["token_type"] == "Bearer"
    assert tokens.check(answer["access_token"]) is Check.VALID
    refresh = {"grant_type": "refresh_token", "client_id": "c", "client_secret": "s", "refresh_token": "r"}
    assert oauth.grant(refresh, tokens)["scope"] == CLOUD_PLATFORM
    assert oauth.grant({**refresh, "scope": "openid email"}, tokens)["scope"] == "email openid"
    refused = [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({}, 400, "unsupported_grant_type"),
        ({"grant_type": oauth.JWT_BEARER}, 400, "invalid_request"),
        ({**refresh, "client_secret": ""}, 401, "invalid_client"),
        ({**refresh, "refresh_token": ""}, 400, "invalid_request"),
    ]
    for form, status, error in refused:
        with pytest.raises(OAuthError) as caught:
            oauth.grant(form, tokens)
        assert (caught.value.status, caught.value.error) == (status, error), form


def test_parse_form_reads_what_google_auth_posts() -> None:
    form = oauth.parse_form(
        b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c"
    )
    assert form == {"grant_type": oauth.JWT_BEARER, "assertion": "a.b.c"}
    with pytest.raises(OAuthError):
        oauth.parse_form(b"\xff\xfe")


def test_token_lifetime_is_a_config_value() -> None:
    assert load_profile("fast").token_lifetime == 3599
    assert load_profile("fast", {"token_lifetime": 6}).token_lifetime == 6
    assert load_profile("fast", {"token_lifetime": 6}).describe()["token_lifetime"] == 6
    for bad in (0, -1, 1.5, "60", True):
        with pytest.raises(ConfigError, match="token_lifetime"):
            load_profile("fast", {"token_lifetime": bad})


def test_token_lifetime_flag_and_the_secret_every_worker_inherits() -> None:
    args = parse_args(["--port", "0", "--token-lifetime", "6"])
    assert args.token_lifetime == 6 and len(args.token_secret) == 32
    assert parse_args([]).token_lifetime is None, "the config's, else 3599"
    assert parse_args([]).token_secret != args.token_secret
    with pytest.raises(SystemExit):
        parse_args(["--token-lifetime", "0"])


# ---- Vertex's dialect ---------------------------------------------------------------------------


def test_a_quota_or_capacity_refusal_is_vertex_dynamic_shared_quota_429() -> None:
    quota = ApiError(429, "You exceeded your current quota...", [{"@type": "QuotaFailure"}])
    quota.fault, quota.limits = "quota_requests", ("rpm",)
    full = ApiError(503, "This model is currently experiencing high demand.")
    full.fault = "queue_full"
    for refused in (quota, full):
        exhausted = vertex.refusal(refused)
        assert (exhausted.code, exhausted.status, exhausted.details) == (429, "RESOURCE_EXHAUSTED", [])
        assert exhausted.message == vertex.DSQ_MESSAGE, "no RetryInfo: DSQ gives no time to wait"
        assert (exhausted.fault, exhausted.limits) == (refused.fault, refused.limits), "counted as before"
    injected = server_error(503)
    injected.fault = "server_503"
    deadline = ApiError(504, "Deadline expired before operation could complete.")
    deadline.fault = "queue_timeout"
    assert vertex.refusal(injected) is injected and vertex.refusal(deadline) is deadline


def test_create_time_goes_before_response_id_in_pretty_and_one_line_json() -> None:
    stamp = vertex.stamp_create_time(NOW)
    pretty = json.dumps({"modelVersion": "m", "responseId": "r"}, indent=2).encode()
    line = b'data: {"modelVersion": "m", "responseId": "r"}\r\n\r\n'
    stamped = stamp(pretty)
    assert json.loads(stamped) == {
        "modelVersion": "m",
        "createTime": "2027-01-15T08:00:00.000000Z",
        "responseId": "r",
    }
    assert b'",\n  "responseId"' in stamped, "the indentation is kept"
    assert stamp(line) == (
        b'data: {"modelVersion": "m", "createTime": "2027-01-15T08:00:00.000000Z", "responseId": "r"}\r\n\r\n'
    )
    assert stamp(b'data: {"error": {}}\r\n\r\n') == b'data: {"error": {}}\r\n\r\n'


# ---- which Vertex heads the lean front serves ---------------------------------------------------


def head(target: str, extra: str = "") -> bytes:
    return f"POST {target} HTTP/1.1\r\nHost: emu\r\nContent-Length: 2\r\n{extra}".rstrip("\r\n").encode()


def test_the_lean_front_reads_vertex_targets_and_the_bearer() -> None:
    project = head(
        "/v1beta1/projects/p-1/locations/us-central1/publishers/google/models/gemini-x:streamGenerateContent?alt=sse",
        "Authorization: Bearer ya29.t\r\n",
    )
    parsed = parse_head(project, 1 << 20)
    assert parsed is not None and parsed.target == VertexTarget("p-1", "us-central1")
    assert (parsed.version, parsed.model, parsed.method, parsed.sse) == (
        "v1beta1",
        "gemini-x",
        "streamGenerateContent",
        True,
    )
    assert parsed.authorization == "Bearer ya29.t"
    express = parse_head(head("/v1/publishers/google/models/m:generateContent?key=k"), 1 << 20)
    assert express is not None and express.target == VertexTarget() and express.api_key == "k"
    developer = parse_head(head("/v1beta/models/m:generateContent", "Authorization: Bearer x\r\n"), 1 << 20)
    assert developer is not None and developer.target is None and developer.authorization is None


@pytest.mark.parametrize(
    "target",
    [
        "/v1beta/publishers/google/models/m:generateContent",  # a Developer version on Vertex
        "/v1beta1/models/m:generateContent",  # a Vertex version on the Developer route
        "/v1/projects/p/locations/l/publishers/google/models/m:countTokens",
        "/v1/projects//locations/l/publishers/google/models/m:generateContent",
        "/v1/projects/p/regions/l/publishers/google/models/m:generateContent",
        "/v1/projects/p/locations/l/publishers/meta/models/m:generateContent",
        "/v1/projects/p/locations/l/models/m:generateContent",
        "/v1/publishers/google/models/",
    ],
)
def test_other_vertex_like_targets_go_to_aiohttp(target: str) -> None:
    assert parse_head(head(target), 1 << 20) is None
