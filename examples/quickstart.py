"""A runnable tour of llm-connect with no network and no keys: FakeAdapter.

Run it with ``python3 examples/quickstart.py``. It makes the same calls from a
plain script (sync), from asyncio and from trio (if installed), and shows the
timeout and error handling every adapter shares.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from decimal import Decimal

import anyio

from llm_connect import LLMTimeoutError, Message, RunConfig, Usage
from llm_connect.testing import FakeAdapter


def answer(messages: Sequence[Message], config: RunConfig) -> str:
    """Stands in for a model: reverses the last user message."""
    return messages[-1].content[::-1]


def main() -> None:
    adapter = FakeAdapter(
        answer,
        usage=Usage(12, 5, 17),
        cost=Decimal("0.000042"),
        default_config=RunConfig(model="fake-large", temperature=0.2),
    )

    # 1. Sync, from a plain script.
    with adapter:
        response = adapter.execute_prompt("hello, world")
        print(
            f"sync     : {response.text!r} ({response.usage.total_tokens} tokens,"
            f" ${response.cost})"
        )

    # 2. asyncio: four calls at once.
    async def fan_out() -> list[str]:
        fake = FakeAdapter(answer, delay=0.05)
        async with fake:
            results = await asyncio.gather(
                *(fake.async_execute_prompt(f"question {i}") for i in range(4))
            )
        return [r.text for r in results]

    print("asyncio  :", asyncio.run(fan_out()))

    # 3. trio, through the same API (anyio underneath).
    if importlib.util.find_spec("trio"):

        async def one() -> str:
            async with FakeAdapter(answer) as fake:
                return (await fake.async_execute_prompt("from trio")).text

        print("trio     :", anyio.run(one, backend="trio"))

    # 4. The deadline covers the whole call.
    slow = FakeAdapter("too late", delay=2)
    try:
        slow.execute_prompt("hurry", RunConfig(timeout=0.3))
    except LLMTimeoutError as exc:
        print("timeout  :", exc)
    finally:
        slow.close()


if __name__ == "__main__":
    main()
