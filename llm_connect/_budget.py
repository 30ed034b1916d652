"""``BudgetTracker``: a hard spending cap shared by threads, event loops and agents.

The rule (docs/budget.md): a call *reserves* its worst case before it is made,
and *commits* what it really cost (or *releases* the hold) when it ends. A
reservation that does not fit waits for in-flight calls to settle and is
refused at once only when it could not fit even with nothing in flight.

Concurrency: one ``threading.Lock`` per tracker tree guards every number and is
never held across an ``await``. Threads wait on a ``threading.Condition``; async
callers wait on an anyio ``Event`` of their own event loop, woken directly when
the settling call runs on that loop and, for settles on other threads, by one
"leader" waiter per loop that watches the condition from a worker thread.
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import TYPE_CHECKING, Literal

import anyio
import anyio.lowlevel
import anyio.to_thread

from .exceptions import LLMBudgetExceededError, LLMConfigurationError, LLMTimeoutError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BudgetTracker", "Reservation", "Unit", "current_hold"]

Unit = Literal["usd", "tokens"]
_UNITS = ("usd", "tokens")
_ZERO = Decimal(0)
#: Longest a leader's worker thread waits before re-checking (seconds); bounds
#: how long an abandoned (cancelled) wait can linger.
_LEADER_POLL = 0.25

#: USD held for the call in progress, set by the Core around ``_call_provider``.
_current_hold: ContextVar[Decimal | None] = ContextVar(
    "llm_connect_current_hold", default=None
)


def current_hold() -> Decimal | None:
    """USD the Core reserved for the call in progress, if a USD budget applies.

    Adapters that can enforce a cap themselves use it (Claude Code passes it
    as ``--max-budget-usd``). ``None`` outside a budgeted call.
    """
    return _current_hold.get()


def to_amount(value: object, what: str) -> Decimal:
    """Return ``value`` as a finite, non-negative ``Decimal``.

    Accepts ``Decimal``, ``int`` and decimal strings; a ``float`` goes through
    ``str()`` so that ``0.1`` means ``Decimal("0.1")``.

    Raises:
        LLMConfigurationError: for anything else, a negative number, NaN or
            infinity.
    """
    if isinstance(value, Decimal):  # the common case, first
        amount = value
    elif isinstance(value, bool):
        raise LLMConfigurationError(f"{what} must be a number, not {value!r}.")
    else:
        try:
            if isinstance(value, (int, str)):
                amount = Decimal(value)
            elif isinstance(value, float):
                amount = Decimal(str(value))
            else:
                raise TypeError
        except (InvalidOperation, TypeError, ValueError):
            raise LLMConfigurationError(
                f"{what} must be a Decimal, an int or a decimal string, not {value!r}."
            ) from None
    if not amount.is_finite() or amount < 0:
        raise LLMConfigurationError(
            f"{what} must be a finite number of at least 0, not {value!r}."
        )
    return amount


class _Tree:
    """What every tracker in one parent/child tree shares."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        #: Bumped on every settle; waiters compare it to spot progress.
        self.generation = 0
        #: Async waiters per event loop (keyed by the loop's native token).
        self.loops: dict[object, _LoopWaiters] = {}
        #: Threads waiting on ``changed`` (a settle notifies only if any).
        self.thread_waiters = 0


class _LoopWaiters:
    """The async callers of one event loop waiting for room."""

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self.event = anyio.Event()
        self.count = 0
        self.has_leader = False


