"""The google-genai SDK transport (the suite's default): what most new apps run."""

from __future__ import annotations

import functools
import io
import ssl
from typing import Any

import httpx2
from google import genai
from google.genai import errors, types

from core import outcome
from users.call import CallResult, CallSpec, CallTimer, FileImage, InlineImage, rest_body
from users.errors import CallError, api_error, classify, redact
from users.transports.replies import Reply, StreamReply, Usage, unary_result
from users.transports.uploads import UploadedFile

Payload = tuple[list[Any], types.GenerateContentConfig]


@functools.cache
def _shared_ssl_context() -> ssl.SSLContext:
    """One SSL context per process: each genai.Client otherwise loads the CA bundle again, about
    60 ms of CPU (stalling every user in the process) and 2.5 MB per client."""
    return httpx2.create_ssl_context()


def encode(spec: CallSpec) -> Payload:
    """The SDK's contents and config for a spec, read out of its REST body (users.call.rest_body).

    Built once per spec (pydantic construction is CPU kept out of the load loop). The config is
    the REST body's generationConfig and other top-level fields, validated by the SDK's own
    camelCase aliases: a field rest_body learns reaches this transport with no code here, and one
    the SDK does not know fails loudly (its models forbid extra fields).
    """
    body = rest_body(spec, image_data=lambda data: "")  # images go in `contents` as bytes, below
    del body["contents"]
    fields = {**body.pop("generationConfig", {}), **body}
    instruction = fields.get("systemInstruction")
    if instruction is not None and instruction == {"parts": [{"text": spec.system_instruction}]}:
        fields["systemInstruction"] = spec.system_instruction  # as apps write it (the SDK adds role user)
    config = types.GenerateContentConfig.model_validate(fields)
    # Plain strings for text: the SDK converts them faster than prebuilt Content objects.
    contents: list[Any] = [_part(p) for p in spec.parts]
    return contents, config


def _part(part: str | InlineImage | FileImage) -> Any:
    if isinstance(part, InlineImage):
        return types.Part.from_bytes(data=part.data, mime_type=part.mime_type)
    if isinstance(part, FileImage):
        return types.Part.from_uri(file_uri=part.uri, mime_type=part.mime_type)
    return part


class GenaiTransport:
    """One client per user: a shared client's pool (100 connections) queues users beyond it and
    inflates their TTFT, while a per-user client with the shared SSL context costs 0.1 MB."""

    name = "genai"

    def __init__(self, *, base_url: str, api_key: str, timeout_s: float) -> None:
        self._secrets = (api_key,)
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

    @staticmethod
    def payload(spec: CallSpec) -> Payload:
        return spec.payload(GenaiTransport.name, encode)

    def close(self) -> None:
        self._client.close()

    def call(self, spec: CallSpec, timer: CallTimer) -> CallResult:
        try:
            contents, config = self.payload(spec)
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            message = f"the google-genai SDK cannot encode this request ({type(exc).__name__}: {exc})"
            raise CallError(outcome.CLIENT_ERROR, redact(message, self._secrets)) from exc
        try:
            if spec.stream:
                return self._stream(spec, contents, config, timer)
            response = self._client.models.generate_content(
                model=spec.model, contents=contents, config=config
            )
            return unary_result(_reply(response), response_bytes=_content_length(response))
        except CallError:
            raise
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a classified CallError
            raise self._classify(exc) from exc

    def upload_file(self, data: bytes, mime_type: str, display_name: str) -> UploadedFile:
        """files.upload, the SDK's resumable upload (start, then the bytes with finalize)."""
        try:
            config = types.UploadFileConfig(mime_type=mime_type, display_name=display_name or None)
            file = self._client.files.upload(file=io.BytesIO(data), config=config)
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a classified CallError
            raise self._classify(exc) from exc
        if not file.name or not file.uri:
            raise CallError(outcome.INVALID_RESPONSE, "files.upload answered a file without a name or uri")
        return UploadedFile(file.name, FileImage(file.mime_type or mime_type, file.uri))

    def delete_file(self, name: str) -> None:
        try:
            self._client.files.delete(name=name)
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a classified CallError
            raise self._classify(exc) from exc

    def _stream(
        self,
        spec: CallSpec,
        contents: list[Any],
        config: types.GenerateContentConfig,
        timer: CallTimer,
    ) -> CallResult:
        stream = StreamReply(timer)
        received = 0
        for chunk in self._client.models.generate_content_stream(
            model=spec.model, contents=contents, config=config
        ):
            stream.add(_reply(chunk))
            received += _content_length(chunk)
        return stream.finish(response_bytes=received)

    def _classify(self, exc: Exception) -> CallError:
        if isinstance(exc, errors.APIError):
            code = int(exc.code or 0)
            return api_error(code, exc.status, exc.message, exc.details, self._secrets)
        return classify(
            exc,
            self._secrets,
            timeouts=(httpx2.TimeoutException,),
            connections=(httpx2.TransportError,),
        )


def _enum_name(value: object) -> str:
    if value is None:
        return ""
    return str(getattr(value, "name", value))


def _reply(response: types.GenerateContentResponse) -> Reply:
    """A response or stream chunk in the shared terms, read without the SDK's .text (which warns
    about thought parts and joins every candidate)."""
    text: list[str] = []
    thought: list[str] = []
    finish = ""
    if response.candidates:
        candidate = response.candidates[0]
        for part in (candidate.content.parts if candidate.content else None) or ():
            if part.text:
                (thought if part.thought else text).append(part.text)
        finish = _enum_name(candidate.finish_reason)
    usage = response.usage_metadata
    feedback = response.prompt_feedback
    return Reply(
        "".join(text),
        "".join(thought),
        None
        if usage is None
        else Usage(
            usage.prompt_token_count,
            usage.candidates_token_count,
            usage.thoughts_token_count,
            usage.cached_content_token_count,
        ),
        finish,
        _enum_name(feedback.block_reason) if feedback is not None else "",
    )


def _content_length(response: types.GenerateContentResponse) -> int:
    http = response.sdk_http_response
    length = (http.headers or {}).get("content-length") if http is not None else None
    return int(length) if length and length.isdigit() else 0
