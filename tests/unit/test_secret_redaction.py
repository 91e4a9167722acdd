"""The secrets matcher (core/secrets.py) over every form a key takes in a message, the start-up
check of the key, and the writers that pass everything through it: the log, the results folder's
CSVs (the suite's and Locust's own), Locust's failure table and the report's renderer."""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
import logging
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import markupsafe
import pytest
from locust.env import Environment

from core import secrets
from core.outcome import Outcome
from core.results import REQUEST_LOG
from core.secrets import MIN_FRAGMENT, Redactor, key_problem, redact_key_shapes
from metrics.recorder import record_outcome
from metrics.redaction import protect_outputs, redactor_of
from metrics.results import AppendedCsv, RunFolder
from reports.html import _environment
from users.errors import redact
from users.settings import EMULATOR_KEY, GeminiSettings, OptionError

TOKEN = "QwErTyUiOpAsDfGhJkLzXcVb"  # letters: the same in every escaped form
# The issue's key (a trailing CR) with a run of characters that every escaping treats differently:
# where every other character is escaped, no piece of the raw key is left to match.
KEY = "sk-\"\\'%/&<>\"\\'%/&<>-" + TOKEN + "\r"


def pieces(text: str) -> list[str]:
    """Every MIN_FRAGMENT-long piece of the key's random part found in `text`."""
    return [
        TOKEN[i : i + MIN_FRAGMENT]
        for i in range(len(TOKEN) - MIN_FRAGMENT + 1)
        if TOKEN[i : i + MIN_FRAGMENT] in text
    ]


def _b64(offset: int, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(b"u:"[:offset] + KEY.encode()).decode()


# Each: how a library or a writer may show the key. Computed here, not by core.secrets.
FORMS: dict[str, Callable[[str], str]] = {
    "raw": lambda k: k,
    "stripped": str.strip,
    "repr": repr,
    "repr of repr": lambda k: repr(repr(k)),
    "bytes repr": lambda k: repr(k.encode()),
    "json": json.dumps,
    "json of repr": lambda k: json.dumps(repr(k)),
    "repr of json": lambda k: repr(json.dumps(k)),
    "percent": lambda k: quote(k, safe=""),
    "percent, path": quote,
    "percent lower-case": lambda k: quote(k, safe="").lower().replace(TOKEN.lower(), TOKEN),
    "percent-plus": quote_plus,
    "csv cell": lambda k: '"' + k.replace('"', '""') + '"',
    "html": html.escape,
    "jinja": lambda k: str(markupsafe.escape(k)),
    "base64": lambda k: _b64(0),
    "base64 at offset 1": lambda k: _b64(1),
    "base64 at offset 2": lambda k: _b64(2),
    "base64 url-safe": lambda k: _b64(1, urlsafe=True),
    "cut short": lambda k: repr(k)[:-12] + "…",
    "cut at both ends": lambda k: "…" + k[5:-6] + "…",
}


@pytest.mark.parametrize("name", FORMS)
def test_the_key_is_hidden_in_every_form(name: str) -> None:
    shown = FORMS[name](KEY)
    if not name.startswith("base64"):
        assert pieces(shown), "the form must hold the key for this test to mean anything"
    text = f"before [{shown}] after"
    cleaned = Redactor([KEY]).redact(text)
    assert not pieces(cleaned), cleaned
    assert cleaned.startswith("before [") and cleaned.endswith("] after") and "***" in cleaned
    # All of it hidden, the escaped run too: what is left is the form's quotes ('\'\'' at most) or
    # the edges of a base64 group.
    left = cleaned.removeprefix("before [").removesuffix("] after").replace("***", "")
    assert len(left) <= 6, left
    assert not pieces(Redactor([KEY]).redact(repr(text)))  # and once more escaped


def test_base64_forms_hold_the_key_until_redacted() -> None:
    for offset in range(3):
        for urlsafe in (False, True):
            encoded = _b64(offset, urlsafe)
            cleaned = Redactor([KEY]).redact(encoded)
            # What is left cannot be decoded to any 8 characters of the key.
            left = max(cleaned.split("***"), key=len)
            assert len(left) < MIN_FRAGMENT + 4, (encoded, cleaned)


def test_the_issues_message_is_redacted() -> None:
    """requests' error for a key with a CR: the key repr'd inside the message (legacy transport)."""
    message = (
        "InvalidHeader: Invalid leading whitespace, reserved character(s), or return character(s) "
        f"in header value: {KEY!r}"
    )
    assert KEY.strip() not in message  # the old str.replace(key) could not match
    cleaned = redact(message, (KEY,))
    assert not pieces(cleaned) and cleaned.endswith("header value: '***'")


def test_short_pieces_and_ordinary_text_are_kept() -> None:
    redactor = Redactor(["sk-abcdefghijkl"])
    assert redactor.redact("sk-abcd and sk-abc") == "sk-abcd and sk-abc"  # shorter than MIN_FRAGMENT
    assert redactor.redact("see sk-abcdefgh…") == "see ***…"  # a prefix of MIN_FRAGMENT is hidden
    assert redactor.redact("429 RESOURCE_EXHAUSTED retry in 3s") == "429 RESOURCE_EXHAUSTED retry in 3s"
    assert Redactor(["abc"]).redact("xabcx") == "x***x"  # a short key: whole only
    assert Redactor().redact("nothing to hide") == "nothing to hide"


def test_key_shapes_are_hidden_without_the_key() -> None:
    google = "AIza" + "SyA-abcdefghijklmnopqrstuvwxyz01234"
    assert len(google) == 39 and secrets.GOOGLE_API_KEY.fullmatch(google)
    assert redact_key_shapes(f"bad {google}!") == "bad ***!"
    assert redact_key_shapes(f"cut {google[:14]}…") == "cut ***…"
    assert (
        redact_key_shapes("GET /v1/models?alt=sse&key=s3cr3t%0D&x=1") == "GET /v1/models?alt=sse&key=***&x=1"
    )
    assert redact_key_shapes("{'x-goog-api-key': 's3cr3t'}") == "{'x-goog-api-key': '***'}"
    assert redact_key_shapes("AIzaSy alone") == "AIzaSy alone"


def test_secrets_added_later_are_hidden_from_then_on() -> None:
    redactor = Redactor()
    assert redactor.redact("key is sk-later-123456") == "key is sk-later-123456"
    redactor.add("sk-later-123456")
    assert redactor.redact("key is sk-later-123456") == "key is ***"


# ---- the start-up check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("sk-abc\r", "ends with a carriage return (\\r)"),
        ("sk-abc\n", "ends with a line feed (\\n)"),
        (" sk-abc", "starts with a space"),
        ("sk-a\tbc", "has a tab (\\t) at character 5 of 7"),
        ("sk-a\u00a0bc", "has a whitespace character (U+00A0) at character 5 of 7"),
        ("sk-a\x00bc", "has a control character (U+0000) at character 5 of 7"),
        ("sk-a\x7fbc", "has a control character (U+007F) at character 5 of 7"),
        ("sk-a\u00e9bc", "has a non-ASCII character (U+00E9) at character 5 of 7"),
        ("AIzaSy-valid_key.0123~!\"%&'", None),
    ],
)
def test_key_problem_names_the_character_never_the_key(key: str, problem: str | None) -> None:
    assert key_problem(key) == problem


