"""Shared helpers for the loopback server tests: bodies, URLs, fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from llm_connect.testing.server import LoopbackServer, Route

FIXTURES = Path(__file__).parent / "fixtures" / "providers"

BODIES: dict[Route, dict[str, Any]] = {
    "openai": {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"},
        ],
    },
    "openrouter": {
        "model": "openai/gpt-oss-120b",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"},
        ],
    },
    "gemini": {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Hello there"}]}],
    },
    "anthropic": {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello there"}],
    },
}

#: "Be brief." is 3 tokens and "Hello there" 3 at four characters a token.
PROMPT_TOKENS = 6


def url(server: LoopbackServer, route: Route) -> str:
    """The answer endpoint of ``route`` (Gemini's names gemini-2.5-flash)."""
    return {
        "openai": server.openai_base_url + "/chat/completions",
        "openrouter": server.openrouter_base_url + "/chat/completions",
        "gemini": server.gemini_base_url + "/models/gemini-2.5-flash:generateContent",
        "anthropic": server.anthropic_base_url + "/v1/messages",
    }[route]


async def post(
    client: httpx.AsyncClient,
    server: LoopbackServer,
    route: Route,
    body: dict[str, Any] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """POST the route's standard body (or ``body``) to the route."""
    return await client.post(url(server, route), json=body or BODIES[route], **kwargs)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def paths(value: object, prefix: str = "") -> set[str]:
    """Every key path in JSON data; list items share the path ``prefix[]``."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            found |= paths(item, path)
    elif isinstance(value, list):
        for item in value:
            found |= paths(item, prefix + "[]")
    return found


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, parsed data)`` for each event of a server-sent stream."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data = "", ""
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data += line[len("data:") :].strip()
        events.append((name, json.loads(data)))
    return events
