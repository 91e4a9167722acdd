"""The Gemini options: registered on Locust's parser, validated into one GeminiSettings per process."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from core.options import OptionError
from core.secrets import key_problem
from users.transports import transport_help, transport_names

DEFAULT_MODEL = "gemini-2.5-flash"
EMULATOR_KEY = "emulator-key"  # what the suite sends to its own emulator: never a real key
KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")  # where the key comes from without --api-key


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
        "--api-key",
        default="",
        help="Gemini API key (default: $GEMINI_API_KEY or $GOOGLE_API_KEY; not needed for the emulator)",
        is_secret=True,
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--max-output-tokens",
        default=256,
        type=int,
        help="generationConfig.maxOutputTokens",
        include_in_web_ui=True,
    )
    parser.add_argument("--temperature", default=0.0, type=float, help="generationConfig.temperature")
    parser.add_argument(
        "--thinking-budget",
        default=-1,
        type=int,
        help="generationConfig.thinkingConfig.thinkingBudget: -1 = the model's default (not sent), 0 = off. "
        "On 2.5 models thinking tokens count against --max-output-tokens",
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


@dataclass(frozen=True, slots=True)
class GeminiSettings:
    model: str
    transport: str
    api_key: str = field(repr=False)  # never in a repr, a log line or a traceback's locals
    max_output_tokens: int
    temperature: float
    timeout_s: float
    retries: int
    thinking_budget: int | None = None  # None: the model's default, nothing sent

    @classmethod
    def from_options(cls, options: Any, *, emulator: bool) -> GeminiSettings:
        model = str(getattr(options, "model", DEFAULT_MODEL) or "").strip().removeprefix("models/")
        if not model:
            raise OptionError("--model is empty: give a model name such as gemini-2.5-flash")
        transport = str(getattr(options, "transport", "genai"))
        if transport not in transport_names():
            raise OptionError(
                f"--transport {transport!r} is not known: choose one of {', '.join(transport_names())}"
            )
        max_tokens = _number(options, "max_output_tokens", int, minimum=1)
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
        explicit_key = str(getattr(options, "api_key", "") or "")
        if emulator:
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
            max_tokens,
            temperature,
            timeout_s,
            retries,
            None if thinking < 0 else thinking,
        )

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
        }


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
