from __future__ import annotations

import pytest

from core.options import OptionError
from shapes.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("2m", 120),
        ("1h", 3600),
        ("1h30m", 5400),
        ("1h30m10s", 5410),
        ("20", 20),
        ("0", 0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("2M", 120),
        (" 45s ", 45),
        (90, 90),
        (2.5, 2.5),
    ],
)
def test_parses_locust_style_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text, "--hold") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["abc", "1x", "m", "-1s", "1s30m", "30m1h", "1.2.3s", "s30"])
def test_bad_duration_names_the_option(text: str) -> None:
    with pytest.raises(OptionError, match=r"^--ramp-up: .*not a duration"):
        parse_duration(text, "--ramp-up")


def test_missing_duration_names_the_option() -> None:
    with pytest.raises(OptionError, match=r"^--spike-at: missing duration"):
        parse_duration("", "--spike-at")


def test_negative_number_is_refused() -> None:
    with pytest.raises(OptionError, match="--hold"):
        parse_duration(-3, "--hold")


def test_format_duration_round_trips() -> None:
    for seconds in (0.5, 30, 90, 3600, 5410):
        assert parse_duration(format_duration(seconds), "--x") == pytest.approx(seconds)
