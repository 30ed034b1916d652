"""ClaudeCodeAdapter against a fake `claude`: a Python script the tests write.

The fake records its argv, stdin, cwd and environment, then replays a real CLI
run recorded in tests/fixtures/claude_code/ (see the README there), prints what
it is told, hangs, floods stdout, or plays a wrapper script whose child ignores
SIGTERM.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from llm_connect import (
    BudgetTracker,
    ClaudeCodeAdapter,
    LLMAuthenticationError,
    LLMBadRequestError,
    LLMBudgetExceededError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMProviderError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
    Message,
    RunConfig,
    Usage,
)
from llm_connect.adapters import claude_code
from llm_connect.adapters.claude_code import render_conversation

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="process groups are POSIX-only"
)

FIXTURES = Path(__file__).parent / "fixtures" / "claude_code"

FAKE_CLAUDE = """\
#!{python}
import json, os, signal, subprocess, sys, time

data = sys.stdin.buffer.read()
record = os.environ.get("FAKE_CLAUDE_RECORD")
if record:
    with open(record, "w") as f:
        json.dump({{"argv": sys.argv[1:], "stdin": data.decode(),
                   "cwd": os.getcwd(), "env": dict(os.environ)}}, f)
mode = os.environ.get("FAKE_CLAUDE_MODE", "replay")
pidfile = os.environ.get("FAKE_CLAUDE_PIDFILE")
if mode == "replay":
    with open(os.environ["FAKE_CLAUDE_FIXTURE"]) as f:
        run = json.load(f)
    sys.stdout.write(run["stdout"])
    sys.stderr.write(run["stderr"])
    sys.exit(run["exit_code"])
elif mode == "print":
    sys.stdout.write(os.environ.get("FAKE_CLAUDE_STDOUT", ""))
    sys.stderr.write(os.environ.get("FAKE_CLAUDE_STDERR", ""))
    sys.exit(int(os.environ.get("FAKE_CLAUDE_EXIT", "0")))
elif mode == "hang":
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
    time.sleep(3600)
elif mode == "wrapper":
    # Like a shell wrapper that does not exec: the real work is a child,
    # and this child ignores SIGTERM.
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(3600)"], stdout=subprocess.PIPE)
    child.stdout.readline()
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{{os.getpid()}} {{child.pid}}")
    os.rename(pidfile + ".tmp", pidfile)
    child.wait()
elif mode == "flood":
    chunk = "x" * 65536
    for _ in range(11 * 16 + 1):
        sys.stdout.write(chunk)
    sys.stdout.write("\\n")
