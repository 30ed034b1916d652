"""ClaudeCodeAdapter driving the real ``claude`` CLI against the loopback server.

Each test starts a :class:`LoopbackServer` on the test's event loop and points
the CLI at it with ``ANTHROPIC_BASE_URL``: the server's answer, faults and
recorded requests show what the CLI did, and the adapter's result shows what
reached the caller. The CLI comes from the ``claude_bin`` fixture (conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from llm_connect import (
    BudgetTracker,
    ClaudeCodeAdapter,
    LLMAuthenticationError,
    LLMBudgetExceededError,
    LLMProviderError,
    LLMRateLimitError,
    LLMTimeoutError,
    RunConfig,
    Usage,
    pricing,
)
from llm_connect._adapter import UNPRICED_HOLD_USD
from llm_connect.testing.server import (
    Action,
    Fail,
    LoopbackServer,
    Malformed,
    RecordedRequest,
    Respond,
    Stall,
)
from tests.test_docs import _python_block_after

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX-only"),
]

API_KEY = "sk-ant-loopback-0123456789"
PROMPT = "What is six times seven?"
ANSWER = "Six times seven is forty-two."
MODEL = "claude-sonnet-4-5"
#: What the server reports; Anthropic's input_tokens is 100 (cache reads apart).
USAGE = Usage(
    input_tokens=120, output_tokens=7, total_tokens=127, cached_input_tokens=20
)
#: The CLI's price of USAGE on MODEL ($3/M in, $0.30/M cache reads, $15/M out).
COST = Decimal("0.000411")
#: Bounds, in seconds, for a noisy 2-core machine (a CLI call takes ~0.5 s).
QUICKLY = 8.0
TIMEOUT = 3.0
CLEANUP_MARGIN = 1.5


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's Claude settings, keys and proxies away from the CLI."""
    proxies = {"http_proxy", "https_proxy", "all_proxy"}
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "CLAUDE")) or name.lower() in proxies:
            monkeypatch.delenv(name)


def adapter_for(
    claude_bin: str, server: LoopbackServer, config_dir: Path
) -> ClaudeCodeAdapter:
    """The adapter under test, pointed at ``server`` with a fake key."""
    return ClaudeCodeAdapter(
        executable=claude_bin,
        env={
            "ANTHROPIC_BASE_URL": server.anthropic_base_url,
            "ANTHROPIC_API_KEY": API_KEY,
            "CLAUDE_CONFIG_DIR": str(config_dir),
        },
        extra_args=("--tools", ""),  # no tool definitions: ~1 KB bodies
    )


def posts(server: LoopbackServer) -> list[RecordedRequest]:
    """The model requests the server saw (the CLI also sends ``HEAD /``)."""
    return [r for r in server.requests if r.method == "POST"]


# -- processes ------------------------------------------------------------------


class Proc(NamedTuple):
    pid: int
    ppid: int
    pgid: int
    argv: list[str]


