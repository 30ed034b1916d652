"""Budget tracking on vs off: llm-connect at 64 concurrent calls.

Run: ``python bench/budget_overhead.py``. The same adapter and server, with
and without a ``BudgetTracker`` (USD, room for every call) in the call's
config; every budgeted call prices its worst case, reserves it, and commits
its cost. Target: on is at most 5% slower than off, on asyncio and on trio.

"Slower" is measured as client CPU time per call: at 64 concurrent calls the
client's CPU is saturated (CPU per call is 1 / throughput), and unlike req/s
it does not move when another process on the machine takes the client's CPU
for a moment, which on a shared machine swings a 7-round median of req/s by
several percent. The req/s of both are shown too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio

from bench._clients import Call, ClientFactory, concurrent_round, llm_connect_adapter
from bench._common import (
    BenchServer,
    Figure,
    Load,
    Row,
    Target,
    emit,
    interleaved,
    median,
    metered,
    pin_client,
    rounds_from_env,
    scale,
)

WORKERS = 64
REQUESTS = 1500


def budgeted(base_url: str) -> AbstractAsyncContextManager[Call]:
    from llm_connect import BudgetTracker

    return llm_connect_adapter(base_url, budget_tracker=BudgetTracker(10**6))


def run(backend: str) -> Figure:
    pin_client()
    rounds = rounds_from_env(15)
    n = scale(REQUESTS)
    figure = Figure(f"Budget on vs off, {WORKERS} concurrent ({backend})", load=Load())
    rates: dict[str, list[float]] = {"budget off": [], "budget on": []}
    with BenchServer() as server:
        load = figure.load
        assert load is not None

        def make(name: str, factory: ClientFactory) -> Callable[[], float]:
            def case() -> float:
                with metered(server, load):
                    measured = anyio.run(
                        partial(concurrent_round, factory, server.base_url, n, WORKERS),
                        backend=backend,
                    )
                rates[name].append(measured.rate)
                return measured.cpu_us

            return case

        cpu = interleaved(
            {
                "budget off": make("budget off", llm_connect_adapter),
                "budget on": make("budget on", budgeted),
            },
            rounds,
        )
    for name in cpu:
        figure.rows.append(Row(f"llm-connect, {name}", median(rates[name]), "req/s"))
        figure.rows.append(
            Row(f"llm-connect, {name}, client CPU", median(cpu[name]), "us per call")
        )
    figure.fastest = max(median(r) for r in rates.values())
    off, on = median(cpu["budget off"]), median(cpu["budget on"])
    figure.targets.append(
        Target(
            f"budget on vs off, 64 concurrent, {backend}: slowdown (client CPU)",
            (on / off - 1) * 100,
            5.0,
            "<=",
            "%",
        )
    )
    by_rate = median(rates["budget off"]) / median(rates["budget on"]) - 1
    figure.notes.append(f"slowdown in req/s: {by_rate * 100:.1f}% (no target)")
    return figure


def main() -> None:
    for backend in ("asyncio", "trio"):
        emit(run(backend))


if __name__ == "__main__":
    main()