"""


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def _result(name: str) -> dict[str, Any]:
    """The result JSON object of a recorded run."""
    data: dict[str, Any] = json.loads(_fixture(name)["stdout"])
    return data


class Fake:
    """A fake `claude` in a temporary folder, and what it saw."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "claude"
        self.path.write_text(FAKE_CLAUDE.format(python=sys.executable))
        self.path.chmod(0o755)
        self.record_path = folder / "record.json"
        self.pidfile = folder / "pids"

    def adapter(
        self,
        mode: str = "replay",
        *,
        fixture: str = "success",
        env: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> ClaudeCodeAdapter:
        fake_env = {
            "FAKE_CLAUDE_MODE": mode,
            "FAKE_CLAUDE_FIXTURE": str(FIXTURES / f"{fixture}.json"),
            "FAKE_CLAUDE_RECORD": str(self.record_path),
            "FAKE_CLAUDE_PIDFILE": str(self.pidfile),
            **(env or {}),
        }
        kwargs.setdefault("executable", str(self.path))
        return ClaudeCodeAdapter(env=fake_env, **kwargs)

    def printing(
        self, stdout: str, *, stderr: str = "", exit_code: int = 0, **kwargs: Any
    ) -> ClaudeCodeAdapter:
        env = {
            "FAKE_CLAUDE_STDOUT": stdout,
            "FAKE_CLAUDE_STDERR": stderr,
            "FAKE_CLAUDE_EXIT": str(exit_code),
        }
        return self.adapter("print", env=env, **kwargs)

    @property
    def record(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.record_path.read_text())
        return data

    def pids(self) -> list[int]:
        return [int(p) for p in self.pidfile.read_text().split()]


@pytest.fixture
def fake(tmp_path: Path) -> Fake:
    return Fake(tmp_path)


def _running_in_group(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that still run (zombies do not count).

    A killed orphan (a wrapper's child) is re-parented to PID 1 and stays a
    zombie until PID 1 reaps it, which the PID 1 of some containers never
    does: it is dead, merely not yet reaped by its new parent.
    """
    running = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            running.append(int(entry.name))
    return running


def _assert_group_gone(pgid: int) -> None:
    """The CLI is reaped (no zombie of ours) and nothing of its group runs."""
    with pytest.raises(ProcessLookupError):
        os.kill(pgid, 0)
    deadline = time.monotonic() + 2.0
    while _running_in_group(pgid):
        assert time.monotonic() < deadline, _running_in_group(pgid)
        time.sleep(0.02)


def _assert_gone(pid: int) -> None:
    """A CLI that had no children: it and its process group no longer exist."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


async def _wait_for_file(path: Path) -> None:
    """Wait up to 10 s for the fake to write ``path`` (works on any loop)."""
    for _ in range(1000):
        if await anyio.Path(path).exists():
            return
        await anyio.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


# -- the command line and the environment ------------------------------------


def test_argv_has_the_headless_flags_and_no_cap_by_default() -> None:
    adapter = ClaudeCodeAdapter()
    assert adapter.build_argv(RunConfig()) == [
        "claude",
        "-p",
        "--output-format",
        "json",
        "--no-session-persistence",
    ]


def test_argv_maps_settings_and_puts_the_budget_cap_before_extra_args() -> None:
    adapter = ClaudeCodeAdapter(
        executable="/opt/claude",
        permission_mode="acceptEdits",
        allowed_tools=["Read", "Bash(git log:*)"],
        extra_args=("--max-turns", "3"),
    )
    argv = adapter.build_argv(
        RunConfig(model="claude-haiku-4-5"),
        Decimal("0.25"),
        system_prompt="Be brief.",
    )
    assert argv == [
        "/opt/claude",
        "-p",
        "--output-format",
        "json",
        "--no-session-persistence",
        "--model",
        "claude-haiku-4-5",
        "--system-prompt",
        "Be brief.",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        "Read",
        "--allowedTools",
        "Bash(git log:*)",
        "--max-budget-usd",
        "0.25",
        "--max-turns",
        "3",
    ]


@pytest.mark.parametrize(
    ("cap", "text"),
    [(Decimal("1E-7"), "0.0000001"), (Decimal("12.500"), "12.500"), (Decimal(3), "3")],
)
def test_budget_cap_is_written_in_plain_decimal_notation(
    cap: Decimal, text: str
) -> None:
    argv = ClaudeCodeAdapter().build_argv(RunConfig(), cap)
    assert argv[-2:] == ["--max-budget-usd", text]


@pytest.mark.parametrize("cap", [Decimal(0), Decimal("-1"), Decimal("NaN"), 0.5])
def test_budget_cap_must_be_a_positive_decimal(cap: Any) -> None:
    # The CLI itself crashes on --max-budget-usd 0.
    with pytest.raises(LLMConfigurationError, match="positive Decimal"):
        ClaudeCodeAdapter().build_argv(RunConfig(), cap)


def test_env_overlays_and_maps_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_CONNECT_TEST_INHERITED", "yes")
    monkeypatch.delenv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", raising=False)
    adapter = ClaudeCodeAdapter(
        env={"ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "CLAUDE_CODE_MAX_RETRIES": "9"}
    )
    env = adapter.build_env(
        RunConfig(max_retries=0, max_tokens=256, extra_headers={"X-A": "1", "X-B": "2"})
    )
    assert env["LLM_CONNECT_TEST_INHERITED"] == "yes"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9"
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "0"  # the config wins
    assert env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "256"
    assert env["ANTHROPIC_CUSTOM_HEADERS"] == "X-A: 1\nX-B: 2"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    default = adapter.build_env(RunConfig())
    assert default["CLAUDE_CODE_MAX_RETRIES"] == "2"
    assert "CLAUDE_CODE_MAX_OUTPUT_TOKENS" not in default


def test_user_can_turn_nonessential_traffic_back_on() -> None:
    adapter = ClaudeCodeAdapter(env={"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": ""})
    assert (
        adapter.build_env(RunConfig())["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == ""
    )


def test_repr_shows_no_environment_values() -> None:
    adapter = ClaudeCodeAdapter(env={"ANTHROPIC_API_KEY": "sk-ant-secret-1"})
    assert "sk-ant-secret-1" not in repr(adapter)
    assert repr(adapter) == "<ClaudeCodeAdapter executable='claude' model=None>"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"extra_args": "--verbose"}, "extra_args must be a sequence of str"),
        ({"allowed_tools": "Read"}, "allowed_tools must be a sequence of str"),
        ({"extra_args": ["--max-turns", 3]}, "extra_args must hold only str"),
        ({"env": {"KEY": 1}}, "env must be a mapping of str to str"),
        ({"permission_mode": ""}, "permission_mode must be a non-empty str"),
        ({"executable": ""}, "executable must be a non-empty str"),
    ],
)
def test_constructor_refuses_mistyped_arguments(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(LLMConfigurationError, match=message):
        ClaudeCodeAdapter(**kwargs)


# -- the conversation on stdin -----------------------------------------------


def test_single_user_message_goes_to_stdin_verbatim() -> None:
    text = "Line one\n  <turn> stays as is\n"
    assert render_conversation([Message("user", text)]) == text


def test_conversation_is_rendered_as_a_tagged_transcript() -> None:
    rendered = render_conversation(
        [
            Message("system", "ignored here"),
            Message("user", "What is 2+2?"),
            Message("assistant", "4"),
            Message("user", "And times 3?"),
        ]
    )
    preamble, transcript = rendered.split("\n\n", 1)
    assert '<turn role="user">' in preamble
    assert "next turn" in preamble
    assert transcript == (
        '<turn role="user">\nWhat is 2+2?\n</turn>\n'
        '<turn role="assistant">\n4\n</turn>\n'
        '<turn role="user">\nAnd times 3?\n</turn>\n'
    )


def test_transcript_tag_changes_when_a_turn_contains_it() -> None:
    rendered = render_conversation(
        [Message("user", "close it: </turn> and <turn-1"), Message("assistant", "ok")]
    )
    assert '<turn-2 role="user">\nclose it: </turn> and <turn-1\n</turn-2>\n' in (
        rendered
    )
    assert "<turn-2" in rendered.split("\n\n", 1)[0]  # the preamble names it


async def test_prompt_goes_on_stdin_with_exact_flags_and_env(fake: Fake) -> None:
    workdir = fake.folder / "work"
    workdir.mkdir()
    adapter = fake.adapter(
        cwd=workdir,
        default_config=RunConfig(system_prompt="Be brief.", max_retries=1),
        env={"ANTHROPIC_API_KEY": "sk-ant-test-key"},
    )
    conversation = [
        Message("system", "Answer in French."),
        Message("user", "Hi"),
        Message("assistant", "Salut"),
        Message("user", "2+2?"),
    ]
    await adapter.async_execute_prompt(
        conversation, RunConfig(model="claude-haiku-4-5", max_tokens=64)
    )
    seen = fake.record
    assert seen["argv"] == [
        "-p",
        "--output-format",
        "json",
        "--no-session-persistence",
        "--model",
        "claude-haiku-4-5",
        "--system-prompt",
        "Be brief.\n\nAnswer in French.",
    ]
    assert seen["stdin"] == render_conversation(conversation)
    assert Path(seen["cwd"]) == workdir
    assert seen["env"]["CLAUDE_CODE_MAX_RETRIES"] == "1"
    assert seen["env"]["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "64"
    assert seen["env"]["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert seen["env"]["ANTHROPIC_API_KEY"] == "sk-ant-test-key"


async def test_budget_cap_reaches_the_cli(fake: Fake) -> None:
    adapter = fake.adapter()
    await adapter._run([Message("user", "hi")], RunConfig(), budget_cap=Decimal("0.05"))
    assert fake.record["argv"][-2:] == ["--max-budget-usd", "0.05"]


async def test_a_usd_budget_hold_becomes_the_cli_cap_and_the_spend_is_committed(
    fake: Fake,
) -> None:
    tracker = BudgetTracker("2.00")
    response = await fake.adapter().async_execute_prompt(
        "hi", RunConfig(budget_tracker=tracker)
    )
    # No cap of the user's: the Core holds its default for cost-reporting
    # providers, and the CLI gets it as --max-budget-usd.
    assert fake.record["argv"][-2:] == ["--max-budget-usd", "0.50"]
    assert response.cost == Decimal("0.000185")
    assert (tracker.spent, tracker.reserved) == (Decimal("0.000185"), 0)
    small = BudgetTracker("0.20")
    await fake.adapter().async_execute_prompt("hi", RunConfig(budget_tracker=small))
    assert fake.record["argv"][-2:] == ["--max-budget-usd", "0.20"]


async def test_a_cap_in_extra_args_is_the_hold(fake: Fake) -> None:
    tracker = BudgetTracker("1.00")
    adapter = fake.adapter(extra_args=["--max-budget-usd", "0.3"])
    await adapter.async_execute_prompt("hi", RunConfig(budget_tracker=tracker))
    assert fake.record["argv"].count("--max-budget-usd") == 2
    assert fake.record["argv"][-4:] == [
        "--max-budget-usd",
        "0.3",
        "--max-budget-usd",
        "0.3",
    ]
    with pytest.raises(LLMBudgetExceededError):
        await adapter.async_execute_prompt(
            "hi", RunConfig(budget_tracker=BudgetTracker("0.2"))
        )


async def test_a_run_stopped_by_its_cap_commits_what_it_spent(fake: Fake) -> None:
    tracker = BudgetTracker("1.00")
    with pytest.raises(LLMBudgetExceededError) as info:
        await fake.adapter(fixture="max_budget").async_execute_prompt(
            "hi", RunConfig(budget_tracker=tracker)
        )
    assert info.value.cost == Decimal("0.000185")
    assert (tracker.spent, tracker.reserved) == (Decimal("0.000185"), 0)


async def test_a_token_budget_commits_the_runs_total_tokens(fake: Fake) -> None:
    tracker = BudgetTracker(100_000, unit="tokens")
    await fake.adapter().async_execute_prompt(
        "hi", RunConfig(budget_tracker=tracker, max_tokens=1000)
    )
    assert "--max-budget-usd" not in fake.record["argv"]
    assert fake.record["env"]["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "1000"
    assert tracker.spent == 17


# -- validation before any process starts -------------------------------------


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (RunConfig(temperature=0.2), "temperature"),
        (RunConfig(top_p=0.9, stop="END"), "top_p, stop"),
        (RunConfig(extra_body={"metadata": {}}), "extra_body"),
    ],
)
async def test_settings_the_cli_cannot_honour_are_refused_before_spawning(
    fake: Fake, config: RunConfig, named: str
) -> None:
    adapter = fake.adapter()
    with pytest.raises(LLMConfigurationError, match=f"no setting for {named}"):
        await adapter.async_execute_prompt("hi", config)
    assert not fake.record_path.exists()


async def test_missing_executable_says_how_to_install(tmp_path: Path) -> None:
    adapter = ClaudeCodeAdapter(executable="llm-connect-no-such-claude")
    with pytest.raises(LLMConfigurationError) as info:
        await adapter.async_execute_prompt("hi")
    message = str(info.value)
    assert "'llm-connect-no-such-claude' not found" in message
    assert "npm install -g @anthropic-ai/claude-code" in message
    assert "executable=" in message
    adapter = ClaudeCodeAdapter(executable=tmp_path / "claude")
    with pytest.raises(LLMConfigurationError, match="npm install -g"):
        await adapter.async_execute_prompt("hi")


async def test_executable_is_looked_up_on_the_path_of_env(fake: Fake) -> None:
    path = f"{fake.folder}{os.pathsep}{os.environ.get('PATH', '')}"
    adapter = fake.adapter(executable="claude", env={"PATH": path})
    response = await adapter.async_execute_prompt("hi")
    assert response.text == "Hello from stub"


async def test_missing_cwd_is_a_configuration_error(fake: Fake) -> None:
    adapter = fake.adapter(cwd=fake.folder / "nowhere")
    with pytest.raises(LLMConfigurationError, match="is not a directory"):
        await adapter.async_execute_prompt("hi")
    assert not fake.record_path.exists()


async def test_oversized_system_prompt_is_refused(fake: Fake) -> None:
    adapter = fake.adapter()
    with pytest.raises(LLMConfigurationError, match="--system-prompt-file"):
        await adapter.async_execute_prompt("hi", RunConfig(system_prompt="x" * 100_001))


async def test_header_with_newline_is_refused(fake: Fake) -> None:
    adapter = fake.adapter()
    with pytest.raises(LLMConfigurationError, match="extra_headers"):
        await adapter.async_execute_prompt(
            "hi", RunConfig(extra_headers={"X-A": "1\nX-B: 2"})
        )


async def test_empty_user_message_is_refused(fake: Fake) -> None:
    adapter = fake.adapter()
    with pytest.raises(LLMConfigurationError, match="empty"):
        await adapter.async_execute_prompt([Message("user", "  ")])


# -- success -------------------------------------------------------------------


async def test_success_maps_text_usage_cost_model_and_session(fake: Fake) -> None:
    adapter = fake.adapter(fixture="success")
    response = await adapter.async_execute_prompt("hi")
    result = _result("success")
    assert response.text == "Hello from stub"
    assert response.provider == "claude-code"
    assert response.model == "claude-opus-4-8"  # "[1m]" context tag dropped
    assert response.usage == Usage(12, 5, 17)
    assert response.cost == Decimal("0.000185")
    assert response.finish_reason == "stop"
    assert response.request_id == result["session_id"]
    assert response.raw == result
    assert response.latency_s > 0


async def test_usage_and_cost_cover_every_turn(fake: Fake) -> None:
    response = await fake.adapter(fixture="success_two_turns").async_execute_prompt(
        "hi"
    )
    assert response.text == "done after tool"
    assert response.usage == Usage(120, 37, 157)
    assert response.cost == Decimal("0.001525")


async def test_usage_comes_from_model_usage_when_top_level_is_zero(
    fake: Fake,
) -> None:
    run = _result("success_nonstreaming_fallback")
    assert run["usage"]["input_tokens"] == 0  # what the CLI really printed
    response = await fake.adapter(
        fixture="success_nonstreaming_fallback"
    ).async_execute_prompt("hi")
    assert response.usage == Usage(12, 5, 17)


async def test_cached_tokens_count_as_input(fake: Fake) -> None:
    result = _result("success")
    result["modelUsage"] = {
        "claude-sonnet-4-5": {
            "inputTokens": 3,
            "outputTokens": 40,
            "cacheReadInputTokens": 1111,
            "cacheCreationInputTokens": 418,
            "costUSD": 0.0042,
        },
        "claude-haiku-4-5": {"inputTokens": 50, "outputTokens": 10},
    }
    result["total_cost_usd"] = 0.010499999999999999
    response = await fake.printing(json.dumps(result)).async_execute_prompt("hi")
    # Anthropic's input count excludes cache reads and writes; ours includes them.
    assert response.usage == Usage(
        input_tokens=3 + 1111 + 418 + 50,
        output_tokens=50,
        total_tokens=3 + 1111 + 418 + 50 + 50,
        cached_input_tokens=1111,
    )
    assert response.model == "claude-sonnet-4-5"  # the one that wrote the most
    assert response.cost == Decimal("0.010499999999999999")


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "refusal"),
        ("pause_turn", "other"),
        (None, "stop"),
    ],
)
async def test_stop_reason_maps_to_finish_reason(
    fake: Fake, stop_reason: str | None, finish: str
) -> None:
    result = {**_result("success"), "stop_reason": stop_reason}
    response = await fake.printing(json.dumps(result)).async_execute_prompt("hi")
    assert response.finish_reason == finish


