"""BudgetTracker on its own: amounts, charge, reservations, children, waiting."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import anyio
import anyio.to_thread
import pytest

from llm_connect import (
    BudgetTracker,
    LLMBudgetExceededError,
    LLMConfigurationError,
    LLMTimeoutError,
    Reservation,
)

D = Decimal


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (D("1.50"), D("1.50")),
        (3, D(3)),
        ("0.25", D("0.25")),
        (0.1, D("0.1")),
        (0, D(0)),
    ],
)
def test_total_accepts_decimal_int_str_and_float_via_str(
    total: object, expected: Decimal
) -> None:
    tracker = BudgetTracker(total)  # type: ignore[arg-type]
    assert tracker.total == expected
    assert isinstance(tracker.total, Decimal)
    assert (tracker.spent, tracker.reserved, tracker.remaining()) == (0, 0, expected)


@pytest.mark.parametrize(
    "total", [-1, D("-0.01"), D("NaN"), float("nan"), float("inf"), "abc", True, None]
)
def test_bad_totals_are_configuration_errors(total: object) -> None:
    with pytest.raises(LLMConfigurationError, match="BudgetTracker total"):
        BudgetTracker(total)  # type: ignore[arg-type]


def test_unknown_unit_is_refused() -> None:
    with pytest.raises(LLMConfigurationError, match="'usd' or 'tokens'"):
        BudgetTracker(1, unit="eur")  # type: ignore[arg-type]


def test_charge_records_what_fits_and_nothing_else() -> None:
    tracker = BudgetTracker("1.00")
    tracker.charge("0.60")
    tracker.charge(D("0.40"))
    assert tracker.spent == D("1.00")
    with pytest.raises(LLMBudgetExceededError) as info:
        tracker.charge("0.01")
    assert (info.value.total, info.value.spent, info.value.requested) == (
        D("1.00"),
        D("1.00"),
        D("0.01"),
    )
    assert tracker.spent == D("1.00")
    assert tracker.remaining() == 0


def test_charge_must_fit_beside_reservations() -> None:
    tracker = BudgetTracker(1)
    held = tracker.reserve("0.7")
    with pytest.raises(LLMBudgetExceededError):
        tracker.charge("0.5")
    assert tracker.spent == 0
    held.release()
    tracker.charge("0.5")
    assert tracker.spent == D("0.5")


def test_reserve_commit_and_release() -> None:
    tracker = BudgetTracker("1.00")
    first = tracker.reserve("0.30")
    second = tracker.reserve("0.50")
    assert tracker.reserved == D("0.80")
    assert tracker.remaining() == D("0.20")
    first.commit("0.12")
    assert (tracker.spent, tracker.reserved) == (D("0.12"), D("0.50"))
    second.release()
    second.release()  # idempotent
    assert (tracker.spent, tracker.reserved, tracker.remaining()) == (
        D("0.12"),
        0,
        D("0.88"),
    )
    with pytest.raises(LLMConfigurationError, match="already committed or released"):
        first.commit("0.01")


def test_reservation_context_manager_releases_on_exception() -> None:
    tracker = BudgetTracker(1)
    seen: list[Decimal] = []

    def spend_then_fail() -> None:
        with tracker.reserve("0.4") as held:
            seen.append(tracker.reserved)
            holds.append(held)
            raise ZeroDivisionError

    holds: list[Reservation] = []
    with pytest.raises(ZeroDivisionError):
        spend_then_fail()
    held = holds[0]
    assert seen == [D("0.4")]
    assert held.settled
    assert (tracker.spent, tracker.reserved) == (0, 0)
    with tracker.reserve("0.4") as held:
        held.commit("0.3")
    assert (tracker.spent, tracker.reserved) == (D("0.3"), 0)


def test_commit_above_the_hold_is_recorded_truthfully() -> None:
    tracker = BudgetTracker(1)
    tracker.reserve("0.5").commit("1.2")
    assert tracker.spent == D("1.2")
    assert tracker.remaining() == D("-0.2")
    assert tracker.available() == 0
    with pytest.raises(LLMBudgetExceededError):
        tracker.reserve(0.01)


def test_reserve_refuses_at_once_what_cannot_fit_even_when_idle() -> None:
    tracker = BudgetTracker("1.00")
    tracker.charge("0.80")
    started = time.perf_counter()
    with pytest.raises(LLMBudgetExceededError, match=r"has \$0\.20 left") as info:
        tracker.reserve("0.25", timeout=10)
    assert time.perf_counter() - started < 0.5
    error = info.value
    assert (error.total, error.spent, error.requested, error.unit) == (
        D("1.00"),
        D("0.80"),
        D("0.25"),
        "usd",
    )
    assert tracker.reserved == 0


def test_blocking_reserve_waits_for_another_thread_to_settle() -> None:
    tracker = BudgetTracker(1)
    held = tracker.reserve("0.8")
    timer = threading.Timer(0.2, held.commit, args=("0.1",))
    timer.start()
    started = time.perf_counter()
    second = tracker.reserve("0.5", timeout=5)
    waited = time.perf_counter() - started
    assert 0.15 < waited < 3
    assert (tracker.spent, tracker.reserved) == (D("0.1"), D("0.5"))
    second.release()


def test_blocking_reserve_times_out_without_holding_anything() -> None:
    tracker = BudgetTracker(1)
    held = tracker.reserve("0.8")
    with pytest.raises(LLMTimeoutError, match=r"Waited 0\.2 s"):
        tracker.reserve("0.5", timeout=0.2)
    assert tracker.reserved == D("0.8")
    held.release()
    assert tracker.reserved == 0


def test_child_spend_counts_against_every_ancestor() -> None:
    root = BudgetTracker("1.00")
    team = root.child("0.60")
    agent = team.child("0.30")
    assert agent.parent is team
    assert team.parent is root
    agent.reserve("0.20").commit("0.20")
    assert (agent.spent, team.spent, root.spent) == (D("0.20"), D("0.20"), D("0.20"))
    with pytest.raises(LLMBudgetExceededError, match="the child budget"):
        agent.reserve("0.15")
    team.charge("0.40")
    assert root.spent == D("0.60")
    assert team.remaining() == 0
    root.charge("0.30")
    # The agent has 0.10 left of its own, but the root has only 0.10 too.
    with pytest.raises(LLMBudgetExceededError, match="ancestor budget") as info:
        root.child("5").reserve("0.2")
    assert info.value.total == D("1.00")


def test_available_is_the_least_room_along_the_chain() -> None:
    root = BudgetTracker(10)
    child = root.child(3)
    root.reserve(8)
    assert child.remaining() == 3
    assert child.available() == 2
    assert child.room() == 3


def test_concurrent_charges_from_threads_never_overshoot() -> None:
    tracker = BudgetTracker("5.000")
    accepted = [0] * 8

    def spend(i: int) -> None:
        for _ in range(1000):
            try:
                tracker.charge("0.001")
                accepted[i] += 1
            except LLMBudgetExceededError:
                pass

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(accepted) == 5000
    assert tracker.spent == D("5.000")


async def test_async_reserve_waits_for_a_settle_on_the_same_loop() -> None:
    tracker = BudgetTracker(1)
    held = await tracker.areserve("0.9")
    got: list[Decimal] = []

    async def waiter() -> None:
        reservation = await tracker.areserve("0.5")
        got.append(reservation.amount)
        reservation.commit("0.5")

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep(0.1)
        assert got == []
        held.commit("0.2")
    assert got == [D("0.5")]
    assert (tracker.spent, tracker.reserved) == (D("0.7"), 0)
    assert tracker._tree.loops == {}


async def test_async_reserve_is_woken_by_a_settle_on_another_thread() -> None:
    tracker = BudgetTracker(1)
    held = tracker.reserve("0.9")
    timer = threading.Timer(0.2, held.commit, args=("0.1",))
    timer.start()
    started = anyio.current_time()
    with anyio.fail_after(5):
        reservation = await tracker.areserve("0.5")
    assert 0.15 < anyio.current_time() - started < 3
    reservation.release()
    assert (tracker.spent, tracker.reserved) == (D("0.1"), 0)


async def test_many_async_waiters_all_proceed_after_settles() -> None:
    tracker = BudgetTracker(10)
    held = tracker.reserve("9.6")
    done: list[int] = []

    async def waiter(i: int) -> None:
        with await tracker.areserve("0.5") as reservation:
            await anyio.sleep(0.01)
            reservation.commit("0.01")
        done.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(waiter, i)
        await anyio.sleep(0.1)
        assert done == []
        await anyio.to_thread.run_sync(held.commit, "1")
    assert sorted(done) == list(range(200))
    assert tracker.spent == D("1") + 200 * D("0.01")
    assert tracker.reserved == 0
    assert tracker._tree.loops == {}


async def test_cancelled_async_wait_holds_nothing() -> None:
    tracker = BudgetTracker(1)
    held = await tracker.areserve("0.9")
    with anyio.move_on_after(0.2) as scope:
        await tracker.areserve("0.5")
    assert scope.cancelled_caught
    assert tracker.reserved == D("0.9")
    assert tracker._tree.loops == {}
    held.release()
    assert tracker.reserved == 0


async def test_async_reserve_refuses_at_once_when_it_can_never_fit() -> None:
    tracker = BudgetTracker(1)
    tracker.charge("0.9")
    await tracker.areserve("0.05")  # fits beside nothing
    with pytest.raises(LLMBudgetExceededError):
        await tracker.areserve("0.2")


def test_token_budgets_count_tokens() -> None:
    tracker = BudgetTracker(1000, unit="tokens")
    tracker.reserve(600).commit(420)
    assert tracker.spent == 420
    with pytest.raises(LLMBudgetExceededError, match="needs up to 700 tokens") as info:
        tracker.reserve(700)
    assert info.value.unit == "tokens"
    assert tracker.child(100).unit == "tokens"


def test_repr_shows_the_numbers() -> None:
    tracker = BudgetTracker("2")
    held = tracker.reserve("0.5")
    assert repr(tracker) == (
        "BudgetTracker(total=Decimal('2'), spent=Decimal('0'), "
        "reserved=Decimal('0.5'), unit='usd')"
    )
    assert repr(held) == "<Reservation $0.5 held>"
