"""How the integration tests find or install the CLI: fake ``npm`` and ``node``.

The fakes are Python scripts that log their arguments and lay out what the
real npm package does: ``node_modules/.bin/claude`` linking to the package's
``bin/claude.exe`` (a stub until its ``install.cjs`` postinstall has run).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from .claude_cli import PACKAGE, cache_prefix, find_claude, pinned_version

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX file locks"),
]

FAKE_NPM = """\
#!{python}
import os, pathlib, sys, time

with open(os.environ["FAKE_LOG"], "a") as log:
    log.write("npm " + " ".join(sys.argv[1:]) + "\\n")
mode = os.environ.get("FAKE_NPM_MODE", "ok")
if mode == "fail":
    sys.stderr.write("npm error code E404\\nnpm error 404 Not Found - GET "
                     "https://registry.npmjs.org/@anthropic-ai%2fclaude-code\\n")
    sys.exit(1)
time.sleep(float(os.environ.get("FAKE_NPM_SLEEP", "0")))
prefix = pathlib.Path(sys.argv[sys.argv.index("--prefix") + 1])
version = sys.argv[-1].rpartition("@")[2]
package = prefix / "node_modules" / "@anthropic-ai" / "claude-code"
(package / "bin").mkdir(parents=True, exist_ok=True)
(package / "VERSION").write_text(version)
(package / "install.cjs").write_text("// links the native binary")
exe = package / "bin" / "claude.exe"
if mode == "no-postinstall":
    exe.write_text("#!/bin/sh\\necho 'native binary not installed' >&2\\nexit 1\\n")
else:
    exe.write_text("#!/bin/sh\\necho '" + version + " (Claude Code)'\\n")
exe.chmod(0o755)
link = prefix / "node_modules" / ".bin" / "claude"
link.parent.mkdir(parents=True, exist_ok=True)
if not link.is_symlink():
    link.symlink_to("../@anthropic-ai/claude-code/bin/claude.exe")
print("added 3 packages in 2s")
"""

FAKE_NODE = """\
#!{python}
import os, pathlib, sys

with open(os.environ["FAKE_LOG"], "a") as log:
    log.write("node " + " ".join(sys.argv[1:]) + " in " + os.getcwd() + "\\n")