async def test_refusal_is_a_response_not_an_error(fake: Fake) -> None:
    response = await fake.adapter(fixture="refusal").async_execute_prompt("hi")
    assert response.finish_reason == "refusal"
    assert response.text == ""
    assert response.cost == Decimal("0.000185")


async def test_noise_lines_around_the_result_are_ignored(fake: Fake) -> None:
    stdout = "Update available!\n" + _fixture("success")["stdout"] + "bye\n"
    response = await fake.printing(stdout).async_execute_prompt("hi")
    assert response.text == "Hello from stub"


async def test_model_falls_back_to_the_requested_one(fake: Fake) -> None:
    result = {**_result("success"), "modelUsage": {}}
    adapter = fake.printing(json.dumps(result))
    response = await adapter.async_execute_prompt("hi", RunConfig(model="sonnet"))
    assert response.model == "sonnet"
    assert response.usage == Usage(12, 5, 17)  # from the top-level usage


def test_sync_execute_prompt_works(fake: Fake) -> None:
    with fake.adapter() as adapter:
        response = adapter.execute_prompt("hi")
        again = adapter.execute_prompt("hi again")
    assert response.text == again.text == "Hello from stub"
    assert fake.record["stdin"] == "hi again"


# -- errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "error", "status"),
    [
        ("api_error_429", LLMRateLimitError, 429),
        ("api_error_401", LLMAuthenticationError, 401),
        ("api_error_400", LLMBadRequestError, 400),
        ("api_error_500", LLMServerError, 500),
        ("api_error_529", LLMServerError, 529),
    ],
)
async def test_api_error_status_maps_through_the_shared_table(
    fake: Fake, fixture: str, error: type[LLMProviderError], status: int
) -> None:
    adapter = fake.adapter(fixture=fixture)
    with pytest.raises(error) as info:
        await adapter.async_execute_prompt("hi")
    assert type(info.value) is error
    assert info.value.status_code == status
    assert info.value.provider == "claude-code"
    assert _result(fixture)["result"] in info.value.message
    assert info.value.cost is None  # nothing was charged
    assert info.value.body is not None
    assert '"api_error_status": ' + str(status) in info.value.body


