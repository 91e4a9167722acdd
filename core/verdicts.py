"""The moderation verdict vocabulary: what the moderation scenario records and reports count.

A post the API itself blocks (a safety block, no answer) counts as the verdict BLOCKED_VERDICT: the
service refused the content, which for a moderation pipeline means it was judged violating.
"""

from __future__ import annotations

VIOLATING = "violating"
BENIGN = "benign"
BLOCKED_VERDICT = VIOLATING
