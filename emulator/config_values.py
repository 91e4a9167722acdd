"""The emulator config's shared vocabulary: its one error type, the fault names and parameters, and
the checks of a value that more than one module applies (a JSON type named in JSON's words, a whole
number, a faults object) or that more than one config key shares (per-model quotas).

At the bottom of the emulator with lineup: profiles reads configs with it, faults reads the fault
names, and neither imports the other for it.
"""

from __future__ import annotations

import math
from typing import Any


class ConfigError(ValueError):
    """A bad profile name or config file; the message says what is wrong and how to fix it."""


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
FAULT_PARAMS = {
    "stall_seconds": 5.0,
    "slow_first_byte_seconds": 5.0,
    # Overload episodes (emulator.faults): off while overload_per_minute is 0; the rest are the
    # shape of an episode once they are turned on. Emulated seconds, like every other parameter.
    "overload_per_minute": 0.0,  # episodes starting per emulated minute (a Poisson process)
    "overload_seconds": 20.0,  # mean episode length
    "overload_503_share": 0.9,  # share of requests answered 503 during an episode (0..1)
    "overload_ramp_seconds": 10.0,  # latency rises for this long before an episode
    "overload_slowdown": 3.0,  # latency factor at an episode's start and during it (>= 1)
}


def json_type(value: Any) -> str:
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


def whole_number(value: Any, where: str, *, minimum: int = 0) -> int:
    """An integer >= minimum; 4.0 is 4, true and "4" are errors."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"emulator config {where} must be a whole number >= {minimum}, got {value!r}")
    return value


def check_quotas(quotas: Any, where: str) -> dict[str, dict[str, int | None]]:
    """Validated per-model limits: model (or "*") -> {"rpm": N, "tpm": N, "rpd": N}, null for none."""
    shape = "{'rpm': N, 'tpm': N, 'rpd': N}"
    if not isinstance(quotas, dict):
        raise ConfigError(f"emulator config {where} must be an object of model -> {shape}")
    checked: dict[str, dict[str, int | None]] = {}
    for model, limits in quotas.items():
        if not isinstance(limits, dict) or set(limits) - {"rpm", "tpm", "rpd"}:
            raise ConfigError(f"emulator config {where}.{model} must look like {shape}")
        checked[model] = {
            k: None if v is None else whole_number(v, f"{where}.{model}.{k}") for k, v in limits.items()
        }
    return checked


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
        if key == "overload_503_share" and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{source}: fault parameter {key!r} must be between 0 and 1, got {value}")
        if key == "overload_slowdown" and value < 1:
            raise ConfigError(f"{source}: fault parameter {key!r} must be a factor >= 1, got {value}")
        if key == "overload_per_minute" and value < 0:
            raise ConfigError(
                f"{source}: fault parameter {key!r} must be >= 0 episodes a minute, got {value}"
            )
        if key in FAULT_PARAMS and value < 0:
            raise ConfigError(f"{source}: fault parameter {key!r} must be >= 0 seconds, got {value}")
        out[key] = float(value)
    return out


# Context caching (emulator.caching). Implicit hits are not guaranteed on the real API: a user report
# (enricoros/big-AGI#931, January 2026) saw about 80 % of repeated 2.5 Pro prefixes hit, so a hit is
# drawn with that probability. The window is how long a prefix stays hot: the docs say only "a short
# amount of time"; 5 emulated minutes is the emulator's own figure.
CACHING_PARAMS = {
    "implicit_hit_probability": 0.8,  # share of eligible repeated prefixes that hit (0..1)
    "implicit_window_seconds": 300.0,  # emulated seconds a prefix stays cached after its last use
}


def check_caching(caching: Any, source: str = "caching") -> dict[str, float]:
    """Validated caching parameters: a probability in 0..1 and a window in seconds >= 0."""
    if not isinstance(caching, dict):
        raise ConfigError(f"{source}: caching must be an object of name -> number, e.g. {CACHING_PARAMS}")
    out: dict[str, float] = {}
    for key, value in caching.items():
        if key not in CACHING_PARAMS:
            raise ConfigError(f"{source}: unknown caching parameter {key!r}; known: {list(CACHING_PARAMS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{source}: caching {key!r} must be a number, got {value!r}")
        if key == "implicit_hit_probability" and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{source}: caching {key!r} must be between 0 and 1, got {value}")
        if value < 0:
            raise ConfigError(f"{source}: caching {key!r} must be >= 0 seconds, got {value}")
        out[key] = float(value)
    return out
