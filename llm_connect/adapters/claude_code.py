"""``ClaudeCodeAdapter``: the Claude Code CLI (``claude -p``) as an anyio subprocess.

One call is one run of ``claude -p --output-format json``: the conversation
goes in on stdin, the single result JSON object comes back on stdout. The
process runs in its own process group, which is terminated (then killed) when
the call times out or is cancelled, and killed at interpreter exit if a call is
still running. See docs/providers.md ("Claude Code") and
docs/claude-code-cli-notes.md for what the CLI does and prints.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from subprocess import PIPE
from typing import Any

import anyio
import anyio.abc

from llm_connect._adapter import LLMAdapter
from llm_connect._budget import Unit, current_hold
from llm_connect._config import RunConfig
from llm_connect._errors import provider_error, scrub
from llm_connect._models import FinishReason, LLMResponse, Message, Usage
from llm_connect.exceptions import (
    LLMAuthenticationError,
    LLMBudgetExceededError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMProviderError,
    LLMResponseError,
    LLMTimeoutError,
)

__all__ = ["ClaudeCodeAdapter", "render_conversation"]

#: How to get the CLI, for the "executable not found" error.
INSTALL_HINT = (
    "install it with `npm install -g @anthropic-ai/claude-code` (Node.js 18+), "
    "or pass ClaudeCodeAdapter(executable=...) with the path to a `claude` binary"
)
#: Most bytes kept from stdout or stderr; a run that prints more is killed.
MAX_OUTPUT_BYTES = 10 * 1024 * 1024
#: Longest system prompt passed as a command-line argument (Linux caps one
#: argument at 128 KiB).
MAX_SYSTEM_PROMPT_BYTES = 100_000
#: Seconds between SIGTERM and SIGKILL when a run is stopped.
TERMINATE_GRACE = 0.5
#: Upper bound, in seconds, of the whole stop-and-reap cleanup.
CLEANUP_BOUND = 5.0

# RunConfig fields the CLI has no way to honour.
_UNSUPPORTED_FIELDS = ("temperature", "top_p", "stop", "extra_body")
# Environment variables whose values must never reach an error message.
_SECRET_ENV_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
)
_FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "refusal",
    "tool_use": "tool_calls",
}
_MODEL_SUFFIX = re.compile(r"\[[^\]]*\]$")  # "claude-opus-4-8[1m]" -> context tag
_REQUEST_ID = re.compile(r"Request ID: (\S+)")
_EXCERPT_CHARS = 1000


class ClaudeCodeAdapter(LLMAdapter):
    """Calls Claude through the Claude Code CLI, one ``claude -p`` run per call.

    The conversation is written to the CLI's stdin (see
    :func:`render_conversation`); system messages become ``--system-prompt``.
    ``RunConfig.model`` becomes ``--model`` (the CLI picks its default model
    when none is set), ``max_tokens`` becomes ``CLAUDE_CODE_MAX_OUTPUT_TOKENS``,
    ``max_retries`` becomes ``CLAUDE_CODE_MAX_RETRIES`` (the CLI retries by
    itself) and ``extra_headers`` becomes ``ANTHROPIC_CUSTOM_HEADERS``.
    ``temperature``, ``top_p``, ``stop`` and ``extra_body`` have no CLI
    equivalent and are refused with :class:`LLMConfigurationError`.

    Args:
        executable: the ``claude`` command, looked up on ``PATH`` (the ``PATH``
            of the run's environment), or a path to it.
        default_config: settings for every call.
        cwd: the directory the CLI runs in (its tools see this directory);
            default: the current directory.
        env: variables set for the CLI on top of ``os.environ`` (for example
            ``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``, ``CLAUDE_CONFIG_DIR``,
            ``IS_SANDBOX``). Values never appear in a repr, a log or an error.
        extra_args: more command-line arguments, appended as given.
        permission_mode: ``--permission-mode`` (``"acceptEdits"``,
            ``"bypassPermissions"``, ``"plan"``, ...).
        allowed_tools: tool rules passed as ``--allowedTools`` (``"Read"``,
            ``"Bash(git log:*)"``), one flag per rule.

    Raises:
        LLMConfigurationError: for an argument of the wrong type.
    """

    provider = "claude-code"
    requires_model = False
    reports_cost = True

    def __init__(
        self,
        *,
        executable: str | os.PathLike[str] = "claude",
        default_config: RunConfig | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        permission_mode: str | None = None,
        allowed_tools: Sequence[str] | None = None,
    ) -> None:
        super().__init__(default_config=default_config)
        self._executable = _check_path("executable", executable)
        self._cwd = None if cwd is None else _check_path("cwd", cwd)
        self._env = _check_env(env)
        self._extra_args = _check_strings("extra_args", extra_args)
        self._allowed_tools = (
            None
            if allowed_tools is None
            else _check_strings("allowed_tools", allowed_tools)
        )
        given_mode: object = permission_mode
        if given_mode is not None and (
            not isinstance(given_mode, str) or not given_mode.strip()
        ):
            raise LLMConfigurationError(
                f"permission_mode must be a non-empty str such as 'acceptEdits', "
                f"not {permission_mode!r}."
            )
        self._permission_mode = permission_mode

    def __repr__(self) -> str:
        return (
            f"<ClaudeCodeAdapter executable={self._executable!r} "
            f"model={self.default_config.model!r}>"
        )

    # -- the command ---------------------------------------------------------

    def build_argv(
        self,
        config: RunConfig,
        budget_cap: Decimal | None = None,
        *,
        system_prompt: str | None = None,
    ) -> list[str]:
        """Return the command line of one run, without running anything.

        Args:
            config: the call's merged config (``model`` -> ``--model``).
            budget_cap: USD the run may spend, passed as ``--max-budget-usd``
                (the CLI checks it after each model turn); ``None`` for no cap.
            system_prompt: the ``--system-prompt`` text (the call's system
                messages, joined); ``None`` or empty leaves the CLI's own.

        Returns:
            ``[executable, "-p", "--output-format", "json",
            "--no-session-persistence", ...]``; the first item is the
            executable as configured, not yet looked up on ``PATH``.

        Raises:
            LLMConfigurationError: for a budget cap that is not a positive
                ``Decimal`` (the CLI refuses ``--max-budget-usd 0``).
        """
        argv = [
            self._executable,
            "-p",
            "--output-format",
            "json",
            "--no-session-persistence",
        ]
        if config.model is not None:
            argv += ["--model", config.model]
        if system_prompt:
            argv += ["--system-prompt", system_prompt]
        if self._permission_mode is not None:
            argv += ["--permission-mode", self._permission_mode]
        for rule in self._allowed_tools or ():
            argv += ["--allowedTools", rule]
        if budget_cap is not None:
            argv += ["--max-budget-usd", _format_cap(budget_cap)]
        argv += self._extra_args
        return argv

    def build_env(self, config: RunConfig) -> dict[str, str]:
        """Return the environment of one run: ``os.environ``, ``env``, then config.

        ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` is set unless ``env``
        or the environment sets it (the CLI then talks only to its API base
        URL: no telemetry, error reporting or update checks). The config's
        settings win over both: ``CLAUDE_CODE_MAX_RETRIES`` from
        ``max_retries``, ``CLAUDE_CODE_MAX_OUTPUT_TOKENS`` from ``max_tokens``
        and ``ANTHROPIC_CUSTOM_HEADERS`` from ``extra_headers``.
        """
        env = {**os.environ, **self._env}
        env.setdefault("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        env["CLAUDE_CODE_MAX_RETRIES"] = str(config.max_retries)
        if config.max_tokens is not None:
            env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(config.max_tokens)
        if config.extra_headers:
            env["ANTHROPIC_CUSTOM_HEADERS"] = "\n".join(
                f"{name}: {value}" for name, value in config.extra_headers.items()
            )
        return env

    # -- the LLMAdapter hooks ----------------------------------------------

    def _validate(self, messages: Sequence[Message], config: RunConfig) -> None:
        super()._validate(messages, config)
        unsupported = [f for f in _UNSUPPORTED_FIELDS if getattr(config, f) is not None]
        if unsupported:
            raise LLMConfigurationError(
                f"The Claude Code CLI has no setting for {', '.join(unsupported)}; "
                f"remove it from this call's RunConfig and from the adapter's "
                f"default_config (ClaudeCodeAdapter honours model, system_prompt, "
                f"max_tokens, max_retries, timeout and extra_headers).",
                provider=self.provider,
            )
        for header in config.extra_headers or {}:
            value = (config.extra_headers or {})[header]
            if "\n" in header or "\n" in value or ":" in header:
                raise LLMConfigurationError(
                    f"extra_headers entry {header!r} cannot be passed to Claude "
                    f"Code: header names may not contain ':' and neither names "
                    f"nor values may contain a newline.",
                    provider=self.provider,
                )
        system = _system_prompt(messages)
        if len(system.encode()) > MAX_SYSTEM_PROMPT_BYTES:
            raise LLMConfigurationError(
                f"The system prompt is {len(system.encode())} bytes; Claude Code "
                f"takes it as one command-line argument, which is limited to "
                f"{MAX_SYSTEM_PROMPT_BYTES}. Move the long part into a user "
                f"message, or write it to a file and pass "
                f"extra_args=('--system-prompt-file', path) with no system prompt.",
                provider=self.provider,
            )
        if not render_conversation(messages).strip():
            raise LLMConfigurationError(
                "The prompt for Claude Code is empty; give the user message some text.",
                provider=self.provider,
            )
        if self._cwd is not None and not Path(self._cwd).is_dir():
            raise LLMConfigurationError(
                f"ClaudeCodeAdapter cwd {self._cwd!r} is not a directory; create "
                f"it or pass another cwd.",
                provider=self.provider,
            )
        self._resolve_executable(self.build_env(config))

    def _worst_case(
        self, messages: Sequence[Message], config: RunConfig, unit: Unit
    ) -> Decimal | None:
        """What a budget holds for one run.

        In USD a run is bounded by ``--max-budget-usd``, not by ``max_tokens``:
        the CLI adds its own system prompt and tools and may take several
        turns. A cap the user put in ``extra_args`` is the hold; otherwise
        ``None``, and the Core holds its default for providers that report
        their cost (or the budget's room, if less). The hold is passed to the
        CLI as its cap.
        """
        if unit == "usd":
            return _cap_in(self._extra_args)
        return super()._worst_case(messages, config, unit)

    async def _call_provider(
        self, messages: Sequence[Message], config: RunConfig
    ) -> LLMResponse:
        return await self._run(messages, config, budget_cap=current_hold())

    # -- one run -----------------------------------------------------------

    async def _run(
        self,
        messages: Sequence[Message],
        config: RunConfig,
        *,
        budget_cap: Decimal | None,
    ) -> LLMResponse:
        """Run the CLI once for ``messages`` and turn its result into a response.

        ``budget_cap`` (USD) becomes ``--max-budget-usd``; a run stopped by it
        raises :class:`LLMBudgetExceededError` with ``cost`` = the real spend.
        """
        env = self.build_env(config)
        argv = self.build_argv(
            config, budget_cap, system_prompt=_system_prompt(messages) or None
        )
        argv[0] = self._resolve_executable(env)
        stdin = render_conversation(messages).encode()
        secrets = [env[name] for name in _SECRET_ENV_VARS if env.get(name)]
        run = await _run_process(argv, stdin, env=env, cwd=self._cwd)
        if run.overflowed:
            raise LLMResponseError(
                f"Claude Code printed more than {MAX_OUTPUT_BYTES} bytes and was "
                f"stopped; this is not a normal `claude -p --output-format json` "
                f"run (check extra_args and the executable).",
                body=scrub(_excerpt(run.stdout.decode(errors="replace")), secrets),
                provider=self.provider,
            )
        return _parse_run(
            run,
            provider=self.provider,
            budget_cap=(
                budget_cap if budget_cap is not None else _cap_in(self._extra_args)
            ),
            requested_model=config.model,
            secrets=secrets,
        )

    def _resolve_executable(self, env: Mapping[str, str]) -> str:
        found = shutil.which(self._executable, path=env.get("PATH"))
        if found is None:
            where = "" if os.path.dirname(self._executable) else " on PATH"
            raise LLMConfigurationError(
                f"Claude Code CLI {self._executable!r} not found (or not "
                f"executable){where}: {INSTALL_HINT}.",
                provider=self.provider,
            )
        return found


def render_conversation(messages: Sequence[Message]) -> str:
    """Return the text Claude Code gets on stdin for ``messages``.

    System messages are left out (they go to ``--system-prompt``). A single
    user message is sent verbatim. Any other conversation is sent as a
    transcript: a short preamble, then every turn in order, each wrapped in
    ``<turn role="user">`` / ``<turn role="assistant">`` and ``</turn>`` on
    lines of their own, its text verbatim in between. The tag name is
    ``turn``, or ``turn-1``, ``turn-2``, ... when a turn's text contains
    ``<turn`` or ``</turn>``, so a turn can never close early. The preamble
    names the tag and asks for the assistant's next turn.
    """
    turns = [m for m in messages if m.role != "system"]
    if len(turns) == 1 and turns[0].role == "user":
        return turns[0].content
    tag = "turn"
    number = 0
    while any(f"<{tag}" in m.content or f"</{tag}>" in m.content for m in turns):
        number += 1
        tag = f"turn-{number}"
    lines = [
        f"Below is a conversation between a user and an assistant (you). Each "
        f'turn is enclosed in <{tag} role="user"> or <{tag} role="assistant"> '
        f"and </{tag}> lines; the text in between is the turn, verbatim. Write "
        f"the assistant's next turn: reply with its text only, without tags.",
        "",
    ]
    for turn in turns:
        lines += [f'<{tag} role="{turn.role}">', turn.content, f"</{tag}>"]
    return "\n".join(lines) + "\n"


# -- process handling --------------------------------------------------------


class _Run:
    """What one finished run left behind."""

    def __init__(self) -> None:
        self.returncode: int | None = None
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.overflowed = False


class _LiveGroups:
    """Process groups of runs in flight; an atexit hook kills what is left.

    The hook is registered on the first run, not at import.
    """

    def __init__(self) -> None:
        self._groups: set[int] = set()
        self._lock = threading.Lock()
        self._hooked = False

    def add(self, pgid: int) -> None:
        with self._lock:
            if not self._hooked:
                atexit.register(self.kill_all)
                self._hooked = True
            self._groups.add(pgid)

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)

    def kill_all(self) -> None:
        """Kill every group still in flight (runs at interpreter exit)."""
        with self._lock:
            groups = list(self._groups)
            self._groups.clear()
        for pgid in groups:
            _signal_group(pgid, _SIGKILL)


_live_groups = _LiveGroups()

_SIGKILL = int(getattr(signal, "SIGKILL", signal.SIGTERM))


def _signal_group(pgid: int, signum: int) -> None:
    """Send ``signum`` to every process of the group; gone already is fine."""
    killpg = getattr(os, "killpg", None)
    try:
        if killpg is not None:
            killpg(pgid, signum)
        else:  # pragma: no cover - Windows is not a target
            os.kill(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


async def _run_process(
    argv: list[str], stdin: bytes, *, env: Mapping[str, str], cwd: str | None
) -> _Run:
    """Run ``argv`` in its own process group, feeding ``stdin``, collecting output.

    Cancellation (the call's deadline included) stops the whole process
    group: SIGTERM, :data:`TERMINATE_GRACE` seconds, SIGKILL, reap, in a
    shielded cleanup bounded by :data:`CLEANUP_BOUND` seconds. Processes left
    in the group after the CLI exits are killed too.
    """
    try:
        # Shielded: once spawned, the process must be ours to clean up.
        with anyio.CancelScope(shield=True):
            process = await anyio.open_process(
                argv,
                stdin=PIPE,
                stdout=PIPE,
                stderr=PIPE,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
    except OSError as exc:
        raise LLMConfigurationError(
            f"Could not start Claude Code ({argv[0]}): {exc.strerror or exc}; "
            f"{INSTALL_HINT}.",
            provider=ClaudeCodeAdapter.provider,
        ) from exc
    pgid = process.pid  # start_new_session: the CLI leads its own group
    _live_groups.add(pgid)
    run = _Run()
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_feed, process, stdin)
            tasks.start_soon(_collect, process.stdout, run.stdout, run, pgid)
            tasks.start_soon(_collect, process.stderr, run.stderr, run, pgid)
            run.returncode = await process.wait()
            # Whatever the CLI left in its group (a wrapper's child, a
            # background shell) does not outlive the call.
            _signal_group(pgid, _SIGKILL)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _stop(process, pgid)
        raise
    finally:
        _live_groups.discard(pgid)
        with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_BOUND):
            await process.aclose()
    return run


async def _feed(process: anyio.abc.Process, data: bytes) -> None:
    stream = process.stdin
    assert stream is not None
    try:
        if data:
            await stream.send(data)
        await stream.aclose()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass  # the CLI exited without reading it all; its output tells why


async def _collect(
    stream: anyio.abc.ByteReceiveStream | None,
    buffer: bytearray,
    run: _Run,
    pgid: int,
) -> None:
    assert stream is not None
    async for chunk in stream:
        if len(buffer) + len(chunk) > MAX_OUTPUT_BYTES:
            run.overflowed = True
            _signal_group(pgid, _SIGKILL)
            return
        buffer += chunk


async def _stop(process: anyio.abc.Process, pgid: int) -> None:
    """SIGTERM the group, give it a grace period, SIGKILL it, reap the CLI."""
    with anyio.move_on_after(CLEANUP_BOUND):
        _signal_group(pgid, signal.SIGTERM)
        with anyio.move_on_after(TERMINATE_GRACE):
            await process.wait()
        # Children that ignore SIGTERM (or a wrapper's child) die here.
        _signal_group(pgid, _SIGKILL)
        await process.wait()


# -- the result --------------------------------------------------------------


def _parse_run(
    run: _Run,
    *,
    provider: str,
    budget_cap: Decimal | None,
    requested_model: str | None,
    secrets: Sequence[str],
) -> LLMResponse:
    stdout = run.stdout.decode("utf-8", errors="replace")
    stderr = run.stderr.decode("utf-8", errors="replace")
    data = _find_result(stdout)
    if data is None:
        raise _no_result_error(run.returncode, stdout, stderr, provider, secrets)
    cost = _decimal(data.get("total_cost_usd"))
    if data.get("is_error") is not False:
        if data.get("stop_reason") == "refusal" and data.get("is_error") is True:
            return _response(
                data,
                "",
                cost=cost,
                provider=provider,
                requested_model=requested_model,
                finish_reason="refusal",
            )
        error = _result_error(data, cost, budget_cap, provider, secrets)
        error.cost = cost if cost else None
        raise error
    if run.returncode != 0:
        raise LLMResponseError(
            f"Claude Code exited with status {run.returncode} although its result "
            f"says success; a run that did not end normally is not trusted. "
            f"stderr: {scrub(_excerpt(stderr), secrets) or '(empty)'}",
            body=scrub(_excerpt(stdout), secrets),
            provider=provider,
            cost=cost if cost else None,
        )
    text = data.get("result")
    if not isinstance(text, str):
        raise LLMResponseError(
            "Claude Code reported success without a text result.",
            body=scrub(_excerpt(stdout), secrets),
            provider=provider,
            cost=cost if cost else None,
        )
    stop = data.get("stop_reason")
    finish = "stop" if stop is None else _FINISH_REASONS.get(str(stop), "other")
    return _response(
        data,
        text,
        cost=cost,
        provider=provider,
        requested_model=requested_model,
        finish_reason=finish,
    )


def _find_result(stdout: str) -> dict[str, Any] | None:
    """Return the ``{"type": "result", ...}`` object, ignoring other lines."""
    candidates = [stdout.strip()]
    candidates += [line.strip() for line in reversed(stdout.splitlines())]
    for text in candidates:
        if not text.startswith("{"):
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("type") == "result":
            return data
    return None


def _response(
    data: Mapping[str, Any],
    text: str,
    *,
    cost: Decimal | None,
    provider: str,
    requested_model: str | None,
    finish_reason: FinishReason,
) -> LLMResponse:
    session = data.get("session_id")
    return LLMResponse(
        text=text,
        model=_model_name(data) or requested_model or "",
        provider=provider,
        usage=_usage(data),
        cost=cost,
        finish_reason=finish_reason,
        raw=dict(data),
        request_id=session if isinstance(session, str) else None,
    )


def _model_name(data: Mapping[str, Any]) -> str | None:
    """The model that did most of the work, per ``modelUsage``, without tags."""
    per_model = data.get("modelUsage")
    if not isinstance(per_model, Mapping) or not per_model:
        return None

    def weight(name: str) -> tuple[int, int]:
        counts = per_model[name]
        if not isinstance(counts, Mapping):
            return (0, 0)
        return (_int(counts.get("outputTokens")), _int(counts.get("inputTokens")))

    main = max(per_model, key=weight)
    return _MODEL_SUFFIX.sub("", str(main))


def _usage(data: Mapping[str, Any]) -> Usage:
    """Token counts of the whole run (every turn, every model).

    ``modelUsage`` is summed when present (it matches ``total_cost_usd`` even
    when the top-level ``usage`` is zero); Anthropic's input count excludes
    cache reads and writes, ours includes them.
    """
    per_model = data.get("modelUsage")
    rows: list[tuple[int, int, int, int]] = []
    if isinstance(per_model, Mapping) and per_model:
        for counts in per_model.values():
            if isinstance(counts, Mapping):
                rows.append(
                    (
                        _int(counts.get("inputTokens")),
                        _int(counts.get("cacheReadInputTokens")),
                        _int(counts.get("cacheCreationInputTokens")),
                        _int(counts.get("outputTokens")),
                    )
                )
    else:
        usage = data.get("usage")
        if isinstance(usage, Mapping):
            rows.append(
                (
                    _int(usage.get("input_tokens")),
                    _int(usage.get("cache_read_input_tokens")),
                    _int(usage.get("cache_creation_input_tokens")),
                    _int(usage.get("output_tokens")),
                )
            )
    fresh = sum(r[0] for r in rows)
    cache_read = sum(r[1] for r in rows)
    cache_write = sum(r[2] for r in rows)
    output = sum(r[3] for r in rows)
    prompt = fresh + cache_read + cache_write
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=prompt + output,
        cached_input_tokens=cache_read,
    )


def _result_error(
    data: Mapping[str, Any],
    cost: Decimal | None,
    budget_cap: Decimal | None,
    provider: str,
    secrets: Sequence[str],
) -> LLMError:
    """The error for a result with ``is_error`` set (``subtype`` is unreliable)."""
    subtype = str(data.get("subtype") or "")
    said = _said(data)
    body = scrub(json.dumps(data)[:4000], secrets)
    status = data.get("api_error_status")
    if subtype == "error_max_budget_usd":
        cap = budget_cap if budget_cap is not None else cost or Decimal(0)
        spent = cost or Decimal(0)
        return LLMBudgetExceededError(
            f"Claude Code spent ${spent} and stopped at its budget cap "
            f"(--max-budget-usd {cap}); the CLI checks the cap after each model "
            f"turn, so the spend can exceed it. Raise the cap or shorten the task.",
            total=cap,
            spent=spent,
            requested=cap,
            provider=provider,
        )
    if subtype == "error_max_turns":
        return LLMProviderError(
            f"Claude Code stopped after {data.get('num_turns')} turns without a "
            f"final answer (its --max-turns limit); raise it with "
            f"extra_args=('--max-turns', N) or ask for less.",
            provider=provider,
            code=subtype,
            body=body,
        )
    if isinstance(status, int) and not isinstance(status, bool):
        match = _REQUEST_ID.search(said)
        return provider_error(
            status,
            f"Claude Code got HTTP {status} from the Anthropic API: {said}",
            provider=provider,
            request_id=match.group(1) if match else None,
            body=body,
            secrets=secrets,
        )
    message = scrub(said, secrets)
    if "Not logged in" in said:
        return LLMAuthenticationError(
            f"Claude Code is not logged in ({message}): set ANTHROPIC_API_KEY in "
            f"the environment or in ClaudeCodeAdapter(env=...), or run "
            f"`claude /login` once as this user.",
            provider=provider,
            body=body,
        )
    if "Unable to connect to API" in said:
        return LLMConnectionError(
            f"Claude Code could not reach the Anthropic API ({message}); check "
            f"the network and ANTHROPIC_BASE_URL.",
            provider=provider,
        )
    if said.startswith("Request timed out"):
        return LLMTimeoutError(
            f"Claude Code's own request to the Anthropic API timed out "
            f"({message}); its per-request limit is API_TIMEOUT_MS.",
            provider=provider,
        )
    if "output token maximum" in said:
        return LLMProviderError(
            f"Claude Code gave up: {message} The answer was longer than "
            f"RunConfig.max_tokens allows even after the CLI's own attempts to "
            f"continue it; raise max_tokens.",
            provider=provider,
            code="max_output_tokens",
            body=body,
        )
    return LLMProviderError(
        f"Claude Code reported an error ({subtype or 'no subtype'}): "
        f"{message or 'no details'}",
        provider=provider,
        code=subtype or None,
        body=body,
    )


def _said(data: Mapping[str, Any]) -> str:
    """What the CLI said about the error: ``result``, else its ``errors`` list."""
    result = data.get("result")
    if isinstance(result, str) and result:
        return result
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(str(e) for e in errors)
    return ""


def _no_result_error(
    returncode: int | None,
    stdout: str,
    stderr: str,
    provider: str,
    secrets: Sequence[str],
) -> LLMError:
    said = scrub(_excerpt(stderr.strip()), secrets) or "(empty)"
    body = scrub(f"stdout: {_excerpt(stdout)}\nstderr: {_excerpt(stderr)}", secrets)
    if "cannot be used with root" in stderr:
        return LLMConfigurationError(
            f"Claude Code refused to run: {said}. Running as root, it allows "
            f"bypassPermissions only in a sandbox: pass env={{'IS_SANDBOX': '1'}} "
            f"if this machine is one, or use another permission_mode.",
            provider=provider,
        )
    if stderr.lstrip().lower().startswith("error: "):
        return LLMConfigurationError(
            f"Claude Code rejected its command line: {said}. Check extra_args, "
            f"permission_mode and allowed_tools.",
            provider=provider,
        )
    return LLMResponseError(
        f"Claude Code exited with status {returncode} without a result JSON "
        f"object on stdout (output missing, truncated or not JSON). stderr: {said}",
        body=body,
        provider=provider,
    )


def _cap_in(argv: Sequence[str]) -> Decimal | None:
    """The ``--max-budget-usd`` value a user put in ``extra_args``, if any."""
    for i, arg in enumerate(argv):
        if arg == "--max-budget-usd" and i + 1 < len(argv):
            text = argv[i + 1]
        elif arg.startswith("--max-budget-usd="):
            text = arg.partition("=")[2]
        else:
            continue
        try:
            return Decimal(text)
        except InvalidOperation:
            return None
    return None


def _decimal(value: object) -> Decimal | None:
    """A USD amount from the CLI's JSON number (a float: via ``str``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:  # pragma: no cover - json gives finite numbers
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


def _excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    """The end of ``text`` (where a CLI's error usually is), at most ``limit``."""
    return text if len(text) <= limit else "..." + text[-limit:]


def _system_prompt(messages: Sequence[Message]) -> str:
    return "\n\n".join(m.content for m in messages if m.role == "system" and m.content)


def _format_cap(cap: Decimal) -> str:
    given: object = cap
    if not isinstance(given, Decimal) or not cap.is_finite() or cap <= 0:
        raise LLMConfigurationError(
            f"The Claude Code budget cap must be a positive Decimal (USD), not "
            f"{cap!r}.",
            provider=ClaudeCodeAdapter.provider,
        )
    return format(cap, "f")


def _check_path(name: str, value: object) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise LLMConfigurationError(
            f"ClaudeCodeAdapter {name} must be a non-empty str or path, not "
            f"{type(value).__name__}."
        )
    return value


def _check_env(env: object) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise LLMConfigurationError(
            "ClaudeCodeAdapter env must be a mapping of str to str."
        )
    return dict(env)


def _check_strings(name: str, values: object) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise LLMConfigurationError(
            f"ClaudeCodeAdapter {name} must be a sequence of str (a list or "
            f"tuple), not {type(values).__name__}."
        )
    items = tuple(values)
    if not all(isinstance(v, str) for v in items):
        raise LLMConfigurationError(f"ClaudeCodeAdapter {name} must hold only str.")
    return items
