"""StreamingUser: chat answers streamed back, for time to first token and time per output token.

Prompts come from --prompts-file or the bundled set, filtered by --prompt-size (Outcome.variant is
the prompt's length bucket). Each prompt asks for a short, medium or long answer
(fixtures.chat.OUTPUT_BUDGETS); its maxOutputTokens is that plus room for the model's thinking,
capped by --max-output-tokens (GeminiSettings.output_cap). The base user
and the transport time every chunk (ttft_ms, gaps_ms, tpot_ms). A stream that ends without any
answer text is an invalid_response: there was nothing to time.
"""

from __future__ import annotations

from typing import ClassVar

from locust import between

from core import outcome as kinds
from core.outcome import Outcome
from fixtures.chat import ChatPrompt, load_chat_prompts
from users.base import GeminiUser
from users.call import CallResult, CallSpec, with_request_bytes
from users.errors import CallError
from users.scenario_options import PreparedCalls, ScenarioSettings, sized_in_fixed_order
from users.scenarios import register_scenario
from users.settings import GeminiSettings
from users.state import users_state

ORDER_SEED = 20260116
USER_STRIDE = 7


def build_stream_specs(settings: GeminiSettings, scenario: ScenarioSettings) -> list[CallSpec]:
    source = scenario.prompts_file or None
    empty = f"{source or 'the bundled chat prompts'}: no {scenario.prompt_size} prompts (--prompt-size)"
    prompts = sized_in_fixed_order(
        load_chat_prompts(source), lambda prompt: prompt.size, scenario, seed=ORDER_SEED, empty=empty
    )
    return [_spec(settings, prompt) for prompt in prompts]


def _spec(settings: GeminiSettings, prompt: ChatPrompt) -> CallSpec:
    spec = CallSpec(
        scenario=StreamingUser.scenario,
        parts=(prompt.text,),
        stream=True,
        **settings.call_fields(prompt.output_budget),
        variant=prompt.size,
        item_id=prompt.id,
    )
    return with_request_bytes(spec)


@register_scenario
class StreamingUser(PreparedCalls, GeminiUser):
    scenario: ClassVar[str] = "stream"
    weight = 1
    think_time = between(0.2, 1.0)

    build_specs = staticmethod(build_stream_specs)

    @staticmethod
    def check_inputs(scenario: ScenarioSettings) -> None:
        """Read the user's own prompts file, if any (raises FixtureError naming it)."""
        if scenario.prompts_file:
            load_chat_prompts(scenario.prompts_file)

    def start_index(self) -> int:
        # Users start apart in the (shuffled) prompt list, so a short run still sees a spread of
        # prompt and answer lengths.
        return users_state(self.environment).next_user_number(self.scenario) * USER_STRIDE

    def judge(self, spec: CallSpec, result: CallResult, outcome: Outcome) -> None:
        if not result.text.strip():
            raise CallError(
                kinds.INVALID_RESPONSE,
                f"the stream ended without answer text ({outcome.chunk_count} chunks, "
                f"finish reason {result.finish_reason or 'none'})",
            )
