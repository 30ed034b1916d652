"""The HTTP adapters' default client: pooled transport, short POST path, same behaviour.

Against the real loopback server (its records show which connection served
each request: ``RecordedRequest.client`` is the client's address).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Awaitable, Callable

import anyio
import httpx
import pytest
import respx

from llm_connect import LLMConnectionError, LLMTimeoutError, OpenAIAdapter, RunConfig
from llm_connect.adapters import _http
from llm_connect.adapters._transport import DefaultClient, NoCookies, PooledTransport
from llm_connect.testing.server import LoopbackServer, Raw, Respond, Stall

pytestmark = pytest.mark.integration

KEY = "sk-test-0123456789abcdefSECRET"
BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'


def adapter_for(server: LoopbackServer, **config: object) -> OpenAIAdapter:
    return OpenAIAdapter(
        api_key=KEY,
        base_url=server.openai_base_url,
        default_config=RunConfig(model="gpt-4o-mini", **config),  # type: ignore[arg-type]
    )


def connections(server: LoopbackServer) -> set[tuple[str, int]]:
    """The client addresses (one per TCP connection) the server has seen."""
    return {tuple(r.client) for r in server.requests}  # type: ignore[misc]


def default_client(adapter: OpenAIAdapter) -> DefaultClient:
    client = adapter._clients.get()
    assert isinstance(client, DefaultClient)
    return client


async def test_sequential_calls_share_one_connection_and_one_pool() -> None:
    async with LoopbackServer(text="ok") as server, adapter_for(server) as adapter:
        for _ in range(20):
            assert (await adapter.async_execute_prompt("hi")).text == "ok"
        assert server.request_count == 20
        assert len(connections(server)) == 1
        pooled = default_client(adapter).pooled
        assert pooled.pools == 1
        assert pooled.in_flight == 0


async def test_64_concurrent_calls_succeed_over_a_bounded_set_of_connections() -> None:
    async with (
        LoopbackServer(text="ok", delay=0.05) as server,
        adapter_for(server) as adapter,
    ):
        answers: list[str] = []

        async def one() -> None:
            answers.append((await adapter.async_execute_prompt("hi")).text)

        for _ in range(2):  # the second wave reuses the first wave's connections
            async with anyio.create_task_group() as tg:
                for _ in range(64):
                    tg.start_soon(one)
        assert answers == ["ok"] * 128
        pooled = default_client(adapter).pooled
        opened = len(connections(server))
        assert 2 <= opened <= 64
        assert pooled.pools <= 64
        assert pooled.in_flight == 0


async def test_more_calls_than_connections_wait_for_one() -> None:
    transport = PooledTransport(pools=2, pool_connections=2)
    async with (
        LoopbackServer(delay=0.05) as server,
        httpx.AsyncClient(transport=transport) as client,
    ):
        url = server.openai_base_url + "/chat/completions"
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        statuses: list[int] = []

        async def one() -> None:
            statuses.append((await client.post(url, json=body)).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
        assert statuses == [200] * 20
        assert transport.pools == 2
        assert len(connections(server)) == 4  # pools x pool_connections
        assert transport.max_connections == 4


async def test_aclose_closes_every_pool(
    closed_pools: list[httpx.AsyncHTTPTransport],
) -> None:
    async with LoopbackServer(delay=0.05) as server:
        adapter = adapter_for(server)
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(adapter.async_execute_prompt, "hi")
        client = default_client(adapter)
        pools = list(client.pooled._pools)
        assert len(pools) >= 2
        await adapter.aclose()
        assert client.is_closed
        assert set(map(id, closed_pools)) >= set(map(id, pools))
        with pytest.raises(RuntimeError):
            client.pooled._add_pool()


def post_to(
    client: httpx.AsyncClient, server: LoopbackServer
) -> Callable[[], Awaitable[None]]:
    async def post() -> None:
        reply = await client.post(
            server.openai_base_url + "/chat/completions", content=BODY
        )
        assert reply.status_code == 200

    return post


@pytest.fixture
def closed_pools(monkeypatch: pytest.MonkeyPatch) -> list[httpx.AsyncHTTPTransport]:
    """Every httpx transport closed during the test, in order."""
    closed: list[httpx.AsyncHTTPTransport] = []
    original = httpx.AsyncHTTPTransport.aclose

    async def spy(self: httpx.AsyncHTTPTransport) -> None:
        closed.append(self)
        await original(self)

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "aclose", spy)
    return closed


async def test_pools_idle_past_keepalive_are_closed_on_a_later_request(
    closed_pools: list[httpx.AsyncHTTPTransport],
) -> None:
    transport = PooledTransport(pools=4, pool_connections=1, keepalive_expiry=0.3)
    async with (
        LoopbackServer(delay=0.05) as server,
        httpx.AsyncClient(transport=transport) as client,
    ):
        post = post_to(client, server)
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(post)
        burst = list(transport._pools)
        assert len(connections(server)) == 4
        await anyio.sleep(0.6)
        await post()
        assert [id(p) for p in closed_pools] == [id(p) for p in burst]
        assert transport.pools == 4  # fresh pools took their places
        assert len(connections(server)) == 5  # the late call opened a new one


async def test_a_pool_in_use_keeps_its_connection_while_idle_ones_close(
    closed_pools: list[httpx.AsyncHTTPTransport],
) -> None:
    transport = PooledTransport(pools=4, pool_connections=1, keepalive_expiry=0.5)
    async with (
        LoopbackServer(delay=0.05) as server,
        httpx.AsyncClient(transport=transport) as client,
    ):
        post = post_to(client, server)
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(post)
        first, *others = transport._pools
        # One call at a time for 2 s: the first pool is never idle for 0.5 s.
        deadline = anyio.current_time() + 2.0
        while anyio.current_time() < deadline:
            await post()
            await anyio.sleep(0.1)
        assert {id(p) for p in closed_pools} == {id(p) for p in others}
        assert transport._pools[0] is first
        assert len(connections(server)) == 4


async def test_a_cancelled_call_releases_its_connection() -> None:
    async with LoopbackServer(text="ok") as server, adapter_for(server) as adapter:
        assert (await adapter.async_execute_prompt("warm up")).text == "ok"
        server.script(Respond(delay=10))
        with anyio.move_on_after(0.3) as scope:
            await adapter.async_execute_prompt("slow")
        assert scope.cancelled_caught
        pooled = default_client(adapter).pooled
        assert pooled.in_flight == 0
        # The pool is free again: the next call is served at once.
        with anyio.fail_after(5):
            assert (await adapter.async_execute_prompt("again")).text == "ok"
        assert pooled.pools == 1
        assert pooled.in_flight == 0


async def test_the_calls_deadline_still_ends_a_stalled_answer() -> None:
    async with LoopbackServer() as server, adapter_for(server, timeout=0.5) as adapter:
        server.script(Stall())
        with anyio.fail_after(10), pytest.raises(LLMTimeoutError):
            await adapter.async_execute_prompt("hi")
        assert default_client(adapter).pooled.in_flight == 0


async def test_httpx_read_timeout_applies_on_the_short_path() -> None:
    async with LoopbackServer() as server:
        server.script(Stall())
        async with DefaultClient(
            timeout=httpx.Timeout(0.3), pools=4, pool_connections=1
        ) as client:
            url = httpx.URL(server.openai_base_url + "/chat/completions")
            with anyio.fail_after(10), pytest.raises(httpx.ReadTimeout) as caught:
                await client.post_content(url, BODY, httpx.Headers())
            assert caught.value.request.url == url
            assert client.pooled.in_flight == 0


async def test_under_a_deadline_the_read_timeout_is_left_to_the_deadline() -> None:
    async with (
        LoopbackServer(delay=0.6) as server,
        DefaultClient(
            timeout=httpx.Timeout(0.3), pools=4, pool_connections=1
        ) as client,
    ):
        url = httpx.URL(server.openai_base_url + "/chat/completions")
        with anyio.fail_after(10):
            answer = await client.post_content(
                url, BODY, httpx.Headers(), under_deadline=True
            )
            assert answer.status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                await client.post_content(url, BODY, httpx.Headers())
        assert client.pooled.in_flight == 0


@pytest.mark.parametrize(
    ("deadline", "read", "write"), [(30.0, None, None), (None, 600.0, 600.0)]
)
async def test_calls_send_the_timeouts_their_deadline_calls_for(
    monkeypatch: pytest.MonkeyPatch,
    deadline: float | None,
    read: float | None,
    write: float | None,
) -> None:
    sent: list[dict[str, float | None]] = []
    original = PooledTransport.handle_async_request

    async def spy(self: PooledTransport, request: httpx.Request) -> httpx.Response:
        sent.append(request.extensions["timeout"])
        return await original(self, request)

    monkeypatch.setattr(PooledTransport, "handle_async_request", spy)
    async with LoopbackServer() as server, adapter_for(server) as adapter:
        await adapter.async_execute_prompt("hi", RunConfig(timeout=deadline))
    assert sent == [{"connect": 10.0, "read": read, "write": write, "pool": None}]


async def test_short_path_sends_what_post_sends() -> None:
    async with LoopbackServer() as server:
        url = httpx.URL(server.openai_base_url + "/chat/completions")
        content = BODY
        headers = httpx.Headers({"authorization": "Bearer x", "x-extra": "1"})
        async with DefaultClient(
            timeout=httpx.Timeout(5), pools=4, pool_connections=1
        ) as client:
            fast = await client.post_content(url, content, headers)
            slow = await client.post(url, content=content, headers=headers)
        assert fast.status_code == slow.status_code == 200
        assert fast.json()["choices"] == slow.json()["choices"]
        first, second = server.requests
        assert first.body == second.body == content
        assert first.headers == second.headers


async def test_short_path_answers_read_like_post_answers() -> None:
    """A body read on the short path is a fully read, closed httpx answer."""
    text = "long answer " * 50_000  # ~600 KB: many reads off the socket
    async with LoopbackServer(text=text) as server:
        url = httpx.URL(server.openai_base_url + "/chat/completions")
        async with DefaultClient(
            timeout=httpx.Timeout(5), pools=4, pool_connections=1
        ) as client:
            fast = await client.post_content(url, BODY, httpx.Headers())
            slow = await client.post(url, content=BODY)
            assert client.pooled.in_flight == 0
        assert len(fast.content) > 600_000
        # Same answer apart from its id and timestamp.
        assert len(fast.content) == len(slow.content)
        assert fast.text.encode() == fast.content
        assert fast.json()["choices"] == slow.json()["choices"]
        assert fast.json()["choices"][0]["message"]["content"] == text
        assert fast.is_closed
        assert fast.is_stream_consumed
        assert await fast.aread() == fast.content
        assert fast.request.url == url
        assert len(connections(server)) == 1  # the connection went back to its pool


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress)],
)
async def test_short_path_decodes_compressed_answers(
    encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    answer = {
        "id": "chatcmpl-z",
        "model": "gpt-4o-mini",
        "choices": [{"message": {"content": "squeezed"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    raw = json.dumps(answer).encode()
    async with LoopbackServer() as server, adapter_for(server) as adapter:
        server.script(
            Raw(body=compress(raw), headers={"content-encoding": encoding}),
            Raw(body=compress(raw), headers={"content-encoding": encoding}),
        )
        response = await adapter.async_execute_prompt("hi")
        assert response.text == "squeezed"
        assert response.usage.total_tokens == 4
        url = httpx.URL(server.openai_base_url + "/chat/completions")
        answer_read = await default_client(adapter).post_content(
            url, BODY, httpx.Headers()
        )
        assert answer_read.content == raw
        assert answer_read.is_closed
        assert default_client(adapter).pooled.in_flight == 0


async def test_a_closed_default_client_refuses_to_send() -> None:
    client = DefaultClient(timeout=httpx.Timeout(5), pools=2, pool_connections=1)
    await client.aclose()
    url = httpx.URL("http://127.0.0.1:9/v1/chat/completions")
    with pytest.raises(RuntimeError, match="closed"):
        await client.post_content(url, BODY, httpx.Headers())


@respx.mock
async def test_the_default_client_keeps_no_cookies() -> None:
    url = "http://127.0.0.1:9/v1/chat/completions"
    route = respx.post(url).mock(
        return_value=httpx.Response(
            200,
            json={"choices": [{"message": {"content": "ok"}}]},
            headers={"set-cookie": "__cf_bm=abc; Path=/"},
        )
    )
    adapter = OpenAIAdapter(
        api_key=KEY,
        base_url="http://127.0.0.1:9/v1",
        default_config=RunConfig(model="gpt-4o-mini"),
    )
    async with adapter:
        await adapter.async_execute_prompt("one")
        await adapter.async_execute_prompt("two")
    assert route.call_count == 2
    assert "cookie" not in route.calls.last.request.headers


async def test_a_proxy_from_the_environment_is_still_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The proxy (a closed loopback port) refuses, so the call fails: it did
    # not go straight to the server.
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    async with LoopbackServer() as server:
        async with adapter_for(server, max_retries=0) as adapter:
            with pytest.raises(LLMConnectionError):
                await adapter.async_execute_prompt("hi")
            client = adapter._clients.get()
            assert not isinstance(client, DefaultClient)
            assert isinstance(client.cookies.jar, NoCookies)
        assert server.request_count == 0
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with adapter_for(server) as adapter:
            assert (await adapter.async_execute_prompt("hi")).text
        assert server.request_count == 1


async def test_default_client_settings() -> None:
    async with _http._new_client() as client:
        assert isinstance(client, DefaultClient)
        assert client.pooled.max_connections == _http.POOLS * _http.POOL_CONNECTIONS
        assert client.timeout.connect == 10.0
        assert client.timeout.read == 600.0
        assert client.timeout.pool is None
        assert client.follow_redirects is False


def test_pooled_transport_refuses_empty_pools() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PooledTransport(pools=0)
    with pytest.raises(ValueError, match="at least 1"):
        PooledTransport(pool_connections=0)
