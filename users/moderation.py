"""TextModerationUser: posts checked for policy violations as they arrive, with a JSON verdict.

Each call sends one labelled post (--posts-file, else the bundled set; --prompt-size picks a length
bucket) under a system instruction (a short one, or --policy-file's long policy before it: the same
few thousand tokens on every call, which is what context caching is for), asks for JSON matching fixtures/schemas/moderation_verdict.json and records the verdict
next to the label (Outcome.verdict / expected, variant = the post's length bucket). A blocked
prompt is an answer: verdict "violating", error_kind "blocked" (see users.verdicts for how it
counts). Every moderation user walks the same shuffled order of posts from the start, so each post
is judged several times while the others load the service: that is what consistency is scored on.

--batch-size N sends N consecutive posts of that order in one call (fixtures.moderation.batch_prompt)
and asks for one verdict per post, by id (batch_verdict_schema). The Outcome's item_id, expected and
verdict then hold the N values joined by core.outcome.ITEM_SEPARATOR, in the batch's order, and its
confidence is the least sure item's. An answer that misses a post, names one not in the batch or
judges one twice is an invalid_response; a blocked batch (the API blocks the whole prompt) gives
every post the blocked verdict. The batches cycle through the order so every post is sent equally
often, each batch prepared once.

With --escalate-to (users/tiering.py) a whole batch is escalated when any of its posts is unsure:
escalating single posts would need a second, smaller batch per call, prepared on the fly in the
timed path; the report shows what the whole-batch rule costs (escalation rate, cost per post).
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from locust import between

from core import outcome as kinds
from core.options import OptionError, OptionSpec
from core.outcome import ITEM_SEPARATOR, Outcome
from core.textfile import UnreadableText, read_text_file
from core.verdicts import BLOCKED_VERDICT
from fixtures.moderation import (
    Post,
    batch_prompt,
    batch_verdict_schema,
    check_batchable,
    load_posts,
    verdict_schema,
)
from users.base import GeminiUser
from users.call import CallResult, CallSpec, with_request_bytes
from users.context_cache import (
    CONTEXT_CACHE,
    CacheNotCreated,
    cache_failure,
    context_cache_mode,
    explicit_cache,
)
from users.errors import CallCancelled, CallError
from users.scenario_options import PreparedCalls, ScenarioSettings, scenario_settings, sized_in_fixed_order
from users.scenarios import register_scenario
from users.settings import ANSWER_TOKENS, GeminiSettings
from users.tiering import TIERING_OPTIONS, check_escalation_model, tiered_answer, tiering_of
from users.verdicts import moderation_verdict, parse_json_answer, validator_for

if TYPE_CHECKING:  # jsonschema is imported during preparation, off the event loop
    import jsonschema

INSTRUCTION = (
    "You are a content moderator. Decide whether the user's post violates the policy "
    "(hate, harassment, sexual content, dangerous content). Answer only with JSON matching the schema."
)
# Sent explicitly so a run does not depend on the API's default thresholds, which have changed
# between model generations. Medium and above: the bundled set's `:low` markers are answered (and
# must be flagged by the verdict), the others are blocked.
SAFETY_SETTINGS = tuple(
    (category, "BLOCK_MEDIUM_AND_ABOVE")
    for category in (
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
    )
)
# A batch is judged by the model, not by the safety filter: the filter blocks a whole prompt for one
# post over its threshold, so at BLOCK_MEDIUM_AND_ABOVE one harmful post in 8 takes the 7 others'
# verdicts with it (on the bundled set nearly every batch of 8 was blocked). Batched moderation apps
# turn the filter off for the posts they are asked to judge, as here.
BATCH_SAFETY_SETTINGS = tuple((category, "BLOCK_NONE") for category, _ in SAFETY_SETTINGS)
POLICY_FILE = OptionSpec(
    "--policy-file",
    "",
    "moderation: a long content policy (a text file) sent as the system instruction on every call, as real "
    "moderation apps do; repeated prompts meet context caching (cached tokens, lower cost). Example: "
    "fixtures/data/moderation_policy.md",
)
BATCH_SIZE = OptionSpec(
    "--batch-size",
    "1",
    "moderation: posts per call (1 to 50). Above 1, each call carries that many posts as <post> blocks "
    "and asks for one verdict per post",
)
MAX_BATCH = 50
ORDER_SEED = 20260115  # the shuffled order of posts: same for every user and every run


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    return validator_for(verdict_schema())


@functools.cache
def _batch_validator(size: int) -> jsonschema.protocols.Validator:
    return validator_for(batch_verdict_schema(size))


def batch_size(scenario: ScenarioSettings) -> int:
    """--batch-size as a whole number from 1 to MAX_BATCH; OptionError (one line) otherwise."""
    raw = scenario.option(BATCH_SIZE.flag).strip() or BATCH_SIZE.default
    try:
        size = int(raw)
    except ValueError:
        raise OptionError(f"--batch-size {raw!r} is not a whole number: give 1 to {MAX_BATCH}") from None
    if not 1 <= size <= MAX_BATCH:
        raise OptionError(f"--batch-size {size} is out of range: give 1 (one post per call) to {MAX_BATCH}")
    return size


def batched(posts: list[Post], size: int) -> list[list[Post]]:
    """Consecutive runs of `size` posts through the order, wrapping round until a batch would start
    at the first post again: every post is in the same number of batches (size / gcd)."""
    count = len(posts) // math.gcd(len(posts), size)
    return [[posts[(start * size + k) % len(posts)] for k in range(size)] for start in range(count)]


def batch_of(spec: CallSpec) -> int:
    """How many posts a prepared moderation spec carries (its schema says: one verdict per post)."""
    verdicts = (spec.response_schema or {}).get("properties", {}).get("verdicts")
    return int(verdicts["minItems"]) if verdicts else 1


def system_instruction(scenario: ScenarioSettings) -> str:
    """The short instruction, after --policy-file's policy when one is given; OptionError (one line)
    for a file that cannot be read or holds no text."""
    path = scenario.option(POLICY_FILE.flag)
    if not path:
        return INSTRUCTION
    try:
        policy = read_text_file(Path(path)).strip()
    except UnreadableText as exc:
        raise OptionError(f"--policy-file {path}: {exc.reason}: give a text file with your policy") from None
    if not policy:
        raise OptionError(f"--policy-file {path}: the file is empty: give a text file with your policy")
    return f"{policy}\n\n{INSTRUCTION}"


def build_moderation_specs(settings: GeminiSettings, scenario: ScenarioSettings) -> list[CallSpec]:
    instruction = system_instruction(scenario)
    source = scenario.posts_file or None
    empty = f"{source or 'the bundled moderation set'}: no {scenario.prompt_size} posts (--prompt-size)"
    posts = sized_in_fixed_order(
        load_posts(source), lambda post: post.length, scenario, seed=ORDER_SEED, empty=empty
    )
    tiers = tiering_of(scenario)
    if tiers is not None:
        check_escalation_model(tiers.escalate_to, settings.model)
    context_cache_mode(scenario.option(CONTEXT_CACHE.flag), settings.transport)
    size = batch_size(scenario)
    if size == 1:
        schema = verdict_schema()
        return [_spec(settings, schema, post, instruction) for post in posts]
    check_batchable(posts, source or "the bundled moderation set")
    if size > len(posts):
        raise OptionError(
            f"--batch-size {size} is more than the {len(posts)} {scenario.prompt_size} posts: give at most {len(posts)}"
        )
    schema = batch_verdict_schema(size)
    return [_batch_spec(settings, schema, batch, instruction) for batch in batched(posts, size)]


def _spec(settings: GeminiSettings, schema: dict, post: Post, instruction: str) -> CallSpec:
    spec = CallSpec(
        scenario=TextModerationUser.scenario,
        parts=(post.text,),
        system_instruction=instruction,
        **settings.call_fields(),
        response_mime_type="application/json",
        response_schema=schema,
        safety_settings=SAFETY_SETTINGS,
        variant=post.length,
        item_id=post.id,
        expected=post.label,
    )
    return with_request_bytes(spec)


def _batch_spec(settings: GeminiSettings, schema: dict, posts: list[Post], instruction: str) -> CallSpec:
    spec = CallSpec(
        scenario=TextModerationUser.scenario,
        parts=(batch_prompt(posts),),
        system_instruction=instruction,
        **settings.call_fields(len(posts) * ANSWER_TOKENS),
        response_mime_type="application/json",
        response_schema=schema,
        safety_settings=BATCH_SAFETY_SETTINGS,
        item_id=ITEM_SEPARATOR.join(post.id for post in posts),
        expected=ITEM_SEPARATOR.join(post.label for post in posts),
    )
    return with_request_bytes(spec)


def judge_batch(spec: CallSpec, text: str, outcome: Outcome) -> None:
    """One verdict per post of the batch, in the batch's order, and the least sure confidence;
    CallError(invalid_response) for a post missing, one not in the batch or one judged twice."""
    size = batch_of(spec)
    ids = spec.item_id.split(ITEM_SEPARATOR)
    by_id: dict[str, dict] = {}
    for verdict in parse_json_answer(text, _batch_validator(size))["verdicts"]:
        if verdict["id"] in by_id:
            raise CallError(kinds.INVALID_RESPONSE, "the answer judges one post of the batch twice")
        by_id[verdict["id"]] = verdict
    missing = [post for post in ids if post not in by_id]
    if missing:
        # Our own ids only: the answer's are the model's text, never copied into a message.
        raise CallError(
            kinds.INVALID_RESPONSE,
            f"the answer has no verdict for {len(missing)} of the batch's {size} posts (first: {missing[0]})",
        )
    outcome.verdict = ITEM_SEPARATOR.join(moderation_verdict(by_id[post]) for post in ids)
    outcome.confidence = min(float(by_id[post]["confidence"]) for post in ids)


@register_scenario
class TextModerationUser(PreparedCalls, GeminiUser):
    scenario: ClassVar[str] = "moderation"
    weight = 3
    think_time = between(0.1, 0.5)

    build_specs = staticmethod(build_moderation_specs)  # every user starts at the first post
    options = (POLICY_FILE, CONTEXT_CACHE, BATCH_SIZE, *TIERING_OPTIONS)

    @staticmethod
    def check_inputs(scenario: ScenarioSettings) -> None:
        """Read the user's own posts and policy files, if any, and check the batch size and tiering
        (raises FixtureError or OptionError)."""
        system_instruction(scenario)
        context_cache_mode(scenario.option(CONTEXT_CACHE.flag))
        batch_size(scenario)
        tiering_of(scenario)
        if scenario.posts_file:
            posts = load_posts(scenario.posts_file)
            if batch_size(scenario) > 1:
                check_batchable(posts, scenario.posts_file)

    def judge(self, spec: CallSpec, result: CallResult, outcome: Outcome) -> None:
        if batch_of(spec) > 1:
            judge_batch(spec, result.text, outcome)
            return
        answer = parse_json_answer(result.text, _validator())
        outcome.verdict = moderation_verdict(answer)
        outcome.confidence = float(answer["confidence"])

    def on_start(self) -> None:
        super().on_start()
        scenario = scenario_settings(self.environment)
        self._explicit_cache = (
            bool(scenario.option(POLICY_FILE.flag))
            and context_cache_mode(scenario.option(CONTEXT_CACHE.flag)) == "explicit"
        )

    def answer(self, spec: CallSpec) -> Outcome:
        if self._explicit_cache:
            # The cache is made by the first call that needs it, before that call's timing starts;
            # a cache that cannot be made is that call's failure (never a silent implicit run).
            cache = explicit_cache(self.environment)
            started = time.perf_counter()
            try:
                spec = cache.spec_for(
                    spec, base_url=self.host or self.environment.host, api_key=self.settings.api_key
                )
            except CacheNotCreated as failed:
                out = cache_failure(spec, self.transport.name, failed)
                out.e2e_ms = (time.perf_counter() - started) * 1000.0  # the user waited for the refusal
                out.batch_size = batch_of(spec)  # every post of the batch went unanswered
                return out
        return tiered_answer(self, spec)

    def execute(self, spec: CallSpec) -> Outcome:
        try:
            out = super().execute(spec)
        except CallCancelled as stop:  # cut off by the run's stop: its posts are still counted
            stop.outcome.batch_size = batch_of(spec)
            raise
        out.batch_size = batch_of(spec)
        if out.error_kind == kinds.BLOCKED:
            # A blocked prompt blocks every post in it.
            out.verdict = ITEM_SEPARATOR.join([BLOCKED_VERDICT] * out.batch_size)
        return out
