"""A transport plugs in at one place: one module with its class, one register_transport call.

The toy transport below lives outside the package (in this test module). It only sends: the body is
the shared REST payload, the reply is mapped by the shared code (users/transports/replies.py), so
its CallResult must equal the built-in http transport's for the same emulator answer.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from transport_helpers import API_KEY, spec

import users.transports as transports
from core import outcome
from users.call import CallResult, CallSpec, CallTimer, rest_payload
from users.errors import CallError, classify
from users.transports import (
    make_transport,
    register_transport,
    transport_class,
    transport_help,
    transport_names,
)
from users.transports.replies import StreamReply, event_from_json, http_error, result_from_json


class ToyTransport:
    """REST JSON over the standard library's http.client: a whole transport in a few lines."""

    name = "toy"

    def __init__(self, *, base_url: str, api_key: str, timeout_s: float) -> None:
        url = urlsplit(base_url)
        self._conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout_s)
        self._headers = {"x-goog-api-key": api_key, "Content-Type": "application/json"}
        self._secrets = (api_key,)

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        method = "streamGenerateContent?alt=sse" if spec.stream else "generateContent"
        try:
            self._conn.request(
                "POST", f"/v1beta/models/{spec.model}:{method}", rest_payload(spec), self._headers
            )
            response = self._conn.getresponse()
            body = response.read()
        except OSError as exc:
            raise classify(exc, self._secrets, timeouts=(TimeoutError,), connections=(OSError,)) from exc
        if response.status != 200:
            raise http_error(response.status, body, self._secrets)
        if not spec.stream:
            return result_from_json(body, self._secrets)
        stream = StreamReply(timer)  # read whole, then split: a toy, not a TTFT instrument
        for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
            if event.startswith(b"data:"):
                stream.add(event_from_json(event[5:], self._secrets))
        return stream.finish(response_bytes=len(body))

    def close(self) -> None:
        self._conn.close()


class Misnamed(ToyTransport):
    name = "something-else"


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test end with it: the registry is a copy for the test's length."""
    monkeypatch.setattr(transports, "_registry", dict(transports._registry))


def _facts(result: CallResult) -> tuple[object, ...]:
    return (
        result.text,
        result.prompt_tokens,
        result.output_tokens,
        result.thoughts_tokens,
        result.finish_reason,
        result.block_reason,
        result.http_status,
    )


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_a_toy_transport_from_outside_the_package_is_one_call_away(start_emulator, stream: bool) -> None:
    register_transport("toy", f"{__name__}:ToyTransport", help="the standard library's http.client")
    assert transport_names()[-1] == "toy"
    assert "toy = the standard library's http.client" in transport_help()

    emu = start_emulator("fast", seed=3)
    call = spec("Tell me about registries.", stream=stream)
    results = {}
    for name in ("toy", "http"):
        transport = make_transport(name, base_url=emu.url, api_key=API_KEY, timeout_s=10.0)
        try:
            results[name] = transport.call(call, CallTimer())
        finally:
            transport.close()
    assert isinstance(transport, transports.transport_class("http"))
    assert results["toy"].finish_reason == "STOP" and results["toy"].output_tokens
    assert _facts(results["toy"]) == _facts(results["http"])


@pytest.mark.usefixtures("registry")
def test_the_toy_gets_the_shared_error_kinds(start_emulator) -> None:
    register_transport("toy", f"{__name__}:ToyTransport")
    emu = start_emulator("fast", seed=3)
    transport = make_transport("toy", base_url=emu.url, api_key=API_KEY, timeout_s=10.0)
    try:
        with pytest.raises(CallError) as caught:
            transport.call(spec(model="no-such-model"), CallTimer())
    finally:
        transport.close()
    assert (caught.value.kind, caught.value.http_status) == (outcome.CLIENT_ERROR, 404)


@pytest.mark.usefixtures("registry")
def test_registration_mistakes_are_caught_where_they_are_made() -> None:
    with pytest.raises(ValueError, match="lower-case"):
        register_transport("Toy Transport", f"{__name__}:ToyTransport")
    with pytest.raises(ValueError, match="package.module:ClassName"):
        register_transport("toy", "ToyTransport")
    with pytest.raises(ValueError, match="already registered"):
        register_transport("http", f"{__name__}:ToyTransport")
    register_transport("http", "users.transports.raw_http:RawHttpTransport")  # the same again: fine
    register_transport("misnamed", f"{__name__}:Misnamed")
    with pytest.raises(TypeError, match="its name is 'something-else'"):
        transport_class("misnamed")
    with pytest.raises(ValueError, match="unknown transport 'nope': choose one of genai, legacy, http"):
        transport_class("nope")


def test_built_in_transports_are_not_imported_until_asked_for(repo_root) -> None:  # noqa: ANN001
    """Importing an SDK takes about a second: listing the transports must not do it."""
    probe = (
        "import sys, users.transports as t\n"
        "names = t.transport_names(), t.transport_help()\n"
        "sdks = sorted(m for m in sys.modules if m.startswith(('google.genai', 'google.generativeai',"
        " 'users.transports.')))\n"
        "print(sdks)\n"
        "t.transport_class('http')\n"
        "print('users.transports.raw_http' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=repo_root, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "True"]
