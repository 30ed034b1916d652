"""The HTTP adapters against a real loopback server speaking their wire formats.

Real sockets on 127.0.0.1, real faults on a script: slow answers, stalls and
resets mid-body, 429 with Retry-After, 503 then success. Every test runs for
OpenAI, Gemini and OpenRouter, under asyncio and trio.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal

import anyio
import pytest

from llm_connect import (
    BudgetTracker,
    GeminiAdapter,
    LLMAdapter,
    LLMConnectionError,
    LLMRateLimitError,
    LLMResponse,
    LLMServerError,
    LLMTimeoutError,
    OpenAIAdapter,
    OpenRouterAdapter,
    RunConfig,
    Usage,
    pricing,
)
from llm_connect.testing.server import Fail, LoopbackServer, Reset, Respond, Stall

pytestmark = pytest.mark.integration

KEY = "sk-loopback-test-key-0123456789"
USAGE = Usage(120, 30, 150, cached_input_tokens=20)
MODELS = {
    "openai": "gpt-4o-mini",
    "gemini": "gemini-2.5-flash",
    "openrouter": "openai/gpt-4o-mini",
}
OPENROUTER_COST = Decimal("0.00004321")


def _adapter(provider: str, server: LoopbackServer) -> LLMAdapter:
    config = RunConfig(model=MODELS[provider], max_retries=2, timeout=10)
    if provider == "openai":
        return OpenAIAdapter(
            KEY, base_url=server.openai_base_url, default_config=config
        )
    if provider == "gemini":
        return GeminiAdapter(
            KEY, base_url=server.gemini_base_url, default_config=config
        )
    return OpenRouterAdapter(
        KEY, base_url=server.openrouter_base_url, default_config=config
    )


def _expected_cost(provider: str, response: LLMResponse) -> Decimal:
    if provider == "openrouter":
        return OPENROUTER_COST
    price = pricing.lookup(provider, MODELS[provider])
    assert price is not None
    return price.cost(USAGE)


@pytest.fixture(params=sorted(MODELS))
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    async with LoopbackServer(
        text="Bonjour from the loopback server.",
        usage=USAGE,
        cost=OPENROUTER_COST,
        api_key=KEY,
    ) as running:
        yield running


def _posts(server: LoopbackServer) -> list[int | None]:
    return [r.status for r in server.requests if r.method == "POST"]


async def test_a_call_gets_text_usage_and_cost_and_sends_the_right_request(
    provider: str, server: LoopbackServer
) -> None:
    tracker = BudgetTracker("1.00")
    async with _adapter(provider, server) as adapter:
        response = await adapter.async_execute_prompt(
            "Say hello in French.",
            RunConfig(system_prompt="Be brief.", max_tokens=64, budget_tracker=tracker),
        )
    assert response.text == "Bonjour from the loopback server."
    assert response.usage.input_tokens == USAGE.input_tokens
    assert response.usage.output_tokens == USAGE.output_tokens
    assert response.usage.cached_input_tokens == USAGE.cached_input_tokens
    assert response.cost == _expected_cost(provider, response)
    assert tracker.spent == response.cost
    assert tracker.reserved == 0
    assert response.finish_reason == "stop"
    (request,) = server.requests
    assert request.route == provider
    assert request.prompt == "Say hello in French."
    assert request.api_key == KEY
    assert request.json is not None
    if provider == "gemini":
        assert request.json["systemInstruction"]["parts"][0]["text"] == "Be brief."
        assert request.json["generationConfig"]["maxOutputTokens"] == 64
        assert request.path.endswith(f"/models/{MODELS[provider]}:generateContent")
        assert "key" not in request.query  # the key goes in a header only
    else:
        assert request.json["model"] == MODELS[provider]
        assert request.json["messages"][0] == {
            "role": "system",
            "content": "Be brief.",
        }
        assert request.json["max_tokens"] == 64


async def test_503_then_success_retries_and_charges_the_budget_once(
    provider: str, server: LoopbackServer
) -> None:
    tracker = BudgetTracker("1.00")
    server.script(Fail(503), Respond())
    async with _adapter(provider, server) as adapter:
        response = await adapter.async_execute_prompt(
            "hi", RunConfig(budget_tracker=tracker)
        )
    assert _posts(server) == [503, 200]
    assert server.pending_actions == ()
    assert response.cost is not None
    assert tracker.spent == response.cost  # once, for the call that succeeded
    assert tracker.reserved == 0


async def test_429_with_retry_after_is_honoured(
    provider: str, server: LoopbackServer
) -> None:
    server.script(Fail(429, retry_after=0.4), Respond())
    async with _adapter(provider, server) as adapter:
        response = await adapter.async_execute_prompt("hi")
    first, second = server.requests
    assert [first.status, second.status] == [429, 200]
    assert second.time - first.time >= 0.38  # waited as the server asked
    assert response.text == "Bonjour from the loopback server."


async def test_429_until_retries_run_out_is_a_rate_limit_error(
    provider: str, server: LoopbackServer
) -> None:
    tracker = BudgetTracker("1.00")
    server.script(Fail(429, retry_after=0.1), Fail(429, retry_after=0.1))
    async with _adapter(provider, server) as adapter:
        with pytest.raises(LLMRateLimitError) as info:
            await adapter.async_execute_prompt(
                "hi", RunConfig(max_retries=1, budget_tracker=tracker)
            )
    assert info.value.status_code == 429
    assert info.value.retry_after == pytest.approx(0.1)
    assert info.value.provider == provider
    assert KEY not in str(info.value)
    assert KEY not in (info.value.body or "")
    assert _posts(server) == [429, 429]
    assert (tracker.spent, tracker.reserved) == (0, 0)


async def test_a_slow_answer_is_cut_off_by_the_timeout_on_time(
    provider: str, server: LoopbackServer
) -> None:
    tracker = BudgetTracker("1.00")
    server.script(Respond(delay=5))
    async with _adapter(provider, server) as adapter:
        started = time.perf_counter()
        with pytest.raises(LLMTimeoutError):
            await adapter.async_execute_prompt(
                "hi", RunConfig(timeout=0.5, budget_tracker=tracker)
            )
        elapsed = time.perf_counter() - started
    assert 0.45 <= elapsed < 1.5
    assert (tracker.spent, tracker.reserved) == (0, 0)


async def test_a_stall_mid_body_is_cut_off_by_the_timeout_on_time(
    provider: str, server: LoopbackServer
) -> None:
    server.script(Stall(after_bytes=40))
    async with _adapter(provider, server) as adapter:
        started = time.perf_counter()
        with pytest.raises(LLMTimeoutError):
            await adapter.async_execute_prompt("hi", RunConfig(timeout=0.5))
        elapsed = time.perf_counter() - started
        # The adapter is still usable after the cut-off.
        response = await adapter.async_execute_prompt("again")
    assert 0.45 <= elapsed < 1.5
    assert response.text == "Bonjour from the loopback server."


async def test_a_reset_mid_body_is_a_connection_error_or_retried(
    provider: str, server: LoopbackServer
) -> None:
    server.script(Reset(after_bytes=30))
    async with _adapter(provider, server) as adapter:
        with pytest.raises(LLMConnectionError):
            await adapter.async_execute_prompt("hi", RunConfig(max_retries=0))
        tracker = BudgetTracker("1.00")
        server.script(Reset(after_bytes=30), Respond())
        response = await adapter.async_execute_prompt(
            "hi", RunConfig(max_retries=1, budget_tracker=tracker)
        )
    assert response.text == "Bonjour from the loopback server."
    assert tracker.spent == response.cost
    assert server.pending_actions == ()


async def test_the_whole_retry_sequence_fits_inside_the_timeout(
    provider: str, server: LoopbackServer
) -> None:
    server.script(*[Fail(503, retry_after=0.3)] * 5)
    async with _adapter(provider, server) as adapter:
        started = time.perf_counter()
        with pytest.raises((LLMTimeoutError, LLMServerError)):
            await adapter.async_execute_prompt(
                "hi", RunConfig(max_retries=4, timeout=0.8)
            )
        elapsed = time.perf_counter() - started
    assert elapsed < 1.6  # never slept past the deadline
    assert 2 <= len(_posts(server)) <= 3


async def test_sequential_calls_reuse_one_connection(
    provider: str, server: LoopbackServer
) -> None:
    async with _adapter(provider, server) as adapter:
        for i in range(10):
            await adapter.async_execute_prompt(f"q{i}")
    assert len(server.requests) == 10
    assert len({r.client for r in server.requests}) == 1


async def test_concurrent_calls_on_a_shared_budget_are_charged_exactly(
    provider: str, server: LoopbackServer
) -> None:
    tracker = BudgetTracker("1.00")
    costs: list[Decimal] = []
    async with _adapter(provider, server) as adapter:

        async def call(i: int) -> None:
            response = await adapter.async_execute_prompt(
                f"q{i}", RunConfig(budget_tracker=tracker, max_tokens=100)
            )
            assert response.cost is not None
            costs.append(response.cost)

        async with anyio.create_task_group() as tg:
            for i in range(32):
                tg.start_soon(call, i)
    assert len(costs) == 32
    assert len(server.requests) == 32
    assert tracker.spent == sum(costs, Decimal(0))
    assert tracker.reserved == 0


def test_sync_calls_against_a_server_thread_reuse_the_connection(
    provider: str,
) -> None:
    with LoopbackServer(text="sync ok", usage=USAGE, api_key=KEY) as server:
        with _adapter(provider, server) as adapter:
            texts = [adapter.execute_prompt(f"q{i}").text for i in range(5)]
            server.script(Respond(delay=3))
            started = time.perf_counter()
            with pytest.raises(LLMTimeoutError):
                adapter.execute_prompt("slow", RunConfig(timeout=0.4))
            assert time.perf_counter() - started < 1.5
        assert texts == ["sync ok"] * 5
        first_five = server.requests[:5]
        assert len({r.client for r in first_five}) == 1
