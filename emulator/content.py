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
  safe-sounding one when not), category fields (the marked categories), score fields (high or
  low) and confidence fields. The model gets the posts its `moderation_accuracy` misses wrong
  (the same hard posts for every model, fewer for a better one), and a batch of
  `<post id="ID">` blocks gets one verdict per block. Details: emulator.moderation, emulator.jsonfill.
- Thinking, by the model's rule (core.catalogue.Thinking): a level model takes one of its
  thinkingLevel values (default: its default level) and refuses a thinkingBudget unless it accepts
  one; a budget model refuses thinkingLevel and takes a budget in its range, 0 (off, where the
  model allows it) or -1 (dynamic). Thought tokens (thoughtsTokenCount, billed, and time before the
  first answer token) follow a lognormal around the level's median, capped by a budget. Thinking
  and answer share maxOutputTokens: the answer gets what thinking left (MAX_TOKENS when cut), and
  none at all when thinking used it up. includeThoughts adds a thought-summary part
  (`"thought": true`) before the answer.
- Function calling (tools with functionDeclarations): functionCall parts instead of text when the
  prompt asks for a declared function, a text that quotes the functionResponse parts once the
  client has run them. The rule: emulator.tools.

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

from emulator import jsonfill, moderation, tools
from emulator.errors import invalid_argument
from emulator.profiles import ModelProfile
from emulator.protocol import prompt_text, text_of
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
    calls: list[dict[str, Any]] = field(default_factory=list)  # functionCall parts, sent after the text
    call_tokens: int = 0  # what the calls cost as output

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def output_tokens(self) -> int:
        return len(self.pieces) + self.call_tokens


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
    """Cut a fixed text (JSON, enum value) into as many pieces as it counts tokens."""
    if not text:
        return []
    count = max(1, text_tokens(text))
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


THOUGHTS_SIGMA = 0.5  # spread of thought tokens around a level's median (lognormal shape)
_BOTH = "You can only set only one of thinking budget and thinking level."
_NO_LEVEL = "Thinking level is not supported for this model."
_NO_BUDGET = "Thinking budget is not supported for this model. Use thinking level instead."
_ALWAYS_THINKS = "Budget 0 is invalid. This model only works in thinking mode."


