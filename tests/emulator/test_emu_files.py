"""The Files API against the real google-genai SDK: resumable upload (from bytes and from a path),
files.get / list / delete, fileData parts that count like the same image inline, the 403 for a file
that is gone or another project's, and the 400s and 429 of malformed or oversized uploads."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from emu_http import MODEL, call_json, png_b64
from google import genai
from google.genai import errors, types

from core.catalogue import Images
from emulator.files import MAX_FILE_BYTES, STORE_LIMIT_BYTES, FileStore
from emulator.latency import Clock
from emulator.launcher import EmulatorProcess
from emulator.profiles import Profile
from emulator.tokens import prompt_tokens

KEY = "test-key"
PNG = base64.b64decode(png_b64(1536, 1152))
FLAT_MODEL = "gemini-2.5-flash-lite"  # 258 tokens an image, whatever its size


def client_for(url: str, key: str = KEY) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url))


def missing(file_id: str) -> str:
    return f"You do not have permission to access the File {file_id} or it may not exist."


def upload_png(client: genai.Client, data: bytes = PNG, **config: Any) -> types.File:
    return client.files.upload(file=io.BytesIO(data), config={"mime_type": "image/png", **config})


def test_upload_get_list_and_delete_with_the_sdk(emulator: EmulatorProcess, tmp_path: Path) -> None:
    client = client_for(emulator.url)
    uploaded = upload_png(client, display_name="shelf photo")
    file_id = uploaded.name.removeprefix("files/")
    assert uploaded.name.startswith("files/") and file_id
    assert uploaded.display_name == "shelf photo"
    assert uploaded.mime_type == "image/png"
    assert uploaded.size_bytes == len(PNG)
    assert uploaded.state == types.FileState.ACTIVE
    assert uploaded.source == types.FileSource.UPLOADED
    assert uploaded.uri == f"{emulator.url}/v1beta/files/{file_id}"
    assert uploaded.sha256_hash == base64.b64encode(hashlib.sha256(PNG).hexdigest().encode()).decode()
    assert uploaded.expiration_time - uploaded.create_time == timedelta(hours=48)

    path = tmp_path / "second shelf.jpg"
    path.write_bytes(b"\xff\xd8" + b"not really a jpeg" * 100)
    from_path = client.files.upload(file=path)  # the SDK guesses the type from the name
    assert from_path.mime_type == "image/jpeg" and from_path.size_bytes == path.stat().st_size

    got = client.files.get(name=uploaded.name)
    assert got.model_dump(exclude={"sdk_http_response"}) == uploaded.model_dump(exclude={"sdk_http_response"})
    # One file a page: the SDK's pager follows nextPageToken through every page.
    listed = [f.name for f in client.files.list(config={"page_size": 1})]
    assert {uploaded.name, from_path.name} <= set(listed) and len(listed) == len(set(listed))

    client.files.delete(name=uploaded.name)
    with pytest.raises(errors.ClientError) as refused:
        client.files.get(name=uploaded.name)
    assert refused.value.code == 403 and refused.value.status == "PERMISSION_DENIED"
    assert refused.value.message == missing(file_id)
    assert uploaded.name not in {f.name for f in client.files.list()}

    routes = call_json(emulator.url, "/emulator/stats")[1]["requests_by_route"]
    # google-genai 3.x calls /v1 by default: the Files API answers there as on v1beta.
    assert routes["v1/files.create"] >= 2 and routes["v1/files.upload"] >= 2
    assert routes["v1/files.get"] >= 2 and routes["v1/files.delete"] >= 1 and routes["v1/files.list"] >= 2


def prompt_and_count(client: genai.Client, model: str, image: types.Part) -> tuple[int, int]:
    """(prompt tokens of a generateContent, countTokens total) for the image and one question."""
    contents = [image, "What is on this shelf?"]
    reply = client.models.generate_content(model=model, contents=contents)
    counted = client.models.count_tokens(model=model, contents=contents)
    return reply.usage_metadata.prompt_token_count, counted.total_tokens


def test_an_uploaded_image_counts_like_the_same_image_inline(emulator: EmulatorProcess) -> None:
    client = client_for(emulator.url)
    uploaded = upload_png(client)
    by_file = types.Part.from_uri(file_uri=uploaded.uri, mime_type=uploaded.mime_type)
    inline = types.Part.from_bytes(data=PNG, mime_type="image/png")
    for model in (MODEL, FLAT_MODEL):
        assert prompt_and_count(client, model, by_file) == prompt_and_count(client, model, inline)
    low = types.Part.from_uri(
        file_uri=uploaded.uri, mime_type="image/png", media_resolution="MEDIA_RESOLUTION_LOW"
    )
    tokens, _ = prompt_and_count(client, MODEL, low)
    assert tokens < prompt_and_count(client, MODEL, by_file)[0]  # the part's own resolution counts


def test_the_file_bytes_reach_a_size_dependent_image_rule() -> None:
    """No model served today counts by size (the tiled rule left with 2.0): the store hands the
    file's bytes to the counter exactly as an inline image's."""
    store = FileStore(Profile(), Clock(0.0))
    upload_id = store.start_upload(KEY, len(PNG), "image/png", {})
    stored = store.receive(upload_id, 0, PNG, finalize=True)
    assert stored is not None
    tiles = Images(rule="tiles", tokens=258)
    by_file = {"contents": [{"parts": [{"fileData": {"fileUri": f"files/{stored.file_id}"}}]}]}
    assert store.attach(by_file) == (stored.file_id,)
    inline = {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "_bytes": PNG}}]}]}
    assert prompt_tokens(by_file, tiles) == prompt_tokens(inline, tiles)
    assert prompt_tokens(by_file, tiles)[0] == 4 * 258  # 1536x1152: 2x2 tiles, not one image


def test_a_deleted_or_foreign_file_is_the_apis_403(emulator: EmulatorProcess) -> None:
    client = client_for(emulator.url)
    uploaded = upload_png(client)
    file_id = uploaded.name.removeprefix("files/")
    contents = [types.Part.from_uri(file_uri=uploaded.uri, mime_type="image/png"), "Describe it."]
    assert client.models.generate_content(model=MODEL, contents=contents).text

    # Another key is another project (none is configured): the file is not its to read.
    stranger = client_for(emulator.url, key="another-project-key")
    for attempt in (
        lambda: stranger.models.generate_content(model=MODEL, contents=contents),
        lambda: stranger.files.get(name=uploaded.name),
        lambda: stranger.files.delete(name=uploaded.name),
    ):
        with pytest.raises(errors.ClientError) as refused:
            attempt()
        assert refused.value.code == 403 and refused.value.message == missing(file_id)

    client.files.delete(name=uploaded.name)
    # The same body as before (its answer is cached): whether the file exists is decided per request.
    for attempt in (
        lambda: client.models.generate_content(model=MODEL, contents=contents),
        lambda: list(client.models.generate_content_stream(model=MODEL, contents=contents)),
        lambda: client.models.count_tokens(model=MODEL, contents=contents),
        lambda: client.files.delete(name=uploaded.name),
    ):
        with pytest.raises(errors.ClientError) as refused:
            attempt()
        assert refused.value.code == 403 and refused.value.status == "PERMISSION_DENIED"
        assert refused.value.message == missing(file_id)


def start_upload(url: str, size: int, **headers: str) -> httpx.Response:
    sent = {
        "x-goog-api-key": KEY,
        "X-Goog-Upload-Protocol": "resumable",
        "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": str(size),
        "X-Goog-Upload-Header-Content-Type": "image/png",
    }
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    return httpx.post(f"{url}/upload/v1beta/files", headers=sent, json={"file": {}})


def send_chunk(
    upload_url: str, data: bytes, offset: int, command: str = "upload, finalize"
) -> httpx.Response:
    headers = {"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)}
    return httpx.post(upload_url, headers=headers, content=data)


def refused_with(response: httpx.Response, code: int, text: str) -> dict[str, Any]:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert text in error["message"], error
    return error


def test_malformed_upload_steps_are_400s_and_the_upload_goes_on(emulator: EmulatorProcess) -> None:
    url = emulator.url
    refused_with(start_upload(url, 10, X_Goog_Upload_Protocol="multipart"), 400, "resumable")
    refused_with(start_upload(url, 10, X_Goog_Upload_Header_Content_Length="ten"), 400, "Content-Length")
    refused_with(start_upload(url, MAX_FILE_BYTES + 1, x_goog_api_key=KEY), 400, "exceeds the maximum")
    refused_with(start_upload(url, 10, x_goog_api_key=""), 403, "unregistered callers")

    started = start_upload(url, len(PNG))
    assert started.status_code == 200 and started.headers["X-Goog-Upload-Status"] == "active"
    upload_url = started.headers["X-Goog-Upload-URL"]
    assert upload_url.startswith(f"{url}/upload/v1beta/files?upload_id=")

    unknown = send_chunk(f"{url}/upload/v1beta/files?upload_id=nope", PNG, 0)
    refused_with(unknown, 400, "Unknown upload_id")
    # Errors end the SDK's chunk loop: without an upload status it would send the chunk again.
    assert unknown.headers["X-Goog-Upload-Status"] == "final"
    half = len(PNG) // 2
    assert send_chunk(upload_url, PNG[:half], 0, "upload").headers["X-Goog-Upload-Status"] == "active"
    refused_with(send_chunk(upload_url, PNG[half:], 5), 400, f"does not match the {half} bytes")
    refused_with(send_chunk(upload_url, PNG[half:-1], half), 400, "finalized at")
    refused_with(send_chunk(upload_url, PNG[half:] + b"extra", half), 400, "past the size declared")
    refused_with(send_chunk(upload_url, PNG[half:], half, "finish"), 400, "X-Goog-Upload-Command")

    done = send_chunk(upload_url, PNG[half:], half)  # the right step still completes the upload
    assert done.status_code == 200 and done.headers["X-Goog-Upload-Status"] == "final"
    assert done.json()["file"]["sizeBytes"] == str(len(PNG))
    refused_with(send_chunk(upload_url, PNG, 0), 400, "Unknown upload_id")  # finished: gone


def test_the_store_is_bounded_with_the_apis_storage_429(start_emulator: Any) -> None:
    url = start_emulator({}).url
    # Declared sizes are reserved when an upload starts, before a byte arrives.
    first = start_upload(url, STORE_LIMIT_BYTES // 2 + 1)
    assert first.status_code == 200
    error = refused_with(start_upload(url, STORE_LIMIT_BYTES // 2 + 1), 429, "file_storage_bytes")
    assert error["status"] == "RESOURCE_EXHAUSTED"
    kinds = [detail["@type"].rsplit(".", 1)[-1] for detail in error["details"]]
    assert kinds == ["QuotaFailure", "Help"]  # no RetryInfo: waiting a minute frees nothing
    violation = error["details"][0]["violations"][0]
    assert violation["quotaId"] == "FileStorageBytesPerProject"
    assert violation["quotaValue"] == str(STORE_LIMIT_BYTES)
    assert start_upload(url, STORE_LIMIT_BYTES // 2 - 1).status_code == 200  # what is left still fits
    assert json.loads(httpx.get(f"{url}/v1beta/files", headers={"x-goog-api-key": KEY}).text) == {}