async def test_is_error_wins_over_a_success_subtype_and_exit_code(
    fake: Fake,
) -> None:
    result = _result("api_error_429")
    assert result["subtype"] == "success"
    adapter = fake.printing(json.dumps(result), exit_code=0)
    with pytest.raises(LLMRateLimitError):
        await adapter.async_execute_prompt("hi")


async def test_not_logged_in_is_an_authentication_error(fake: Fake) -> None:
    with pytest.raises(LLMAuthenticationError) as info:
        await fake.adapter(fixture="not_logged_in").async_execute_prompt("hi")
    assert "ANTHROPIC_API_KEY" in info.value.message
    assert "Not logged in" in info.value.message
    assert info.value.status_code is None


async def test_unreachable_api_is_a_connection_error(fake: Fake) -> None:
    with pytest.raises(LLMConnectionError, match="ConnectionRefused"):
        await fake.adapter(fixture="connection_refused").async_execute_prompt("hi")


async def test_cli_request_timeout_is_a_timeout_error(fake: Fake) -> None:
    with pytest.raises(LLMTimeoutError, match="API_TIMEOUT_MS"):
        await fake.adapter(fixture="request_timed_out").async_execute_prompt("hi")


async def test_max_budget_raises_budget_error_with_the_real_spend(
    fake: Fake,
) -> None:
    adapter = fake.adapter(fixture="max_budget")
    with pytest.raises(LLMBudgetExceededError) as info:
        await adapter._run(
            [Message("user", "hi")], RunConfig(), budget_cap=Decimal("0.0001")
        )
    error = info.value
    assert error.cost == Decimal("0.000185")  # what the budget must commit
    assert error.spent == Decimal("0.000185")
    assert error.total == Decimal("0.0001")
    assert error.unit == "usd"
    assert "0.000185" in error.message
    assert pickle.loads(pickle.dumps(error)).cost == Decimal("0.000185")


