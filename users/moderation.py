"""TextModerationUser: posts checked for policy violations as they arrive, with a JSON verdict.

Each call sends one labelled post (--posts-file, else the bundled set; --prompt-size picks a length
bucket) under a system instruction (a short one, or --policy-file's long policy before it: the same
few thousand tokens on every call, which is what context caching is for), asks for JSON matching fixtures/schemas/moderation_verdict.json and records the verdict
next to the label (Outcome.verdict / expected, variant = the post's length bucket). A blocked
prompt is an answer: verdict "violating", error_kind "blocked" (see users.verdicts for how it
counts). Every moderation user walks the same shuffled order of posts from the start, so each post
is judged several times while the others load the service: that is what consistency is scored on.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from locust import between

from core import outcome as kinds
from core.options import OptionError, OptionSpec
from core.outcome import Outcome
from core.textfile import UnreadableText, read_text_file
from core.verdicts import BLOCKED_VERDICT
from fixtures.moderation import Post, load_posts, verdict_schema
from users.base import GeminiUser
from users.call import CallResult, CallSpec, with_request_bytes
from users.scenario_options import PreparedCalls, ScenarioSettings, sized_in_fixed_order
from users.scenarios import register_scenario
from users.settings import GeminiSettings
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
POLICY_FILE = OptionSpec(
    "--policy-file",
    "",
    "moderation: a long content policy (a text file) sent as the system instruction on every call, as real "
    "moderation apps do; repeated prompts meet context caching (cached tokens, lower cost). Example: "
    "fixtures/data/moderation_policy.md",
)
ORDER_SEED = 20260115  # the shuffled order of posts: same for every user and every run


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    return validator_for(verdict_schema())


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
    schema = verdict_schema()
    return [_spec(settings, schema, post, instruction) for post in posts]


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


@register_scenario
class TextModerationUser(PreparedCalls, GeminiUser):
    scenario: ClassVar[str] = "moderation"
    weight = 3
    think_time = between(0.1, 0.5)

    build_specs = staticmethod(build_moderation_specs)  # every user starts at the first post
    options = (POLICY_FILE,)

    @staticmethod
    def check_inputs(scenario: ScenarioSettings) -> None:
        """Read the user's own posts and policy files, if any (raises FixtureError or OptionError)."""
        system_instruction(scenario)
        if scenario.posts_file:
            load_posts(scenario.posts_file)

    def judge(self, spec: CallSpec, result: CallResult, outcome: Outcome) -> None:
        outcome.verdict = moderation_verdict(parse_json_answer(result.text, _validator()))

    def execute(self, spec: CallSpec) -> Outcome:
        out = super().execute(spec)
        if out.error_kind == kinds.BLOCKED:
            out.verdict = BLOCKED_VERDICT
        return out
