"""ClaudeCodeAdapter against a bare ``claude -p`` subprocess call.

Run: ``python bench/claude_code.py``. Both make the same run of the real
Claude Code CLI (found as ``LLM_CONNECT_CLAUDE_BIN``, the cached install of
``.ci/run``, or ``claude`` on PATH) against the loopback server's Anthropic
endpoint: the same argv (``-p --output-format json --no-session-persistence
--tools ""``) and the same environment (``ANTHROPIC_BASE_URL``, a fake key, a
temporary ``CLAUDE_CONFIG_DIR``, ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1``),
both taken from the adapter's own ``build_argv``/``build_env``. The bare call
is ``subprocess.run`` with the prompt on stdin and ``json.loads`` of stdout;
the adapter call is ``execute_prompt``. Calls alternate; medians of 15 each.
Target: the adapter adds at most 5%.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    Figure,
    Row,
    Target,
    emit,
    interleaved,
    median,
    pin_client,
    rounds_from_env,
)

KEY = "sk-ant-bench-0000000000000000"
PROMPT = "Say hello."


def find_claude() -> str | None:
    cached = Path.home() / ".cache/llm-connect/claude-code/node_modules/.bin/claude"
    for candidate in (
        os.environ.get("LLM_CONNECT_CLAUDE_BIN"),
        str(cached),
        shutil.which("claude"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def bare_call(argv: list[str], env: dict[str, str]) -> float:
    """Seconds for one ``claude -p`` run, in its own process group."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, _ = process.communicate(PROMPT.encode(), timeout=120)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    result = json.loads(stdout)
    if result.get("is_error"):
        raise RuntimeError(f"claude failed: {result.get('result')}")
    return time.perf_counter() - started


def run() -> Figure | None:
    claude = find_claude()
    if claude is None:
        print(
            "## ClaudeCodeAdapter vs bare claude -p\n\nskipped: no claude CLI found\n"
        )
        return None
    pin_client()
    from llm_connect import ClaudeCodeAdapter
    from llm_connect.testing.server import LoopbackServer

    rounds = rounds_from_env(15)
    figure = Figure("ClaudeCodeAdapter vs bare claude -p")
    with (
        LoopbackServer(text="Hello!", record=False) as server,
        tempfile.TemporaryDirectory() as config_dir,
    ):
        adapter = ClaudeCodeAdapter(
            executable=claude,
            env={
                "ANTHROPIC_BASE_URL": server.anthropic_base_url,
                "ANTHROPIC_API_KEY": KEY,
                "CLAUDE_CONFIG_DIR": config_dir,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            },
            extra_args=["--tools", ""],
        )
        config = adapter.default_config
        argv = adapter.build_argv(config)
        env = adapter.build_env(config)

        def through_adapter() -> float:
            started = time.perf_counter()
            text = adapter.execute_prompt(PROMPT).text
            elapsed = time.perf_counter() - started
            assert text == "Hello!", text
            return elapsed

        with adapter:
            results = interleaved(
                {
                    "bare claude -p (subprocess.run)": lambda: bare_call(argv, env),
                    "ClaudeCodeAdapter.execute_prompt": through_adapter,
                },
                rounds,
            )
    for name, times in results.items():
        figure.rows.append(Row(name, median(times) * 1000, "ms per call"))
    bare = median(results["bare claude -p (subprocess.run)"])
    ours = median(results["ClaudeCodeAdapter.execute_prompt"])
    figure.targets.append(
        Target(
            "Claude Code: adapter over bare claude -p",
            (ours / bare - 1) * 100,
            5.0,
            "<=",
            "%",
        )
    )
    figure.notes.append(f"CLI: {claude}")
    return figure


def main() -> None:
    figure = run()
    if figure is not None:
        emit(figure)


if __name__ == "__main__":
    main()
