"""Named emulator profiles and the JSON config format that overrides them.

A profile is plain data: per-model latency/capacity figures, a quota tier, fault rates and the
accepted keys. `default` is a paid tier with quotas and capacity high enough that short runs see no
429 or 503. Stress profiles: `free-tier` (real free-tier quotas), `small-capacity` (few slots,
short queue timeout: latency grows with load, then 503s), `flaky` (every fault at a few percent),
`fast` (no latency, no quotas: for benchmarks of the suite itself).

Config file (JSON), every key optional, merged over the chosen profile:
    {
      "accepted_keys": ["k1", "k2"],          # null / absent: any non-empty key
      "max_request_bytes": 104857600,       # inline payload limit (real API: 100 MB since 2026-01-12)
      "quota_tier": "tier1",                  # free | tier1 | tier2 | tier3 | paid-high | unlimited
      "quotas": {"gemini-2.5-flash": {"rpm": 100, "tpm": 200000}},   # per-model overrides
      "faults": {"server_503": 0.05, "stall_seconds": 5},
      "models": {"gemini-2.5-flash": {"capacity": 4, "ttft_median_ms": 300}, "my-model": {...}},
      "model_defaults": {"output_tokens_per_s": 150}   # applied to every model before "models"
    }
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from core.textfile import UnreadableText, read_text_file


@dataclass(slots=True)
class ModelProfile:
    """How one model behaves. Times are in real milliseconds before the time scale applies."""

    display_name: str = ""
    input_token_limit: int = 1_048_576
    output_token_limit: int = 65_536
    # Time to first token: lognormal with this median and shape (sigma of the underlying normal).
    ttft_median_ms: float = 450.0
    ttft_sigma: float = 0.35
    # Prompt processing adds prompt_tokens / rate seconds before the first token (images included).
    prompt_tokens_per_s: float = 25_000.0
    # Decoding: tokens per second, each chunk's delay jittered by +/- this fraction.
    output_tokens_per_s: float = 180.0
    output_jitter: float = 0.25
    chunk_tokens: int = 24  # tokens per streamed chunk (the real API sends several per chunk)
    # Answer length when maxOutputTokens does not cut it: lognormal, clipped to [min, max].
    output_tokens_median: float = 120.0
    output_tokens_sigma: float = 0.6
    output_tokens_min: int = 8
    output_tokens_max: int = 1_500
    # 2.5 Flash and Pro think by default: thought tokens are billed and decoded before the answer.
    thinking: bool = False
    thoughts_tokens_median: float = 0.0
    # Capacity: concurrent requests served at once; more wait in a queue of queue_limit.
    capacity: int = 1_000
    queue_limit: int = 10_000
    queue_timeout_s: float = 60.0
    queue_timeout_status: int = 503  # 503 UNAVAILABLE or 504 DEADLINE_EXCEEDED
    # Under load each busy slot slows the others: ttft and decode time grow by
    # load_slowdown * busy_fraction (0.5 -> 50 % slower when every slot is taken).
    load_slowdown: float = 0.5


def _flash() -> ModelProfile:
    return ModelProfile(
        display_name="Gemini 2.5 Flash",
        thinking=True,
        thoughts_tokens_median=150.0,
    )


def _flash_lite() -> ModelProfile:
    return ModelProfile(
        display_name="Gemini 2.5 Flash-Lite",
        ttft_median_ms=300.0,
        prompt_tokens_per_s=40_000.0,
        output_tokens_per_s=350.0,
    )


def _pro() -> ModelProfile:
    return ModelProfile(
        display_name="Gemini 2.5 Pro",
        ttft_median_ms=1_500.0,
        ttft_sigma=0.45,
        prompt_tokens_per_s=12_000.0,
        output_tokens_per_s=90.0,
        thinking=True,
        thoughts_tokens_median=300.0,
        capacity=500,
    )


def _flash_2_0() -> ModelProfile:
    return ModelProfile(
        display_name="Gemini 2.0 Flash",
        ttft_median_ms=350.0,
        output_tokens_per_s=250.0,
        output_token_limit=8_192,
    )


BASE_MODELS = {
    "gemini-2.5-flash": _flash,
    "gemini-2.5-flash-lite": _flash_lite,
    "gemini-2.5-pro": _pro,
    "gemini-2.0-flash": _flash_2_0,
}

# Requests and tokens per minute per key per model. Published figures (2026) for the real tiers;
# `paid-high` is this emulator's own generous default; `unlimited` turns quotas off.
QUOTA_TIERS: dict[str, dict[str, tuple[int, int]]] = {
    "free": {
        "gemini-2.5-flash": (10, 250_000),
        "gemini-2.5-flash-lite": (15, 250_000),
        "gemini-2.5-pro": (5, 250_000),
        "gemini-2.0-flash": (15, 1_000_000),
    },
    "tier1": {
        "gemini-2.5-flash": (1_000, 1_000_000),
        "gemini-2.5-flash-lite": (4_000, 4_000_000),
        "gemini-2.5-pro": (150, 2_000_000),
        "gemini-2.0-flash": (2_000, 4_000_000),
    },
    "tier2": {
        "gemini-2.5-flash": (2_000, 3_000_000),
        "gemini-2.5-flash-lite": (10_000, 10_000_000),
        "gemini-2.5-pro": (1_000, 5_000_000),
        "gemini-2.0-flash": (10_000, 10_000_000),
    },
    "tier3": {
        "gemini-2.5-flash": (10_000, 8_000_000),
        "gemini-2.5-flash-lite": (30_000, 30_000_000),
        "gemini-2.5-pro": (2_000, 8_000_000),
        "gemini-2.0-flash": (30_000, 30_000_000),
    },
    "paid-high": {"*": (100_000, 100_000_000)},
    "unlimited": {},
}

FAULT_NAMES = (
    "server_500",  # 500 INTERNAL instead of an answer
    "server_503",  # 503 UNAVAILABLE
    "server_504",  # 504 DEADLINE_EXCEEDED
    "connection_reset",  # TCP connection dropped before any response byte
    "stream_cut",  # stream ends mid-way without a finishReason (connection closed)
    "stream_stall",  # stream pauses stall_seconds mid-way, then goes on
    "malformed_json",  # 200 with a body (or one SSE frame) that is not valid JSON
    "stream_error_frame",  # mid-stream `data: {"error": {...}}` frame, then the stream ends
    "slow_first_byte",  # slow_first_byte_seconds extra before the response starts
)
FAULT_PARAMS = {"stall_seconds": 5.0, "slow_first_byte_seconds": 5.0}


@dataclass(slots=True)
class Profile:
    name: str = "default"
    models: dict[str, ModelProfile] = field(default_factory=lambda: {k: f() for k, f in BASE_MODELS.items()})
    accepted_keys: list[str] | None = None
    # The real inline request limit: 20 MB until 2026-01-12, 100 MB since.
    max_request_bytes: int = 100 * 1024 * 1024
    quota_tier: str = "paid-high"
    quotas: dict[str, dict[str, int]] = field(default_factory=dict)
    faults: dict[str, float] = field(default_factory=dict)

    def quota_for(self, model: str) -> tuple[int | None, int | None]:
        """(rpm, tpm) for a model; None means no limit."""
        override = self.quotas.get(model) or self.quotas.get("*") or {}
        tier = QUOTA_TIERS.get(self.quota_tier, {})
        rpm, tpm = tier.get(model) or tier.get("*") or (None, None)
        if not tier:
            rpm = tpm = None
        elif (model not in tier) and "*" not in tier:
            # A model the tier table does not know gets the flash figures of that tier.
            rpm, tpm = tier.get("gemini-2.5-flash", (None, None))
        return override.get("rpm", rpm), override.get("tpm", tpm)

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def _with_models(profile: Profile, **changes: Any) -> Profile:
    profile.models = {name: replace(model, **changes) for name, model in profile.models.items()}
    return profile


def _default() -> Profile:
    return Profile(name="default")


def _free_tier() -> Profile:
    return Profile(name="free-tier", quota_tier="free")


def _small_capacity() -> Profile:
    return _with_models(
        Profile(name="small-capacity"),
        capacity=4,
        queue_limit=16,
        queue_timeout_s=5.0,
        load_slowdown=1.0,
    )


def _flaky() -> Profile:
    faults = {name: 0.02 for name in FAULT_NAMES}
    faults.update({"stall_seconds": 3.0, "slow_first_byte_seconds": 3.0})
    return Profile(name="flaky", faults=faults)


def _fast() -> Profile:
    return _with_models(
        Profile(name="fast", quota_tier="unlimited"),
        ttft_median_ms=0.0,
        ttft_sigma=0.0,
        prompt_tokens_per_s=0.0,
        output_tokens_per_s=0.0,
        output_jitter=0.0,
        capacity=100_000,
        queue_limit=100_000,
        load_slowdown=0.0,
    )


PROFILES = {
    "default": _default,
    "free-tier": _free_tier,
    "small-capacity": _small_capacity,
    "flaky": _flaky,
    "fast": _fast,
}


class ConfigError(ValueError):
    """A bad profile name or config file; the message says what is wrong and how to fix it."""


_MODEL_FIELDS = {f.name for f in fields(ModelProfile)}
# The real types behind the string annotations (`from __future__ import annotations`): str, int,
# float, bool. A config value is checked against them before the emulator starts.
_MODEL_TYPES: dict[str, type] = get_type_hints(ModelProfile)
_TOP_KEYS = {
    "accepted_keys",
    "max_request_bytes",
    "quota_tier",
    "quotas",
    "faults",
    "models",
    "model_defaults",
}


def load_profile(name: str | None = None, config: str | Path | dict[str, Any] | None = None) -> Profile:
    """The named profile (default `default`) with a JSON config file or dict merged over it.

    Every way a config can be wrong (unreadable, not UTF-8, not JSON, an unknown key, a value of
    the wrong type or range) is a ConfigError with one line, before anything is served."""
    if not isinstance(name, str | None):
        raise ConfigError(f"emulator profile must be a name, got {name!r}")
    name = name or "default"
    if name not in PROFILES:
        raise ConfigError(f"unknown emulator profile {name!r}; choose one of: {', '.join(PROFILES)}")
    profile = PROFILES[name]()
    if config is None:
        return profile
    if isinstance(config, str | Path):
        source = str(config)
        data: Any = _read_config(Path(config))
    else:
        data = copy.deepcopy(config)
        source = "config"
    if not isinstance(data, dict):
        raise ConfigError(f"emulator config {source} must be a JSON object, got {_json_type(data)}")
    apply_overrides(profile, data, source)
    return profile


def _read_config(path: Path) -> Any:
    source = str(path)
    try:
        text = read_text_file(path)
    except UnreadableText as exc:
        raise ConfigError(f"emulator config {source}: {exc.reason}: give a JSON file") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and Python's limit on digits in an integer.
        # Python's digit-limit message ends with advice for programmers: cut off.
        reason = str(exc).partition("; use ")[0]
        raise ConfigError(f"emulator config {source} is not valid JSON: {reason}") from None


def _json_type(value: Any) -> str:
    """What a JSON value is, in JSON's words (a message for the person who wrote the file)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _whole_number(value: Any, where: str, *, minimum: int = 0) -> int:
    """An integer >= minimum; 4.0 is 4, true and "4" are errors."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"emulator config {where} must be a whole number >= {minimum}, got {value!r}")
    return value


def _check_model_value(field_name: str, value: Any, where: str) -> Any:
    """One ModelProfile field's value, of the field's type; numbers finite and >= 0 (the latency
    model draws from them; a negative rate or a NaN would break it mid-run)."""
    kind = _MODEL_TYPES[field_name]
    at = f"{where}.{field_name}"
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"emulator config {at} must be true or false, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"emulator config {at} must be a string, got {_json_type(value)}")
        return value
    if kind is int:
        number = _whole_number(value, at)
        if field_name == "queue_timeout_status" and number not in (503, 504):
            raise ConfigError(f"emulator config {at} must be 503 or 504, got {number}")
        return number
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"emulator config {at} must be a number >= 0, got {value!r}")
    return float(value)


def apply_overrides(profile: Profile, data: dict[str, Any], source: str = "config") -> None:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(
            f"emulator config {source}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}"
        )
    if "accepted_keys" in data:
        keys = data["accepted_keys"]
        if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) and k for k in keys)):
            raise ConfigError(f"emulator config {source}: accepted_keys must be a list of non-empty strings")
        profile.accepted_keys = keys
    if "max_request_bytes" in data:
        profile.max_request_bytes = _whole_number(
            data["max_request_bytes"], f"{source}: max_request_bytes", minimum=1
        )
    if "quota_tier" in data:
        tier = data["quota_tier"]
        if not isinstance(tier, str) or tier not in QUOTA_TIERS:
            raise ConfigError(
                f"emulator config {source}: quota_tier {tier!r} unknown; choose one of {list(QUOTA_TIERS)}"
            )
        profile.quota_tier = tier
    quotas = data.get("quotas") or {}
    if not isinstance(quotas, dict):
        raise ConfigError(
            f"emulator config {source}: quotas must be an object of model -> {{'rpm': N, 'tpm': N}}"
        )
    for model, limits in quotas.items():
        if not isinstance(limits, dict) or set(limits) - {"rpm", "tpm"}:
            raise ConfigError(
                f"emulator config {source}: quotas.{model} must look like {{'rpm': N, 'tpm': N}}"
            )
        profile.quotas[model] = {
            k: (None if v is None else _whole_number(v, f"{source}: quotas.{model}.{k}"))
            for k, v in limits.items()
        }
    if "faults" in data:
        profile.faults.update(check_faults(data["faults"], source))
    defaults = _checked_model_fields(data.get("model_defaults") or {}, f"{source}: model_defaults")
    if defaults:
        profile.models = {n: replace(m, **defaults) for n, m in profile.models.items()}
    models = data.get("models") or {}
    if not isinstance(models, dict):
        raise ConfigError(f"emulator config {source}: models must be an object of model name -> fields")
    for model, changes in models.items():
        checked = _checked_model_fields(changes, f"{source}: models.{model}")
        base = profile.models.get(model) or replace(ModelProfile(display_name=model), **defaults)
        profile.models[model] = replace(base, **checked)


def _checked_model_fields(changes: Any, where: str) -> dict[str, Any]:
    if not isinstance(changes, dict):
        raise ConfigError(f"emulator config {where} must be an object, got {_json_type(changes)}")
    unknown = set(changes) - _MODEL_FIELDS
    if unknown:
        raise ConfigError(
            f"emulator config {where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_MODEL_FIELDS)}"
        )
    return {name: _check_model_value(name, value, where) for name, value in changes.items()}


def check_faults(faults: Any, source: str = "faults") -> dict[str, float]:
    """Validated fault rates (0..1) and fault parameters (seconds)."""
    if not isinstance(faults, dict):
        raise ConfigError(f"{source}: faults must be an object of name -> rate")
    out: dict[str, float] = {}
    for key, value in faults.items():
        if key not in FAULT_NAMES and key not in FAULT_PARAMS:
            raise ConfigError(
                f"{source}: unknown fault {key!r}; faults are {list(FAULT_NAMES)}, parameters {list(FAULT_PARAMS)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{source}: fault {key!r} must be a number, got {value!r}")
        if key in FAULT_NAMES and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{source}: fault rate {key!r} must be between 0 and 1, got {value}")
        if key in FAULT_PARAMS and value < 0:
            raise ConfigError(f"{source}: fault parameter {key!r} must be >= 0 seconds, got {value}")
        out[key] = float(value)
    return out
