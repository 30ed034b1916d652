"""Find the real Claude Code CLI for the integration tests, installing it if need be.

In order: ``LLM_CONNECT_CLAUDE_BIN`` (what ``.ci/run`` exports); the version
``.ci/run`` pins, in the cache folder it installs to; else an ``npm install``
of that version into that folder, under a lock so that test runs starting
together install it once. Without ``npm`` on ``PATH`` the tests skip and say
why; an install that fails fails them, with npm's output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

PACKAGE = "@anthropic-ai/claude-code"
#: The CI script; its ``CLAUDE_CODE_VERSION=`` line is the one pinned version.
CI_RUN = Path(__file__).resolve().parents[2] / ".ci" / "run"
#: Seconds an ``npm install`` may take (a slow registry, a cold npm cache).
INSTALL_TIMEOUT = 600.0
#: Seconds ``claude --version`` may take on a loaded machine.
VERSION_TIMEOUT = 60.0


def pinned_version(ci_run: Path = CI_RUN) -> str:
    """The CLI version ``.ci/run`` installs (its ``CLAUDE_CODE_VERSION=`` line)."""
    try:
        text = ci_run.read_text()
    except OSError as exc:
        pytest.fail(
            f"Cannot read the pinned Claude Code version from {ci_run} ({exc}); "
            f"run the tests from a git checkout or set LLM_CONNECT_CLAUDE_BIN.",
            pytrace=False,
        )
    match = re.search(r"^CLAUDE_CODE_VERSION=(\S+)\s*$", text, re.M)
    if match is None:
        pytest.fail(f"No CLAUDE_CODE_VERSION= line in {ci_run}.", pytrace=False)
    return match.group(1)


def cache_prefix(env: Mapping[str, str]) -> Path:
    """``${XDG_CACHE_HOME:-$HOME/.cache}/llm-connect/claude-code``, as ``.ci/run``."""
    cache = env.get("XDG_CACHE_HOME") or os.path.join(
        env.get("HOME") or str(Path.home()), ".cache"
    )
    return Path(cache, "llm-connect", "claude-code")


def find_claude(env: Mapping[str, str], *, prefix: Path, ci_run: Path = CI_RUN) -> str:
    """Return the path of a working ``claude``; skip or fail the tests otherwise.

    Args:
        env: the environment (``os.environ``): ``LLM_CONNECT_CLAUDE_BIN``,
            ``PATH`` (where ``npm`` and ``node`` are looked up).
        prefix: the npm prefix of the cache folder.
        ci_run: the script that pins the version (see :func:`pinned_version`).

    Raises:
        pytest.skip.Exception: ``npm`` is not on ``PATH`` and no CLI is there.
        pytest.fail.Exception: the given binary does not run, or the install
            failed (the message has npm's output).
    """
    given = env.get("LLM_CONNECT_CLAUDE_BIN")
    if given:
        said = _version_of(given, env)
        if said is None:
            pytest.fail(
                f"LLM_CONNECT_CLAUDE_BIN={given!r} does not run `--version`; "
                f"point it at a working `claude` or unset it.",
                pytrace=False,
            )
        return given
    version = pinned_version(ci_run)
    binary = prefix / "node_modules" / ".bin" / "claude"
    if version in (_version_of(binary, env) or ""):
        return str(binary)
    npm = shutil.which("npm", path=env.get("PATH"))
    if npm is None:
        pytest.skip(
            f"npm is not on PATH, so the Claude Code CLI ({PACKAGE}@{version}) "
            f"cannot be installed in {prefix}; install Node.js and npm, or set "
            f"LLM_CONNECT_CLAUDE_BIN to a `claude` binary"
        )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with _locked(prefix.parent / f"{prefix.name}.lock"):
        # Another run may have installed it while this one waited.
        if version not in (_version_of(binary, env) or ""):
            _install(npm, version, prefix, env)
    return str(binary)


def _install(npm: str, version: str, prefix: Path, env: Mapping[str, str]) -> None:
    spec = f"{PACKAGE}@{version}"
    argv = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", spec]
    code, output = _run(argv, env=env, timeout=INSTALL_TIMEOUT)
    log = f"$ {' '.join(argv)}\n(exit status {code})\n{output}"
    if code != 0:
        pytest.fail(f"npm could not install {spec}:\n{log}", pytrace=False)
    binary = prefix / "node_modules" / ".bin" / "claude"
    package = prefix.joinpath("node_modules", *PACKAGE.split("/"))
    node = shutil.which("node", path=env.get("PATH"))
    if (
        _version_of(binary, env) is None
        and node
        and (package / "install.cjs").is_file()
    ):
        # npm skipped the postinstall that links the native binary: run it.
        code, output = _run([node, "install.cjs"], env=env, cwd=package)
        log += f"\n$ node install.cjs  (in {package})\n(exit status {code})\n{output}"
    said = _version_of(binary, env)
    if version not in (said or ""):
        pytest.fail(
            f"npm installed {spec}, but `{binary} --version` says {said!r}:\n{log}",
            pytrace=False,
        )


def _version_of(binary: str | Path, env: Mapping[str, str]) -> str | None:
    """What ``binary --version`` prints, or ``None`` if it does not run."""
    try:
        code, output = _run([str(binary), "--version"], env=env)
    except OSError:
        return None
    return output.strip() if code == 0 else None


def _run(
    argv: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = VERSION_TIMEOUT,
) -> tuple[int, str]:
    """Run ``argv`` in its own process group; kill the group if it takes too long.

    Returns:
        the exit status (negative for a signal) and stdout and stderr together.
    """
    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        text=True,
        errors="replace",
    ) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            output += f"\n(killed after {timeout:g} s)"
    return process.returncode, output


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (other processes and threads wait)."""
    import fcntl  # POSIX only, like the CLI's process handling

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
