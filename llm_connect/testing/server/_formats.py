"""The four wire formats: answer bodies, error bodies and streams, as bytes."""

from __future__ import annotations

import http
import json
import time
from decimal import Decimal
from typing import Any, NamedTuple

from llm_connect._errors import RETRYABLE_STATUSES
from llm_connect._models import Usage

from ._actions import Route

__all__ = [
    "DEFAULT_MODELS",
    "Answer",
    "Reply",
    "answer_reply",
    "count_tokens_reply",
    "error_reply",
    "malformed_body",
    "request_id_for",
    "served_text",
]

JSON = "application/json"
SSE = "text/event-stream; charset=utf-8"

#: The model named in an answer when the request named none.
DEFAULT_MODELS: dict[Route | None, str] = {
    "anthropic": "claude-loopback",
    "gemini": "gemini-loopback",
    "openai": "gpt-loopback",
    "openrouter": "loopback/model",
    None: "loopback",
}


class Answer(NamedTuple):
    """A normal answer with every field resolved."""

    text: str
    model: str
    usage: Usage
    cost: Decimal | None  # None: priced at the nominal rates below
    finish_reason: str
    padding: str


class Reply(NamedTuple):
    """A response ready to send: framing is by Content-Length unless ``chunked``."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    chunked: bool = False


_OPENAI_FINISH = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "refusal": "stop",  # OpenAI signals a refusal in message.refusal
    "tool_calls": "tool_calls",
    "other": "function_call",
}
_GEMINI_FINISH = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "refusal": "SAFETY",  # Gemini has no refusal signal of its own
    "tool_calls": "STOP",
    "other": "OTHER",
}
_GEMINI_WITHHELD = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"}
)
_ANTHROPIC_FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "content_filter": "refusal",
    "refusal": "refusal",
    "tool_calls": "tool_use",
    "other": "pause_turn",
}

#: Nominal prices behind the default OpenRouter cost (USD per token).
INPUT_PRICE = Decimal("0.000001")
OUTPUT_PRICE = Decimal("0.000002")

#: Characters of answer text per streamed delta (about eight tokens).
STREAM_CHUNK_CHARS = 32


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _dumps(data: object) -> str:
    return _ENCODER.encode(data)


def request_id_for(route: Route | None, number: int) -> str:
    """The id an answer to request ``number`` carries, in the route's style."""
    if route == "openrouter":
        return f"gen-loopback-{number}"
    if route == "gemini":
        return f"loopback-{number}"
    return f"req_loopback_{number}"


def served_text(route: Route | None, finish_reason: str, text: str) -> str:
    """The text the answer actually carries (Gemini withholds blocked text)."""
    if (
        route == "gemini"
        and _GEMINI_FINISH.get(finish_reason, finish_reason) in _GEMINI_WITHHELD
    ):
        return ""
    return text


def answer_reply(
    route: Route, answer: Answer, request_id: str, *, stream: bool
) -> Reply:
    """The normal answer in the route's wire format (an SSE stream if asked)."""
    if route == "openai":
        return _openai_answer(answer, request_id)
    if route == "openrouter":
        return _openrouter_answer(answer, request_id)
    if route == "gemini":
        return _gemini_answer(answer, request_id)
    if stream:
        return _anthropic_stream(answer, request_id)
    return _anthropic_answer(answer, request_id)


def count_tokens_reply(input_tokens: int, request_id: str) -> Reply:
    """Anthropic's ``/v1/messages/count_tokens`` answer."""
    body = _dumps({"input_tokens": input_tokens}).encode()
    return Reply(200, [("content-type", JSON), ("request-id", request_id)], body)


# -- OpenAI and OpenRouter ----------------------------------------------------


def _openai_message(answer: Answer) -> dict[str, Any]:
    refused = answer.finish_reason == "refusal"
    return {
        "role": "assistant",
        "content": None if refused else answer.text,
        "refusal": answer.text if refused else None,
        "annotations": [],
    }


def _openrouter_message(answer: Answer) -> dict[str, Any]:
    refused = answer.finish_reason == "refusal"
    return {
        "role": "assistant",
        "content": None if refused else answer.text,
        "refusal": answer.text if refused else None,
        "reasoning": None,
    }


