"""``FakeAdapter``: scripted answers through the real Core path."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

import anyio
import attrs

from llm_connect._adapter import LLMAdapter
from llm_connect._budget import Unit, to_amount
from llm_connect._config import RunConfig
from llm_connect._models import LLMResponse, Message, Usage
from llm_connect._tokens import estimate_tokens
from llm_connect.exceptions import LLMConfigurationError

__all__ = ["FakeAdapter", "FakeCall", "Responder"]

#: A function that writes the answer from the conversation and the config.
Responder = Callable[[Sequence[Message], RunConfig], "str | Awaitable[str]"]


@attrs.frozen
class FakeCall:
    """One call a :class:`FakeAdapter` served.

    Attributes:
        messages: the conversation it received (system prompt first, if any).
        config: the merged config of the call.
    """

    messages: tuple[Message, ...]
    config: RunConfig

    @property
    def prompt(self) -> str:
        """The text of the last user message."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return ""


class FakeAdapter(LLMAdapter):
    """An adapter that answers from a script. Use it to test your own code.

    Args:
        responses: a ``str`` served every time; a list of ``str`` and
            exceptions served in order (an exception is raised when its turn
            comes; running out raises :class:`LLMConfigurationError`); or a
            function ``(messages, config) -> str`` (it may be async).
        usage: the :class:`Usage` every call reports; by default counted from
            the text (one token per four characters, rounded up).
        cost: the USD cost every call reports, the way a provider that reports
            its charge does.
        reserve: the worst case the budget reserves for each call, in the
            budget's unit (default: ``cost`` for a USD budget; for a token
            budget, the Core's usual bound).
        delay: seconds each call waits (``anyio.sleep``) before answering.
        model: the model named in responses when the config names none.
        default_config: as for every adapter.

    Attributes:
        calls: the calls served so far, in order (:class:`FakeCall`).
    """

    provider = "fake"
    requires_model = False

    def __init__(
        self,
        responses: str | Sequence[str | BaseException] | Responder = "ok",
        *,
        usage: Usage | None = None,
        cost: Decimal | None = None,
        reserve: Decimal | int | None = None,
        delay: float = 0.0,
        model: str = "fake-model",
        default_config: RunConfig | None = None,
    ) -> None:
        super().__init__(default_config=default_config)
        script: object = responses
        if not (isinstance(script, (str, Sequence)) or callable(script)):
            raise LLMConfigurationError(
                "FakeAdapter responses must be a str, a list of str and "
                f"exceptions, or a function; not {type(responses).__name__}."
            )
        given: dict[str, object] = {"usage": usage, "cost": cost, "delay": delay}
        if given["usage"] is not None and not isinstance(given["usage"], Usage):
            raise LLMConfigurationError("FakeAdapter usage must be a Usage.")
        if given["cost"] is not None and not isinstance(given["cost"], Decimal):
            raise LLMConfigurationError(
                "FakeAdapter cost must be a Decimal (money is never a float)."
            )
        seconds = given["delay"]
        if type(seconds) not in (int, float) or not 0 <= delay < float("inf"):
            raise LLMConfigurationError("FakeAdapter delay must be >= 0 seconds.")
        self.responses = responses
        self.usage = usage
        self.cost = cost
        self.reserve = None if reserve is None else to_amount(reserve, "reserve")
        self.delay = float(delay)
        self.model = model
        self.calls: list[FakeCall] = []
        self._lock = threading.Lock()
        self._next_index = 0

    def __repr__(self) -> str:
        return f"<FakeAdapter model={self.model!r} calls={len(self.calls)}>"

    def _worst_case(
        self, messages: Sequence[Message], config: RunConfig, unit: Unit
    ) -> Decimal | None:
        if self.reserve is not None:
            return self.reserve
        if unit == "usd" and self.cost is not None:
            return self.cost
        return super()._worst_case(messages, config, unit)

    async def _call_provider(
        self, messages: Sequence[Message], config: RunConfig
    ) -> LLMResponse:
        if self.delay:
            await anyio.sleep(self.delay)
        script = self.responses
        if isinstance(script, str):
            answer: str | BaseException = script
        elif isinstance(script, Sequence):
            with self._lock:
                index = self._next_index
                if index >= len(script):
                    raise LLMConfigurationError(
                        f"FakeAdapter has served all {len(script)} scripted "
                        f"responses; script one per expected call."
                    )
                self._next_index += 1
            answer = script[index]
        else:
            produced = script(messages, config)
            answer = await produced if inspect.isawaitable(produced) else produced
        with self._lock:
            self.calls.append(FakeCall(tuple(messages), config))
            number = len(self.calls)
        if isinstance(answer, BaseException):
            raise answer
        if not isinstance(answer, str):
            raise LLMConfigurationError(
                f"A FakeAdapter response must be a str, not {type(answer).__name__}."
            )
        return LLMResponse(
            text=answer,
            model=config.model or self.model,
            provider=self.provider,
            usage=self.usage or _count_usage(messages, answer),
            cost=self.cost,
            finish_reason="stop",
            raw={"text": answer},
            request_id=f"fake-{number}",
        )


def _count_usage(messages: Sequence[Message], answer: str) -> Usage:
    prompt_tokens = sum(estimate_tokens(m.content) for m in messages)
    answer_tokens = estimate_tokens(answer)
    return Usage(prompt_tokens, answer_tokens, prompt_tokens + answer_tokens)
