"""countTokens with tools and a system instruction, and its agreement with generateContent.

google-genai 3.4.0 refuses CountTokensConfig(tools=..., system_instruction=...) itself for the
Developer API (ValueError before any request), so tools reach countTokens the way the REST API
documents it, inside `generateContentRequest`: over raw HTTP and through the legacy SDK, whose
count_tokens(tools=...) sends exactly that. google-genai's own count_tokens path that works is
contents holding function calls and responses (a tool loop's history).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from emu_http import LITE, MODEL, call_json, text_request
from google import genai
from google.genai import types
from test_emu_genai_sdk import make_client

from emulator.launcher import EmulatorProcess

PATH = f"/v1beta/models/{MODEL}"
DECLARATION = {
    "name": "get_weather",
    "description": "The forecast for a city, in celsius or fahrenheit.",
    "parameters_json_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def client(emulator: EmulatorProcess) -> genai.Client:
    return make_client(emulator.url)


def counted(url: str, body: dict[str, Any], model_path: str = PATH) -> int:
    status, reply = call_json(url, model_path + ":countTokens", {"generateContentRequest": body})
    assert status == 200, reply
    return reply["totalTokens"]


def test_tools_and_system_instruction_count_and_agree_with_generate(emulator: EmulatorProcess) -> None:
    plain = text_request("Weather in Paris, briefly.")
    with_tools = {**plain, "tools": [{"functionDeclarations": [DECLARATION]}]}
    with_system = {**with_tools, "systemInstruction": {"parts": [{"text": "You are a weather desk."}]}}
    counts = [counted(emulator.url, body) for body in (plain, with_tools, with_system)]
    assert counts[0] < counts[1] < counts[2]
    # A bigger declaration costs more.
    longer = {**DECLARATION, "description": DECLARATION["description"] * 3}
    assert counted(emulator.url, {**plain, "tools": [{"functionDeclarations": [longer]}]}) > counts[1]
    for body, count in zip((plain, with_tools, with_system), counts, strict=True):
        status, reply = call_json(emulator.url, PATH + ":generateContent", body)
        assert status == 200 and reply["usageMetadata"]["promptTokenCount"] == count
    # Keys in another order or case are the same declaration, at the same count.
    shuffled = {"parametersJsonSchema": DECLARATION["parameters_json_schema"], **DECLARATION}
    del shuffled["parameters_json_schema"]
    assert counted(emulator.url, {**plain, "tools": [{"functionDeclarations": [shuffled]}]}) == counts[1]


def test_bad_declaration_is_refused_by_count_tokens_too(emulator: EmulatorProcess) -> None:
    body = {**text_request("hi"), "tools": [{"functionDeclarations": [{"name": "no spaces"}]}]}
    status, reply = call_json(emulator.url, PATH + ":countTokens", {"generateContentRequest": body})
    assert status == 400 and "Invalid function name" in reply["error"]["message"]


def test_sdk_generate_with_tools_agrees_with_count_tokens(
    client: genai.Client, emulator: EmulatorProcess
) -> None:
    declaration = types.FunctionDeclaration.model_validate(DECLARATION)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[declaration])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    prompt = "Weather in Paris, briefly."
    reply = client.models.generate_content(model=MODEL, contents=prompt, config=config)
    body = {**text_request(prompt), "tools": [{"functionDeclarations": [DECLARATION]}]}
    assert reply.usage_metadata.prompt_token_count == counted(emulator.url, body)
    assert (
        reply.usage_metadata.prompt_token_count
        > client.models.count_tokens(model=MODEL, contents=prompt).total_tokens
    )


def test_sdk_refuses_tools_in_count_tokens_config_for_the_developer_api(client: genai.Client) -> None:
    """Why the tests above go through generateContentRequest: if a later SDK sends these fields,
    this fails and the emulator's countTokens should be checked against what it sends."""
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(name="f")])
    with pytest.raises(ValueError, match="only supported in Gemini Enterprise Agent Platform"):
        client.models.count_tokens(model=MODEL, contents="hi", config=types.CountTokensConfig(tools=[tool]))


def test_sdk_counts_a_tool_loop_history_like_generate(client: genai.Client) -> None:
    history = [
        types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")]),
        types.Content(
            role="model",
            parts=[
                types.Part(
                    function_call=types.FunctionCall(name="get_weather", args={"city": "Paris"}),
                    thought_signature=b"signature",
                )
            ],
        ),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"forecast": "rain"})],
        ),
    ]
    total = client.models.count_tokens(model=MODEL, contents=history).total_tokens
    first_turn = client.models.count_tokens(model=MODEL, contents=history[:1]).total_tokens
    assert total > first_turn
    reply = client.models.generate_content(model=MODEL, contents=history)
    assert reply.usage_metadata.prompt_token_count == total
    assert reply.text.startswith("get_weather returned")


def test_legacy_sdk_counts_tools(emulator: EmulatorProcess) -> None:
    """google-generativeai's count_tokens(tools=...) sends generateContentRequest with the tools."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import google.generativeai as legacy

    legacy.configure(api_key="legacy-key", transport="rest", client_options={"api_endpoint": emulator.url})

    def get_weather(city: str) -> str:
        """The forecast for a city."""
        return "rain"

    model = legacy.GenerativeModel(LITE)
    plain = model.count_tokens("Weather in Paris?").total_tokens
    assert model.count_tokens("Weather in Paris?", tools=[get_weather]).total_tokens > plain
