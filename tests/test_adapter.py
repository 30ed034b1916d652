"""The Core path every adapter shares, through FakeAdapter and a custom adapter."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from decimal import Decimal

import anyio
import attrs
import pytest

from llm_connect import (
    LLMAdapter,
    LLMConfigurationError,
    LLMError,
    LLMResponse,
    LLMServerError,
    LLMTimeoutError,
    Message,
    RunConfig,
    Usage,
)
from llm_connect.testing import FakeAdapter

from .conftest import running_tasks


class EchoAdapter(LLMAdapter):
    """The custom adapter from docs/core-contract.md, trimmed."""

    provider = "echo"

    def __init__(self, *, default_config: RunConfig | None = None) -> None:
        super().__init__(default_config=default_config)
        self.sent: list[tuple[tuple[Message, ...], RunConfig]] = []
        self.closed_resources = 0

    async def _call_provider(
        self, messages: Sequence[Message], config: RunConfig
    ) -> LLMResponse:
        self.sent.append((tuple(messages), config))
        assert config.model is not None
        return LLMResponse(
            text=messages[-1].content.upper(),
            model=config.model,
            provider=self.provider,
            usage=Usage(1, 1, 2),
        )

    async def _aclose_resources(self) -> None:
        self.closed_resources += 1


async def test_custom_adapter_gets_merged_config_and_messages() -> None:
    adapter = EchoAdapter(default_config=RunConfig(model="m1", temperature=0.1))
    response = await adapter.async_execute_prompt(
        "hello", RunConfig(system_prompt="be loud", temperature=0.7)
    )
    assert response.text == "HELLO"
    assert response.provider == "echo"
    assert response.model == "m1"
    assert response.latency_s >= 0
    messages, config = adapter.sent[0]
    assert messages == (Message("system", "be loud"), Message("user", "hello"))
    assert (config.model, config.temperature) == ("m1", 0.7)


class FullAnswerAdapter(LLMAdapter):
    """Returns an answer with every LLMResponse field set, slowly enough to time."""

    provider = "full"
    requires_model = False

    def __init__(self, answer: LLMResponse) -> None:
        super().__init__()
        self.answer = answer

    async def _call_provider(
        self, messages: Sequence[Message], config: RunConfig
    ) -> LLMResponse:
        await anyio.sleep(0.02)
        return self.answer


async def test_core_keeps_every_field_and_stamps_latency() -> None:
    """The Core rebuilds the answer to stamp latency: nothing else may change."""
    answer = LLMResponse(
        text="t",
        model="m",
        provider="p",
        usage=Usage(5, 7, 12, cached_input_tokens=2, reasoning_tokens=3),
        cost=Decimal("0.25"),
        finish_reason="length",
        raw={"raw": [1, 2]},
        request_id="req-1",
        latency_s=99.0,
    )
    response = await FullAnswerAdapter(answer).async_execute_prompt("hi")
    for field in attrs.fields(LLMResponse):
        if field.name != "latency_s":
            assert getattr(response, field.name) == getattr(answer, field.name), (
                field.name
            )
    assert response.raw is answer.raw
    assert 0.02 <= response.latency_s < 5


async def test_conversation_is_passed_through_in_order() -> None:
    adapter = EchoAdapter(default_config=RunConfig(model="m"))
    turns = [
        Message("system", "sys"),
        Message("user", "a"),
        Message("assistant", "b"),
        Message("user", "c"),
    ]
    response = await adapter.async_execute_prompt(turns)
    assert response.text == "C"
    assert adapter.sent[0][0] == tuple(turns)


@pytest.mark.parametrize(
    ("prompt", "match"),
    [
        ("", "prompt is empty"),
        ("   \n", "prompt is empty"),
        ([], "no user or assistant message"),
        ([Message("system", "only")], "no user or assistant message"),
        (["hi"], r"prompt\[0\] is a str"),
        (b"bytes", "must be a str or a sequence of Message"),
        (None, "must be a str or a sequence of Message"),
    ],
)
async def test_bad_prompt_is_refused_before_any_io(prompt: object, match: str) -> None:
    adapter = EchoAdapter(default_config=RunConfig(model="m"))
    with pytest.raises(LLMConfigurationError, match=match):
        await adapter.async_execute_prompt(prompt)  # type: ignore[arg-type]
    assert adapter.sent == []


async def test_missing_model_is_refused_before_any_io() -> None:
    adapter = EchoAdapter()
    with pytest.raises(LLMConfigurationError, match=r"No model set for EchoAdapter"):
        await adapter.async_execute_prompt("hi")
    assert adapter.sent == []


async def test_config_of_the_wrong_type_is_refused() -> None:
    adapter = EchoAdapter(default_config=RunConfig(model="m"))
    with pytest.raises(LLMConfigurationError, match="config must be a RunConfig"):
        await adapter.async_execute_prompt("hi", {"model": "m"})  # type: ignore[arg-type]
    with pytest.raises(LLMConfigurationError, match="default_config must be"):
        EchoAdapter(default_config={"model": "m"})  # type: ignore[arg-type]


async def test_unexpected_exceptions_become_llm_errors_with_the_cause_chained() -> None:
    def broken(messages: Sequence[Message], config: RunConfig) -> str:
        raise KeyError("choices")

    adapter = FakeAdapter(broken)
    with pytest.raises(
        LLMError, match="FakeAdapter failed unexpectedly: KeyError"
    ) as info:
        await adapter.async_execute_prompt("hi")
    assert isinstance(info.value.__cause__, KeyError)


async def test_llm_errors_pass_through_unchanged() -> None:
    error = LLMServerError("down", provider="fake", status_code=503)
    adapter = FakeAdapter([error])
    with pytest.raises(LLMServerError) as info:
        await adapter.async_execute_prompt("hi")
    assert info.value is error


async def test_concurrent_calls_over_four_adapters_complete_in_order() -> None:
    adapters = [FakeAdapter(f"answer-{i}", delay=0.05 * (4 - i)) for i in range(4)]
    results: list[str | None] = [None] * 4

    async def run(i: int) -> None:
        results[i] = (await adapters[i].async_execute_prompt(f"q{i}")).text

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(run, i)
    elapsed = time.perf_counter() - started
    assert results == ["answer-0", "answer-1", "answer-2", "answer-3"]
    # Concurrent, not one after another (0.5 s serial); generous for a busy box.
    assert elapsed < 0.45
    assert [a.calls[0].prompt for a in adapters] == ["q0", "q1", "q2", "q3"]


async def test_timeout_raises_llm_timeout_error_promptly() -> None:
    adapter = FakeAdapter("late", delay=2)
    started = time.perf_counter()
    with pytest.raises(LLMTimeoutError, match=r"within 0\.3 s") as info:
        await adapter.async_execute_prompt("hi", RunConfig(timeout=0.3))
    elapsed = time.perf_counter() - started
    assert 0.29 <= elapsed < 0.6
    assert info.value.timeout == 0.3
    assert info.value.provider == "fake"
    assert adapter.calls == []


async def test_default_timeout_comes_from_default_config() -> None:
    adapter = FakeAdapter("late", delay=2, default_config=RunConfig(timeout=0.2))
    with pytest.raises(LLMTimeoutError):
        await adapter.async_execute_prompt("hi")
    # A call can lift it again.
    adapter.delay = 0.3
    response = await adapter.async_execute_prompt("hi", RunConfig(timeout=None))
    assert response.text == "late"


async def test_cancelling_a_call_leaves_no_task_or_thread_behind() -> None:
    adapter = FakeAdapter("never", delay=10)
    threads_before = set(threading.enumerate())
    tasks_before = await running_tasks()
    started = time.perf_counter()
    with anyio.move_on_after(0.2) as scope:
        await adapter.async_execute_prompt("hi")
    assert scope.cancelled_caught
    assert time.perf_counter() - started < 1.0
    assert adapter.calls == []
    # Outer cancellation is not reported as our timeout, and nothing lingers.
    assert set(threading.enumerate()) - threads_before == set()
    assert await running_tasks() == tasks_before
    await adapter.aclose()


async def test_cancellation_inside_a_task_group_is_clean() -> None:
    adapter = FakeAdapter("never", delay=10)
    fast = FakeAdapter("quick")
    results: list[str] = []

    async def quick() -> None:
        results.append((await fast.async_execute_prompt("x")).text)

    async with anyio.create_task_group() as tg:
        tg.start_soon(adapter.async_execute_prompt, "hi")
        tg.start_soon(quick)
        await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
    assert results == ["quick"]
    assert adapter.calls == []


async def test_async_context_manager_closes_and_closed_adapter_refuses_calls() -> None:
    async with EchoAdapter(default_config=RunConfig(model="m")) as adapter:
        await adapter.async_execute_prompt("hi")
    assert adapter.closed_resources >= 1
    with pytest.raises(LLMConfigurationError, match="EchoAdapter is closed"):
        await adapter.async_execute_prompt("hi")
    await adapter.aclose()  # idempotent


def test_repr_shows_the_default_model() -> None:
    assert repr(EchoAdapter(default_config=RunConfig(model="m"))) == (
        "<EchoAdapter model='m'>"
    )


async def test_native_gather_and_nursery_over_four_adapters_keep_order(
    anyio_backend: str,
) -> None:
    adapters = [FakeAdapter(f"r{i}", delay=0.02 * (4 - i)) for i in range(4)]
    if anyio_backend == "asyncio":
        import asyncio

        responses = await asyncio.gather(
            *(a.async_execute_prompt(f"q{i}") for i, a in enumerate(adapters))
        )
        texts = [r.text for r in responses]
    else:
        import trio

        slots: list[str] = [""] * 4

        async def run(i: int) -> None:
            slots[i] = (await adapters[i].async_execute_prompt(f"q{i}")).text

        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(run, i)
        texts = slots
    assert texts == ["r0", "r1", "r2", "r3"]
