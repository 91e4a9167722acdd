"""The client policy's options, checked once into one frozen PolicySettings per process.

Every option is an OptionSpec (string-valued, parsed here), so the command line, config files,
LOCUST_* variables and the web UI's start form meet the same checks, each a one-line OptionError
naming the option. Only the options of the policies the run picked are checked: a run without
`breaker` never trips over --breaker-fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from core.catalogue import ModelStatusError, catalogue, check_model_status
from core.options import OptionError, OptionSpec

CLIENT_POLICY = OptionSpec(
    "--client-policy",
    "retry",
    "what the client does about 429s and 5xx: retry (retries only, through --retries), aimd "
    "(adaptive concurrency), breaker (circuit breaker), limiter (client-side quota), joined with + "
    "(e.g. limiter+aimd+breaker)",
)
AIMD_START = OptionSpec("--aimd-start", "4", "aimd: the run's concurrency limit at the start")
AIMD_MIN = OptionSpec("--aimd-min", "1", "aimd: the lowest limit (per process)")
AIMD_MAX = OptionSpec("--aimd-max", "64", "aimd: the highest limit for the whole run")
AIMD_DECREASE = OptionSpec(
    "--aimd-decrease", "0.5", "aimd: the factor the limit is multiplied by on a 429 or 503 (0..1)"
)
BREAKER_WINDOW = OptionSpec("--breaker-window", "10", "breaker: seconds of attempts its error rate covers")
BREAKER_THRESHOLD = OptionSpec(
    "--breaker-threshold", "0.5", "breaker: the error rate (0..1) of the window that opens it"
)
BREAKER_MIN_CALLS = OptionSpec(
    "--breaker-min-calls", "10", "breaker: attempts the window needs before it may open"
)
BREAKER_COOLDOWN = OptionSpec(
    "--breaker-cooldown", "5", "breaker: seconds it stays open before one probe is let through"
)
BREAKER_FALLBACK = OptionSpec(
    "--breaker-fallback",
    "fail",
    "breaker: what an open breaker does with a call: fail (shed it at once, kind shed) or a model "
    "name (send it to that model instead)",
)
LIMIT_RPM = OptionSpec(
    "--limit-rpm",
    "0",
    "limiter: requests per minute for the whole run; 0 = the model's quota at --quota-tier",
)
LIMIT_TPM = OptionSpec(
    "--limit-tpm",
    "0",
    "limiter: input tokens per minute for the whole run; 0 = the model's quota at --quota-tier",
)
QUOTA_TIER = OptionSpec(
    "--quota-tier", "free", "limiter: the quota tier whose limits apply: free, tier1, tier2 or tier3"
)
POLICY_OPTIONS = (
    CLIENT_POLICY, AIMD_START, AIMD_MIN, AIMD_MAX, AIMD_DECREASE, BREAKER_WINDOW, BREAKER_THRESHOLD,
    BREAKER_MIN_CALLS, BREAKER_COOLDOWN, BREAKER_FALLBACK, LIMIT_RPM, LIMIT_TPM, QUOTA_TIER,
)  # fmt: skip
QUOTA_TIERS = ("free", "tier1", "tier2", "tier3")
RETRY = "retry"
FAIL = "fail"


def add_policy_arguments(parser: Any) -> None:
    for spec in POLICY_OPTIONS:
        spec.add_to(parser)


@dataclass(frozen=True, slots=True)
class AimdSettings:
    start: float
    minimum: float
    maximum: float
    decrease: float


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    window_s: float
    threshold: float
    min_calls: int
    cooldown_s: float
    fallback: str  # FAIL, or a model name


@dataclass(frozen=True, slots=True)
class LimiterSettings:
    rpm: float  # for the whole run; a worker takes its share
    tpm: float
    source: str  # where the rates came from, for the log and run.json


@dataclass(frozen=True, slots=True)
class PolicySettings:
    names: tuple[str, ...]  # the policies in force, in the order they admit an attempt; () = retry only
    aimd: AimdSettings | None = None
    breaker: BreakerSettings | None = None
    limiter: LimiterSettings | None = None

    @property
    def label(self) -> str:
        """What Outcome.policy records: the policies joined with +, or "retry"."""
        return "+".join(self.names) or RETRY

    def public(self) -> dict[str, Any]:
        found: dict[str, Any] = {"client_policy": self.label}
        for part in ("aimd", "breaker", "limiter"):
            value = getattr(self, part)
            if value is not None:
                found[part] = {name: getattr(value, name) for name in value.__slots__}
        return found

    @classmethod
    def from_options(cls, options: Any, *, model: str, known: tuple[str, ...]) -> PolicySettings:
        """Checked settings; `known` the registered policy names in admission order."""
        names = parse_policy(CLIENT_POLICY.raw(options) or RETRY, known)
        return cls(
            names,
            _aimd(options) if "aimd" in names else None,
            _breaker(options) if "breaker" in names else None,
            _limiter(options, model) if "limiter" in names else None,
        )


def parse_policy(text: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """The policies `text` names, in `known`'s (admission) order; retry alone is ()."""
    given = [part.strip().lower() for part in text.split("+")]
    for name in given:
        if name != RETRY and name not in known:
            raise OptionError(
                f"--client-policy {text!r}: {name!r} is not a client policy; use {', '.join((RETRY, *known))} "
                "or several joined with + (e.g. limiter+aimd+breaker)"
            )
    return tuple(name for name in known if name in given)


