"""The one status → exception table, and key scrubbing, shared by every adapter."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from .exceptions import (
    LLMAuthenticationError,
    LLMBadRequestError,
    LLMProviderError,
    LLMRateLimitError,
    LLMServerError,
)

__all__ = [
    "RETRYABLE_STATUSES",
    "error_class_for_status",
    "provider_error",
    "scrub",
]

#: Statuses worth another attempt: timeout, conflict, rate limit, overload.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})

_REDACTED = "[REDACTED]"


def error_class_for_status(status: int) -> type[LLMProviderError]:
    """Return the most specific :class:`LLMProviderError` subclass for ``status``.

    400/404/422 → bad request, 401/403 → authentication, 429 and 402 (out of
    credit) → rate limit, 5xx and 529 → server; any other status is a plain
    provider error.
    """
    if status in (401, 403):
        return LLMAuthenticationError
    if status in (429, 402):
        return LLMRateLimitError
    if status in (400, 404, 422):
        return LLMBadRequestError
    if status >= 500:
        return LLMServerError
    return LLMProviderError


def provider_error(
    status: int,
    message: str,
    *,
    provider: str,
    code: str | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
    body: str | None = None,
    secrets: Iterable[str] = (),
    error_class: type[LLMProviderError] | None = None,
    cost: Decimal | None = None,
) -> LLMProviderError:
    """Build the error for an HTTP ``status``, with every secret scrubbed out.

    ``error_class`` overrides the status table where the provider's own code
    knows better (Gemini answers a bad key with 400, for example); ``cost`` is
    what the failed call was still charged.
    """
    cls = error_class or error_class_for_status(status)
    secrets = tuple(secrets)
    return cls(
        scrub(message, secrets),
        provider=provider,
        status_code=status,
        code=code,
        request_id=request_id,
        retry_after=retry_after,
        body=scrub(body, secrets) if body is not None else None,
        cost=cost,
    )


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every non-empty secret replaced by ``[REDACTED]``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, _REDACTED)
    return text
