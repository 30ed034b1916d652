"""Behaviour every HTTP adapter shares, pinned once for all three providers."""

from __future__ import annotations

import json
import logging
import pickle
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import anyio
import attrs
import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_connect import (
    GeminiAdapter,
    LLMAuthenticationError,
    LLMBadRequestError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMProviderError,
    LLMRateLimitError,
    LLMResponse,
    LLMResponseError,
    LLMServerError,
    OpenAIAdapter,
    OpenRouterAdapter,
    RunConfig,
)
from llm_connect.adapters import _http
from llm_connect.adapters._http import (
    HTTPAdapter,
    backoff,
    merge_body,
    parse_retry_after,
)
from tests.conftest import BACKENDS, running_tasks

from .conftest import fixture_response

KEY = "sk-test-0123456789abcdefSECRET"


@attrs.frozen
class Provider:
    """How to drive one adapter in the shared tests."""

    name: str
    make: Callable[..., HTTPAdapter]
    url: str
    model: str
    ok_fixture: str
    error_body: Callable[[int, str], dict[str, Any]]

    def adapter(self, **kwargs: Any) -> HTTPAdapter:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("default_config", RunConfig(model=self.model))
        return self.make(**kwargs)

    def ok(self) -> httpx.Response:
        return fixture_response(self.ok_fixture)

    def error(
        self, status: int, message: str = "it went wrong", **kw: Any
    ) -> httpx.Response:
        return httpx.Response(status, json=self.error_body(status, message), **kw)


PROVIDERS = [
    Provider(
        "openai",
        OpenAIAdapter,
        "https://api.openai.com/v1/chat/completions",
        "gpt-5-nano",
        "openai_chat_ok",
        lambda status, message: {
            "error": {"message": message, "type": "server_error", "code": None}
        },
    ),
    Provider(
        "gemini",
        GeminiAdapter,
        "https://generativelanguage.googleapis.com/v1beta/models/"
        "gemini-2.5-flash:generateContent",
        "gemini-2.5-flash",
        "gemini_generate_ok",
        lambda status, message: {
            "error": {"code": status, "message": message, "status": "UNAVAILABLE"}
        },
    ),
    Provider(
        "openrouter",
        OpenRouterAdapter,
        "https://openrouter.ai/api/v1/chat/completions",
        "openai/gpt-oss-120b",
        "openrouter_chat_ok",
        lambda status, message: {"error": {"code": status, "message": message}},
    ),
]


@pytest.fixture(params=PROVIDERS, ids=[p.name for p in PROVIDERS])
def provider(request: pytest.FixtureRequest) -> Provider:
    given: Provider = request.param
    return given


# -- status -> exception ---------------------------------------------------------

STATUS_TABLE = [
    (400, LLMBadRequestError),
    (404, LLMBadRequestError),
    (422, LLMBadRequestError),
    (401, LLMAuthenticationError),
    (403, LLMAuthenticationError),
    (429, LLMRateLimitError),
    (500, LLMServerError),
    (502, LLMServerError),
    (503, LLMServerError),
    (504, LLMServerError),
    (529, LLMServerError),
]


@pytest.mark.parametrize(("status", "error_class"), STATUS_TABLE)
async def test_status_maps_to_the_error_table(
    provider: Provider,
    respx_mock: respx.MockRouter,
    status: int,
    error_class: type[LLMProviderError],
) -> None:
    route = respx_mock.post(provider.url).mock(
        return_value=provider.error(status, "the provider's own words")
    )
    async with provider.adapter() as adapter:
        with pytest.raises(error_class) as info:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=0))
    assert type(info.value) is error_class
    assert info.value.status_code == status
    assert info.value.provider == provider.name
    assert "the provider's own words" in info.value.message
    assert f"HTTP {status}" in info.value.message
    assert info.value.body is not None
    assert "the provider's own words" in info.value.body
    assert route.call_count == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(
    provider: Provider, respx_mock: respx.MockRouter, waits: list[float], status: int
) -> None:
    route = respx_mock.post(provider.url).mock(return_value=provider.error(status))
    async with provider.adapter() as adapter:
        with pytest.raises(LLMProviderError):
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=3))
    assert route.call_count == 1
    assert waits == []


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
async def test_retryable_statuses_are_retried_then_succeed(
    provider: Provider, respx_mock: respx.MockRouter, waits: list[float], status: int
) -> None:
    route = respx_mock.post(provider.url).mock(
        side_effect=[provider.error(status), provider.ok()]
    )
    async with provider.adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert route.call_count == 2
    assert waits == [0.5]
    assert response.text
    assert response.usage.total_tokens > 0


