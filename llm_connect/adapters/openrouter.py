"""``OpenRouterAdapter``: the OpenAI wire format, plus OpenRouter's headers and cost."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from llm_connect._config import RunConfig
from llm_connect.exceptions import LLMConfigurationError

from ._http import as_dict
from .openai import OpenAIAdapter

__all__ = ["OpenRouterAdapter"]

#: OpenRouter's OpenAI-compatible API.
OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"


class OpenRouterAdapter(OpenAIAdapter):
    """Calls models through OpenRouter (OpenAI Chat Completions wire format).

    Args:
        api_key: the OpenRouter key; ``None`` reads ``OPENROUTER_API_KEY``.
        base_url: the API root (default ``https://openrouter.ai/api/v1``).
        default_config: settings for every call.
        http_client: an ``httpx.AsyncClient`` to use (never closed by the
            adapter; only valid on its own event loop).
        app_name: your app's name for OpenRouter's rankings and analytics
            (sent as ``X-OpenRouter-Title`` and the older ``X-Title``).
        app_url: your app's URL (sent as ``HTTP-Referer``); OpenRouter uses it
            to identify the app.

    Every request asks for usage accounting (``"usage": {"include": true}``),
    and the cost OpenRouter reports becomes ``LLMResponse.cost``. For a BYOK
    request (your own provider key) the cost is OpenRouter's fee
    (``usage.cost``) plus the upstream provider's charge
    (``usage.cost_details.upstream_inference_cost``), since both are spent.

    Raises:
        LLMConfigurationError: no key (names ``OPENROUTER_API_KEY``), a
            malformed ``base_url``, ``app_name`` or ``app_url``.
    """

    provider: ClassVar[str] = "openrouter"
    display_name: ClassVar[str] = "OpenRouter"
    key_env_vars: ClassVar[tuple[str, ...]] = ("OPENROUTER_API_KEY",)
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-generation-id",)

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = OPENROUTER_BASE_URL,
        default_config: RunConfig | None = None,
        http_client: httpx.AsyncClient | None = None,
        app_name: str | None = None,
        app_url: str | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            default_config=default_config,
            http_client=http_client,
        )
        self._app_name = _header_value("app_name", app_name)
        self._app_url = _header_value("app_url", app_url)

    def _key_required(self) -> bool:
        return True

    def _max_tokens_field(self) -> str:
        return "max_tokens"

    def _provider_body(self) -> dict[str, Any]:
        return {"usage": {"include": True}}

    def _provider_headers(self) -> dict[str, str | None]:
        return {
            "HTTP-Referer": self._app_url,
            "X-OpenRouter-Title": self._app_name,
            "X-Title": self._app_name,
        }

    def _reported_cost(self, usage: Mapping[str, Any]) -> Decimal | None:
        cost = _money(usage.get("cost"))
        if usage.get("is_byok") is True:
            upstream = _money(
                as_dict(usage.get("cost_details")).get("upstream_inference_cost")
            )
            if upstream is not None:
                cost = (cost or Decimal(0)) + upstream
        return cost


def _money(value: object) -> Decimal | None:
    """A reported USD amount as a Decimal (floats via ``str``), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return amount


def _header_value(name: str, value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.strip()
        or not value.isprintable()
        or not value.isascii()
    ):
        raise LLMConfigurationError(
            f"OpenRouterAdapter {name} must be a non-empty, printable ASCII str "
            f"(it is sent as an HTTP header), not {value!r}."
        )
    return value.strip()
