"""Value objects that cross the public API: messages, usage and responses."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal, get_args

import attrs

from .exceptions import LLMConfigurationError

__all__ = ["FinishReason", "LLMResponse", "Message", "Prompt", "Role", "Usage"]

Role = Literal["system", "user", "assistant"]
FinishReason = Literal[
    "stop", "length", "content_filter", "refusal", "tool_calls", "other"
]

_ROLES: frozenset[str] = frozenset(get_args(Role))
_FINISH_REASONS: frozenset[str] = frozenset(get_args(FinishReason))


def _check_role(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in _ROLES:
        raise LLMConfigurationError(
            f"Message role must be one of 'system', 'user', 'assistant', not {value!r}."
        )


def _check_content(_: object, __: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise LLMConfigurationError(
            f"Message content must be a str, not {type(value).__name__}."
        )


@attrs.frozen
class Message:
    """One turn of a conversation.

    Args:
        role: ``"system"``, ``"user"`` or ``"assistant"``.
        content: the text of the turn.

    Raises:
        LLMConfigurationError: for an unknown role or non-text content.
    """

    role: Role = attrs.field(validator=_check_role)
    content: str = attrs.field(validator=_check_content)


#: What ``execute_prompt`` accepts: a user prompt, or a whole conversation.
Prompt = str | Sequence[Message]


def _non_negative_int(
    _: object, attribute: attrs.Attribute[int], value: object
) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LLMConfigurationError(
            f"Usage.{attribute.name} must be a non-negative int, not {value!r}."
        )


@attrs.frozen
class Usage:
    """Token counts of one call, as the provider reported them.

    ``input_tokens`` includes ``cached_input_tokens``; ``output_tokens``
    includes ``reasoning_tokens``; ``total_tokens`` is what the provider
    bills as the total (normally input + output).
    """

    input_tokens: int = attrs.field(validator=_non_negative_int)
    output_tokens: int = attrs.field(validator=_non_negative_int)
    total_tokens: int = attrs.field(validator=_non_negative_int)
    cached_input_tokens: int = attrs.field(default=0, validator=_non_negative_int)
    reasoning_tokens: int = attrs.field(default=0, validator=_non_negative_int)


def _check_finish_reason(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in _FINISH_REASONS:
        raise ValueError(
            f"finish_reason must be one of {sorted(_FINISH_REASONS)}, not {value!r}"
        )


@attrs.frozen
class LLMResponse:
    """The result of one call.

    Attributes:
        text: the answer (empty when the provider withheld it, see
            ``finish_reason``).
        model: the model that answered, as the provider named it.
        provider: ``"openai"``, ``"gemini"``, ``"openrouter"``,
            ``"claude-code"``, ``"fake"`` or a custom adapter's name.
        usage: token counts.
        cost: what the call cost in USD, when a price or a provider-reported
            cost is known; else ``None``.
        finish_reason: why generation stopped, normalised to ``"stop"``,
            ``"length"``, ``"content_filter"``, ``"refusal"``,
            ``"tool_calls"`` or ``"other"``.
        raw: the provider's parsed response, untouched.
        request_id: the provider's id for the request, if it gave one.
        latency_s: seconds spent in the provider call, retries included.
    """

    text: str
    model: str
    provider: str
    usage: Usage = attrs.field(factory=lambda: Usage(0, 0, 0))
    cost: Decimal | None = None
    finish_reason: FinishReason = attrs.field(
        default="stop", validator=_check_finish_reason
    )
    raw: Any = attrs.field(default=None, repr=False, eq=False)
    request_id: str | None = None
    latency_s: float = attrs.field(default=0.0, eq=False)
