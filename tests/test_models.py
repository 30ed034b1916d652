from __future__ import annotations

from decimal import Decimal

import pytest

from llm_connect import LLMConfigurationError, LLMResponse, Message, Usage


def test_message_refuses_unknown_roles_and_non_text() -> None:
    assert Message("user", "hi") == Message(role="user", content="hi")
    with pytest.raises(LLMConfigurationError, match="role must be one of"):
        Message("tool", "x")  # type: ignore[arg-type]
    with pytest.raises(LLMConfigurationError, match="content must be a str"):
        Message("user", None)  # type: ignore[arg-type]


def test_usage_defaults_and_validation() -> None:
    usage = Usage(10, 5, 15)
    assert (usage.cached_input_tokens, usage.reasoning_tokens) == (0, 0)
    with pytest.raises(LLMConfigurationError, match="input_tokens"):
        Usage(-1, 0, 0)


def test_response_finish_reason_is_one_of_the_normalised_values() -> None:
    response = LLMResponse(
        "hi", "m", "fake", Usage(1, 1, 2), Decimal("0.01"), "length", {"raw": 1}
    )
    assert response.finish_reason == "length"
    assert response.cost == Decimal("0.01")
    assert "raw" not in repr(response)
    with pytest.raises(ValueError, match="finish_reason"):
        LLMResponse("hi", "m", "fake", finish_reason="STOP")  # type: ignore[arg-type]
