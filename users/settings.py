"""The Gemini options: registered on Locust's parser, validated into one GeminiSettings per process."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from core.catalogue import UNKNOWN_MODEL_THINKING_HEADROOM, catalogue, check_model_status, default_model
from core.options import OptionError
from core.secrets import key_problem
from users.policies.options import add_policy_arguments
from users.transports import transport_backends, transport_help, transport_names

DEFAULT_MODEL = default_model()  # the catalogue's current stable Flash
# The answer a moderation or vision call needs (a JSON verdict); thinking gets room on top of it.
ANSWER_TOKENS = 256
EMULATOR_KEY = "emulator-key"  # what the suite sends to its own emulator: never a real key
KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")  # where the key comes from without --api-key
BACKENDS = ("gemini", "vertex")
PROJECT_VARIABLE, LOCATION_VARIABLE = "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"
DEFAULT_LOCATION = "global"
# A project id (domain-scoped ones hold '.' and ':') and a region: they go into URL paths.
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:_-]{0,99}")
_LOCATION = re.compile(r"[a-z][a-z0-9-]{1,40}")


def add_arguments(parser: Any) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Gemini model to call", include_in_web_ui=True)
    parser.add_argument(
        "--transport",
        default="genai",
        choices=transport_names(),
        help=f"how calls are made: {transport_help()}",
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--backend",
        default="gemini",
        choices=BACKENDS,
        help="gemini = the Gemini Developer API (API key); vertex = Vertex AI (OAuth 2 from "
        "GOOGLE_APPLICATION_CREDENTIALS or application-default credentials; express mode with --api-key)",
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--project",
        default="",
        help=f"Vertex AI: the Google Cloud project (default: ${PROJECT_VARIABLE}, else the credentials')",
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--location",
        default="",
        help=f"Vertex AI: the region, e.g. us-central1, or global (default: ${LOCATION_VARIABLE}, else global)",
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--api-key",
        default="",
        help="Gemini API key (default: $GEMINI_API_KEY or $GOOGLE_API_KEY; not needed for the emulator)",
        is_secret=True,
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--max-output-tokens",
        default=0,
        type=int,
        help="generationConfig.maxOutputTokens, shared by thinking and answer on thinking models. 0 (default): "
        "each scenario's answer length plus room for the model's thinking at the chosen level, so calls do "
        "not end in MAX_TOKENS",
        include_in_web_ui=True,
    )
    parser.add_argument("--temperature", default=0.0, type=float, help="generationConfig.temperature")
    parser.add_argument(
        "--thinking-budget",
        default=-1,
        type=int,
        help="thinkingConfig.thinkingBudget, for models that take a budget (2.5): -1 = the model's default "
        "(not sent), 0 = off. Gemini 3.5 and later take --thinking-level instead",
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--thinking-level",
        default="",
        help="thinkingConfig.thinkingLevel, for models that take a level (Gemini 3): MINIMAL, LOW, MEDIUM or "
        "HIGH as the model accepts; empty = the model's default (not sent)",
        include_in_web_ui=True,
    )
    parser.add_argument("--timeout", default=60.0, type=float, help="seconds before one attempt is abandoned")
    parser.add_argument(
        "--retries",
        default=0,
        type=int,
        help="retries per call after a 429/5xx/timeout/connection error (default 0: raw behaviour is measured)",
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--pricing",
        default="",
        help="JSON price table that overrides the built-in one",
        include_in_web_ui=False,
    )
    add_policy_arguments(parser)  # --client-policy and its parameters (users/policies)


@dataclass(frozen=True, slots=True)
class GeminiSettings:
    model: str
    transport: str
    api_key: str = field(repr=False)  # never in a repr, a log line or a traceback's locals
    max_output_tokens: int | None  # None: automatic, see output_cap
    temperature: float
    timeout_s: float
    retries: int
    thinking_budget: int | None = None  # None: the model's default, nothing sent
    thinking_level: str | None = None  # None: the model's default, nothing sent
    backend: str = "gemini"
    project: str = ""  # Vertex: "" until the credentials name one (users/vertex.py)
    location: str = ""  # Vertex only
    vertex_express: bool = False  # Vertex with an API key (--api-key), no OAuth

    @classmethod
    def from_options(cls, options: Any, *, emulator: bool) -> GeminiSettings:
        model = str(getattr(options, "model", DEFAULT_MODEL) or "").strip().removeprefix("models/")
        if not model:
            raise OptionError(f"--model is empty: give a model name such as {DEFAULT_MODEL}")
        check_model_status(model, date.today())  # a retired model: one line naming its successor
        transport = str(getattr(options, "transport", "genai"))
        if transport not in transport_names():
            raise OptionError(
                f"--transport {transport!r} is not known: choose one of {', '.join(transport_names())}"
            )
        max_tokens = _number(options, "max_output_tokens", int, minimum=0)
        temperature = _number(options, "temperature", float, minimum=0.0)
        if temperature > 2.0:
            raise OptionError(f"--temperature {temperature} is out of range: use 0 to 2")
        timeout_s = _number(options, "timeout", float, minimum=0.001)
        retries = _number(options, "retries", int, minimum=0)
        thinking = (
            _number(options, "thinking_budget", int, minimum=-1)
            if hasattr(options, "thinking_budget")
            else -1
        )
        level = str(getattr(options, "thinking_level", "") or "").strip().upper() or None
        check_thinking(model, level, None if thinking < 0 else thinking)
        explicit_key = str(getattr(options, "api_key", "") or "")
        backend, project, location = _backend(options, transport, explicit_key=bool(explicit_key))
        oauth = (
            backend == "vertex" and not explicit_key
        )  # credentials found when it prepares (users/vertex.py)
        if oauth:
            api_key = ""
        elif emulator:
            api_key = explicit_key or EMULATOR_KEY
        else:
            api_key = (
                explicit_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or ""
            )
            if not api_key:
                raise OptionError(
                    "no API key for the real API: set GEMINI_API_KEY (or pass --api-key), "
                    "or drop --host to run against the bundled emulator"
                )
        _check_key(api_key, explicit=bool(explicit_key))
        return cls(
            model,
            transport,
            api_key,
            max_tokens or None,
            temperature,
            timeout_s,
            retries,
            None if thinking < 0 else thinking,
            level,
            backend,
            project,
            location,
            vertex_express=backend == "vertex" and not oauth,
        )

    @property
    def vertex_location(self) -> str | None:
        """The Vertex AI location calls go to (prices depend on it); None off Vertex."""
        return self.location if self.backend == "vertex" else None

    def secrets(self) -> tuple[str, ...]:
        """What this process must never write: the key in use and any key it could have used."""
        return known_secrets(self.api_key)

    def public(self) -> dict[str, Any]:
        """For run.json and logs: everything but the key."""
        return {
            "model": self.model,
            "transport": self.transport,
            "max_output_tokens": self.max_output_tokens,
            "temperature": self.temperature,
            "timeout_s": self.timeout_s,
            "retries": self.retries,
            "thinking_budget": self.thinking_budget,
            "thinking_level": self.thinking_level,
            "backend": self.backend,
            **(
                {"project": self.project, "location": self.location, "vertex_express": self.vertex_express}
                if self.backend == "vertex"
                else {}
            ),
        }

    def call_fields(self, answer_tokens: int | None = None) -> dict[str, Any]:
        """The CallSpec fields every scenario takes from the settings: model, caps, thinking."""
        return {
            "model": self.model,
            "max_output_tokens": self.output_cap(answer_tokens),
            "temperature": self.temperature,
            "thinking_budget": self.thinking_budget,
            "thinking_level": self.thinking_level,
        }

    def for_model(self, model: str) -> GeminiSettings:
        """These settings for another model (a tier's escalation or a breaker's fallback): the same
        caps and temperature, the thinking option kept only where that model takes it (else its
        default, nothing sent), since the API answers the wrong one with 400 INVALID_ARGUMENT."""
        level, budget = self.thinking_level, self.thinking_budget
        try:
            check_thinking(model, level, budget)
        except OptionError:
            level = budget = None
        return dataclasses.replace(self, model=model, thinking_level=level, thinking_budget=budget)

    def output_cap(self, answer_tokens: int | None = None) -> int:
        """maxOutputTokens for a call whose answer needs `answer_tokens` (default ANSWER_TOKENS).

        Thinking and answer share the cap on thinking models, so the automatic cap is the answer
        plus the thinking headroom of the model at this level or budget (core/models.json). A
        --max-output-tokens given is the cap for fixed-length answers, and caps a call that asks for
        a given answer length (a streamed prompt's short, medium or long answer)."""
        wanted = (answer_tokens or ANSWER_TOKENS) + self.thinking_headroom()
        entry = catalogue().get(self.model)
        if entry is not None:
            wanted = min(wanted, entry.output_token_limit)
        if self.max_output_tokens is None:
            return wanted
        return self.max_output_tokens if answer_tokens is None else min(wanted, self.max_output_tokens)

    def thinking_headroom(self) -> int:
        entry = catalogue().get(self.model)
        if entry is None:
            return (
                0 if self.thinking_budget == 0 else (self.thinking_budget or UNKNOWN_MODEL_THINKING_HEADROOM)
            )
        return entry.thinking.headroom_for(self.thinking_level, self.thinking_budget)

    def model_notice(self) -> str | None:
        """A warning line for a deprecated model (its shutdown date and successor), else None."""
        return check_model_status(self.model, date.today())


def check_thinking(model: str, level: str | None, budget: int | None) -> None:
    """The thinking options the model takes (core/models.json): the API answers the other one with
    400 INVALID_ARGUMENT, so a run of it would measure nothing. A model the catalogue does not
    know gets what was given, except both at once (refused by every model)."""
    if level is not None and budget is not None:
        raise OptionError(
            "--thinking-level and --thinking-budget were both given: the API takes only one of them; drop one"
        )
    entry = catalogue().get(model)
    if entry is None:
        return
    thinking = entry.thinking
    if level is not None and thinking.control != "level":
        fix = "give --thinking-budget instead" if thinking.control == "budget" else "drop it"
        raise OptionError(f"--thinking-level: {model} takes no thinking level; {fix}")
    if level is not None and level not in thinking.levels:
        raise OptionError(
            f"--thinking-level {level} is not accepted by {model}: use one of {', '.join(thinking.levels)} "
            f"(default {thinking.default_level})"
        )
    if budget is None:
        return
    if thinking.control == "level" and not thinking.accepts_budget:
        raise OptionError(
            f"--thinking-budget: {model} takes --thinking-level ({', '.join(thinking.levels)}), not a "
            "thinking budget; the API refuses a budget with 400 INVALID_ARGUMENT"
        )
    if thinking.control == "none":
        raise OptionError(f"--thinking-budget: {model} does not think; drop the option")
    if thinking.control == "budget":
        if budget == 0 and not thinking.can_disable:
            raise OptionError(
                f"--thinking-budget 0: {model} cannot turn thinking off; give a budget of "
                f"{thinking.budget_min} to {thinking.budget_max}, or -1 for its default"
            )
        if budget != 0 and not thinking.budget_min <= budget <= thinking.budget_max:
            low = "0 (off) or " if thinking.can_disable else ""
            raise OptionError(
                f"--thinking-budget {budget} is out of range for {model}: use {low}{thinking.budget_min} "
                f"to {thinking.budget_max}, or -1 for its default"
            )


def _backend(options: Any, transport: str, *, explicit_key: bool) -> tuple[str, str, str]:
    """(backend, project, location) from the options and the usual environment variables."""
    backend = str(getattr(options, "backend", "gemini") or "gemini").strip().lower()
    if backend not in BACKENDS:
        raise OptionError(f"--backend {backend!r} is not known: choose one of {', '.join(BACKENDS)}")
    given_project = str(getattr(options, "project", "") or "").strip()
    given_location = str(getattr(options, "location", "") or "").strip()
    if backend == "gemini":
        if given_project or given_location:
            flag = "--project" if given_project else "--location"
            raise OptionError(f"{flag} is for Vertex AI: add --backend vertex, or drop {flag}")
        return backend, "", ""
    if "vertex" not in transport_backends(transport):
        raise OptionError(
            f"--transport {transport} cannot reach Vertex AI (the google-generativeai SDK speaks only the "
            "Gemini Developer API): use --transport genai or http with --backend vertex"
        )
    # What only the Developer API offers: refused now rather than as a run of 404s.
    if str(getattr(options, "context_cache", "") or "") == "explicit":
        raise OptionError(
            "--context-cache explicit creates a Gemini API cachedContents entry, which this suite does not "
            "create on Vertex AI: use --context-cache implicit with --backend vertex"
        )
    if str(getattr(options, "image_transport", "") or "") == "files":
        raise OptionError(
            "--image-transport files uploads through the Gemini API's Files API, which Vertex AI does not "
            "have: use --image-transport inline with --backend vertex"
        )
    if explicit_key and given_project:
        raise OptionError(
            "--api-key with --backend vertex is express mode, which takes no project: drop --project "
            "to use the key, or drop --api-key to sign in with Google Cloud credentials"
        )
    project = "" if explicit_key else given_project or os.environ.get(PROJECT_VARIABLE, "").strip()
    location = given_location or os.environ.get(LOCATION_VARIABLE, "").strip() or DEFAULT_LOCATION
    if explicit_key:
        # Express mode has one endpoint, global: a location would only change the price charged.
        if given_location and given_location != DEFAULT_LOCATION:
            raise OptionError(
                f"--location {given_location}: Vertex AI express mode (--api-key) serves only global: drop "
                "--location, or drop --api-key to sign in with Google Cloud credentials"
            )
        location = DEFAULT_LOCATION
    check_project_id(project, "--project")
    if not _LOCATION.fullmatch(location):
        raise OptionError(f"--location {location!r} is not a Vertex AI location (e.g. us-central1 or global)")
    model = str(getattr(options, "model", "") or "").strip().removeprefix("models/")
    if location != "global" and catalogue().vertex.serves_only_global(model):
        raise OptionError(
            f"--location {location}: Vertex AI serves {model} only on global: use --location global"
        )
    return backend, project, location


def check_project_id(project: str, where: str) -> None:
    """A project id goes into URL paths and headers: anything but an id's characters is refused."""
    if project and not _PROJECT.fullmatch(project):
        raise OptionError(f"{where} {project!r} is not a Google Cloud project id (e.g. my-project-123)")


def known_secrets(*keys: str) -> tuple[str, ...]:
    """These keys and every key in the environment, used or not (the emulator's public key aside)."""
    found = [*keys, *(os.environ.get(name, "") for name in KEY_VARIABLES)]
    return tuple(dict.fromkeys(key for key in found if key and key != EMULATOR_KEY))


def _check_key(api_key: str, *, explicit: bool) -> None:
    """A key with whitespace or control characters breaks each HTTP client differently (and some
    print it in their error): refused here with one line that never shows the key."""
    problem = key_problem(api_key)
    if problem is None:
        return
    source = "--api-key" if explicit else next((n for n in KEY_VARIABLES if os.environ.get(n)), "the key")
    raise OptionError(
        f"{source} {problem}: an API key is printable ASCII without spaces; set it again without "
        "that character (the key is not shown here)"
    )


def _number(options: Any, name: str, kind: type, *, minimum: float) -> Any:
    flag = "--" + name.replace("_", "-")
    raw = getattr(options, name, None)
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise OptionError(f"{flag} {raw!r} is not a valid {kind.__name__}") from None
    if value < minimum:
        raise OptionError(f"{flag} {value} is too small: it must be at least {minimum}")
    return value