def _openai_answer(answer: Answer, request_id: str) -> Reply:
    usage = answer.usage
    data = {
        "id": "chatcmpl-" + request_id.removeprefix("req_"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model,
        "choices": [
            {
                "index": 0,
                "message": _openai_message(answer),
                "logprobs": None,
                "finish_reason": _OPENAI_FINISH.get(
                    answer.finish_reason, answer.finish_reason
                ),
            }
        ],
        "usage": {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {
                "cached_tokens": usage.cached_input_tokens,
                "audio_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": usage.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_loopback",
    }
    headers = [
        ("content-type", JSON),
        ("x-request-id", request_id),
        ("openai-processing-ms", "0"),
    ]
    return Reply(200, headers, (answer.padding + _dumps(data)).encode())


def decimal_json(value: Decimal) -> str:
    """``value`` as a JSON number, exactly (no float rounding, no exponent)."""
    return format(value, "f")


def _openrouter_answer(answer: Answer, request_id: str) -> Reply:
    finish = _OPENAI_FINISH.get(answer.finish_reason, answer.finish_reason)
    data = {
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model,
        "provider": "Loopback",
        "system_fingerprint": None,
        "service_tier": None,
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "finish_reason": finish,
                "native_finish_reason": finish,
                "message": _openrouter_message(answer),
            }
        ],
    }
    usage = answer.usage
    if answer.cost is None:
        price = usage.input_tokens * INPUT_PRICE + usage.output_tokens * OUTPUT_PRICE
        cost = decimal_json(price)
    else:
        cost = decimal_json(answer.cost)
    # Written by hand so that the Decimal cost is an exact JSON number.
    usage_json = (
        f'{{"prompt_tokens":{usage.input_tokens},'
        f'"completion_tokens":{usage.output_tokens},'
        f'"total_tokens":{usage.total_tokens},'
        f'"cost":{cost},"is_byok":false,'
        f'"prompt_tokens_details":{{"cached_tokens":{usage.cached_input_tokens},'
        f'"cache_write_tokens":0,"audio_tokens":0,"video_tokens":0}},'
        f'"cost_details":{{"upstream_inference_cost":{cost}}},'
        f'"completion_tokens_details":{{"reasoning_tokens":{usage.reasoning_tokens},'
        f'"image_tokens":0,"audio_tokens":0}}}}'
    )
    body = _dumps(data)[:-1] + ',"usage":' + usage_json + "}"
    headers = [("content-type", JSON), ("x-generation-id", request_id)]
    return Reply(200, headers, (answer.padding + body).encode())


# -- Gemini -------------------------------------------------------------------


def _gemini_answer(answer: Answer, request_id: str) -> Reply:
    finish = _GEMINI_FINISH.get(answer.finish_reason, answer.finish_reason)
    usage = answer.usage
    candidate: dict[str, Any]
    if finish in _GEMINI_WITHHELD:
        candidate = {
            "content": {},
            "finishReason": finish,
            "index": 0,
            "safetyRatings": [
                {
                    "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                    "probability": "HIGH",
                    "blocked": True,
                }
            ],
        }
    else:
        candidate = {
            "content": {"parts": [{"text": answer.text}], "role": "model"},
            "finishReason": finish,
            "index": 0,
        }
    metadata: dict[str, Any] = {"promptTokenCount": usage.input_tokens}
    candidates_tokens = usage.output_tokens - usage.reasoning_tokens
    if candidates_tokens > 0 or finish not in _GEMINI_WITHHELD:
        metadata["candidatesTokenCount"] = max(candidates_tokens, 0)
    metadata["totalTokenCount"] = usage.total_tokens
    if usage.cached_input_tokens:
        metadata["cachedContentTokenCount"] = usage.cached_input_tokens
    metadata["promptTokensDetails"] = [
        {"modality": "TEXT", "tokenCount": usage.input_tokens}
    ]
    if usage.reasoning_tokens:
        metadata["thoughtsTokenCount"] = usage.reasoning_tokens
    data = {
        "candidates": [candidate],
        "usageMetadata": metadata,
        "modelVersion": answer.model,
        "responseId": request_id,
    }
    headers = [("content-type", "application/json; charset=UTF-8")]
    return Reply(200, headers, (answer.padding + _dumps(data)).encode())


# -- Anthropic ----------------------------------------------------------------


def _anthropic_usage(usage: Usage) -> dict[str, Any]:
    # Anthropic's input_tokens leaves the cached tokens out.
    return {
        "input_tokens": usage.input_tokens - usage.cached_input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": usage.output_tokens,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


def _anthropic_answer(answer: Answer, request_id: str) -> Reply:
    data = {
        "id": "msg_" + request_id.removeprefix("req_"),
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": [{"type": "text", "text": answer.text}] if answer.text else [],
        "stop_reason": _ANTHROPIC_FINISH.get(
            answer.finish_reason, answer.finish_reason
        ),
        "stop_sequence": None,
        "usage": _anthropic_usage(answer.usage),
    }
    headers = [("content-type", JSON), ("request-id", request_id)]
    return Reply(200, headers, (answer.padding + _dumps(data)).encode())


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {_dumps(data)}\n\n"


def _anthropic_start(answer: Answer, request_id: str) -> str:
    usage = _anthropic_usage(answer.usage)
    usage["output_tokens"] = min(1, answer.usage.output_tokens)
    message: dict[str, Any] = {
        "id": "msg_" + request_id.removeprefix("req_"),
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "stop_details": None,
        "usage": usage,
    }
    return _event("message_start", {"type": "message_start", "message": message})


def _anthropic_stream(answer: Answer, request_id: str) -> Reply:
    text = answer.text
    events = [
        _anthropic_start(answer, request_id),
        _event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        'event: ping\ndata: {"type": "ping"}\n\n',
    ]
    events.extend(
        _event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {
                    "type": "text_delta",
                    "text": text[i : i + STREAM_CHUNK_CHARS],
                },
            },
        )
        for i in range(0, len(text), STREAM_CHUNK_CHARS)
    )
    usage = answer.usage
    events += [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": _ANTHROPIC_FINISH.get(
                        answer.finish_reason, answer.finish_reason
                    ),
                    "stop_sequence": None,
                    "stop_details": None,
                },
                "usage": {
                    "input_tokens": usage.input_tokens - usage.cached_input_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": usage.cached_input_tokens,
                    "output_tokens": usage.output_tokens,
                },
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]
    headers = [
        ("content-type", SSE),
        ("cache-control", "no-cache"),
        ("request-id", request_id),
    ]
    return Reply(200, headers, "".join(events).encode(), chunked=True)


