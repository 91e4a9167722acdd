"""Option registration with Locust's real parser, and select_shape's validation."""

from __future__ import annotations

import pytest
from locust import User, constant, events, task
from locust.argument_parser import get_empty_argument_parser, setup_parser_arguments, ui_extra_args_dict
from locust.env import Environment

import shapes
from core.options import OptionError
from shapes.load_shapes import ArrivalShape, CapacityShape, ScheduleShape
from shapes.registry import all_shape_options


class TextUser(User):
    wait_time = constant(1)

    @task
    def noop(self) -> None:
        pass


class StreamingUser(TextUser):
    pass


@pytest.fixture
def env_with(options_factory):
    def build(**values: object) -> Environment:
        return Environment(user_classes=[TextUser, StreamingUser], parsed_options=options_factory(**values))

    return build


def locust_parser():
    parser = get_empty_argument_parser()
    setup_parser_arguments(parser)
    shapes.add_shape_arguments(parser)  # argparse raises on any option string Locust already has
    return parser


def test_every_option_is_registered_without_clashing_with_locust() -> None:
    parser = locust_parser()
    flags = {flag for action in parser._actions for flag in action.option_strings}
    expected = {
        "--shape", "--peak-users", "--ramp-up", "--hold", "--ramp-down", "--step-users", "--step-duration",
        "--steps", "--base-users", "--spike-users", "--spike-at", "--spike-duration", "--recovery",
        "--soak-users", "--warm-up", "--rate", "--max-users", "--start-rate", "--rate-step", "--stage-classes",
    }  # fmt: skip
    assert expected <= flags
    assert "--slo" not in {spec.flag for spec in all_shape_options()}  # metrics/ registers it


def test_options_parse_from_the_command_line() -> None:
    parsed = locust_parser().parse_args(
        ["--shape", "spike", "--base-users", "5", "--spike-users", "20", "--spike-at", "1m", "--steps", "3"]
    )
    assert (parsed.shape, parsed.base_users, parsed.spike_at, parsed.steps) == ("spike", "5", "1m", "3")
    assert parsed.hold == "0s" and parsed.peak_users == ""


def test_bad_shape_name_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        locust_parser().parse_args(["--shape", "sawtooth"])
    assert "--shape" in capsys.readouterr().err


def test_every_option_shows_in_the_web_ui_with_a_dropdown_for_shape() -> None:
    def add(parser, **_):
        shapes.add_shape_arguments(parser)

    events.init_command_line_parser.add_listener(add)
    try:
        extra = ui_extra_args_dict([])
    finally:
        events.init_command_line_parser.remove_listener(add)
    assert {spec.dest for spec in all_shape_options()} | {"shape"} <= set(extra)
    assert extra["shape"]["choices"] == ["none", "ramp", "step", "spike", "soak", "arrival", "capacity"]
    # string defaults: the web UI keeps the typed text and select_shape parses it
    assert all(isinstance(extra[spec.dest]["default_value"], str) for spec in all_shape_options())


def test_no_shape_means_locusts_own_options(env_with) -> None:
    assert shapes.select_shape(env_with()) is None
    assert shapes.select_shape(env_with(shape="none")) is None


def test_each_shape_builds_from_string_options(env_with) -> None:
    ramp = shapes.select_shape(
        env_with(shape="ramp", peak_users="50", ramp_up="2m", hold="1m", ramp_down="30s")
    )
    assert isinstance(ramp, ScheduleShape)
    assert ramp.describe() == {
        "name": "ramp", "params": {"peak_users": 50, "ramp_up_s": 120.0, "hold_s": 60.0, "ramp_down_s": 30.0},
    }  # fmt: skip
    assert ramp.schedule.total_s == 210 and ramp.abstract is True

    step = shapes.select_shape(env_with(shape="step", step_users="5", step_duration="30s", steps="4"))
    assert step.schedule.at(95).users == 20

    spike = shapes.select_shape(
        env_with(
            shape="spike",
            base_users="10",
            spike_users="40",
            spike_at="1m",
            spike_duration="30s",
            recovery="2m",
        )
    )
    assert spike.schedule.at(75).users == 50

    soak = shapes.select_shape(env_with(shape="soak", soak_users="8", warm_up="10s", run_time=600))
    assert soak.schedule.total_s == 600

    arrival = shapes.select_shape(env_with(shape="arrival", rate="2.5", max_users="40", run_time=60))
    assert isinstance(arrival, ArrivalShape) and (arrival.rate, arrival.max_users) == (2.5, 40)

    capacity = shapes.select_shape(
        env_with(shape="capacity", start_rate="1", rate_step="0.5", step_duration="1m", slo="ttft_p95<=800ms")
    )
    assert isinstance(capacity, CapacityShape)
    assert capacity.search.rate_of_step(2) == 2.0 and capacity.params["slo"] == ["ttft_p95<=800ms"]


def test_numbers_given_as_numbers_work_too(env_with) -> None:
    ramp = shapes.select_shape(env_with(shape="ramp", peak_users=7, ramp_up=10))
    assert ramp.schedule.at(5).users == 4  # 3.5 rounds up


