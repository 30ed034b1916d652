"""The budget as the Core enforces it, for every adapter: reserve, wait, commit."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import anyio
import attrs
import pytest

from llm_connect import (
    BudgetTracker,
    LLMAdapter,
    LLMBudgetExceededError,
    LLMConfigurationError,
    LLMError,
    LLMResponse,
    LLMServerError,
    LLMTimeoutError,
    Message,
    RunConfig,
    Usage,
)
from llm_connect._budget import current_hold
from llm_connect.pricing import ModelPrice
from llm_connect.testing import FakeAdapter

D = Decimal


class PricedAdapter(LLMAdapter):
    """Answers with fixed usage; its provider name decides the table price."""

    def __init__(self, provider: str, usage: Usage, model: str | None = None) -> None:
        super().__init__(default_config=RunConfig(model=model) if model else None)
        self.provider = provider  # type: ignore[misc]
        self.usage = usage
        self.holds: list[Decimal | None] = []

    async def _call_provider(
        self, messages: Sequence[Message], config: RunConfig
    ) -> LLMResponse:
        self.holds.append(current_hold())
        return LLMResponse("ok", config.model or "", self.provider, self.usage)


async def test_a_single_call_spends_exactly_its_cost() -> None:
    tracker = BudgetTracker("1.00")
    adapter = FakeAdapter("hi", cost=D("0.0123"))
    response = await adapter.async_execute_prompt(
        "hello", RunConfig(budget_tracker=tracker)
    )
    assert response.cost == D("0.0123")
    assert tracker.spent == D("0.0123")
    assert tracker.reserved == 0
    assert tracker.remaining() == D("0.9877")


async def test_cost_comes_from_the_price_table_when_the_provider_reports_none() -> None:
    usage = Usage(1000, 500, 1500, cached_input_tokens=200)
    adapter = PricedAdapter("openai", usage, model="gpt-4o-mini-2024-07-18")
    tracker = BudgetTracker(1)
    response = await adapter.async_execute_prompt(
        "hi", RunConfig(budget_tracker=tracker, max_tokens=100)
    )
    # gpt-4o-mini: $0.15 in, $0.075 cached in, $0.60 out per million tokens.
    expected = (800 * D("0.15") + 200 * D("0.075") + 500 * D("0.6")) / 1_000_000
    assert response.cost == expected == D("0.000435")
    assert tracker.spent == expected
    # The hold was the worst case: (2 bytes + 4 framing) in, 100 out.
    assert adapter.holds == [(6 * D("0.15") + 100 * D("0.6")) / 1_000_000]


async def test_cost_is_filled_without_a_budget_too() -> None:
    adapter = PricedAdapter("gemini", Usage(100, 10, 110), model="gemini-2.5-flash")
    response = await adapter.async_execute_prompt("hi")
    assert response.cost == (100 * D("0.3") + 10 * D("2.5")) / 1_000_000
    assert adapter.holds == [None]


async def test_a_price_in_the_config_overrides_the_table() -> None:
    adapter = PricedAdapter("openai", Usage(1_000_000, 0, 1_000_000), model="gpt-4o")
    price = ModelPrice(input="1", output="2")
    response = await adapter.async_execute_prompt("hi", RunConfig(price=price))
    assert response.cost == D(1)


async def test_unknown_price_on_a_usd_budget_fails_before_the_call() -> None:
    adapter = FakeAdapter("hi")  # reports no cost, and fake-model has no price
    tracker = BudgetTracker(1)
    with pytest.raises(LLMConfigurationError, match="No price is known"):
        await adapter.async_execute_prompt("hi", RunConfig(budget_tracker=tracker))
    assert adapter.calls == []
    assert (tracker.spent, tracker.reserved) == (0, 0)
    # Without a budget the same call is fine, with cost None: never a fake $0.
    assert (await adapter.async_execute_prompt("hi")).cost is None


async def test_a_budgeted_call_without_max_tokens_is_capped_at_the_default() -> None:
    adapter = FakeAdapter("hi", cost=D("0.01"))
    await adapter.async_execute_prompt("a", RunConfig(budget_tracker=BudgetTracker(1)))
    await adapter.async_execute_prompt("b")
    await adapter.async_execute_prompt(
        "c", RunConfig(budget_tracker=BudgetTracker(1), max_tokens=50)
    )
    assert [c.config.max_tokens for c in adapter.calls] == [4096, None, 50]


async def test_each_budgeted_call_gets_its_own_config_capped_at_the_default() -> None:
    tracker = BudgetTracker(1)
    adapter = FakeAdapter(
        "hi",
        cost=D("0.01"),
        default_config=RunConfig(model="fake-model", budget_tracker=tracker),
    )
    await adapter.async_execute_prompt("a")
    await adapter.async_execute_prompt("b")
    await adapter.async_execute_prompt("c", RunConfig(temperature=0.5))
    await adapter.async_execute_prompt("d")
    configs = [c.config for c in adapter.calls]
    assert [c.max_tokens for c in configs] == [4096] * 4
    assert [c.temperature for c in configs] == [None, None, 0.5, None]
    assert all(c.budget_tracker is tracker for c in configs)
    assert all("max_tokens" in c.explicit_fields for c in configs)
    assert adapter.default_config.max_tokens is None
    assert tracker.spent == D("0.04")


async def test_a_token_budget_reserves_the_bound_and_commits_total_tokens() -> None:
    adapter = PricedAdapter("custom", Usage(30, 12, 42), model="m")
    tracker = BudgetTracker(1000, unit="tokens")
    await adapter.async_execute_prompt(
        "hello", RunConfig(budget_tracker=tracker, max_tokens=200)
    )
    assert tracker.spent == 42
    assert adapter.holds == [None]  # no USD hold to pass on
    with pytest.raises(LLMBudgetExceededError, match="needs up to 1209 tokens"):
        # 5 bytes + 4 framing + 1200 output tokens cannot fit in 958 left.
        await adapter.async_execute_prompt(
            "hello", RunConfig(budget_tracker=tracker, max_tokens=1200)
        )


async def test_the_hold_is_visible_to_the_adapter_during_the_call() -> None:
    adapter = PricedAdapter("openai", Usage(1, 1, 2), model="gpt-4o")
    price = ModelPrice(input=1, output=1)
    await adapter.async_execute_prompt(
        "x", RunConfig(budget_tracker=BudgetTracker(1), price=price, max_tokens=5)
    )
    assert adapter.holds == [D(10) / 1_000_000]  # (1 byte + 4) in + 5 out
    assert current_hold() is None


def _agents(
    tracker_a: BudgetTracker, tracker_b: BudgetTracker, tracker_c: BudgetTracker
) -> tuple[list[FakeAdapter], object]:
    a, b, c = (FakeAdapter(name, cost=D("0.20")) for name in ("plan", "do", "check"))

    async def agent_c(task: str) -> str:
        cfg = RunConfig(budget_tracker=tracker_c)
        return (await c.async_execute_prompt(task, cfg)).text

    async def agent_b(task: str) -> str:
        cfg = RunConfig(budget_tracker=tracker_b)
        step = (await b.async_execute_prompt(task, cfg)).text
        return await agent_c(step)

    async def agent_a(task: str) -> str:
        cfg = RunConfig(budget_tracker=tracker_a)
        plan = (await a.async_execute_prompt(task, cfg)).text
        return await agent_b(plan)

    return [a, b, c], agent_a


async def test_delegation_chain_holds_the_cap_and_the_crossing_call_is_not_made() -> (
    None
):
    tracker = BudgetTracker("1.00")
    (a, b, c), agent_a = _agents(tracker, tracker, tracker)
    assert await agent_a("task 1") == "check"  # type: ignore[operator]
    assert tracker.spent == D("0.60")
    with pytest.raises(LLMBudgetExceededError) as info:
        await agent_a("task 2")  # type: ignore[operator]
    # a and b fit (0.80, 1.00); c would cross the cap and is refused.
    assert (len(a.calls), len(b.calls), len(c.calls)) == (2, 2, 1)
    assert tracker.spent == D("1.00")
    assert tracker.reserved == 0
    error = info.value
    assert (error.total, error.spent, error.requested) == (
        D("1.00"),
        D("1.00"),
        D("0.20"),
    )


async def test_delegation_chain_with_child_budgets() -> None:
    root = BudgetTracker("1.00")
    team = root.child("0.50")  # b and c together
    checker = team.child("0.25")  # c alone
    (a, b, c), agent_a = _agents(root, team, checker)
    await agent_a("task 1")  # type: ignore[operator]
    assert (root.spent, team.spent, checker.spent) == (D("0.60"), D("0.40"), D("0.20"))
    with pytest.raises(LLMBudgetExceededError, match="child budget"):
        await agent_a("task 2")  # type: ignore[operator]
    # a fits (root 0.80); b would take the team to 0.60 of 0.50: refused.
    assert (len(a.calls), len(b.calls), len(c.calls)) == (2, 1, 1)
    assert (root.spent, team.spent, checker.spent) == (D("0.80"), D("0.40"), D("0.20"))


async def test_concurrent_adapters_share_one_tracker_some_refused_none_overshoot() -> (
    None
):
    tracker = BudgetTracker("1.00")
    adapters = [FakeAdapter(f"a{i}", cost=D("0.30"), delay=0.1) for i in range(4)]
    outcomes: list[str | None] = [None] * 4

    async def run(i: int) -> None:
        try:
            response = await adapters[i].async_execute_prompt(
                f"q{i}", RunConfig(budget_tracker=tracker)
            )
            outcomes[i] = response.text
        except LLMBudgetExceededError:
            outcomes[i] = "refused"

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(run, i)
    # Which one loses the race is up to the scheduler (trio shuffles); the
    # rest answered in their own slots.
    assert outcomes.count("refused") == 1
    refused = outcomes.index("refused")
    assert [o for i, o in enumerate(outcomes) if i != refused] == [
        f"a{i}" for i in range(4) if i != refused
    ]
    assert adapters[refused].calls == []
    assert tracker.spent == D("0.90")
    assert tracker.reserved == 0


async def test_cheap_calls_wait_for_holds_to_settle_instead_of_being_refused() -> None:
    tracker = BudgetTracker("1.00")
    adapter = FakeAdapter("ok", cost=D("0.10"), reserve=D("0.50"), delay=0.1)
    results: list[str] = []

    async def run(i: int) -> None:
        cfg = RunConfig(budget_tracker=tracker)
        results.append((await adapter.async_execute_prompt(f"q{i}", cfg)).text)

    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(run, i)
    elapsed = anyio.current_time() - started
    assert results == ["ok"] * 4
    assert tracker.spent == D("0.40")
    assert tracker.reserved == 0
    assert elapsed >= 0.19  # two waves: only two holds of 0.50 fit at once


async def test_timeout_while_waiting_for_budget_leaks_no_hold() -> None:
    tracker = BudgetTracker("1.00")
    blocker = tracker.reserve("0.90")
    adapter = FakeAdapter("ok", cost=D("0.10"), reserve=D("0.50"))
    started = anyio.current_time()
    with pytest.raises(LLMTimeoutError, match="budget wait"):
        await adapter.async_execute_prompt(
            "q", RunConfig(budget_tracker=tracker, timeout=0.3)
        )
    assert 0.29 <= anyio.current_time() - started < 1.5
    assert adapter.calls == []
    assert tracker.reserved == D("0.90")
    blocker.release()
    assert (tracker.spent, tracker.reserved) == (0, 0)


async def test_cancelled_and_failed_calls_release_their_hold() -> None:
    tracker = BudgetTracker("1.00")
    slow = FakeAdapter("late", cost=D("0.10"), delay=5)
    with anyio.move_on_after(0.1):
        await slow.async_execute_prompt("q", RunConfig(budget_tracker=tracker))
    assert (tracker.spent, tracker.reserved) == (0, 0)
    failing = FakeAdapter([LLMServerError("down", status_code=503)], cost=D("0.1"))
    with pytest.raises(LLMServerError):
        await failing.async_execute_prompt("q", RunConfig(budget_tracker=tracker))
    assert (tracker.spent, tracker.reserved) == (0, 0)


async def test_a_failed_call_that_was_still_charged_commits_its_cost() -> None:
    tracker = BudgetTracker("1.00")
    charged = LLMBudgetExceededError(
        "the run hit its cap",
        total=D("0.3"),
        spent=D("0.34"),
        requested=D("0.3"),
        cost=D("0.34"),
    )
    adapter = FakeAdapter([charged], cost=D("0.30"))
    with pytest.raises(LLMBudgetExceededError):
        await adapter.async_execute_prompt("q", RunConfig(budget_tracker=tracker))
    assert (tracker.spent, tracker.reserved) == (D("0.34"), 0)


async def test_unexpected_errors_release_the_hold_too() -> None:
    tracker = BudgetTracker("1.00")

    def broken(messages: Sequence[Message], config: RunConfig) -> str:
        raise RuntimeError("bug")

    adapter = FakeAdapter(broken, cost=D("0.1"))
    with pytest.raises(LLMError, match="failed unexpectedly"):
        await adapter.async_execute_prompt("q", RunConfig(budget_tracker=tracker))
    assert (tracker.spent, tracker.reserved) == (0, 0)


class ReportingAdapter(PricedAdapter):
    reports_cost = True

    def __init__(self, cost: Decimal | None) -> None:
        super().__init__("reporting", Usage(1, 1, 2), model="unpriced-model")
        self.cost = cost

    async def _call_provider(
        self, messages: Sequence[Message], config: RunConfig
    ) -> LLMResponse:
        response = await super()._call_provider(messages, config)
        return attrs.evolve(response, cost=self.cost)


async def test_unpriced_reporting_provider_holds_a_default_and_commits_its_report() -> (
    None
):
    tracker = BudgetTracker("2.00")
    adapter = ReportingAdapter(D("0.07"))
    await adapter.async_execute_prompt("q", RunConfig(budget_tracker=tracker))
    assert adapter.holds == [D("0.50")]
    assert tracker.spent == D("0.07")
    small = BudgetTracker("0.20")
    await adapter.async_execute_prompt("q", RunConfig(budget_tracker=small))
    assert adapter.holds[-1] == D("0.20")  # never more than the budget has


async def test_an_unreported_cost_counts_as_the_whole_hold() -> None:
    tracker = BudgetTracker("2.00")
    await ReportingAdapter(None).async_execute_prompt(
        "q", RunConfig(budget_tracker=tracker)
    )
    assert tracker.spent == D("0.50")


def test_sync_calls_are_budgeted_the_same_way() -> None:
    tracker = BudgetTracker("0.25")
    with FakeAdapter("ok", cost=D("0.10")) as adapter:
        cfg = RunConfig(budget_tracker=tracker)
        assert adapter.execute_prompt("a", cfg).cost == D("0.10")
        adapter.execute_prompt("b", cfg)
        with pytest.raises(LLMBudgetExceededError):
            adapter.execute_prompt("c", cfg)
    assert tracker.spent == D("0.20")
    assert len(adapter.calls) == 2
