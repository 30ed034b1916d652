"""The real ``claude`` binary, found or installed once per test session."""

from __future__ import annotations

import os

import pytest

from .claude_cli import cache_prefix, find_claude


@pytest.fixture(scope="session")
def claude_bin() -> str:
    """Path of the Claude Code CLI (see tests/integration/claude_cli.py)."""
    return find_claude(os.environ, prefix=cache_prefix(os.environ))
