"""Vertex AI against the emulator: the real google-auth (a throwaway service account, a user's
refresh token) gets its access token from the emulator's POST /token, and the real google-genai
SDK calls the project and express routes with it; refusals, quotas, workers, stats and both fronts.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import google.auth.transport.requests
import pytest
from emu_http import FLASH, MODEL, call, comparable, exchange, text_request
from google import genai
from google.genai import errors, types
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from emulator.auth import CLOUD_PLATFORM, PREFIX
from emulator.fastpath import FastProtocol
from emulator.launcher import EmulatorProcess
from emulator.profiles import load_profile
from emulator.server import Emulator
from emulator.vertex import DSQ_MESSAGE
from reports.metadata import scrub
from tests.service_account import ServiceAccount, write_service_account
from tests.waiting import ManualClock, wait_until

PROJECT, LOCATION = "test-project", "us-central1"
ROUTE = f"/v1beta1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{MODEL}"
EXPRESS = f"/v1beta1/publishers/google/models/{MODEL}"
EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"
BODY = json.dumps(text_request("Is this post fine?")).encode()


@pytest.fixture(scope="module")
def account(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> ServiceAccount:
    return write_service_account(tmp_path_factory.mktemp("sa") / "sa.json", emulator.url + "/token")


def sa_credentials(account: ServiceAccount, scopes: list[str] | None = None) -> service_account.Credentials:
    return service_account.Credentials.from_service_account_file(
        str(account.path), scopes=scopes or [CLOUD_PLATFORM]
    )


def vertex_client(
    url: str, credentials: Any, project: str = PROJECT, location: str = LOCATION
) -> genai.Client:
    return genai.Client(
        vertexai=True,
        project=project,
        location=location,
        credentials=credentials,
        http_options=types.HttpOptions(base_url=url),
    )


def token_of(account: ServiceAccount, scopes: list[str] | None = None) -> str:
    """A fresh access token from the emulator's /token, fetched by google-auth."""
    credentials = sa_credentials(account, scopes)
    credentials.refresh(google.auth.transport.requests.Request())
    return credentials.token


