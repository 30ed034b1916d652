"""An httpx transport that spreads requests over several connection pools.

httpx's connection pool (httpcore) re-examines every connection and every
queued request each time a request starts or a response closes, and it
closes an idle connection whenever the pool holds more connections than
``max_keepalive_connections``. Under a few dozen concurrent calls both bite:
the bookkeeping grows with the square of the pool's size, and connections are
closed and reopened all the time. Many small pools behind one transport
(by default 100 pools of one connection) keep every pool small, and each
pool keeps its connections alive, so the same connections serve call after
call. :class:`DefaultClient` is the client the HTTP adapters make over it.

:class:`PooledTransport` is built on httpx's public transport API only: it
is an ``httpx.AsyncBaseTransport`` holding ``httpx.AsyncHTTPTransport`` pools
and works wherever httpx does (asyncio and trio).
"""

from __future__ import annotations

import http.cookiejar
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx

__all__ = ["DefaultClient", "NoCookies", "PooledTransport", "environment_proxies"]


class PooledTransport(httpx.AsyncBaseTransport):
    """Sends each request through the least busy of several connection pools.

    A pool is busy from the moment a request enters it until its response is
    closed. Ties go to the first pool, so calls made one at a time share one
    connection; concurrent calls spread out, at most ``pool_connections``
    connections per pool and ``pools * pool_connections`` in all. When every
    connection is busy, a request waits in the least busy pool.

    httpx closes a pool's expired connections only when that pool is used
    again; a pool idle for longer than ``keepalive_expiry`` (after a burst
    of concurrent calls, say) is closed here instead, at most once per
    ``keepalive_expiry``, on the next request.

    Args:
        pools: how many connection pools (>= 1).
        pool_connections: connections per pool, all kept alive between calls
            (>= 1).
        keepalive_expiry: seconds an idle connection is kept before it is
            closed.
        verify: ``True`` (the system's CA bundle, as httpx finds it), ``False``
            or an ``ssl.SSLContext``; one context serves every pool.
        http2: whether the pools may speak HTTP/2 (needs the ``h2`` package).
    """

    def __init__(
        self,
        *,
        pools: int = 100,
        pool_connections: int = 1,
        keepalive_expiry: float = 30.0,
        verify: ssl.SSLContext | bool = True,
        http2: bool = False,
    ) -> None:
        if pools < 1 or pool_connections < 1:
            raise ValueError("pools and pool_connections must be at least 1")
        limits = httpx.Limits(
            max_connections=pool_connections,
            max_keepalive_connections=pool_connections,
            keepalive_expiry=keepalive_expiry,
        )
        if not isinstance(verify, ssl.SSLContext):
            verify = httpx.create_ssl_context(verify=verify)
        self._ssl_context = verify
        self._limits = limits
        self._keepalive_expiry = keepalive_expiry
        self._http2 = http2
        self._max_pools = pools
        self._pool_connections = pool_connections
        #: The pools made so far (made when every earlier one is full).
        self._pools: list[httpx.AsyncHTTPTransport] = []
        #: Requests in each pool whose response has not been closed yet.
        self._busy: list[int] = []
        #: When each pool last had a response closed (``time.monotonic()``);
        #: ``None`` while it has served nothing since it was made.
        self._idle_since: list[float | None] = []
        self._next_sweep = time.monotonic() + keepalive_expiry
        self._closed = False

    @property
    def max_connections(self) -> int:
        """The most connections this transport opens at once."""
        return self._max_pools * self._pool_connections

    @property
    def pools(self) -> int:
        """How many pools have been made so far."""
        return len(self._pools)

    @property
    def in_flight(self) -> int:
        """Requests sent whose responses are not closed yet."""
        return sum(self._busy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the least busy pool."""
        if time.monotonic() >= self._next_sweep:
            await self._close_idle_pools()
        busy = self._busy
        least = min(busy, default=self._pool_connections)
        if least >= self._pool_connections and len(busy) < self._max_pools:
            index = self._add_pool()
        else:
            index = busy.index(least)
        busy[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._release(index)
            raise
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _ReleasingStream(stream, self, index)
        return response

    async def aclose(self) -> None:
        """Close every pool and its connections."""
        self._closed = True
        for pool in self._pools:
            await pool.aclose()

    def _new_pool(self) -> httpx.AsyncHTTPTransport:
        if self._closed:
            raise RuntimeError("the transport is closed")
        return httpx.AsyncHTTPTransport(
            verify=self._ssl_context, limits=self._limits, http2=self._http2
        )

    def _add_pool(self) -> int:
        self._pools.append(self._new_pool())
        self._busy.append(0)
        self._idle_since.append(None)
        return len(self._pools) - 1

    def _release(self, index: int) -> None:
        """A response of pool ``index`` was closed."""
        self._busy[index] -= 1
        if self._busy[index] == 0:
            self._idle_since[index] = time.monotonic()

    async def _close_idle_pools(self) -> None:
        """Close pools idle for ``keepalive_expiry``; fresh ones take their place."""
        now = time.monotonic()
        self._next_sweep = now + self._keepalive_expiry
        stale = []
        for index, idle_since in enumerate(self._idle_since):
            if (
                idle_since is not None
                and self._busy[index] == 0
                and now - idle_since >= self._keepalive_expiry
            ):
                stale.append(self._pools[index])
                self._pools[index] = self._new_pool()
                self._idle_since[index] = None
        with anyio.CancelScope(shield=True):
            for pool in stale:
                await pool.aclose()


def environment_proxies() -> bool:
    """Whether the environment names an HTTP proxy (httpx would then use it).

    Reads what httpx reads: ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``
    (any case) and, on Windows and macOS, the system settings.
    """
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


class DefaultClient(httpx.AsyncClient):
    """The client an HTTP adapter makes for itself: pooled, with a short path for POSTs.

    An ``httpx.AsyncClient`` over a :class:`PooledTransport` that keeps no
    cookies (an API call needs none, and a shared adapter must not carry one
    caller's cookies into another's calls) and follows no redirects.
    :meth:`post_content` sends straight through the transport, skipping what
    this client never uses (auth, cookies, redirects, event hooks).

    httpx ignores proxy settings in the environment for a client given its
    own transport, so make this client only when :func:`environment_proxies`
    is false.

    Args:
        timeout: httpx timeouts for every request.
        pools: see :class:`PooledTransport`.
        pool_connections: see :class:`PooledTransport`.
    """

    def __init__(
        self, *, timeout: httpx.Timeout, pools: int, pool_connections: int
    ) -> None:
        self.pooled = PooledTransport(pools=pools, pool_connections=pool_connections)
        super().__init__(
            timeout=timeout,
            transport=self.pooled,
            follow_redirects=False,
            cookies=NoCookies(),
        )
        self._timeout_extension: dict[str, Any] = self.timeout.as_dict()
        # For calls under a deadline: no per-read or per-write limit (each
        # costs a timer per socket operation, and the deadline bounds them).
        self._deadline_extension: dict[str, Any] = {
            **self._timeout_extension,
            "read": None,
            "write": None,
        }
        self._merged: dict[int, tuple[httpx.Headers, bytes, httpx.Headers]] = {}

    async def post_content(
        self,
        url: httpx.URL,
        content: bytes,
        headers: httpx.Headers,
        *,
        under_deadline: bool = False,
    ) -> httpx.Response:
        """POST ``content`` and read the whole answer.

        The same request and response as ``post(url, content=content,
        headers=headers)``, with less work per call.

        Args:
            under_deadline: the caller bounds the whole exchange with a cancel
                scope of its own, so the client's read and write timeouts are
                not applied (its connect and pool timeouts still are).

        Raises:
            httpx.RequestError: the request could not be sent or answered.
            RuntimeError: the client is closed.
        """
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        # What httpx.Request(content=...) would build, without its per-call
        # header normalisation: the Host line and the merged headers are kept
        # per header set, and only Content-Length is added per call.
        request_headers = httpx.Headers(self._prepared(url, headers))
        request_headers["Content-Length"] = str(len(content))
        request = httpx.Request(
            "POST",
            url,
            headers=request_headers,
            stream=httpx.ByteStream(content),
            extensions={
                "timeout": self._deadline_extension
                if under_deadline
                else self._timeout_extension
            },
        )
        request.read()
        try:
            response = await self.pooled.handle_async_request(request)
        except httpx.RequestError as exc:
            exc.request = request
            raise
        response.request = request
        try:
            if response.headers.get("content-encoding", "identity") == "identity":
                await _read_plain(response)
            else:
                await response.aread()  # httpx decodes gzip, brotli, ...
        except BaseException as exc:
            await response.aclose()
            if isinstance(exc, httpx.RequestError):
                exc.request = request
            raise
        return response

    def _prepared(self, url: httpx.URL, headers: httpx.Headers) -> httpx.Headers:
        """``Host``, then the client's defaults overridden by ``headers``.

        Kept per ``headers`` object and host: built once per header set.
        """
        netloc = url.netloc
        entry = self._merged.get(id(headers))
        if entry is None or entry[0] is not headers or entry[1] != netloc:
            merged = httpx.Headers(self.headers)
            merged.update(headers)
            if "host" not in merged:
                merged = httpx.Headers([(b"Host", netloc), *merged.raw])
            if len(self._merged) >= _MERGED_HEADERS_KEPT:
                self._merged.clear()
            entry = self._merged[id(headers)] = (headers, netloc, merged)
        return entry[2]


async def _read_plain(response: httpx.Response) -> None:
    """What ``await response.aread()`` does for a body sent without encoding.

    The body is read straight off the transport's stream and stored where
    ``aread()`` stores it (httpx's ``_content``; tests/adapters/
    test_transport.py pins that ``content``, ``text``, ``json()`` and
    ``aread()`` then work as usual). Skipping httpx's decoder and chunker
    layers saves 15-45 us of CPU per call under load (docs/performance.md).
    """
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    body = b"".join([chunk async for chunk in stream])
    await response.aclose()
    response.is_stream_consumed = True
    response._content = body


#: Header sets a :class:`DefaultClient` keeps merged with its defaults.
_MERGED_HEADERS_KEPT = 32


class NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that neither stores nor sends cookies."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        """Ignore the response's cookies."""

    def add_cookie_header(self, request: Any) -> None:
        """Send no cookies."""


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that marks its pool one request less busy when closed."""

    def __init__(
        self, stream: httpx.AsyncByteStream, owner: PooledTransport, index: int
    ) -> None:
        self._stream = stream
        self._owner = owner
        self._index = index
        self._open = True

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._owner._release(self._index)
        await self._stream.aclose()
