from __future__ import annotations

import pytest

from llm_connect import (
    LLMAuthenticationError,
    LLMBadRequestError,
    LLMProviderError,
    LLMRateLimitError,
    LLMServerError,
)
from llm_connect._errors import error_class_for_status, provider_error, scrub


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, LLMBadRequestError),
        (404, LLMBadRequestError),
        (422, LLMBadRequestError),
        (401, LLMAuthenticationError),
        (403, LLMAuthenticationError),
        (429, LLMRateLimitError),
        (500, LLMServerError),
        (502, LLMServerError),
        (503, LLMServerError),
        (529, LLMServerError),
        (402, LLMRateLimitError),
        (409, LLMProviderError),
        (418, LLMProviderError),
    ],
)
def test_status_maps_to_the_most_specific_error(
    status: int, cls: type[LLMProviderError]
) -> None:
    assert error_class_for_status(status) is cls


def test_provider_error_scrubs_secrets_from_message_and_body() -> None:
    key = "sk-secret-123"
    error = provider_error(
        401,
        f"Incorrect API key provided: {key}",
        provider="openai",
        code="invalid_api_key",
        request_id="req_9",
        body=f'{{"error": "bad key {key}"}}',
        secrets=[key, ""],
    )
    assert isinstance(error, LLMAuthenticationError)
    assert key not in str(error)
    assert error.body is not None
    assert key not in error.body
    assert "[REDACTED]" in error.body
    assert (error.status_code, error.code, error.request_id) == (
        401,
        "invalid_api_key",
        "req_9",
    )


def test_scrub_leaves_text_without_secrets_alone() -> None:
    assert scrub("nothing here", ["sk-1"]) == "nothing here"