def post(url: str, path: str, token: str | None = None, body: bytes = BODY, **kwargs: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, data, _ = call(
        url, path, raw=body, key=None, headers={**headers, **kwargs.pop("headers", {})}, **kwargs
    )
    return status, json.loads(data) if data.startswith((b"{", b"[")) else data


def post_form(url: str, fields: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
    status, data, headers = call(
        url,
        "/token",
        raw=urllib.parse.urlencode(fields).encode(),
        key=None,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return status, json.loads(data), headers


# ---- the SDK on the project route with a service account ---------------------------------------


def test_generate_content_with_a_service_account(emulator: EmulatorProcess, account: ServiceAccount) -> None:
    credentials = sa_credentials(account)
    client = vertex_client(emulator.url, credentials)  # held: a client closes when it is collected
    reply = client.models.generate_content(model=MODEL, contents="Hello there.")
    assert reply.text and reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.model_version == MODEL and reply.response_id and reply.create_time is not None
    assert reply.usage_metadata.prompt_token_count > 0
    assert credentials.token.startswith(PREFIX), "google-auth took the emulator's token"
    assert emulator.stats()["oauth"]["tokens_issued"] >= 1


def test_stream_with_a_service_account(emulator: EmulatorProcess, account: ServiceAccount) -> None:
    client = vertex_client(emulator.url, sa_credentials(account))
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Tell me a story."))
    assert len(chunks) >= 2 and "".join(c.text or "" for c in chunks)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert len({c.response_id for c in chunks}) == 1 and len({c.create_time for c in chunks}) == 1
    assert all(c.create_time is not None for c in chunks)
    count = client.models.count_tokens(model=MODEL, contents="Hello there.")
    assert count.total_tokens and count.total_tokens > 0
    routes = emulator.stats()["requests_by_route"]
    assert routes["v1beta1/projects.locations.publishers.models.streamGenerateContent"] >= 1
    assert routes["v1beta1/projects.locations.publishers.models.countTokens"] >= 1


def test_a_user_refresh_token_gets_an_access_token(emulator: EmulatorProcess) -> None:
    credentials = user_credentials.Credentials(
        token=None,
        refresh_token="1//refresh",
        client_id="client.apps.googleusercontent.com",
        client_secret="secret",
        token_uri=emulator.url + "/token",
    )
    client = vertex_client(emulator.url, credentials)
    reply = client.models.generate_content(model=MODEL, contents="Hi.")
    assert reply.text and credentials.token.startswith(PREFIX)


def test_express_mode_with_an_api_key(emulator: EmulatorProcess) -> None:
    client = genai.Client(
        vertexai=True, api_key="express-key", http_options=types.HttpOptions(base_url=emulator.url)
    )
    assert client.models.generate_content(model=MODEL, contents="Hi.").text
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="A story."))
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    routes = emulator.stats()["requests_by_route"]
    assert routes["v1beta1/publishers.models.generateContent"] >= 1
    status, body = post(emulator.url, EXPRESS + ":generateContent")
    assert status == 401 and body["error"]["details"][0]["reason"] == "CREDENTIALS_MISSING"


def test_express_keys_are_held_to_accepted_keys(start_emulator) -> None:  # noqa: ANN001
    emu = start_emulator({"accepted_keys": ["good"]}, profile="fast", time_scale=0.0)
    assert post(emu.url, EXPRESS + ":generateContent", headers={"x-goog-api-key": "good"})[0] == 200
    status, body = post(emu.url, EXPRESS + ":generateContent?key=bad")
    assert status == 400 and body["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert emu.stats()["oauth"]["refusals_by_status"] == {"401": 0, "403": 0, "400": 1}


# ---- refusals -----------------------------------------------------------------------------------


def test_no_bearer_is_401_credentials_missing(emulator: EmulatorProcess) -> None:
    status, body = post(emulator.url, ROUTE + ":generateContent")
    error = body["error"]
    assert (status, error["code"], error["status"]) == (401, 401, "UNAUTHENTICATED")
    assert error["message"] == (
        "Request is missing required authentication credential. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project."
    )
    assert error["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "CREDENTIALS_MISSING",
            "domain": "googleapis.com",
            "metadata": {
                "service": "aiplatform.googleapis.com",
                "method": "google.cloud.aiplatform.v1beta1.PredictionService.GenerateContent",
            },
        }
    ]
    status, body = post(emulator.url, ROUTE + ":generateContent", headers={"x-goog-api-key": "k"})
    assert status == 401 and body["error"]["message"].startswith("API keys are not supported by this API.")


def test_a_token_the_emulator_did_not_issue_is_401_for_the_sdk(emulator: EmulatorProcess) -> None:
    # A token google-auth believes good for an hour, that this emulator never issued.
    client = vertex_client(emulator.url, user_credentials.Credentials(token=PREFIX + "A" * 48))
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="Hi.")
    error = caught.value
    assert (error.code, error.status) == (401, "UNAUTHENTICATED")
    assert error.message.startswith("Request had invalid authentication credentials.")
    assert error.details["error"]["details"][0]["reason"] == "ACCESS_TOKEN_TYPE_UNSUPPORTED"


