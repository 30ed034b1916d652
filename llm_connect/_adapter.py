"""``LLMAdapter``: the one path every call takes, whatever the provider."""

from __future__ import annotations

import abc
import functools
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

import anyio

from ._budget import BudgetTracker, Reservation, Unit, _current_hold
from ._config import RunConfig
from ._models import LLMResponse, Message, Prompt
from ._sync import SyncRunner, in_anyio_worker_thread
from ._tokens import max_input_tokens
from .exceptions import LLMConfigurationError, LLMError, LLMTimeoutError

if TYPE_CHECKING:
    from typing_extensions import Self

    from .pricing import ModelPrice

__all__ = ["DEFAULT_RESERVED_OUTPUT_TOKENS", "UNPRICED_HOLD_USD", "LLMAdapter"]

#: The output limit of a budgeted call that sets no ``max_tokens``: it is
#: reserved, and sent to the provider, so the reservation is a true worst case.
DEFAULT_RESERVED_OUTPUT_TOKENS = 4096
#: USD held for a call whose price is unknown but whose provider reports what
#: it charged (OpenRouter, Claude Code); less if the budget has less room.
UNPRICED_HOLD_USD = Decimal("0.50")


class LLMAdapter(abc.ABC):
    """Base class of every adapter: one way to call a model, async or sync.

    A subclass implements :meth:`_call_provider` for its provider and inherits
    the rest: config merging, validation before any I/O, the deadline, the
    budget, and the sync shim. See docs/core-contract.md for the contract.

    Args:
        default_config: settings for every call; a call's own config is merged
            over it, field by field.
    """

    #: The name put in ``LLMResponse.provider`` and in error messages.
    provider: ClassVar[str] = "custom"
    #: Whether a call must name a model (in the call's or the default config).
    requires_model: ClassVar[bool] = True
    #: Whether the provider reports what each call was charged. Such calls may
    #: run on a USD budget without a known price (see docs/budget.md).
    reports_cost: ClassVar[bool] = False

    def __init__(self, *, default_config: RunConfig | None = None) -> None:
        given: object = default_config
        if given is not None and not isinstance(given, RunConfig):
            raise LLMConfigurationError(
                f"default_config must be a RunConfig, not {type(given).__name__}."
            )
        self._default_config = default_config or RunConfig()
        self._sync = SyncRunner(type(self).__name__)
        self._closed = False
        # The last config a budgeted call evolved to set max_tokens, and the
        # result: calls with the same config reuse it (RunConfig is frozen).
        self._reserving: tuple[RunConfig, RunConfig] | None = None

    @property
    def default_config(self) -> RunConfig:
        """The settings every call starts from."""
        return self._default_config

    # -- calling ---------------------------------------------------------

    async def async_execute_prompt(
        self, prompt: Prompt, config: RunConfig | None = None
    ) -> LLMResponse:
        """Send ``prompt`` and return the model's answer.

        Args:
            prompt: a user prompt, or a conversation as a sequence of
                :class:`Message`.
            config: settings for this call, merged over ``default_config``.

        Raises:
            LLMConfigurationError: bad prompt or settings (nothing was sent).
            LLMTimeoutError: ``config.timeout`` passed.
            LLMError: any other failure, as its most specific subclass.
        """
        config = self._merge(config)
        messages = _build_messages(prompt, config)
        self._validate(messages, config)
        # The rest of the call is inline rather than in a helper coroutine:
        # every frame on the stack is resumed each time the call waits on I/O.
        tracker = config.budget_tracker
        hold = Decimal(0)
        if tracker is not None:
            if config.max_tokens is None:
                config = self._with_reserved_output(config)
            hold = self._hold(messages, config, tracker)
        # move_on_after, not CancelScope(deadline=...): on trio the latter
        # builds two native scopes (anyio 4.x), and this runs on every call.
        with anyio.move_on_after(config.timeout) as scope:
            reservation = None
            if tracker is not None:
                reservation = await tracker.areserve(hold)
            usd_hold = hold if tracker is not None and tracker.unit == "usd" else None
            hold_token = _current_hold.set(usd_hold)
            started = time.perf_counter()
            try:
                response = await self._call_provider(messages, config)
            except LLMError as exc:
                _settle_failed(reservation, exc)
                raise
            except Exception as exc:
                _settle_failed(reservation, None)
                raise LLMError(
                    f"{type(self).__name__} failed unexpectedly: "
                    f"{type(exc).__name__}: {exc}",
                    provider=self.provider,
                ) from exc
            except BaseException:  # cancelled, or the deadline passed
                _settle_failed(reservation, None)
                raise
            finally:
                _current_hold.reset(hold_token)
            try:
                response = self._finish(response, config, time.perf_counter() - started)
            except BaseException:
                _settle_failed(reservation, None)
                raise
            if reservation is not None:
                reservation.commit(_actual_cost(response, reservation))
            return response
        # Only reached when the deadline cancelled the call.
        assert scope.cancelled_caught
        raise LLMTimeoutError(
            f"The call to {self.provider} did not finish within "
            f"{config.timeout:g} s (RunConfig.timeout, budget wait and retries "
            f"included); raise the timeout or lower max_tokens.",
            timeout=config.timeout,
            provider=self.provider,
        )

    def execute_prompt(
        self, prompt: Prompt, config: RunConfig | None = None
    ) -> LLMResponse:
        """Blocking form of :meth:`async_execute_prompt`, for code that is not async.

        Safe from plain scripts, from many threads at once, from anyio worker
        threads (it then runs on the host loop) and from a thread that is
        running an event loop (as in Jupyter). Same arguments, result and errors.
        """
        self._check_open()
        return self._sync.run(self.async_execute_prompt, prompt, config)

    # -- what a subclass implements ----------------------------------------

    @abc.abstractmethod
    async def _call_provider(
        self, messages: Sequence[Message], config: RunConfig
    ) -> LLMResponse:
        """Send one validated request to the provider and parse the answer.

        Called by the Core inside the call's deadline. ``messages`` is the
        whole conversation, with ``config.system_prompt`` (if any) already
        placed first as a system message; ``config`` is the merged, validated
        config. Retry inside here if the provider's failures warrant it.

        Returns:
            the parsed response. Leave ``cost`` as ``None`` unless the
            provider reported what it charged; ``latency_s`` is filled in
            by the Core.

        Raises:
            LLMError: a subclass for every failure. Anything else is wrapped
            in :class:`LLMError` by the Core.
        """

    def _validate(self, messages: Sequence[Message], config: RunConfig) -> None:
        """Reject input this provider cannot take, before any I/O.

        The default checks that a model is named when :attr:`requires_model`
        is set. Override to add checks; call ``super()._validate`` first.

        Raises:
            LLMConfigurationError: with what is wrong and how to fix it.
        """
        if self.requires_model and config.model is None:
            raise LLMConfigurationError(
                f"No model set for {type(self).__name__}: pass "
                f"RunConfig(model=...) as the call's config or in default_config."
            )

    def _worst_case(
        self, messages: Sequence[Message], config: RunConfig, unit: Unit
    ) -> Decimal | None:
        """The most this call could cost, in ``unit``; ``None`` if unknown.

        The default bounds the input by :func:`max_input_tokens` and the
        output by ``config.max_tokens``; in USD it prices both with
        ``config.price`` or the built-in table (``None`` when neither knows
        the model). Override when the provider bounds cost differently.
        """
        output = config.max_tokens or DEFAULT_RESERVED_OUTPUT_TOKENS
        input_tokens = max_input_tokens(m.content for m in messages)
        if unit == "tokens":
            return Decimal(input_tokens + output)
        price = self._price(config, config.model)
        return None if price is None else price.worst_case(input_tokens, output)

    def _price(self, config: RunConfig, model: str | None) -> ModelPrice | None:
        """The price of ``model`` for this call: ``config.price``, else the table."""
        if config.price is not None:
            return config.price
        return _price_lookup()(self.provider, model)

    async def _aclose_resources(self) -> None:  # noqa: B027 - optional hook
        """Release what the adapter holds for the *current* event loop.

        Called by :meth:`aclose` on the caller's loop and by :meth:`close` on
        the sync shim's loop. The default holds nothing.
        """

    # -- lifecycle -------------------------------------------------------

    async def aclose(self) -> None:
        """Release connections and stop the sync shim's loop thread. Idempotent."""
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._aclose_resources()
            await anyio.to_thread.run_sync(self._sync.close, self._aclose_resources)

    def close(self) -> None:
        """Blocking form of :meth:`aclose`."""
        self._closed = True
        if in_anyio_worker_thread():
            anyio.from_thread.run(self._aclose_resources)
        self._sync.close(self._aclose_resources)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        model = self._default_config.model
        return f"<{type(self).__name__} model={model!r}>"

    # -- the Core path -----------------------------------------------------

    def _merge(self, config: RunConfig | None) -> RunConfig:
        self._check_open()
        if config is None:
            return self._default_config
        given: object = config
        if not isinstance(given, RunConfig):
            raise LLMConfigurationError(
                f"config must be a RunConfig, not {type(given).__name__}."
            )
        return config.merged_over(self._default_config)

    def _check_open(self) -> None:
        if self._closed:
            raise LLMConfigurationError(
                f"This {type(self).__name__} is closed; create a new adapter "
                f"(or keep it open until every call is done)."
            )

    def _with_reserved_output(self, config: RunConfig) -> RunConfig:
        """``config`` with ``max_tokens=DEFAULT_RESERVED_OUTPUT_TOKENS``."""
        reserving = self._reserving
        if reserving is not None and reserving[0] is config:
            return reserving[1]
        evolved = config.evolve(max_tokens=DEFAULT_RESERVED_OUTPUT_TOKENS)
        self._reserving = (config, evolved)
        return evolved

    def _hold(
        self, messages: Sequence[Message], config: RunConfig, tracker: BudgetTracker
    ) -> Decimal:
        """What to reserve for this call on ``tracker`` (before any I/O)."""
        worst = self._worst_case(messages, config, tracker.unit)
        if worst is not None:
            return worst
        if tracker.unit == "tokens":
            raise LLMConfigurationError(
                f"{type(self).__name__} cannot bound the tokens of this call, so "
                f"a token budget cannot hold it; use a USD budget.",
                provider=self.provider,
            )
        if not self.reports_cost:
            raise LLMConfigurationError(
                f"No price is known for model {config.model!r} of {self.provider}, "
                f"so a USD budget cannot bound this call. Pass "
                f"RunConfig(price=pricing.ModelPrice(input=..., output=...)) (USD "
                f"per million tokens), register the price with "
                f"llm_connect.pricing.register(), or use a token budget."
            )
        room = tracker.room()
        return min(UNPRICED_HOLD_USD, room) if room > 0 else UNPRICED_HOLD_USD

    def _finish(
        self, response: LLMResponse, config: RunConfig, latency: float
    ) -> LLMResponse:
        """Stamp the latency, and the cost when the provider did not report one."""
        returned: object = response  # custom adapters may not be typed
        if not isinstance(returned, LLMResponse):
            raise LLMError(
                f"{type(self).__name__} returned {type(returned).__name__} where "
                f"an LLMResponse was expected.",
                provider=self.provider,
            )
        cost = response.cost
        if cost is None:
            price = self._price(config, response.model) or self._price(
                config, config.model
            )
            if price is not None:
                cost = price.cost(response.usage)
        # attrs.evolve(response, latency_s=latency, cost=cost), spelled out:
        # evolve looks up the fields on every call (tests pin every field).
        return LLMResponse(
            text=response.text,
            model=response.model,
            provider=response.provider,
            usage=response.usage,
            cost=cost,
            finish_reason=response.finish_reason,
            raw=response.raw,
            request_id=response.request_id,
            latency_s=latency,
        )