# -- Errors -------------------------------------------------------------------

_MESSAGES = {
    400: "The request is invalid.",
    401: "Invalid API key.",
    403: "Permission denied.",
    404: "The requested resource was not found.",
    408: "The request timed out.",
    409: "The request conflicts with another one.",
    413: "The request is too large.",
    422: "The request could not be processed.",
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request.",
    502: "Bad gateway: the upstream provider returned an invalid response.",
    503: "The service is temporarily overloaded. Please try again later.",
    504: "The request timed out upstream.",
    529: "Overloaded",
}
_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def default_message(status: int) -> str:
    """A provider-like message for an error ``status``."""
    message = _MESSAGES.get(status)
    if message is not None:
        return message
    try:
        return http.HTTPStatus(status).phrase + "."
    except ValueError:
        return f"HTTP {status}."


def _seconds_text(seconds: float) -> str:
    return format(Decimal(str(float(seconds))).normalize(), "f")


def error_reply(
    route: Route | None,
    status: int,
    message: str,
    request_id: str,
    *,
    retry_after: float | None = None,
    in_body: bool = False,
    stream: bool = False,
    model: str = "loopback",
    code: str | None = None,
) -> Reply:
    """An error in the route's provider shape (a 404 for an unknown route).

    ``code`` overrides the machine-readable code (OpenAI ``error.code``,
    Gemini ``details`` reason) for the server's own refusals.
    """
    headers: list[tuple[str, str]] = [("content-type", JSON)]
    if retry_after is not None and route != "gemini":
        headers.append(("retry-after", _seconds_text(retry_after)))
        if route == "openai":
            headers.append(("retry-after-ms", str(round(retry_after * 1000))))
    if route == "gemini":
        headers[0] = ("content-type", "application/json; charset=UTF-8")
        data: dict[str, Any] = {
            "error": {
                "code": status,
                "message": message,
                "status": _GEMINI_STATUS.get(status, "UNKNOWN"),
            }
        }
        details: list[dict[str, Any]] = []
        if status == 401 or code is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": code or "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            )
        if retry_after is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": _seconds_text(retry_after) + "s",
                }
            )
        if details:
            data["error"]["details"] = details
    elif route == "anthropic":
        headers.append(("request-id", request_id))
        headers.append(
            ("x-should-retry", "true" if status in RETRYABLE_STATUSES else "false")
        )
        error_type = _ANTHROPIC_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        data = {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
        if in_body and stream:
            # A stream that fails after it started: HTTP 200, then an error event.
            answer = Answer("", model, Usage(0, 0, 0), Decimal(0), "stop", "")
            body = _anthropic_start(answer, request_id) + _event("error", data)
            sse = [("content-type", SSE), ("cache-control", "no-cache")]
            return Reply(200, sse + headers[1:], body.encode(), chunked=True)
    elif route == "openrouter":
        headers.append(("x-generation-id", request_id))
        if in_body:
            error_type = (
                "provider_unavailable"
                if status >= 500
                else "rate_limit"
                if status == 429
                else "invalid_request"
            )
            data = {
                "id": request_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "provider": "Loopback",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": ""},
                        "finish_reason": "error",
                        "native_finish_reason": "error",
                        "error": {
                            "code": status,
                            "message": message,
                            "metadata": {"error_type": error_type},
                        },
                    }
                ],
            }
        else:
            error: dict[str, Any] = {"code": status, "message": message}
            if status in {429, 502}:
                error["metadata"] = {"provider_name": "Loopback", "raw": message}
            data = {"error": error, "user_id": "user_loopback"}
    else:  # OpenAI, and paths no format claims
        headers.append(("x-request-id", request_id))
        if status == 401:
            error_type, error_code = "invalid_request_error", "invalid_api_key"
        elif status == 429:
            error_type, error_code = "requests", "rate_limit_exceeded"
        elif status >= 500:
            error_type, error_code = "server_error", None
        else:
            error_type, error_code = "invalid_request_error", None
        data = {
            "error": {
                "message": message,
                "type": error_type,
                "param": None,
                "code": code if code is not None else error_code,
            }
        }
    return Reply(200 if in_body else status, headers, _dumps(data).encode())


_NOT_JSON = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
    b"<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


def malformed_body(kind: str, normal: bytes) -> bytes:
    """A body of the given malformed ``kind``, made from the ``normal`` one."""
    if kind == "truncated":
        return normal[: len(normal) // 2]
    if kind == "not_json":
        return _NOT_JSON
    return b'{"unexpected": true}'