def test_a_token_without_cloud_platform_scope_is_403(
    emulator: EmulatorProcess, account: ServiceAccount
) -> None:
    client = vertex_client(emulator.url, sa_credentials(account, scopes=[EMAIL_SCOPE]))
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="Hi.")
    error = caught.value
    assert (error.code, error.status, error.message) == (
        403,
        "PERMISSION_DENIED",
        "Request had insufficient authentication scopes.",
    )
    assert error.details["error"]["details"][0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"


def test_expired_tokens_are_401_and_a_new_token_works(start_emulator, tmp_path: Path) -> None:  # noqa: ANN001
    emu = start_emulator(profile="fast", time_scale=0.0)
    account = write_service_account(tmp_path / "sa.json", emu.url + "/token")
    held = sa_credentials(account)
    client = vertex_client(emu.url, held)
    assert client.models.generate_content(model=MODEL, contents="Hi.").text
    status, answer = post(emu.url, "/emulator/tokens/expire", body=b"")
    assert status == 200 and answer["tokens_expired_before"] > 0
    # google-auth still holds its token as good for an hour: the SDK sends it and gets Vertex's 401.
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="Hi.")
    assert (caught.value.code, caught.value.status) == (401, "UNAUTHENTICATED")
    assert caught.value.details["error"]["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"
    held.refresh(google.auth.transport.requests.Request())
    assert client.models.generate_content(model=MODEL, contents="Hi.").text, "a token issued since is good"
    refusals = emu.stats()["oauth"]["refusals_by_status"]
    assert refusals == {"401": 1, "403": 0}


def fast_protocol_exchange(emulator: Emulator, raw: bytes) -> bytes:
    """One request through the lean front over an in-memory transport; what it wrote."""
    written: list[bytes] = []

    class Memory(asyncio.Transport):
        def write(self, data: bytes) -> None:
            written.append(bytes(data))

        def is_closing(self) -> bool:
            return False

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return default

    async def main() -> None:
        protocol = FastProtocol(emulator, lambda: asyncio.Protocol(), set(), {})
        protocol.connection_made(Memory())
        protocol.data_received(raw)

    asyncio.run(main())
    return b"".join(written)


def test_a_token_expires_when_the_injected_clock_passes_its_lifetime() -> None:
    clock = ManualClock(start=1_800_000_000.0)
    emulator = Emulator(load_profile("fast", {"token_lifetime": 600}), time_scale=0.0, token_clock=clock)
    token, lifetime = emulator.tokens.issue(frozenset({CLOUD_PLATFORM}))
    head = f"POST {ROUTE}:generateContent HTTP/1.1\r\nHost: emu\r\nAuthorization: Bearer {token}\r\n"
    raw = (head + f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    assert fast_protocol_exchange(emulator, raw).startswith(b"HTTP/1.1 200 OK") and lifetime == 600
    clock.advance(599.9)
    assert fast_protocol_exchange(emulator, raw).startswith(b"HTTP/1.1 200 OK")
    clock.advance(0.1)
    reply = fast_protocol_exchange(emulator, raw)
    assert reply.startswith(b"HTTP/1.1 401 Unauthorized")
    error = json.loads(reply.partition(b"\r\n\r\n")[2])["error"]
    assert error["status"] == "UNAUTHENTICATED" and error["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"
    assert emulator.stats.auth_refusals == {"401": 1}


# ---- the token endpoint over HTTP ---------------------------------------------------------------


def test_the_token_endpoint_answers_like_google(start_emulator, tmp_path: Path) -> None:  # noqa: ANN001
    emu = start_emulator(profile="fast", token_lifetime=6)
    account = write_service_account(tmp_path / "sa.json", emu.url + "/token")
    credentials = sa_credentials(account)
    assertion = credentials._make_authorization_grant_assertion()  # what google-auth would post
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    status, answer, headers = post_form(emu.url, grant)
    assert status == 200 and answer["expires_in"] == 6 and answer["token_type"] == "Bearer"
    assert re.fullmatch(r"ya29\.e-[A-Za-z0-9_-]+", answer["access_token"])
    assert headers["Content-Type"].startswith("application/json") and "no-store" in headers["Cache-Control"]
    status, refused, _ = post_form(emu.url, {**grant, "assertion": "not.a-jwt"})
    assert status == 400 and refused["error"] == "invalid_grant" and refused["error_description"]
    status, refused, _ = post_form(emu.url, {"grant_type": "client_credentials"})
    assert (status, refused["error"]) == (400, "unsupported_grant_type")
    # google-auth turns a refusal into its RefreshError, which the SDK lets through.
    no_scope = service_account.Credentials.from_service_account_file(str(account.path))
    with pytest.raises(google.auth.exceptions.RefreshError, match="invalid_scope"):
        no_scope.refresh(google.auth.transport.requests.Request())
    stats = emu.stats()
    assert stats["oauth"] == {
        "tokens_issued": 1,
        "grants_refused": 3,
        "refusals_by_status": {"401": 0, "403": 0},
    }
    assert stats["requests_total"] == 0, "a token request is not an API call"
    assert emu._get_json("/emulator/config")["token_lifetime"] == 6


def test_no_token_in_stats_or_config(emulator: EmulatorProcess, account: ServiceAccount) -> None:
    token = token_of(account)
    assert post(emulator.url, ROUTE + ":generateContent", token)[0] == 200
    for path in ("/emulator/stats", "/emulator/config"):
        text = json.dumps(emulator._get_json(path))
        assert "ya29." not in text and token not in text, path
    counts = emulator.stats()["oauth"]
    assert scrub({"oauth": counts}) == {"oauth": counts}, "the report shows the counts, not (hidden)"


# ---- quotas ---------------------------------------------------------------------------------------


def test_quota_is_per_project_and_location_and_refused_with_vertex_429(
    start_emulator, tmp_path: Path
) -> None:  # noqa: ANN001
    # A project is held to input tokens per minute alone (the config's here: one request's worth),
    # an express key to the Developer API's limits of that key (requests per minute here).
    # tests/emulator/test_emu_vertex_quota.py has the catalogue's floor and the missing RPM/RPD.
    config = {"quotas": {MODEL: {"rpm": 1}}, "vertex_quotas": {MODEL: {"tpm": 1}}}
    emu = start_emulator(config, profile="fast", time_scale=1.0)
    token = token_of(write_service_account(tmp_path / "sa.json", emu.url + "/token"))
    assert post(emu.url, ROUTE + ":generateContent", token)[0] == 200
    status, body = post(emu.url, ROUTE + ":generateContent", token)
    assert status == 429 and body == {
        "error": {"code": 429, "message": DSQ_MESSAGE, "status": "RESOURCE_EXHAUSTED"}
    }
    status, _ = post(emu.url, ROUTE + ":streamGenerateContent?alt=sse", token)
    assert status == 429
    other_location = ROUTE.replace(LOCATION, "europe-west4")
    other_project = ROUTE.replace(PROJECT, "other-project")
    assert post(emu.url, other_location + ":generateContent", token)[0] == 200
    assert post(emu.url, other_project + ":generateContent", token)[0] == 200
    # Express mode: the key is the quota's scope, shared with the Developer API's calls of that key.
    assert post(emu.url, EXPRESS + ":generateContent?key=k1")[0] == 200
    assert post(emu.url, EXPRESS + ":generateContent?key=k1")[0] == 429
    assert call(emu.url, FLASH + ":generateContent", text_request("Hi"), key="k1")[0] == 429
    assert post(emu.url, EXPRESS + ":generateContent?key=k2")[0] == 200
    stats = emu.stats()
    assert stats["quota_429s_by_limit"] == {"rpm": 2, "tpm": 2, "rpd": 0}
    assert stats["limits_hit"] == {"quota_tokens": 2, "quota_requests": 2}


# ---- both fronts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "method", "auth"),
    [
        (ROUTE, ":generateContent", "token"),
        (ROUTE, ":streamGenerateContent?alt=sse", "token"),
        (ROUTE, ":streamGenerateContent", "token"),
        (ROUTE, ":generateContent", ""),
        (ROUTE, ":generateContent", "narrow"),
        (ROUTE, ":generateContent", "Bearer nonsense"),
        (ROUTE.replace(MODEL, "no-such-model"), ":generateContent", "token"),
        (EXPRESS, ":generateContent", "key"),
        (EXPRESS, ":streamGenerateContent?alt=sse", "key"),
        (EXPRESS, ":generateContent", ""),
    ],
    ids=[
        "unary",
        "sse",
        "array",
        "no token",
        "narrow scope",
        "bad token",
        "no model",
        "express",
        "express sse",
        "no key",
    ],
)
def test_both_fronts_send_the_same_bytes_for_vertex(
    start_emulator,
    tmp_path: Path,
    route: str,
    method: str,
    auth: str,  # noqa: ANN001
) -> None:
    emu = start_emulator(profile="fast", time_scale=0.0, seed=3)
    account = write_service_account(tmp_path / "sa.json", emu.url + "/token")
    header = {
        "token": f"Authorization: Bearer {token_of(account)}\r\n",
        "narrow": f"Authorization: Bearer {token_of(account, [EMAIL_SCOPE])}\r\n",
        "key": "x-goog-api-key: k\r\n",
        "": "",
    }.get(auth, f"Authorization: {auth}\r\n")
    replies = []
    for colon in (":", "%3A"):  # the escaped colon goes to aiohttp
        target = route + colon + method.removeprefix(":")
        head = f"POST {target} HTTP/1.1\r\nHost: emu\r\n{header}Content-Length: {len(BODY)}\r\n"
        replies.append(exchange(emu.url, (head + "Connection: close\r\n\r\n").encode() + BODY))
    assert comparable(replies[0]) == comparable(replies[1]), replies
    if auth in ("token", "key") and "no-such" not in route:
        assert replies[0].startswith(b"HTTP/1.1 200 OK") and b'"createTime": "' in replies[0]
    assert emu.stats()["requests_total"] == 2


def test_developer_routes_ignore_a_bearer_and_still_want_a_key(emulator: EmulatorProcess) -> None:
    status, body = post(emulator.url, FLASH + ":generateContent", "ya29.anything")
    assert status == 403 and body["error"]["details"][0]["reason"] == "CONSUMER_INVALID"
    status, data, _ = call(emulator.url, FLASH + ":generateContent", text_request("Hi"))
    assert status == 200 and b"createTime" not in data


# ---- workers ---------------------------------------------------------------------------------------


def served_by_two_workers(url: str, send: Callable[[str], int], want: int, tag: str) -> None:
    """Send requests (each with a new x-request-id, on a new connection) until two workers are seen
    to have answered `want`: each worker's own send log (scope=worker) holds only the ids it
    answered, so two non-empty logs without a common id are two workers."""
    answered: set[str] = set()
    views: list[set[str]] = []

    def two_workers() -> bool:
        rid = f"{tag}-{len(answered)}-{len(views)}"
        if send(rid) == want:
            answered.add(rid)
        status, data, _ = call(url, "/emulator/sends?scope=worker", key=None)
        assert status == 200
        view = {
            rid
            for rid, record in json.loads(data)["sends"].items()
            if rid in answered and record["status"] == want
        }
        if view:
            views.append(view)
        return any(a.isdisjoint(b) for a in views for b in views)

    wait_until(two_workers, what=f"two workers answering {want}")


def test_a_token_one_worker_issued_is_good_at_every_worker(start_emulator, tmp_path: Path) -> None:  # noqa: ANN001
    emu = start_emulator(profile="fast", time_scale=0.0, workers=2)
    token = token_of(write_service_account(tmp_path / "sa.json", emu.url + "/token"))

    def send(rid: str) -> int:
        headers = {"x-request-id": rid, "Connection": "close"}
        return post(emu.url, ROUTE + ":generateContent", token, headers=headers)[0]

    served_by_two_workers(emu.url, send, 200, "before")
    assert post(emu.url, "/emulator/tokens/expire", body=b"")[0] == 200
    served_by_two_workers(emu.url, send, 401, "after")  # the cut-off reached the other worker too
    stats = emu.stats()
    assert stats["workers"] == 2 and stats["oauth"]["tokens_issued"] == 1