async def test_max_budget_from_extra_args_names_that_cap(fake: Fake) -> None:
    adapter = fake.adapter(
        fixture="max_budget", extra_args=["--max-budget-usd", "0.0001"]
    )
    with pytest.raises(LLMBudgetExceededError) as info:
        await adapter.async_execute_prompt("hi")
    assert info.value.total == Decimal("0.0001")
    assert info.value.cost == Decimal("0.000185")


async def test_max_turns_is_a_provider_error_with_its_cost(fake: Fake) -> None:
    with pytest.raises(LLMProviderError) as info:
        await fake.adapter(fixture="max_turns").async_execute_prompt("hi")
    assert type(info.value) is LLMProviderError
    assert info.value.code == "error_max_turns"
    assert info.value.cost == Decimal(str(_result("max_turns")["total_cost_usd"]))
    assert "--max-turns" in info.value.message


async def test_max_output_tokens_is_a_provider_error_with_its_cost(
    fake: Fake,
) -> None:
    with pytest.raises(LLMProviderError) as info:
        await fake.adapter(fixture="max_output_tokens").async_execute_prompt("hi")
    assert info.value.code == "max_output_tokens"
    assert info.value.cost == Decimal("0.00074")
    assert "raise max_tokens" in info.value.message


async def test_error_during_execution_keeps_the_cli_errors(fake: Fake) -> None:
    result = {
        **_result("max_turns"),
        "subtype": "error_during_execution",
        "errors": ["Tool crashed"],
        "total_cost_usd": 0.002,
    }
    with pytest.raises(LLMProviderError) as info:
        await fake.printing(json.dumps(result), exit_code=1).async_execute_prompt("hi")
    assert info.value.code == "error_during_execution"
    assert "Tool crashed" in info.value.message
    assert info.value.cost == Decimal("0.002")


