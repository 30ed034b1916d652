"""``RunConfig``: the per-call settings, and how a call's settings merge."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._budget import BudgetTracker
from .exceptions import LLMConfigurationError

if TYPE_CHECKING:
    from .pricing import ModelPrice

__all__ = ["DEFAULT_MAX_RETRIES", "DEFAULT_TIMEOUT", "RunConfig"]

#: Seconds a call may take, retries and waits included, unless configured.
DEFAULT_TIMEOUT = 600.0
#: Retries after the first attempt on a retryable failure, unless configured.
DEFAULT_MAX_RETRIES = 2


class _Unset:
    """The type of :data:`_UNSET`: "not given", as distinct from ``None``."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __reduce__(self) -> str:
        return "_UNSET"


_UNSET: Any = _Unset()

_DEFAULTS: dict[str, Any] = {
    "model": None,
    "system_prompt": None,
    "temperature": None,
    "top_p": None,
    "max_tokens": None,
    "stop": None,
    "timeout": DEFAULT_TIMEOUT,
    "max_retries": DEFAULT_MAX_RETRIES,
    "budget_tracker": None,
    "price": None,
    "extra_body": None,
    "extra_headers": None,
}
# Mapping fields merge key by key (the call's keys win); the others replace.
_MERGED_MAPPINGS = ("extra_body", "extra_headers")


@attrs.define(frozen=True, init=False)
class RunConfig:
    """Settings for a call. Every argument is keyword-only and optional.

    An adapter holds a ``default_config``; a call's config is merged over it:
    a field the call sets wins, a field it leaves unset falls through to the
    adapter's default, and ``extra_body`` / ``extra_headers`` merge key by key.
    Passing ``None`` explicitly *sets* the field to ``None`` (for example
    ``timeout=None`` removes the default deadline).

    Args:
        model: the provider's model name (``"gpt-4o-mini"``).
        system_prompt: instructions placed before the conversation.
        temperature: sampling temperature, 0 to 2.
        top_p: nucleus sampling mass, above 0 and at most 1.
        max_tokens: the most output tokens the model may produce (>= 1); also
            bounds the call's budget reservation.
        stop: a stop sequence or several.
        timeout: seconds for the whole call, budget wait, retries and backoff
            included (default 600; ``None`` for no limit).
        max_retries: retries after the first attempt on retryable failures
            (default 2; 0 disables retrying).
        budget_tracker: a :class:`~llm_connect.BudgetTracker` that must allow
            the call (its worst case is reserved first) and is charged for it.
        price: a :class:`~llm_connect.pricing.ModelPrice` that overrides the
            built-in price table for this call.
        extra_body: provider-specific fields merged into the request body.
        extra_headers: extra HTTP headers for the request.

    Raises:
        LLMConfigurationError: for an out-of-range or mistyped value.
    """

    model: str | None
    system_prompt: str | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    stop: tuple[str, ...] | None
    timeout: float | None
    max_retries: int
    budget_tracker: BudgetTracker | None
    price: ModelPrice | None
    extra_body: Mapping[str, Any] | None = attrs.field(hash=False)
    extra_headers: Mapping[str, str] | None = attrs.field(hash=False)
    _explicit: frozenset[str] = attrs.field(repr=False, eq=False, hash=False)

    def __init__(
        self,
        *,
        model: str | None = _UNSET,
        system_prompt: str | None = _UNSET,
        temperature: float | None = _UNSET,
        top_p: float | None = _UNSET,
        max_tokens: int | None = _UNSET,
        stop: str | Iterable[str] | None = _UNSET,
        timeout: float | None = _UNSET,
        max_retries: int = _UNSET,
        budget_tracker: BudgetTracker | None = _UNSET,
        price: ModelPrice | None = _UNSET,
        extra_body: Mapping[str, Any] | None = _UNSET,
        extra_headers: Mapping[str, str] | None = _UNSET,
    ) -> None:
        given = {
            "model": model,
            "system_prompt": system_prompt,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "stop": stop,
            "timeout": timeout,
            "max_retries": max_retries,
            "budget_tracker": budget_tracker,
            "price": price,
            "extra_body": extra_body,
            "extra_headers": extra_headers,
        }
        explicit = frozenset(k for k, v in given.items() if v is not _UNSET)
        self._assign({k: given[k] for k in explicit}, explicit)

    def _assign(self, values: Mapping[str, Any], explicit: frozenset[str]) -> None:
        for name, default in _DEFAULTS.items():
            value = values.get(name, default)
            if value is not None:
                value = _CHECKS[name](value)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_explicit", explicit)

    @property
    def explicit_fields(self) -> frozenset[str]:
        """The names of the fields this config sets (the rest fall through)."""
        return self._explicit

    def evolve(self, **changes: Any) -> RunConfig:
        """Return a copy with ``changes`` applied; the changed fields count as set.

        Raises:
            LLMConfigurationError: for an unknown field or a bad value.
        """
        unknown = set(changes) - _DEFAULTS.keys()
        if unknown:
            raise LLMConfigurationError(
                f"RunConfig has no field {', '.join(sorted(unknown))}; "
                f"the fields are {', '.join(_DEFAULTS)}."
            )
        values = {name: getattr(self, name) for name in self._explicit}
        values.update(changes)
        new = object.__new__(RunConfig)
        new._assign(values, self._explicit | changes.keys())
        return new

    def merged_over(self, base: RunConfig | None) -> RunConfig:
        """Return this config with the fields it leaves unset taken from ``base``.

        ``extra_body`` and ``extra_headers`` merge key by key, this config's
        keys winning.
        """
        if base is None or not base._explicit:
            return self
        if not self._explicit:
            return base
        values = {name: getattr(base, name) for name in base._explicit}
        for name in self._explicit:
            mine = getattr(self, name)
            theirs = values.get(name)
            if name in _MERGED_MAPPINGS and mine is not None and theirs is not None:
                mine = {**theirs, **mine}
            values[name] = mine
        new = object.__new__(RunConfig)
        new._assign(values, self._explicit | base._explicit)
        return new


