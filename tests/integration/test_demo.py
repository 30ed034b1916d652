"""The demo (the README's main job) runs end to end and says what happened."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def _demo(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "llm_connect.demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    return result.stdout


@pytest.mark.parametrize(
    "args", [(), ("--backend", "trio"), ("--sync",)], ids=["asyncio", "trio", "sync"]
)
def test_the_demo_runs_the_chain_retries_faults_and_holds_the_budget(
    args: tuple[str, ...],
) -> None:
    if "trio" in args:
        pytest.importorskip("trio")
    out = _demo(*args)
    for agent in ("planner", "researcher 1", "researcher 2", "writer"):
        assert re.search(rf"^{agent} +\w", out, re.M), agent
    assert "FAILED" not in out
    assert "  gemini      [503, 200]" in out
    assert "  openrouter  [429, 200]" in out
    assert "  openai      [200, 200]" in out  # the refused call sent nothing
    assert re.search(r"^over budget +refused before sending", out, re.M)
    spent = re.search(r"budget: spent \$(\d+\.\d+) of \$0\.05, reserved \$0\.0+,", out)
    assert spent is not None
    assert 0 < float(spent.group(1)) < 0.05


def test_a_bad_budget_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llm_connect.demo", "--budget", "lots"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--budget must be an amount in USD" in result.stderr
