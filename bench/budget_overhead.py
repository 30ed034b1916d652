"""Budget tracking on vs off: llm-connect at 64 concurrent calls.

Run: ``python bench/budget_overhead.py``. The same adapter and server, with
and without a ``BudgetTracker`` (USD, room for every call) in the call's
config; every budgeted call prices its worst case, reserves it, and commits
its cost. Target: on is at most 5% slower than off, on asyncio and on trio.
"""

from __future__ import annotations

import sys
from contextlib import AbstractAsyncContextManager
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio

from bench._clients import Call, concurrent_round, llm_connect_adapter
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
REQUESTS = 2000


def budgeted(base_url: str) -> AbstractAsyncContextManager[Call]:
    from llm_connect import BudgetTracker

    return llm_connect_adapter(base_url, budget_tracker=BudgetTracker(10**6))


def run(backend: str) -> Figure:
    pin_client()
    rounds = rounds_from_env(7)
    n = scale(REQUESTS)
    figure = Figure(f"Budget on vs off, {WORKERS} concurrent ({backend})", load=Load())
    with BenchServer() as server:
        load = figure.load
        assert load is not None

        def make(factory):
            def case() -> float:
                with metered(server, load):
                    rate, _ = anyio.run(
                        partial(concurrent_round, factory, server.base_url, n, WORKERS),
                        backend=backend,
                    )
                return rate

            return case

        results = interleaved(
            {"budget off": make(llm_connect_adapter), "budget on": make(budgeted)},
            rounds,
        )
    for name, rates in results.items():
        figure.rows.append(Row(f"llm-connect, {name}", median(rates), "req/s"))
    off = median(results["budget off"])
    on = median(results["budget on"])
    figure.fastest = max(on, off)
    figure.targets.append(
        Target(
            f"slowdown with the budget on ({backend})",
            (off / on - 1) * 100,
            5.0,
            "<=",
            "%",
        )
    )
    return figure


def main() -> None:
    for backend in ("asyncio", "trio"):
        emit(run(backend))


if __name__ == "__main__":
    main()
