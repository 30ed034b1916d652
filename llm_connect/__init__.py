"""llm-connect: one small, typed, async-native way to call large language models.

The public API lives here; see docs/core-contract.md for the contract.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from ._adapter import LLMAdapter
from ._budget import BudgetTracker, Reservation
from ._config import RunConfig
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


def __getattr__(name: str) -> _typing.Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'llm_connect' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY.keys())
