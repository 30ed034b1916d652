"""Model prices, and what a call costs.

The built-in table holds list prices in USD per million tokens for OpenAI,
Google Gemini and Anthropic models, in force on :data:`PRICES_AS_OF`. Prices
change: override one call with ``RunConfig(price=ModelPrice(...))``, or a model
for the whole process with :func:`register`. The table is read on the first
lookup, not at import.
"""

from __future__ import annotations

import csv
import datetime
import functools
import importlib.resources
import re
import threading
from collections.abc import Iterator
from decimal import Context, Decimal

import attrs

from ._budget import to_amount
from ._models import Usage
from .exceptions import LLMConfigurationError

__all__ = [
    "PRICES_AS_OF",
    "ModelPrice",
    "PriceTier",
    "lookup",
    "register",
]

#: The day the built-in prices were taken.
PRICES_AS_OF = datetime.date(2026, 12, 4)

_MILLION = Decimal(1_000_000)
#: Exact arithmetic for prices, whatever the caller's decimal context.
_EXACT = Context(prec=50)


def _price(value: object) -> Decimal:
    return to_amount(value, "a price per million tokens")


def _optional_price(value: object) -> Decimal | None:
    return None if value is None else _price(value)


@attrs.frozen
class PriceTier:
    """Prices that apply to the whole request once the prompt is long.

    Attributes:
        above: the tier applies when the prompt has more than this many tokens.
        input, output, cached_input: USD per million tokens in this tier
            (``cached_input`` ``None``: the tier's input price).
    """

    above: int
    input: Decimal = attrs.field(converter=_price)
    output: Decimal = attrs.field(converter=_price)
    cached_input: Decimal | None = attrs.field(default=None, converter=_optional_price)


def _tiers(value: object) -> tuple[PriceTier, ...]:
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(t, PriceTier) for t in value
    ):
        raise LLMConfigurationError("ModelPrice tiers must be a sequence of PriceTier.")
    return tuple(sorted(value, key=lambda t: t.above))


@attrs.frozen
class ModelPrice:
    """What a model costs, in USD per million tokens.

    Args:
        input: per million input (prompt) tokens that were not cached.
        output: per million output tokens (reasoning tokens included).
        cached_input: per million cached input tokens (a cache read);
            ``None`` bills them at ``input``.
        tiers: long-prompt tiers, see :class:`PriceTier`.

    Prices accept ``Decimal``, ``int``, decimal strings and floats (through
    ``str()``); a negative or non-numeric price raises
    :class:`LLMConfigurationError`.
    """

    input: Decimal = attrs.field(converter=_price)
    output: Decimal = attrs.field(converter=_price)
    cached_input: Decimal | None = attrs.field(default=None, converter=_optional_price)
    tiers: tuple[PriceTier, ...] = attrs.field(default=(), converter=_tiers)

    def cost(self, usage: Usage) -> Decimal:
        """What a call with this ``usage`` costs, exactly, in USD."""
        tier = self._tier_for(usage.input_tokens)
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        cached_price = (
            tier.cached_input if tier.cached_input is not None else tier.input
        )
        add, mul = _EXACT.add, _EXACT.multiply
        total = add(
            add(
                mul(usage.input_tokens - cached, tier.input),
                mul(cached, cached_price),
            ),
            mul(usage.output_tokens, tier.output),
        )
        return _EXACT.divide(total, _MILLION)

    def worst_case(self, input_tokens: int, output_tokens: int) -> Decimal:
        """The most a call could cost: no cache discount, the prompt's tier."""
        tier = self._tier_for(input_tokens)
        total = _EXACT.add(
            _EXACT.multiply(input_tokens, tier.input),
            _EXACT.multiply(output_tokens, tier.output),
        )
        return _EXACT.divide(total, _MILLION)

    def _tier_for(self, input_tokens: int) -> ModelPrice | PriceTier:
        chosen: ModelPrice | PriceTier = self
        for tier in self.tiers:
            if input_tokens > tier.above:
                chosen = tier
        return chosen