def _fail(name: str, expected: str, value: object) -> LLMConfigurationError:
    return LLMConfigurationError(f"RunConfig.{name} must be {expected}, not {value!r}.")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_model(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail("model", "a non-empty str", value)
    return value


def _check_system_prompt(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail("system_prompt", "a str", value)
    return value


def _check_temperature(value: Any) -> float:
    if not _is_number(value) or not 0 <= value <= 2:
        raise _fail("temperature", "a number from 0 to 2", value)
    return float(value)


def _check_top_p(value: Any) -> float:
    if not _is_number(value) or not 0 < value <= 1:
        raise _fail("top_p", "a number above 0 and at most 1", value)
    return float(value)


def _check_max_tokens(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail("max_tokens", "an int of at least 1", value)
    return value


def _check_stop(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items: tuple[object, ...] = (value,)
    elif isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = tuple(value)
    else:
        raise _fail("stop", "a str or a sequence of str", value)
    stops = tuple(s for s in items if isinstance(s, str) and s)
    if not stops or len(stops) != len(items):
        raise _fail("stop", "one or more non-empty str", value)
    return stops


def _check_timeout(value: Any) -> float:
    if not _is_number(value) or not 0 < value < math.inf:
        raise _fail("timeout", "a positive number of seconds, or None", value)
    return float(value)


def _check_max_retries(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail("max_retries", "an int of at least 0", value)
    return value


def _check_budget_tracker(value: Any) -> BudgetTracker:
    if not isinstance(value, BudgetTracker):
        raise _fail("budget_tracker", "a BudgetTracker", value)
    return value


def _check_price(value: Any) -> ModelPrice:
    from .pricing import ModelPrice  # noqa: PLC0415 - the price table stays lazy

    if not isinstance(value, ModelPrice):
        raise _fail("price", "a pricing.ModelPrice", value)
    return value


def _check_extra_body(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _fail("extra_body", "a mapping with str keys", value)
    return dict(value)


def _check_extra_headers(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _fail("extra_headers", "a mapping of str to str", value)
    return dict(value)


_CHECKS: dict[str, Any] = {
    "model": _check_model,
    "system_prompt": _check_system_prompt,
    "temperature": _check_temperature,
    "top_p": _check_top_p,
    "max_tokens": _check_max_tokens,
    "stop": _check_stop,
    "timeout": _check_timeout,
    "max_retries": _check_max_retries,
    "budget_tracker": _check_budget_tracker,
    "price": _check_price,
    "extra_body": _check_extra_body,
    "extra_headers": _check_extra_headers,
}
