"""Scenario options with Locust's real parser, --mix parsing and applying, and spec preparation."""

from __future__ import annotations

from pathlib import Path

import pytest
from locust.argument_parser import get_empty_argument_parser, setup_parser_arguments
from locust.env import Environment
from locust.runners import WorkerRunner
from scenario_helpers import make_options

from fixtures.loading import FixtureError
from users.mix import apply_mix, parse_mix, prepare_scenarios
from users.moderation import TextModerationUser
from users.pricing import PriceTable
from users.scenario_options import ScenarioSettings, add_scenario_arguments
from users.scenarios import scenario_names
from users.settings import GeminiSettings, OptionError
from users.settings import add_arguments as add_gemini_arguments
from users.state import use_settings, users_state
from users.streaming import StreamingUser
from users.vision import VisionUser

CLASSES = [TextModerationUser, VisionUser, StreamingUser]


@pytest.fixture(autouse=True)
def classes_are_never_changed():
    saved = {cls: cls.weight for cls in CLASSES}
    yield
    assert {cls: cls.weight for cls in CLASSES} == saved  # a mix weighs subclasses, not the classes


def _weights(env: Environment) -> dict[str, int]:
    return {cls.__name__: cls.weight for cls in env.user_classes}


def test_options_register_on_locusts_parser_and_parse() -> None:
    parser = get_empty_argument_parser()
    setup_parser_arguments(parser)
    add_gemini_arguments(parser)
    add_scenario_arguments(parser)  # argparse raises on any clash with Locust's own options
    options = parser.parse_args(
        [
            "--image-mode",
            "both",
            "--max-image-side",
            "3072",
            "--mix",
            "moderation=3,vision=1",
            "--prompt-size",
            "long",
        ]
    )
    scenario = ScenarioSettings.from_options(options)
    assert scenario.image_modes == ("raw", "optimized") and scenario.max_image_side == 3072
    assert scenario.sizes() == ("long",) and scenario.mix == "moderation=3,vision=1"
    assert scenario.inline_limit_bytes == 100 * 1024 * 1024
    defaults = ScenarioSettings.from_options(None)
    assert defaults.image_modes == ("optimized",) and defaults.sizes() == ("short", "medium", "long")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"prompt_size": "huge"}, "--prompt-size 'huge' is not known"),
        ({"image_mode": "thumbnail"}, "--image-mode 'thumbnail' is not known"),
        ({"max_image_side": "big"}, "--max-image-side 'big' is not a valid int"),
        ({"max_image_side": 10}, "--max-image-side 10 is too small"),
        ({"inline_limit_mb": 0}, "--inline-limit-mb 0 must be above 0"),
        ({"image_set": "everything"}, "--image-set 'everything' is not known"),
    ],
)
def test_bad_scenario_options_name_the_option(values: dict, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        ScenarioSettings.from_options(make_options(**values))


def test_parse_mix() -> None:
    assert parse_mix("moderation=3,vision=1,stream=1") == {"moderation": 3, "vision": 1, "stream": 1}
    assert parse_mix(" vision = 2 , ") == {"vision": 2}
    assert parse_mix("") == {}
    assert set(scenario_names()) >= {"moderation", "vision", "stream"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("moderation", "'moderation' is not name=weight"),
        ("chat=1", "no scenario named 'chat'; known: moderation, vision, stream"),
        ("vision=1,vision=2", "'vision' is given twice"),
        ("vision=x", "weight 'x' of vision is not a whole number"),
        ("vision=-1", "weight of vision must be 0 to"),
        ("vision=0", "at least one scenario a weight above 0"),
    ],
)
def test_bad_mix_names_the_option(text: str, message: str) -> None:
    with pytest.raises(OptionError, match="--mix") as raised:
        parse_mix(text)
    assert message in str(raised.value)


def _env(**values) -> Environment:
    options = make_options(**values)
    env = Environment(user_classes=list(CLASSES), parsed_options=options)
    use_settings(env, GeminiSettings.from_options(options, emulator=True), PriceTable.load())
    return env


def test_apply_mix_sets_weights_and_leaves_out_unnamed_scenarios() -> None:
    env = _env(mix="moderation=5,stream=2")
    env.create_local_runner()
    apply_mix(env)
    assert _weights(env) == {"TextModerationUser": 5, "StreamingUser": 2}
    assert issubclass(env.user_classes[0], TextModerationUser)
    # The web UI form changed the mix: the next test_start applies it, vision comes back.
    env.parsed_options.mix = "vision=4"
    apply_mix(env)
    assert _weights(env) == {"VisionUser": 4} and issubclass(env.user_classes[0], VisionUser)
    env.parsed_options.mix = ""  # empty: every class at its own weight again
    apply_mix(env)
    assert env.user_classes == CLASSES


class _IdleWorker(WorkerRunner):
    """A worker runner that never connects (a real one dials its master when created)."""

    def __init__(self) -> None:
        self.greenlet = None


def test_apply_mix_is_a_no_op_on_workers_and_errors_name_mix() -> None:
    env = _env(mix="moderation=1")
    env.runner = _IdleWorker()
    apply_mix(env)
    assert env.user_classes == CLASSES
    bad = _env(mix="moderation=one")
    bad.create_local_runner()
    with pytest.raises(OptionError, match="--mix"):
        apply_mix(bad)


def test_prepare_scenarios_builds_active_scenarios_once_and_rebuilds_on_change() -> None:
    env = _env(mix="moderation=1,stream=1", prompt_size="short")
    env.create_local_runner()
    prepare_scenarios(env)
    specs = users_state(env).specs
    assert set(specs) == {"moderation", "stream"}  # vision left out: no images prepared
    assert {s.variant for s in specs["moderation"]} == {"short"}
    prepare_scenarios(env)
    assert users_state(env).specs is specs  # nothing changed: nothing rebuilt
    env.parsed_options.prompt_size = "long"
    prepare_scenarios(env)
    assert users_state(env).specs is not specs and {s.variant for s in users_state(env).specs["stream"]} == {
        "long"
    }


def test_prepare_scenarios_on_a_master_only_checks_files(tmp_path: Path) -> None:
    bad = tmp_path / "posts.jsonl"
    bad.write_text('{"id": "a", "text": "x", "label": "benign"}\n{oops}\n')
    env = _env(posts_file=str(bad))
    env.create_master_runner("127.0.0.1", 0)
    try:
        with pytest.raises(FixtureError, match=r"posts\.jsonl:2"):
            prepare_scenarios(env)
        env.parsed_options.posts_file = ""
        prepare_scenarios(env)
        assert not users_state(env).specs  # the master sends nothing: builds nothing
    finally:
        env.runner.quit()


def test_a_changed_mix_makes_locust_build_a_new_dispatcher() -> None:
    env = _env(mix="moderation=1,vision=1")
    runner = env.create_local_runner()
    apply_mix(env)
    previous_run = object()
    runner._users_dispatcher = previous_run  # what a finished web-UI run leaves behind
    apply_mix(env)  # same mix: the dispatcher stays
    assert runner._users_dispatcher is previous_run
    env.parsed_options.mix = "moderation=1,vision=3"  # same classes, new weights
    apply_mix(env)
    assert runner._users_dispatcher is None and _weights(env)["VisionUser"] == 3
