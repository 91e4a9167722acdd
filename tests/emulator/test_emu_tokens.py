"""The emulator's text token estimate (emulator/tokens.py): calibrated on Google's published
figures, and closer to a tokenizer than bytes/4 where that rule is furthest off (code, CJK)."""

from __future__ import annotations

from emulator.tokens import json_tokens, text_tokens, tools_tokens

PROSE = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of "
    "Light, it was the season of Darkness. Load testing measures how a service behaves when many "
    "clients call it at once. A careful test ramps the number of users slowly, records the latency "
    "of every request, and reports percentiles rather than averages, because the slowest requests "
    "are the ones that users remember."
)
CODE = (
    "def prompt_tokens(request: dict[str, Any], images: Images) -> tuple[int, list[dict]]:\n"
    "    for index, part in enumerate(request['contents'][0]['parts']):\n"
    "        if part.get('text') is not None and index > 0:\n"
    "            total += 12 * len(part['text'])\n"
)


def test_the_published_example_and_the_rule_of_thumb() -> None:
    # https://ai.google.dev/api/tokens: countTokens says 10 for this sentence.
    assert text_tokens("The quick brown fox jumps over the lazy dog.") == 10
    # https://ai.google.dev/gemini-api/docs/tokens: ~4 characters a token, 60-80 words per 100.
    count = text_tokens(PROSE)
    assert 3.8 <= len(PROSE) / count <= 4.6
    assert 60 <= len(PROSE.split()) * 100 / count <= 80
    assert text_tokens("") == 0 and text_tokens(" ") == 0 and text_tokens("a") == 1


def test_code_digits_and_other_scripts_cost_more_per_character_than_prose() -> None:
    prose_rate = text_tokens(PROSE) / len(PROSE)
    assert text_tokens(CODE) / len(CODE) > 1.2 * prose_rate  # about 3 characters a token
    assert text_tokens("2026-01-15 12:34:56") >= 14  # a token per digit
    chinese = "今天天气很好我们去公园散步吧"
    assert 0.5 * len(chinese) <= text_tokens(chinese) <= len(chinese)
    russian = "Сегодня хорошая погода и мы идём гулять в парк"
    assert text_tokens(russian) / len(russian) > prose_rate
    # An accented word is one word, not pieces around each accent.
    assert text_tokens("naïve") == 2


def test_tools_count_as_their_canonical_json() -> None:
    declaration = {"name": "get_weather", "description": "The forecast.", "parameters": {"type": "OBJECT"}}
    reordered = dict(reversed(list(declaration.items())))
    assert tools_tokens([{"functionDeclarations": [declaration]}]) == json_tokens(declaration) > 0
    assert tools_tokens([{"functionDeclarations": [reordered]}]) == json_tokens(declaration)
    assert tools_tokens([{"googleSearch": {}}]) > 0 and tools_tokens(None) == 0
