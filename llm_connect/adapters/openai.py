"""``OpenAIAdapter``: OpenAI Chat Completions, and any server that speaks it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from llm_connect._config import RunConfig
from llm_connect._models import FinishReason, LLMResponse, Message, Usage
from llm_connect.exceptions import LLMBadRequestError, LLMProviderError

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

__all__ = ["OpenAIAdapter"]

#: OpenAI's own API.
OPENAI_BASE_URL = "https://api.openai.com/v1"

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}
# Error codes/types that say the account is out of quota or credit.
_EXHAUSTED_CODES = frozenset({"insufficient_quota", "billing_not_active"})
# Both spellings of the output-token limit; a caller's extra_body may set either.
_MAX_TOKENS_FIELDS = ("max_completion_tokens", "max_tokens")


class OpenAIAdapter(HTTPAdapter):
    """Calls OpenAI's Chat Completions API, or any OpenAI-compatible server.

    Args:
        api_key: the API key; ``None`` reads ``OPENAI_API_KEY``. Required for
            OpenAI's own API; with another ``base_url`` (vLLM, llama.cpp,
            Ollama's ``/v1``) a missing key sends no ``Authorization`` header.
        base_url: the API root; ``POST {base_url}/chat/completions`` is called.
        default_config: settings for every call.
        http_client: an ``httpx.AsyncClient`` to use (never closed by the
            adapter; only valid on its own event loop). By default the adapter
            keeps one client per event loop.

    ``RunConfig.max_tokens`` is sent as ``max_completion_tokens`` to OpenAI's
    own API (its reasoning models refuse ``max_tokens``) and as ``max_tokens``
    to other servers (which all accept it; not all know the newer name).

    Raises:
        LLMConfigurationError: no key for OpenAI's API (names
            ``OPENAI_API_KEY``), a malformed ``base_url`` or ``http_client``.
    """

    provider: ClassVar[str] = "openai"
    display_name: ClassVar[str] = "OpenAI"
    key_env_vars: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id",)

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = OPENAI_BASE_URL,
        default_config: RunConfig | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            default_config=default_config,
            http_client=http_client,
        )
        self._url = self._endpoint("chat/completions")

    def _key_required(self) -> bool:
        return self._is_openai()

    def _is_openai(self) -> bool:
        return self._base_url.host == "api.openai.com"

    @property
    def _name(self) -> str:
        if type(self) is OpenAIAdapter and not self._is_openai():
            port = f":{self._base_url.port}" if self._base_url.port else ""
            return f"The server at {self._base_url.host}{port}"
        return self.display_name

    # -- request -------------------------------------------------------------

    def _build_request(
        self, messages: Sequence[Message], config: RunConfig
    ) -> HTTPRequest:
        body: dict[str, Any] = {
            "model": config.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        if config.temperature is not None:
            body["temperature"] = config.temperature
        if config.top_p is not None:
            body["top_p"] = config.top_p
        extra = config.extra_body or {}
        if config.max_tokens is not None and not any(
            name in extra for name in _MAX_TOKENS_FIELDS
        ):
            body[self._max_tokens_field()] = config.max_tokens
        if config.stop is not None:
            body["stop"] = list(config.stop)
        body.update(self._provider_body())
        auth = {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        return HTTPRequest(
            url=self._url,
            headers=self._headers(auth, config, **self._provider_headers()),
            body=merge_body(body, extra),
        )

    def _max_tokens_field(self) -> str:
        """The body field ``RunConfig.max_tokens`` is sent as."""
        return "max_completion_tokens" if self._is_openai() else "max_tokens"

    def _provider_body(self) -> dict[str, Any]:
        """Fields a subclass adds to every body (before extra_body)."""
        return {}

    def _provider_headers(self) -> dict[str, str | None]:
        """Headers a subclass adds to every request (before extra_headers)."""
        return {}

    # -- response ------------------------------------------------------------

    def _parse_success(
        self, data: Mapping[str, Any], response: httpx.Response, config: RunConfig
    ) -> LLMResponse:
        cost = self._reported_cost(as_dict(data.get("usage")))
        # Gateways (OpenRouter) report failures inside a 200 body.
        error = data.get("error")
        if error:
            self._fail_in_body(error, data, cost, response)
        choices = as_list(data.get("choices"))
        if not choices or not isinstance(choices[0], dict):
            raise self._response_error("no 'choices' in the answer", response)
        choice = choices[0]
        if choice.get("error") or choice.get("finish_reason") == "error":
            self._fail_in_body(choice.get("error"), data, cost, response)
        message = as_dict(choice.get("message"))
        text = _content_text(message.get("content"))
        refusal = as_str(message.get("refusal"))
        finish: FinishReason
        if refusal is not None:
            text, finish = refusal, "refusal"
        else:
            reason = as_str(choice.get("finish_reason"))
            if reason is None:
                finish = "stop" if text else "other"
            else:
                finish = _FINISH_REASONS.get(reason, "other")
        return LLMResponse(
            text=text,
            model=as_str(data.get("model")) or config.model or "",
            provider=self.provider,
            usage=_usage(data.get("usage")),
            cost=cost,
            finish_reason=finish,
            raw=data,
            request_id=self._header_request_id(response.headers)
            or as_str(data.get("id")),
        )

    def _reported_cost(self, usage: Mapping[str, Any]) -> Decimal | None:
        """USD the provider says the call cost; OpenAI reports none."""
        return None

    def _fail_in_body(
        self,
        error: object,
        data: Mapping[str, Any],
        cost: Decimal | None,
        response: httpx.Response,
    ) -> None:
        """Raise the error a gateway reported inside a 2xx body."""
        status = _status_of(error)
        info = self._parse_error({"error": error}, status)
        if info is None:
            info = ErrorInfo("the model failed while answering")
        self._fail(
            status,
            ErrorInfo(
                info.message,
                code=info.code,
                exhausted=info.exhausted,
                error_class=info.error_class,
                request_id=as_str(data.get("id")),
                cost=cost,
            ),
            response,
        )

    def _parse_error(self, data: object, status: int) -> ErrorInfo | None:
        body = as_dict(data)
        error = body.get("error")
        if isinstance(error, str):  # Ollama and some proxies: {"error": "..."}
            return ErrorInfo(error)
        err = as_dict(error)
        if not err:
            # vLLM/FastAPI style: {"message": ..., "type": ...} or {"detail": ...}
            message = as_str(body.get("message")) or _detail(body.get("detail"))
            if message is None:
                return None
            return ErrorInfo(message, code=as_str(body.get("type")))
        metadata = as_dict(err.get("metadata"))
        message = as_str(err.get("message")) or "(no message)"
        code = (
            as_str(metadata.get("error_type"))
            or _code_str(err.get("code"))
            or as_str(err.get("type"))
        )
        # OpenRouter relays an upstream provider's own words in metadata.raw.
        raw = metadata.get("raw")
        upstream = as_str(metadata.get("provider_name"))
        if raw:
            said = raw if isinstance(raw, str) else str(raw)
            message += f" ({upstream or 'upstream'}: {said.strip()})"
        elif upstream:
            message += f" (from {upstream})"
        error_class: type[LLMProviderError] | None = None
        reasons = as_list(metadata.get("reasons"))
        if status == 403 and (reasons or "flagged_input" in metadata):
            error_class = LLMBadRequestError
            if reasons:
                message += f" (flagged: {', '.join(str(r) for r in reasons)})"
        limit_source = as_str(metadata.get("limit_source")) or ""
        exhausted = (
            code in _EXHAUSTED_CODES
            or as_str(err.get("type")) in _EXHAUSTED_CODES
            or (status == 429 and "day" in limit_source)
            or (status == 429 and "per-day" in message)
        )
        return ErrorInfo(
            message, code=code, exhausted=exhausted, error_class=error_class
        )


def _usage(value: object) -> Usage:
    """Map an OpenAI ``usage`` object; anything missing counts as 0."""
    usage = as_dict(value)
    prompt = as_count(usage.get("prompt_tokens"))
    completion = as_count(usage.get("completion_tokens"))
    total = as_count(usage.get("total_tokens")) or prompt + completion
    return Usage(
        input_tokens=prompt,  # includes the cached tokens
        output_tokens=completion,  # includes the reasoning tokens
        total_tokens=total,
        cached_input_tokens=as_count(
            as_dict(usage.get("prompt_tokens_details")).get("cached_tokens")
        ),
        reasoning_tokens=as_count(
            as_dict(usage.get("completion_tokens_details")).get("reasoning_tokens")
        ),
    )


def _content_text(content: object) -> str:
    """The text of ``message.content``: a string, a list of parts, or null."""
    if isinstance(content, str):
        return content
    return "".join(
        part["text"]
        for part in as_list(content)
        if isinstance(part, dict)
        and part.get("type", "text") == "text"
        and isinstance(part.get("text"), str)
    )


def _status_of(error: object) -> int:
    """The HTTP-like status of an in-body error; 502 when it names none."""
    code = as_dict(error).get("code")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code
    return 502


def _code_str(code: object) -> str | None:
    """An error ``code`` worth keeping: a word, not a repeat of the status."""
    if isinstance(code, str) and code and not code.strip().isdigit():
        return code
    return None


def _detail(detail: object) -> str | None:
    if isinstance(detail, str) and detail:
        return detail
    if detail:
        return str(detail)
    return None
