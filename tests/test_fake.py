"""FakeAdapter: the public test double, served through the real Core path."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import anyio
import anyio.lowlevel
import pytest

from llm_connect import (
    LLMConfigurationError,
    LLMRateLimitError,
    Message,
    RunConfig,
    Usage,
)
from llm_connect.testing import FakeAdapter


async def test_a_string_is_served_every_time() -> None:
    adapter = FakeAdapter("same")
    texts = [(await adapter.async_execute_prompt(f"q{i}")).text for i in range(3)]
    assert texts == ["same"] * 3
    assert [call.prompt for call in adapter.calls] == ["q0", "q1", "q2"]


async def test_a_list_is_served_in_order_with_exceptions_raised_in_turn() -> None:
    error = LLMRateLimitError("slow down", provider="fake", status_code=429)
    adapter = FakeAdapter(["one", error, "three"])
    assert (await adapter.async_execute_prompt("a")).text == "one"
    with pytest.raises(LLMRateLimitError) as info:
        await adapter.async_execute_prompt("b")
    assert info.value is error
    assert (await adapter.async_execute_prompt("c")).text == "three"
    with pytest.raises(LLMConfigurationError, match="served all 3 scripted"):
        await adapter.async_execute_prompt("d")
    assert [call.prompt for call in adapter.calls] == ["a", "b", "c"]


async def test_a_function_writes_the_answer_from_messages_and_config() -> None:
    def answer(messages: Sequence[Message], config: RunConfig) -> str:
        return f"{config.model}:{len(messages)}:{messages[-1].content}"

    adapter = FakeAdapter(answer)
    response = await adapter.async_execute_prompt(
        "hi", RunConfig(model="m", system_prompt="s")
    )
    assert response.text == "m:2:hi"
    assert response.model == "m"


async def test_an_async_function_is_awaited() -> None:
    async def answer(messages: Sequence[Message], config: RunConfig) -> str:
        await anyio.lowlevel.checkpoint()
        return "awaited"

    response = await FakeAdapter(answer).async_execute_prompt("hi")
    assert response.text == "awaited"


async def test_usage_is_counted_from_the_text_by_default() -> None:
    adapter = FakeAdapter("12345678")  # 8 characters -> 2 tokens
    response = await adapter.async_execute_prompt("abcde")  # 5 -> 2 tokens
    assert response.usage == Usage(2, 2, 4)
    assert response.cost is None
    assert response.provider == "fake"
    assert response.model == "fake-model"
    assert response.finish_reason == "stop"
    assert response.request_id == "fake-1"


async def test_usage_and_cost_are_reported_as_given() -> None:
    usage = Usage(100, 20, 120, cached_input_tokens=50)
    adapter = FakeAdapter("x", usage=usage, cost=Decimal("0.0042"), model="m2")
    response = await adapter.async_execute_prompt("hi")
    assert response.usage == usage
    assert response.cost == Decimal("0.0042")
    assert response.model == "m2"


async def test_delay_is_waited() -> None:
    adapter = FakeAdapter("x", delay=0.2)
    started = anyio.current_time()
    await adapter.async_execute_prompt("hi")
    assert anyio.current_time() - started >= 0.19


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"responses": 42}, "responses must be"),
        ({"usage": (1, 2, 3)}, "usage must be a Usage"),
        ({"cost": 0.1}, "cost must be a Decimal"),
        ({"delay": -1}, "delay must be >= 0"),
        ({"delay": "1"}, "delay must be >= 0"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(LLMConfigurationError, match=match):
        FakeAdapter(**kwargs)  # type: ignore[arg-type]


def test_a_non_string_answer_is_refused() -> None:
    adapter = FakeAdapter(lambda messages, config: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(LLMConfigurationError, match="must be a str, not int"):
        adapter.execute_prompt("hi")
    adapter.close()
