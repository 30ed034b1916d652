"""The fault script: what the server does with one request.

Each action is a small frozen value. A script is a queue of them, consumed one
per request in order; when the queue is empty the server answers normally.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal, get_args

import attrs

from llm_connect._models import Usage
from llm_connect.exceptions import LLMConfigurationError

if TYPE_CHECKING:
    from ._recording import RecordedRequest

__all__ = [
    "ROUTES",
    "Action",
    "Fail",
    "Malformed",
    "MalformedKind",
    "Raw",
    "Reset",
    "Respond",
    "Route",
    "Stall",
    "TextFunction",
    "action_from_json",
]

#: The wire formats the server speaks, and so the routes a script can target.
Route = Literal["anthropic", "gemini", "openai", "openrouter"]
ROUTES: tuple[Route, ...] = get_args(Route)

#: Writes the answer text from the request (it may be async).
TextFunction = Callable[["RecordedRequest"], "str | Awaitable[str]"]

MalformedKind = Literal["truncated", "not_json", "wrong_shape"]


def _seconds(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or math.isnan(value)
        or value < 0
    ):
        raise LLMConfigurationError(
            f"{attribute.name} must be a number of seconds >= 0, not {value!r}."
        )


def _finite_seconds(
    _: object, attribute: attrs.Attribute[float], value: object
) -> None:
    _seconds(_, attribute, value)
    assert isinstance(value, (int, float))
    if math.isinf(value):
        raise LLMConfigurationError(f"{attribute.name} must be finite.")


def _optional_bytes(
    _: object, attribute: attrs.Attribute[int | None], value: object
) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < 0
    ):
        raise LLMConfigurationError(
            f"{attribute.name} must be None or a byte count >= 0, not {value!r}."
        )


def _status(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise LLMConfigurationError(
            f"{attribute.name} must be an HTTP status from 200 to 599, not {value!r}."
        )


def _error_status(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    _status(_, attribute, value)
    assert isinstance(value, int)
    if value < 400:
        raise LLMConfigurationError(
            f"Fail needs an error status (400-599), not {value}; "
            "use Respond or Raw for a success."
        )


def _headers(value: Mapping[str, str] | None) -> dict[str, str]:
    given: object = value
    if given is None:
        return {}
    if not isinstance(given, Mapping) or not all(
        isinstance(k, str)
        and isinstance(v, str)
        and _TOKEN.fullmatch(k)
        and _FIELD_VALUE.fullmatch(v)
        for k, v in given.items()
    ):
        raise LLMConfigurationError(
            "headers must map header names to printable ASCII values (no line breaks)."
        )
    headers = {str(k).lower(): str(v) for k, v in given.items()}
    framing = sorted(_FRAMING.intersection(headers))
    if framing:
        raise LLMConfigurationError(
            f"The server frames the body itself; drop the {framing} header(s)."
        )
    return headers


_FRAMING = frozenset({"connection", "content-length", "transfer-encoding"})


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\x20-\x7e\t]*")


def _text(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str) and not callable(value):
        raise LLMConfigurationError(
            "text must be a str or a function of the request, "
            f"not {type(value).__name__}."
        )


def _usage(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Usage):
        raise LLMConfigurationError(
            f"usage must be a llm_connect.Usage, not {type(value).__name__}."
        )


def _cost(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal):
        raise LLMConfigurationError(
            "cost must be a decimal.Decimal (money is never a float), "
            f"not {type(value).__name__}."
        )
    if not value.is_finite() or value < 0:
        raise LLMConfigurationError(f"cost must be a finite Decimal >= 0, not {value}.")


def _optional_str(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise LLMConfigurationError(
            f"{attribute.name} must be a non-empty str, not {value!r}."
        )


def _padding(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or value.strip(" \t\r\n")):
        raise LLMConfigurationError(
            "padding must be whitespace only (spaces, tabs, newlines)."
        )


@attrs.frozen
class Respond:
    """Answer normally, in the wire format of the route the request came to.

    Every field left ``None`` falls back to the server's own answer
    (``LoopbackServer.answer``), and from there to a value derived from the
    request.

    Args:
        text: the answer text, or a function ``(RecordedRequest) -> str`` (it
            may be async) that writes it from the request.
        model: the model named in the answer; by default the one requested.
        usage: the token counts reported; by default counted from the prompt
            and the answer (one token per four characters, rounded up).
        cost: the USD cost OpenRouter reports as ``usage.cost``; by default
            $1 per million input tokens plus $2 per million output tokens.
        finish_reason: why generation stopped: ``"stop"``, ``"length"``,
            ``"content_filter"``, ``"refusal"``, ``"tool_calls"`` or
            ``"other"``, rendered in each format's own words (see
            docs/testing.md); any other string is sent as it is.
        padding: whitespace sent right after the headers and before the JSON
            body, the way OpenRouter keeps a slow connection alive; with
            ``delay`` the padding arrives first and the JSON after the delay.
        delay: seconds to wait before answering (a slow response).
    """

    text: str | TextFunction | None = attrs.field(default=None, validator=_text)
    model: str | None = attrs.field(default=None, kw_only=True, validator=_optional_str)
    usage: Usage | None = attrs.field(default=None, kw_only=True, validator=_usage)
    cost: Decimal | None = attrs.field(default=None, kw_only=True, validator=_cost)
    finish_reason: str | None = attrs.field(
        default=None, kw_only=True, validator=_optional_str
    )
    padding: str | None = attrs.field(default=None, kw_only=True, validator=_padding)
    delay: float | None = attrs.field(default=None, kw_only=True)

    @delay.validator
    def _check_delay(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            _finite_seconds(self, attribute, value)

    def over(self, base: Respond) -> Respond:
        """Return ``self`` with every unset field taken from ``base``."""
        return Respond(
            self.text if self.text is not None else base.text,
            model=self.model if self.model is not None else base.model,
            usage=self.usage if self.usage is not None else base.usage,
            cost=self.cost if self.cost is not None else base.cost,
            finish_reason=(
                self.finish_reason
                if self.finish_reason is not None
                else base.finish_reason
            ),
            padding=self.padding if self.padding is not None else base.padding,
            delay=self.delay if self.delay is not None else base.delay,
        )


@attrs.frozen
class Fail:
    """Answer with an HTTP error whose body has the route's provider shape.

    Args:
        status: the HTTP status, 400-599 (429, 500, 503, 529 ...).
        message: the error message; by default a provider-like one.
        retry_after: seconds the client should wait. Sent as ``retry-after``
            (whole seconds when integral, else a decimal such as ``0.5``), as
            ``retry-after-ms`` too on OpenAI, and as a ``RetryInfo``
            ``retryDelay`` detail on Gemini.
        headers: extra response headers (they override the defaults).
        in_body: answer HTTP 200 and put the error in the body instead, the
            way OpenRouter reports a failure after generation started
            (``choices[0].error``, ``finish_reason: "error"``) and Anthropic
            streams an ``error`` event; the other formats send their error
            body with status 200.
        delay: seconds to wait before answering.
    """

    status: int = attrs.field(validator=_error_status)
    message: str | None = attrs.field(
        default=None, kw_only=True, validator=_optional_str
    )
    retry_after: float | None = attrs.field(default=None, kw_only=True)
    headers: Mapping[str, str] = attrs.field(
        factory=dict, kw_only=True, converter=_headers
    )
    in_body: bool = attrs.field(default=False, kw_only=True)
    delay: float = attrs.field(default=0.0, kw_only=True, validator=_finite_seconds)

    @retry_after.validator
    def _check_retry_after(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            _finite_seconds(self, attribute, value)


@attrs.frozen
class Stall:
    """Send the headers and part of the answer, then stop sending.

    After ``seconds`` the rest of the answer follows; with the default
    (forever) the server holds the connection until the client gives up or
    the server stops. Use it to check that a client's read timeout fires.

    Args:
        seconds: how long to stall mid-body.
        after_bytes: body bytes sent before the stall; by default half.
        delay: seconds to wait before the headers.
    """

    seconds: float = attrs.field(default=math.inf, validator=_seconds)
    after_bytes: int | None = attrs.field(
        default=None, kw_only=True, validator=_optional_bytes
    )
    delay: float = attrs.field(default=0.0, kw_only=True, validator=_finite_seconds)


@attrs.frozen
class Reset:
    """Close the TCP connection abruptly (RST) part-way through the answer.

    Args:
        after_bytes: body bytes sent before the reset; by default half; ``0``
            resets right after the headers.
        send_headers: ``False`` resets before sending anything at all.
        delay: seconds to wait before the reset (or the headers).
    """

    after_bytes: int | None = attrs.field(
        default=None, kw_only=True, validator=_optional_bytes
    )
    send_headers: bool = attrs.field(default=True, kw_only=True)
    delay: float = attrs.field(default=0.0, kw_only=True, validator=_finite_seconds)


@attrs.frozen
class Malformed:
    """Answer with a body the client cannot parse, over clean HTTP framing.

    Args:
        kind: ``"truncated"``: the normal answer cut in half (for a stream,
            the events stop half-way and the stream ends cleanly);
            ``"not_json"``: an HTML error page; ``"wrong_shape"``: valid JSON
            that is not the provider's answer (``{"unexpected": true}``).
            The content type stays the route's normal one.
        status: the HTTP status sent with it.
        delay: seconds to wait before answering.
    """

    kind: MalformedKind = attrs.field(default="truncated")
    status: int = attrs.field(default=200, kw_only=True, validator=_status)
    delay: float = attrs.field(default=0.0, kw_only=True, validator=_finite_seconds)

    @kind.validator
    def _check_kind(self, _: attrs.Attribute[Any], value: Any) -> None:
        if value not in get_args(MalformedKind):
            raise LLMConfigurationError(
                f"Malformed kind must be one of {list(get_args(MalformedKind))}, "
                f"not {value!r}."
            )


def _raw_body(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    try:
        return json.dumps(value).encode()
    except (TypeError, ValueError) as exc:
        raise LLMConfigurationError(
            "Raw body must be bytes, str or JSON-serialisable data."
        ) from exc


@attrs.frozen
class Raw:
    """Answer with exactly this status, body and headers, whatever the route.

    Use it to replay a recorded provider payload byte for byte.

    Args:
        status: the HTTP status.
        body: ``bytes`` or ``str`` sent as they are, or data sent as JSON.
        headers: response headers; ``content-type`` defaults to
            ``application/json``.
        delay: seconds to wait before answering.
    """

    status: int = attrs.field(default=200, validator=_status)
    body: bytes = attrs.field(default=b"", kw_only=True, converter=_raw_body)
    headers: Mapping[str, str] = attrs.field(
        factory=dict, kw_only=True, converter=_headers
    )
    delay: float = attrs.field(default=0.0, kw_only=True, validator=_finite_seconds)


#: One scripted step.
Action = Respond | Fail | Stall | Reset | Malformed | Raw

_ACTION_NAMES: dict[str, type[Action]] = {
    "fail": Fail,
    "malformed": Malformed,
    "raw": Raw,
    "reset": Reset,
    "respond": Respond,
    "stall": Stall,
}


def action_from_json(data: object) -> Action:
    """Build an action from its JSON form, e.g. ``{"action": "fail", "status": 503}``.

    The keys are the action's argument names; ``usage`` is an object with
    ``input_tokens``, ``output_tokens`` and optionally ``total_tokens``,
    ``cached_input_tokens``, ``reasoning_tokens``; ``cost`` is a number or a
    decimal string; ``seconds: null`` means forever.

    Raises:
        LLMConfigurationError: for an unknown action or a bad field.
    """
    if not isinstance(data, dict) or not isinstance(data.get("action"), str):
        raise LLMConfigurationError(
            'An action must be a JSON object with an "action" name, such as '
            '{"action": "fail", "status": 503}.'
        )
    fields = dict(data)
    name = fields.pop("action")
    cls = _ACTION_NAMES.get(name)
    if cls is None:
        raise LLMConfigurationError(
            f"Unknown action {name!r}; use one of {sorted(_ACTION_NAMES)}."
        )
    known = {a.name for a in attrs.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise LLMConfigurationError(
            f"Action {name!r} has no field(s) {unknown}; it takes {sorted(known)}."
        )
    if cls is Respond:
        if "usage" in fields and fields["usage"] is not None:
            fields["usage"] = _usage_from_json(fields["usage"])
        if "cost" in fields and fields["cost"] is not None:
            fields["cost"] = _decimal_from_json(fields["cost"])
    if cls is Stall and "seconds" in fields and fields["seconds"] is None:
        fields["seconds"] = math.inf
    try:
        return cls(**fields)
    except TypeError as exc:
        raise LLMConfigurationError(f"Bad action {data!r}: {exc}") from exc


def _usage_from_json(value: object) -> Usage:
    if not isinstance(value, dict):
        raise LLMConfigurationError("usage must be a JSON object of token counts.")
    counts = dict(value)
    try:
        counts.setdefault(
            "total_tokens", counts["input_tokens"] + counts["output_tokens"]
        )
        return Usage(**counts)
    except (KeyError, TypeError) as exc:
        raise LLMConfigurationError(
            "usage needs integer input_tokens and output_tokens, and may have "
            "total_tokens, cached_input_tokens and reasoning_tokens."
        ) from exc


def _decimal_from_json(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LLMConfigurationError(f"cost must be a number, not {value!r}.")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise LLMConfigurationError(f"cost must be a number, not {value!r}.") from exc