async def test_gives_up_after_max_retries_with_exponential_waits(
    provider: Provider, respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(provider.url).mock(return_value=provider.error(503))
    async with provider.adapter() as adapter:
        with pytest.raises(LLMServerError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=4))
    assert route.call_count == 5
    assert waits == [0.5, 1.0, 2.0, 4.0]
    assert "Gave up after 5 attempts" in info.value.message
    assert info.value.__cause__ is None


async def test_max_retries_zero_makes_one_attempt(
    provider: Provider, respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(provider.url).mock(return_value=provider.error(503))
    async with provider.adapter() as adapter:
        with pytest.raises(LLMServerError):
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=0))
    assert route.call_count == 1
    assert waits == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.25"}, 1.25),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "0"}, 0.0),
    ],
)
async def test_honours_the_providers_retry_after(
    provider: Provider,
    respx_mock: respx.MockRouter,
    waits: list[float],
    headers: dict[str, str],
    expected: float,
) -> None:
    route = respx_mock.post(provider.url).mock(
        side_effect=[provider.error(429, headers=headers), provider.ok()]
    )
    async with provider.adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert route.call_count == 2
    assert waits == [expected]
    assert response.text


async def test_the_error_keeps_the_retry_after_it_was_given(
    provider: Provider, respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    respx_mock.post(provider.url).mock(
        return_value=provider.error(429, headers={"retry-after": "2"})
    )
    async with provider.adapter() as adapter:
        with pytest.raises(LLMRateLimitError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=1))
    assert info.value.retry_after == 2.0
    assert waits == [2.0]