def process_table() -> list[Proc]:
    """Every process on the machine: from /proc, else from ``ps``."""
    if not Path("/proc/self/stat").exists():
        listing = subprocess.run(
            ["ps", "-A", "-o", "pid=,ppid=,pgid=,args="],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        table = []
        for line in listing.splitlines():
            pid, ppid, pgid, *argv = line.split()
            table.append(Proc(int(pid), int(ppid), int(pgid), argv))
        return table
    table = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:  # it ended while we looked
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        _state, ppid, pgid, *_ = stat.rpartition(")")[2].split()
        argv = [arg.decode(errors="replace") for arg in cmdline.split(b"\0")[:-1]]
        table.append(Proc(int(entry.name), int(ppid), int(pgid), argv))
    return table


class CliSpy:
    """A server text function: notes the ``claude -p`` children, then answers.

    It runs while the CLI waits for the answer, so ``children`` holds the
    ``claude`` process this test started, with its command line.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.children: list[Proc] = []

    def __call__(self, request: RecordedRequest) -> str:
        me = os.getpid()
        self.children += [
            p for p in process_table() if p.ppid == me and p.argv[1:2] == ["-p"]
        ]
        return self.text

    def the_cli(self) -> Proc:
        """The one ``claude`` process seen."""
        assert len(self.children) == 1, self.children
        return self.children[0]


def flag(argv: list[str], name: str) -> str:
    """The value after ``name`` in ``argv``."""
    assert name in argv, argv
    return argv[argv.index(name) + 1]


# -- the tests --------------------------------------------------------------------


async def test_answer_usage_and_cost_reach_the_response_over_sse(
    claude_bin: str, tmp_path: Path
) -> None:
    spy = CliSpy(ANSWER)
    async with (
        LoopbackServer(text=spy, usage=USAGE, api_key=API_KEY) as server,
        adapter_for(claude_bin, server, tmp_path) as adapter,
    ):
        response = await adapter.async_execute_prompt(
            PROMPT,
            RunConfig(
                model=MODEL,
                system_prompt="Answer in one sentence.",
                max_tokens=512,
                max_retries=0,
                extra_headers={"X-Trace-Id": "trace-42"},
            ),
        )
    assert response.text == ANSWER
    assert response.usage == USAGE
    assert response.model == MODEL
    assert response.provider == "claude-code"
    assert response.finish_reason == "stop"
    assert response.raw["stop_reason"] == "end_turn"
    assert response.cost == Decimal(str(response.raw["total_cost_usd"])) == COST
    assert response.cost == pricing.lookup("claude-code", MODEL).cost(USAGE)
    assert response.request_id == response.raw["session_id"]
    [request] = posts(server)
    assert request.path == "/v1/messages"
    assert request.stream is True
    assert request.status == 200
    assert request.api_key == API_KEY
    assert request.model == MODEL
    assert request.json is not None
    assert request.json["max_tokens"] == 512
    assert request.json["system"][-1]["text"] == "Answer in one sentence."
    assert request.json["tools"] == []
    assert request.prompt.endswith(PROMPT)
    assert request.headers["x-trace-id"] == "trace-42"
    assert request.headers["x-claude-code-session-id"] == response.request_id
    cli = spy.the_cli()
    assert flag(cli.argv, "--model") == MODEL
    assert "--max-budget-usd" not in cli.argv  # no budget, no cap
    assert cli.pgid == cli.pid  # its own process group


async def test_malformed_stream_falls_back_to_a_json_answer(
    claude_bin: str, tmp_path: Path
) -> None:
    async with LoopbackServer(text=ANSWER, usage=USAGE, api_key=API_KEY) as server:
        server.script(Malformed("truncated"))
        async with adapter_for(claude_bin, server, tmp_path) as adapter:
            response = await adapter.async_execute_prompt(
                PROMPT, RunConfig(model=MODEL, max_retries=0)
            )
        assert server.pending_actions == ()
    assert response.text == ANSWER
    assert response.usage == USAGE
    assert response.raw["usage"]["input_tokens"] == 0  # so usage is from modelUsage
    assert response.cost == COST
    first, fallback = posts(server)
    assert (first.stream, first.action) == (True, Malformed("truncated"))
    assert fallback.stream is False
    assert fallback.json is not None
    assert "stream" not in fallback.json
    assert fallback.prompt.endswith(PROMPT)
    assert fallback.status == 200  # answered with the JSON message


#: The exception each HTTP error status becomes.
ERRORS: dict[int, type[LLMProviderError]] = {
    429: LLMRateLimitError,
    401: LLMAuthenticationError,
}


@pytest.mark.parametrize(
    ("fail", "max_retries", "attempts"),
    [
        pytest.param(Fail(429), 0, 1, id="429-no-retries"),
        pytest.param(Fail(429), 1, 2, id="429-one-retry"),
        pytest.param(Fail(401), 0, 1, id="401-no-retries"),
        # The server says `x-should-retry: false` on a 401, like the real API,
        # and the CLI honours it; a server that says "true" gets a retry.
        pytest.param(Fail(401), 1, 1, id="401-not-retried"),
        pytest.param(
            Fail(401, headers={"x-should-retry": "true"}),
            1,
            2,
            id="401-retried-when-allowed",
        ),
    ],
)
async def test_http_error_is_raised_after_max_retries_attempts(
    claude_bin: str, tmp_path: Path, fail: Fail, max_retries: int, attempts: int
) -> None:
    async with (
        LoopbackServer(text=ANSWER, api_key=API_KEY) as server,
        adapter_for(claude_bin, server, tmp_path) as adapter,
    ):
        server.script(*[fail] * (max_retries + 1))
        started = time.monotonic()
        with pytest.raises(ERRORS[fail.status]) as caught:
            await adapter.async_execute_prompt(
                PROMPT, RunConfig(model=MODEL, max_retries=max_retries)
            )
        elapsed = time.monotonic() - started
    assert elapsed < QUICKLY
    error = caught.value
    assert error.status_code == fail.status
    assert error.provider == "claude-code"
    assert error.cost is None
    assert [r.status for r in posts(server)] == [fail.status] * attempts
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert API_KEY not in (error.body or "")


@pytest.mark.parametrize(
    "stall",
    [
        pytest.param(Stall(), id="mid-stream"),
        pytest.param(Respond(delay=120), id="before-headers"),
    ],
)
async def test_stalled_server_is_cut_off_by_the_timeout(
    claude_bin: str, tmp_path: Path, stall: Action
) -> None:
    budget = BudgetTracker("1.00")
    spy = CliSpy(ANSWER)
    held: list[Decimal] = []

    def answer(request: RecordedRequest) -> str:
        held.append(budget.reserved)
        return spy(request)

    async with LoopbackServer(text=answer, usage=USAGE, api_key=API_KEY) as server:
        server.script(stall)
        async with adapter_for(claude_bin, server, tmp_path) as adapter:
            started = time.monotonic()
            with pytest.raises(LLMTimeoutError) as caught:
                await adapter.async_execute_prompt(
                    PROMPT,
                    RunConfig(
                        model=MODEL,
                        timeout=TIMEOUT,
                        max_retries=0,
                        budget_tracker=budget,
                    ),
                )
            elapsed = time.monotonic() - started
        [request] = posts(server)
        assert request.action == stall  # the CLI was waiting on it, not starting
    assert TIMEOUT - 0.1 <= elapsed < TIMEOUT + CLEANUP_MARGIN
    assert caught.value.timeout == TIMEOUT
    assert caught.value.cost is None
    assert held == [UNPRICED_HOLD_USD]
    assert (budget.reserved, budget.spent) == (0, 0)  # the hold was released
    cli = spy.the_cli()
    assert flag(cli.argv, "--max-budget-usd") == "0.50"
    left = [p for p in process_table() if cli.pid in (p.pid, p.pgid)]
    assert left == []  # killed with its group, and reaped


async def test_budget_hold_becomes_the_cli_cap_and_its_cost_is_committed(
    claude_bin: str, tmp_path: Path
) -> None:
    budget = BudgetTracker("1.00")
    spy = CliSpy(ANSWER)
    async with (
        LoopbackServer(text=spy, usage=USAGE, api_key=API_KEY) as server,
        adapter_for(claude_bin, server, tmp_path) as adapter,
    ):
        response = await adapter.async_execute_prompt(
            PROMPT, RunConfig(model=MODEL, max_retries=0, budget_tracker=budget)
        )
    assert response.text == ANSWER
    assert Decimal(flag(spy.the_cli().argv, "--max-budget-usd")) == UNPRICED_HOLD_USD
    assert response.cost == COST
    assert budget.spent == COST
    assert budget.reserved == 0
    assert budget.remaining() == Decimal("1.00") - COST


async def test_tiny_budget_stops_the_cli_after_one_turn_and_charges_it(
    claude_bin: str, tmp_path: Path
) -> None:
    budget = BudgetTracker("0.000001")
    spy = CliSpy(ANSWER)
    async with (
        LoopbackServer(text=spy, usage=USAGE, api_key=API_KEY) as server,
        adapter_for(claude_bin, server, tmp_path) as adapter,
    ):
        with pytest.raises(LLMBudgetExceededError) as caught:
            await adapter.async_execute_prompt(
                PROMPT,
                RunConfig(model=MODEL, max_retries=0, budget_tracker=budget),
            )
    error = caught.value
    assert flag(spy.the_cli().argv, "--max-budget-usd") == "0.000001"
    assert len(posts(server)) == 1  # one turn ran, then the CLI checked its cap
    assert error.cost == COST
    assert error.spent == COST
    assert error.total == Decimal("0.000001")
    assert budget.spent == COST  # what the turn cost is committed
    assert budget.reserved == 0
    assert budget.remaining() == Decimal("0.000001") - COST


def test_execute_prompt_runs_the_real_cli_from_sync_code(
    claude_bin: str, tmp_path: Path
) -> None:
    with (
        LoopbackServer(text=ANSWER, usage=USAGE, api_key=API_KEY) as server,
        adapter_for(claude_bin, server, tmp_path) as adapter,
    ):
        response = adapter.execute_prompt(PROMPT, RunConfig(model=MODEL, max_retries=0))
        [request] = posts(server)
    assert response.text == ANSWER
    assert response.usage == USAGE
    assert response.cost == COST
    assert response.latency_s is not None
    assert 0 < response.latency_s < QUICKLY
    assert request.prompt.endswith(PROMPT)


async def test_the_claude_example_in_the_testing_guide_passes(
    claude_bin: str, tmp_path: Path
) -> None:
    namespace: dict[str, Any] = {}
    heading = "### Example: testing code that runs the `claude` CLI"
    code = _python_block_after("testing.md", heading)
    exec(compile(code, "testing.md", "exec"), namespace)
    await namespace["test_claude_retries_a_rate_limit"](claude_bin, tmp_path)
