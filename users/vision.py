"""VisionUser: shelf photos sent inline for a JSON inventory, raw or through the pre-processing pipeline.

--image-mode raw|optimized|both picks what is sent; with both, every image goes out once in each
mode, one after the other, so one run compares the modes on the same pictures. Images go largest
first. Outcome.variant is
the mode, item_id the image name, request_bytes the JSON body that carries the image (base64),
prep_ms the CPU the pipeline spent on that image (once per process; 0 for raw). Answers must be
JSON matching fixtures/schemas/inventory.json, else the call is an invalid_response.

--image-transport inline|files: inline sends the image's bytes in the request (base64); files
uploads it through the Files API on each call and names it in a fileData part
(users/transports/uploads.py), the way apps send images too large for a request. The upload is
inside the call's timing (what the user waits for, as the bytes of an inline call are), its own
times are the Locust row "vision upload", and the file is deleted once the answer is in.

The inventory carries the model's confidence in its reading (Outcome.confidence), required so a
tiered run (--escalate-to, users/tiering.py) always has one to decide on.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from locust import between

from core.options import OptionError, OptionSpec
from core.outcome import Outcome
from fixtures.images import folder_images, load_images
from fixtures.loading import read_schema
from users.base import GeminiUser
from users.call import CallResult, CallSpec, FileImage, InlineImage, rest_body, rest_json, with_request_bytes
from users.images import PreparedImage, check_inline_limit, outside_loop, prepare_all
from users.scenario_options import PreparedCalls, ScenarioSettings, scenario_settings
from users.scenarios import register_scenario
from users.settings import GeminiSettings
from users.state import users_state
from users.tiering import TIERING_OPTIONS, check_escalation_model, tiered_answer, tiering_of
from users.transports import transport_class
from users.transports.uploads import UploadingTransport, can_upload
from users.verdicts import parse_json_answer, validator_for

if TYPE_CHECKING:  # jsonschema is imported during preparation, off the event loop
    import jsonschema

INSTRUCTION = "You are a retail inventory assistant. Answer only with JSON matching the schema."
PROMPT = (
    "This is a photo of a store shelf. List every product you can read: brand, product name, the price "
    "on its tag, how many units face the front and which shelf it is on (1 = top). Also count the "
    "shelves and the empty slots."
)


MEDIA_RESOLUTION = OptionSpec(
    "--media-resolution",
    "",
    "vision: generationConfig.mediaResolution, low, medium or high. Gemini 3 counts an image by it, "
    "whatever its size; empty: the model's default",
)
MEDIA_RESOLUTIONS = ("low", "medium", "high")
IMAGE_TRANSPORT = OptionSpec(
    "--image-transport",
    "inline",
    "vision: inline (the image's bytes in the request) or files (uploaded through the Files API on "
    "each call, named by fileData, deleted after the answer; the upload is timed with the call)",
)
IMAGE_TRANSPORTS = ("inline", "files")
UPLOAD_ROW = "vision upload"  # the Locust row of the uploads' own times
# A fileData URI as long as the real API's, for the request size of a files call.
_URI_FOR_SIZE = "https://generativelanguage.googleapis.com/v1beta/files/" + "x" * 12
LEGACY_CANNOT_UPLOAD = (
    "--image-transport files does not work with --transport legacy: google-generativeai's upload_file "
    "fetches its discovery document from generativelanguage.googleapis.com whatever the endpoint, so "
    "it never reaches the emulator or your --host; use --transport genai or http"
)

logger = logging.getLogger(__name__)


def image_transport(scenario: ScenarioSettings, transport: str | None = None) -> str:
    """inline or files; OptionError if unknown, or if files is asked of a transport that cannot upload."""
    value = (scenario.option(IMAGE_TRANSPORT.flag) or IMAGE_TRANSPORT.default).strip().lower()
    if value not in IMAGE_TRANSPORTS:
        raise OptionError(f"--image-transport {value!r} is not known: use {' or '.join(IMAGE_TRANSPORTS)}")
    if value == "files" and transport is not None:
        if transport == "legacy":
            raise OptionError(LEGACY_CANNOT_UPLOAD)
        if not can_upload(transport_class(transport)):
            raise OptionError(
                f"--image-transport files needs a transport that uploads files; {transport!r} cannot: "
                "use --transport genai or http"
            )
    return value


def media_resolution(scenario: ScenarioSettings) -> str | None:
    """The MEDIA_RESOLUTION_* value to send, None for the model's default; OptionError if unknown."""
    value = scenario.option(MEDIA_RESOLUTION.flag).strip().lower()
    if not value:
        return None
    if value not in MEDIA_RESOLUTIONS:
        raise OptionError(
            f"--media-resolution {value!r} is not known: use {', '.join(MEDIA_RESOLUTIONS)}, or leave it empty"
        )
    return f"MEDIA_RESOLUTION_{value.upper()}"


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    return validator_for(inventory_schema())


