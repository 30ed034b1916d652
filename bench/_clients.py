"""The clients compared: each makes the same OpenAI call and reads the answer text.

An async client is an async context manager factory yielding ``call()``, a
coroutine function that sends one chat completion and returns the text. Raw
httpx / httpx2 do what an application would: POST the JSON body with the auth
header, check the status, parse the JSON, pick the text.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, NamedTuple

import anyio

from bench._common import API_KEY, MODEL, PROMPT, percentile

Call = Callable[[], Awaitable[str]]
ClientFactory = Callable[[str], AbstractAsyncContextManager[Call]]

BODY = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
HEADERS = {"authorization": f"Bearer {API_KEY}"}


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@asynccontextmanager
async def _raw(module_name: str, base_url: str) -> AsyncIterator[Call]:
    """What an application does with a bare httpx-style client."""
    module = importlib.import_module(module_name)
    url = base_url + "/chat/completions"
    async with module.AsyncClient() as client:

        async def call() -> str:
            reply = await client.post(url, json=BODY, headers=HEADERS)
            reply.raise_for_status()
            text: str = reply.json()["choices"][0]["message"]["content"]
            return text

        yield call


def raw_httpx(base_url: str) -> AbstractAsyncContextManager[Call]:
    return _raw("httpx", base_url)


def raw_httpx2(base_url: str) -> AbstractAsyncContextManager[Call]:
    return _raw("httpx2", base_url)


@asynccontextmanager
async def openai_sdk(base_url: str) -> AsyncIterator[Call]:
    import openai

    async with openai.AsyncOpenAI(api_key=API_KEY, base_url=base_url) as client:

        async def call() -> str:
            completion = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": PROMPT}]
            )
            return completion.choices[0].message.content or ""

        yield call


@asynccontextmanager
async def llm_connect_adapter(base_url: str, **config: Any) -> AsyncIterator[Call]:
    from llm_connect import OpenAIAdapter, RunConfig

    adapter = OpenAIAdapter(
        api_key=API_KEY,
        base_url=base_url,
        default_config=RunConfig(model=MODEL, **config),
    )
    async with adapter:

        async def call() -> str:
            return (await adapter.async_execute_prompt(PROMPT)).text

        yield call


def async_clients(include_httpx2: bool = True) -> dict[str, ClientFactory]:
    """The async cases in table order; peers that are not installed are left out."""
    clients: dict[str, ClientFactory] = {"raw httpx": raw_httpx}
    if include_httpx2 and installed("httpx2"):
        clients["raw httpx2"] = raw_httpx2
    if installed("openai"):
        clients["openai SDK"] = openai_sdk
    clients["llm-connect"] = llm_connect_adapter
    return clients


# -- one round -------------------------------------------------------------------


async def sequential_round(factory: ClientFactory, base_url: str, n: int) -> float:
    """Requests per second of ``n`` calls one after another (after a warm-up)."""
    async with factory(base_url) as call:
        for _ in range(20):
            await call()
        started = time.perf_counter()
        for _ in range(n):
            await call()
        return n / (time.perf_counter() - started)


async def concurrent_round(
    factory: ClientFactory, base_url: str, n: int, workers: int
) -> Round:
    """``n`` calls shared by ``workers`` tasks (after a warm-up wave)."""
    async with factory(base_url) as call:
        await _swarm(call, workers * 2, workers)  # open the connections
        cpu = time.process_time()
        started = time.perf_counter()
        latencies = await _swarm(call, n, workers)
        elapsed = time.perf_counter() - started
        cpu_us = (time.process_time() - cpu) / n * 1e6
        return Round(n / elapsed, percentile(latencies, 99), cpu_us)


class Round(NamedTuple):
    """What one round of concurrent calls measured."""

    rate: float  # calls per second
    p99: float  # seconds
    cpu_us: float  # client CPU time per call, microseconds


async def _swarm(call: Call, n: int, workers: int) -> list[float]:
    latencies: list[float] = []
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)
    return latencies
