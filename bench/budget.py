"""Budget tracking cost: reserve + commit, uncontended and contended.

Run: ``python bench/budget.py`` (from the repository root, after installing the
package). Prints medians of 5 rounds, and the ratio to the least any
thread-safe Decimal counter can cost (a ``threading.Lock`` around a Decimal
add), measured in the same run. Target: reserve + commit under 10 us
uncontended.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio.lowlevel

from llm_connect import BudgetTracker

ROUNDS = 5
OPS = 50_000
HOLD = Decimal("0.001")
COST = Decimal("0.0007")


def baseline_lock_and_add(ops: int) -> float:
    """Seconds for ``ops`` lock-protected Decimal adds (twice: hold and spend)."""
    lock = threading.Lock()
    total = Decimal(0)
    started = time.perf_counter()
    for _ in range(ops):
        with lock:
            total += HOLD
        with lock:
            total -= HOLD - COST
    return time.perf_counter() - started


def uncontended(ops: int) -> float:
    tracker = BudgetTracker(10**9)
    started = time.perf_counter()
    for _ in range(ops):
        tracker.reserve(HOLD).commit(COST)
    return time.perf_counter() - started


def threads_contending(ops: int, threads: int = 4) -> float:
    tracker = BudgetTracker(10**9)
    per_thread = ops // threads
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            tracker.reserve(HOLD).commit(COST)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - started


def tasks_contending(ops: int, tasks: int = 1000, tight: bool = False) -> float:
    """``tasks`` tasks on one loop; ``tight``: room for only 10% of holds at once."""
    per_task = ops // tasks
    total = HOLD * tasks / 10 if tight else Decimal(10**9)

    async def main() -> float:
        tracker = BudgetTracker(total + ops * COST)

        async def work() -> None:
            for _ in range(per_task):
                reservation = await tracker.areserve(HOLD)
                await anyio.lowlevel.checkpoint()
                reservation.commit(COST)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(tasks):
                tg.start_soon(work)
        return time.perf_counter() - started

    return anyio.run(main)


def median_us(run: object, ops: int) -> float:
    timings = [run(ops) for _ in range(ROUNDS)]  # type: ignore[operator]
    return statistics.median(timings) / ops * 1e6


def main() -> None:
    base = median_us(baseline_lock_and_add, OPS)
    rows = [
        ("lock + Decimal add (floor)", base),
        ("reserve + commit, uncontended", median_us(uncontended, OPS)),
        ("reserve + commit, 4 threads", median_us(threads_contending, OPS)),
        ("areserve + commit, 1000 tasks", median_us(tasks_contending, OPS)),
        (
            "areserve + commit, 1000 tasks, room for 100",
            median_us(lambda n: tasks_contending(n, tight=True), OPS),
        ),
    ]
    print(f"budget: medians of {ROUNDS} rounds of {OPS:,} operations")
    print(f"{'case':<46} {'us/op':>8} {'ops/s':>10} {'x floor':>8}")
    for name, us in rows:
        print(f"{name:<46} {us:8.2f} {1e6 / us:10,.0f} {us / base:8.1f}")
    uncontended_us = rows[1][1]
    verdict = "meets" if uncontended_us < 10 else "MISSES"
    print(f"target: uncontended reserve + commit < 10 us -> {verdict}")


if __name__ == "__main__":
    main()
