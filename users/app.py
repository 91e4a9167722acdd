"""AppUser: load the user's own service in front of Gemini, and tag each call so its model calls
can be found (scenario `app`, run with --mix app=1).

Each call sends one request to --app-url, its body --app-body's template filled from one fixture
post (the moderation set, or --posts-file), with a fresh request id in --request-id-header. The
service is expected to forward that header on the model calls it makes for the request; pointed at
the suite's emulator, they are filed under the id (emulator/sends.py), fetched when the run ends
(model_calls.csv) and joined with these calls in the report: before the model call, the model's
own time, after it. So the report can say whether the time users wait is the service's or Gemini's.

The calls go through GeminiUser's timing, Outcome, request log, stats, shapes and SLO gates, with
no retries and no client policy: what the service's own users see is what is measured. A call
costs nothing here: the model calls the service makes are the emulator's to count.

Placeholders in the body template and the URL: {{text}}, {{id}}, {{label}}, {{length}} (a post's
fields); each value is escaped as a JSON string's content in the body (sent as application/json,
so a body must be JSON once filled) and percent-encoded in the URL. Checked at start-up: an
unknown placeholder, or a body that is not JSON once filled, is one line naming --app-body.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from locust import between

from core import outcome as kinds
from core.options import OptionError, OptionSpec
from core.outcome import Outcome
from core.textfile import UnreadableText, read_text_file
from fixtures.moderation import Post, load_posts
from users.base import GeminiUser
from users.call import CallResult, CallSpec
from users.errors import CallError
from users.retry import RetryPolicy
from users.scenario_options import PreparedCalls, ScenarioSettings, scenario_settings, sized_in_fixed_order
from users.scenarios import register_scenario
from users.settings import GeminiSettings
from users.state import users_state
from users.transports.app_http import AppCall, AppEndpoint, AppTransport

APP_URL = OptionSpec(
    "--app-url",
    "",
    "app: your service's endpoint, e.g. http://127.0.0.1:8088/moderate (run it with --mix app=1). "
    "It should forward --request-id-header on its model calls, so the report can split its time",
)
APP_METHOD = OptionSpec(
    "--app-method", "POST", "app: HTTP method of each call (GET, POST, PUT, PATCH, DELETE)"
)
APP_BODY = OptionSpec(
    "--app-body",
    "",
    "app: a file with the request body, filled from each post: {{text}}, {{id}}, {{label}}, {{length}}; "
    'default {"text": "{{text}}", "id": "{{id}}"}',
)
APP_EXPECT_STATUS = OptionSpec(
    "--app-expect-status", "200", "app: the status(es) that mean success, e.g. 200 or 200,201 or 2xx"
)
APP_EXPECT_JSON = OptionSpec(
    "--app-expect-json",
    "",
    "app: what a good answer holds: empty, any JSON; a path such as verdict or result.label, JSON with "
    "that field (a text value is recorded as the call's verdict); - for any body at all",
)
REQUEST_ID_HEADER = OptionSpec(
    "--request-id-header",
    "x-request-id",
    "app: the header carrying each call's request id, which your service forwards to the model",
)
APP_OPTIONS = (APP_URL, APP_METHOD, APP_BODY, APP_EXPECT_STATUS, APP_EXPECT_JSON, REQUEST_ID_HEADER)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_BODY = '{"text": "{{text}}", "id": "{{id}}"}'
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
FIELDS = ("text", "id", "label", "length")
ANY_BODY = "-"
PORT_PLACEHOLDER = "{port}"  # filled by --app-command (lifecycle/app_service.py)
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # an RFC 9110 token
ORDER_SEED = 20261130  # the shuffled order of posts: the same for every user and every run
VERDICT_CHARS = 64


def app_endpoint(scenario: ScenarioSettings) -> AppEndpoint:
    """The run's endpoint from the app options; OptionError (one line) for a bad one."""
    url = scenario.option(APP_URL.flag)
    if not url:
        raise OptionError(
            "the app scenario needs --app-url: your service's endpoint, e.g. http://127.0.0.1:8088/moderate"
        )
    parts = urlsplit(url.replace(PORT_PLACEHOLDER, "1"))  # a {port} that --app-command fills is a port
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError(f"--app-url {url!r} must look like http://HOST:PORT/PATH")
    try:
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise OptionError(f"--app-url {url!r}: the port is not a number from 1 to 65535") from None
    if parts.username or parts.password:
        raise OptionError(f"--app-url {parts.hostname}: remove the user:password@ part (it would be logged)")
    method = (scenario.option(APP_METHOD.flag) or "POST").upper()
    if method not in METHODS:
        raise OptionError(f"--app-method {method!r} is not one of {', '.join(METHODS)}")
    header = scenario.option(REQUEST_ID_HEADER.flag) or REQUEST_ID_HEADER.default
    if not HEADER_NAME.match(header):
        raise OptionError(f"--request-id-header {header!r} is not a header name (letters, digits, - and _)")
    return AppEndpoint(
        url=url,
        method=method,
        request_id_header=header,
        expect_status=expected_statuses(scenario.option(APP_EXPECT_STATUS.flag) or "200"),
    )