@functools.cache
def inventory_schema() -> dict[str, Any]:
    return read_schema("inventory")


def build_vision_specs(settings: GeminiSettings, scenario: ScenarioSettings) -> list[CallSpec]:
    """One spec per (image, mode), modes of one image side by side. Images are prepared here."""
    # Largest first: the pictures the pipeline changes most are compared even in a short run.
    # Drawing missing images (seconds for 8K) and reading them happen off the event loop.
    resolution = media_resolution(scenario)
    tiers = tiering_of(scenario)
    if tiers is not None:
        check_escalation_model(tiers.escalate_to, settings.model)
    by_file = image_transport(scenario, settings.transport) == "files"
    found = outside_loop(load_images, scenario.images_dir or None, scenario.image_set)
    sources = sorted(found, key=lambda s: (-s.width * s.height, s.name))
    prepared = prepare_all(sources, scenario.image_modes, max_side=scenario.max_image_side)
    specs = [_spec(settings, image, resolution) for image in prepared]
    if by_file:  # no inline limit: this is how images too large for a request are sent
        return [_sent_by_file(spec) for spec in specs]
    for image, spec in zip(prepared, specs, strict=True):
        check_inline_limit(image.name, image.mode, spec.request_bytes, scenario.inline_limit_bytes)
    return specs


def _sent_by_file(spec: CallSpec) -> CallSpec:
    """request_bytes of a files call: the image's own bytes (uploaded as they are, not base64'd)
    plus the request that names it."""
    named = dataclasses.replace(
        spec,
        parts=tuple(
            FileImage(p.mime_type, _URI_FOR_SIZE) if isinstance(p, InlineImage) else p for p in spec.parts
        ),
    )
    uploaded = sum(len(p.data) for p in spec.parts if isinstance(p, InlineImage))
    return dataclasses.replace(spec, request_bytes=len(rest_json(rest_body(named))) + uploaded)


def _spec(settings: GeminiSettings, image: PreparedImage, resolution: str | None) -> CallSpec:
    schema = inventory_schema()
    spec = CallSpec(
        scenario=VisionUser.scenario,
        # Image first, then the question: the order Google's prompting guide recommends.
        parts=(InlineImage(image.mime_type, image.data), PROMPT),
        system_instruction=INSTRUCTION,
        **settings.call_fields(),
        media_resolution=resolution,
        response_mime_type="application/json",
        response_schema=schema,
        variant=image.mode,
        item_id=image.name,
        prep_ms=image.prep_ms,
    )
    return with_request_bytes(spec)


@register_scenario
class VisionUser(PreparedCalls, GeminiUser):
    scenario: ClassVar[str] = "vision"
    weight = 1
    think_time = between(0.5, 1.5)

    build_specs = staticmethod(build_vision_specs)
    options = (MEDIA_RESOLUTION, IMAGE_TRANSPORT, *TIERING_OPTIONS)

    @staticmethod
    def check_inputs(scenario: ScenarioSettings) -> None:
        """The media resolution, and the user's own images, if any, read and decoded (raises
        OptionError or FixtureError naming what is wrong)."""
        media_resolution(scenario)
        image_transport(scenario)
        tiering_of(scenario)
        if scenario.images_dir:
            # Decoding a folder of large photos takes seconds: off the event loop, as in build_specs.
            outside_loop(folder_images, scenario.images_dir)

    def start_index(self) -> int:
        # Each user starts one image further on (all modes of an image stay together), so several
        # vision users cover the set between them instead of all sending the same photo.
        return users_state(self.environment).next_user_number(self.scenario) * len(
            scenario_settings(self.environment).image_modes
        )

    def on_start(self) -> None:
        super().on_start()
        if image_transport(scenario_settings(self.environment)) == "files":
            self.transport = UploadingTransport(self.transport, on_upload=self._upload_done)  # type: ignore[arg-type]

    def _upload_done(self, ms: float, size: int) -> None:
        # Successes only: a failed upload is its call's failure, counted once, in the call's row.
        self.environment.events.request.fire(
            request_type="files.upload",
            name=UPLOAD_ROW,
            response_time=ms,
            response_length=size,
            exception=None,
            context={},
            start_time=time.time() - ms / 1000.0,
            url=None,
        )

    def execute(self, spec: CallSpec) -> Outcome:
        outcome = super().execute(spec)
        if isinstance(self.transport, UploadingTransport):
            # After the answer, outside its timing. A call cut off by the stop leaves its file to
            # expire (48 h), as a killed app would: no request goes out from a dying user.
            for problem in self.transport.finish_call():
                logger.warning("vision: could not delete an uploaded file: %s", problem)
        return outcome

    def judge(self, spec: CallSpec, result: CallResult, outcome: Outcome) -> None:
        outcome.confidence = float(parse_json_answer(result.text, _validator())["confidence"])

    def answer(self, spec: CallSpec) -> Outcome:
        return tiered_answer(self, spec)
