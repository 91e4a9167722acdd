"""The google-genai SDK transport (the suite's default): what most new apps run."""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx2
from google import genai
from google.genai import errors, types

from core import outcome
from users.call import CallResult, CallSpec, CallTimer, InlineImage
from users.errors import CallError, kind_for_status, redact, retry_delay_from_details


def _enum_name(value: object) -> str:
    if value is None:
        return ""
    return str(getattr(value, "name", value))


# One SSL context per process: each genai.Client otherwise loads the CA bundle again, about 60 ms of
# CPU (stalling every user in the process) and 2.5 MB per client (benchmarks/transports.py).
_ssl_context: ssl.SSLContext | None = None
# SDK request objects per spec, shared by every user in the process. Pydantic construction is CPU
# kept out of the load loop; the cap keeps a stream of one-off specs from growing it without end.
_built: dict[int, tuple[CallSpec, list[Any], types.GenerateContentConfig]] = {}
BUILT_CACHE_MAX_ENTRIES = 4096


def _shared_ssl_context() -> ssl.SSLContext:
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx2.create_ssl_context()
    return _ssl_context


class GenaiTransport:
    """One client per user: a shared client's pool (100 connections) queues users beyond it and
    inflates their TTFT, while a per-user client with the shared SSL context costs 0.1 MB."""

    name = "genai"

    def __init__(self, *, base_url: str, api_key: str, timeout_s: float) -> None:
        self._api_key = api_key
        context = _shared_ssl_context()
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url,
                timeout=int(timeout_s * 1000),
                client_args={"verify": context},
                async_client_args={"verify": context, "ssl": context},
            ),
        )

    def close(self) -> None:
        self._client.close()

    def _build(self, spec: CallSpec) -> tuple[list[Any], types.GenerateContentConfig]:
        cached = _built.get(id(spec))
        if cached is not None and cached[0] is spec:
            return cached[1], cached[2]
        # Plain strings for text: the SDK converts them faster than prebuilt Content objects.
        contents: list[Any] = [
            types.Part.from_bytes(data=p.data, mime_type=p.mime_type) if isinstance(p, InlineImage) else p
            for p in spec.parts
        ]
        config = types.GenerateContentConfig(
            system_instruction=spec.system_instruction,
            max_output_tokens=spec.max_output_tokens,
            temperature=spec.temperature,
            thinking_config=None
            if spec.thinking_budget is None
            else types.ThinkingConfig(thinking_budget=spec.thinking_budget),
            response_mime_type=spec.response_mime_type,
            response_json_schema=spec.response_schema,
            safety_settings=[
                types.SafetySetting(category=category, threshold=threshold)
                for category, threshold in spec.safety_settings
            ]
            or None,
        )
        if len(_built) >= BUILT_CACHE_MAX_ENTRIES:
            _built.clear()
        _built[id(spec)] = (spec, contents, config)
        return contents, config

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        contents, config = self._build(spec)
        try:
            if spec.stream:
                return self._stream(spec, contents, config, timer)
            response = self._client.models.generate_content(
                model=spec.model, contents=contents, config=config
            )
            result = CallResult(http_status=200)
            _absorb(result, response)
            return result
        except CallError:
            raise
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a classified CallError
            raise self._classify(exc) from exc

    def _stream(
        self,
        spec: CallSpec,
        contents: list[Any],
        config: types.GenerateContentConfig,
        timer: CallTimer,
    ) -> CallResult:
        result = CallResult(http_status=200)
        texts: list[str] = []
        for chunk in self._client.models.generate_content_stream(
            model=spec.model, contents=contents, config=config
        ):
            text, thought = _chunk_text(chunk)
            timer.chunk(has_text=bool(text), has_thought=bool(thought))
            texts.append(text)
            _absorb(result, chunk, text_so_far=None)
        result.text = "".join(texts)
        return result

    def _classify(self, exc: Exception) -> CallError:
        secrets = (self._api_key,)
        if isinstance(exc, errors.APIError):
            code = int(exc.code or 0)
            return CallError(
                kind_for_status(code) if code else outcome.INVALID_RESPONSE,
                redact(f"{code} {exc.status or ''} {exc.message or ''}".strip(), secrets),
                http_status=code or None,
                retry_after_s=retry_delay_from_details(exc.details),
            )
        if isinstance(exc, httpx2.TimeoutException):
            return CallError(outcome.TIMEOUT, redact(f"timeout: {exc!r}", secrets))
        if isinstance(exc, httpx2.TransportError):
            return CallError(outcome.CONNECTION, redact(f"{type(exc).__name__}: {exc}", secrets))
        if isinstance(exc, errors.UnknownApiResponseError | json.JSONDecodeError | ValueError):
            return CallError(outcome.INVALID_RESPONSE, redact(f"{type(exc).__name__}: {exc}", secrets))
        return CallError(outcome.INVALID_RESPONSE, redact(f"{type(exc).__name__}: {exc}", secrets))


def _chunk_text(response: types.GenerateContentResponse) -> tuple[str, str]:
    """Answer text and thought text of one response or chunk, without the SDK's .text warnings."""
    text: list[str] = []
    thought: list[str] = []
    for candidate in (response.candidates or ())[:1]:
        for part in (candidate.content.parts if candidate.content else None) or ():
            if part.text:
                (thought if part.thought else text).append(part.text)
    return "".join(text), "".join(thought)


def _absorb(result: CallResult, response: types.GenerateContentResponse, text_so_far: Any = "") -> None:
    """Copy what the server said: usage (cumulative in streams, so last wins), finish and block."""
    usage = response.usage_metadata
    if usage is not None:
        result.prompt_tokens = usage.prompt_token_count
        result.output_tokens = usage.candidates_token_count
        result.thoughts_tokens = usage.thoughts_token_count
        result.cached_tokens = usage.cached_content_token_count
    if response.candidates:
        reason = _enum_name(response.candidates[0].finish_reason)
        if reason:
            result.finish_reason = reason
    if response.prompt_feedback is not None and response.prompt_feedback.block_reason is not None:
        result.block_reason = _enum_name(response.prompt_feedback.block_reason)
    if text_so_far is not None:
        result.text = _chunk_text(response)[0]
    http = response.sdk_http_response
    length = (http.headers or {}).get("content-length") if http is not None else None
    if length and length.isdigit():
        result.response_bytes += int(length)
