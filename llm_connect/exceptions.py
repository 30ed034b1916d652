"""The errors llm-connect raises.

Every failure a caller can meet is an :class:`LLMError`; catch the most
specific class you can act on::

    LLMError
     ├── LLMConfigurationError      bad input or set-up; fix the code or environment
     ├── LLMBudgetExceededError     the call would cross the budget's cap
     ├── LLMTimeoutError            RunConfig.timeout passed (retries included)
     ├── LLMConnectionError         the provider could not be reached
     ├── LLMResponseError           the provider answered with something unreadable
     └── LLMProviderError           the provider answered with an error
          ├── LLMAuthenticationError   401 / 403: key missing, wrong or not allowed
          ├── LLMRateLimitError        429 / 402: slow down, or top up the account
          ├── LLMBadRequestError       400 / 404 / 422: the request is wrong
          └── LLMServerError           5xx / 529: the provider failed; retry later

The exception that caused an error is chained (``raise ... from exc``).
Messages, ``body`` and every attribute are scrubbed of API keys.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = [
    "LLMAuthenticationError",
    "LLMBadRequestError",
    "LLMBudgetExceededError",
    "LLMConfigurationError",
    "LLMConnectionError",
    "LLMError",
    "LLMProviderError",
    "LLMRateLimitError",
    "LLMResponseError",
    "LLMServerError",
    "LLMTimeoutError",
]

#: Longest provider error body kept on an exception, in characters.
_MAX_BODY_CHARS = 2000


class LLMError(Exception):
    """Base class of every error llm-connect raises.

    Attributes:
        message: what happened and what to do about it.
        provider: the provider the call went to (``"openai"``, ...), if any.
        cost: USD the failed call was nevertheless charged (for example a
            Claude Code run stopped by its own budget cap after a model turn);
            the budget commits it instead of releasing the reservation.
            ``None`` when nothing was charged, or it is not known.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        cost: Decimal | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.cost = cost

    def __str__(self) -> str:
        return self.message

    def _kwargs(self) -> dict[str, Any]:
        return {"provider": self.provider, "cost": self.cost}

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive the default pickling of
        # exceptions; rebuild from the message and the keyword attributes.
        return (_rebuild, (type(self), self.message, self._kwargs()))


def _rebuild(cls: type[LLMError], message: str, kwargs: dict[str, Any]) -> LLMError:
    return cls(message, **kwargs)


class LLMConfigurationError(LLMError):
    """Bad input or set-up, found before any request was made.

    Raised for invalid :class:`~llm_connect.RunConfig` values, malformed
    prompts, a missing API key or executable, and a USD budget with no known
    price. Nothing was sent and nothing was charged.
    """


class LLMBudgetExceededError(LLMError):
    """The call does not fit in the budget.

    Refused by a :class:`~llm_connect.BudgetTracker`, the call made no
    request. (A Claude Code run stopped by its own ``--max-budget-usd`` after a
    model turn raises it too, with ``cost`` set to what that turn spent.)

    Attributes:
        total: the budget's cap.
        spent: what had been committed when the call was refused.
        requested: the amount the call asked for (its worst-case reservation,
            or the amount passed to ``charge``).
        reserved: what other calls held in flight at that moment.
        unit: ``"usd"`` or ``"tokens"``.
    """

    def __init__(
        self,
        message: str,
        *,
        total: Decimal,
        spent: Decimal,
        requested: Decimal,
        reserved: Decimal = Decimal(0),
        unit: str = "usd",
        provider: str | None = None,
        cost: Decimal | None = None,
    ) -> None:
        super().__init__(message, provider=provider, cost=cost)
        self.total = total
        self.spent = spent
        self.requested = requested
        self.reserved = reserved
        self.unit = unit

    def _kwargs(self) -> dict[str, Any]:
        return {
            **super()._kwargs(),
            "total": self.total,
            "spent": self.spent,
            "requested": self.requested,
            "reserved": self.reserved,
            "unit": self.unit,
        }


class LLMTimeoutError(LLMError):
    """The call ran past ``RunConfig.timeout`` (waits and retries included).

    Attributes:
        timeout: the limit, in seconds, that was exceeded.
    """

    def __init__(
        self,
        message: str,
        *,
        timeout: float | None = None,
        provider: str | None = None,
        cost: Decimal | None = None,
    ) -> None:
        super().__init__(message, provider=provider, cost=cost)
        self.timeout = timeout

    def _kwargs(self) -> dict[str, Any]:
        return {**super()._kwargs(), "timeout": self.timeout}


class LLMConnectionError(LLMError):
    """The provider could not be reached (DNS, refused, reset, TLS, ...)."""


class LLMResponseError(LLMError):
    """The provider's answer could not be understood.

    Attributes:
        body: an excerpt of what was received.
    """

    def __init__(
        self,
        message: str,
        *,
        body: str | None = None,
        provider: str | None = None,
        cost: Decimal | None = None,
    ) -> None:
        super().__init__(message, provider=provider, cost=cost)
        self.body = _truncate(body)

    def _kwargs(self) -> dict[str, Any]:
        return {**super()._kwargs(), "body": self.body}


class LLMProviderError(LLMError):
    """The provider answered with an error.

    Attributes:
        status_code: the HTTP status (or the one the CLI reported), if any.
        code: the provider's own error code or type (``"insufficient_quota"``).
        request_id: the provider's request id, to quote to its support.
        retry_after: seconds the provider asked us to wait, if it said.
        body: the provider's error body, truncated.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: str | None = None,
        cost: Decimal | None = None,
    ) -> None:
        super().__init__(message, provider=provider, cost=cost)
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = _truncate(body)

    def _kwargs(self) -> dict[str, Any]:
        return {
            **super()._kwargs(),
            "status_code": self.status_code,
            "code": self.code,
            "request_id": self.request_id,
            "retry_after": self.retry_after,
            "body": self.body,
        }


class LLMAuthenticationError(LLMProviderError):
    """401 / 403: the key is missing, wrong, revoked or not allowed this model."""


class LLMRateLimitError(LLMProviderError):
    """429: too many requests, or the account is out of quota or credit."""


class LLMBadRequestError(LLMProviderError):
    """400 / 404 / 422: the request is malformed, or the model does not exist."""


class LLMServerError(LLMProviderError):
    """5xx / 529: the provider failed or is overloaded; retrying later may work."""


def _truncate(body: str | None, limit: int = _MAX_BODY_CHARS) -> str | None:
    """Return ``body`` cut to ``limit`` characters, marking the cut."""
    if body is None or len(body) <= limit:
        return body
    return body[:limit] + f"... [{len(body) - limit} more characters]"
