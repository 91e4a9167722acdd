"""Fault injection: each fault fires on a request with its configured rate (0..1).

Rates come from the profile / config file ("faults": {...}) and can be changed while running:
    GET  /emulator/faults                       -> {"rates": {...}, "params": {...}}
    POST /emulator/faults {"server_503": 0.1}   -> merges; {"reset": true, ...} clears first
Faults (see profiles.FAULT_NAMES): server_500, server_503, server_504, connection_reset,
stream_cut, stream_stall, malformed_json, stream_error_frame, slow_first_byte.
Parameters: stall_seconds, slow_first_byte_seconds (emulated seconds: the time scale applies).

At most one of the "instead of an answer" faults fires per request (connection_reset, then 500,
503, 504, in that order of precedence); slow_first_byte adds to any of them; the stream faults
apply to streamed answers only and malformed_json to any successful answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from emulator.profiles import FAULT_NAMES, FAULT_PARAMS, check_faults

REPLACING = ("connection_reset", "server_500", "server_503", "server_504")
STREAM_ONLY = ("stream_cut", "stream_stall", "stream_error_frame")


@dataclass(slots=True)
class Draw:
    """The faults chosen for one request."""

    replace_with: str = ""  # one of REPLACING, or "" to answer normally
    slow_first_byte: bool = False
    malformed_json: bool = False
    stream_cut: bool = False
    stream_stall: bool = False
    stream_error_frame: bool = False

    def names(self) -> list[str]:
        names = [self.replace_with] if self.replace_with else []
        for name in ("slow_first_byte", "malformed_json", *STREAM_ONLY):
            if getattr(self, name):
                names.append(name)
        return names


NO_FAULT = Draw()


class Faults:
    def __init__(self, settings: dict[str, float], seed: int | None) -> None:
        self.rng = random.Random(None if seed is None else seed + 1)
        self.rates: dict[str, float] = {}
        self.params: dict[str, float] = dict(FAULT_PARAMS)
        self.update(settings)

    def update(self, settings: dict[str, Any], reset: bool = False) -> None:
        checked = check_faults(settings, "faults")
        if reset:
            self.rates = {}
            self.params = dict(FAULT_PARAMS)
        for key, value in checked.items():
            if key in FAULT_PARAMS:
                self.params[key] = value
            elif value > 0:
                self.rates[key] = value
            else:
                self.rates.pop(key, None)

    def describe(self) -> dict[str, Any]:
        return {
            "rates": {name: self.rates.get(name, 0.0) for name in FAULT_NAMES},
            "params": dict(self.params),
        }

    def draw(self, stream: bool) -> Draw:
        if not self.rates:  # the common case: no faults configured, no random draws
            return NO_FAULT
        hit = self._hit
        draw = Draw()
        for name in REPLACING:
            if hit(name):
                draw.replace_with = name
                break
        draw.slow_first_byte = hit("slow_first_byte")
        if not draw.replace_with:
            draw.malformed_json = hit("malformed_json")
            if stream:
                draw.stream_cut = hit("stream_cut")
                draw.stream_stall = hit("stream_stall")
                draw.stream_error_frame = hit("stream_error_frame")
        return draw

    def _hit(self, name: str) -> bool:
        rate = self.rates.get(name, 0.0)
        return rate > 0 and self.rng.random() < rate
