"""``GeminiAdapter``: Google's Gemini API (``generateContent``, v1beta)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from llm_connect._config import RunConfig
from llm_connect._models import FinishReason, LLMResponse, Message, Usage
from llm_connect.exceptions import LLMAuthenticationError, LLMConfigurationError

from ._http import (
    ErrorInfo,
    HTTPAdapter,
    HTTPRequest,
    as_count,
    as_dict,
    as_list,
    as_str,
    merge_body,
)

__all__ = ["GeminiAdapter"]

#: The Gemini API (Google AI Studio keys), version v1beta.
GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"

# Finish reasons that mean the answer was withheld; the rest map as named.
_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "LANGUAGE",
    }
)
# "gemini-2.5-flash", "models/gemini-2.5-flash" or "tunedModels/my-model".
_MODEL = re.compile(r"^(?:(?:models|tunedModels)/)?[A-Za-z0-9][A-Za-z0-9._-]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


class GeminiAdapter(HTTPAdapter):
    """Calls Gemini's ``models/{model}:generateContent`` (v1beta).

    Args:
        api_key: the Gemini API key; ``None`` reads ``GEMINI_API_KEY``, then
            ``GOOGLE_API_KEY``. It is sent in the ``x-goog-api-key`` header,
            never in the URL.
        base_url: the API root (default
            ``https://generativelanguage.googleapis.com/v1beta``).
        default_config: settings for every call.
        http_client: an ``httpx.AsyncClient`` to use (never closed by the
            adapter; only valid on its own event loop).

    System messages become ``systemInstruction``; ``assistant`` turns are sent
    with Gemini's role ``model``. Thought parts (``"thought": true``) are not
    part of ``LLMResponse.text``.

    Raises:
        LLMConfigurationError: no key (names ``GEMINI_API_KEY`` and
            ``GOOGLE_API_KEY``), a malformed ``base_url`` or ``http_client``.
    """

    provider: ClassVar[str] = "gemini"
    display_name: ClassVar[str] = "Gemini"
    key_env_vars: ClassVar[tuple[str, ...]] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    request_id_headers: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = GEMINI_BASE_URL,
        default_config: RunConfig | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            default_config=default_config,
            http_client=http_client,
        )

    def _validate(self, messages: Sequence[Message], config: RunConfig) -> None:
        super()._validate(messages, config)
        if config.model is not None and not _MODEL.match(config.model):
            raise LLMConfigurationError(
                f"{config.model!r} is not a Gemini model name; use a name such as "
                f"'gemini-2.5-flash' (or 'models/gemini-2.5-flash')."
            )

    # -- request -------------------------------------------------------------

    def _build_request(
        self, messages: Sequence[Message], config: RunConfig
    ) -> HTTPRequest:
        model = config.model or ""
        if "/" not in model:
            model = f"models/{model}"
        body: dict[str, Any] = {
            "contents": [
                {
                    "role": "model" if m.role == "assistant" else "user",
                    "parts": [{"text": m.content}],
                }
                for m in messages
                if m.role != "system"
            ]
        }
        system = [{"text": m.content} for m in messages if m.role == "system"]
        if system:
            body["systemInstruction"] = {"parts": system}
        generation: dict[str, Any] = {}
        if config.temperature is not None:
            generation["temperature"] = config.temperature
        if config.top_p is not None:
            generation["topP"] = config.top_p
        if config.max_tokens is not None:
            generation["maxOutputTokens"] = config.max_tokens
        if config.stop is not None:
            generation["stopSequences"] = list(config.stop)
        if generation:
            body["generationConfig"] = generation
        assert self._api_key is not None  # required: checked at construction
        return HTTPRequest(
            url=self._endpoint(f"{model}:generateContent"),
            headers=self._headers({"x-goog-api-key": self._api_key}, config),
            body=merge_body(body, config.extra_body),
        )

    # -- response ------------------------------------------------------------

    def _parse_success(
        self, data: Mapping[str, Any], response: httpx.Response, config: RunConfig
    ) -> LLMResponse:
        candidates = as_list(data.get("candidates"))
        finish: FinishReason
        if candidates:
            candidate = candidates[0]
            if not isinstance(candidate, dict):
                raise self._response_error("a candidate is not an object", response)
            reason = as_str(candidate.get("finishReason"))
            parts = as_list(as_dict(candidate.get("content")).get("parts"))
            text = "".join(
                part["text"]
                for part in parts
                if isinstance(part, dict)
                and isinstance(part.get("text"), str)
                and not part.get("thought")
            )
            if reason in _FILTERED:
                text, finish = "", "content_filter"
            elif reason == "STOP":
                finish = "stop"
            elif reason == "MAX_TOKENS":
                finish = "length"
            elif reason is None:
                finish = "stop" if text else "other"
            else:
                finish = "other"
        elif as_dict(data.get("promptFeedback")).get("blockReason"):
            text, finish = "", "content_filter"  # the prompt itself was blocked
        else:
            raise self._response_error(
                "no candidates and no promptFeedback.blockReason", response
            )
        return LLMResponse(
            text=text,
            model=as_str(data.get("modelVersion")) or config.model or "",
            provider=self.provider,
            usage=_usage(data.get("usageMetadata")),
            cost=None,
            finish_reason=finish,
            raw=data,
            request_id=as_str(data.get("responseId")),
        )

    def _parse_error(self, data: object, status: int) -> ErrorInfo | None:
        error = as_dict(as_dict(data).get("error"))
        if not error:
            return None
        message = as_str(error.get("message")) or "(no message)"
        reason: str | None = None
        retry_after: float | None = None
        per_day = False
        for item in as_list(error.get("details")):
            detail = as_dict(item)
            kind = as_str(detail.get("@type")) or ""
            if kind.endswith("google.rpc.ErrorInfo"):
                reason = as_str(detail.get("reason")) or reason
            elif kind.endswith("google.rpc.RetryInfo"):
                retry_after = _duration(detail.get("retryDelay"))
            elif kind.endswith("google.rpc.QuotaFailure"):
                per_day = per_day or any(
                    "PerDay" in (as_str(as_dict(v).get("quotaId")) or "")
                    for v in as_list(detail.get("violations"))
                )
        lowered = message.lower()
        exhausted = status == 429 and (
            per_day or "limit: 0" in lowered or "credits are depleted" in lowered
        )
        # An invalid or expired key is a 400 INVALID_ARGUMENT at Gemini.
        auth = reason is not None and reason.startswith("API_KEY_")
        return ErrorInfo(
            message,
            code=reason or as_str(error.get("status")),
            retry_after=retry_after,
            exhausted=exhausted,
            error_class=LLMAuthenticationError if auth else None,
        )


def _usage(value: object) -> Usage:
    """Map ``usageMetadata``; anything missing counts as 0.

    ``promptTokenCount`` includes ``cachedContentTokenCount``; tool-use prompt
    tokens (code execution) are input too. ``candidatesTokenCount`` excludes
    the thinking tokens, which are billed as output, so output = candidates +
    thoughts, and ``totalTokenCount`` = input + output.
    """
    usage = as_dict(value)
    input_tokens = as_count(usage.get("promptTokenCount")) + as_count(
        usage.get("toolUsePromptTokenCount")
    )
    thoughts = as_count(usage.get("thoughtsTokenCount"))
    output_tokens = as_count(usage.get("candidatesTokenCount")) + thoughts
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=as_count(usage.get("totalTokenCount"))
        or input_tokens + output_tokens,
        cached_input_tokens=as_count(usage.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _duration(value: object) -> float | None:
    """Seconds of a protobuf JSON duration such as ``"37s"`` or ``"1.5s"``."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None
