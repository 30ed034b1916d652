"""The llm-connect demo: a chain of agents on three providers, one budget.

Run it with ``python -m llm_connect.demo`` — no keys and no network needed:
it starts the loopback provider server (``llm_connect.testing.server``) on
127.0.0.1 and points real ``OpenAIAdapter``, ``GeminiAdapter`` and
``OpenRouterAdapter`` instances at it, so every request goes over real HTTP.

A planner (OpenAI) splits a question; two researchers (Gemini and OpenRouter)
work at the same time under a child budget; a writer (OpenAI) answers. The
server injects faults on the way — a 503 for Gemini, a 429 with Retry-After
for OpenRouter — which the adapters retry. One ``BudgetTracker`` caps the
whole chain; the last step asks for more than is left and is refused before
anything is sent. ``--claude`` adds a Claude Code step when the ``claude`` CLI
is installed. ``--backend trio`` runs the same code under trio; ``--sync``
runs it from plain threads with ``execute_prompt``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from decimal import Decimal

import anyio

from llm_connect import (
    BudgetTracker,
    ClaudeCodeAdapter,
    GeminiAdapter,
    LLMAdapter,
    LLMBudgetExceededError,
    LLMError,
    LLMResponse,
    OpenAIAdapter,
    OpenRouterAdapter,
    RunConfig,
)
from llm_connect.testing.server import Fail, LoopbackServer, RecordedRequest, Respond

__all__ = ["main"]

_KEY = "sk-demo-loopback-key"
_QUESTION = "Why do tide tables differ between neighbouring harbours?"


def _answer(request: RecordedRequest) -> str:
    """What the loopback 'models' say: short, and shaped by the agent's role."""
    prompt = request.prompt
    if "Plan an answer" in prompt:
        return "1. Coastline shape. 2. Water depth and resonance."
    if "Research:" in prompt:
        topic = prompt.partition("Research:")[2].strip()
        return (
            f"Notes on {topic.lower()}: local geometry delays and amplifies the tide."
        )
    if "Review the answer" in prompt:
        return "Sound: it names both causes and stays short."
    if "Write the final answer" in prompt:
        return (
            "Tides are one ocean wave, but each harbour's shape and depth delay "
            "and amplify it differently, so times and heights shift locally."
        )
    return f"(loopback answer to: {prompt[:40]})"


class _Step:
    """One agent's call, as the table shows it."""

    def __init__(
        self, agent: str, adapter: LLMAdapter, prompt: str, config: RunConfig
    ) -> None:
        self.agent = agent
        self.adapter = adapter
        self.prompt = prompt
        self.config = config
        self.response: LLMResponse | None = None
        self.error: LLMError | None = None

    async def run(self) -> None:
        try:
            self.response = await self.adapter.async_execute_prompt(
                self.prompt, self.config
            )
        except LLMError as exc:
            self.error = exc

    def run_sync(self) -> None:
        try:
            self.response = self.adapter.execute_prompt(self.prompt, self.config)
        except LLMError as exc:
            self.error = exc


def _adapters(server: LoopbackServer, use_claude: str | None) -> dict[str, LLMAdapter]:
    adapters: dict[str, LLMAdapter] = {
        "openai": OpenAIAdapter(_KEY, base_url=server.openai_base_url),
        "gemini": GeminiAdapter(_KEY, base_url=server.gemini_base_url),
        "openrouter": OpenRouterAdapter(
            _KEY, base_url=server.openrouter_base_url, app_name="llm-connect demo"
        ),
    }
    if use_claude:
        adapters["claude-code"] = ClaudeCodeAdapter(
            executable=use_claude,
            env={
                "ANTHROPIC_BASE_URL": server.anthropic_base_url,
                "ANTHROPIC_API_KEY": _KEY,
                "CLAUDE_CONFIG_DIR": tempfile.mkdtemp(prefix="llm-connect-demo-"),
                "IS_SANDBOX": "1",
            },
            extra_args=("--tools", ""),
        )
    return adapters


def _plan(
    adapters: dict[str, LLMAdapter], budget: BudgetTracker, question: str
) -> list[list[_Step]]:
    """The chain, as waves of steps that run at the same time."""
    team = budget.child(budget.total / 2)
    cfg = RunConfig(max_tokens=200, timeout=30)
    waves = [
        [
            _Step(
                "planner",
                adapters["openai"],
                f"Plan an answer to: {question}",
                cfg.evolve(model="gpt-4o-mini", budget_tracker=budget),
            )
        ],
        [
            _Step(
                "researcher 1",
                adapters["gemini"],
                "Research: coastline shape",
                cfg.evolve(model="gemini-2.5-flash", budget_tracker=team),
            ),
            _Step(
                "researcher 2",
                adapters["openrouter"],
                "Research: water depth and resonance",
                cfg.evolve(model="anthropic/claude-sonnet-4.5", budget_tracker=team),
            ),
        ],
        [
            _Step(
                "writer",
                adapters["openai"],
                f"Write the final answer to: {question}",
                cfg.evolve(model="gpt-4o", budget_tracker=budget),
            )
        ],
    ]
    if "claude-code" in adapters:
        waves.append(
            [
                _Step(
                    "reviewer",
                    adapters["claude-code"],
                    "Review the answer in one sentence.",
                    RunConfig(timeout=60, budget_tracker=budget, max_retries=0),
                )
            ]
        )
    # More than the budget could ever hold: refused before any request.
    waves.append(
        [
            _Step(
                "over budget",
                adapters["openai"],
                f"Write a book about: {question}",
                cfg.evolve(model="o1-pro", max_tokens=100_000, budget_tracker=budget),
            )
        ]
    )
    return waves


