"""Deterministic moderation: which prompts are unsafe, and whether safetySettings block them.

Markers (put them in the text of a prompt, e.g. a fixture post):
    [[unsafe:hate]]        -> HARM_CATEGORY_HATE_SPEECH
    [[unsafe:harassment]]  -> HARM_CATEGORY_HARASSMENT
    [[unsafe:sexual]]      -> HARM_CATEGORY_SEXUALLY_EXPLICIT
    [[unsafe:dangerous]]   -> HARM_CATEGORY_DANGEROUS_CONTENT
    [[unsafe:civic]]       -> HARM_CATEGORY_CIVIC_INTEGRITY
An optional level sets the probability: `[[unsafe:hate:low]]`, `:medium`, `:high` (default high).

Blocking follows the request's safetySettings for that category:
    BLOCK_LOW_AND_ABOVE blocks LOW, MEDIUM, HIGH; BLOCK_MEDIUM_AND_ABOVE (also the default when no
    setting is given) blocks MEDIUM and HIGH; BLOCK_ONLY_HIGH blocks HIGH; BLOCK_NONE and OFF never block.
A blocked prompt gets no candidates and `promptFeedback.blockReason = "SAFETY"` with safetyRatings.

`[[unsafe-output:CATEGORY]]` instead marks the *answer* as unsafe: the prompt passes, the answer
starts, and the candidate ends early with `finishReason = "SAFETY"` (when the setting blocks it).

Prompts whose markers are not blocked (BLOCK_NONE / OFF) get a normal answer; in JSON mode the
verdict fields say what the model judged (see emulator.jsonfill).

What the model judges (`judged`): right or wrong by the model's modelled `moderation_accuracy`
(the catalogue's emulator block). A post's difficulty u in [0, 1) is a stable hash (BLAKE2b) of
its text alone, whitespace runs folded: not of the model, the seed or the system instruction. A
model answers it wrong when u >= its accuracy, so the wrong sets are nested: a better model is
wrong only where a weaker one is too, which is what makes escalating to it worth measuring. A wrong
answer flips the verdict: a marked post is answered safe, a clean one flagged with one category
(picked by the same hash). The answer's confidence follows from u as well: right answers high
(0.82 to 0.98), except the EDGE_BAND share nearest the accuracy edge (0.6 to 0.8), wrong answers
low (0.3 to 0.68), except the CONFIDENT_WRONG share that the model is sure of (0.8 to 0.95): a
confidence threshold escalates some right answers and misses a few wrong ones, as in production.
A prompt's text for this is its `contents` (the post as the suite sends it), so the same post has
the same difficulty alone and in a batch.

Batches (`posts_in`): blocks `<post id="ID">TEXT</post>` (any tag word, an `id` attribute) in the
contents are judged one by one from their own text and markers. Blocking stays per prompt, as the
real API blocks a whole prompt when any part of it is blocked: one blocked post blocks its batch.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

CATEGORY_BY_MARKER = {
    "hate": "HARM_CATEGORY_HATE_SPEECH",
    "harassment": "HARM_CATEGORY_HARASSMENT",
    "sexual": "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "dangerous": "HARM_CATEGORY_DANGEROUS_CONTENT",
    "civic": "HARM_CATEGORY_CIVIC_INTEGRITY",
}
RATED_CATEGORIES = (
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
)
LEVELS = {"low": "LOW", "medium": "MEDIUM", "high": "HIGH"}
_RANK = {"NEGLIGIBLE": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3}
# Lowest probability each threshold blocks; None: never blocks.
_BLOCKS_FROM = {
    "BLOCK_LOW_AND_ABOVE": 1,
    "BLOCK_MEDIUM_AND_ABOVE": 2,
    "BLOCK_ONLY_HIGH": 3,
    "BLOCK_NONE": None,
    "OFF": None,
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED": 2,
}
DEFAULT_THRESHOLD = "BLOCK_MEDIUM_AND_ABOVE"
MARKER = re.compile(r"\[\[unsafe(-output)?:([a-z]+)(?::(low|medium|high))?\]\]", re.IGNORECASE)


@dataclass(slots=True, frozen=True)
class Finding:
    category: str  # HARM_CATEGORY_*
    probability: str  # LOW | MEDIUM | HIGH
    in_output: bool  # [[unsafe-output:...]]: the answer, not the prompt, is unsafe


@dataclass(slots=True)
class Verdict:
    findings: list[Finding]
    prompt_blocked: bool
    output_blocked: bool
    ratings: list[dict[str, Any]]

    @property
    def unsafe(self) -> bool:
        return bool(self.findings)

    @property
    def categories(self) -> list[str]:
        return sorted({f.category for f in self.findings})


def find_markers(text: str) -> list[Finding]:
    if "[[unsafe" not in text:  # the common case stays cheap
        return []
    findings = []
    for match in MARKER.finditer(text):
        category = CATEGORY_BY_MARKER.get(match.group(2).lower())
        if category is None:
            continue
        level = LEVELS[(match.group(3) or "high").lower()]
        findings.append(Finding(category, level, bool(match.group(1))))
    return findings


def thresholds(request: dict[str, Any]) -> dict[str, str]:
    return {
        s.get("category", ""): s.get("threshold", DEFAULT_THRESHOLD)
        for s in request.get("safetySettings") or []
    }


def blocks(threshold: str, probability: str) -> bool:
    start = _BLOCKS_FROM.get(threshold, 2)
    return start is not None and _RANK[probability] >= start


_SAFE_RATINGS = [{"category": c, "probability": "NEGLIGIBLE"} for c in RATED_CATEGORIES]


def judge(text: str, request: dict[str, Any]) -> Verdict:
    findings = find_markers(text)
    if not findings:
        return Verdict([], False, False, _SAFE_RATINGS)
    settings = thresholds(request)
    worst: dict[str, str] = {}
    prompt_blocked = output_blocked = False
    blocked_categories: set[str] = set()
    for finding in findings:
        if _RANK[finding.probability] > _RANK[worst.get(finding.category, "NEGLIGIBLE")]:
            worst[finding.category] = finding.probability
        if blocks(settings.get(finding.category, DEFAULT_THRESHOLD), finding.probability):
            blocked_categories.add(finding.category)
            if finding.in_output:
                output_blocked = True
            else:
                prompt_blocked = True
    ratings = []
    for category in sorted(set(RATED_CATEGORIES) | set(worst)):
        rating: dict[str, Any] = {"category": category, "probability": worst.get(category, "NEGLIGIBLE")}
        if category in blocked_categories:
            rating["blocked"] = True
        ratings.append(rating)
    return Verdict(findings, prompt_blocked, output_blocked and not prompt_blocked, ratings)


# Shares of the confidence model (see the module docstring): right answers nearest the accuracy
# edge answer with middling confidence, and some wrong answers are confidently wrong.
EDGE_BAND = 0.06
CONFIDENT_WRONG = 0.03
_POST_BLOCK = re.compile(
    r"""<(\w+)\b[^<>]*?(?<![\w-])id\s*=\s*(?:"([^"]*)"|'([^']*)')[^<>]*>(.*?)</\1\s*>""", re.DOTALL
)