async def test_garbage_output_is_a_response_error_with_stderr(fake: Fake) -> None:
    adapter = fake.printing(
        "<html>proxy error</html>",
        stderr="fatal: something broke\n",
        exit_code=3,
    )
    with pytest.raises(LLMResponseError) as info:
        await adapter.async_execute_prompt("hi")
    assert "status 3" in info.value.message
    assert "fatal: something broke" in info.value.message
    assert info.value.body is not None
    assert "<html>proxy error</html>" in info.value.body


async def test_truncated_json_is_a_response_error(fake: Fake) -> None:
    stdout = _fixture("success")["stdout"][:120]
    with pytest.raises(LLMResponseError, match="without a result JSON"):
        await fake.printing(stdout, exit_code=0).async_execute_prompt("hi")


async def test_empty_output_with_exit_zero_is_never_a_success(fake: Fake) -> None:
    # What the real CLI does on SIGINT during a stalled request.
    with pytest.raises(LLMResponseError, match="status 0"):
        await fake.printing("", exit_code=0).async_execute_prompt("hi")


async def test_success_result_with_nonzero_exit_is_not_trusted(fake: Fake) -> None:
    adapter = fake.printing(_fixture("success")["stdout"], exit_code=130)
    with pytest.raises(LLMResponseError, match="status 130") as info:
        await adapter.async_execute_prompt("hi")
    assert info.value.cost == Decimal("0.000185")


