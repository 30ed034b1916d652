"""GeminiAdapter: request shape, every recorded Gemini payload, Gemini's errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from llm_connect import (
    GeminiAdapter,
    LLMAuthenticationError,
    LLMBadRequestError,
    LLMConfigurationError,
    LLMRateLimitError,
    LLMResponseError,
    Message,
    RunConfig,
    Usage,
    pricing,
)

from .conftest import fixture_names, fixture_response, load_fixture

BASE = "https://generativelanguage.googleapis.com/v1beta"
URL = f"{BASE}/models/gemini-2.5-flash:generateContent"
KEY = "AIzaSy-test-key-0123456789"


def _adapter(**kwargs: Any) -> GeminiAdapter:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("default_config", RunConfig(model="gemini-2.5-flash"))
    return GeminiAdapter(**kwargs)


def _answer(parts: list[dict[str, Any]], reason: str = "STOP") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "candidates": [
                {"content": {"parts": parts, "role": "model"}, "finishReason": reason}
            ],
            "usageMetadata": {
                "promptTokenCount": 4,
                "candidatesTokenCount": 2,
                "totalTokenCount": 6,
            },
            "modelVersion": "gemini-2.5-flash",
            "responseId": "resp-1",
        },
    )


# -- the request -------------------------------------------------------------------


async def test_request_shape_maps_every_runconfig_field(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(URL).mock(return_value=_answer([{"text": "4"}]))
    config = RunConfig(
        system_prompt="Be brief.",
        temperature=0.3,
        top_p=0.8,
        max_tokens=64,
        stop=("END",),
    )
    async with _adapter() as adapter:
        await adapter.async_execute_prompt(
            [
                Message("system", "Answer in digits."),
                Message("user", "2+2?"),
                Message("assistant", "4"),
                Message("user", "and 3+3?"),
            ],
            config,
        )
    request = route.calls.last.request
    assert str(request.url) == URL  # the key is not in the URL
    assert "key=" not in str(request.url)
    assert request.headers["x-goog-api-key"] == KEY
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {
        "contents": [
            {"role": "user", "parts": [{"text": "2+2?"}]},
            {"role": "model", "parts": [{"text": "4"}]},
            {"role": "user", "parts": [{"text": "and 3+3?"}]},
        ],
        "systemInstruction": {
            "parts": [{"text": "Be brief."}, {"text": "Answer in digits."}]
        },
        "generationConfig": {
            "temperature": 0.3,
            "topP": 0.8,
            "maxOutputTokens": 64,
            "stopSequences": ["END"],
        },
    }


async def test_unset_fields_are_not_sent(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(URL).mock(return_value=_answer([{"text": "hi"}]))
    async with _adapter() as adapter:
        await adapter.async_execute_prompt("hello")
    assert json.loads(route.calls.last.request.content) == {
        "contents": [{"role": "user", "parts": [{"text": "hello"}]}]
    }


async def test_extra_body_merges_into_generation_config(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(URL).mock(return_value=_answer([{"text": "hi"}]))
    config = RunConfig(
        max_tokens=100,
        temperature=0.1,
        extra_body={
            "generationConfig": {
                "temperature": 0.9,
                "thinkingConfig": {"thinkingBudget": 0},
            },
            "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH"}],
        },
    )
    async with _adapter() as adapter:
        await adapter.async_execute_prompt("hello", config)
    body = json.loads(route.calls.last.request.content)
    assert body["generationConfig"] == {
        "temperature": 0.9,  # extra_body wins
        "maxOutputTokens": 100,  # ours is kept
        "thinkingConfig": {"thinkingBudget": 0},
    }
    assert body["safetySettings"] == [{"category": "HARM_CATEGORY_HATE_SPEECH"}]


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("models/gemini-2.5-pro", "/v1beta/models/gemini-2.5-pro:generateContent"),
        ("tunedModels/my-model-7", "/v1beta/tunedModels/my-model-7:generateContent"),
    ],
)
async def test_model_names_with_or_without_prefix(
    respx_mock: respx.MockRouter, model: str, path: str
) -> None:
    route = respx_mock.post(url__startswith=BASE).mock(
        return_value=_answer([{"text": "hi"}])
    )
    async with _adapter() as adapter:
        await adapter.async_execute_prompt("hello", RunConfig(model=model))
    assert route.calls.last.request.url.path == path


@pytest.mark.parametrize("model", ["../secrets", "models/a/b", "gemini 2.5", "a:b"])
async def test_a_model_name_that_would_change_the_path_is_refused(
    respx_mock: respx.MockRouter, model: str
) -> None:
    route = respx_mock.post(url__startswith=BASE)
    async with _adapter() as adapter:
        with pytest.raises(LLMConfigurationError, match="Gemini model name"):
            await adapter.async_execute_prompt("hello", RunConfig(model=model))
    assert route.call_count == 0


def test_the_key_comes_from_gemini_then_google_api_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(LLMConfigurationError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        GeminiAdapter()
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    assert GeminiAdapter()._api_key == "google-key"
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key")
    assert GeminiAdapter()._api_key == "gemini-key"
    assert GeminiAdapter(api_key="given")._api_key == "given"


# -- the recorded payloads ---------------------------------------------------------

EXPECTED: dict[str, dict[str, Any]] = {
    "gemini_generate_ok": {
        "text": "Hello! How can I help you today?",
        "finish_reason": "stop",
        # output = candidates 9 + thoughts 34; total 52 = 9 + 43
        "usage": Usage(9, 43, 52, reasoning_tokens=34),
        "request_id": "bzlXaa_EE_aHqtsPi_zw8Ao",
        "model": "gemini-2.5-flash",
    },
    "gemini_generate_ok_code_execution": {
        "finish_reason": "stop",
        # input = prompt 32 + tool-use prompt 619; output = 575 + thoughts 199
        "usage": Usage(651, 774, 1425, reasoning_tokens=199),
        "request_id": "1A-JaPr5Bt-wqtsPlZiayQs",
        "model": "gemini-2.5-flash",
    },
    "gemini_max_tokens": {
        "text": "The capital of France is",
        "finish_reason": "length",
        "usage": Usage(15, 5, 20),
        "request_id": "R5MoavWNNp_8qtsP2fWD2A0",
        "model": "gemini-2.5-flash",
    },
    "gemini_max_tokens_thinking_no_content": {
        "text": "",
        "finish_reason": "length",
        "usage": Usage(15, 2, 17, reasoning_tokens=2),
        "request_id": "fH8oaunbEbr9qtsPjYGX4A0",
        "model": "gemini-2.5-pro",
    },
    "gemini_safety_block": {
        "text": "",
        "finish_reason": "content_filter",
        "usage": Usage(14, 0, 14),
        "request_id": "5lpeaLOIBf__698Pv8HGgAg",
        "model": "gemini-1.5-flash",
    },
    "gemini_vertex_prompt_blocked_model_armor": {
        "text": "",
        "finish_reason": "content_filter",
        "usage": Usage(0, 0, 0),
        "request_id": "mSEXaseKG-P51PIPwv66qQs",
        "model": "gemini-2.5-flash",
    },
}
STREAMS = [
    "gemini_stream_json_array_thoughts",
    "gemini_stream_sse",
    "gemini_stream_sse_prompt_count_changes",
]


def test_every_gemini_fixture_is_covered() -> None:
    assert set(fixture_names("gemini_")) == {
        *EXPECTED,
        *STREAMS,
        "gemini_404_model_not_found",
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_recorded_answers_map_to_responses(
    respx_mock: respx.MockRouter, name: str
) -> None:
    respx_mock.post(URL).mock(return_value=fixture_response(name))
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    expected = EXPECTED[name]
    if "text" in expected:
        assert response.text == expected["text"]
    assert response.finish_reason == expected["finish_reason"]
    assert response.usage == expected["usage"]
    assert response.request_id == expected["request_id"]
    assert response.model == expected["model"]
    assert response.provider == "gemini"
    # Gemini reports no cost: the Core prices the usage from the table.
    price = pricing.lookup("gemini", response.model)
    assert price is not None
    assert response.cost == price.cost(response.usage)
    assert response.raw == load_fixture(name)["body"]


async def test_all_text_parts_are_the_answer_not_just_the_first(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(URL).mock(
        return_value=fixture_response("gemini_generate_ok_code_execution")
    )
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert response.text.startswith("To find the sum of the first 50 prime numbers")
    assert "The sum of the first 50 prime numbers is **5117**." in response.text
    assert "def is_prime" not in response.text  # code parts are not text


async def test_recorded_404_is_a_bad_request_naming_the_model(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(url__startswith=BASE).mock(
        return_value=fixture_response("gemini_404_model_not_found")
    )
    async with _adapter() as adapter:
        with pytest.raises(LLMBadRequestError) as info:
            await adapter.async_execute_prompt(
                "hi", RunConfig(model="gemini-3.6-flahs")
            )
    assert route.call_count == 1
    assert info.value.status_code == 404
    assert info.value.code == "NOT_FOUND"
    assert "models/gemini-3.6-flahs is not found" in info.value.message


@pytest.mark.parametrize("name", STREAMS)
async def test_a_streamed_answer_is_a_response_error(
    respx_mock: respx.MockRouter, name: str
) -> None:
    respx_mock.post(URL).mock(return_value=fixture_response(name))
    async with _adapter() as adapter:
        with pytest.raises(LLMResponseError) as info:
            await adapter.async_execute_prompt("hi")
    raw = load_fixture(name)["raw_body"]
    assert info.value.body is not None
    assert info.value.body[:1000] == raw[:1000]  # kept, cut to 2,000 characters
    if raw.startswith("["):
        assert "JSON, but not an object" in info.value.message
    else:
        assert "stream" in info.value.message


# -- Gemini's own shapes and errors --------------------------------------------------


async def test_thought_parts_are_not_the_answer(respx_mock: respx.MockRouter) -> None:
    parts = [
        {"text": "**Thinking about it**", "thought": True},
        {"text": "Scoop"},
        {"text": "", "thoughtSignature": "abc"},
    ]
    respx_mock.post(URL).mock(return_value=_answer(parts))
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert response.text == "Scoop"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("SPII", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "other"),
        ("OTHER", "other"),
    ],
)
async def test_finish_reasons_are_normalised_and_withheld_text_is_empty(
    respx_mock: respx.MockRouter, reason: str, expected: str
) -> None:
    respx_mock.post(URL).mock(return_value=_answer([{"text": "partial"}], reason))
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert response.finish_reason == expected
    assert response.text == ("" if expected == "content_filter" else "partial")


async def test_a_blocked_prompt_is_a_content_filter_response(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(URL).mock(
        return_value=httpx.Response(
            200,
            json={
                "promptFeedback": {"blockReason": "SAFETY"},
                "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
            },
        )
    )
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert response.finish_reason == "content_filter"
    assert response.text == ""
    assert response.usage == Usage(8, 0, 8)


async def test_no_candidates_and_no_block_reason_is_a_response_error(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(URL).mock(
        return_value=httpx.Response(200, json={"usageMetadata": {}})
    )
    async with _adapter() as adapter:
        with pytest.raises(LLMResponseError, match="no candidates"):
            await adapter.async_execute_prompt("hi")


def _quota_error(
    retry_delay: str, quota_ids: list[str], message: str = "You exceeded your quota"
) -> httpx.Response:
    return httpx.Response(
        429,
        json={
            "error": {
                "code": 429,
                "message": message,
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [
                            {"quotaMetric": "m", "quotaId": q} for q in quota_ids
                        ],
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": retry_delay,
                    },
                ],
            }
        },
    )


async def test_retry_info_retry_delay_is_honoured(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(URL).mock(
        side_effect=[
            _quota_error("7s", ["GenerateRequestsPerMinutePerProjectPerModel"]),
            _quota_error("1.5s", ["GenerateRequestsPerMinutePerProjectPerModel"]),
            _answer([{"text": "done"}]),
        ]
    )
    async with _adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert route.call_count == 3
    assert waits == [7.0, 1.5]
    assert response.text == "done"


async def test_a_daily_quota_is_not_retried(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(URL).mock(
        return_value=_quota_error(
            "47s",
            [
                "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            ],
        )
    )
    async with _adapter() as adapter:
        with pytest.raises(LLMRateLimitError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=5))
    assert route.call_count == 1
    assert waits == []
    assert info.value.code == "RESOURCE_EXHAUSTED"
    assert info.value.retry_after == 47.0
    assert "retrying will not help" in info.value.message


async def test_a_model_with_no_free_quota_is_not_retried(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(URL).mock(
        return_value=_quota_error(
            "20s", [], "Quota exceeded for metric: x, limit: 0, model: gemini-2.5-pro"
        )
    )
    async with _adapter() as adapter:
        with pytest.raises(LLMRateLimitError):
            await adapter.async_execute_prompt("hi")
    assert route.call_count == 1


async def test_an_invalid_key_is_an_authentication_error_despite_the_400(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(URL).mock(
        return_value=httpx.Response(
            400,
            json={
                "error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                        }
                    ],
                }
            },
        )
    )
    async with _adapter() as adapter:
        with pytest.raises(LLMAuthenticationError) as info:
            await adapter.async_execute_prompt("hi")
    assert info.value.status_code == 400
    assert info.value.code == "API_KEY_INVALID"
    assert "GEMINI_API_KEY" in info.value.message
