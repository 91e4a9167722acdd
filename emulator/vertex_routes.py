"""The Vertex AI routes on aiohttp, and the token endpoint their callers need (emulator.vertex says
what the dialect is):

    POST /{ver}/projects/{p}/locations/{l}/publishers/google/models/{model}:METHOD   (v1, v1beta1)
    POST /{ver}/publishers/google/models/{model}:METHOD                               express mode
    POST /token                      an access token for google-auth (emulator.oauth)
    POST /emulator/tokens/expire     every access token issued so far expires now (emulator.auth);
                                     answers {"tokens_expired_before": epoch seconds}

HTTP only. generateContent and streamGenerateContent go to Emulator.generate_route, as the
Developer routes do (emulator.fastpath serves their plain form itself); countTokens is answered
here after the same auth check, Emulator.authorize. A token request is not an API call: it counts
in /emulator/stats' `oauth` object (tokens_issued, grants_refused), not in requests_total.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulator import oauth, vertex
from emulator.errors import ApiError
from emulator.generation import count_tokens
from emulator.oauth import OAuthError
from emulator.vertex import VertexTarget
from emulator.wire import AiohttpWire

_EXPRESS = VertexTarget()
_GENERATE = ("generateContent", "streamGenerateContent")
# Google's token endpoint says the same: an access token must never be cached on the way.
_NO_STORE = {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"}


def add_routes(app: web.Application, emulator: Any) -> None:
    routes = VertexRoutes(emulator)
    for version in vertex.VERSIONS:
        project = f"/{{version:{version}}}/projects/{{project}}/locations/{{location}}"
        app.router.add_route("*", project + "/publishers/google/models/{target}", routes.model)
        app.router.add_route("*", f"/{{version:{version}}}/publishers/google/models/{{target}}", routes.model)
    app.router.add_post("/token", routes.token)
    app.router.add_post("/emulator/tokens/expire", routes.expire)


class VertexRoutes:
    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator

    async def model(self, request: web.Request) -> web.StreamResponse:
        emu = self.emulator
        version = request.match_info["version"]
        project = request.match_info.get("project")
        target = VertexTarget(project, request.match_info["location"]) if project else _EXPRESS
        model, _, method = request.match_info["target"].partition(":")
        if request.method == "POST" and method in _GENERATE:
            wire = AiohttpWire(request, emu.read_body)
            await emu.generate_route(wire, version, model, method, target)
            return wire.response or web.Response(status=500)  # None: an injected reset (see server)

        async def answer() -> web.StreamResponse:
            if request.method != "POST" or method != "countTokens":
                raise ApiError(
                    404, f"Method not found: {request.method} publishers/google/models/{model}:{method}"
                )
            raw = await emu.read_body(request)
            wire = AiohttpWire(request, emu.read_body)
            key = emu.authorize(target, wire.authorization, wire.api_key, version, method)
            profile = emu.vertex_model(model, target)
            return web.json_response(count_tokens(raw, profile, emu.generator.files, key))

        return await emu.counted(target.route(version, method or "get"), model, answer)

    async def token(self, request: web.Request) -> web.Response:
        emu = self.emulator
        try:
            answer = oauth.grant(oauth.parse_form(await _small_body(request)), emu.tokens)
        except OAuthError as exc:
            emu.stats.grants_refused += 1
            return web.json_response(exc.body(), status=exc.status, headers=_NO_STORE)
        emu.stats.tokens_issued += 1
        return web.json_response(answer, headers=_NO_STORE)

    async def expire(self, request: web.Request) -> web.Response:
        emu = self.emulator
        cut_ms = emu.tokens.expire_all()
        emu.publish_control()  # --workers: the siblings apply it within 0.25 s
        return web.json_response({"tokens_expired_before": cut_ms / 1000})


async def _small_body(request: web.Request) -> bytes:
    """A token request's form, refused past oauth.MAX_FORM_BYTES without reading it all."""
    too_big = OAuthError(400, "invalid_request", "The request body is too large.")
    if request.content_length is not None and request.content_length > oauth.MAX_FORM_BYTES:
        raise too_big
    body = bytearray()
    async for block in request.content.iter_chunked(1 << 14):
        body += block
        if len(body) > oauth.MAX_FORM_BYTES:
            raise too_big
    return bytes(body)