def _number(options: Any, spec: OptionSpec, kind: type, low: float, high: float | None = None) -> Any:
    raw = spec.raw(options) or spec.default
    try:
        value = kind(raw)
    except ValueError:
        raise OptionError(
            f"{spec.flag} {raw!r} is not a {kind.__name__}: e.g. {spec.flag} {spec.default}"
        ) from None
    if value < low or (high is not None and value > high) or value != value:
        span = f"{low:g} to {high:g}" if high is not None else f"at least {low:g}"
        raise OptionError(f"{spec.flag} {raw}: use {span} (default {spec.default})")
    return value


def _aimd(options: Any) -> AimdSettings:
    minimum = _number(options, AIMD_MIN, float, 1.0)
    maximum = _number(options, AIMD_MAX, float, 1.0)
    start = _number(options, AIMD_START, float, 1.0)
    decrease = _number(options, AIMD_DECREASE, float, 0.01, 0.99)
    if maximum < minimum:
        raise OptionError(f"--aimd-max {maximum:g} is below --aimd-min {minimum:g}: raise --aimd-max")
    if not minimum <= start <= maximum:
        raise OptionError(
            f"--aimd-start {start:g}: use a value from --aimd-min {minimum:g} to --aimd-max {maximum:g}"
        )
    return AimdSettings(start, minimum, maximum, decrease)


def _breaker(options: Any) -> BreakerSettings:
    fallback = BREAKER_FALLBACK.raw(options).removeprefix("models/") or FAIL
    if fallback.lower() == FAIL:
        fallback = FAIL
    else:
        check_fallback_model(fallback)
    return BreakerSettings(
        _number(options, BREAKER_WINDOW, float, 0.1),
        _number(options, BREAKER_THRESHOLD, float, 0.01, 1.0),
        _number(options, BREAKER_MIN_CALLS, int, 1),
        _number(options, BREAKER_COOLDOWN, float, 0.0),
        fallback,
    )


def check_fallback_model(model: str) -> None:
    """A fallback must be a model the catalogue knows and still serves: a typo would turn every
    fallback into a 404 at the worst moment. Its price is checked at start-up with the main model's."""
    if catalogue().get(model) is None:
        raise OptionError(
            f"--breaker-fallback {model!r} is not a model the catalogue knows: give a model name "
            "(e.g. a cheaper Flash-Lite) or fail"
        )
    try:
        check_model_status(model, date.today())
    except ModelStatusError as exc:
        raise OptionError(str(exc).replace("--model", "--breaker-fallback", 1)) from None


def _limiter(options: Any, model: str) -> LimiterSettings:
    rpm = _number(options, LIMIT_RPM, float, 0.0)
    tpm = _number(options, LIMIT_TPM, float, 0.0)
    tier = (QUOTA_TIER.raw(options) or QUOTA_TIER.default).lower()
    if tier not in QUOTA_TIERS:
        raise OptionError(f"--quota-tier {tier!r}: use one of {', '.join(QUOTA_TIERS)}")
    if rpm and tpm:
        return LimiterSettings(rpm, tpm, "--limit-rpm/--limit-tpm")
    if str(getattr(options, "backend", "") or "") == "vertex":
        # core/models.json `vertex`: Standard PayGo shares capacity; there is no tier to read.
        raise OptionError(
            "--client-policy limiter on Vertex AI: Vertex has no per-project quota tiers (its Gemini quota "
            "is shared), so --quota-tier cannot fill in the limits: give both --limit-rpm and --limit-tpm"
        )
    entry = catalogue().get(model)
    quota = entry.quotas.get(tier) if entry is not None else None
    if quota is None:
        missing = "--limit-rpm" if not rpm else "--limit-tpm"
        raise OptionError(
            f"{missing} 0: the catalogue has no {tier} quota for {model}; give {missing} (per minute, whole run)"
        )
    return LimiterSettings(rpm or float(quota[0]), tpm or float(quota[1]), f"{tier} quota of {model}")
