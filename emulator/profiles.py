"""Named emulator profiles and the JSON config format that overrides them.

A profile is plain data: the models served on its day (emulator.lineup: the catalogue's line-up,
latency/capacity figures and rules per model), a quota tier, fault rates and the accepted keys.
`realistic` (the default) has the calibrated latency: heavy TTFT tails, a decode rate that varies
per answer, prompt processing that grows with the prompt, thinking by level; a paid tier with
quotas and capacity high enough that short runs see no 429; past a model's capacity it answers 503
at once, as the real API does, instead of queueing. `smooth` is the same medians without the tails,
the per-answer rate spread or the rejections (a long queue instead): for calibrating the suite
itself, where a heavy tail would hide the suite's own overhead.
Stress profiles, all on the realistic latency: `free-tier` (real free-tier quotas),
`small-capacity` (4 slots a model: latency grows with load, then 503s at once), `flaky` (every
fault at a few percent), `overload` (bursts of "high demand" 503s: ~20 s episodes about once a
minute, latency rising 10 s before each; see emulator.faults), `fast` (no latency, no quotas: for
benchmarks of the suite itself).

Config file (JSON), every key optional, merged over the chosen profile:
    {
      "as_of": "2026-11-01",                  # the day whose line-up is served (default: today)
      "accepted_keys": ["k1", "k2"],          # null / absent: any non-empty key
      "max_request_bytes": 104857600,       # inline payload limit (real API: 100 MB since 2026-01-12)
      "quota_tier": "tier1",                  # free | tier1 | tier2 | tier3 | paid-high | unlimited
      "quotas": {"gemini-3.8-flash": {"rpm": 100, "tpm": 200000, "rpd": 5000}},   # per-model overrides
      "vertex_quotas": {"*": {"tpm": 100000}},   # a Vertex project's (default: its TPM floor alone;
                                                 # emulator.vertex); `quotas` are the Developer API's
      "projects": {"project-a": ["k1", "k2"]},   # keys sharing one quota; an unlisted key is its own
      "faults": {"server_503": 0.05, "stall_seconds": 5},
      "caching": {"implicit_hit_probability": 0.8, "implicit_window_seconds": 300},  # emulator.caching
      "token_lifetime": 3599,                 # seconds an access token from POST /token lives (emulator.auth)
      "models": {"gemini-3.8-flash": {"capacity": 4, "thoughts_tokens_median": {"HIGH": 2000},
                                      "moderation_accuracy": 0.9},   # emulator.moderation
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
from emulator.config_values import (
    FAULT_NAMES,
    FAULT_PARAMS,
    ConfigError,
    check_caching,
    check_faults,
    check_quotas,
    json_type,
    whole_number,
)
from emulator.lineup import RULE_FIELDS, ModelProfile, catalogue_profile, served_models

# Requests and tokens per minute per project per model: the real tiers from the catalogue (requests
# per day: emulator.quotas); `paid-high` is this emulator's own generous default; `unlimited` turns
# quotas off (a Vertex project's too, unless the config's `vertex_quotas` set them: emulator.vertex).
QUOTA_TIERS: dict[str, dict[str, tuple[int, int]]] = {
    **lineup.quota_tiers(),
    "paid-high": {"*": (100_000, 100_000_000)},
    "unlimited": {},
}


@dataclass(slots=True)
class Profile:
    name: str = "realistic"
    as_of: date = field(default_factory=date.today)  # the day whose line-up is served
    models: dict[str, ModelProfile] = field(default_factory=dict)  # empty: the as_of line-up
    accepted_keys: list[str] | None = None
    projects: dict[str, list[str]] = field(default_factory=dict)  # keys that share one quota
    # The real inline request limit: 20 MB until 2026-01-12, 100 MB since.
    max_request_bytes: int = 100 * 1024 * 1024
    quota_tier: str = "paid-high"
    quotas: dict[str, dict[str, int | None]] = field(default_factory=dict)
    vertex_quotas: dict[str, dict[str, int | None]] = field(default_factory=dict)  # emulator.vertex
    faults: dict[str, float] = field(default_factory=dict)
    caching: dict[str, float] = field(default_factory=dict)  # emulator.caching's parameters
    # Real seconds an access token lives (emulator.auth); --token-lifetime overrides the config's.
    token_lifetime: int = 3599

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


def _realistic(as_of: date) -> Profile:
    return Profile(name="realistic", as_of=as_of)


def _smooth(as_of: date) -> Profile:
    return _with_models(
        Profile(name="smooth", as_of=as_of),
        ttft_sigma=0.35,
        ttft_tail_share=0.0,
        output_rate_sigma=0.0,
        queue_limit=10_000,
    )


def _free_tier(as_of: date) -> Profile:
    return Profile(name="free-tier", as_of=as_of, quota_tier="free")


def _small_capacity(as_of: date) -> Profile:
    return _with_models(
        Profile(name="small-capacity", as_of=as_of),
        capacity=4,
        load_slowdown=1.0,
    )


def _flaky(as_of: date) -> Profile:
    faults = {name: 0.02 for name in FAULT_NAMES}
    faults.update({"stall_seconds": 3.0, "slow_first_byte_seconds": 3.0})
    return Profile(name="flaky", as_of=as_of, faults=faults)


def _overload(as_of: date) -> Profile:
    # "The model is overloaded" as it comes: in episodes, not as independent per-request faults.
    faults = {
        "overload_per_minute": 1.0,
        "overload_seconds": 20.0,
        "overload_503_share": 0.9,
        "overload_ramp_seconds": 10.0,
        "overload_slowdown": 3.0,
    }
    return Profile(name="overload", as_of=as_of, faults=faults)


def _fast(as_of: date) -> Profile:
    return _with_models(
        Profile(name="fast", as_of=as_of, quota_tier="unlimited"),
        ttft_median_ms=0.0,
        ttft_sigma=0.0,
        ttft_tail_share=0.0,
        prompt_tokens_per_s=0.0,
        output_rate_sigma=0.0,
        output_tokens_per_s=0.0,
        output_jitter=0.0,
        capacity=100_000,
        queue_limit=100_000,
        load_slowdown=0.0,
    )


PROFILES: dict[str, Callable[[date], Profile]] = {
    "realistic": _realistic,
    "smooth": _smooth,
    "free-tier": _free_tier,
    "small-capacity": _small_capacity,
    "flaky": _flaky,
    "overload": _overload,
    "fast": _fast,
}


_MODEL_FIELDS = {f.name for f in fields(ModelProfile)} - RULE_FIELDS
# The real types behind the string annotations (`from __future__ import annotations`): str, int,
# float, bool. A config value is checked against them before the emulator starts.
_MODEL_TYPES: dict[str, type] = get_type_hints(ModelProfile)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_TOP_KEYS = {
    "as_of",
    "accepted_keys",
    "projects",
    "max_request_bytes",
    "quota_tier",
    "quotas",
    "vertex_quotas",
    "faults",
    "models",
    "model_defaults",
    "caching",
    "token_lifetime",
}


DEFAULT_PROFILE = "realistic"


def load_profile(name: str | None = None, config: str | Path | dict[str, Any] | None = None) -> Profile:
    """The named profile (default `realistic`) with a JSON config file or dict merged over it.

    Every way a config can be wrong (unreadable, not UTF-8, not JSON, an unknown key, a value of
    the wrong type or range) is a ConfigError with one line, before anything is served."""
    if not isinstance(name, str | None):
        raise ConfigError(f"emulator profile must be a name, got {name!r}")
    name = name or DEFAULT_PROFILE
    if name == "default":
        raise ConfigError(
            "emulator profile 'default' is now called 'realistic' (and is still the default); "
            "the old latency without heavy tails is 'smooth'"
        )
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
        raise ConfigError(f"emulator config {source} must be a JSON object, got {json_type(data)}")
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
            raise ConfigError(f"emulator config {at} must be a string, got {json_type(value)}")
        return value
    if kind is int:
        number = whole_number(value, at)
        if field_name == "queue_timeout_status" and number not in (503, 504):
            raise ConfigError(f"emulator config {at} must be 503 or 504, got {number}")
        return number
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"emulator config {at} must be a number >= 0, got {value!r}")
    if field_name == "moderation_accuracy" and value > 1:
        raise ConfigError(f"emulator config {at} must be a share from 0 to 1, got {value!r}")
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
        profile.max_request_bytes = whole_number(
            data["max_request_bytes"], f"{source}: max_request_bytes", minimum=1
        )
    if "quota_tier" in data:
        tier = data["quota_tier"]
        if not isinstance(tier, str) or tier not in QUOTA_TIERS:
            raise ConfigError(
                f"emulator config {source}: quota_tier {tier!r} unknown; choose one of {list(QUOTA_TIERS)}"
            )
        profile.quota_tier = tier
    profile.quotas.update(check_quotas(data.get("quotas") or {}, f"{source}: quotas"))
    profile.vertex_quotas.update(check_quotas(data.get("vertex_quotas") or {}, f"{source}: vertex_quotas"))
    if "projects" in data:
        profile.projects = _checked_projects(data["projects"], source)
    if "token_lifetime" in data:
        profile.token_lifetime = whole_number(data["token_lifetime"], f"{source}: token_lifetime", minimum=1)
    if "caching" in data:
        profile.caching.update(check_caching(data["caching"], source))
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


def _checked_projects(projects: Any, source: str) -> dict[str, list[str]]:
    """Project name -> its keys; a key in two projects would have two quotas, so it is an error."""
    shape = "an object of project name -> list of keys"
    if not isinstance(projects, dict):
        raise ConfigError(f"emulator config {source}: projects must be {shape}, got {json_type(projects)}")
    owner: dict[str, str] = {}
    for name, keys in projects.items():
        if not name or not (isinstance(keys, list) and all(isinstance(k, str) and k for k in keys)):
            raise ConfigError(
                f"emulator config {source}: projects.{name} must be a list of non-empty key strings"
            )
        for key in keys:
            if owner.setdefault(key, name) != name:
                # The key itself is a secret: name the projects, not the key.
                raise ConfigError(
                    f"emulator config {source}: a key is listed in two projects, "
                    f"{owner[key]!r} and {name!r}; give each key one project"
                )
    return {name: list(keys) for name, keys in projects.items()}


def _checked_model_fields(changes: Any, where: str) -> dict[str, Any]:
    if not isinstance(changes, dict):
        raise ConfigError(f"emulator config {where} must be an object, got {json_type(changes)}")
    unknown = set(changes) - _MODEL_FIELDS
    if unknown:
        raise ConfigError(
            f"emulator config {where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_MODEL_FIELDS)}"
        )
    return {name: _check_model_value(name, value, where) for name, value in changes.items()}


__all__ = ["DEFAULT_PROFILE", "FAULT_NAMES", "FAULT_PARAMS", "ConfigError", "check_faults", "load_profile"]
