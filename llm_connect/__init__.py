"""llm-connect: one small, typed, async-native way to call large language models.

The public API lives here; see docs/core-contract.md for the contract.
"""

from __future__ import annotations

from ._adapter import LLMAdapter
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

__all__ = [
    "FinishReason",
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
    "Prompt",
    "RunConfig",
    "Usage",
]
