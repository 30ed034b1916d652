"""The one helper every HTTP adapter shares.

:class:`HTTPAdapter` holds what the OpenAI, Gemini and OpenRouter adapters have
in common: the API key and ``base_url`` checks, one ``httpx.AsyncClient`` per
event loop, the request/retry loop (backoff with jitter, ``retry-after``,
``retry-after-ms`` and body-given waits, all inside the call's deadline), the
status -> exception mapping (through :mod:`llm_connect._errors`), transport
error mapping, key scrubbing and DEBUG logging without secrets.

A provider module implements three methods: :meth:`HTTPAdapter._build_request`,
:meth:`HTTPAdapter._parse_success` and :meth:`HTTPAdapter._parse_error`.
"""

from __future__ import annotations

import abc
import email.utils
import json
import logging
import math
import os
import random
import re
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar, NoReturn

import anyio
import anyio.lowlevel
import attrs
import httpx

from llm_connect import __version__
from llm_connect._adapter import LLMAdapter
from llm_connect._config import RunConfig
from llm_connect._errors import (
    RETRYABLE_STATUSES,
    error_class_for_status,
    provider_error,
    scrub,
)
from llm_connect._models import LLMResponse, Message
from llm_connect.exceptions import (
    LLMAuthenticationError,
    LLMBadRequestError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMProviderError,
    LLMRateLimitError,
    LLMResponseError,
    LLMServerError,
)

from ._transport import DefaultClient, NoCookies, environment_proxies

__all__ = [
    "ErrorInfo",
    "HTTPAdapter",
    "HTTPRequest",
    "as_count",
    "as_dict",
    "as_list",
    "as_str",
    "backoff",
    "merge_body",
    "parse_retry_after",
]

log = logging.getLogger("llm_connect.adapters")

#: First backoff wait, in seconds; doubled on every further retry.
BASE_DELAY = 0.5
#: Longest computed backoff wait, in seconds.
MAX_DELAY = 8.0
#: Up to this fraction of a computed wait is taken off at random (jitter).
JITTER = 0.25
#: Longest wait a provider may ask for that is still honoured, in seconds;
#: a longer one (a daily quota, say) raises at once, with ``retry_after`` set.
MAX_PROVIDER_WAIT = 120.0
#: Seconds ``aclose()`` gives an HTTP client to close its connections.
CLOSE_GRACE = 5.0
#: Characters of an unreadable body quoted in an error message.
EXCERPT_CHARS = 300
#: Connection pools of the default client, and connections in each (all kept
#: alive); see :class:`PooledTransport`. 100 connections at most in all.
POOLS = 100
POOL_CONNECTIONS = 1

#: Distinct header sets an adapter keeps built (see ``HTTPAdapter._headers``).
_HEADER_CACHE_SIZE = 32
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_HEADER_VALUE = re.compile(r"[\r\n\0]")
_USER_AGENT = f"llm-connect/{__version__} python-httpx/{httpx.__version__}"

# Header names whose values are secrets when passed in extra_headers.
_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
    }
)


async def _sleep(seconds: float) -> None:
    """Wait between attempts (tests patch this)."""
    await anyio.sleep(seconds)


#: Source of jitter, in [0, 1) (tests patch this).
_random = random.random


@attrs.frozen
class HTTPRequest:
    """One request, as a provider module builds it.

    Attributes:
        url: the absolute URL to POST to.
        headers: the request headers (auth, provider headers, extra_headers).
        body: the JSON body.
    """

    url: httpx.URL
    headers: httpx.Headers
    body: Mapping[str, Any]


@attrs.frozen
class ErrorInfo:
    """What a provider said in an error body.

    Attributes:
        message: the provider's own message.
        code: the provider's error code or type (``"insufficient_quota"``).
        retry_after: a wait the body asked for (Gemini's ``RetryInfo``), seconds.
        exhausted: the account is out of quota or credit; retrying cannot fix it.
        error_class: the error to raise instead of the status table's choice.
        request_id: the provider's request id, if the body carried one.
        cost: USD the failed call was nevertheless charged, if reported.
    """

    message: str
    code: str | None = None
    retry_after: float | None = None
    exhausted: bool = False
    error_class: type[LLMProviderError] | None = None
    request_id: str | None = None
    cost: Decimal | None = None


