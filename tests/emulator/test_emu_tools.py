"""Function calling against the emulator with the real google-genai SDK: its automatic function
calling runs the loop, a disabled loop hands back schema-valid calls, mode NONE and ANY, streaming,
Gemini 3's thought signatures and the API's 400 for a bad declaration."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from emu_http import LITE, MODEL, call_json, text_request
from google import genai
from google.genai import errors, types
from test_emu_genai_sdk import make_client

from emulator.launcher import EmulatorProcess

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit", "days"],
}
WEATHER = types.FunctionDeclaration(
    name="get_weather", description="The forecast for a city.", parameters_json_schema=WEATHER_SCHEMA
)
STOCKS = types.FunctionDeclaration(
    name="fetchStockPrice",
    description="The last price of a share.",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"ticker": types.Schema(type=types.Type.STRING)},
        required=["ticker"],
    ),
)
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)


@pytest.fixture(scope="module")
def client(emulator: EmulatorProcess) -> genai.Client:
    return make_client(emulator.url)


def declared(*declarations: types.FunctionDeclaration, mode: str | None = None, **extra: Any) -> Any:
    tool_config = None
    if mode is not None:
        calling = types.FunctionCallingConfig(mode=mode, **extra)
        tool_config = types.ToolConfig(function_calling_config=calling)
    return types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=list(declarations))],
        tool_config=tool_config,
        automatic_function_calling=NO_AFC,
    )


def test_automatic_function_calling_runs_the_loop(client: genai.Client) -> None:
    ran: list[tuple[str, str]] = []

    def get_weather(city: str, unit: str) -> dict[str, Any]:
        """The forecast for a city, in celsius or fahrenheit."""
        ran.append((city, unit))
        return {"forecast": "sunny", "temperature": 21}

    reply = client.models.generate_content(
        model=MODEL,
        contents="What will the weather be in Paris tomorrow?",
        config=types.GenerateContentConfig(tools=[get_weather]),
    )
    # The SDK called the function once, sent its result back, and the model answered in text.
    assert len(ran) == 1 and isinstance(ran[0][0], str)
    assert not reply.function_calls
    assert "get_weather returned" in reply.text and "sunny" in reply.text
    history = reply.automatic_function_calling_history
    assert [c.role for c in history] == ["user", "model", "user"]
    call_part = history[1].parts[0]
    assert call_part.function_call.name == "get_weather" and call_part.thought_signature
    assert history[2].parts[0].function_response.response == {
        "result": {"forecast": "sunny", "temperature": 21}
    }


def test_a_chat_runs_the_loop_too(client: genai.Client) -> None:
    ran: list[str] = []

    def fetch_stock_price(ticker: str) -> float:
        """The last price of a share."""
        ran.append(ticker)
        return 123.5

    chat = client.chats.create(model=MODEL, config=types.GenerateContentConfig(tools=[fetch_stock_price]))
    assert "123.5" in chat.send_message("What is the stock price of ACME?").text
    assert len(ran) == 1
    # A turn that asks for nothing gets a plain answer.
    assert chat.send_message("Thanks, that is all.").text and len(ran) == 1


def test_disabled_loop_returns_schema_valid_calls(client: genai.Client) -> None:
    reply = client.models.generate_content(
        model=MODEL, contents="Weather for Oslo this week, please.", config=declared(WEATHER, STOCKS)
    )
    assert [call.name for call in reply.function_calls] == ["get_weather"]
    call = reply.function_calls[0]
    jsonschema.validate(call.args, WEATHER_SCHEMA)
    assert call.id  # Gemini 3 names every call
    candidate = reply.candidates[0]
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content.parts[-1].thought_signature
    assert reply.usage_metadata.candidates_token_count > 0
    # Same prompt, same call.
    again = client.models.generate_content(
        model=MODEL, contents="Weather for Oslo this week, please.", config=declared(WEATHER, STOCKS)
    )
    assert again.function_calls[0].args == call.args


def test_a_prompt_naming_two_functions_gets_parallel_calls(client: genai.Client) -> None:
    reply = client.models.generate_content(
        model=MODEL,
        contents="Give me the weather in Rome and the stock price of ACME.",
        config=declared(WEATHER, STOCKS),
    )
    assert [c.name for c in reply.function_calls] == ["get_weather", "fetchStockPrice"]
    assert isinstance(reply.function_calls[1].args["ticker"], str)
    parts = reply.candidates[0].content.parts
    # Only the first call of a step carries the signature.
    assert parts[0].thought_signature and not parts[1].thought_signature


def test_modes_none_any_and_allowed_names(client: genai.Client) -> None:
    prompt = "What is the weather in Lima?"
    plain = client.models.generate_content(
        model=MODEL, contents=prompt, config=declared(WEATHER, mode="NONE")
    )
    assert plain.text and not plain.function_calls
    # AUTO with a prompt that asks for no function: text.
    chat = client.models.generate_content(model=MODEL, contents="Tell me a joke.", config=declared(WEATHER))
    assert chat.text and not chat.function_calls
    # ANY forces a call, among the allowed names.
    forced = client.models.generate_content(
        model=MODEL,
        contents="Tell me a joke.",
        config=declared(WEATHER, STOCKS, mode="ANY", allowed_function_names=["fetchStockPrice"]),
    )
    assert [c.name for c in forced.function_calls] == ["fetchStockPrice"]


def test_streamed_call_arrives_in_one_chunk(client: genai.Client) -> None:
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents="Weather in Cairo?", config=declared(WEATHER)
        )
    )
    with_calls = [c for c in chunks if c.function_calls]
    assert len(with_calls) == 1 and with_calls[0] is chunks[-1]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    jsonschema.validate(with_calls[0].function_calls[0].args, WEATHER_SCHEMA)
    assert chunks[-1].usage_metadata.candidates_token_count > 0


def test_a_2_5_model_sends_neither_id_nor_signature_when_not_thinking(client: genai.Client) -> None:
    config = declared(WEATHER)
    config.thinking_config = types.ThinkingConfig(thinking_budget=0)
    reply = client.models.generate_content(model=LITE, contents="Weather in Quito?", config=config)
    part = reply.candidates[0].content.parts[0]
    assert part.function_call.name == "get_weather"
    assert part.function_call.id is None and part.thought_signature is None


@pytest.mark.parametrize("name", ["get weather", "9lives", "", "x" * 65, "naïve"])
def test_a_bad_function_name_is_the_apis_400(client: genai.Client, name: str) -> None:
    bad = types.FunctionDeclaration(name=name, description="bad")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="hi", config=declared(WEATHER, bad))
    assert caught.value.code == 400
    assert "tools[0].function_declarations[1].name: Invalid function name. Must start with a letter" in str(
        caught.value
    )


def test_bad_schema_and_bad_config_are_400(emulator: EmulatorProcess) -> None:
    path = f"/v1beta/models/{MODEL}:generateContent"
    bad_type = {"functionDeclarations": [{"name": "f", "parameters": {"type": "WORD"}}]}
    status, body = call_json(emulator.url, path, text_request("hi", tools=[bad_type]))
    assert status == 400
    assert "tools[0].functionDeclarations[0].parameters.type" in body["error"]["message"]
    unknown = {"functionDeclarations": [{"name": "f", "parameterz": {}}]}
    status, body = call_json(emulator.url, path, text_request("hi", tools=[unknown]))
    assert status == 400 and 'Unknown name "parameterz"' in body["error"]["message"]
    undeclared = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["nope"]}}
    tools = [{"functionDeclarations": [{"name": "f"}]}]
    status, body = call_json(emulator.url, path, text_request("hi", tools=tools, toolConfig=undeclared))
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    # Server-side tools are accepted and never run.
    status, body = call_json(
        emulator.url, path, text_request("hi", tools=[{"googleSearch": {}}, {"codeExecution": {}}])
    )
    assert status == 200 and body["candidates"][0]["content"]["parts"][0]["text"]


def test_gemini_3_wants_the_signature_back(emulator: EmulatorProcess) -> None:
    tools = [{"functionDeclarations": [WEATHER.model_dump(exclude_none=True, by_alias=True)]}]
    lost = {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Lagos?"}]},
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Lagos"}}}],
            },
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 30}}}]},
        ],
        "tools": tools,
    }
    status, body = call_json(emulator.url, f"/v1beta/models/{MODEL}:generateContent", lost)
    assert status == 400
    assert body["error"]["message"].startswith("Function call is missing a thought_signature")
    assert "`default_api:get_weather` , position 2." in body["error"]["message"]
    # A 2.5 model does not check; with the signature back, Gemini 3 answers from the response.
    status, _ = call_json(emulator.url, f"/v1beta/models/{LITE}:generateContent", lost)
    assert status == 200
    lost["contents"][1]["parts"][0]["thoughtSignature"] = "c2lnbmF0dXJl"
    status, body = call_json(emulator.url, f"/v1beta/models/{MODEL}:generateContent", lost)
    assert status == 200
    assert body["candidates"][0]["content"]["parts"][0]["text"].startswith('get_weather returned {"t": 30}.')
