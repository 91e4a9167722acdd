"""The app user's options, prepared calls and answer checks (users/app.py), without a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import outcome as kinds
from core.options import OptionError
from core.outcome import Outcome
from tests.scenarios.scenario_helpers import make_options
from users.app import AppUser, app_endpoint, build_app_specs, expected_statuses, judge_answer
from users.errors import CallError
from users.scenario_options import ScenarioSettings
from users.settings import GeminiSettings
from users.transports.app_http import AppCall

SETTINGS = GeminiSettings.from_options(make_options(), emulator=True)


def scenario(**options: str) -> ScenarioSettings:
    flags = {
        "--app-url": "http://127.0.0.1:8088/moderate",
        **{f"--{k.replace('_', '-')}": v for k, v in options.items()},
    }
    return ScenarioSettings(prompt_size="short", extra=tuple(flags.items()))


def specs(**options: str) -> list[AppCall]:
    built = build_app_specs(SETTINGS, scenario(**options))
    assert all(isinstance(spec, AppCall) for spec in built)
    return built  # type: ignore[return-value]


def test_statuses() -> None:
    assert expected_statuses("200") == {200}
    assert expected_statuses("200, 201") == {200, 201}
    assert expected_statuses("2xx") == set(range(200, 300))
    for bad in ("ok", "600", "2x", ""):
        with pytest.raises(OptionError, match="--app-expect-status"):
            expected_statuses(bad)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"app_url": ""}, "needs --app-url"),
        ({"app_url": "ftp://127.0.0.1/x"}, "must look like http"),
        ({"app_url": "http://127.0.0.1:99999/x"}, "port is not a number"),
        ({"app_url": "http://me:pw@127.0.0.1:8/x"}, "user:password"),
        ({"app_method": "FETCH"}, "--app-method"),
        ({"request_id_header": "x request id"}, "--request-id-header"),
    ],
)
def test_bad_endpoint_is_one_line(options: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=message) as caught:
        app_endpoint(scenario(**options))
    assert "\n" not in str(caught.value)
    assert "pw" not in str(caught.value)


def test_default_body_is_json_of_each_post() -> None:
    built = specs()
    assert len(built) > 3
    for spec in built:
        body = json.loads(spec.body)
        assert body["id"] == spec.item_id
        assert body["text"].strip()
        assert spec.method == "POST" and spec.target == "/moderate" and spec.model == "POST /moderate"
        assert spec.scenario == AppUser.scenario and spec.request_bytes == len(spec.body)
        assert spec.variant == "short"


def test_template_escapes_json_and_url(tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    tricky = 'a "quoted"\nline & more/≠'
    posts.write_text(json.dumps({"id": "p1", "text": tricky, "label": "violating"}) + "\n")
    template = tmp_path / "body.json"
    template.write_text('{"post": {"content": "{{ text }}", "want": "{{label}}"}}')
    built = build_app_specs(
        SETTINGS,
        ScenarioSettings(
            posts_file=str(posts),
            extra=(
                ("--app-url", "http://127.0.0.1:1/check?q={{text}}&id={{id}}"),
                ("--app-body", str(template)),
            ),
        ),
    )
    (spec,) = built
    assert json.loads(spec.body) == {"post": {"content": tricky, "want": "violating"}}
    assert spec.target == "/check?q=a%20%22quoted%22%0Aline%20%26%20more%2F%E2%89%A0&id=p1"


def test_bad_templates_name_the_option(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"t": "{{post}}"}')
    with pytest.raises(OptionError, match=r"unknown placeholder \{\{post\}\}"):
        specs(app_body=str(unknown))
    broken = tmp_path / "broken.json"
    broken.write_text('{"t": {{text}}}')  # not quoted: not JSON once filled
    with pytest.raises(OptionError, match="not JSON"):
        specs(app_body=str(broken))
    with pytest.raises(OptionError, match="file not found"):
        specs(app_body=str(tmp_path / "missing.json"))
    with pytest.raises(OptionError, match="has no body"):
        specs(app_body=str(broken), app_method="GET")


def answer_of(text: str, expect: str) -> Outcome:
    out = Outcome(scenario="app", model="POST /moderate", transport="app", start_time=0.0)
    judge_answer(text, expect, out)
    return out


def test_answer_checks() -> None:
    assert answer_of('{"verdict": "violating"}', "verdict").verdict == "violating"
    assert answer_of('{"result": {"labels": ["ok", "x"]}}', "result.labels.1").verdict == "x"
    assert answer_of('{"n": 1}', "").verdict == ""
    assert answer_of("plain text", "-").verdict == ""
    for text, expect, message in (
        ("<html>busy</html>", "", "not JSON: '<html>busy</html>'"),
        ('{"other": 1}', "verdict", "has no 'verdict'"),
        ('{"result": []}', "result.0", "has no 'result.0'"),
    ):
        with pytest.raises(CallError) as caught:
            answer_of(text, expect)
        assert caught.value.kind == kinds.INVALID_RESPONSE
        assert message in caught.value.message
