"""The cachedContents routes, as google-genai's `client.caches.*` calls them (both /v1 and /v1beta):

    POST   /{ver}/cachedContents                       create (body: a CachedContent)
    GET    /{ver}/cachedContents[?pageSize&pageToken]  list the caller's project's live caches
    GET    /{ver}/cachedContents/{id}                  get
    PATCH  /{ver}/cachedContents/{id}[?updateMask]     update ttl or expireTime (the SDK sends no mask)
    DELETE /{ver}/cachedContents/{id}                  delete: {} on success

HTTP only: the store is emulator.caching's, on the generator. Registered by server.build_app; the
emulator's own helpers (key check, body limit, model lookup, counters) are used through `emulator`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulator.errors import ApiError, invalid_argument


def add_routes(app: web.Application, emulator: Any, versions: tuple[str, ...]) -> None:
    routes = CacheRoutes(emulator)
    for version in versions:
        app.router.add_route("*", f"/{{version:{version}}}/cachedContents", routes.collection)
        app.router.add_route("*", f"/{{version:{version}}}/cachedContents/{{id}}", routes.item)


class CacheRoutes:
    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator

    async def collection(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        if request.method == "POST":
            return await self._answer(request, f"{version}/cachedContents.create", self._create)
        if request.method == "GET":
            return await self._answer(request, f"{version}/cachedContents.list", self._list)
        return self._not_found(request)

    async def item(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        handlers = {"GET": self._get, "PATCH": self._update, "DELETE": self._delete}
        handler = handlers.get(request.method)
        if handler is None:
            return self._not_found(request)
        return await self._answer(request, f"{version}/cachedContents.{request.method.lower()}", handler)

    async def _answer(self, request: web.Request, route: str, handler: Any) -> web.Response:
        emu = self.emulator
        emu.stats.begin(route, None)
        status = 200
        try:
            raw = await emu.read_body(request) if request.can_read_body else b""
            key = emu.check_key(request)
            body = handler(request, raw, key)
        except ApiError as exc:
            status = exc.code
            return emu.error_response(exc)
        finally:
            emu.stats.end(status)
        return web.json_response(body)

    def _not_found(self, request: web.Request) -> web.Response:
        error = ApiError(404, f"Method not found: {request.method} {request.path}")
        return self.emulator.error_response(error)

    @property
    def _store(self) -> Any:
        return self.emulator.generator.caches

    def _create(self, request: web.Request, raw: bytes, key: str) -> dict[str, Any]:
        version = request.match_info["version"]
        return self._store.create(
            raw, key, lambda model: self.emulator.model_profile(model, version, "createCachedContent")
        )

    def _list(self, request: web.Request, raw: bytes, key: str) -> dict[str, Any]:
        try:
            size = int(request.query.get("pageSize") or 0)
        except ValueError:
            raise invalid_argument("Invalid page_size.", "page_size") from None
        return self._store.page(key, size, request.query.get("pageToken", ""))

    def _get(self, request: web.Request, raw: bytes, key: str) -> dict[str, Any]:
        store = self._store
        return store.resource(store.get(_name(request), key))

    def _update(self, request: web.Request, raw: bytes, key: str) -> dict[str, Any]:
        return self._store.update(_name(request), key, raw, request.query.get("updateMask"))

    def _delete(self, request: web.Request, raw: bytes, key: str) -> dict[str, Any]:
        self._store.delete(_name(request), key)
        return {}


def _name(request: web.Request) -> str:
    return "cachedContents/" + request.match_info["id"]
