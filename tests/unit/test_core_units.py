"""Units of the GeminiUser core that need no server: pricing, redaction, options, the Outcome row."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from core.outcome import OUTCOME_COLUMNS, Outcome
from metrics import results
from users.errors import kind_for_status, parse_retry_delay, redact, retry_delay_from_details
from users.pricing import PriceTable, PricingError
from users.settings import EMULATOR_KEY, GeminiSettings, OptionError


def test_cost_uses_server_counts_and_thinking_as_output() -> None:
    prices = PriceTable.load()
    # flash: 0.30 in / 2.50 out per 1M; thoughts bill as output.
    assert prices.cost("gemini-2.5-flash", 1_000_000, 0, 0).total == pytest.approx(0.30)
    assert prices.cost("gemini-2.5-flash", 0, 400_000, 600_000).total == pytest.approx(2.50)
    assert prices.cost("models/gemini-2.5-flash-001", 1_000_000, 0, 0).total == pytest.approx(0.30)


def test_pro_long_context_rate_applies_above_threshold() -> None:
    prices = PriceTable.load()
    assert prices.cost("gemini-2.5-pro", 200_000, 0, 0).total == pytest.approx(0.25)
    assert prices.cost("gemini-2.5-pro", 200_001, 0, 0).total == pytest.approx(200_001 * 2.5 / 1e6)


def test_unknown_model_costs_nothing_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    prices = PriceTable.load()
    assert prices.cost("my-tuned-model", 1000, 1000, 0).total == 0.0
    assert prices.cost("my-tuned-model", 1000, 1000, 0).total == 0.0
    assert sum("my-tuned-model" in r.message for r in caplog.records) == 1


def test_pricing_override_file_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "p.json"
    good.write_text(json.dumps({"as_of": "2030-01-01", "models": {"m": {"input": 1.0, "output": 2.0}}}))
    assert PriceTable.load(good).cost("m", 1_000_000, 1_000_000, 0).total == pytest.approx(3.0)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PricingError, match="bad.json"):
        PriceTable.load(bad)
    with pytest.raises(PricingError, match="file not found"):
        PriceTable.load(tmp_path / "missing.json")
    for price in ('"0.30"', "null", "-1", "true"):
        text = tmp_path / "text.json"
        text.write_text('{"models": {"m": {"input": ' + price + ', "output": 1}}}')
        with pytest.raises(PricingError, match=r"m\.input must be a number"):
            PriceTable.load(text)


def test_redact_removes_known_keys_and_key_shapes() -> None:
    key = "AIzaSyA-abcdefghijklmnopqrstuvwxyz012345"
    message = f"POST https://x/v1/models/m:generateContent?key={key}&alt=sse failed; x-goog-api-key: {key}"
    cleaned = redact(message, (key,))
    assert key not in cleaned and "abcdefghij" not in cleaned
    assert redact(f"bad key {key}") == "bad key ***"
    assert redact("secret-123 leaked", ("secret-123",)) == "*** leaked"


def test_status_kinds_and_retry_delay() -> None:
    assert [kind_for_status(s) for s in (400, 403, 404, 429, 500, 503, 504)] == [
        "client_error",
        "client_error",
        "client_error",
        "rate_limited",
        "server_error",
        "server_error",
        "server_error",  # 504 DEADLINE_EXCEEDED: the server's answer, not our client's timeout
    ]
    assert parse_retry_delay("22s") == 22.0
    assert parse_retry_delay("1.5s") == 1.5
    assert parse_retry_delay("soon") is None
    body = {"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]}}
    assert retry_delay_from_details(body) == 3.0
    assert retry_delay_from_details([{"@type": "type.googleapis.com/google.rpc.Help"}]) is None


def _options(**overrides: object) -> types.SimpleNamespace:
    base = {
        "model": "gemini-2.5-flash",
        "transport": "genai",
        "api_key": "",
        "max_output_tokens": 256,
        "temperature": 0.0,
        "timeout": 60.0,
        "retries": 0,
    }
    base.update(overrides)
    return types.SimpleNamespace(**base)


def test_settings_key_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "env-key")
    # The emulator never receives the environment's real key.
    assert GeminiSettings.from_options(_options(), emulator=True).api_key == EMULATOR_KEY
    assert GeminiSettings.from_options(_options(), emulator=False).api_key == "env-key"
    assert GeminiSettings.from_options(_options(api_key="flag"), emulator=False).api_key == "flag"
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(OptionError, match="GEMINI_API_KEY"):
        GeminiSettings.from_options(_options(), emulator=False)
    assert "api_key" not in GeminiSettings.from_options(_options(api_key="flag"), emulator=False).public()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"max_output_tokens": -1}, "--max-output-tokens"),
        ({"max_output_tokens": "lots"}, "--max-output-tokens"),
        ({"temperature": 3.0}, "--temperature"),
        ({"timeout": -1}, "--timeout"),
        ({"transport": "carrier-pigeon"}, "--transport"),
        ({"model": " "}, "--model"),
        ({"retries": -1}, "--retries"),
    ],
)
def test_bad_options_name_the_option(overrides: dict, fragment: str) -> None:
    with pytest.raises(OptionError, match=fragment):
        GeminiSettings.from_options(_options(**overrides), emulator=True)


def test_outcome_row_has_every_column_and_derived_tpot() -> None:
    out = Outcome("stream", "m", "genai", 1.0, ttft_ms=100.0, last_chunk_ms=1100.0, output_tokens=11)
    out.gaps_ms = [10.0, 20.25]
    row = out.as_row()
    assert tuple(row) == OUTCOME_COLUMNS
    assert row["tpot_ms"] == pytest.approx(100.0)
    assert row["gaps_ms"] == "10.0 20.2"
    assert Outcome("s", "m", "t", 0.0, output_tokens=1, ttft_ms=1.0, last_chunk_ms=2.0).tpot_ms is None
    blocked = Outcome("s", "m", "t", 0.0, error_kind="blocked")
    assert not blocked.failed and not blocked.ok
    assert Outcome("s", "m", "t", 0.0, error_kind="rate_limited").failed


def test_public_options_drop_secrets() -> None:
    ns = types.SimpleNamespace(
        api_key="k1", web_login="x", my_token="t", model="m", users=5, obj=object(), max_output_tokens=9
    )
    clean = results.public_options(ns)
    assert clean["model"] == "m" and clean["users"] == 5 and isinstance(clean["obj"], str)
    assert clean["max_output_tokens"] == 9
    assert not {"api_key", "web_login", "my_token"} & set(clean)


def test_results_folder_with_an_earlier_run_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "old"}))
    (tmp_path / "locust_stats.csv").write_text("old data")
    results.set_aside_previous_run(tmp_path)
    assert not (tmp_path / "run.json").exists()
    kept = list((tmp_path / ".previous").glob("old-*/locust_stats.csv"))
    assert len(kept) == 1 and kept[0].read_text() == "old data"


def test_run_json_host_loses_any_credentials() -> None:
    assert results.public_host("https://user:secret@example.test:8443/x") == "https://example.test:8443/x"
    assert results.public_host("http://127.0.0.1:9000") == "http://127.0.0.1:9000"


def test_settings_repr_never_shows_the_key() -> None:
    settings = GeminiSettings.from_options(
        _options(api_key="AIzaSyRepr-0123456789abcdefghijkl"), emulator=False
    )
    assert "AIzaSyRepr" not in repr(settings)