# Adapter provider names -> the provider column of the table.
_PROVIDERS = {
    "openai": "openai",
    "gemini": "google",
    "google": "google",
    "anthropic": "anthropic",
    "claude-code": "anthropic",
}
# OpenRouter model ids are "vendor/model".
_OPENROUTER_VENDORS = {"openai": "openai", "google": "google", "anthropic": "anthropic"}
_SUFFIXES = (
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # gpt-4o-mini-2024-07-18
    re.compile(r"[-@]\d{8}$"),  # claude-sonnet-4-20250514, ...@20250514
    re.compile(r"-\d{2}-\d{2}$"),  # gemini-2.5-flash-preview-05-20
    re.compile(r"-\d{3}$"),  # gemini-2.0-flash-001
)

_registered: dict[tuple[str, str], ModelPrice] = {}
_registered_lock = threading.Lock()


def register(provider: str, model: str, price: ModelPrice) -> None:
    """Set the price of ``model`` for ``provider`` in this process.

    It takes precedence over the built-in table (a per-call
    ``RunConfig(price=...)`` still wins). ``provider`` is an adapter's
    provider name: ``"openai"``, ``"gemini"``, ``"openrouter"``,
    ``"claude-code"``, or your own adapter's.
    """
    if not isinstance(price, ModelPrice):
        raise LLMConfigurationError("register() needs a ModelPrice.")
    with _registered_lock:
        _registered[(provider, model)] = price
    lookup.cache_clear()


@functools.lru_cache(maxsize=1024)
def lookup(provider: str, model: str | None) -> ModelPrice | None:
    """The price of ``model`` as served by ``provider``, or ``None`` if unknown.

    Dated snapshots and version suffixes resolve to their model
    (``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``); OpenRouter's
    ``vendor/model`` ids resolve through the vendor's prices. An unknown
    model is ``None`` — never a price of zero.
    """
    if not model:
        return None
    with _registered_lock:
        registered = _registered.get((provider, model))
    if registered is not None:
        return registered
    table_provider = _PROVIDERS.get(provider)
    name = model
    if provider == "openrouter" or (table_provider is None and "/" in model):
        vendor, _, name = model.partition("/")
        table_provider = _OPENROUTER_VENDORS.get(vendor)
    if table_provider is None:
        return None
    table = _table()
    for candidate in _candidates(name, table_provider):
        price = table.get((table_provider, candidate))
        if price is not None:
            return price
    return None


def _candidates(name: str, provider: str) -> Iterator[str]:
    name = name.strip().lower().removeprefix("models/")
    yield name
    if provider == "anthropic" and "." in name:
        name = name.replace(".", "-")  # OpenRouter's claude-sonnet-4.5
        yield name
    for suffix in _SUFFIXES:
        stripped = suffix.sub("", name)
        if stripped != name:
            yield stripped
            if provider == "anthropic":
                yield stripped + "-0"  # claude-sonnet-4-20250514 -> claude-sonnet-4-0
                yield stripped + "-latest"  # claude-3-5-haiku-20241022
            break


@functools.cache
def _table() -> dict[tuple[str, str], ModelPrice]:
    text = importlib.resources.files("llm_connect").joinpath("_prices.csv").read_text()
    rows = csv.DictReader(
        line for line in text.splitlines() if not line.startswith("#")
    )
    return {(row["provider"], row["model"]): _row_price(row) for row in rows}


def _row_price(row: dict[str, str]) -> ModelPrice:
    cached = row["cached_input_per_mtok"] or None
    base = ModelPrice(row["input_per_mtok"], row["output_per_mtok"], cached)
    inputs = _parse_tiers(row["input_tiers"])
    outputs = _parse_tiers(row["output_tiers"])
    cached_tiers = _parse_tiers(row["cached_input_tiers"])
    tiers = [
        PriceTier(
            above,
            inputs[above],
            outputs.get(above, base.output),
            cached_tiers.get(above, base.cached_input),
        )
        for above in sorted(inputs)
    ]
    return attrs.evolve(base, tiers=tuple(tiers))


def _parse_tiers(text: str) -> dict[int, str]:
    tiers: dict[int, str] = {}
    for part in filter(None, re.split(r"[;\s]+", text)):
        threshold, _, price = part.lstrip(">").partition(":")
        tiers[int(threshold)] = price
    return tiers
