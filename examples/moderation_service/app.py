"""A small moderation API that asks Gemini whether a post breaks the policy.

It is the example service for the suite's app user: an app of your own, calling Gemini, under load.
Its bottleneck is deliberate and adjustable, so a ramp shows the app's own share of latency (waiting
for a worker, pre-processing) rise past the model's once the pool is full, and stay flat with a
bigger pool.

    POST /moderate  {"text": "...", "id": "..."}  ->  200 {"verdict": "benign" | "violating",
                    "confidence": 0..1, "categories": [...], "request_id": "...", "id": ...}
    GET  /healthz   ->  200 {"status": "ok"}

Errors are JSON, {"error": KIND, "message": ..., "request_id": ...}: 400 bad_request (not JSON,
text missing, blank or too long), 502 model_error (the model answered an error; model_status and
model_error say which), model_unreachable or invalid_model_answer, 504 model_timeout.

Knobs:
  --pool N             at most N requests are handled at once (default 4); the others wait for a
                       worker, in the app: that wait is the app's own queue
  --preprocess-ms M    blocking pre-processing per request (default 20 ms), run on a thread pool of
                       N threads, so it holds a worker like a synchronous database or SDK call would
  --preprocess-on-loop run the pre-processing on the event loop instead: it then blocks every
                       request, the classic async mistake
  --model, --thinking-level, --model-timeout-s   the model call
  --host, --port, --request-id-header            the service
Settings from the environment: GEMINI_API_KEY (required), GEMINI_BASE_URL (optional: the
emulator's URL, say); --base-url overrides GEMINI_BASE_URL.

Request ids: the incoming x-request-id (or --request-id-header) is sent on the model call as
x-request-id, so the time in the model can be told apart from the time in the app; a request
without one gets a fresh id. The id comes back in the body and the x-request-id response header.
Server-Timing says where this request's time went: queue (waiting for a worker), pre, model, post.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from google import genai
from google.genai import errors, types

log = logging.getLogger("moderation_service")

MAX_TEXT_CHARS = 10_000
# The suite's labels (fixtures/data/moderation.jsonl): its report scores a verdict against the label.
BENIGN, VIOLATING = "benign", "violating"
INSTRUCTION = (
    "You are a content moderator. Decide whether the user's post violates the policy "
    "(hate, harassment, sexual content, dangerous content). Answer only with JSON matching the schema."
)
# The suite's moderation verdict (fixtures/schemas/moderation_verdict.json), inlined so the example
# stands alone; a test keeps the two equal.
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "flagged": {"type": "boolean", "description": "true when the post violates the policy"},
        "category": {"type": "string", "enum": ["none", "hate", "harassment", "sexual", "dangerous"]},
        "confidence": {
            "type": "number",
            "description": "how sure the verdict is, from 0 (a guess) to 1 (certain)",
        },
        "reason": {"type": "string"},
    },
    "required": ["flagged", "category", "confidence"],
}
# Gemini's own safety filter may block a post before the model judges it: that is a verdict too.
SAFETY_CATEGORIES = {
    "HARM_CATEGORY_HATE_SPEECH": "hate",
    "HARM_CATEGORY_HARASSMENT": "harassment",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT": "sexual",
    "HARM_CATEGORY_DANGEROUS_CONTENT": "dangerous",
}
# Sent explicitly, so the verdicts do not change with the API's default thresholds.
SAFETY_SETTINGS = [
    types.SafetySetting(category=c, threshold="BLOCK_MEDIUM_AND_ABOVE") for c in SAFETY_CATEGORIES
]
REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")  # visible ASCII: safe in a header and in a log line
REQUEST_ID_KEY = web.RequestKey("request_id", str)


@dataclass(frozen=True)
class Settings:
    api_key: str
    base_url: str | None
    model: str
    thinking_level: str | None
    model_timeout_s: float
    pool: int
    preprocess_ms: float
    preprocess_on_loop: bool
    request_id_header: str
    host: str
    port: int


class Failure(Exception):
    """A request that ends in an error answer: its status and JSON body."""

    def __init__(self, status: int, kind: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status, self.body = status, {"error": kind, "message": message, **extra}


def preprocess(text: str, pad_ms: float) -> str:
    """Normalise and fingerprint the post, padded to pad_ms with a blocking wait.

    The wait stands in for the synchronous work real apps do here (a database lookup, a sync SDK):
    it holds its thread without using the CPU, so the pool, not the CPU, is what runs out."""
    started = time.perf_counter()
    normal = " ".join(unicodedata.normalize("NFKC", text).split())
    hashlib.sha256(normal.casefold().encode()).hexdigest()  # a real app would look this up in a cache
    remaining = pad_ms / 1000 - (time.perf_counter() - started)
    if remaining > 0:
        time.sleep(remaining)
    return normal


def verdict_of(response: types.GenerateContentResponse) -> dict:
    """The model's answer as this API's verdict; Failure(502) for an answer that is not one."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        blocked = [r.category.value for r in feedback.safety_ratings or [] if r.blocked and r.category]
        categories = sorted({SAFETY_CATEGORIES.get(c, c) for c in blocked})
        return {"verdict": VIOLATING, "confidence": 1.0, "categories": categories}
    try:
        answer = json.loads(response.text or "")
        flagged, category = answer["flagged"], answer["category"]
        confidence = min(1.0, max(0.0, float(answer["confidence"])))
    except (ValueError, TypeError, KeyError) as exc:
        raise Failure(502, "invalid_model_answer", f"the model's answer is not a verdict ({exc})") from None
    return {
        "verdict": VIOLATING if flagged else BENIGN,
        "confidence": confidence,
        "categories": [] if category == "none" else [category],
    }


