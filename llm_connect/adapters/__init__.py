"""The built-in adapters, one module per provider.

OpenAI (and OpenAI-compatible servers), Gemini and OpenRouter run over a raw
``httpx.AsyncClient``; Claude Code runs the ``claude`` CLI as a subprocess. See
docs/providers.md for their settings. Each module is imported on first use, so
using one adapter does not import the others (or httpx, for Claude Code).
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

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


def __getattr__(name: str) -> _typing.Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY.keys())
