"""What the server saw: one frozen record per request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._actions import Action, Route

__all__ = ["SECRET_HEADERS", "RecordedRequest", "message_texts"]

#: Headers (and the Gemini ``key`` query parameter) that carry API keys.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key"})
_REDACTED = "[REDACTED]"


@attrs.frozen
class RecordedRequest:
    """One request the server received, as the client sent it.

    Its ``repr`` shows no headers, query or body, so API keys stay out of
    logs and assertion messages.

    Attributes:
        number: 1 for the first request the server saw, 2 for the next ...
        method: ``"POST"``, ``"GET"`` ...
        path: the URL path, without the query.
        query: the query parameters (the last value of a repeated one).
        headers: the request headers, names lower-cased (repeats joined
            with ``", "``).
        body: the raw request body.
        json: the body parsed as JSON, or ``None`` when it is not JSON.
        route: ``"openai"``, ``"openrouter"``, ``"gemini"`` or
            ``"anthropic"``; ``None`` for a path the server does not serve.
        model: the model the request named (in the body, or in the path for
            Gemini), if any.
        stream: whether the request asked for a streamed answer.
        client: the client's ``(host, port)``; requests on one keep-alive
            connection share it.
        time: ``time.monotonic()`` when the request arrived.
        request_id: the id the answer carried (``x-request-id``,
            ``request-id``, ``x-generation-id`` or Gemini's ``responseId``).
        action: the scripted action that served it (a plain answer is
            ``Respond()``); ``None`` when the server refused it first
            (unknown path, wrong key, unreadable body).
        status: the HTTP status answered; ``None`` when the connection was
            reset before any response.
    """

    number: int
    method: str
    path: str
    query: Mapping[str, str] = attrs.field(repr=False)
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    json: Any = attrs.field(repr=False)
    route: Route | None
    model: str | None
    stream: bool
    client: tuple[str, int] = attrs.field(repr=False)
    time: float = attrs.field(repr=False)
    request_id: str
    action: Action | None
    status: int | None

    @property
    def prompt(self) -> str:
        """The text of the last user turn, whatever the wire format ("" if none)."""
        data = self.json
        if not isinstance(data, dict):
            return ""
        if self.route == "gemini":
            for content in reversed(_list(data.get("contents"))):
                if isinstance(content, dict) and content.get("role", "user") == "user":
                    return "".join(_part_texts(content.get("parts")))
            return ""
        for message in reversed(_list(data.get("messages"))):
            if isinstance(message, dict) and message.get("role") == "user":
                return "".join(_part_texts(message.get("content")))
        return ""

    @property
    def api_key(self) -> str | None:
        """The API key the request carried, in its route's usual place."""
        headers = self.headers
        if self.route == "gemini":
            return headers.get("x-goog-api-key") or self.query.get("key")
        if self.route == "anthropic" and "x-api-key" in headers:
            return headers["x-api-key"]
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token else None

    def as_json(self) -> dict[str, Any]:
        """The record as JSON-ready data, with every API key redacted."""
        return {
            "number": self.number,
            "method": self.method,
            "path": self.path,
            "query": {
                k: (_REDACTED if k == "key" else v) for k, v in self.query.items()
            },
            "headers": {
                k: (_REDACTED if k in SECRET_HEADERS else v)
                for k, v in self.headers.items()
            },
            "json": self.json,
            "body": None
            if self.json is not None
            else self.body.decode(errors="replace"),
            "route": self.route,
            "model": self.model,
            "stream": self.stream,
            "client": list(self.client),
            "time": self.time,
            "request_id": self.request_id,
            "action": None if self.action is None else type(self.action).__name__,
            "status": self.status,
        }


def message_texts(route: Route | None, data: object) -> list[str]:
    """Every piece of prompt text in a request body (system prompt included)."""
    if not isinstance(data, dict):
        return []
    texts: list[str] = []
    if route == "gemini":
        system = data.get("systemInstruction") or data.get("system_instruction")
        if isinstance(system, dict):
            texts.extend(_part_texts(system.get("parts")))
        for content in _list(data.get("contents")):
            if isinstance(content, dict):
                texts.extend(_part_texts(content.get("parts")))
        return texts
    if route == "anthropic":
        texts.extend(_part_texts(data.get("system")))
    for message in _list(data.get("messages")):
        if isinstance(message, dict):
            texts.extend(_part_texts(message.get("content")))
    return texts


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _part_texts(content: object) -> list[str]:
    """Texts of a str, or of a list of ``{"text": ...}`` parts or blocks."""
    if isinstance(content, str):
        return [content]
    return [
        part["text"]
        for part in _list(content)
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    ]
