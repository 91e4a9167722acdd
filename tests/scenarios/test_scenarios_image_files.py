"""The vision scenario's --image-transport files: each call uploads its image through the Files API
(google-genai's files.upload, or the raw HTTP transport's own two-step resumable upload) and names
it by fileData; the upload is timed with the call and has its own Locust row; the file is deleted
after the answer; a failed upload is the call's failure; the legacy SDK is refused at start-up."""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from locust.env import Environment
from scenario_helpers import write_image

from core import outcome as kinds
from core.options import OptionError
from emulator.launcher import EmulatorProcess
from users.call import CallSpec, InlineImage
from users.scenario_options import scenario_settings
from users.state import settings_of
from users.vision import LEGACY_CANNOT_UPLOAD, UPLOAD_ROW, VisionUser


def emulator_json(emulator: EmulatorProcess, path: str, key: str | None = None) -> Any:
    request = urllib.request.Request(emulator.url + path, headers={"x-goog-api-key": key} if key else {})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def one_call(
    env: Environment, alter: Callable[[CallSpec], CallSpec] = lambda spec: spec
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """(spec, Outcome, the Locust request events it fired) of one vision call; `alter` changes the
    prepared spec before it is sent."""
    events: list[dict[str, Any]] = []
    env.events.request.add_listener(lambda **event: events.append(event))
    user = VisionUser(env)
    user.on_start()
    try:
        (spec,) = user.specs()
        return spec, user.execute(alter(spec)), events
    finally:
        user.on_stop()


@pytest.fixture
def shelf(tmp_path: Path) -> Path:
    folder = tmp_path / "shelves"
    write_image(folder / "shelf.jpg", (1600, 1200), quality=90)
    return folder


@pytest.mark.parametrize("transport", ["genai", "http"])
def test_files_calls_upload_name_and_delete_their_image(
    make_env: Callable[..., Environment], emulator: EmulatorProcess, shelf: Path, transport: str
) -> None:
    common = {"images_dir": str(shelf), "transport": transport}
    inline_spec, inline, _ = one_call(make_env([VisionUser], **common))
    before = emulator_json(emulator, "/emulator/stats")["requests_by_route"]
    env = make_env([VisionUser], image_transport="files", **common)
    spec, by_file, events = one_call(env)
    after = emulator_json(emulator, "/emulator/stats")["requests_by_route"]

    assert inline.ok and by_file.ok, (inline.error_message, by_file.error_message)
    assert by_file.transport == transport and by_file.item_id == "shelf.jpg"
    # The same picture costs the same tokens whichever way it travels.
    assert by_file.prompt_tokens == inline.prompt_tokens and by_file.cost_usd == inline.cost_usd
    # Uploaded as it is, not base64'd: fewer bytes on the wire than the inline request.
    (image,) = [p for p in spec.parts if isinstance(p, InlineImage)]
    assert len(image.data) < by_file.request_bytes < inline_spec.request_bytes

    version = "v1" if transport == "genai" else "v1beta"  # google-genai 3.x calls /v1 by default
    grew = {route: after.get(route, 0) - before.get(route, 0) for route in after}
    assert grew[f"{version}/files.create"] == grew[f"{version}/files.upload"] == 1
    assert grew[f"{version}/files.delete"] == 1  # deleted once the answer was in
    key = settings_of(env).api_key
    assert emulator_json(emulator, "/v1beta/files", key).get("files", []) == []

    # The upload's own time is its own Locust row; the call's row times upload and answer together.
    (upload,) = [e for e in events if e["name"] == UPLOAD_ROW]
    assert upload["exception"] is None and upload["response_length"] == len(image.data)
    assert 0 < upload["response_time"] < by_file.e2e_ms


@pytest.mark.parametrize("transport", ["genai", "http"])
def test_a_failed_upload_is_the_calls_failure_in_the_error_taxonomy(
    make_env: Callable[..., Environment], shelf: Path, transport: str
) -> None:
    env = make_env([VisionUser], images_dir=str(shelf), transport=transport, image_transport="files")

    def nameless(spec: CallSpec) -> CallSpec:
        # No MIME type: the emulator refuses the upload's start with a 400, as the real API does.
        parts = tuple(InlineImage("", p.data) if isinstance(p, InlineImage) else p for p in spec.parts)
        return dataclasses.replace(spec, parts=parts)

    _, outcome, events = one_call(env, nameless)
    assert outcome.error_kind == kinds.CLIENT_ERROR and outcome.http_status == 400, outcome
    assert "Content-Type" in outcome.error_message
    assert not [e for e in events if e["name"] == UPLOAD_ROW]  # counted once: as the call's failure


def test_the_legacy_sdk_is_refused_files_at_start_up(
    make_env: Callable[..., Environment], shelf: Path
) -> None:
    env = make_env([VisionUser], images_dir=str(shelf), transport="legacy", image_transport="files")
    with pytest.raises(OptionError) as refused:
        VisionUser.build_specs(settings_of(env), scenario_settings(env))
    assert str(refused.value) == LEGACY_CANNOT_UPLOAD and "\n" not in LEGACY_CANNOT_UPLOAD
    env = make_env([VisionUser], images_dir=str(shelf), image_transport="ftp")
    with pytest.raises(OptionError, match="--image-transport 'ftp' is not known: use inline or files"):
        VisionUser.check_inputs(scenario_settings(env))