@dataclass(slots=True, frozen=True)
class Judged:
    """What the emulated model answers about one post."""

    categories: tuple[str, ...]  # HARM_CATEGORY_* it answers; empty: it says safe
    confidence: float  # 0..1
    correct: bool


def difficulty(text: str) -> tuple[float, float, float]:
    """Three independent uniform draws in [0, 1) from the post's text: its difficulty u, then the
    draws that pick a confidently wrong answer and a wrong answer's category."""
    folded = " ".join(text.split())
    digest = hashlib.blake2b(folded.encode("utf-8", "surrogatepass"), digest_size=24).digest()
    u, sure, pick = (int.from_bytes(digest[i : i + 8], "big") / 2.0**64 for i in (0, 8, 16))
    return u, sure, pick


def judged(text: str, categories: list[str] | tuple[str, ...], accuracy: float) -> Judged:
    """The model's answer about `text`, whose markers name `categories` (empty: a clean post)."""
    u, sure, pick = difficulty(text)
    if u < accuracy:
        margin = (accuracy - u) / accuracy
        if margin < EDGE_BAND:
            confidence = 0.6 + 0.2 * margin / EDGE_BAND
        else:
            confidence = 0.82 + 0.16 * (margin - EDGE_BAND) / (1 - EDGE_BAND)
        return Judged(tuple(categories), round(confidence, 3), True)
    if sure < CONFIDENT_WRONG:
        confidence = 0.8 + 0.15 * sure / CONFIDENT_WRONG
    else:
        confidence = 0.68 - 0.38 * (u - accuracy) / (1 - accuracy)
    answered = () if categories else (RATED_CATEGORIES[int(pick * len(RATED_CATEGORIES))],)
    return Judged(answered, round(confidence, 3), False)


def posts_in(text: str) -> list[tuple[str, str]]:
    """(id, text) of each `<post id="ID">TEXT</post>` block in a batched prompt, in order."""
    if "</" not in text:  # the common case stays cheap
        return []
    return [
        (m.group(2) if m.group(2) is not None else m.group(3), m.group(4)) for m in _POST_BLOCK.finditer(text)
    ]


def judged_posts(text: str, accuracy: float) -> list[tuple[str, Judged]]:
    """Each block of a batched prompt with the model's answer about it, from its own text."""
    return [
        (post_id, judged(body, sorted({f.category for f in find_markers(body)}), accuracy))
        for post_id, body in posts_in(text)
    ]
