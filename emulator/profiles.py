"""Named emulator profiles and the JSON config format that overrides them.

A profile is plain data: the models served on its day (emulator.lineup: the catalogue's line-up,
latency/capacity figures and rules per model), a quota tier, fault rates and the accepted keys.
`default` is a paid tier with quotas and capacity high enough that short runs see no 429 or 503.
Stress profiles: `free-tier` (real free-tier quotas), `small-capacity` (few slots, short queue
timeout: latency grows with load, then 503s), `flaky` (every fault at a few percent), `fast` (no
latency, no quotas: for benchmarks of the suite itself).

Config file (JSON), every key optional, merged over the chosen profile:
    {
      "as_of": "2026-11-01",                  # the day whose line-up is served (default: today)
      "accepted_keys": ["k1", "k2"],          # null / absent: any non-empty key
      "max_request_bytes": 104857600,       # inline payload limit (real API: 100 MB since 2026-01-12)
      "quota_tier": "tier1",                  # free | tier1 | tier2 | tier3 | paid-high | unlimited
      "quotas": {"gemini-3.8-flash": {"rpm": 100, "tpm": 200000}},   # per-model overrides
      "faults": {"server_503": 0.05, "stall_seconds": 5},
      "models": {"gemini-3.8-flash": {"capacity": 4, "thoughts_tokens_median": {"HIGH": 2000}},
                 "my-model": {...}},          # a name the catalogue does not serve: added
      "model_defaults": {"output_tokens_per_s": 150}   # applied to every model before "models"
    }
`thoughts_tokens_median` is a number (every thinking level) or an object of level -> number. A
model added under "models" is a user's own, with default rules (a thinking budget, 258 tokens an
image), unless it names a catalogue model retired on as_of: that one is served again, with its rules."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any, get_type_hints

from core.textfile import UnreadableText, read_text_file
from emulator import lineup
from emulator.lineup import RULE_FIELDS, ModelProfile, catalogue_profile, served_models

# Requests and tokens per minute per key per model: the real tiers from the catalogue; `paid-high`
# is this emulator's own generous default; `unlimited` turns quotas off.
QUOTA_TIERS: dict[str, dict[str, tuple[int, int]]] = {
    **lineup.quota_tiers(),
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
    as_of: date = field(default_factory=date.today)  # the day whose line-up is served
    models: dict[str, ModelProfile] = field(default_factory=dict)  # empty: the as_of line-up
    accepted_keys: list[str] | None = None
    # The real inline request limit: 20 MB until 2026-01-12, 100 MB since.
    max_request_bytes: int = 100 * 1024 * 1024
    quota_tier: str = "paid-high"
    quotas: dict[str, dict[str, int]] = field(default_factory=dict)
    faults: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.models:
            self.models = served_models(self.as_of)

    def quota_for(self, model: str) -> tuple[int | None, int | None]:
        """(rpm, tpm) for a model; None means no limit."""
        override = self.quotas.get(model) or self.quotas.get("*") or {}
        tier = QUOTA_TIERS.get(self.quota_tier, {})
        rpm: int | None = None
        tpm: int | None = None
        if tier:
            # A model the tier does not list (a user's own) gets the default model's figures.
            rpm, tpm = tier.get(model) or tier.get("*") or tier.get(lineup.fallback_model(), (None, None))
        return override.get("rpm", rpm), override.get("tpm", tpm)

    def is_retired(self, model: str) -> bool:
        """A catalogue model shut down by as_of and not brought back by the config: the API's 404."""
        return model not in self.models and lineup.is_retired(model, self.as_of)

    def describe(self) -> dict[str, Any]:
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "models"}
        data["as_of"] = self.as_of.isoformat()
        data["models"] = {name: model.describe() for name, model in self.models.items()}
        return data


def _with_models(profile: Profile, **changes: Any) -> Profile:
    profile.models = {name: replace(model, **changes) for name, model in profile.models.items()}
    return profile


def _default(as_of: date) -> Profile:
    return Profile(name="default", as_of=as_of)


def _free_tier(as_of: date) -> Profile:
    return Profile(name="free-tier", as_of=as_of, quota_tier="free")


def _small_capacity(as_of: date) -> Profile:
    return _with_models(
        Profile(name="small-capacity", as_of=as_of),
        capacity=4,
        queue_limit=16,
        queue_timeout_s=5.0,
        load_slowdown=1.0,
    )


