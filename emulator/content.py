"""What the emulated model answers, decided before any byte is sent.

- Text: deterministic pseudo-text whose length follows a lognormal (median, sigma, clipped to
  [min, max]) from the model profile; maxOutputTokens cuts it, with finishReason MAX_TOKENS.
  stopSequences cut it too (finishReason STOP).
- JSON mode (responseMimeType application/json with responseSchema or responseJsonSchema): a value
  that validates against the schema, filled as emulator.jsonfill describes (verdict-like fields
  follow the prompt's unsafe markers). Without a schema: {"answer": "<text>"}.
  text/x.enum with an enum schema: one enum value.
- Moderation: markers in the prompt text, `[[unsafe:hate]]`, `[[unsafe:harassment]]`,
  `[[unsafe:sexual]]`, `[[unsafe:dangerous]]` (also `civic`, and an optional `:low|:medium|:high`),
  block the prompt (promptFeedback.blockReason SAFETY, no candidates) when the request's
  safetySettings threshold for that category covers the level; BLOCK_NONE and OFF never block and
  no setting means BLOCK_MEDIUM_AND_ABOVE. `[[unsafe-output:CATEGORY]]` cuts the answer with
  finishReason SAFETY instead. Details: emulator.moderation.
- The verdict rule in JSON mode: the schema is filled deterministically from a hash of the
  prompt, except fields whose names say verdict: booleans like `flagged`/`violation`/`unsafe`
  (true when the prompt carries a marker that was not blocked) or `safe`/`allowed` (the opposite),
  enums/strings like `verdict`/`label`/`decision` (an unsafe-sounding value when marked, a
  safe-sounding one when not), category fields (the marked categories) and score fields (high or
  low). Details: emulator.jsonfill.
- Thinking: 2.5 Flash and Pro think by default (thoughtsTokenCount, billed, and time before the
  first answer token); thinkingBudget caps it, 0 turns it off where the real model allows it.
  includeThoughts adds a thought-summary part (`"thought": true`) before the answer.

Determinism: every choice comes from a random.Random seeded with a hash of (emulator seed, model,
prompt text), so the same prompt gives the same answer, run after run.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

from emulator import jsonfill, moderation
from emulator.errors import invalid_argument
from emulator.profiles import ModelProfile
from emulator.protocol import prompt_text
from emulator.tokens import text_tokens

_WORD_LIST = (
    "the of and to in is that for it as with was on be by this are or from at an which have not but "
    "model request token latency stream answer system signal value load queue server client window "
    "quota result sample measure window steady rising careful simple clear output prompt image data "
    "review policy content verdict safe label context reason detail summary example pattern"
)
WORDS = tuple(_WORD_LIST.split())


@dataclass(slots=True)
class Answer:
    """Everything a response needs, before it is cut into chunks."""

    pieces: list[str]  # answer text, one string per output token
    finish_reason: str = "STOP"
    thoughts_tokens: int = 0
    thought_summary: str = ""  # sent as a `thought: true` part when includeThoughts is set
    block_reason: str = ""  # set when the prompt itself is blocked: no candidates
    safety_ratings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def output_tokens(self) -> int:
        return len(self.pieces)


def rng_for(seed: int | None, model: str, text: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{model}\x00{text}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def lognormal_count(rng: random.Random, median: float, sigma: float) -> float:
    if median <= 0:
        return 0.0
    return rng.lognormvariate(math.log(median), sigma) if sigma > 0 else median


def target_length(rng: random.Random, profile: ModelProfile) -> int:
    length = lognormal_count(rng, max(profile.output_tokens_median, 1.0), profile.output_tokens_sigma)
    return int(min(max(round(length), profile.output_tokens_min), profile.output_tokens_max))


def pseudo_text(rng: random.Random, count: int) -> list[str]:
    """`count` token pieces that read as sentences: a word each, capitalised after a full stop."""
    pieces: list[str] = []
    capital = True
    for i in range(count):
        word = rng.choice(WORDS)
        if capital:
            word = word.capitalize()
        capital = False
        end = ""
        if i == count - 1 or rng.random() < 0.09:
            end = "."
            capital = True
        pieces.append(("" if i == 0 else " ") + word + end)
    return pieces


def split_tokens(text: str) -> list[str]:
    """Cut a fixed text (JSON, enum value) into pieces that each count as one token (4 bytes)."""
    if not text:
        return []
    count = text_tokens(text)
    size = math.ceil(len(text) / count)
    return [text[i : i + size] for i in range(0, len(text), size)]


def max_output_tokens(config: dict[str, Any], profile: ModelProfile) -> int:
    limit = config.get("maxOutputTokens")
    try:
        limit = int(limit) if limit is not None else profile.output_token_limit
    except (TypeError, ValueError):
        raise invalid_argument(
            f"Invalid value at 'generation_config.max_output_tokens' ({limit!r})"
        ) from None
    return max(1, min(limit, profile.output_token_limit))


def thoughts_for(rng: random.Random, config: dict[str, Any], profile: ModelProfile, model: str) -> int:
    if not profile.thinking:
        return 0
    thinking = config.get("thinkingConfig") or {}
    budget = thinking.get("thinkingBudget")
    budget = -1 if budget is None else int(budget)
    if budget == 0:
        if "pro" in model:
            raise invalid_argument("Budget 0 is invalid. This model only works in thinking mode.")
        return 0
    count = round(lognormal_count(rng, profile.thoughts_tokens_median, 0.5))
    return min(count, budget) if budget > 0 else count


def structured_text(
    config: dict[str, Any], rng: random.Random, verdict: moderation.Verdict, fallback: list[str]
) -> str | None:
    """The answer text in JSON / enum mode, or None in plain-text mode."""
    mime = (config.get("responseMimeType") or "text/plain").lower()
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    categories = verdict.categories
    if mime == "application/json":
        value = jsonfill.fill_schema(schema, rng, categories) if schema else {"answer": "".join(fallback)}
        return json.dumps(value, ensure_ascii=False)
    if mime == "text/x.enum":
        if not schema or not schema.get("enum"):
            raise invalid_argument(
                "response_schema with an enum is required for response_mime_type text/x.enum."
            )
        return jsonfill.enum_answer(schema, rng, categories)
    if mime not in ("text/plain", ""):
        raise invalid_argument(
            f"* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes are "
            f"`text/plain`, `application/json`, `application/xml`, `application/yaml` and `text/x.enum`, "
            f"got {mime}.\n"
        )
    return None


def answer_for(request: dict[str, Any], model: str, profile: ModelProfile, seed: int | None) -> Answer:
    text = prompt_text(request)
    rng = rng_for(seed, model, text)
    config = request.get("generationConfig") or {}
    verdict = moderation.judge(text, request)
    if verdict.prompt_blocked:
        return Answer(pieces=[], finish_reason="", block_reason="SAFETY", safety_ratings=verdict.ratings)
    wanted = target_length(rng, profile)
    limit = max_output_tokens(config, profile)
    thoughts = thoughts_for(rng, config, profile, model)
    plain = pseudo_text(rng, wanted)
    structured = structured_text(config, rng, verdict, plain[:30])
    pieces = split_tokens(structured) if structured is not None else plain
    finish = "STOP"
    for stop in config.get("stopSequences") or []:
        joined = "".join(pieces)
        if stop and stop in joined:
            pieces = split_tokens(joined[: joined.index(stop)])
    if verdict.output_blocked:
        # The answer starts, then the output filter stops it.
        pieces = pieces[: max(1, len(pieces) // 2)]
        finish = "SAFETY"
    if len(pieces) > limit:
        pieces = pieces[:limit]
        finish = "MAX_TOKENS"
    summary = ""
    if thoughts and (config.get("thinkingConfig") or {}).get("includeThoughts"):
        summary = "**Thinking it through**\n\n" + "".join(pseudo_text(rng, 20))
    ratings = verdict.ratings if verdict.unsafe else []
    return Answer(
        pieces=pieces,
        finish_reason=finish,
        thoughts_tokens=thoughts,
        thought_summary=summary,
        safety_ratings=ratings,
    )
