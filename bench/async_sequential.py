"""Async, one call at a time: requests per second on asyncio (and on trio).

Run: ``python bench/async_sequential.py``. Targets (asyncio): llm-connect
>= 0.9x raw httpx doing the same POST and JSON parse on the same loop, and
>= 1.5x the openai SDK.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio

from bench._clients import ClientFactory, async_clients, installed, sequential_round
from bench._common import (
    BenchServer,
    Figure,
    Load,
    Row,
    emit,
    interleaved,
    median,
    metered,
    pin_client,
    rounds_from_env,
    scale,
)

REQUESTS = 2000


def run(backend: str) -> Figure:
    pin_client()
    rounds = rounds_from_env(5)
    n = scale(REQUESTS)
    figure = Figure(f"Async, one call at a time ({backend})", load=Load())
    with BenchServer() as server:
        load = figure.load
        assert load is not None

        def make(factory: ClientFactory) -> Callable[[], float]:
            def case() -> float:
                with metered(server, load):
                    return anyio.run(
                        sequential_round, factory, server.base_url, n, backend=backend
                    )

            return case

        cases = {name: make(factory) for name, factory in async_clients().items()}
        results = interleaved(cases, rounds)
    for name, rates in results.items():
        figure.rows.append(Row(name, median(rates), "req/s"))
    figure.fastest = max(median(r) for r in results.values())
    figure.target(
        f"sequential, {backend}: llm-connect / raw httpx",
        "llm-connect",
        "raw httpx",
        0.9,
    )
    if installed("openai"):
        figure.target(
            f"sequential, {backend}: llm-connect / openai SDK",
            "llm-connect",
            "openai SDK",
            1.5,
        )
    return figure


def main() -> None:
    for backend in ("asyncio", "trio"):
        emit(run(backend))


if __name__ == "__main__":
    main()