def _options(**overrides: object) -> types.SimpleNamespace:
    base = {"model": "m", "transport": "genai", "api_key": "", "max_output_tokens": 256}
    base.update(temperature=0.0, timeout=60.0, retries=0)
    return types.SimpleNamespace(**{**base, **overrides})


def test_settings_refuse_a_key_with_whitespace_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    with pytest.raises(OptionError) as refused:
        GeminiSettings.from_options(_options(), emulator=False)
    message = str(refused.value)
    assert message.startswith("GEMINI_API_KEY ends with a carriage return (\\r)") and "\n" not in message
    assert not pieces(message)
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("GOOGLE_API_KEY", " " + TOKEN)
    with pytest.raises(OptionError, match="^GOOGLE_API_KEY starts with a space"):
        GeminiSettings.from_options(_options(), emulator=False)
    # An explicit key is checked against the emulator too (the web UI's form shows the same line).
    with pytest.raises(OptionError, match="^--api-key has a tab"):
        GeminiSettings.from_options(_options(api_key=TOKEN[:5] + "\t" + TOKEN), emulator=True)
    # The environment's bad key is not used against the emulator: nothing to refuse.
    assert GeminiSettings.from_options(_options(), emulator=True).api_key == EMULATOR_KEY


def test_settings_name_every_key_of_the_process_as_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "env-gemini-key")
    monkeypatch.setenv("GOOGLE_API_KEY", "env-google-key")
    settings = GeminiSettings.from_options(_options(api_key="flag-key-1234"), emulator=True)
    assert settings.secrets() == ("flag-key-1234", "env-gemini-key", "env-google-key")
    # The emulator's own key is public: hiding it would hide the word "emulator" everywhere.
    assert EMULATOR_KEY not in GeminiSettings.from_options(_options(), emulator=True).secrets()


