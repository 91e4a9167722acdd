"""A scenario from outside the suite's packages: one module, registered, with its own option.

Loaded by Locust next to the suite's locustfile: `-f locustfile.py,tests/e2e/plugins/toy_scenario.py`.
"""

from __future__ import annotations

from typing import ClassVar

from core.options import OptionError, OptionSpec
from users.base import GeminiUser
from users.call import CallSpec, with_request_bytes
from users.scenario_options import PreparedCalls, ScenarioSettings
from users.scenarios import register_scenario
from users.settings import GeminiSettings

WORDS = OptionSpec("--toy-words", "3", "toy: how many words each toy prompt asks for")


def build_toy_specs(settings: GeminiSettings, scenario: ScenarioSettings) -> list[CallSpec]:
    raw = scenario.option(WORDS.flag)
    if not raw.isdigit() or int(raw) < 1:
        raise OptionError(f"{WORDS.flag} {raw!r} is not a whole number above 0 (e.g. {WORDS.flag} 3)")
    return [
        with_request_bytes(
            CallSpec(
                scenario="toy",
                parts=(f"Say {raw} words about the number {n}.",),
                item_id=f"toy-{n}",
                # model, maxOutputTokens with room for thinking, the thinking options
                **settings.call_fields(),
            )
        )
        for n in range(4)
    ]


@register_scenario
class ToyUser(PreparedCalls, GeminiUser):
    scenario: ClassVar[str] = "toy"
    weight = 1
    options = (WORDS,)
    build_specs = staticmethod(build_toy_specs)