async def _run_async(waves: Sequence[Sequence[_Step]]) -> None:
    for wave in waves:
        async with anyio.create_task_group() as tg:
            for step in wave:
                tg.start_soon(step.run)


def _run_threads(waves: Sequence[Sequence[_Step]]) -> None:
    for wave in waves:
        threads = [threading.Thread(target=step.run_sync) for step in wave]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _attempts(server: LoopbackServer) -> dict[str, list[int | None]]:
    seen: dict[str, list[int | None]] = {}
    for request in server.requests:
        if request.method == "POST" and request.route:
            seen.setdefault(request.route, []).append(request.status)
    return seen


def _report(
    waves: Sequence[Sequence[_Step]],
    budget: BudgetTracker,
    server: LoopbackServer,
    elapsed: float,
) -> int:
    header = f"{'agent':<13} {'provider':<11} {'model':<28} {'tokens':>6} "
    header += f"{'cost (USD)':>12} {'latency':>8}"
    print(header)
    print("-" * len(header))
    failures = 0
    for wave in waves:
        for step in wave:
            r = step.response
            if r is not None:
                cost = f"{r.cost:.8f}" if r.cost is not None else "unknown"
                latency = f"{r.latency_s * 1000:.0f} ms"
                print(
                    f"{step.agent:<13} {r.provider:<11} {r.model[:28]:<28} "
                    f"{r.usage.total_tokens:>6} {cost:>12} {latency:>8}"
                )
                print(f"{'':<13} -> {' '.join(r.text.split())}")
            elif isinstance(step.error, LLMBudgetExceededError):
                e = step.error
                print(
                    f"{step.agent:<13} refused before sending: needs up to "
                    f"${e.requested:.4f}, ${e.total - e.spent:.4f} left of ${e.total}"
                )
            else:
                failures += 1
                print(f"{step.agent:<13} FAILED: {step.error}")
    print()
    print("attempts per provider (HTTP status of each POST the server saw):")
    for route, statuses in sorted(_attempts(server).items()):
        print(f"  {route:<11} {statuses}")
    print()
    print(
        f"budget: spent ${budget.spent:.8f} of ${budget.total}, "
        f"reserved ${budget.reserved:.8f}, remaining ${budget.remaining():.8f}"
    )
    print(f"done in {elapsed:.2f} s")
    return 1 if failures else 0


def _find_claude() -> str | None:
    found = os.environ.get("LLM_CONNECT_CLAUDE_BIN") or shutil.which("claude")
    cached = os.path.expanduser(
        "~/.cache/llm-connect/claude-code/node_modules/.bin/claude"
    )
    if not found and os.path.exists(cached):
        found = cached
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m llm_connect.demo",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--question", default=_QUESTION, help="what to ask")
    parser.add_argument(
        "--budget", default="0.05", help="USD cap of the whole chain (default 0.05)"
    )
    parser.add_argument(
        "--backend", choices=("asyncio", "trio"), default="asyncio", help="event loop"
    )
    parser.add_argument(
        "--sync", action="store_true", help="call from threads with execute_prompt"
    )
    parser.add_argument(
        "--claude", action="store_true", help="add a Claude Code step (needs `claude`)"
    )
    args = parser.parse_args(argv)
    claude = _find_claude() if args.claude else None
    if args.claude and claude is None:
        parser.error(
            "--claude needs the Claude Code CLI: "
            "npm install -g @anthropic-ai/claude-code"
        )
    try:
        budget = BudgetTracker(Decimal(args.budget))
    except (LLMError, ArithmeticError):
        parser.error(f"--budget must be an amount in USD, not {args.budget!r}")

    with LoopbackServer(
        text=_answer, api_key=_KEY, backend=args.backend, record=True
    ) as server:
        # Faults, retried by the adapters: Gemini fails once, OpenRouter is
        # rate limited once and says when to come back.
        server.script(Fail(503), Respond(), route="gemini")
        server.script(Fail(429, retry_after=0.2), Respond(), route="openrouter")
        adapters = _adapters(server, claude)
        waves = _plan(adapters, budget, args.question)
        mode = "threads, execute_prompt" if args.sync else args.backend
        print(f"llm-connect demo: loopback providers at {server.base_url} ({mode})")
        print(f"question: {args.question}")
        print(
            f"budget: ${budget.total} for the chain, "
            f"${budget.total / 2} for the researchers"
        )
        print()
        started = time.perf_counter()
        if args.sync:
            _run_threads(waves)
            for adapter in adapters.values():
                adapter.close()
        else:

            async def run_and_close() -> None:
                await _run_async(waves)
                for adapter in adapters.values():
                    await adapter.aclose()

            anyio.run(run_and_close, backend=args.backend)
        elapsed = time.perf_counter() - started
        return _report(waves, budget, server, elapsed)


if __name__ == "__main__":
    sys.exit(main())