def _budget(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_argument(
            "Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), "
            f"{json.dumps(value)}"
        )
    return value


def _level(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_argument(
            f"Invalid value at 'generation_config.thinking_config.thinking_level', {json.dumps(value)}"
        )
    level = value.upper()
    return None if level == "THINKING_LEVEL_UNSPECIFIED" else level


def thoughts_for(rng: random.Random, config: dict[str, Any], profile: ModelProfile) -> int:
    """Thought tokens of one answer, before maxOutputTokens cuts them; raises the 400 the real API
    sends for a thinkingConfig the model does not take (a level model: its levels, and a budget
    only where accepts_budget; a budget model: no level, a budget in its range or 0 or -1)."""
    rule = profile.thinking_rule
    settings = config.get("thinkingConfig") or {}
    level = _level(settings.get("thinkingLevel"))
    budget = _budget(settings.get("thinkingBudget"))
    if level is not None and budget is not None:
        raise invalid_argument(_BOTH)
    if rule.control == "none":
        return 0
    medians = profile.thoughts_tokens_median
    if rule.control == "budget":
        if level is not None:
            raise invalid_argument(_NO_LEVEL)
        # 2.5 Flash-Lite thinks only when given a budget: its "on" figure, else "default".
        key = "on" if budget is not None and budget > 0 and "on" in medians else "default"
    else:
        if budget is not None and not rule.accepts_budget:
            raise invalid_argument(_NO_BUDGET)
        if level is not None and level not in rule.levels:
            raise invalid_argument(
                f"Thinking level {level} is not supported for this model. "
                f"Supported levels: {', '.join(rule.levels)}."
            )
        key = level or rule.default_level
    if budget == 0:
        if not rule.can_disable:
            raise invalid_argument(_ALWAYS_THINKS)
        return 0
    out_of_range = budget is not None and budget > 0 and not rule.budget_min <= budget <= rule.budget_max
    if budget is not None and (budget < -1 or (out_of_range and rule.budget_max > 0)):
        raise invalid_argument(f"The thinking budget ({budget}) is invalid.")
    if not profile.thinking:
        return 0
    count = round(lognormal_count(rng, profile.thoughts_median(key), THOUGHTS_SIGMA))
    return min(count, budget) if budget is not None and budget > 0 else count


def structured_text(
    config: dict[str, Any],
    rng: random.Random,
    verdict: moderation.Verdict,
    fallback: list[str],
    turn: str = "",
    accuracy: float = 1.0,
) -> str | None:
    """The answer text in JSON / enum mode, or None in plain-text mode. `turn`: the text of the
    current turn (the post, or a batch of them), judged with the model's `accuracy`."""
    mime = (config.get("responseMimeType") or "text/plain").lower()
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if mime == "application/json":
        if not schema:
            return json.dumps({"answer": "".join(fallback)}, ensure_ascii=False)
        answer = moderation.judged(turn, verdict.categories, accuracy)
        posts = [(i, p.categories, p.confidence) for i, p in moderation.judged_posts(turn, accuracy)]
        value = jsonfill.fill_schema(schema, rng, answer.categories, answer.confidence, posts)
        return json.dumps(value, ensure_ascii=False)
    if mime == "text/x.enum":
        if not schema or not schema.get("enum"):
            raise invalid_argument(
                "response_schema with an enum is required for response_mime_type text/x.enum."
            )
        return jsonfill.enum_answer(
            schema, rng, moderation.judged(turn, verdict.categories, accuracy).categories
        )
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
    thoughts = thoughts_for(rng, config, profile)
    gemini_3 = profile.thinking_rule.control == "level"
    tools.check_signatures(request, gemini_3)
    turn = tools.tool_turn(request, rng, gemini_3, thinks=thoughts > 0)
    if turn.calls:
        return _calling(turn, thoughts, limit, config, rng)
    plain = pseudo_text(rng, wanted)
    if turn.report:
        plain = split_tokens(turn.report + " ") + plain
    turns = request.get("contents") or []
    current = text_of(turns[-1]) if turns else ""
    structured = structured_text(config, rng, verdict, plain[:30], current, profile.moderation_accuracy)
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
    # Thinking and answer share maxOutputTokens: thinking that reaches it leaves no answer at all.
    if thoughts >= limit:
        thoughts, pieces, finish = limit, [], "MAX_TOKENS"
    elif len(pieces) > limit - thoughts:
        pieces = pieces[: limit - thoughts]
        finish = "MAX_TOKENS"
    summary = _summary(thoughts, config, rng)
    ratings = verdict.ratings if verdict.unsafe else []
    return Answer(
        pieces=pieces,
        finish_reason=finish,
        thoughts_tokens=thoughts,
        thought_summary=summary,
        safety_ratings=ratings,
    )


def _summary(thoughts: int, config: dict[str, Any], rng: random.Random) -> str:
    if thoughts and (config.get("thinkingConfig") or {}).get("includeThoughts"):
        # A summary, not the thoughts: about an eighth of them, so longer thinking streams more.
        return "**Thinking it through**\n\n" + "".join(pseudo_text(rng, min(400, max(20, thoughts // 8))))
    return ""


def _calling(
    turn: tools.ToolTurn, thoughts: int, limit: int, config: dict[str, Any], rng: random.Random
) -> Answer:
    """An answer of functionCall parts; thinking that uses all of maxOutputTokens leaves none."""
    if thoughts >= limit:
        return Answer(pieces=[], finish_reason="MAX_TOKENS", thoughts_tokens=limit)
    return Answer(
        pieces=[],
        thoughts_tokens=thoughts,
        thought_summary=_summary(thoughts, config, rng),
        calls=turn.calls,
        call_tokens=turn.call_tokens,
    )