version = pathlib.Path("VERSION").read_text()
pathlib.Path("bin", "claude.exe").write_text(
    "#!/bin/sh\\necho '" + version + " (Claude Code)'\\n"
)
"""


class Machine:
    """A fake machine: a HOME, a PATH with fake npm and node, a pinned version."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.home.mkdir()
        self.tools = root / "tools"
        self.tools.mkdir()
        for name, script in (("npm", FAKE_NPM), ("node", FAKE_NODE)):
            path = self.tools / name
            path.write_text(script.format(python=sys.executable))
            path.chmod(0o755)
        self.log = root / "log"
        self.log.touch()
        self.ci_run = root / "run"
        self.pin("2.1.197")
        self.env = {
            "HOME": str(self.home),
            "PATH": str(self.tools),
            "FAKE_LOG": str(self.log),
        }

    @property
    def prefix(self) -> Path:
        return cache_prefix(self.env)

    def pin(self, version: str) -> None:
        self.ci_run.write_text(f"#!/bin/sh\nset -e\nCLAUDE_CODE_VERSION={version}\n")

    def find(self) -> str:
        return find_claude(self.env, prefix=self.prefix, ci_run=self.ci_run)

    def ran(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def version_of(binary: str) -> str:
    return subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_reads_the_pinned_version_from_ci_run_and_the_notes_match_it() -> None:
    root = Path(__file__).parents[2]
    version = pinned_version()
    assert f"\nCLAUDE_CODE_VERSION={version}\n" in (root / ".ci" / "run").read_text()
    # After a version bump, re-check the CLI's behaviour and update the notes.
    notes = (root / "docs" / "claude-code-cli-notes.md").read_text()
    assert f"(version **{version}**" in notes


def test_cache_folder_follows_xdg_cache_home_then_home() -> None:
    assert cache_prefix({"HOME": "/h"}) == Path("/h/.cache/llm-connect/claude-code")
    assert cache_prefix({"HOME": "/h", "XDG_CACHE_HOME": ""}) == Path(
        "/h/.cache/llm-connect/claude-code"
    )
    assert cache_prefix({"HOME": "/h", "XDG_CACHE_HOME": "/c"}) == Path(
        "/c/llm-connect/claude-code"
    )


def test_installs_the_pinned_version_into_the_cache_folder(machine: Machine) -> None:
    binary = machine.find()
    assert binary == str(machine.prefix / "node_modules" / ".bin" / "claude")
    assert version_of(binary) == "2.1.197 (Claude Code)"
    assert machine.ran() == [
        f"npm install --prefix {machine.prefix} --no-audit --no-fund {PACKAGE}@2.1.197"
    ]


def test_a_cached_binary_of_the_pinned_version_needs_no_npm(machine: Machine) -> None:
    first = machine.find()
    machine.env["PATH"] = str(machine.home)  # no npm there
    assert machine.find() == first
    assert len(machine.ran()) == 1


def test_a_cached_binary_of_another_version_is_replaced(machine: Machine) -> None:
    machine.pin("2.1.100")
    machine.find()
    machine.pin("2.1.197")
    binary = machine.find()
    assert version_of(binary) == "2.1.197 (Claude Code)"
    assert [line.rpartition("@")[2] for line in machine.ran()] == ["2.1.100", "2.1.197"]


def test_concurrent_runs_install_once(machine: Machine) -> None:
    machine.env["FAKE_NPM_SLEEP"] = "0.5"
    found: list[str] = []

    def find() -> None:
        found.append(machine.find())

    threads = [threading.Thread(target=find) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(found) == 3
    assert len(set(found)) == 1
    assert len(machine.ran()) == 1


def test_runs_the_postinstall_when_npm_skipped_it(machine: Machine) -> None:
    machine.env["FAKE_NPM_MODE"] = "no-postinstall"
    binary = machine.find()
    assert version_of(binary) == "2.1.197 (Claude Code)"
    package = machine.prefix / "node_modules" / "@anthropic-ai" / "claude-code"
    assert machine.ran()[1] == f"node install.cjs in {package}"


def test_a_failed_install_fails_with_the_npm_output(machine: Machine) -> None:
    machine.env["FAKE_NPM_MODE"] = "fail"
    with pytest.raises(pytest.fail.Exception) as caught:
        machine.find()
    message = str(caught.value)
    assert f"npm could not install {PACKAGE}@2.1.197" in message
    assert "(exit status 1)" in message
    assert "npm error 404 Not Found" in message


def test_an_install_without_a_working_binary_fails(machine: Machine) -> None:
    machine.env["FAKE_NPM_MODE"] = "no-postinstall"
    (machine.tools / "node").unlink()
    with pytest.raises(pytest.fail.Exception) as caught:
        machine.find()
    assert "--version` says None" in str(caught.value)
    assert "added 3 packages" in str(caught.value)


def test_skips_with_the_reason_when_npm_is_not_on_path(machine: Machine) -> None:
    machine.env["PATH"] = str(machine.home)
    with pytest.raises(pytest.skip.Exception) as caught:
        machine.find()
    assert "npm is not on PATH" in str(caught.value)
    assert f"{PACKAGE}@2.1.197" in str(caught.value)
    assert machine.ran() == []


def test_llm_connect_claude_bin_wins(machine: Machine) -> None:
    other = machine.home / "my-claude"
    other.write_text("#!/bin/sh\necho '9.0.0 (Claude Code)'\n")
    other.chmod(0o755)
    machine.env["LLM_CONNECT_CLAUDE_BIN"] = str(other)
    assert machine.find() == str(other)
    assert machine.ran() == []


def test_llm_connect_claude_bin_that_does_not_run_fails(machine: Machine) -> None:
    machine.env["LLM_CONNECT_CLAUDE_BIN"] = str(machine.home / "missing")
    with pytest.raises(pytest.fail.Exception) as caught:
        machine.find()
    assert "LLM_CONNECT_CLAUDE_BIN=" in str(caught.value)
    assert machine.ran() == []