@pytest.mark.parametrize(
    ("values", "option"),
    [
        ({"shape": "ramp", "ramp_up": "1m"}, "--peak-users"),
        ({"shape": "ramp", "peak_users": "10"}, "--ramp-up"),
        ({"shape": "step", "step_users": "1", "steps": "2"}, "--step-duration"),
        ({"shape": "step", "step_users": "1", "step_duration": "1m"}, "--steps"),
        ({"shape": "step", "steps": "3", "step_duration": "1m"}, "--step-users"),
        ({"shape": "spike", "spike_users": "1", "spike_at": "1s", "spike_duration": "1s", "recovery": "1s"}, "--base-users"),
        ({"shape": "spike", "base_users": "1", "spike_at": "1s", "spike_duration": "1s", "recovery": "1s"}, "--spike-users"),
        ({"shape": "spike", "base_users": "1", "spike_users": "1", "spike_duration": "1s", "recovery": "1s"}, "--spike-at"),
        ({"shape": "spike", "base_users": "1", "spike_users": "1", "spike_at": "1s", "recovery": "1s"}, "--spike-duration"),
        ({"shape": "spike", "base_users": "1", "spike_users": "1", "spike_at": "1s", "spike_duration": "1s"}, "--recovery"),
        ({"shape": "soak", "run_time": 60}, "--soak-users"),
        ({"shape": "soak", "soak_users": "5"}, "--run-time"),
        ({"shape": "arrival", "run_time": 60}, "--rate"),
        ({"shape": "arrival", "rate": "5"}, "--run-time"),
        ({"shape": "capacity", "rate_step": "1", "step_duration": "1m", "slo": "rps>=1"}, "--start-rate"),
        ({"shape": "capacity", "start_rate": "1", "step_duration": "1m", "slo": "rps>=1"}, "--rate-step"),
        ({"shape": "capacity", "start_rate": "1", "rate_step": "1", "slo": "rps>=1"}, "--step-duration"),
        ({"shape": "capacity", "start_rate": "1", "rate_step": "1", "step_duration": "1m"}, "--slo"),
    ],
)  # fmt: skip
def test_missing_parameter_names_the_option(values: dict[str, object], option: str, env_with) -> None:
    with pytest.raises(OptionError) as caught:
        shapes.select_shape(env_with(**values))
    message = str(caught.value)
    assert message.startswith(option) and "required" in message and "\n" not in message


@pytest.mark.parametrize(
    ("values", "option"),
    [
        ({"shape": "ramp", "peak_users": "lots", "ramp_up": "1m"}, "--peak-users"),
        ({"shape": "ramp", "peak_users": "0", "ramp_up": "1m"}, "--peak-users"),
        ({"shape": "ramp", "peak_users": "2.5", "ramp_up": "1m"}, "--peak-users"),
        ({"shape": "ramp", "peak_users": "5", "ramp_up": "1 minute"}, "--ramp-up"),
        ({"shape": "ramp", "peak_users": "5", "ramp_up": "1m", "hold": "-5s"}, "--hold"),
        ({"shape": "step", "step_users": "1", "steps": "2", "step_duration": "0s"}, "--step-duration"),
        ({"shape": "step", "step_users": "1", "steps": "0", "step_duration": "1s"}, "--steps"),
        ({"shape": "arrival", "rate": "fast", "run_time": 60}, "--rate"),
        ({"shape": "arrival", "rate": "0", "run_time": 60}, "--rate"),
        ({"shape": "arrival", "rate": "nan", "run_time": 60}, "--rate"),
        ({"shape": "arrival", "rate": "5", "max_users": "none", "run_time": 60}, "--max-users"),
        ({"shape": "arrival", "rate": "5", "run_time": "forever"}, "--run-time"),
        ({"shape": "soak", "soak_users": "5", "warm_up": "2m", "run_time": 60}, "--warm-up"),
        ({"shape": "capacity", "start_rate": "1", "rate_step": "1", "step_duration": "1m", "slo": "p95<1"}, "--slo"),
        ({"shape": "ramp", "peak_users": "5", "ramp_up": "1m", "stage_classes": "peak=TextUser"}, "--stage-classes"),
        ({"shape": "ramp", "peak_users": "5", "ramp_up": "1m", "stage_classes": "hold=GhostUser"}, "--stage-classes"),
        ({"shape": "ramp", "peak_users": "5", "ramp_up": "1m", "stage_classes": "hold"}, "--stage-classes"),
        ({"shape": "capacity", "start_rate": "1", "rate_step": "1", "step_duration": "1m", "slo": "rps>=1",
          "stage_classes": "rate-1=TextUser"}, "--stage-classes"),
        ({"shape": "wave"}, "--shape"),
    ],
)  # fmt: skip
def test_bad_value_names_the_option(values: dict[str, object], option: str, env_with) -> None:
    with pytest.raises(OptionError) as caught:
        shapes.select_shape(env_with(**values))
    assert str(caught.value).startswith(option) and "\n" not in str(caught.value)


def test_stage_classes_resolve_against_loaded_user_classes(env_with) -> None:
    spike = shapes.select_shape(
        env_with(
            shape="spike", base_users="2", spike_users="3", spike_at="1s", spike_duration="1s", recovery="1s",
            stage_classes="spike=StreamingUser; recovery=TextUser,StreamingUser",
        )
    )  # fmt: skip
    assert spike.schedule.at(1.5).classes == ("StreamingUser",)
    assert spike.schedule.at(2.5).classes == ("TextUser", "StreamingUser")
    assert spike._resolve_classes(spike.schedule.at(1.5)) == [StreamingUser]
    # a stage without its own classes hands Locust the full list back, not None
    assert spike._resolve_classes(spike.schedule.at(0.5)) == [TextUser, StreamingUser]


def test_step_stage_names_follow_the_step_count(env_with) -> None:
    values = {"shape": "step", "step_users": "1", "step_duration": "1s", "steps": "2"}
    assert shapes.select_shape(env_with(**values, stage_classes="step-2=StreamingUser")) is not None
    with pytest.raises(OptionError, match="no stage 'step-3'"):
        shapes.select_shape(env_with(**values, stage_classes="step-3=StreamingUser"))