class _AttemptFailed(Exception):
    """Internal: one attempt failed with ``error``; may it be retried?"""

    def __init__(
        self,
        error: LLMError,
        *,
        retryable: bool,
        wait: float | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = retryable
        self.wait = wait
        self.cause = cause


class HTTPAdapter(LLMAdapter):
    """Base class of the adapters that call a provider's HTTP API with httpx.

    Args:
        api_key: the provider's API key; ``None`` reads it from the
            environment (:attr:`key_env_vars`, first one set wins).
        base_url: the API's root URL (``http://`` or ``https://``).
        default_config: settings for every call.
        http_client: an ``httpx.AsyncClient`` to send with. It is used as is
            (its timeouts, proxies and limits apply) and never closed by the
            adapter; like every httpx client it may only be used from the
            event loop it belongs to. ``None`` (the default) makes one client
            per event loop, closed by ``aclose()`` / ``close()``.

    Raises:
        LLMConfigurationError: no API key where one is needed, a key that
            cannot be sent in a header, a malformed ``base_url`` or an
            ``http_client`` that is not an ``httpx.AsyncClient``.
    """

    #: The provider's name for people (``"OpenAI"``).
    display_name: ClassVar[str] = "the provider"
    #: Environment variables that may hold the key, most specific first.
    key_env_vars: ClassVar[tuple[str, ...]] = ()
    #: Response headers that carry the provider's request id.
    request_id_headers: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str,
        default_config: RunConfig | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(default_config=default_config)
        self._base_url = _check_base_url(base_url)
        self._api_key = self._resolve_key(api_key)
        given_client: object = http_client
        if given_client is not None and not isinstance(given_client, httpx.AsyncClient):
            raise LLMConfigurationError(
                f"http_client must be an httpx.AsyncClient, not "
                f"{type(given_client).__name__}."
            )
        self._own_client = http_client
        self._clients = _ClientPool()
        self._header_cache: dict[tuple[object, ...], httpx.Headers] = {}

    # -- what a provider module implements ---------------------------------

    @abc.abstractmethod
    def _build_request(
        self, messages: Sequence[Message], config: RunConfig
    ) -> HTTPRequest:
        """Return the request for ``messages`` under ``config``."""

    @abc.abstractmethod
    def _parse_success(
        self, data: Mapping[str, Any], response: httpx.Response, config: RunConfig
    ) -> LLMResponse:
        """Turn a 2xx JSON object into a response.

        Raise :class:`LLMResponseError` for a shape that cannot be read, or
        call :meth:`_fail` for an error the provider put inside a 2xx body.
        """

    @abc.abstractmethod
    def _parse_error(self, data: object, status: int) -> ErrorInfo | None:
        """Read an error body (parsed JSON, any shape); ``None`` if unknown."""

    def _key_required(self) -> bool:
        """Whether a call needs an API key (it does unless overridden)."""
        return True

    @property
    def _name(self) -> str:
        """Who answered, for messages: the provider, or the server's address."""
        return self.display_name

    # -- shared pieces for provider modules ----------------------------------

    @property
    def base_url(self) -> str:
        """The API's root URL, as given (without a trailing slash)."""
        return str(self._base_url).rstrip("/")

    def _endpoint(self, path: str) -> httpx.URL:
        """Return ``base_url`` with ``path`` appended (any query is kept)."""
        return self._base_url.copy_with(
            path=self._base_url.path.rstrip("/") + "/" + path
        )

    def _headers(
        self, auth: Mapping[str, str], config: RunConfig, **extra: str | None
    ) -> httpx.Headers:
        """Return the request headers: JSON, ``auth``, ``extra``, then extra_headers.

        ``config.extra_headers`` come last and win (names compare without case).
        The result is shared by the calls that send the same headers: do not
        change it.
        """
        key = (
            tuple(auth.items()),
            tuple(extra.items()),
            tuple(config.extra_headers.items()) if config.extra_headers else (),
        )
        cached = self._header_cache.get(key)
        if cached is not None:
            return cached
        headers = httpx.Headers(
            {
                "content-type": "application/json",
                "accept": "application/json",
                "user-agent": _USER_AGENT,
            }
        )
        for name, value in (*auth.items(), *extra.items()):
            if value is not None:
                headers[name] = value
        for name, value in (config.extra_headers or {}).items():
            headers[name] = value
        if len(self._header_cache) >= _HEADER_CACHE_SIZE:
            self._header_cache.clear()
        self._header_cache[key] = headers
        return headers

    def _fail(
        self,
        status: int,
        info: ErrorInfo,
        response: httpx.Response | None = None,
    ) -> NoReturn:
        """Raise the error for ``status``; the retry loop decides what follows."""
        raise self._status_failure(status, info, response)

    def _response_error(
        self, what: str, response: httpx.Response | None = None
    ) -> LLMResponseError:
        """Return the error for an answer that cannot be understood."""
        body = (
            self._scrub(response.text, _sent_headers(response))
            if response is not None
            else None
        )
        excerpt = _excerpt(body) if body else ""
        hint = ""
        if response is not None and "event-stream" in response.headers.get(
            "content-type", ""
        ):
            hint = (
                " It answered with a stream; llm-connect makes non-streaming "
                "calls, so remove 'stream' from extra_body."
            )
        return LLMResponseError(
            f"{self._name} sent an answer llm-connect cannot read: {what}."
            f"{hint}{' Received: ' + excerpt if excerpt else ''} If this persists, "
            f"report it with the body attached (LLMResponseError.body).",
            body=body,
            provider=self.provider,
        )

    # -- the Core hooks --------------------------------------------------------

    def _validate(self, messages: Sequence[Message], config: RunConfig) -> None:
        super()._validate(messages, config)
        if config.extra_body and config.extra_body.get("stream"):
            raise LLMConfigurationError(
                f"extra_body sets 'stream'; {type(self).__name__} makes "
                f"non-streaming calls only. Remove 'stream' from extra_body."
            )
        for name, value in (config.extra_headers or {}).items():
            if not _HEADER_NAME.match(name) or _BAD_HEADER_VALUE.search(value):
                # The value is not shown: it may be a secret.
                raise LLMConfigurationError(
                    f"RunConfig.extra_headers[{name!r}] cannot be sent as an HTTP "
                    f"header (a name must be a token; a value must not contain "
                    f"line breaks or NUL)."
                )

    async def _call_provider(
        self, messages: Sequence[Message], config: RunConfig
    ) -> LLMResponse:
        request = self._build_request(messages, config)
        try:
            content = json.dumps(
                request.body, ensure_ascii=False, allow_nan=False, separators=(",", ":")
            ).encode()
        except (TypeError, ValueError) as exc:
            raise LLMConfigurationError(
                f"The request body cannot be sent as JSON ({exc}); check the "
                f"values in RunConfig.extra_body."
            ) from exc
        # The request/retry loop. It is inline, not in helper coroutines:
        # every frame on the stack is resumed each time the call waits on I/O.
        client = self._own_client
        if client is None:
            client = self._clients.get()
        fast = client if isinstance(client, DefaultClient) else None
        attempts = config.max_retries + 1
        charged: Decimal | None = None
        attempt = 0
        while True:
            attempt += 1
            debug = log.isEnabledFor(logging.DEBUG)
            if debug:
                self._log_attempt(request, attempt, attempts)
                started = time.perf_counter()
            try:
                try:
                    if fast is not None:
                        response = await fast.post_content(
                            request.url,
                            content,
                            request.headers,
                            under_deadline=config.timeout is not None,
                        )
                    else:
                        response = await client.post(
                            request.url, content=content, headers=request.headers
                        )
                except httpx.RequestError as exc:
                    raise self._transport_failure(exc, request) from exc
                if debug:
                    _log_answer(self.provider, response, started)
                result = self._handle(response, config)
            except LLMError as unretried:  # an unreadable answer, say
                if charged is not None:
                    unretried.cost = (unretried.cost or Decimal(0)) + charged
                raise
            except _AttemptFailed as failure:
                error = failure.error
                if error.cost is not None:
                    charged = (charged or Decimal(0)) + error.cost
                wait = self._next_wait(failure, attempt, attempts)
                if wait is None:
                    error.cost = charged
                    raise error from failure.cause
                log.debug(
                    "%s: attempt %d of %d failed (%s); retrying in %.2f s",
                    self.provider,
                    attempt,
                    attempts,
                    error.message,
                    wait,
                )
                await _sleep(wait)
                continue
            if charged is not None:
                result = attrs.evolve(
                    result, cost=(result.cost or Decimal(0)) + charged
                )
            return result

    async def _aclose_resources(self) -> None:
        client = self._clients.pop_current()
        if client is not None:
            with anyio.move_on_after(CLOSE_GRACE, shield=True):
                await client.aclose()

    def __repr__(self) -> str:
        model = self.default_config.model
        shown = self._base_url.copy_with(username=None, password=None)
        return (
            f"<{type(self).__name__} model={model!r} "
            f"base_url={str(shown).rstrip('/')!r}>"
        )

    def _log_attempt(self, request: HTTPRequest, attempt: int, attempts: int) -> None:
        log.debug(
            "%s: POST %s (attempt %d of %d)",
            self.provider,
            self._scrub(str(request.url), request.headers),
            attempt,
            attempts,
        )

    def _handle(self, response: httpx.Response, config: RunConfig) -> LLMResponse:
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("location", "another address")
            self._fail(
                status,
                ErrorInfo(
                    f"the request was redirected to {location}; llm-connect does "
                    f"not follow redirects (they could carry the API key to "
                    f"another host). Set base_url to the final address"
                ),
                response,
            )
        try:
            data: object = json.loads(response.content)
        except ValueError:
            data = None
        if status >= 400:
            info = self._parse_error(data, status) if data is not None else None
            if info is None:
                text = response.text.strip()
                info = ErrorInfo(_excerpt(text) if text else "(empty body)")
            self._fail(status, info, response)
        if not isinstance(data, dict):
            if not response.content.strip():
                what = "an empty body"
            else:
                what = "not JSON" if data is None else "JSON, but not an object"
            raise self._response_error(what, response)
        try:
            return self._parse_success(data, response, config)
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            # A parser must not let these out; this is the safety net.
            raise self._response_error(
                f"{type(exc).__name__}: {exc}", response
            ) from exc

    def _next_wait(
        self, failure: _AttemptFailed, attempt: int, attempts: int
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up."""
        error = failure.error
        if not failure.retryable:
            return None
        if attempt >= attempts:
            if attempts > 1:
                error.message += f" Gave up after {attempts} attempts."
            return None
        if failure.wait is not None:
            wait = failure.wait
            if wait > MAX_PROVIDER_WAIT:
                error.message += f" Not retried: the server asked to wait {wait:g} s."
                return None
        else:
            wait = backoff(attempt)
        if anyio.current_time() + wait > anyio.current_effective_deadline():
            error.message += (
                f" Not retried: waiting {wait:g} s would pass the call's deadline "
                f"(RunConfig.timeout)."
            )
            return None
        return wait

    # -- building errors -----------------------------------------------------

    def _status_failure(
        self, status: int, info: ErrorInfo, response: httpx.Response | None
    ) -> _AttemptFailed:
        headers = response.headers if response is not None else httpx.Headers()
        wait = parse_retry_after(headers)
        if wait is None:
            wait = info.retry_after
        request_id = info.request_id or self._header_request_id(headers)
        exhausted = info.exhausted or status == 402
        error_class = info.error_class
        should_retry = headers.get("x-should-retry", "").strip().lower()
        if exhausted or should_retry == "false":
            retryable = False
        else:
            retryable = status in RETRYABLE_STATUSES or should_retry == "true"
        message = self._error_message(
            status, info, error_class, exhausted=exhausted, request_id=request_id
        )
        body = response.text if response is not None else None
        error = provider_error(
            status,
            message,
            provider=self.provider,
            code=info.code,
            request_id=request_id,
            retry_after=wait,
            body=body,
            secrets=self._secrets(_sent_headers(response)),
            error_class=error_class,
            cost=info.cost,
        )
        return _AttemptFailed(error, retryable=retryable, wait=wait)

    def _error_message(
        self,
        status: int,
        info: ErrorInfo,
        error_class: type[LLMProviderError] | None,
        *,
        exhausted: bool,
        request_id: str | None,
    ) -> str:
        cls = error_class or error_class_for_status(status)
        code = f" ({info.code})" if info.code else ""
        said = info.message.strip().rstrip(".")
        if exhausted:
            advice = (
                "The account is out of quota or credit, so retrying will not "
                "help: check the plan and billing."
            )
        elif issubclass(cls, LLMAuthenticationError):
            where = " or ".join(self.key_env_vars) or "the api_key argument"
            advice = (
                f"Check the API key (api_key=... or {where}) and that it may use "
                f"this model."
            )
        elif issubclass(cls, LLMRateLimitError):
            advice = "Slow down, or raise RunConfig.max_retries and timeout."
        elif issubclass(cls, LLMBadRequestError):
            advice = "Fix the request: check the model name and the RunConfig values."
        elif issubclass(cls, LLMServerError):
            advice = f"{self._name} failed; retrying later may work."
        else:
            advice = ""
        rid = f" [request id {request_id}]" if request_id else ""
        return (
            f"{self._name} answered HTTP {status}{code}: {said}. {advice}{rid}"
        ).strip()

    def _transport_failure(
        self, exc: httpx.RequestError, request: HTTPRequest
    ) -> _AttemptFailed:
        where = self._scrub(str(request.url.copy_with(query=None)), request.headers)
        detail = self._scrub(str(exc), request.headers) or type(exc).__name__
        if isinstance(exc, (httpx.LocalProtocolError, httpx.UnsupportedProtocol)):
            return _AttemptFailed(
                LLMConfigurationError(
                    f"The request to {where} could not be sent ({detail}); check "
                    f"base_url and RunConfig.extra_headers.",
                    provider=self.provider,
                ),
                retryable=False,
                cause=exc,
            )
        if isinstance(exc, httpx.DecodingError):
            return _AttemptFailed(
                LLMResponseError(
                    f"{self._name} sent a body that could not be decoded ({detail}).",
                    provider=self.provider,
                ),
                retryable=False,
                cause=exc,
            )
        if isinstance(exc, httpx.TimeoutException):
            what = f"No answer in time from {where}"
        else:
            what = f"Could not reach {where}"
        return _AttemptFailed(
            LLMConnectionError(
                f"{what} ({type(exc).__name__}: {detail}). Check the network, "
                f"proxy settings and base_url.",
                provider=self.provider,
            ),
            retryable=True,
            cause=exc,
        )

    # -- keys ----------------------------------------------------------------

    def _resolve_key(self, api_key: str | None) -> str | None:
        given: object = api_key
        if given is not None and not isinstance(given, str):
            raise LLMConfigurationError(
                f"api_key must be a str, not {type(given).__name__}."
            )
        key = api_key
        if not (key and key.strip()):
            key = next(
                (
                    os.environ[n]
                    for n in self.key_env_vars
                    if os.environ.get(n, "").strip()
                ),
                None,
            )
        key = key.strip() if key else None
        if key is None:
            if self._key_required():
                names = " or ".join(self.key_env_vars)
                raise LLMConfigurationError(
                    f"No API key for {type(self).__name__}: set the {names} "
                    f"environment variable, or pass api_key=..."
                )
            return None
        if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
            raise LLMConfigurationError(
                f"The API key for {type(self).__name__} contains characters that "
                f"cannot be sent in an HTTP header (spaces, line breaks or "
                f"non-ASCII); check how it was copied."
            )
        return key

    def _secrets(self, headers: httpx.Headers | None = None) -> tuple[str, ...]:
        """The API key, and the values of auth-like headers that were sent."""
        secrets = [self._api_key] if self._api_key else []
        for name, value in (headers or {}).items():
            if name.lower() in _SECRET_HEADERS:
                secrets.append(value)
                token = value.split()[-1] if value.split() else ""
                if len(token) >= 8:  # the bare token of "Bearer <token>"
                    secrets.append(token)
        # Longest first, so a token inside a longer secret is not cut apart.
        return tuple(sorted(set(secrets), key=len, reverse=True))

    def _scrub(self, text: str, headers: httpx.Headers | None = None) -> str:
        return scrub(text, self._secrets(headers))

    def _header_request_id(self, headers: httpx.Headers) -> str | None:
        for name in self.request_id_headers:
            value = headers.get(name)
            if isinstance(value, str) and value:
                return value
        return None


# -- one client per event loop ---------------------------------------------------


class _ClientPool:
    """One ``httpx.AsyncClient`` per running event loop, created on first use.

    Keyed by the loop's native anyio token, held weakly: a trio run that has
    ended drops its entry on its own. An asyncio client keeps its loop alive
    (through its connections), so entries whose loop reports ``is_closed()``
    are dropped whenever a client is created or closed. A dropped client is
    not closed: its loop is gone, and closing it there would fail.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: weakref.WeakKeyDictionary[object, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> httpx.AsyncClient:
        """Return the current loop's client, creating it if needed."""
        loop = anyio.lowlevel.current_token().native_token
        with self._lock:
            client = self._clients.get(loop)
            if client is None or client.is_closed:
                self._drop_ended()
                client = self._clients[loop] = _new_client()
            return client

    def pop_current(self) -> httpx.AsyncClient | None:
        """Forget and return the current loop's client, if it has one."""
        loop = anyio.lowlevel.current_token().native_token
        with self._lock:
            self._drop_ended()
            return self._clients.pop(loop, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)

    def _drop_ended(self) -> None:
        for loop in list(self._clients):
            is_closed = getattr(loop, "is_closed", None)
            if callable(is_closed) and is_closed():
                del self._clients[loop]


def _new_client() -> httpx.AsyncClient:
    """The default client: HTTP/1.1, pooled, with httpx timeouts as a safety net.

    Requests go through a :class:`DefaultClient`: a pooled transport of
    one-connection pools that stays fast under many concurrent calls where
    one big httpx pool does not, and a short path for each POST. With a proxy
    set in the environment it is a plain ``httpx.AsyncClient`` instead (httpx
    honours such proxies only with its own transport). Neither keeps cookies.

    The call's deadline (``RunConfig.timeout``) is the real limit; the read
    and write timeouts only stop a dead connection from hanging a call that
    has no deadline (calls with one skip them, see ``post_content``).
    """
    timeout = httpx.Timeout(connect=10.0, read=600.0, write=600.0, pool=None)
    if environment_proxies():
        # httpx routes through proxies from the environment only for a client
        # that makes its own transport: keep httpx's single pool then.
        return httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=POOLS * POOL_CONNECTIONS,
                max_keepalive_connections=20,
                keepalive_expiry=30.0,
            ),
            follow_redirects=False,
            cookies=NoCookies(),
        )
    return DefaultClient(
        timeout=timeout, pools=POOLS, pool_connections=POOL_CONNECTIONS
    )


def _log_answer(provider: str, response: httpx.Response, started: float) -> None:
    log.debug(
        "%s: HTTP %d in %.3f s (%d bytes)",
        provider,
        response.status_code,
        time.perf_counter() - started,
        len(response.content),
    )


# -- waits -------------------------------------------------------------------------


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    0.5 s doubled per attempt, at most 8 s, less up to 25 % at random.
    """
    delay: float = min(MAX_DELAY, BASE_DELAY * 2.0 ** (attempt - 1))
    return delay * (1.0 - JITTER * _random())


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Return the wait the headers ask for, in seconds, or ``None``.

    ``retry-after-ms`` (milliseconds) wins over ``retry-after`` (seconds or an
    HTTP date). Unreadable values are ignored; waits in the past become 0.
    """
    value = headers.get("retry-after-ms")
    if value is not None:
        seconds = _number(value)
        if seconds is not None:
            return seconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _number(value: str) -> float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return max(0.0, number)


# -- reading JSON defensively ----------------------------------------------------


def as_dict(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty dict."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    """``value`` if it is a JSON array, else an empty list."""
    return value if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    """``value`` if it is a non-empty string, else ``None``."""
    return value if isinstance(value, str) and value else None


def as_count(value: object) -> int:
    """A token count: a non-negative whole number, else 0 (never raises)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if not math.isfinite(value) or value < 0 or value != int(value):
        return 0
    return int(value)


def merge_body(
    body: Mapping[str, Any], extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Return ``body`` with ``extra`` merged in; ``extra`` wins.

    Nested objects merge key by key (so ``extra_body={"generationConfig":
    {"seed": 1}}`` keeps the generation settings built from RunConfig).
    """
    merged = dict(body)
    for key, value in (extra or {}).items():
        mine = merged.get(key)
        if isinstance(mine, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_body(mine, value)
        else:
            merged[key] = value
    return merged


def _sent_headers(response: httpx.Response | None) -> httpx.Headers | None:
    """The headers of the request that got ``response``, when known."""
    if response is None:
        return None
    try:
        return response.request.headers
    except RuntimeError:  # a Response built by hand has no request
        return None


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _check_base_url(base_url: object) -> httpx.URL:
    example = "such as 'https://api.example.com/v1'"
    if not isinstance(base_url, str) or not base_url.strip():
        raise LLMConfigurationError(
            f"base_url must be an http:// or https:// URL {example}, not {base_url!r}."
        )
    try:
        url = httpx.URL(base_url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise LLMConfigurationError(
            f"base_url {base_url!r} is not a valid URL ({exc}); use one {example}."
        ) from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise LLMConfigurationError(
            f"base_url must be an http:// or https:// URL {example}, not {base_url!r}."
        )
    if url.fragment:
        raise LLMConfigurationError(
            f"base_url must not have a #fragment, got {base_url!r}."
        )
    return url