async def test_api_key_is_scrubbed_from_errors(fake: Fake) -> None:
    key = "sk-ant-api03-very-secret"
    adapter = fake.adapter(
        "print",
        env={
            "FAKE_CLAUDE_STDOUT": f"echo {key}",
            "FAKE_CLAUDE_STDERR": f"bad key {key}\n",
            "FAKE_CLAUDE_EXIT": "1",
            "ANTHROPIC_API_KEY": key,
        },
    )
    with pytest.raises(LLMResponseError) as info:
        await adapter.async_execute_prompt("hi")
    assert key not in info.value.message
    assert key not in (info.value.body or "")
    assert "[REDACTED]" in info.value.message


async def test_usage_errors_of_the_cli_are_configuration_errors(fake: Fake) -> None:
    adapter = fake.printing("", stderr="error: unknown option '--bogus'\n", exit_code=1)
    with pytest.raises(LLMConfigurationError, match="unknown option '--bogus'"):
        await adapter.async_execute_prompt("hi")


async def test_root_without_sandbox_explains_is_sandbox(fake: Fake) -> None:
    stderr = (
        "--dangerously-skip-permissions cannot be used with root/sudo privileges "
        "for security reasons\n"
    )
    adapter = fake.printing("", stderr=stderr, exit_code=1)
    with pytest.raises(LLMConfigurationError, match="IS_SANDBOX"):
        await adapter.async_execute_prompt("hi")


async def test_output_beyond_the_limit_kills_the_run(fake: Fake) -> None:
    with pytest.raises(LLMResponseError, match="more than 10485760 bytes"):
        await fake.adapter("flood").async_execute_prompt("hi")


async def test_unexecutable_file_is_a_configuration_error(tmp_path: Path) -> None:
    script = tmp_path / "claude"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    adapter = ClaudeCodeAdapter(executable=str(script))
    with pytest.raises(LLMConfigurationError, match="not found"):
        await adapter.async_execute_prompt("hi")


# -- timeout, cancellation, exit -------------------------------------------------


async def test_timeout_kills_a_hanging_cli_within_a_second(fake: Fake) -> None:
    adapter = fake.adapter("hang", default_config=RunConfig(timeout=2.0))
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        await adapter.async_execute_prompt("hi")
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 2.0 + 1.0
    (pid,) = fake.pids()
    _assert_gone(pid)


async def test_timeout_kills_a_wrapper_and_its_sigterm_ignoring_child(
    fake: Fake,
) -> None:
    adapter = fake.adapter("wrapper", default_config=RunConfig(timeout=3.0))
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        await adapter.async_execute_prompt("hi")
    elapsed = time.monotonic() - started
    assert 3.0 <= elapsed < 3.0 + 1.0
    wrapper, child = fake.pids()
    _assert_group_gone(wrapper)
    assert child not in _running_in_group(wrapper)


