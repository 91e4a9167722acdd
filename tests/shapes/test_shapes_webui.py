"""Choosing the shape in the web UI's start form, through Locust's real Flask app (test client).

The shapes run on a manual clock: a started ramp stays at the run time the test sets, and the test
waits for Locust to reach that state instead of sleeping until it probably has.
"""

from __future__ import annotations

import argparse
import socket
import sys

import pytest
from locust import User, constant, task
from locust.argument_parser import get_empty_argument_parser
from locust.env import Environment

import shapes
from lifecycle.form import install_start_form_check
from metrics import llm
from shapes.clock import ManualClock
from shapes.load_shapes import ScheduleShape
from shapes.runtime import use_clock
from tests.waiting import wait_until
from users.scenario_options import add_scenario_arguments
from users.settings import add_arguments as add_gemini_arguments

pytestmark = pytest.mark.timeout(90)  # above the 30 s bound of a wait_until


class NapUser(User):
    wait_time = constant(0.1)

    @task
    def nap(self) -> None:
        pass  # the tests look at user counts and stages, not at calls


@pytest.fixture
def web_env(options_factory, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["locust"])  # the web UI parses the command line for its form
    options = options_factory(headless=False)
    for name, value in vars(suite_option_defaults()).items():
        if not hasattr(options, name):
            setattr(options, name, value)  # the form's check reads every suite option
    options.emulator_url = FORM["host"]  # as if the suite had started its emulator there: no key needed
    environment = Environment(user_classes=[NapUser], parsed_options=options)
    environment.create_local_runner()
    environment.create_web_ui("127.0.0.1", 0, delayed_start=True)
    environment.clock = ManualClock()
    use_clock(environment, environment.clock)
    assert shapes.setup(environment) is None  # no --shape on the command line
    assert install_start_form_check(environment, wait_until_ready=lambda: None)
    yield environment
    environment.runner.quit()


def suite_option_defaults() -> argparse.Namespace:
    parser = get_empty_argument_parser()
    add_gemini_arguments(parser)
    add_scenario_arguments(parser)
    llm.add_arguments(parser)
    return parser.parse_args([])


FORM = {
    "user_count": "1", "spawn_rate": "1", "host": "http://127.0.0.1:1", "run_time": "",
    "shape": "ramp", "peak_users": "3", "ramp_up": "1s", "hold": "1s", "ramp_down": "0s",
}  # fmt: skip


def test_a_bad_form_value_is_answered_with_a_message_naming_the_option(web_env) -> None:
    client = web_env.web_ui.app.test_client()
    reply = client.post("/swarm", data={**FORM, "peak_users": "many"}).get_json()
    assert reply["success"] is False and reply["message"].startswith("--peak-users: 'many'")
    assert web_env.shape_class is None and web_env.runner.state == "ready"


def test_the_form_picks_the_shape_and_starts_it(web_env) -> None:
    client = web_env.web_ui.app.test_client()
    reply = client.post("/swarm", data=FORM).get_json()
    assert reply["success"] is True and "ScheduleShape" in reply["message"]
    assert isinstance(web_env.shape_class, ScheduleShape)
    assert web_env.shape_class.describe()["params"]["peak_users"] == 3
    web_env.clock.advance(0.5)  # half way up the form's 1 s ramp to 3 users: 2 users (1.5 rounded up)
    wait_until(
        lambda: shapes.current_stage(web_env) == "ramp-up" and web_env.runner.user_count == 2,
        what="the form's ramp at 2 users",
    )
    web_env.runner.stop()
    assert shapes.stage_log(web_env)[-1]["end"] == web_env.clock.now()  # test_stop closed the open stage


def test_the_form_needs_run_time_for_soak(web_env) -> None:
    client = web_env.web_ui.app.test_client()
    data = {**FORM, "shape": "soak", "soak_users": "2"}
    assert client.post("/swarm", data=data).get_json()["message"].startswith("--run-time (-t) is required")
    reply = client.post("/swarm", data={**data, "run_time": "2m"}).get_json()
    assert reply["success"] is True and web_env.shape_class.schedule.total_s == 120
    web_env.runner.stop()


def test_choosing_none_goes_back_to_users_and_spawn_rate(web_env) -> None:
    client = web_env.web_ui.app.test_client()
    client.post("/swarm", data=FORM)
    web_env.runner.stop()
    reply = client.post(
        "/swarm", data={**FORM, "shape": "none", "user_count": "2", "spawn_rate": "10"}
    ).get_json()
    assert reply["success"] is True and web_env.shape_class is None
    wait_until(lambda: web_env.runner.user_count == 2, what="the form's 2 users")
    # Locust's own -u/-r run, not a shape that happens to pass through 2 users
    assert web_env.runner.shape_greenlet is None and web_env.runner.target_user_count == 2


def test_a_host_typed_into_the_form_that_refuses_connections_is_answered_in_the_form(web_env) -> None:
    with socket.socket() as probe:  # a loopback port that was just free: nothing listens there
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    client = web_env.web_ui.app.test_client()
    reply = client.post("/swarm", data={**FORM, "host": closed, "api_key": "test-key-not-real"}).get_json()
    assert reply["success"] is False and reply["message"].startswith(f"--host {closed}: cannot connect")
    assert web_env.shape_class is None and web_env.runner.state == "ready"


def test_a_model_without_a_price_is_refused_in_the_form_against_another_host(web_env) -> None:
    with socket.socket() as server:  # something listens: the host is reachable, only the price is missing
        server.bind(("127.0.0.1", 0))
        server.listen()
        host = f"http://127.0.0.1:{server.getsockname()[1]}"
        client = web_env.web_ui.app.test_client()
        form = {**FORM, "host": host, "api_key": "test-key-not-real", "model": "some-unpriced-model"}
        reply = client.post("/swarm", data=form).get_json()
    assert reply["success"] is False and "no price known for model 'some-unpriced-model'" in reply["message"]
    assert web_env.shape_class is None and web_env.runner.state == "ready"


def test_a_cleared_host_field_means_the_bundled_emulator(web_env) -> None:
    """No --host on the command line means the emulator; so does a Host field left blank, rather than
    a test that stops at its first call on a host of ''."""
    client = web_env.web_ui.app.test_client()
    reply = client.post("/swarm", data={**FORM, "host": "  "}).get_json()
    assert reply["success"] is True, reply
    assert web_env.host == FORM["host"] == web_env.parsed_options.emulator_url
    web_env.runner.stop()
