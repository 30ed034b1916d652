"""llm-connect: one small, typed, async-native way to call large language models.

The public API lives here; see docs/core-contract.md for the contract.
"""

from __future__ import annotations

import typing as _typing

from ._adapter import LLMAdapter
from ._budget import BudgetTracker, Reservation
from ._config import RunConfig
from ._lazy import lazy_exports as _lazy_exports
from ._models import FinishReason, LLMResponse, Message, Prompt, Usage
from .exceptions import (
    LLMAuthenticationError,
    LLMBadRequestError,
    LLMBudgetExceededError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMProviderError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
)

__version__ = "0.1.0"

if _typing.TYPE_CHECKING:  # imported on first use; see __getattr__
    from .adapters.claude_code import ClaudeCodeAdapter
    from .adapters.gemini import GeminiAdapter
    from .adapters.openai import OpenAIAdapter
    from .adapters.openrouter import OpenRouterAdapter

# Public names whose modules are imported on first use, so that
# ``import llm_connect`` stays cheap: name -> module that defines it.
_LAZY: dict[str, str] = {
    "ClaudeCodeAdapter": "llm_connect.adapters.claude_code",
    "GeminiAdapter": "llm_connect.adapters.gemini",
    "OpenAIAdapter": "llm_connect.adapters.openai",
    "OpenRouterAdapter": "llm_connect.adapters.openrouter",
}

__all__ = [
    "BudgetTracker",
    "ClaudeCodeAdapter",
    "FinishReason",
    "GeminiAdapter",
    "LLMAdapter",
    "LLMAuthenticationError",
    "LLMBadRequestError",
    "LLMBudgetExceededError",
    "LLMConfigurationError",
    "LLMConnectionError",
    "LLMError",
    "LLMProviderError",
    "LLMRateLimitError",
    "LLMResponse",
    "LLMResponseError",
    "LLMServerError",
    "LLMTimeoutError",
    "Message",
    "OpenAIAdapter",
    "OpenRouterAdapter",
    "Prompt",
    "Reservation",
    "RunConfig",
    "Usage",
]


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, globals())