async def read_request(request: web.Request) -> tuple[str, object]:
    """The post's text and optional id; Failure(400) for anything else."""
    try:
        body = await request.json()
    except ValueError:
        raise Failure(400, "bad_request", 'the body is not JSON: send {"text": "..."}') from None
    if not isinstance(body, dict):
        raise Failure(400, "bad_request", 'the body must be a JSON object: {"text": "..."}')
    text, item_id = body.get("text"), body.get("id")
    if not isinstance(text, str) or not text.strip():
        raise Failure(400, "bad_request", '"text" is missing or blank: send the post to moderate')
    if len(text) > MAX_TEXT_CHARS:
        raise Failure(400, "bad_request", f'"text" has {len(text)} characters: at most {MAX_TEXT_CHARS}')
    if item_id is not None and not isinstance(item_id, str | int):
        raise Failure(400, "bad_request", '"id" must be a string or a number')
    return text, item_id


async def call_model(
    client: genai.Client, settings: Settings, post: str, request_id: str
) -> types.GenerateContentResponse:
    config = types.GenerateContentConfig(
        system_instruction=INSTRUCTION,
        response_mime_type="application/json",
        response_json_schema=VERDICT_SCHEMA,
        safety_settings=SAFETY_SETTINGS,
        # No tools: skip the SDK's function-calling loop (and its log line on every call).
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        thinking_config=types.ThinkingConfig(thinking_level=settings.thinking_level)
        if settings.thinking_level
        else None,
        # Per-request HTTP options: merged over the client's, their headers added to this call only.
        http_options=types.HttpOptions(
            headers={"x-request-id": request_id}, timeout=int(settings.model_timeout_s * 1000)
        ),
    )
    try:
        return await client.aio.models.generate_content(model=settings.model, contents=post, config=config)
    except errors.APIError as exc:
        kind = f"{exc.code} {exc.status or ''}".strip()
        raise Failure(
            502, "model_error", f"the model answered {kind}", model_status=exc.code, model_error=exc.status
        ) from None
    except TimeoutError:  # before ClientError: aiohttp's ServerTimeoutError is both
        raise Failure(
            504, "model_timeout", f"no answer from the model in {settings.model_timeout_s:g} s"
        ) from None
    except aiohttp.ClientError as exc:
        raise Failure(
            502, "model_unreachable", f"the model could not be reached ({type(exc).__name__})"
        ) from None


