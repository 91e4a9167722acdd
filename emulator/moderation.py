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
verdict fields say unsafe (see emulator.jsonfill).
"""

from __future__ import annotations

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
