from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from llm_connect import exceptions as exc


def test_every_error_is_an_llm_error() -> None:
    for name in exc.__all__:
        assert issubclass(getattr(exc, name), exc.LLMError), name


@pytest.mark.parametrize(
    "cls",
    [
        exc.LLMAuthenticationError,
        exc.LLMRateLimitError,
        exc.LLMBadRequestError,
        exc.LLMServerError,
    ],
)
def test_http_status_errors_are_provider_errors(cls: type[exc.LLMError]) -> None:
    assert issubclass(cls, exc.LLMProviderError)


def test_provider_error_carries_what_the_provider_said() -> None:
    error = exc.LLMRateLimitError(
        "rate limited",
        provider="openai",
        status_code=429,
        code="rate_limit_exceeded",
        request_id="req_1",
        retry_after=1.5,
        body='{"error": {}}',
    )
    assert (error.provider, error.status_code, error.code) == (
        "openai",
        429,
        "rate_limit_exceeded",
    )
    assert (error.request_id, error.retry_after, error.body) == (
        "req_1",
        1.5,
        '{"error": {}}',
    )
    assert str(error) == "rate limited"


def test_provider_error_body_is_truncated() -> None:
    error = exc.LLMServerError("boom", body="x" * 10_000)
    assert error.body is not None
    assert error.body.startswith("x" * 2000)
    assert error.body.endswith("[8000 more characters]")
    assert len(error.body) < 2100


def test_budget_error_carries_the_numbers() -> None:
    error = exc.LLMBudgetExceededError(
        "over",
        total=Decimal("1.00"),
        spent=Decimal("0.90"),
        requested=Decimal("0.20"),
    )
    assert (error.total, error.spent, error.requested) == (
        Decimal("1.00"),
        Decimal("0.90"),
        Decimal("0.20"),
    )
    assert error.reserved == Decimal(0)


@pytest.mark.parametrize(
    "error",
    [
        exc.LLMError("plain", provider="x", cost=Decimal("0.01")),
        exc.LLMTimeoutError("slow", timeout=0.3, provider="fake"),
        exc.LLMResponseError("garbage", body="<html>", provider="gemini"),
        exc.LLMAuthenticationError("no", provider="openai", status_code=401),
        exc.LLMBudgetExceededError(
            "over", total=Decimal(1), spent=Decimal(1), requested=Decimal(2)
        ),
    ],
)
def test_errors_survive_pickling(error: exc.LLMError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
