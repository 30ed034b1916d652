"""Shared fixtures for the adapter tests: recorded payloads, patched waits, keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from llm_connect.adapters import _http

FIXTURES = Path(__file__).parent.parent / "fixtures" / "providers"

#: Every environment variable an adapter reads a key from.
KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "OPENROUTER_API_KEY",
)


def fixture_names(prefix: str) -> list[str]:
    """The recorded payloads whose file name starts with ``prefix``."""
    return sorted(p.stem for p in FIXTURES.glob(f"{prefix}*.json"))


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def fixture_response(name: str) -> httpx.Response:
    """The recorded response, byte-exact where the recording kept the bytes."""
    data = load_fixture(name)
    if "raw_body" in data:
        content = data["raw_body"]
    elif isinstance(data["body"], list):
        content = "".join(f"{line}\n\n" for line in data["body"])
    else:
        content = json.dumps(data["body"])
    return httpx.Response(
        data["status"], headers=data["headers"], content=content.encode()
    )


@pytest.fixture(autouse=True)
def no_keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own keys must not leak into (or change) any test."""
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record backoff waits instead of sleeping; jitter fixed at 0."""
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(_http, "_sleep", record)
    monkeypatch.setattr(_http, "_random", lambda: 0.0)
    return recorded
