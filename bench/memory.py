"""Memory per call in flight: 1000 concurrent calls against a server that waits.

Run: ``python bench/memory.py``. Each client runs in a fresh process: it makes
its client, warms it up with one call, then starts 1000 calls at once against
a server that holds every answer 0.2 s (short enough that no client's default
timeouts trip: httpx waits at most 5 s for a pooled connection, and 1000
calls share 100 connections). ``tracemalloc`` gives the peak of Python
memory during the batch; the peak above the warmed-up baseline, divided by
1000, is the memory one call in flight costs (calls waiting for a
connection in the client's pool included). Target: llm-connect <= 30 KB per
call.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio

from bench._clients import async_clients
from bench._common import (
    BenchServer,
    Figure,
    Row,
    Target,
    emit,
    interleaved,
    median,
    pin_client,
    rounds_from_env,
)

IN_FLIGHT = 1000
DELAY = 0.2


def measure(name: str, base_url: str) -> float:
    """In this process: bytes per call in flight for client ``name``."""
    factory = async_clients()[name]

    async def main() -> float:
        async with factory(base_url) as call:
            await call()
            tracemalloc.start()
            baseline = tracemalloc.get_traced_memory()[0]
            async with anyio.create_task_group() as tg:
                for _ in range(IN_FLIGHT):
                    tg.start_soon(call)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return (peak - baseline) / IN_FLIGHT / 1024

    return anyio.run(main)


def run() -> Figure:
    pin_client()
    rounds = rounds_from_env(3)
    figure = Figure(f"Memory, {IN_FLIGHT} calls in flight (asyncio)")
    with BenchServer(delay=DELAY) as server:

        def make(name: str) -> Callable[[], float]:
            def case() -> float:
                out = subprocess.run(
                    [sys.executable, __file__, "--one", name, server.base_url],
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=300,
                )
                if out.returncode != 0:
                    raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
                return float(out.stdout.strip().splitlines()[-1])

            return case

        cases = {name: make(name) for name in async_clients()}
        results = interleaved(cases, rounds, warmup=False)
    for name, values in results.items():
        figure.rows.append(Row(name, median(values), "KB per call in flight"))
    ours = figure.value("llm-connect")
    for name in results:
        if name != "llm-connect":
            figure.notes.append(
                f"llm-connect uses {ours / figure.value(name):.2f}x the memory "
                f"of {name}"
            )
    figure.targets.append(
        Target("memory: llm-connect per call, 1000 in flight", ours, 30.0, "<=", " KB")
    )
    return figure


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        print(measure(sys.argv[2], sys.argv[3]))
        return
    emit(run())


if __name__ == "__main__":
    main()