class BudgetTracker:
    """A spending cap, in USD or in tokens, that holds under concurrency.

    Pass it as ``RunConfig(budget_tracker=...)`` and every call through any
    adapter reserves its worst case first and is charged what it really cost
    after. Share one tracker across a chain of agents, threads and event loops;
    give a delegated agent ``tracker.child(total)`` to cap it separately.

    Args:
        total: the cap: a ``Decimal``, an ``int`` or a decimal string (a
            ``float`` is converted through ``str()``).
        unit: ``"usd"`` (the default; Decimal dollars) or ``"tokens"`` (a call
            costs its ``usage.total_tokens``).

    Raises:
        LLMConfigurationError: for a negative, NaN or non-numeric total, or an
            unknown unit.
    """

    def __init__(
        self, total: Decimal | int | str | float, *, unit: Unit = "usd"
    ) -> None:
        if unit not in _UNITS:
            raise LLMConfigurationError(
                f"BudgetTracker unit must be 'usd' or 'tokens', not {unit!r}."
            )
        self._total = to_amount(total, "BudgetTracker total")
        self._unit: Unit = unit
        self._spent = _ZERO
        self._reserved = _ZERO
        self._parent: BudgetTracker | None = None
        self._tree = _Tree()
        self._chain: tuple[BudgetTracker, ...] = (self,)

    # -- reading -----------------------------------------------------------

    @property
    def total(self) -> Decimal:
        """The cap."""
        return self._total

    @property
    def unit(self) -> Unit:
        """``"usd"`` or ``"tokens"``."""
        return self._unit

    @property
    def spent(self) -> Decimal:
        """What calls have been charged so far (children's spend included)."""
        with self._tree.lock:
            return self._spent

    @property
    def reserved(self) -> Decimal:
        """What calls in flight hold right now (children's holds included)."""
        with self._tree.lock:
            return self._reserved

    @property
    def parent(self) -> BudgetTracker | None:
        """The tracker this one was made from with :meth:`child`, if any."""
        return self._parent

    def remaining(self) -> Decimal:
        """``total - spent - reserved`` of this tracker (may be negative after an
        overshoot, see docs/budget.md)."""
        with self._tree.lock:
            return self._total - self._spent - self._reserved

    def available(self) -> Decimal:
        """What a new call could reserve right now: the least ``remaining()``
        of this tracker and its ancestors, never below zero."""
        with self._tree.lock:
            return max(
                _ZERO, min(t._total - t._spent - t._reserved for t in self._chain)
            )

    def room(self) -> Decimal:
        """What a call could reserve with nothing in flight: the least
        ``total - spent`` of this tracker and its ancestors, never below zero."""
        with self._tree.lock:
            return max(_ZERO, min(t._total - t._spent for t in self._chain))

    def __repr__(self) -> str:
        with self._tree.lock:
            return (
                f"BudgetTracker(total={self._total!r}, spent={self._spent!r}, "
                f"reserved={self._reserved!r}, unit={self._unit!r})"
            )

    # -- delegation --------------------------------------------------------

    def child(self, total: Decimal | int | str | float) -> BudgetTracker:
        """Return a sub-budget for a delegated agent.

        Its spend and reservations count against itself *and* every ancestor,
        so a call through the child must fit in all of them.
        """
        child = BudgetTracker(total, unit=self._unit)
        child._parent = self
        child._tree = self._tree
        child._chain = (child, *self._chain)
        return child

    # -- spending ------------------------------------------------------------

    def charge(self, amount: Decimal | int | str | float) -> None:
        """Record ``amount`` as spent if it fits; otherwise record nothing.

        Thread-safe. It must fit beside what is reserved right now.

        Raises:
            LLMBudgetExceededError: the amount does not fit.
        """
        value = to_amount(amount, "charge amount")
        with self._tree.lock:
            for tracker in self._chain:
                if value > tracker._total - tracker._spent - tracker._reserved:
                    raise tracker._exceeded(value, self)
            for tracker in self._chain:
                tracker._spent += value
            self._settled_locked()
        self._wake_same_thread_loops()

    def reserve(
        self, amount: Decimal | int | str | float, *, timeout: float | None = None
    ) -> Reservation:
        """Hold ``amount`` for a call about to be made (blocking form).

        Waits while the amount fits only once in-flight calls settle, up to
        ``timeout`` seconds (``None``: as long as it takes). Do not call it on
        an event loop's thread; await :meth:`areserve` there.

        Returns:
            a :class:`Reservation` to ``commit(actual)`` or ``release()``;
            usable as a context manager (released if not committed).

        Raises:
            LLMBudgetExceededError: it could not fit even with nothing in flight.
            LLMTimeoutError: ``timeout`` passed while waiting.
        """
        value = to_amount(amount, "reservation amount")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._tree.lock:
            while True:
                reservation = self._try_reserve_locked(value)
                if reservation is not None:
                    return reservation
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    raise LLMTimeoutError(
                        f"Waited {timeout:g} s for budget room to reserve "
                        f"{self._format(value)}; calls in flight still hold it.",
                        timeout=timeout,
                    )
                self._tree.thread_waiters += 1
                try:
                    self._tree.changed.wait(wait)
                finally:
                    self._tree.thread_waiters -= 1

    async def areserve(self, amount: Decimal | int | str | float) -> Reservation:
        """Hold ``amount`` for a call about to be made (async form).

        Waits (without blocking the event loop) while the amount fits only once
        in-flight calls settle; bound the wait with a cancel scope — the Core
        bounds it by the call's ``timeout``. Cancelling the wait holds nothing.

        Raises:
            LLMBudgetExceededError: it could not fit even with nothing in flight.
        """
        value = to_amount(amount, "reservation amount")
        tree = self._tree
        with tree.lock:
            reservation = self._try_reserve_locked(value)
        if reservation is not None:
            return reservation
        key = anyio.lowlevel.current_token().native_token
        with tree.lock:
            waiters = tree.loops.get(key)
            if waiters is None:
                waiters = tree.loops[key] = _LoopWaiters(threading.get_ident())
            waiters.count += 1
        try:
            while True:
                with tree.lock:
                    reservation = self._try_reserve_locked(value)
                    if reservation is not None:
                        return reservation
                    generation = tree.generation
                    lead = not waiters.has_leader
                    waiters.has_leader = waiters.has_leader or lead
                    event = waiters.event
                if lead:
                    await self._lead(waiters, generation)
                else:
                    await event.wait()
                    with tree.lock:
                        if waiters.event is event:
                            waiters.event = anyio.Event()
        finally:
            with tree.lock:
                waiters.count -= 1
                if waiters.count == 0 and tree.loops.get(key) is waiters:
                    del tree.loops[key]

    async def _lead(self, waiters: _LoopWaiters, generation: int) -> None:
        """Watch for a settle anywhere, then wake this loop's other waiters."""
        try:
            while not await anyio.to_thread.run_sync(
                self._wait_for_settle, generation, abandon_on_cancel=True
            ):
                pass
        finally:
            with self._tree.lock:
                waiters.has_leader = False
                event, waiters.event = waiters.event, anyio.Event()
            event.set()

    def _wait_for_settle(self, generation: int) -> bool:
        """Block until a settle after ``generation``; False after a short poll."""
        tree = self._tree
        with tree.lock:
            tree.thread_waiters += 1
            try:
                return tree.changed.wait_for(
                    lambda: tree.generation != generation, _LEADER_POLL
                )
            finally:
                tree.thread_waiters -= 1

    # -- internals (called with the tree lock held unless noted) ------------

    def _try_reserve_locked(self, value: Decimal) -> Reservation | None:
        """Reserve if it fits now; None if it must wait; raise if it never can."""
        fits_now = True
        for tracker in self._chain:
            room = tracker._total - tracker._spent
            if value > room:
                raise tracker._exceeded(value, self)
            if value > room - tracker._reserved:
                fits_now = False
        if not fits_now:
            return None
        for tracker in self._chain:
            tracker._reserved += value
        return Reservation(self, value)

    def _settle(
        self, reservation: Reservation, spent: Decimal, *, again_ok: bool
    ) -> None:
        """Drop ``reservation``'s hold and charge ``spent``, once.

        Settling it again is a no-op when ``again_ok``, else an error.
        """
        with self._tree.lock:
            if reservation._settled:
                if again_ok:
                    return
                raise LLMConfigurationError(
                    "This reservation was already committed or released."
                )
            reservation._settled = True
            held = reservation._amount
            for tracker in self._chain:
                tracker._reserved -= held
                tracker._spent += spent
            self._settled_locked()
        self._wake_same_thread_loops()

    def _settled_locked(self) -> None:
        tree = self._tree
        tree.generation += 1
        if tree.thread_waiters:
            tree.changed.notify_all()

    def _wake_same_thread_loops(self) -> None:
        """Wake async waiters whose loop runs on this thread (lock not held).

        Waiters on other threads' loops are woken by their loop's leader.
        """
        tree = self._tree
        if not tree.loops:
            return
        me = threading.get_ident()
        with tree.lock:
            events = [w.event for w in tree.loops.values() if w.thread_id == me]
        for event in events:
            event.set()

    def _exceeded(
        self, value: Decimal, caller: BudgetTracker
    ) -> LLMBudgetExceededError:
        if self is not caller:
            who = "an ancestor budget"
        elif self._parent is not None:
            who = "the child budget"
        else:
            who = "the budget"
        left = self._total - self._spent
        return LLMBudgetExceededError(
            f"Budget exceeded: the call needs up to {self._format(value)} but "
            f"{who} (total {self._format(self._total)}, spent "
            f"{self._format(self._spent)}) has {self._format(max(left, _ZERO))} "
            f"left even with nothing in flight. Raise the budget, lower "
            f"max_tokens, or use a cheaper model.",
            total=self._total,
            spent=self._spent,
            requested=value,
            reserved=self._reserved,
            unit=self._unit,
        )

    def _format(self, value: Decimal) -> str:
        return f"${value}" if self._unit == "usd" else f"{value} tokens"