def _flaky(as_of: date) -> Profile:
    faults = {name: 0.02 for name in FAULT_NAMES}
    faults.update({"stall_seconds": 3.0, "slow_first_byte_seconds": 3.0})
    return Profile(name="flaky", as_of=as_of, faults=faults)


def _fast(as_of: date) -> Profile:
    return _with_models(
        Profile(name="fast", as_of=as_of, quota_tier="unlimited"),
        ttft_median_ms=0.0,
        ttft_sigma=0.0,
        prompt_tokens_per_s=0.0,
        output_tokens_per_s=0.0,
        output_jitter=0.0,
        capacity=100_000,
        queue_limit=100_000,
        load_slowdown=0.0,
    )


PROFILES: dict[str, Callable[[date], Profile]] = {
    "default": _default,
    "free-tier": _free_tier,
    "small-capacity": _small_capacity,
    "flaky": _flaky,
    "fast": _fast,
}


class ConfigError(ValueError):
    """A bad profile name or config file; the message says what is wrong and how to fix it."""


_MODEL_FIELDS = {f.name for f in fields(ModelProfile)} - RULE_FIELDS
# The real types behind the string annotations (`from __future__ import annotations`): str, int,
# float, bool. A config value is checked against them before the emulator starts.
_MODEL_TYPES: dict[str, type] = get_type_hints(ModelProfile)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_TOP_KEYS = {
    "as_of",
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
    if config is None:
        return PROFILES[name](date.today())
    if isinstance(config, str | Path):
        source = str(config)
        data: Any = _read_config(Path(config))
    else:
        data = copy.deepcopy(config)
        source = "config"
    if not isinstance(data, dict):
        raise ConfigError(f"emulator config {source} must be a JSON object, got {_json_type(data)}")
    # The day comes first: it decides which models the profile, and so the overrides, start from.
    as_of = _day(data["as_of"], f"{source}: as_of") if "as_of" in data else date.today()
    profile = PROFILES[name](as_of)
    apply_overrides(profile, data, source)
    return profile


def _day(value: Any, where: str) -> date:
    if isinstance(value, str) and _DAY.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass  # 2026-02-30: the same message as any other wrong date
    raise ConfigError(f"emulator config {where} must be a date as YYYY-MM-DD, got {value!r}")


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
    at = f"{where}.{field_name}"
    if field_name == "thoughts_tokens_median":
        return _thoughts_table(value, at)
    kind = _MODEL_TYPES[field_name]
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


def _thoughts_table(value: Any, at: str) -> dict[str, float]:
    """A number (every level) or an object of level -> number, as ModelProfile's table."""
    if _is_count(value):
        return {"*": float(value)}
    if isinstance(value, dict) and all(isinstance(k, str) and k and _is_count(v) for k, v in value.items()):
        # Levels are upper case in the API; the catalogue's budget keys are lower case.
        return {
            k.lower() if k.lower() in ("default", "on", "*") else k.upper(): float(v)
            for k, v in value.items()
        }
    raise ConfigError(
        f"emulator config {at} must be a number >= 0 or an object of thinking level -> number >= 0, "
        f"got {value!r}"
    )


def _is_count(value: Any) -> bool:
    return (
        not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value >= 0
    )


def _changed(base: ModelProfile, changes: dict[str, Any]) -> ModelProfile:
    """`base` with checked config fields; a table of levels changes only the levels it names."""
    table = changes.get("thoughts_tokens_median")
    if table is not None and "*" not in table:
        changes = {**changes, "thoughts_tokens_median": {**base.thoughts_tokens_median, **table}}
    return replace(base, **changes)


def _unserved(model: str, defaults: dict[str, Any]) -> ModelProfile:
    """A model the config adds: a catalogue model retired on as_of keeps its rules; any other name
    is the user's own, with default rules (a thinking budget, a flat 258 tokens an image)."""
    entry = lineup.catalogue_entry(model)
    base = catalogue_profile(entry) if entry is not None else ModelProfile(display_name=model)
    return _changed(base, defaults)


def apply_overrides(profile: Profile, data: dict[str, Any], source: str = "config") -> None:
    """Merge a config over a profile. Its `as_of` is load_profile's: it picks the line-up first."""
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
        profile.models = {n: _changed(m, defaults) for n, m in profile.models.items()}
    models = data.get("models") or {}
    if not isinstance(models, dict):
        raise ConfigError(f"emulator config {source}: models must be an object of model name -> fields")
    for model, changes in models.items():
        checked = _checked_model_fields(changes, f"{source}: models.{model}")
        base = profile.models.get(model) or _unserved(model, defaults)
        profile.models[model] = _changed(base, checked)


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