def expected_statuses(text: str) -> frozenset[int]:
    """{200} from "200", {200, 201} from "200,201", 200..299 from "2xx"; OptionError otherwise."""
    codes: set[int] = set()
    for piece in (p.strip().lower() for p in text.split(",") if p.strip()):
        if re.fullmatch(r"[1-5]xx", piece):
            first = int(piece[0]) * 100
            codes.update(range(first, first + 100))
        elif piece.isdigit() and 100 <= int(piece) <= 599:
            codes.add(int(piece))
        else:
            raise OptionError(
                f"--app-expect-status {text!r}: {piece!r} is not a status (e.g. 200, 200,201 or 2xx)"
            )
    if not codes:
        raise OptionError("--app-expect-status is empty: give the status(es) of success, e.g. 200")
    return frozenset(codes)


def body_template(scenario: ScenarioSettings, method: str) -> str:
    path = scenario.option(APP_BODY.flag)
    if not path:
        return "" if method in ("GET", "DELETE") else DEFAULT_BODY
    if method in ("GET", "DELETE"):
        raise OptionError(
            f"--app-body {path}: a {method} request has no body; use POST, or put {{{{text}}}} in --app-url"
        )
    try:
        return read_text_file(Path(path))
    except UnreadableText as exc:
        raise OptionError(f"--app-body {path}: {exc.reason}: give a file with the request body") from None


def _check_placeholders(text: str, flag: str) -> None:
    unknown = sorted({name for name in PLACEHOLDER.findall(text) if name not in FIELDS})
    if unknown:
        known = ", ".join("{{" + name + "}}" for name in FIELDS)
        raise OptionError(f"{flag}: unknown placeholder {{{{{unknown[0]}}}}}; known: {known}")


def _fill(template: str, post: Post, escape: Any) -> str:
    values = {"text": post.text, "id": post.id, "label": post.label, "length": post.length}
    return PLACEHOLDER.sub(lambda match: escape(values[match.group(1)]), template)


