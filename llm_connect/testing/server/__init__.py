"""A loopback LLM provider for tests, demos and benchmarks.

:class:`LoopbackServer` listens on 127.0.0.1 and answers the OpenAI,
OpenRouter, Gemini and Anthropic wire formats with configurable text, usage
and cost; a script of actions (:class:`Respond`, :class:`Fail`,
:class:`Stall`, :class:`Reset`, :class:`Malformed`, :class:`Raw`) makes it
misbehave on purpose, and every request it sees is kept as a
:class:`RecordedRequest`. See docs/testing.md.

This module is imported only on demand: ``import llm_connect`` and
``import llm_connect.testing`` do not load it.
"""

from __future__ import annotations

from ._actions import (
    Action,
    Fail,
    Malformed,
    Raw,
    Reset,
    Respond,
    Route,
    Stall,
    action_from_json,
)
from ._recording import RecordedRequest
from ._server import LoopbackServer

__all__ = [
    "Action",
    "Fail",
    "LoopbackServer",
    "Malformed",
    "Raw",
    "RecordedRequest",
    "Reset",
    "Respond",
    "Route",
    "Stall",
    "action_from_json",
]
