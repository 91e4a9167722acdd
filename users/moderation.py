"""TextModerationUser: posts checked for policy violations as they arrive, with a JSON verdict."""

from __future__ import annotations

import functools
import json

import jsonschema
from locust import between

from fixtures.moderation import Post, load_posts, verdict_schema
from users.base import GeminiUser
from users.call import CallResult, CallSpec
from users.outcome import Outcome
from users.verdicts import parse_json_answer

INSTRUCTION = (
    "You are a content moderator. Decide whether the user's post violates the policy "
    "(hate, harassment, sexual content, dangerous content). Answer only with JSON matching the schema."
)


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = verdict_schema()
    return jsonschema.validators.validator_for(schema)(schema)


class TextModerationUser(GeminiUser):
    scenario = "moderation"
    weight = 3
    wait_time = between(0.1, 0.5)
    _specs: list[CallSpec] | None = None

    def on_start(self) -> None:
        super().on_start()
        self._next = 0

    def specs(self) -> list[CallSpec]:
        # Built once per process and shared: fixtures are read-only, and building is CPU we keep
        # out of the load loop.
        cls = type(self)
        if cls._specs is None:
            cls._specs = [self.build_spec(post) for post in load_posts()]
        return cls._specs

    def build_spec(self, post: Post) -> CallSpec:
        schema = verdict_schema()
        return CallSpec(
            scenario=self.scenario,
            model=self.settings.model,
            parts=(post.text,),
            system_instruction=INSTRUCTION,
            max_output_tokens=self.settings.max_output_tokens,
            temperature=self.settings.temperature,
            response_mime_type="application/json",
            response_schema=schema,
            variant=post.length,
            item_id=post.id,
            expected=post.label,
            request_bytes=len(post.text.encode()) + len(INSTRUCTION) + len(json.dumps(schema)),
        )

    def next_call(self) -> CallSpec:
        specs = self.specs()
        # Users start at different offsets so the same post is seen by many users over the run.
        spec = specs[(id(self) + self._next) % len(specs)]
        self._next += 1
        return spec

    def judge(self, spec: CallSpec, result: CallResult, outcome: Outcome) -> None:
        answer = parse_json_answer(result.text, _validator())
        outcome.verdict = "violating" if answer["flagged"] else "benign"
