"""The built-in adapters, one module per provider.

OpenAI (and OpenAI-compatible servers), Gemini and OpenRouter run over a raw
``httpx.AsyncClient``; Claude Code runs the ``claude`` CLI as a subprocess. See
docs/providers.md for their settings. Each module is imported on first use, so
using one adapter does not import the others (or httpx, for Claude Code).
"""

from __future__ import annotations

import typing as _typing

from llm_connect._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from .claude_code import ClaudeCodeAdapter
    from .gemini import GeminiAdapter
    from .openai import OpenAIAdapter
    from .openrouter import OpenRouterAdapter

__all__ = ["ClaudeCodeAdapter", "GeminiAdapter", "OpenAIAdapter", "OpenRouterAdapter"]

_LAZY = {
    "ClaudeCodeAdapter": "llm_connect.adapters.claude_code",
    "GeminiAdapter": "llm_connect.adapters.gemini",
    "OpenAIAdapter": "llm_connect.adapters.openai",
    "OpenRouterAdapter": "llm_connect.adapters.openrouter",
}


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, globals())