async def test_a_wait_past_the_deadline_raises_at_once(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(provider.url).mock(
        return_value=provider.error(429, headers={"retry-after": "30"})
    )
    started = time.monotonic()
    async with provider.adapter() as adapter:
        with pytest.raises(LLMRateLimitError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(timeout=5))
    assert time.monotonic() - started < 3  # did not sleep towards the deadline
    assert route.call_count == 1
    assert info.value.retry_after == 30.0
    assert "would pass the call's deadline" in info.value.message


async def test_backoff_stops_when_the_next_wait_would_pass_the_deadline(
    provider: Provider, respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    # Patched sleeps take no time: 0.5 and 1.0 fit in 1.8 s, 2.0 does not.
    route = respx_mock.post(provider.url).mock(return_value=provider.error(500))
    async with provider.adapter() as adapter:
        with pytest.raises(LLMServerError):
            await adapter.async_execute_prompt(
                "hi", RunConfig(timeout=1.8, max_retries=10)
            )
    assert waits == [0.5, 1.0]
    assert route.call_count == 3


async def test_retries_and_waits_fit_inside_the_timeout(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    """Real sleeps: the last error is raised before the deadline, not a timeout."""
    route = respx_mock.post(provider.url).mock(
        return_value=provider.error(503, headers={"retry-after": "0.3"})
    )
    started = time.monotonic()
    async with provider.adapter() as adapter:
        with pytest.raises(LLMServerError):
            await adapter.async_execute_prompt(
                "hi", RunConfig(timeout=1.0, max_retries=20)
            )
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 2.0  # generous: a busy machine
    assert 2 <= route.call_count <= 4


async def test_a_provider_wait_longer_than_two_minutes_is_not_slept(
    provider: Provider, respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(provider.url).mock(
        return_value=provider.error(429, headers={"retry-after": "3600"})
    )
    async with provider.adapter() as adapter:
        with pytest.raises(LLMRateLimitError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(timeout=None))
    assert route.call_count == 1
    assert waits == []
    assert info.value.retry_after == 3600.0


async def test_x_should_retry_false_stops_retries(
    provider: Provider, respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(provider.url).mock(
        return_value=provider.error(503, headers={"x-should-retry": "false"})
    )
    async with provider.adapter() as adapter:
        with pytest.raises(LLMServerError):
            await adapter.async_execute_prompt("hi")
    assert route.call_count == 1


async def test_x_should_retry_true_retries_any_status(
    provider: Provider, respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(provider.url).mock(
        side_effect=[
            provider.error(400, headers={"x-should-retry": "true"}),
            provider.ok(),
        ]
    )
    async with provider.adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert route.call_count == 2
    assert response.text


async def test_payment_required_is_a_rate_limit_error_and_not_retried(
    provider: Provider, respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(provider.url).mock(
        return_value=provider.error(402, "Insufficient credits")
    )
    async with provider.adapter() as adapter:
        with pytest.raises(LLMRateLimitError) as info:
            await adapter.async_execute_prompt("hi")
    assert route.call_count == 1
    assert info.value.status_code == 402
    assert "out of quota or credit" in info.value.message


# -- transport failures ----------------------------------------------------------


async def test_retries_a_connection_error_then_succeeds(
    provider: Provider, respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(provider.url).mock(
        side_effect=[httpx.ConnectError("connection refused"), provider.ok()]
    )
    async with provider.adapter() as adapter:
        response = await adapter.async_execute_prompt("hi")
    assert route.call_count == 2
    assert waits == [0.5]
    assert response.text


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ProxyError("proxy said no"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_transport_failures_become_connection_errors(
    provider: Provider,
    respx_mock: respx.MockRouter,
    waits: list[float],
    failure: httpx.TransportError,
) -> None:
    route = respx_mock.post(provider.url).mock(side_effect=failure)
    async with provider.adapter() as adapter:
        with pytest.raises(LLMConnectionError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=2))
    assert route.call_count == 3
    assert waits == [0.5, 1.0]
    assert info.value.__cause__ is failure
    assert type(failure).__name__ in info.value.message
    assert "Gave up after 3 attempts" in info.value.message


async def test_an_invalid_extra_header_is_a_configuration_error(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(provider.url).mock(return_value=provider.ok())
    async with provider.adapter() as adapter:
        with pytest.raises(LLMConfigurationError):
            await adapter.async_execute_prompt(
                "hi", RunConfig(extra_headers={"x-bad": "line\nbreak"})
            )
    assert route.call_count == 0


# -- unreadable answers ------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"<html><body>Bad gateway</body></html>", b"", b"[1, 2, 3]", b'"a string"'],
)
async def test_an_unreadable_200_is_a_response_error_with_an_excerpt(
    provider: Provider, respx_mock: respx.MockRouter, content: bytes
) -> None:
    route = respx_mock.post(provider.url).mock(
        return_value=httpx.Response(200, content=content)
    )
    async with provider.adapter() as adapter:
        with pytest.raises(LLMResponseError) as info:
            await adapter.async_execute_prompt("hi")
    assert route.call_count == 1  # not retried
    assert info.value.body == content.decode()
    if content:
        assert content.decode()[:10] in info.value.message
    else:
        assert "an empty body" in info.value.message


async def test_a_json_object_without_the_answer_is_a_response_error(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(provider.url).mock(
        return_value=httpx.Response(200, json={"unexpected": True})
    )
    async with provider.adapter() as adapter:
        with pytest.raises(LLMResponseError) as info:
            await adapter.async_execute_prompt("hi")
    assert info.value.body == '{"unexpected":true}'
    assert 'Received: {"unexpected":true}' in info.value.message


async def test_an_html_error_page_keeps_its_status_and_an_excerpt(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    respx_mock.post(provider.url).mock(return_value=httpx.Response(502, text=page))
    async with provider.adapter() as adapter:
        with pytest.raises(LLMServerError) as info:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=0))
    assert info.value.status_code == 502
    assert "502 Bad Gateway" in info.value.message
    assert info.value.body == page


async def test_a_redirect_is_not_followed(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(provider.url).mock(
        return_value=httpx.Response(
            307, headers={"location": "https://elsewhere.example/v1"}
        )
    )
    elsewhere = respx_mock.post(url__startswith="https://elsewhere.example")
    async with provider.adapter() as adapter:
        with pytest.raises(LLMProviderError) as info:
            await adapter.async_execute_prompt("hi")
    assert info.value.status_code == 307
    assert "https://elsewhere.example/v1" in info.value.message
    assert elsewhere.call_count == 0


# -- keys ------------------------------------------------------------------------------


def _all_text(error: BaseException) -> str:
    """Everything an error shows: message, repr, attributes, pickled form, causes."""
    parts = [str(error), repr(error), repr(vars(error)), repr(error.args)]
    parts.append(repr(pickle.loads(pickle.dumps(error)).__dict__))
    if error.__cause__ is not None:
        parts.append(_all_text(error.__cause__))
    return "\n".join(parts)


async def test_the_key_never_appears_in_errors_logs_or_repr(
    provider: Provider,
    respx_mock: respx.MockRouter,
    waits: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"Incorrect API key provided: {KEY}"
    respx_mock.post(provider.url).mock(
        side_effect=[
            provider.error(503, echo),
            httpx.ConnectError(f"cannot connect with {KEY}"),
            provider.error(401, echo),
        ]
    )
    errors: list[BaseException] = []
    async with provider.adapter() as adapter:
        assert KEY not in repr(adapter)
        with pytest.raises(LLMAuthenticationError) as info:
            await adapter.async_execute_prompt("hi")
        errors.append(info.value)
        respx_mock.post(provider.url).mock(
            return_value=httpx.Response(200, text=f"not json {KEY}")
        )
        with pytest.raises(LLMResponseError) as bad:
            await adapter.async_execute_prompt("hi")
        errors.append(bad.value)
        respx_mock.post(provider.url).mock(
            side_effect=httpx.ConnectError(f"refused for {KEY}")
        )
        with pytest.raises(LLMConnectionError) as down:
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=0))
        errors.append(down.value)
    assert "[REDACTED]" in str(info.value)
    for error in errors:
        shown = "\n".join(
            str(getattr(error, name))
            for name in ("message", "body", "code", "request_id")
            if hasattr(error, name)
        )
        assert KEY not in shown
        assert KEY not in str(error)
        assert KEY not in repr(error)
        assert KEY not in repr(pickle.loads(pickle.dumps(error)).__dict__)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "attempt 1 of 3" in logged  # the DEBUG log is there, and clean
    assert KEY not in logged


async def test_a_key_passed_in_extra_headers_is_scrubbed_too(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    other = "other-secret-token-1234567890"
    respx_mock.post(provider.url).mock(
        return_value=provider.error(401, f"token {other} is not valid")
    )
    async with provider.adapter() as adapter:
        with pytest.raises(LLMAuthenticationError) as info:
            await adapter.async_execute_prompt(
                "hi", RunConfig(extra_headers={"Authorization": f"Bearer {other}"})
            )
    assert other not in str(info.value)
    assert other not in (info.value.body or "")


def test_a_missing_key_names_the_environment_variable(provider: Provider) -> None:
    expected = {
        "openai": "OPENAI_API_KEY",
        "gemini": "GEMINI_API_KEY",
        "openrouter": "OPENROUTER_API_KEY",
    }[provider.name]
    with pytest.raises(LLMConfigurationError, match=expected):
        provider.make()
    with pytest.raises(LLMConfigurationError, match=expected):
        provider.make(api_key="   ")


def test_the_key_is_read_from_the_environment(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = {
        "openai": "OPENAI_API_KEY",
        "gemini": "GEMINI_API_KEY",
        "openrouter": "OPENROUTER_API_KEY",
    }[provider.name]
    monkeypatch.setenv(variable, f"  {KEY}\n")
    adapter = provider.make()
    assert adapter._api_key == KEY  # surrounding whitespace is dropped
    assert KEY not in repr(adapter)
    adapter.close()


@pytest.mark.parametrize("bad", ["sk-with space", "sk-line\nbreak", "sk-ünïcode"])
def test_a_key_that_cannot_be_a_header_is_refused_without_echoing_it(
    provider: Provider, bad: str
) -> None:
    with pytest.raises(LLMConfigurationError) as info:
        provider.make(api_key=bad)
    assert bad not in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    ["", "api.openai.com/v1", "ftp://example.com", "http://", "not a url", 42],
)
def test_a_malformed_base_url_is_refused(provider: Provider, base_url: Any) -> None:
    with pytest.raises(LLMConfigurationError, match="base_url"):
        provider.make(api_key=KEY, base_url=base_url)


def test_repr_shows_model_and_base_url_only(provider: Provider) -> None:
    adapter = provider.adapter(base_url="https://user:hunter2@proxy.example/v1/")
    shown = repr(adapter)
    assert shown.startswith(f"<{type(adapter).__name__} model='{provider.model}'")
    assert "base_url='https://proxy.example/v1'" in shown
    assert "hunter2" not in shown
    assert KEY not in shown
    adapter.close()


def test_http_client_must_be_an_httpx_async_client(provider: Provider) -> None:
    with pytest.raises(LLMConfigurationError, match="http_client"):
        provider.make(api_key=KEY, http_client=httpx.Client())


# -- config mapping shared by all -----------------------------------------------------


async def test_streaming_in_extra_body_is_refused_before_any_request(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(provider.url).mock(return_value=provider.ok())
    async with provider.adapter() as adapter:
        with pytest.raises(LLMConfigurationError, match="stream"):
            await adapter.async_execute_prompt(
                "hi", RunConfig(extra_body={"stream": True})
            )
    assert route.call_count == 0


async def test_a_body_that_is_not_json_is_refused_before_any_request(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(provider.url).mock(return_value=provider.ok())
    async with provider.adapter() as adapter:
        for bad in ({"seed": float("nan")}, {"seed": object()}):
            with pytest.raises(LLMConfigurationError, match="extra_body"):
                await adapter.async_execute_prompt("hi", RunConfig(extra_body=bad))
    assert route.call_count == 0


async def test_extra_headers_are_sent_and_win(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(provider.url).mock(return_value=provider.ok())
    async with provider.adapter() as adapter:
        await adapter.async_execute_prompt(
            "hi",
            RunConfig(extra_headers={"X-Trace": "abc", "User-Agent": "my-app/2"}),
        )
    sent = route.calls.last.request.headers
    assert sent["x-trace"] == "abc"
    assert sent.get_list("user-agent") == ["my-app/2"]


async def test_the_default_user_agent_names_llm_connect(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(provider.url).mock(return_value=provider.ok())
    async with provider.adapter() as adapter:
        await adapter.async_execute_prompt("hi")
    assert route.calls.last.request.headers["user-agent"].startswith("llm-connect/")


async def test_a_provider_base_url_with_a_path_and_query_is_kept(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(url__startswith="http://127.0.0.1:8000/proxy/").mock(
        return_value=provider.ok()
    )
    async with provider.adapter(base_url="http://127.0.0.1:8000/proxy/?tenant=7") as a:
        await a.async_execute_prompt("hi")
    url = route.calls.last.request.url
    assert url.path.startswith("/proxy/")
    assert "//" not in url.path
    assert url.params["tenant"] == "7"


# -- clients and event loops ----------------------------------------------------


async def test_one_client_per_loop_is_reused_and_closed_by_aclose(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(provider.url).mock(return_value=provider.ok())
    adapter = provider.adapter()
    await adapter.async_execute_prompt("one")
    client = adapter._clients.get()
    await adapter.async_execute_prompt("two")
    assert adapter._clients.get() is client
    assert len(adapter._clients) == 1
    await adapter.aclose()
    assert client.is_closed
    assert len(adapter._clients) == 0


async def test_a_supplied_http_client_is_used_and_left_open(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(provider.url).mock(return_value=provider.ok())
    async with httpx.AsyncClient(headers={"x-from-my-client": "yes"}) as mine:
        async with provider.adapter(http_client=mine) as adapter:
            await adapter.async_execute_prompt("hi")
            assert len(adapter._clients) == 0  # made none of its own
        assert not mine.is_closed
        assert route.calls.last.request.headers["x-from-my-client"] == "yes"


def test_sync_calls_reuse_one_client_and_close_releases_it(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(provider.url).mock(return_value=provider.ok())
    adapter = provider.adapter()
    first = adapter.execute_prompt("one")
    second = adapter.execute_prompt("two")
    assert first.text == second.text
    assert route.call_count == 2
    assert len(adapter._clients) == 1
    (client,) = adapter._clients._clients.values()
    adapter.close()
    assert client.is_closed


def test_each_event_loop_gets_its_own_client_and_ended_loops_are_dropped(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(provider.url).mock(return_value=provider.ok())
    adapter = provider.adapter()
    clients: list[httpx.AsyncClient] = []

    async def call() -> str:
        response = await adapter.async_execute_prompt("hi")
        clients.append(adapter._clients.get())
        return response.text

    backends = ["asyncio", "asyncio"]
    if "trio" in BACKENDS:
        backends.append("trio")
    for backend in backends:
        assert anyio.run(call, backend=backend)
    assert len({id(c) for c in clients}) == len(backends)  # never shared
    # Only the last loop's client can still be held; ended asyncio loops are
    # dropped as soon as another client is made.
    assert len(adapter._clients) <= 1
    adapter.close()  # no error for clients of loops that have ended


async def test_a_cancelled_call_leaves_no_task_behind(
    provider: Provider, respx_mock: respx.MockRouter
) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(10)
        return provider.ok()

    respx_mock.post(provider.url).mock(side_effect=slow)
    before = await running_tasks()
    async with provider.adapter() as adapter:
        with anyio.move_on_after(0.2) as scope:
            await adapter.async_execute_prompt("hi")
    assert scope.cancelled_caught
    assert await running_tasks() == before


# -- the pieces ----------------------------------------------------------------


def test_backoff_doubles_from_half_a_second_up_to_eight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_http, "_random", lambda: 0.0)
    assert [backoff(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    monkeypatch.setattr(_http, "_random", lambda: 0.999)
    assert backoff(1) == pytest.approx(0.5 * (1 - 0.25 * 0.999))


def test_parse_retry_after_reads_seconds_milliseconds_and_dates() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after": "7"})) == 7.0
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "20"})) == 0.02
    assert parse_retry_after(httpx.Headers({"retry-after": "-5"})) == 0.0
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx.Headers({"retry-after": "inf"})) is None
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "x"})) is None
    assert parse_retry_after(httpx.Headers()) is None
    future = datetime.now(timezone.utc) + timedelta(seconds=30)
    seconds = parse_retry_after(
        httpx.Headers({"retry-after": format_datetime(future, usegmt=True)})
    )
    assert seconds is not None
    assert 27 <= seconds <= 30
    past = format_datetime(datetime(2020, 1, 1, tzinfo=timezone.utc), usegmt=True)
    assert parse_retry_after(httpx.Headers({"retry-after": past})) == 0.0


def test_merge_body_merges_nested_objects_and_extra_wins() -> None:
    body = {"model": "m", "config": {"a": 1, "b": 2}, "list": [1]}
    extra = {"config": {"b": 3, "c": 4}, "list": [2], "new": None}
    assert merge_body(body, extra) == {
        "model": "m",
        "config": {"a": 1, "b": 3, "c": 4},
        "list": [2],
        "new": None,
    }
    assert body == {"model": "m", "config": {"a": 1, "b": 2}, "list": [1]}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
# Shapes near the real ones, so the parsers' deeper branches are reached.
NEAR_VALID = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "message": st.dictionaries(
                        st.sampled_from(["content", "refusal", "role"]), JSON
                    ),
                    "finish_reason": JSON,
                    "error": JSON,
                },
            )
            | JSON,
            max_size=2,
        ),
        "candidates": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "content": st.fixed_dictionaries(
                        {}, optional={"parts": st.lists(JSON, max_size=3)}
                    )
                    | JSON,
                    "finishReason": JSON,
                },
            )
            | JSON,
            max_size=2,
        ),
        "usage": st.dictionaries(st.text(max_size=20), JSON) | JSON,
        "usageMetadata": st.dictionaries(st.text(max_size=20), JSON) | JSON,
        "promptFeedback": JSON,
        "error": JSON,
        "model": JSON,
    },
)


@pytest.mark.parametrize(
    "make", [p.make for p in PROVIDERS], ids=[p.name for p in PROVIDERS]
)
@settings(max_examples=150, deadline=None)
@given(data=NEAR_VALID | JSON, status=st.sampled_from([200, 400, 429, 500]))
def test_any_json_answer_is_a_response_or_an_llm_error(
    make: Callable[..., HTTPAdapter], data: Any, status: int
) -> None:
    adapter = make(api_key=KEY)
    request = httpx.Request("POST", "https://example.test/")
    response = httpx.Response(
        status, content=json.dumps(data).encode(), request=request
    )
    outcome: object
    try:
        outcome = adapter._handle(response, RunConfig(model="m"))
    except _http._AttemptFailed as failure:  # an error the provider reported
        outcome = failure.error
    except LLMResponseError as error:  # an answer that cannot be read
        outcome = error
    if isinstance(outcome, LLMResponse):
        assert status == 200
        assert outcome.usage.total_tokens >= 0
    else:
        assert isinstance(outcome, LLMError)
