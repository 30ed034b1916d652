"""Async, 64 concurrent calls: throughput and p99 latency, on asyncio and on trio.

Run: ``python bench/async_concurrent.py``. Every client uses its default HTTP
set-up (what a user gets). Targets: llm-connect >= 2x the openai SDK and
>= 1x raw httpx2, on both event loops.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio

from bench._clients import ClientFactory, async_clients, concurrent_round, installed
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

WORKERS = 64
REQUESTS = 2000


def run(backend: str) -> Figure:
    pin_client()
    rounds = rounds_from_env(5)
    n = scale(REQUESTS)
    figure = Figure(f"Async, {WORKERS} concurrent ({backend})", load=Load())
    p99: dict[str, list[float]] = {}
    with BenchServer() as server:
        load = figure.load
        assert load is not None

        def make(name: str, factory: ClientFactory) -> Callable[[], float]:
            p99[name] = []

            def case() -> float:
                with metered(server, load):
                    measured = anyio.run(
                        concurrent_round,
                        factory,
                        server.base_url,
                        n,
                        WORKERS,
                        backend=backend,
                    )
                p99[name].append(measured.p99)
                return measured.rate

            return case

        cases = {name: make(name, f) for name, f in async_clients().items()}
        results = interleaved(cases, rounds)
    for name, rates in results.items():
        figure.rows.append(Row(name, median(rates), "req/s"))
        figure.rows.append(Row(f"{name} p99", median(p99[name]) * 1000, "ms"))
    figure.fastest = max(median(r) for r in results.values())
    if installed("openai"):
        figure.target(
            f"64 concurrent, {backend}: llm-connect / openai SDK",
            "llm-connect",
            "openai SDK",
            2.0,
        )
    if installed("httpx2"):
        figure.target(
            f"64 concurrent, {backend}: llm-connect / raw httpx2",
            "llm-connect",
            "raw httpx2",
            1.0,
        )
    figure.ratio_note("llm-connect", "raw httpx")
    return figure


def main() -> None:
    for backend in ("asyncio", "trio"):
        emit(run(backend))


if __name__ == "__main__":
    main()