# ---- the writers ------------------------------------------------------------------------------------


@pytest.fixture
def log_redaction() -> Iterator[None]:
    yield
    secrets.uninstall_log_redaction()


def test_log_records_are_redacted_in_any_logger_and_traceback(log_redaction: None) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    # Like Locust's `locust.stats_logger`: its own handler, not propagating to the root logger.
    logger = logging.getLogger("test_secrets.own_handler")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    try:
        secrets.install_log_redaction([KEY])
        secrets.install_log_redaction(["second-secret-123"])  # one redactor for the process
        logger.info("header value: %r and second-secret-123", KEY)
        try:
            raise ValueError(f"bad header {KEY!r}")
        except ValueError:
            logger.exception("a user failed")
        logger.info("%s %s", "one arg only")  # a bad format string: still no key, no crash
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "header value: '***' and ***" in output and "ValueError: bad header '***'" in output
    assert not pieces(output) and "second-secret" not in output


def test_the_runs_csv_writers_pass_every_text_cell_through_the_redactor(
    tmp_path: Path, log_redaction: None
) -> None:
    environment = Environment()
    environment.parsed_options = argparse.Namespace(results_dir=str(tmp_path / "run"))
    protect_outputs(environment, [KEY])
    assert redactor_of(environment).secrets == (KEY,)

    # The suite's appended CSVs: with the run's redactor, and key shapes by default.
    log = AppendedCsv(REQUEST_LOG, "requests-test.csv", redactor=redactor_of(environment))
    log.open(tmp_path)
    log.write([{"scenario": "chat", "error_message": f"echo {KEY!r}"}])
    log.close()
    plain = AppendedCsv(REQUEST_LOG, "plain.csv")
    plain.open(tmp_path)
    plain.write([{"error_message": "AIza" + "x" * 35}])
    plain.close()
    assert not pieces((tmp_path / "requests-test.csv").read_text())
    assert "AIza" not in (tmp_path / "plain.csv").read_text()

    # Locust's failures: a failed Outcome whose message was not redacted by its transport, and an
    # error fired by other code straight into Locust's stats; both through Locust's CSV writer.
    folder = RunFolder(environment, tmp_path / "run")
    environment.create_local_runner()  # which counts requests into environment.stats
    record_outcome(environment, Outcome("chat", "m", "genai", 1.0, error_kind="timeout", error_message=KEY))
    environment.events.request.fire(
        request_type="m", name="x", response_time=1, response_length=0, exception=ValueError(KEY)
    )
    by_name = {error.name: error.to_name() for error in environment.stats.errors.values()}
    assert not pieces(by_name["chat"])  # record_outcome redacts what Locust counts and shows
    assert pieces(by_name["x"])  # fired past the suite: Locust holds it, its CSV must not
    folder.write_final_csvs()  # Locust's periodic writer never ran: its rows only, no header
    failures = (tmp_path / "run" / "locust_failures.csv").read_text()
    rows = list(csv.reader(io.StringIO(failures)))
    assert len(rows) == 2 and all("***" in row[2] for row in rows), failures
    assert not pieces(failures)


def test_the_report_renderer_hides_key_shaped_strings() -> None:
    google = "AIza" + "SyA-abcdefghijklmnopqrstuvwxyz01234"
    uri = "data:image/png;base64,iVBORw0KGgo" + google  # a chart: left alone
    template = _environment().from_string('<p>{{ text }}</p><img src="{{ uri }}">')
    page = template.render(text=f"error for {google} key=abc", uri=uri)
    assert google not in page.split("<img")[0] and "error for *** key=***" in page
    assert uri in page


def test_oauth_shapes_are_hidden_and_ordinary_words_are_not() -> None:
    from core.secrets import Redactor

    token = "ya29.e-" + "Qx7_Lm2-Zp9aB3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3wX4yZ5a"
    redactor = Redactor([token])  # as users.vertex registers each token it is given
    line = f"bundled Gemini emulator at http://127.0.0.1:1; Authorization: Bearer {token}"
    assert redactor(line) == "bundled Gemini emulator at http://127.0.0.1:1; Authorization: Bearer ***"
    assert redactor(f"got {token[:20]} from /token") == "got *** from /token"
    assert redactor("the bearer authentication failed") == "the bearer authentication failed"
    assert redactor("unknown ya29.a0AfH6SMBxQ9zK2 token") == "unknown *** token"
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
    assert redactor(f"key: {pem}rest") == "key: ***\nrest"