def _json_escaped(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _url_escaped(value: str) -> str:
    return quote(value, safe="")


def build_app_specs(settings: GeminiSettings, scenario: ScenarioSettings) -> list[CallSpec]:
    """One prepared call per post, in a fixed shuffled order; OptionError for bad app options.
    None yet for a URL whose {port} --app-command fills: a worker's own command line at its init,
    before the master's options (the filled URL) arrive with the spawn message."""
    if PORT_PLACEHOLDER in scenario.option(APP_URL.flag):
        return []
    endpoint = app_endpoint(scenario)
    template = body_template(scenario, endpoint.method)
    _check_placeholders(template, f"--app-body {scenario.option(APP_BODY.flag) or '(default)'}")
    url = urlsplit(endpoint.url)
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    _check_placeholders(target, "--app-url")
    source = scenario.posts_file or None
    empty = f"{source or 'the bundled moderation set'}: no {scenario.prompt_size} posts (--prompt-size)"
    posts = sized_in_fixed_order(
        load_posts(source), lambda post: post.length, scenario, seed=ORDER_SEED, empty=empty
    )
    # What Locust's tables and the report call these calls: the method and path, as HttpUser does.
    name = f"{endpoint.method} {url.path or '/'}"
    specs: list[CallSpec] = []
    for post in posts:
        body = _fill(template, post, _json_escaped).encode()
        if template and not specs:
            _check_json(body, scenario)
        specs.append(
            AppCall(
                scenario=AppUser.scenario,
                model=name,
                parts=(),
                variant=post.length,
                item_id=post.id,
                expected=post.label,
                request_bytes=len(body),
                method=endpoint.method,
                target=_fill(target, post, _url_escaped),
                body=body,
            )
        )
    return specs


def _check_json(body: bytes, scenario: ScenarioSettings) -> None:
    try:
        json.loads(body)
    except ValueError as exc:
        where = scenario.option(APP_BODY.flag) or "(default)"
        raise OptionError(f"--app-body {where}: filled with a post, it is not JSON ({exc})") from None


def judge_answer(text: str, expect: str, outcome: Outcome) -> None:
    """What --app-expect-json asks of an answer; CallError(invalid_response) when it is not there."""
    if expect == ANY_BODY:
        return
    try:
        value: Any = json.loads(text)
    except ValueError:
        shown = " ".join(text[:80].split())
        raise CallError(kinds.INVALID_RESPONSE, f"the app's answer is not JSON: {shown!r}") from None
    for step in expect.split(".") if expect else ():
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            raise CallError(kinds.INVALID_RESPONSE, f"the app's answer has no {expect!r} (--app-expect-json)")
    if expect and isinstance(value, str):
        outcome.verdict = value[:VERDICT_CHARS]


@register_scenario
class AppUser(PreparedCalls, GeminiUser):
    scenario: ClassVar[str] = "app"
    in_default_mix: ClassVar[bool] = False  # it needs --app-url: it runs when --mix names it
    think_time = between(0.1, 0.5)
    options = APP_OPTIONS
    build_specs = staticmethod(build_app_specs)

    @staticmethod
    def check_inputs(scenario: ScenarioSettings) -> None:
        """The app options, the body template and the posts file (OptionError, FixtureError)."""
        endpoint = app_endpoint(scenario)
        _check_placeholders(body_template(scenario, endpoint.method), "--app-body")
        if scenario.posts_file:
            load_posts(scenario.posts_file)

    def on_start(self) -> None:
        # Not GeminiUser's: no Gemini transport, no client policy, no retries (the service's users
        # see its first answer), no Vertex sign-in.
        state = users_state(self.environment)
        if state.settings is None:
            raise LookupError("no settings yet: they are set at Locust's init (users.state.use_settings)")
        self.settings = state.settings
        scenario = scenario_settings(self.environment)
        if not self.specs():
            raise LookupError(f"--app-url still has {PORT_PLACEHOLDER}: no --app-command filled it")
        self.expect = scenario.option(APP_EXPECT_JSON.flag)
        self.transport = AppTransport(
            app_endpoint(scenario), timeout_s=self.settings.timeout_s, secrets=(self.settings.api_key,)
        )
        self.vertex = None
        self.retry_policy = RetryPolicy(retries=0)
        self.policy = None
        self._next = self.start_index()
        # Unique across users, processes and runs: a random part per user, then a count.
        self._ids = (f"app-{secrets.token_hex(6)}-{n}" for n in itertools.count(1))

    def request_id_for(self, spec: CallSpec) -> str:
        return next(self._ids)

    def judge(self, spec: CallSpec, result: CallResult, outcome: Outcome) -> None:
        judge_answer(result.text, self.expect, outcome)

    def _fill(self, out: Outcome, result: CallResult) -> None:
        # The service's answer has no usage or price of its own: its model calls are the emulator's.
        out.http_status = result.http_status
        out.response_bytes = result.response_bytes