async def test_move_on_after_cancels_and_leaves_no_process(fake: Fake) -> None:
    adapter = fake.adapter("hang")
    with anyio.move_on_after(2.0) as scope:
        await adapter.async_execute_prompt("hi")
    assert scope.cancelled_caught
    (pid,) = fake.pids()
    _assert_gone(pid)


async def test_task_group_cancel_leaves_no_process(fake: Fake) -> None:
    adapter = fake.adapter("wrapper")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(adapter.async_execute_prompt, "hi")
        await _wait_for_file(fake.pidfile)
        tasks.cancel_scope.cancel()
    wrapper, child = fake.pids()
    _assert_group_gone(wrapper)
    assert child not in _running_in_group(wrapper)
    assert not claude_code._live_groups._groups


def test_native_asyncio_task_cancel_leaves_no_process(fake: Fake) -> None:
    import asyncio

    adapter = fake.adapter("hang")

    async def main() -> None:
        task = asyncio.ensure_future(adapter.async_execute_prompt("hi"))
        await _wait_for_file(fake.pidfile)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    (pid,) = fake.pids()
    _assert_gone(pid)


def test_native_trio_cancel_leaves_no_process(fake: Fake) -> None:
    trio = pytest.importorskip("trio")
    adapter = fake.adapter("hang")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(adapter.async_execute_prompt, "hi")
            await _wait_for_file(fake.pidfile)
            nursery.cancel_scope.cancel()

    trio.run(main)
    (pid,) = fake.pids()
    _assert_gone(pid)


def test_interpreter_exit_kills_a_running_cli(fake: Fake) -> None:
    # The call runs on a loop in a daemon thread that nothing cancels at exit:
    # only the adapter's atexit hook can stop the CLI.
    script = f"""
import os, sys, threading, time
sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
import anyio
from llm_connect import ClaudeCodeAdapter
adapter = ClaudeCodeAdapter(executable={str(fake.path)!r}, env={{
    "FAKE_CLAUDE_MODE": "wrapper", "FAKE_CLAUDE_PIDFILE": {str(fake.pidfile)!r}}})
thread = threading.Thread(
    target=anyio.run, args=(adapter.async_execute_prompt, "hi"), daemon=True)
thread.start()
while not os.path.exists({str(fake.pidfile)!r}):
    time.sleep(0.01)
print("exiting", flush=True)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout == "exiting\n", done.stderr
    wrapper, _child = fake.pids()
    deadline = time.monotonic() + 5.0
    while _running_in_group(wrapper):
        assert time.monotonic() < deadline, _running_in_group(wrapper)
        time.sleep(0.02)


def test_sync_call_interrupted_by_interpreter_exit_leaves_no_process(
    fake: Fake,
) -> None:
    script = f"""
import os, sys, threading, time
sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
from llm_connect import ClaudeCodeAdapter
adapter = ClaudeCodeAdapter(executable={str(fake.path)!r}, env={{
    "FAKE_CLAUDE_MODE": "hang", "FAKE_CLAUDE_PIDFILE": {str(fake.pidfile)!r}}})
threading.Thread(target=adapter.execute_prompt, args=("hi",), daemon=True).start()
while not os.path.exists({str(fake.pidfile)!r}):
    time.sleep(0.01)
print("exiting", flush=True)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout == "exiting\n", done.stderr
    (pid,) = fake.pids()
    deadline = time.monotonic() + 5.0
    while _running_in_group(pid):
        assert time.monotonic() < deadline, _running_in_group(pid)
        time.sleep(0.02)


def test_import_does_not_load_the_adapter() -> None:
    code = (
        "import sys, llm_connect\n"
        "print('llm_connect.adapters.claude_code' in sys.modules)\n"
        "llm_connect.ClaudeCodeAdapter\n"
        "print('llm_connect.adapters.claude_code' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    assert out.stdout.split() == ["False", "True"]


async def test_errors_are_llm_errors_with_the_provider(fake: Fake) -> None:
    for fixture in ("api_error_429", "not_logged_in", "max_turns", "max_budget"):
        with pytest.raises(LLMError) as info:
            await fake.adapter(fixture=fixture).async_execute_prompt("hi")
        assert info.value.provider == "claude-code"
