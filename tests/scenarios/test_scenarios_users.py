"""Each scenario user against a real emulator, through a real Locust Environment and the real SDK."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from locust.env import Environment
from scenario_helpers import request_log_frame, write_image

from core import outcome as kinds
from core.catalogue import catalogue, default_model
from core.options import OptionError
from core.outcome import Outcome
from fixtures.chat import OUTPUT_BUDGETS
from reports.scenario_analysis import variant_comparison
from tests.waiting import wait_until
from users.call import CallResult
from users.errors import CallError
from users.mix import apply_mix, prepare_scenarios
from users.moderation import TextModerationUser
from users.state import settings_of
from users.streaming import StreamingUser
from users.vision import VisionUser


def started(user_class: type, env: Environment) -> Any:
    user = user_class(env)
    user.on_start()
    return user


def test_moderation_outcomes_record_verdict_label_and_blocks(make_env: Callable[..., Environment]) -> None:
    env = make_env([TextModerationUser])
    user = started(TextModerationUser, env)
    try:
        specs = user.specs()
        assert len(specs) == 330 and {s.scenario for s in specs} == {"moderation"}
        benign = next(s for s in specs if s.expected == "benign")
        low = next(s for s in specs if ":low]]" in s.parts[0])
        high = next(s for s in specs if s.expected == "violating" and ":low]]" not in s.parts[0])

        out = user.execute(benign)
        assert out.ok and out.verdict == "benign" and out.expected == "benign", out
        assert out.item_id == benign.item_id and out.variant in ("short", "medium", "long")
        assert out.prompt_tokens and out.prompt_tokens > 0 and out.cost_usd > 0 and out.request_bytes > 0

        out = user.execute(low)  # answered: the JSON verdict flags it
        assert out.ok and out.verdict == "violating" == out.expected

        out = user.execute(high)  # blocked: an answer, not an API failure
        assert out.error_kind == kinds.BLOCKED and out.block_reason == "SAFETY"
        assert out.verdict == "violating" and not out.failed

        assert {user.execute(benign).verdict for _ in range(3)} == {"benign"}  # same text, same verdict

        # An answer that is not JSON (JSON mode off) is an invalid_response, a failure.
        plain = dataclasses.replace(benign, response_mime_type=None, response_schema=None)
        out = user.execute(plain)
        assert out.error_kind == kinds.INVALID_RESPONSE and out.failed and "not JSON" in out.error_message
    finally:
        user.on_stop()


def test_vision_outcomes_compare_raw_and_optimized(
    make_env: Callable[..., Environment], tmp_path: Path
) -> None:
    folder = tmp_path / "shelves"
    write_image(folder / "big.jpg", (3000, 2000), quality=95)
    write_image(folder / "small.png", (800, 600), mode="RGBA", fmt="PNG", noisy=True)  # photo-like
    env = make_env([VisionUser], image_mode="both", images_dir=str(folder))
    user = started(VisionUser, env)
    try:
        specs = user.specs()
        assert [(s.item_id, s.variant) for s in specs] == [
            ("big.jpg", "raw"),
            ("big.jpg", "optimized"),
            ("small.png", "raw"),
            ("small.png", "optimized"),
        ]
        outcomes = [user.execute(spec) for spec in specs]
        assert all(o.ok for o in outcomes), [o.error_message for o in outcomes]
        raw, optimized = outcomes[0], outcomes[1]
        assert optimized.request_bytes < raw.request_bytes
        # Gemini 3 counts an image by its media resolution, not its size: the pipeline saves bytes
        # and upload time, not tokens or cost.
        assert optimized.prompt_tokens == raw.prompt_tokens and optimized.cost_usd == raw.cost_usd
        assert optimized.prep_ms > 0 and raw.prep_ms == 0
        assert outcomes[3].request_bytes < outcomes[2].request_bytes  # a photo: PNG -> JPEG, same size

        # The report's raw-against-optimized figures, from these Outcomes as a request log.
        table = variant_comparison(request_log_frame(tmp_path / "run", [o.as_row() for o in outcomes]))
        by_mode = table.set_index("variant")
        assert by_mode.loc["optimized", "request_kb"] < by_mode.loc["raw", "request_kb"]
        assert by_mode.loc["optimized", "cost_per_1k"] == by_mode.loc["raw", "cost_per_1k"]
        assert by_mode.loc["raw", "items"] == by_mode.loc["optimized", "items"] == 2
    finally:
        user.on_stop()


def test_media_resolution_is_what_changes_image_tokens_on_gemini_3(
    make_env: Callable[..., Environment], tmp_path: Path
) -> None:
    folder = tmp_path / "shelves"
    write_image(folder / "big.jpg", (3000, 2000), quality=90)
    tokens = {}
    for resolution in ("", "low"):
        user = started(
            VisionUser, make_env([VisionUser], images_dir=str(folder), media_resolution=resolution)
        )
        try:
            (spec,) = user.specs()
            assert spec.media_resolution == ({"low": "MEDIA_RESOLUTION_LOW"}.get(resolution))
            outcome = user.execute(spec)
            assert outcome.ok, outcome.error_message
            tokens[resolution] = outcome.prompt_tokens
        finally:
            user.on_stop()
    images = catalogue().models[default_model()].images
    assert (
        tokens[""] - tokens["low"]
        == images.tokens_for(3000, 2000) - images.tokens_for(3000, 2000, "MEDIA_RESOLUTION_LOW")
        > 0
    )


def test_an_unknown_media_resolution_is_one_clear_error(make_env: Callable[..., Environment]) -> None:
    env = make_env([VisionUser], media_resolution="ultra")
    with pytest.raises(OptionError, match="--media-resolution 'ultra' is not known: use low, medium, high"):
        started(VisionUser, env).specs()


def test_stream_outcome_has_first_token_and_per_token_times(make_env: Callable[..., Environment]) -> None:
    env = make_env([StreamingUser], prompt_size="medium")
    user = started(StreamingUser, env)
    try:
        specs = user.specs()
        assert {s.variant for s in specs} == {"medium"} and all(s.stream for s in specs)
        # Thinking and answer share maxOutputTokens: each prompt's answer length plus the model's
        # thinking headroom at its default level.
        headroom = settings_of(env).thinking_headroom()
        assert headroom > 0
        assert {s.max_output_tokens for s in specs} <= {b + headroom for b in OUTPUT_BUDGETS.values()}
        long_answer = max(specs, key=lambda s: s.max_output_tokens or 0)
        out = user.execute(long_answer)
        assert out.ok, out.error_message
        assert out.finish_reason == "STOP" and out.thoughts_tokens
        assert out.ttft_ms is not None and 0 < out.ttft_ms <= out.last_chunk_ms <= out.e2e_ms
        assert out.chunk_count >= 2 and out.output_tokens
        assert out.output_tokens + out.thoughts_tokens <= long_answer.max_output_tokens
        assert out.tpot_ms is not None and out.tpot_ms > 0
        assert len(out.gaps_ms) == out.chunk_count - 1
        with pytest.raises(CallError, match="without answer text"):
            user.judge(long_answer, CallResult(text="  ", finish_reason="STOP"), out)
    finally:
        user.on_stop()


def test_an_explicit_max_output_tokens_caps_every_streamed_prompt(
    make_env: Callable[..., Environment],
) -> None:
    env = make_env([StreamingUser], max_output_tokens=150, prompt_size="medium")
    user = started(StreamingUser, env)
    try:
        assert {s.max_output_tokens for s in user.specs()} == {150}
    finally:
        user.on_stop()


def test_all_three_users_under_a_local_runner(make_env: Callable[..., Environment], tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    write_image(folder / "wide.jpg", (2600, 1200))
    env = make_env(
        [TextModerationUser, VisionUser, StreamingUser],
        image_mode="both",
        images_dir=str(folder),
        mix="moderation=2,vision=1,stream=1",
    )
    outcomes: list[Outcome] = []
    env.events.request.add_listener(lambda context=None, **_: outcomes.append(context["outcome"]))
    runner = env.create_local_runner()
    apply_mix(env)
    prepare_scenarios(env)
    runner.start(4, spawn_rate=100)

    def every_kind_seen() -> bool:
        done = {(o.scenario, o.variant if o.scenario == "vision" else "") for o in outcomes}
        return {("moderation", ""), ("stream", ""), ("vision", "raw"), ("vision", "optimized")} <= done

    try:
        wait_until(every_kind_seen, timeout=60, what="an outcome of every scenario and image variant")
    finally:
        runner.quit()

    names = {name for name, _ in env.stats.entries}
    assert names == {"moderation", "vision", "stream"}
    assert env.stats.total.num_failures == 0, [o.error_message for o in outcomes if o.failed]
    assert {o.variant for o in outcomes if o.scenario == "vision"} == {"raw", "optimized"}
    # runner.quit() cuts off the calls under way: those are cancelled, with no answer to check.
    answered = [o for o in outcomes if not o.cancelled]
    moderated = [o for o in answered if o.scenario == "moderation"]
    assert moderated and all(o.verdict in ("benign", "violating") for o in moderated)
    assert all(o.ttft_ms is not None for o in answered if o.scenario == "stream")
