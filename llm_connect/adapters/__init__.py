"""The built-in adapters: OpenAI (and compatible servers), Gemini and OpenRouter.

Each is an :class:`~llm_connect.LLMAdapter` over a raw ``httpx.AsyncClient``;
see docs/providers.md for their settings.
"""

from __future__ import annotations

from .gemini import GeminiAdapter
from .openai import OpenAIAdapter
from .openrouter import OpenRouterAdapter

__all__ = ["GeminiAdapter", "OpenAIAdapter", "OpenRouterAdapter"]
