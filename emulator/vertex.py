"""The Vertex AI dialect of the generate routes: where a request is aimed, and what Vertex says
differently from the Developer API.

Routes (both /v1 and /v1beta1; google-genai 3.x uses v1beta1 for Vertex by default):
    POST /{ver}/projects/{project}/locations/{location}/publishers/google/models/{model}:METHOD
         with `Authorization: Bearer <token>` from this emulator's POST /token (emulator.oauth)
    POST /{ver}/publishers/google/models/{model}:METHOD
         express mode: an API key (x-goog-api-key or ?key=), no project
METHOD is generateContent, streamGenerateContent (`?alt=sse` as the genai SDK sends it) or
countTokens. Request and response bodies are the Developer API's, answered by the one generate
path (Emulator.generate_route); what differs is here:
- auth: the bearer token or express key is checked by emulator.auth, whose refusals carry
  Vertex's wording and an ErrorInfo naming aiplatform.googleapis.com and the RPC method;
- a model not served: Vertex's "Publisher Model ... was not found" 404;
- answers carry `createTime` beside `modelVersion` and `responseId` (stamp_create_time);
- quota: Gemini on Vertex has no per-project rate limit. Its Standard PayGo quota (formerly
  Dynamic Shared Quota) is shared by every customer: no requests per minute or per day, only an
  organisation-level floor of input tokens per minute per model (the catalogue's
  `vertex.standard_paygo_tpm`, by model family), above which bursts are served best effort. A
  project caller is held to that floor alone (quota_for), counted in emulator.quotas' rolling
  minute of emulated time; its window is its (project, location), so every credential of a
  project shares it (the generator's quotas are keyed by caller()). The floor is the lowest
  tier's and "best effort" above it is taken as a refusal: a run sees the least Vertex promises.
  The config's `vertex_quotas` (by model or "*": rpm, tpm, rpd) replaces it; the Developer API's
  `quotas` do not apply, being that API's figures; quota_tier `unlimited` turns it off as it
  does every quota. An express caller is its key, held to that key's Developer API limits in the
  same windows, as the emulator has always modelled express mode.
  A refusal, by quota or by a model's capacity (the Developer API's "high demand" 503), is
  Vertex's one 429 RESOURCE_EXHAUSTED without RetryInfo or QuotaFailure (refusal()): under this
  quota a client cannot tell them apart and has no time to wait for. Injected server errors
  (faults) stay what they are.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.catalogue import catalogue
from emulator import lineup
from emulator.errors import ERROR_INFO, ApiError
from emulator.profiles import Profile

VERSIONS = ("v1", "v1beta1")
SERVICE = "aiplatform.googleapis.com"
DSQ_MESSAGE = (
    "Resource exhausted. Please try again later. Please refer to "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details."
)
# Capacity refusals (emulator.latency's Slots) that DSQ answers with its 429, as ApiError.fault.
_CAPACITY_FAULTS = ("queue_full", "queue_timeout")
_RPC_METHODS = {
    "generateContent": "GenerateContent",
    "streamGenerateContent": "StreamGenerateContent",
    "countTokens": "CountTokens",
}


@dataclass(frozen=True, slots=True)
class VertexTarget:
    """Where a Vertex request is aimed: a project and location, or neither (express mode)."""

    project: str | None = None
    location: str | None = None

    @property
    def express(self) -> bool:
        return self.project is None

    @property
    def parent(self) -> str:
        """`projects/P/locations/L/` ahead of `publishers/...`, empty in express mode."""
        return "" if self.project is None else f"projects/{self.project}/locations/{self.location}/"

    def route(self, version: str, method: str) -> str:
        """The name /emulator/stats counts the request under, apart from the Developer routes."""
        where = "publishers" if self.project is None else "projects.locations.publishers"
        return f"{version}/{where}.models.{method}"

    def caller(self, api_key: str | None) -> str:
        """The name the generator's quotas, files and caches know this caller by: the project and
        location (so every credential of a project shares its quota), or the express key."""
        if self.project is None:
            assert api_key, "express requests are refused without a key before this"
            return api_key
        return f"projects/{self.project}/locations/{self.location}"


def error_info(reason: str, version: str, method: str) -> dict[str, object]:
    """The google.rpc.ErrorInfo of an auth refusal, as Vertex sends it."""
    rpc = _RPC_METHODS.get(method, method)
    return {
        "@type": ERROR_INFO,
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {
            "service": SERVICE,
            "method": f"google.cloud.aiplatform.{version}.PredictionService.{rpc}",
        },
    }


def model_not_found(target: VertexTarget, model: str) -> ApiError:
    """Vertex's 404 for a model it does not serve (unknown or retired alike)."""
    return ApiError(
        404,
        f"Publisher Model `{target.parent}publishers/google/models/{model}` was not found or your project "
        "does not have access to it. Please ensure you are using a valid model version. For more "
        "information, see: https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions",
    )


def quota_for(profile: Profile, model: str) -> tuple[int | None, int | None, int | None]:
    """(rpm, tpm, rpd) of a project caller for `model`, None for no limit: the config's
    `vertex_quotas` where it sets them, else Standard PayGo's: no requests per minute or per day,
    the floor of input tokens per minute of the model's family (emulator.lineup.family), none
    under the `unlimited` quota tier."""
    override = profile.vertex_quotas.get(model) or profile.vertex_quotas.get("*") or {}
    family = lineup.family(model)
    floor = None
    if profile.quota_tier != "unlimited" and family is not None:
        floor = catalogue().vertex.standard_paygo_tpm.get(family)
    return override.get("rpm"), override.get("tpm", floor), override.get("rpd")


def refusal(error: ApiError) -> ApiError:
    """Vertex's form of a refusal: a quota or capacity refusal is DSQ's 429 (the stats fields
    kept, so limits_hit and quota_429s_by_limit count it as before); anything else as it is."""
    if not error.limits and error.fault not in _CAPACITY_FAULTS:
        return error
    if error.code == 504:  # a queue timeout configured as a deadline is still one
        return error
    exhausted = ApiError(429, DSQ_MESSAGE)
    exhausted.fault, exhausted.limits = error.fault, error.limits
    return exhausted


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> bytes:
    """YYYY-MM-DDTHH:MM:SS of an epoch second: strftime once a second, not once an answer."""
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S").encode()


def stamp_create_time(now: float | None = None) -> Callable[[bytes], bytes]:
    """A function that adds `"createTime"` before `"responseId"` in an answer or a streamed chunk
    (every chunk of one answer has the same one, as on Vertex). The whitespace before responseId
    is repeated, so a pretty body stays pretty and an SSE event stays on one line; a piece without
    a responseId (an error frame, half a malformed body) is left as it is."""
    moment = time.time() if now is None else now
    second = math.floor(moment)
    micros = min(999_999, round((moment - second) * 1_000_000))
    field = b'"createTime": "%s.%06dZ",' % (_utc_second(second), micros)

    def stamp(piece: bytes) -> bytes:
        at = piece.find(b'"responseId": ')
        if at < 0:
            return piece
        start = at
        while start and piece[start - 1] in b" \n":
            start -= 1
        return piece[:at] + field + piece[start:at] + piece[at:]

    return stamp