class Reservation:
    """Budget held for one call: settle it with :meth:`commit` or :meth:`release`.

    As a context manager it is released on leaving the block unless it was
    committed, so an exception never leaks a hold.
    """

    def __init__(self, tracker: BudgetTracker, amount: Decimal) -> None:
        self._tracker = tracker
        self._amount = amount
        self._settled = False

    @property
    def amount(self) -> Decimal:
        """What is held."""
        return self._amount

    @property
    def tracker(self) -> BudgetTracker:
        """The tracker the amount is held on."""
        return self._tracker

    @property
    def settled(self) -> bool:
        """Whether it was committed or released."""
        return self._settled

    def commit(self, actual: Decimal | int | str | float) -> None:
        """Charge ``actual`` (what the call really cost) and drop the hold.

        ``actual`` is recorded even when it exceeds the hold: money spent is
        spent. Later calls then see the truth and are refused if need be.

        Raises:
            LLMConfigurationError: ``actual`` is not a valid amount, or the
                reservation was already settled.
        """
        value = to_amount(actual, "committed amount")
        self._tracker._settle(self, value, again_ok=False)

    def release(self) -> None:
        """Drop the hold without charging anything. Idempotent."""
        self._tracker._settle(self, _ZERO, again_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "settled" if self._settled else "held"
        return f"<Reservation {self._tracker._format(self._amount)} {state}>"
