"""Hammer one tracker from asyncio, trio and OS threads at once.

Hundreds of calls with random delays, costs below their holds and random
cancellations: the cap must hold at every moment, the books must balance to
the last digit, and no call may be refused while its hold could fit.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import threading
import time
from collections.abc import Sequence
from decimal import Decimal

import anyio

from llm_connect import (
    BudgetTracker,
    LLMAdapter,
    LLMBudgetExceededError,
    LLMResponse,
    LLMTimeoutError,
    Message,
    RunConfig,
    Usage,
)
from llm_connect._budget import Unit

HOLD = Decimal("0.100")
TOTAL = Decimal("6.000")
CALLS_PER_LOOP = 200
CALLS_PER_THREAD = 40


class RandomCostAdapter(LLMAdapter):
    """Holds HOLD per call, waits a random moment, costs a random amount below it."""

    provider = "hammer"
    requires_model = False

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def _worst_case(
        self, messages: Sequence[Message], config: RunConfig, unit: Unit
    ) -> Decimal:
        return HOLD

    async def _call_provider(
        self, messages: Sequence[Message], config: RunConfig
    ) -> LLMResponse:
        with self._lock:
            delay = self._random.uniform(0, 0.02)
            cost = Decimal(self._random.randint(5, 95)) / 1000  # 0.005 .. 0.095
        await anyio.sleep(delay)
        return LLMResponse("ok", "m", self.provider, Usage(1, 1, 2), cost=cost)


class Ledger:
    """What the callers saw, gathered from every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.costs: list[Decimal] = []
        self.refusals: list[LLMBudgetExceededError] = []
        self.cancelled = 0
        self.launched = 0

    def record(self, outcome: Decimal | LLMBudgetExceededError | None) -> None:
        with self.lock:
            self.launched += 1
            if isinstance(outcome, Decimal):
                self.costs.append(outcome)
            elif isinstance(outcome, LLMBudgetExceededError):
                self.refusals.append(outcome)
            else:
                self.cancelled += 1


async def _one_async_call(
    adapter: RandomCostAdapter, tracker: BudgetTracker, ledger: Ledger, seed: int
) -> None:
    rng = random.Random(seed)
    cancel_after = rng.uniform(0.001, 0.02) if rng.random() < 0.2 else None
    outcome: Decimal | LLMBudgetExceededError | None = None
    with anyio.CancelScope() as scope:
        if cancel_after is not None:
            scope.deadline = anyio.current_time() + cancel_after
        try:
            response = await adapter.async_execute_prompt(
                "go", RunConfig(budget_tracker=tracker, timeout=60)
            )
            assert response.cost is not None
            outcome = response.cost
        except LLMBudgetExceededError as exc:
            outcome = exc
    ledger.record(outcome)


async def _many_async_calls(tracker: BudgetTracker, ledger: Ledger, seed: int) -> None:
    adapter = RandomCostAdapter(seed)
    async with anyio.create_task_group() as tg:
        for i in range(CALLS_PER_LOOP):
            tg.start_soon(_one_async_call, adapter, tracker, ledger, seed * 10_000 + i)
    await adapter.aclose()


def _sync_calls(tracker: BudgetTracker, ledger: Ledger, seed: int) -> None:
    rng = random.Random(seed)
    with RandomCostAdapter(seed) as adapter:
        for _ in range(CALLS_PER_THREAD):
            timeout = rng.uniform(0.002, 0.02) if rng.random() < 0.2 else 60
            try:
                response = adapter.execute_prompt(
                    "go", RunConfig(budget_tracker=tracker, timeout=timeout)
                )
                assert response.cost is not None
                ledger.record(response.cost)
            except LLMBudgetExceededError as exc:
                ledger.record(exc)
            except LLMTimeoutError:
                ledger.record(None)


def test_hammer_asyncio_trio_and_threads_on_one_tracker() -> None:
    tracker = BudgetTracker(TOTAL)
    ledger = Ledger()
    violations: list[Decimal] = []
    stop = threading.Event()

    def watch() -> None:  # the cap must hold at every moment, not just at the end
        while not stop.is_set():
            spent = tracker.spent
            if spent > TOTAL:
                violations.append(spent)
            time.sleep(0)

    def run_asyncio(seed: int) -> None:
        asyncio.run(_many_async_calls(tracker, ledger, seed))

    def run_trio(seed: int) -> None:
        import trio

        trio.run(_many_async_calls, tracker, ledger, seed)

    workers = [threading.Thread(target=run_asyncio, args=(1,))]
    if importlib.util.find_spec("trio"):
        workers.append(threading.Thread(target=run_trio, args=(2,)))
    workers += [
        threading.Thread(target=_sync_calls, args=(tracker, ledger, 100 + i))
        for i in range(4)
    ]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert not worker.is_alive()
    stop.set()
    watcher.join()

    loops = len(workers) - 4  # asyncio, and trio when it is installed
    assert ledger.launched == CALLS_PER_THREAD * 4 + CALLS_PER_LOOP * loops
    assert violations == []
    assert tracker.spent <= TOTAL
    # The books balance to the last digit, and nothing is left on hold.
    assert tracker.spent == sum(ledger.costs, Decimal(0))
    assert tracker.reserved == 0
    assert tracker._tree.loops == {}
    # The budget ran out, and every refusal was a call that could not fit
    # even with nothing in flight: none was refused spuriously.
    assert ledger.refusals
    for refusal in ledger.refusals:
        assert refusal.requested == HOLD
        assert refusal.total - refusal.spent < HOLD
    assert TOTAL - tracker.spent < HOLD
    # Cheap calls went through until the end: at least TOTAL / max-cost calls.
    assert len(ledger.costs) >= int((TOTAL - HOLD) / Decimal("0.095"))
    assert ledger.cancelled > 0
