"""The HTTP layer: parse, route, hand the call to the generator, write what it returns.

Routes (both /v1 and /v1beta):
    POST /{ver}/models/{model}:generateContent
    POST /{ver}/models/{model}:streamGenerateContent[?alt=sse]   SSE, or one JSON array in pieces
    POST /{ver}/models/{model}:countTokens
    GET  /{ver}/models[?pageSize=N&pageToken=T], GET /{ver}/models/{model}
    POST /upload/{ver}/files, GET /{ver}/files, GET|DELETE /{ver}/files/{id}   emulator.files
    POST|GET /{ver}/cachedContents, GET|PATCH|DELETE /{ver}/cachedContents/{id}   emulator.cache_routes
Vertex AI (/v1 and /v1beta1; emulator.vertex says what differs, emulator.vertex_routes serves them):
    POST /{ver}/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent|
         streamGenerateContent|countTokens     with a bearer token from POST /token
    POST /{ver}/publishers/google/models/{model}:...                        express mode: an API key
    POST /token                      the OAuth 2 token endpoint google-auth asks (emulator.oauth)
The models are the profile's line-up for its day: a catalogue model retired by then answers 404
"This model models/X is no longer available..." like the real API; an unknown name, the usual 404.
Admin (no key needed; loopback tool):
    GET  /healthz                    -> {"status": "ok"}
    GET  /emulator/stats             -> counters (POST /emulator/stats/reset zeroes them)
    GET  /emulator/faults            -> {"rates": {...}, "params": {...}}
    POST /emulator/faults            -> merge {"server_503": 0.1, ...}; add "reset": true to clear first
    GET  /emulator/config            -> the active profile (token_lifetime included), time scale and seed
    POST /emulator/tokens/expire     -> every access token issued so far expires now (emulator.auth)
    GET  /emulator/sends             -> {"sends": {id: {...}}, "dropped": N}, for generate requests with
                                        an x-request-id header (emulator.sends): of the id's latest request,
                                        when each piece of its answer left (received, first_due, sent,
                                        status), its model and when it was admitted; summed over every
                                        finished request with the id, calls, first_received, queue_ms,
                                        model_ms and tokens, so an app that forwards the id on its model
                                        calls can have its latency split (the suite's app user joins them
                                        with its own calls by id); POST .../sends/reset clears; with
                                        --workers, merged, and "workers_missing" counts siblings that did
                                        not answer

Here: body size, key and model checks (a Vertex request's auth: authorize, the one check both
fronts run), the per-request counters (route, model, status, in flight) and the wire (headers,
chunked writes, TCP resets). Everything that decides an answer, admission included, is
emulator.generation's Generator, which shares this server's Stats. The generate routes take nearly
all the traffic: emulator.fastpath parses those itself and hands every other request to the
aiohttp application built here; both fronts meet in Emulator.generate_route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from emulator import auth, cache_routes, protocol, responses, vertex, vertex_routes
from emulator.auth import AccessTokens
from emulator.errors import (
    ApiError,
    invalid_argument,
    invalid_key,
    missing_key,
    model_not_found,
    model_retired,
)
from emulator.file_routes import FilesApi
from emulator.generation import DropConnection, Generator, count_tokens
from emulator.latency import Clock
from emulator.profiles import ConfigError, ModelProfile, Profile
from emulator.quotas import Limits
from emulator.sends import SendLog, SendRecord
from emulator.sends import merge as merge_sends
from emulator.stats import Stats
from emulator.vertex import VertexTarget
from emulator.wire import AiohttpWire, Wire
from emulator.workers import WorkerLink

VERSIONS = ("v1", "v1beta")
GENERATE_METHODS = ("generateContent", "streamGenerateContent")


class Emulator:
    """One emulator process: the HTTP handlers around its generator."""

    def __init__(
        self,
        profile: Profile,
        *,
        time_scale: float = 1.0,
        seed: int | None = None,
        token_secret: bytes | None = None,
        token_clock: Callable[[], float] = time.time,
    ) -> None:
        self.profile = profile
        self.clock = Clock(time_scale)
        self.seed = seed
        self.stats = Stats()
        self.generator = Generator(profile, self.stats, self.clock, seed)
        self.link: WorkerLink | None = None  # set when running as one of --workers N
        self.stats_epoch = 0
        self.sends = SendLog()  # send times of requests that carry x-request-id (emulator.sends)
        # Access tokens (emulator.auth): workers share the secret, so each accepts the others' tokens.
        self.tokens = AccessTokens(token_secret, profile.token_lifetime, token_clock)

    # ---- helpers -------------------------------------------------------------------------------

    def model_profile(self, model: str, version: str, method: str) -> ModelProfile:
        profile = self.profile.models.get(model)
        if profile is None:
            if self.profile.is_retired(model):
                raise model_retired(model)
            raise model_not_found(model, version, method)
        return profile

    def check_key(self, request: web.Request) -> str:
        return self.require_key(protocol.api_key_of(request.headers, request.query))

    def require_key(self, key: str | None) -> str:
        if not key:
            raise missing_key()
        accepted = self.profile.accepted_keys
        if accepted is not None and key not in accepted:
            raise invalid_key()
        return key

    def authorize(
        self, target: VertexTarget, authorization: str | None, api_key: str | None, version: str, method: str
    ) -> str:
        """The caller of a Vertex request, or the 401/403 (400 for a bad express key) refusing it:
        the one auth check, whichever front parsed the request (emulator.auth)."""
        try:
            accepted = self.profile.accepted_keys
            return auth.authorize(self.tokens, target, authorization, api_key, accepted, version, method)
        except ApiError as refusal:
            self.stats.auth_refusals[str(refusal.code)] += 1
            raise

    def vertex_model(self, model: str, target: VertexTarget) -> ModelProfile:
        profile = self.profile.models.get(model)
        if profile is None:
            raise vertex.model_not_found(target, model)
        return profile

    async def read_body(self, request: web.Request) -> bytes:
        limit = self.profile.max_request_bytes
        too_big = f"Request payload size exceeds the limit: {limit} bytes."
        if request.content_length is not None and request.content_length > limit:
            raise invalid_argument(too_big)
        if request.content_length is not None:
            return await request.read()  # aiohttp's limit is set above ours: this cannot overflow
        body = bytearray()
        async for block in request.content.iter_chunked(1 << 16):
            body += block
            if len(body) > limit:
                raise invalid_argument(too_big)
        return bytes(body)

    @staticmethod
    def error_response(exc: ApiError) -> web.Response:
        return web.Response(
            status=exc.code, body=exc.body_bytes(), content_type="application/json", charset="UTF-8"
        )

    # ---- admin routes --------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def stats_snapshot(self) -> dict[str, Any]:
        extra = {
            "profile": self.profile.name,
            "time_scale": self.clock.time_scale,
            "seed": self.seed,
            "slots": {
                name: {"busy": s.busy, "queued": s.queued, "capacity": s.capacity}
                for name, s in self.generator.slots.items()
            },
            "caches_live": self.generator.caches.live_count(),
        }
        return self.stats.snapshot(extra)

    async def stats_route(self, request: web.Request) -> web.Response:
        snapshot = self.stats_snapshot()
        if self.link is not None:
            snapshot = self.link.merged_stats(snapshot)
        return web.json_response(snapshot)

    def reset_stats(self, epoch: int) -> None:
        self.stats.reset()  # in place: the generator counts into the same object
        self.stats_epoch = epoch

    async def stats_reset(self, request: web.Request) -> web.Response:
        self.reset_stats(self.stats_epoch + 1)
        self.publish_control()
        return web.json_response(self.stats_snapshot())

    def publish_control(self) -> None:
        """--workers: what the admin routes changed here reaches the siblings (emulator.workers)."""
        if self.link is not None:
            faults = self.generator.faults.describe()
            self.link.publish_control(faults, self.stats_epoch, self.tokens.expired_before_ms)

    async def sends_route(self, request: web.Request) -> web.Response:
        snapshot = self.sends.snapshot()
        if self.link is not None and request.query.get("scope") != "worker":
            others = await self.link.ask_siblings("GET", "/emulator/sends?scope=worker")
            snapshot = merge_sends([snapshot, *others])
            snapshot["workers_missing"] = self.link.info.count - 1 - len(others)
        return web.json_response(snapshot)

    async def sends_reset(self, request: web.Request) -> web.Response:
        self.sends.reset()
        snapshot = self.sends.snapshot()
        if self.link is not None and request.query.get("scope") != "worker":
            others = await self.link.ask_siblings("POST", "/emulator/sends/reset?scope=worker")
            # A worker that did not answer kept its stamps: the caller must not read them as new.
            snapshot["workers_missing"] = self.link.info.count - 1 - len(others)
        return web.json_response(snapshot)

    async def faults_get(self, request: web.Request) -> web.Response:
        return web.json_response(self.generator.faults.describe())

    async def faults_post(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.read() or b"{}")
            if not isinstance(data, dict):
                raise ConfigError("the body must be a JSON object of fault name -> rate")
            reset = bool(data.pop("reset", False))
            self.generator.faults.update(data, reset=reset)
        except (ValueError, ConfigError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.publish_control()
        return web.json_response(self.generator.faults.describe())

    async def config_route(self, request: web.Request) -> web.Response:
        data = self.profile.describe()
        data["accepted_keys"] = (
            None if self.profile.accepted_keys is None else len(self.profile.accepted_keys)
        )
        # Keys never leave the emulator: a project shows how many keys share its quota.
        data["projects"] = {name: len(keys) for name, keys in self.profile.projects.items()}
        data.update(time_scale=self.clock.time_scale, seed=self.seed, faults=self.generator.faults.describe())
        return web.json_response(data)

    # ---- model routes --------------------------------------------------------------------------

    async def list_models(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        self.stats.begin(f"{version}/models.list", None)
        try:
            self.check_key(request)
            names = list(self.profile.models)
            try:
                size = int(request.query.get("pageSize") or 50)
                start = int(request.query.get("pageToken") or 0)
            except ValueError:
                raise invalid_argument("Invalid pageSize or pageToken.") from None
            size = max(1, min(size, 1000))
            page = names[start : start + size]
            body: dict[str, Any] = {
                "models": [responses.model_resource(n, self.profile.models[n]) for n in page]
            }
            if start + size < len(names):
                body["nextPageToken"] = str(start + size)
        except ApiError as exc:
            self.stats.end(exc.code)
            return self.error_response(exc)
        self.stats.end(200)
        return web.json_response(body)

    async def model_route(self, request: web.Request) -> web.StreamResponse:
        version = request.match_info["version"]
        model, _, method = request.match_info["target"].partition(":")
        if request.method == "POST" and method in GENERATE_METHODS:
            wire = AiohttpWire(request, self.read_body)
            await self.generate_route(wire, version, model, method)
            # No response: an injected reset. aiohttp quietly drops what is returned on a connection
            # already gone (raising instead would print a traceback for every injected reset).
            return wire.response or web.Response(status=500)

        async def answer() -> web.StreamResponse:
            if request.method == "GET" and not method:
                self.check_key(request)
                profile = self.model_profile(model, version, "get")
                return web.json_response(responses.model_resource(model, profile))
            if request.method != "POST" or method != "countTokens":
                raise ApiError(404, f"Method not found: {request.method} models/{model}:{method}")
            raw = await self.read_body(request)
            key = self.check_key(request)
            profile = self.model_profile(model, version, method)
            return web.json_response(count_tokens(raw, profile, self.generator.files, key))

        return await self.counted(f"{version}/models.{method or 'get'}", model, answer)

    async def counted(
        self, route: str, model: str, answer: Callable[[], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """A model route other than generate (models.get, countTokens, either dialect): counted in
        the stats under `route`, an ApiError answered as the API would."""
        self.stats.begin(route, model if model in self.profile.models else None)
        status: int | str = 200
        try:
            return await answer()
        except ApiError as exc:
            status = exc.code
            self.stats.by_quota.update(exc.limits)
            return self.error_response(exc)
        except (ConnectionResetError, asyncio.CancelledError):
            status = 499  # the client went away
            raise
        finally:
            self.stats.end(status)

    async def generate_route(
        self, wire: Wire, version: str, model: str, method: str, target: VertexTarget | None = None
    ) -> None:
        """generateContent and streamGenerateContent, whichever front parsed the request (the lean
        one, emulator.fastpath, or aiohttp's): the same checks, counters, answers and send stamps.
        `target`: a Vertex route (emulator.vertex), else the Developer API's."""
        route = f"{version}/models.{method}" if target is None else target.route(version, method)
        self.stats.begin(route, model if model in self.profile.models else None)
        record = self.sends.open(wire.request_id, model) if wire.request_id else None
        status: int | str = 200
        stamp = limits = None
        try:
            raw = await wire.body()
            if target is None:
                key = self.require_key(wire.api_key)
                profile = self.model_profile(model, version, method)
            else:
                key = self.authorize(target, wire.authorization, wire.api_key, version, method)
                profile = self.vertex_model(model, target)
                stamp = vertex.stamp_create_time()
                # A project's quota is Vertex's own; an express key keeps its Developer API one.
                limits = None if target.express else self.generator.vertex_limits(model)
            if method == "streamGenerateContent":
                await self.stream(wire, raw, key, model, profile, record, stamp, limits)
            else:
                body = await self.generator.generate(raw, key, model, profile, record, limits)
                await wire.send(200, body if stamp is None else stamp(body))
                if record is not None:
                    record.sent.append(time.time())
        except ApiError as exc:
            if target is not None:
                exc = vertex.refusal(exc)
            status = exc.code
            self.stats.by_quota.update(exc.limits)
            await wire.send(exc.code, exc.body_bytes())
            if record is not None:
                record.sent.append(time.time())
        except DropConnection:
            status = "reset"
            wire.reset()
        except (ConnectionResetError, asyncio.CancelledError):
            status = 499  # the client went away
            raise
        finally:
            self.stats.end(status)
            if record is not None:
                record.finish(status)  # its id's sums: calls, queue and model time, tokens

    async def stream(
        self,
        wire: Wire,
        raw: bytes,
        key: str,
        model: str,
        profile: ModelProfile,
        record: SendRecord | None,
        stamp: Callable[[bytes], bytes] | None = None,
        limits: Limits | None = None,
    ) -> None:
        """Write the generator's chunks as they come; headers go out with the first one, so a
        refusal before it is still an ordinary error response. `stamp`: Vertex's createTime;
        `limits`: a Vertex project's quota (Generator.vertex_limits)."""
        chunks = self.generator.stream(raw, key, model, profile, wire.sse, record, limits)
        async with contextlib.aclosing(chunks):  # a client gone mid-stream frees the slot at once
            async for chunk in chunks:
                await wire.write(chunk if stamp is None else stamp(chunk))
                if record is not None:
                    record.sent.append(time.time())
        await wire.end()


def build_app(emulator: Emulator) -> web.Application:
    # The body limit is enforced by Emulator.read_body with the real API's message, not by aiohttp.
    app = web.Application(client_max_size=emulator.profile.max_request_bytes * 4 + (1 << 20))
    app["emulator"] = emulator
    # Model routes first: they take nearly all the traffic, and aiohttp tries routes in order.
    for version in VERSIONS:
        app.router.add_route("*", f"/{{version:{version}}}/models/{{target}}", emulator.model_route)
        app.router.add_get(f"/{{version:{version}}}/models", emulator.list_models)
    # The Files API (emulator.file_routes over emulator.files): uploads, files.get/list/delete, on both versions.
    files = FilesApi(emulator.generator.files, emulator.stats, emulator.check_key, emulator.error_response)
    files.add_routes(app, VERSIONS)
    cache_routes.add_routes(app, emulator, VERSIONS)  # cachedContents (emulator.caching)
    vertex_routes.add_routes(app, emulator)  # Vertex AI's model routes, POST /token, tokens/expire
    app.router.add_get("/healthz", emulator.healthz)
    app.router.add_get("/emulator/stats", emulator.stats_route)
    app.router.add_post("/emulator/stats/reset", emulator.stats_reset)
    app.router.add_get("/emulator/sends", emulator.sends_route)
    app.router.add_post("/emulator/sends/reset", emulator.sends_reset)
    app.router.add_get("/emulator/faults", emulator.faults_get)
    app.router.add_post("/emulator/faults", emulator.faults_post)
    app.router.add_get("/emulator/config", emulator.config_route)
    return app
