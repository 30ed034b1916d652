"""OpenRouterAdapter: headers, usage accounting, cost, and OpenRouter's errors."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from llm_connect import (
    LLMBadRequestError,
    LLMConfigurationError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    OpenRouterAdapter,
    RunConfig,
    Usage,
    pricing,
)

from .conftest import fixture_names, fixture_response, load_fixture

URL = "https://openrouter.ai/api/v1/chat/completions"
KEY = "sk-or-v1-test-0123456789abcdef"


def _adapter(**kwargs: Any) -> OpenRouterAdapter:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("default_config", RunConfig(model="openai/gpt-4o-mini"))
    return OpenRouterAdapter(**kwargs)


def _ok(cost: float | None = 0.002, text: str = "ok") -> httpx.Response:
    usage: dict[str, Any] = {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 7,
    }
    if cost is not None:
        usage["cost"] = cost
    return httpx.Response(
        200,
        json={
            "id": "gen-ok",
            "model": "openai/gpt-4o-mini",
            "choices": [
                {
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        },
    )


# -- the request -------------------------------------------------------------------


async def test_request_carries_attribution_usage_accounting_and_max_tokens(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(URL).mock(return_value=_ok())
    adapter = _adapter(app_name="My Agent", app_url="https://agent.example")
    async with adapter:
        await adapter.async_execute_prompt(
            "hi", RunConfig(system_prompt="Be brief.", max_tokens=30, temperature=0)
        )
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["http-referer"] == "https://agent.example"
    assert request.headers["x-openrouter-title"] == "My Agent"
    assert request.headers["x-title"] == "My Agent"
    assert json.loads(request.content) == {
        "model": "openai/gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0.0,
        "max_tokens": 30,
        "usage": {"include": True},
    }


async def test_no_attribution_headers_unless_given(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(URL).mock(return_value=_ok())
    async with _adapter() as adapter:
        await adapter.async_execute_prompt("hi")
    headers = route.calls.last.request.headers
    assert "http-referer" not in headers
    assert "x-title" not in headers
    assert "x-openrouter-title" not in headers


@pytest.mark.parametrize(
    ("name", "value"), [("app_name", ""), ("app_url", "a\nb"), ("app_name", 3)]
)
def test_bad_attribution_values_are_refused(name: str, value: object) -> None:
    with pytest.raises(LLMConfigurationError, match=name):
        _adapter(**{name: value})


def test_a_key_is_always_needed_even_with_another_base_url() -> None:
    with pytest.raises(LLMConfigurationError, match="OPENROUTER_API_KEY"):
        OpenRouterAdapter(base_url="http://127.0.0.1:9/api/v1")


# -- the recorded payloads ---------------------------------------------------------

EXPECTED: dict[str, dict[str, Any]] = {
    "openrouter_chat_ok": {
        "text": "The capital of France is **Paris**.",
        "model": "openai/gpt-oss-120b",
        "usage": Usage(74, 21, 95, reasoning_tokens=2),
        "cost": Decimal("0.00000537"),
        "request_id": "gen-1784218890-xgpex14FgM8LC4BeTRSn",
    },
    "openrouter_chat_ok_byok": {
        "text": "The capital of France is Paris.",
        "model": "openai/gpt-4o-mini",
        "usage": Usage(14, 7, 21),
        # BYOK: OpenRouter's fee (0) plus what the upstream provider charged.
        "cost": Decimal("0.0000063"),
        "request_id": "gen-1785183916-4361576WbgJ5cNkB2Idf",
    },
    "openrouter_chat_ok_routed_model_renamed": {
        "text": "Hello! How can I help you today?",
        "model": "anthropic/claude-4.5-sonnet-20250929",  # what answered
        "usage": Usage(550, 12, 562),
        "cost": Decimal("0.00183"),
        "request_id": "gen-1779760224-sMJGzTLJPgeLJ7PAeyJ7",
    },
}
STREAMS = [
    "openrouter_stream_midstream_error",
    "openrouter_stream_midstream_error_docs",
]


def test_every_openrouter_fixture_is_covered() -> None:
    assert set(fixture_names("openrouter_")) == {
        *EXPECTED,
        *STREAMS,
        "openrouter_200_error_in_body",
        "openrouter_429_upstream_provider_error",
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_recorded_answers_map_to_responses_with_the_reported_cost(
    respx_mock: respx.MockRouter, name: str
) -> None:
    respx_mock.post(URL).mock(return_value=fixture_response(name))
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi", RunConfig(model="x/y"))
    expected = EXPECTED[name]
    assert response.text == expected["text"]
    assert response.model == expected["model"]
    assert response.usage == expected["usage"]
    assert response.cost == expected["cost"]
    assert isinstance(response.cost, Decimal)
    assert response.request_id == expected["request_id"]
    assert response.finish_reason == "stop"
    assert response.provider == "openrouter"
    assert response.raw == load_fixture(name)["body"]


def test_recorded_bodies_with_leading_whitespace_are_the_ones_tested() -> None:
    raw = load_fixture("openrouter_chat_ok")["raw_body"]
    assert raw[0].isspace()
    assert raw.lstrip().startswith("{")


async def test_recorded_error_inside_a_200_raises_the_mapped_error(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(URL).mock(
        return_value=fixture_response("openrouter_200_error_in_body")
    )
    async with _adapter() as adapter:
        with pytest.raises(LLMServerError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=1))
    error = info.value
    assert error.status_code == 502
    assert error.code == "provider_unavailable"
    assert "Provider disconnected mid-stream" in error.message
    assert route.call_count == 2  # a 502 is worth one more try
    assert waits == [0.5]


async def test_recorded_upstream_429_keeps_the_upstream_words(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(URL).mock(
        side_effect=[fixture_response("openrouter_429_upstream_provider_error"), _ok()]
    )
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert route.call_count == 2  # an upstream rate limit is retried
    assert response.text == "ok"

    route.mock(return_value=fixture_response("openrouter_429_upstream_provider_error"))
    async with _adapter() as adapter:
        with pytest.raises(LLMRateLimitError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=0))
    assert info.value.status_code == 429
    assert info.value.code is None  # OpenRouter's numeric code is just the status
    assert "Provider returned error" in info.value.message
    assert "Google: google/gemini-2.0-flash-exp:free is temporarily rate-limited" in (
        info.value.message
    )


@pytest.mark.parametrize("name", STREAMS)
async def test_a_streamed_answer_is_a_response_error(
    respx_mock: respx.MockRouter, name: str
) -> None:
    respx_mock.post(URL).mock(return_value=fixture_response(name))
    async with _adapter() as adapter:
        with pytest.raises(LLMResponseError, match="stream"):
            await adapter.async_execute_prompt("hi")


# -- OpenRouter's own shapes and errors ------------------------------------------------


async def test_no_reported_cost_leaves_cost_to_the_core(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(URL).mock(return_value=_ok(cost=None))
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    # openai/gpt-4o-mini resolves to OpenAI's list price in the table.
    price = pricing.lookup("openrouter", response.model)
    assert price is not None
    assert response.cost == price.cost(response.usage)


async def test_what_failed_attempts_were_charged_is_added_to_the_cost(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    failed = httpx.Response(
        200,
        json={
            "id": "gen-failed",
            "choices": [
                {
                    "message": {"role": "assistant", "content": "partial"},
                    "finish_reason": "error",
                    "error": {"code": 502, "message": "Provider disconnected"},
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "cost": 0.001},
        },
    )
    route = respx_mock.post(URL).mock(side_effect=[failed, _ok(cost=0.002)])
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert route.call_count == 2
    assert response.cost == Decimal("0.003")

    route.mock(return_value=failed)
    async with _adapter() as adapter:
        with pytest.raises(LLMServerError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=2))
    assert info.value.cost == Decimal("0.003")  # three failed attempts, all charged
    assert info.value.request_id == "gen-failed"


async def test_out_of_credits_is_not_retried(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(URL).mock(
        return_value=httpx.Response(
            402,
            json={
                "error": {
                    "code": 402,
                    "message": "Insufficient credits. Add more using "
                    "https://openrouter.ai/credits",
                    "metadata": {"limit_source": "openrouter_credits"},
                }
            },
        )
    )
    async with _adapter() as adapter:
        with pytest.raises(LLMRateLimitError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=5))
    assert route.call_count == 1
    assert info.value.status_code == 402
    assert "Insufficient credits" in info.value.message


async def test_the_free_models_daily_limit_is_not_retried(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(URL).mock(
        return_value=httpx.Response(
            429,
            json={
                "error": {
                    "code": 429,
                    "message": "Rate limit exceeded: free-models-per-day. Add 10 "
                    "credits to unlock 1000 free model requests per day",
                }
            },
        )
    )
    async with _adapter() as adapter:
        with pytest.raises(LLMRateLimitError, match="retrying will not help"):
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=5))
    assert route.call_count == 1


async def test_input_flagged_by_moderation_is_a_bad_request(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(URL).mock(
        return_value=httpx.Response(
            403,
            json={
                "error": {
                    "code": 403,
                    "message": "openai/gpt-4o requires moderation",
                    "metadata": {
                        "reasons": ["harassment", "violence"],
                        "flagged_input": "...",
                        "provider_name": "OpenAI",
                        "model_slug": "openai/gpt-4o",
                    },
                }
            },
        )
    )
    async with _adapter() as adapter:
        with pytest.raises(LLMBadRequestError) as info:
            await adapter.async_execute_prompt("hi")
    assert info.value.status_code == 403
    assert "flagged: harassment, violence" in info.value.message