class ModerationService:
    """The handlers, with what they share: the settings, the pool, the Gemini client, the threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = asyncio.Semaphore(settings.pool)  # held for a request's whole handling
        self.client: genai.Client | None = None
        self.threads: ThreadPoolExecutor | None = None

    async def moderate(self, request: web.Request) -> web.Response:
        settings = self.settings
        text, item_id = await read_request(request)
        request_id = request[REQUEST_ID_KEY]
        arrived = time.perf_counter()
        async with self.pool:  # the bottleneck: pre-processing, model call and post-processing
            started = time.perf_counter()
            if settings.preprocess_on_loop:
                post = preprocess(text, settings.preprocess_ms)  # blocks the loop: every request waits
            else:
                loop = asyncio.get_running_loop()
                post = await loop.run_in_executor(self.threads, preprocess, text, settings.preprocess_ms)
            model_started = time.perf_counter()
            response = await call_model(self.client, settings, post, request_id)
            model_ended = time.perf_counter()
            verdict = verdict_of(response)
        ended = time.perf_counter()
        body = {**verdict, "request_id": request_id, **({} if item_id is None else {"id": item_id})}
        # Where this request's time went, in the standard header a browser's devtools show too.
        spans = {"queue": started - arrived, "pre": model_started - started}
        spans |= {"model": model_ended - model_started, "post": ended - model_ended}
        timing = ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in spans.items())
        return web.json_response(body, headers={"Server-Timing": timing})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @web.middleware
    async def request_ids_and_errors(self, request: web.Request, handler) -> web.StreamResponse:
        """Give every request an id, echo it, and answer every error as JSON (never a traceback page)."""
        header = self.settings.request_id_header
        request_id: str | None = request.headers.get(header) or uuid.uuid4().hex
        try:
            if not REQUEST_ID.fullmatch(request_id):
                request_id = None  # not echoed: it could be anything
                raise Failure(400, "bad_request", f"{header} must be 1 to 128 visible ASCII characters")
            request[REQUEST_ID_KEY] = request_id
            response = await handler(request)
        except Failure as failure:
            response = error_response(failure.status, failure.body, request_id)
        except web.HTTPException as exc:  # from aiohttp itself: 404, 405, 413 (a body over 1 MiB)
            kind = exc.reason.lower().replace(" ", "_")
            response = error_response(exc.status, {"error": kind, "message": exc.reason}, request_id)
        except Exception:
            log.exception("request %s failed", request_id)
            response = error_response(500, {"error": "internal", "message": "internal error"}, request_id)
        if request_id:
            response.headers["x-request-id"] = request_id
        return response

    async def resources(self, app: web.Application):
        """The Gemini client and the worker threads, for the app's lifetime; closed on shutdown."""
        http_options = types.HttpOptions(
            base_url=self.settings.base_url,
            # One attempt: without retry options the SDK retries a refused connection after 1-10 s
            # of sleep, time the load test would wrongly count as the app's own.
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self.client = genai.Client(api_key=self.settings.api_key, http_options=http_options)
        self.threads = ThreadPoolExecutor(max_workers=self.settings.pool, thread_name_prefix="preprocess")
        yield
        await self.client.aio.aclose()
        self.client.close()
        self.threads.shutdown(wait=False, cancel_futures=True)


def error_response(status: int, body: dict, request_id: str | None) -> web.Response:
    return web.json_response({**body, **({"request_id": request_id} if request_id else {})}, status=status)


def make_app(settings: Settings) -> web.Application:
    service = ModerationService(settings)
    app = web.Application(middlewares=[service.request_ids_and_errors], client_max_size=1024 * 1024)
    app.cleanup_ctx.append(service.resources)
    app.router.add_post("/moderate", service.moderate)
    app.router.add_get("/healthz", service.healthz)
    return app