@functools.cache
def _price_lookup() -> Callable[[str, str | None], ModelPrice | None]:
    """``pricing.lookup``, imported on first use (the price table stays lazy)."""
    from . import pricing  # noqa: PLC0415

    return pricing.lookup


def _settle_failed(reservation: Reservation | None, error: LLMError | None) -> None:
    """Release a failed call's hold, or commit what it was charged anyway."""
    if reservation is None or reservation.settled:
        return
    charged = error.cost if error is not None else None
    if charged is not None and reservation.tracker.unit == "usd":
        reservation.commit(charged)
    else:
        reservation.release()


def _actual_cost(response: LLMResponse, reservation: Reservation) -> Decimal:
    """What a successful call is charged; an unknown amount counts as the hold."""
    if reservation.tracker.unit == "tokens":
        used = response.usage.total_tokens
        return Decimal(used) if used > 0 else reservation.amount
    return response.cost if response.cost is not None else reservation.amount


def _build_messages(prompt: Prompt, config: RunConfig) -> tuple[Message, ...]:
    """Turn a prompt into the conversation the provider receives."""
    given: object = prompt  # checked at run time: callers may not be typed
    if isinstance(given, str):
        if not given.strip():
            raise LLMConfigurationError("The prompt is empty; pass some text.")
        turns: tuple[Message, ...] = (Message("user", given),)
    elif isinstance(given, Sequence) and not isinstance(given, (bytes, bytearray)):
        items: tuple[object, ...] = tuple(given)
        for i, turn in enumerate(items):
            if not isinstance(turn, Message):
                raise LLMConfigurationError(
                    f"prompt[{i}] is a {type(turn).__name__}; a conversation is a "
                    f"sequence of Message(role, content)."
                )
        turns = tuple(turn for turn in items if isinstance(turn, Message))
        if not any(turn.role != "system" for turn in turns):
            raise LLMConfigurationError(
                "The conversation has no user or assistant message; add at "
                "least one Message('user', ...)."
            )
    else:
        raise LLMConfigurationError(
            f"prompt must be a str or a sequence of Message, not "
            f"{type(given).__name__}."
        )
    if config.system_prompt:
        return (Message("system", config.system_prompt), *turns)
    return turns
