"""OpenAIAdapter: request shape, every recorded OpenAI payload, OpenAI's errors."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from llm_connect import (
    LLMAuthenticationError,
    LLMBadRequestError,
    LLMRateLimitError,
    LLMResponseError,
    Message,
    OpenAIAdapter,
    RunConfig,
    Usage,
    pricing,
)

from .conftest import fixture_names, fixture_response, load_fixture

URL = "https://api.openai.com/v1/chat/completions"
KEY = "sk-proj-test-key-0123456789"


def _adapter(**kwargs: object) -> OpenAIAdapter:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("default_config", RunConfig(model="gpt-4o-mini"))
    return OpenAIAdapter(**kwargs)  # type: ignore[arg-type]


def _ok(text: str = "ok", **message: object) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, **message},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
    )


# -- the request ---------------------------------------------------------------


async def test_request_shape_maps_every_runconfig_field(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(URL).mock(return_value=_ok())
    config = RunConfig(
        model="gpt-5-nano",
        system_prompt="Be brief.",
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        stop=["\n\n", "END"],
    )
    async with _adapter() as adapter:
        await adapter.async_execute_prompt(
            [
                Message("user", "hi"),
                Message("assistant", "hello"),
                Message("user", "2+2"),
            ],
            config,
        )
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "model": "gpt-5-nano",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "2+2"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_completion_tokens": 50,
        "stop": ["\n\n", "END"],
    }


async def test_unset_fields_are_not_sent(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(URL).mock(return_value=_ok())
    async with _adapter() as adapter:
        await adapter.async_execute_prompt("hi")
    assert json.loads(route.calls.last.request.content) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
    }


async def test_a_compatible_server_gets_max_tokens_and_needs_no_key(
    respx_mock: respx.MockRouter,
) -> None:
    url = "http://127.0.0.1:11434/v1/chat/completions"
    route = respx_mock.post(url).mock(return_value=_ok())
    adapter = OpenAIAdapter(
        base_url="http://127.0.0.1:11434/v1", default_config=RunConfig(model="llama3")
    )
    async with adapter:
        await adapter.async_execute_prompt("hi", RunConfig(max_tokens=20))
    request = route.calls.last.request
    assert "authorization" not in request.headers
    body = json.loads(request.content)
    assert body["max_tokens"] == 20
    assert "max_completion_tokens" not in body


async def test_a_compatible_server_gets_the_key_when_one_is_set(
    respx_mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "vllm-token-123")
    route = respx_mock.post("http://127.0.0.1:8000/v1/chat/completions").mock(
        return_value=_ok()
    )
    adapter = OpenAIAdapter(
        base_url="http://127.0.0.1:8000/v1/", default_config=RunConfig(model="m")
    )
    async with adapter:
        await adapter.async_execute_prompt("hi")
    assert route.calls.last.request.headers["authorization"] == "Bearer vllm-token-123"


async def test_extra_body_is_merged_and_wins(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(URL).mock(return_value=_ok())
    config = RunConfig(
        temperature=0.5,
        extra_body={"temperature": 1.0, "seed": 7, "reasoning_effort": "low"},
    )
    async with _adapter() as adapter:
        await adapter.async_execute_prompt("hi", config)
    body = json.loads(route.calls.last.request.content)
    assert body["temperature"] == 1.0
    assert body["seed"] == 7
    assert body["reasoning_effort"] == "low"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_an_output_limit_in_extra_body_replaces_ours(
    respx_mock: respx.MockRouter, field: str
) -> None:
    route = respx_mock.post(URL).mock(return_value=_ok())
    async with _adapter() as adapter:
        await adapter.async_execute_prompt(
            "hi", RunConfig(max_tokens=50, extra_body={field: 99})
        )
    body = json.loads(route.calls.last.request.content)
    assert body[field] == 99
    assert {"max_tokens", "max_completion_tokens"} & body.keys() == {field}


def test_openai_itself_needs_a_key() -> None:
    with pytest.raises(Exception, match="OPENAI_API_KEY"):
        OpenAIAdapter()


# -- the recorded payloads ---------------------------------------------------------

EXPECTED = {
    "openai_chat_ok": {
        "text": "3",
        "model": "gpt-5-nano-2025-08-07",
        "finish_reason": "stop",
        "usage": Usage(11, 202, 213, cached_input_tokens=0, reasoning_tokens=192),
        "request_id": "req_ccbd0a12c97c4f1aad4ff97e6de9cddb",
    },
    "openai_chat_ok_gpt4o_mini": {
        "text": "Hello! How can I assist you today?",
        "model": "gpt-4o-mini-2024-07-18",
        "finish_reason": "stop",
        "usage": Usage(8, 9, 17),
        "request_id": "chatcmpl-Dr3KONlJHqM2OKkn7IPxwgC3ZIEZw",  # no header: body id
    },
    "openai_chat_length_cached": {
        "model": "gpt-4o-2024-08-06",
        "finish_reason": "length",
        "usage": Usage(1220, 100, 1320, cached_input_tokens=1152),
        "request_id": "req_c0f374d27da52b49fbc9e28b67f5496a",
    },
    "openai_chat_refusal": {
        "text": "I'm very sorry, but I can't assist with that request.",
        "model": "gpt-4o-2024-08-06",
        "finish_reason": "refusal",
        "usage": Usage(65, 13, 78),
        "request_id": "req_c8d6f9c09ffb4a70bfbe3586a89aaf2c",
    },
    "openai_chat_moderation_flagged_safe_completion": {
        "model": "gpt-5-2025-08-07",
        "finish_reason": "stop",  # flagged input, yet an answer: not "blocked"
        "usage": Usage(12, 1888, 1900, reasoning_tokens=1600),
        "request_id": "chatcmpl-E4VQ6XcCyuVqUxQQH9n9C5QyjWEte",
    },
}
ERRORS = {
    "openai_401_invalid_api_key": "55f4f12fef392b7fbc0c647e97a8e6b2",
    "openai_401_invalid_api_key_2025": "req_c45bfc7515dca54ef87c667f8210af23",
}
STREAMS = [
    "openai_chat_stream_include_usage",
    "openai_chat_stream_usage_then_moderation",
]


def test_every_openai_fixture_is_covered() -> None:
    assert set(fixture_names("openai_")) == {*EXPECTED, *ERRORS, *STREAMS}


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_recorded_answers_map_to_responses(
    respx_mock: respx.MockRouter, name: str
) -> None:
    respx_mock.post(URL).mock(return_value=fixture_response(name))
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    expected = EXPECTED[name]
    body = load_fixture(name)["body"]
    message = body["choices"][0]["message"]
    assert response.text == expected.get("text", message["content"])
    assert response.model == expected["model"]
    assert response.finish_reason == expected["finish_reason"]
    assert response.usage == expected["usage"]
    assert response.request_id == expected["request_id"]
    assert response.provider == "openai"
    # OpenAI reports no cost: the Core prices the usage from the table.
    price = pricing.lookup("openai", response.model)
    assert price is not None
    assert response.cost == price.cost(response.usage)
    assert response.raw == body


@pytest.mark.parametrize("name", sorted(ERRORS))
async def test_recorded_401s_are_authentication_errors(
    respx_mock: respx.MockRouter, name: str
) -> None:
    route = respx_mock.post(URL).mock(return_value=fixture_response(name))
    async with _adapter() as adapter:
        with pytest.raises(LLMAuthenticationError) as info:
            await adapter.async_execute_prompt("hi")
    error = info.value
    assert route.call_count == 1
    assert error.status_code == 401
    assert error.code == "invalid_api_key"
    assert error.request_id == ERRORS[name]
    assert "Incorrect API key provided" in error.message
    assert "OPENAI_API_KEY" in error.message  # says what to do
    assert error.body == load_fixture(name)["raw_body"]


@pytest.mark.parametrize("name", STREAMS)
async def test_a_streamed_answer_is_a_response_error_that_says_so(
    respx_mock: respx.MockRouter, name: str
) -> None:
    respx_mock.post(URL).mock(return_value=fixture_response(name))
    async with _adapter() as adapter:
        with pytest.raises(LLMResponseError, match="stream") as info:
            await adapter.async_execute_prompt("hi")
    assert (info.value.body or "").startswith("data: {")


# -- OpenAI's own shapes and errors ---------------------------------------------------


async def test_an_answer_without_usage_counts_zero(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(URL).mock(
        return_value=httpx.Response(
            200,
            json={"choices": [{"message": {"content": "hi"}, "finish_reason": None}]},
        )
    )
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert response.usage == Usage(0, 0, 0)
    assert response.text == "hi"
    assert response.finish_reason == "stop"
    assert response.model == "gpt-4o-mini"  # falls back to the requested model


async def test_null_usage_details_count_zero(respx_mock: respx.MockRouter) -> None:
    answer = _ok().json()
    answer["usage"] = {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 7,
        "prompt_tokens_details": None,
        "completion_tokens_details": None,
    }
    respx_mock.post(URL).mock(return_value=httpx.Response(200, json=answer))
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert response.usage == Usage(5, 2, 7)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("something_new", "other"),
    ],
)
async def test_finish_reasons_are_normalised(
    respx_mock: respx.MockRouter, reason: str, expected: str
) -> None:
    answer = _ok().json()
    answer["choices"][0]["finish_reason"] = reason
    respx_mock.post(URL).mock(return_value=httpx.Response(200, json=answer))
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert response.finish_reason == expected


async def test_content_given_as_parts_is_joined(respx_mock: respx.MockRouter) -> None:
    parts = [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]
    respx_mock.post(URL).mock(return_value=_ok(parts))  # type: ignore[arg-type]
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert response.text == "Hello"


async def test_insufficient_quota_is_not_retried(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(URL).mock(
        return_value=httpx.Response(
            429,
            headers={"x-request-id": "req_quota"},
            json={
                "error": {
                    "message": "You exceeded your current quota, please check your "
                    "plan and billing details.",
                    "type": "insufficient_quota",
                    "param": None,
                    "code": "insufficient_quota",
                }
            },
        )
    )
    async with _adapter() as adapter:
        with pytest.raises(LLMRateLimitError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=5))
    assert route.call_count == 1
    assert waits == []
    assert info.value.code == "insufficient_quota"
    assert info.value.request_id == "req_quota"
    assert "retrying will not help" in info.value.message


async def test_a_rate_limit_429_is_retried(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    limited = httpx.Response(
        429,
        headers={"retry-after-ms": "700"},
        json={
            "error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}
        },
    )
    route = respx_mock.post(URL).mock(side_effect=[limited, _ok("done")])
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert route.call_count == 2
    assert waits == [0.7]
    assert response.text == "done"


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        ({"error": "model 'llama9' not found"}, "model 'llama9' not found", None),
        (
            {"object": "error", "message": "bad temp", "type": "BadRequestError"},
            "bad temp",
            "BadRequestError",
        ),
        ({"detail": "Not Found"}, "Not Found", None),
    ],
)
async def test_compatible_servers_error_shapes_keep_their_message(
    respx_mock: respx.MockRouter,
    body: dict[str, object],
    message: str,
    code: str | None,
) -> None:
    respx_mock.post("http://127.0.0.1:9/v1/chat/completions").mock(
        return_value=httpx.Response(404, json=body)
    )
    adapter = OpenAIAdapter(
        base_url="http://127.0.0.1:9/v1", default_config=RunConfig(model="m")
    )
    async with adapter:
        with pytest.raises(LLMBadRequestError) as info:
            await adapter.async_execute_prompt("hi")
    assert message in info.value.message
    assert info.value.message.startswith("The server at 127.0.0.1:9 answered HTTP 404")
    assert info.value.code == code


async def test_an_error_inside_a_200_body_raises_the_mapped_error(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(URL).mock(
        return_value=httpx.Response(
            200, json={"error": {"message": "context too long", "code": 400}}
        )
    )
    async with _adapter() as adapter:
        with pytest.raises(LLMBadRequestError, match="context too long") as info:
            await adapter.async_execute_prompt("hi")
    assert info.value.status_code == 400
