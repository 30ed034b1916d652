"""The fault script, request recording and connection handling."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import anyio
import httpx
import pytest

from llm_connect.testing.server import (
    Fail,
    LoopbackServer,
    Malformed,
    Raw,
    Reset,
    Respond,
    Route,
    Stall,
)

from .server_helpers import BODIES, fixture, post, sse_events, url

pytestmark = pytest.mark.integration

ROUTES: list[Route] = ["openai", "openrouter", "gemini", "anthropic"]


async def test_503_then_success_is_a_script_of_two_actions() -> None:
    async with LoopbackServer(text="finally") as server, httpx.AsyncClient() as client:
        server.script(Fail(503), Respond())
        first = await post(client, server, "openai")
        second = await post(client, server, "openai")
        third = await post(client, server, "openai")
        assert server.pending_actions == ()
        records = server.requests
    assert [first.status_code, second.status_code, third.status_code] == [503, 200, 200]
    assert first.json()["error"]["type"] == "server_error"
    assert second.json()["choices"][0]["message"]["content"] == "finally"
    assert [r.status for r in records] == [503, 200, 200]
    assert [type(r.action).__name__ for r in records] == ["Fail", "Respond", "Respond"]


async def test_a_route_takes_its_own_queue_before_the_shared_one() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        server.script(Fail(500), Fail(502))
        server.script(Fail(529), route="anthropic")
        anthropic = await post(client, server, "anthropic")
        gemini = await post(client, server, "gemini")
        assert server.pending_actions == (Fail(502),)
        anthropic_again = await post(client, server, "anthropic")
        anthropic_ok = await post(client, server, "anthropic")
    assert anthropic.status_code == 529
    assert anthropic.json()["error"] == {
        "type": "overloaded_error",
        "message": "Overloaded",
    }
    assert gemini.status_code == 500
    assert gemini.json()["error"]["status"] == "INTERNAL"
    assert anthropic_again.status_code == 502
    assert anthropic_ok.status_code == 200


@pytest.mark.parametrize("route", ROUTES)
async def test_429_carries_retry_after_where_the_provider_puts_it(route: Route) -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        server.script(Fail(429, retry_after=1), Fail(429, retry_after=0.25))
        whole = await post(client, server, route)
        fraction = await post(client, server, route)
    assert whole.status_code == fraction.status_code == 429
    error = whole.json()
    if route == "gemini":
        assert "retry-after" not in whole.headers
        assert error["error"]["status"] == "RESOURCE_EXHAUSTED"
        (detail,) = error["error"]["details"]
        assert detail == {
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": "1s",
        }
        assert fraction.json()["error"]["details"][0]["retryDelay"] == "0.25s"
        return
    assert whole.headers["retry-after"] == "1"
    assert fraction.headers["retry-after"] == "0.25"
    if route == "openai":
        assert whole.headers["retry-after-ms"] == "1000"
        assert fraction.headers["retry-after-ms"] == "250"
        assert error["error"]["type"] == "requests"
        assert error["error"]["code"] == "rate_limit_exceeded"
    elif route == "openrouter":
        real = fixture("openrouter_429_upstream_provider_error.json")["body"]
        assert error["error"]["code"] == 429  # a number, unlike OpenAI
        assert set(error) == set(real)
        assert set(error["error"]["metadata"]) == set(real["error"]["metadata"])
    else:
        assert error["error"]["type"] == "rate_limit_error"
        assert whole.headers["x-should-retry"] == "true"
        assert whole.headers["request-id"] == error["request_id"] == "req_loopback_1"


async def test_fail_takes_a_message_and_extra_headers() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        server.script(
            Fail(400, message="model is bad", headers={"X-Custom": "yes"}),
            Fail(418),
        )
        bad = await post(client, server, "openai")
        teapot = await post(client, server, "gemini")
    assert bad.json()["error"]["message"] == "model is bad"
    assert bad.headers["x-custom"] == "yes"
    assert teapot.status_code == 418
    assert teapot.json()["error"]["message"] == "I'm a Teapot."
    assert teapot.json()["error"]["status"] == "UNKNOWN"


async def test_error_in_a_200_body_the_way_openrouter_and_anthropic_send_it() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        server.script(Fail(502, message="Provider disconnected", in_body=True))
        openrouter = await post(client, server, "openrouter")
        server.script(Fail(529, in_body=True))
        body = dict(BODIES["anthropic"], stream=True)
        anthropic = await client.post(url(server, "anthropic"), json=body)
    assert openrouter.status_code == 200
    real = fixture("openrouter_200_error_in_body.json")["body"]["choices"][0]
    (choice,) = openrouter.json()["choices"]
    assert choice["finish_reason"] == real["finish_reason"] == "error"
    assert choice["error"]["code"] == 502
    assert choice["error"]["message"] == "Provider disconnected"
    assert choice["error"]["metadata"] == real["error"]["metadata"]
    assert anthropic.status_code == 200
    events = sse_events(anthropic.text)
    assert [name for name, _ in events] == ["message_start", "error"]
    assert events[1][1]["error"] == {
        "type": "overloaded_error",
        "message": "Overloaded",
    }


async def test_a_slow_response_delays_the_headers() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        server.script(Respond(delay=0.5), Respond(delay=5.0))
        started = time.monotonic()
        slow = await post(client, server, "openai")
        elapsed = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await post(client, server, "gemini", timeout=httpx.Timeout(5, read=0.3))
        timed_out_after = time.monotonic() - started
        after = await post(client, server, "gemini")  # the server is still fine
    assert slow.status_code == 200
    assert 0.4 <= elapsed < 4.0
    assert 0.25 <= timed_out_after < 3.0
    assert after.status_code == 200


async def test_a_stall_sends_part_of_the_body_then_waits() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        server.script(Stall(1.5, after_bytes=10))
        started = time.monotonic()
        async with client.stream(
            "POST", url(server, "openai"), json=BODIES["openai"]
        ) as reply:
            chunks = [
                (time.monotonic() - started, chunk) async for chunk in reply.aiter_raw()
            ]
    first_at, first = chunks[0]
    last_at = chunks[-1][0]
    assert first == b'{"id":"cha'
    assert first_at < 1.0
    assert last_at >= 1.4
    body = b"".join(chunk for _, chunk in chunks)
    assert json.loads(body)["choices"][0]["message"]["content"]


@pytest.mark.parametrize("route", ROUTES)
async def test_a_stall_without_end_trips_the_clients_read_timeout(route: Route) -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        server.script(Stall())
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await post(client, server, route, timeout=httpx.Timeout(5, read=0.3))
        elapsed = time.monotonic() - started
        recovered = await post(client, server, route)
    assert 0.25 <= elapsed < 3.0
    assert recovered.status_code == 200


@pytest.mark.parametrize("route", ROUTES)
async def test_a_reset_mid_body_is_a_transport_error(route: Route) -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        server.script(Reset(), Reset(after_bytes=0), Reset(send_headers=False))
        for _ in range(3):
            with pytest.raises(httpx.TransportError):
                await post(client, server, route)
        recovered = await post(client, server, route)
        records = server.requests
    assert recovered.status_code == 200
    assert [r.status for r in records] == [200, 200, None, 200]


async def test_a_reset_stream_ends_part_way_through_the_events() -> None:
    async with LoopbackServer(text="x" * 200) as server, httpx.AsyncClient() as client:
        server.script(Reset(after_bytes=400))
        body = dict(BODIES["anthropic"], stream=True)
        received: list[bytes] = []

        async def read_all() -> None:
            async with client.stream("POST", url(server, "anthropic"), json=body) as r:
                assert r.status_code == 200
                async for chunk in r.aiter_raw():
                    received.append(chunk)

        with pytest.raises(httpx.TransportError):
            await read_all()
    assert len(b"".join(received)) <= 400
    assert b"message_stop" not in b"".join(received)


async def test_malformed_bodies_arrive_cleanly_but_do_not_parse() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        normal = (await post(client, server, "openai")).content
        server.script(
            Malformed(),
            Malformed("not_json", status=502),
            Malformed("wrong_shape"),
        )
        truncated = await post(client, server, "openai")
        html = await post(client, server, "openai")
        wrong = await post(client, server, "openai")
        body = dict(BODIES["anthropic"], stream=True)
        server.script(Malformed())
        stream = await client.post(url(server, "anthropic"), json=body)
    assert truncated.status_code == 200
    assert truncated.headers["content-type"] == "application/json"
    assert len(truncated.content) in (len(normal) // 2, len(normal) // 2 + 1)
    with pytest.raises(json.JSONDecodeError):
        truncated.json()
    assert html.status_code == 502
    assert html.content.startswith(b"<html>")
    assert wrong.json() == {"unexpected": True}
    assert b"message_start" in stream.content
    assert b"message_stop" not in stream.content


async def test_raw_replays_a_recorded_payload_byte_for_byte() -> None:
    real = fixture("openrouter_chat_ok.json")
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        server.script(
            Raw(body=real["raw_body"], headers={"x-generation-id": "gen-1"}),
            Raw(503, body={"error": "down"}),
        )
        replayed = await post(client, server, "openrouter")
        down = await post(client, server, "openai")
    assert replayed.content == real["raw_body"].encode()
    assert replayed.headers["content-type"] == "application/json"
    assert replayed.headers["x-generation-id"] == "gen-1"
    assert down.status_code == 503
    assert down.json() == {"error": "down"}


async def test_padding_arrives_before_the_delayed_json() -> None:
    padding = "\n         \n\n         \n"
    async with (
        LoopbackServer(cost=Decimal("0.5")) as server,
        httpx.AsyncClient() as client,
    ):
        server.script(Respond(padding=padding, delay=1.5))
        started = time.monotonic()
        async with client.stream(
            "POST", url(server, "openrouter"), json=BODIES["openrouter"]
        ) as reply:
            chunks = [
                (time.monotonic() - started, chunk) async for chunk in reply.aiter_raw()
            ]
    first_at, first = chunks[0]
    assert first == padding.encode()
    assert first_at < 1.0
    assert chunks[-1][0] >= 1.4
    data = json.loads(b"".join(chunk for _, chunk in chunks))  # whitespace is fine
    assert data["usage"]["cost"] == 0.5


async def _chunked_body() -> AsyncIterator[bytes]:
    text = json.dumps(BODIES["openai"]).encode()
    for i in range(0, len(text), 7):
        yield text[i : i + 7]


async def test_requests_are_recorded_as_the_client_sent_them() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        await client.post(
            url(server, "openai") + "?trace=1&x=",
            content=_chunked_body(),
            headers={"Authorization": "Bearer sk-secret", "X-Trace": "a"},
        )
        await post(client, server, "gemini")
        first, second = server.requests
    assert first.number == 1
    assert second.number == 2
    assert first.method == "POST"
    assert first.path == "/v1/chat/completions"
    assert first.query == {"trace": "1", "x": ""}
    assert first.headers["transfer-encoding"] == "chunked"
    assert first.headers["x-trace"] == "a"
    assert first.api_key == "sk-secret"
    assert first.json == BODIES["openai"]
    assert first.body == json.dumps(BODIES["openai"]).encode()
    assert first.route == "openai"
    assert first.model == "gpt-4o-mini"
    assert first.prompt == "Hello there"
    assert first.stream is False
    assert first.client == second.client  # one keep-alive connection
    assert first.client[0] == "127.0.0.1"
    assert first.time <= second.time
    assert second.model == "gemini-2.5-flash"
    assert "sk-secret" not in repr(first)
    assert first.as_json()["headers"]["authorization"] == "[REDACTED]"
    assert server.request_count == 2
    server.reset()
    assert server.requests == ()
    assert server.request_count == 2  # numbering goes on


async def test_without_recording_requests_are_only_counted() -> None:
    async with LoopbackServer(record=False) as server, httpx.AsyncClient() as client:
        for _ in range(3):
            await post(client, server, "openai")
        assert server.requests == ()
        assert server.request_count == 3


async def test_a_client_on_keep_alive_uses_one_connection_for_many_requests() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        for route in ROUTES * 5:
            assert (await post(client, server, route)).status_code == 200
        clients = {r.client for r in server.requests}
    assert len(server.requests) == 20
    assert len(clients) == 1


async def test_serves_256_concurrent_connections() -> None:
    count = 256
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    statuses: list[int] = []

    async def one(client: httpx.AsyncClient, server: LoopbackServer) -> None:
        statuses.append((await post(client, server, "openai", timeout=30)).status_code)

    async with LoopbackServer(delay=1.0) as server:
        async with httpx.AsyncClient(limits=limits) as client:
            started = time.monotonic()
            async with anyio.create_task_group() as group:
                for _ in range(count):
                    group.start_soon(one, client, server)
            elapsed = time.monotonic() - started
        connections = {r.client for r in server.requests}
    assert statuses == [200] * count
    assert len(connections) == count  # all open at once
    assert elapsed < 20  # one at a time would take 256 s


async def _raw_exchange(port: int, request: bytes, *, read_until_close: bool) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request)
        received = b""
        with anyio.fail_after(5):
            while True:
                try:
                    received += await stream.receive()
                except anyio.EndOfStream:
                    return received
                if not read_until_close and b"\r\n\r\n" in received:
                    return received


async def test_expect_100_continue_is_answered_before_the_body() -> None:
    body = json.dumps(BODIES["openai"]).encode()
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    async with (
        LoopbackServer() as server,
        await anyio.connect_tcp("127.0.0.1", server.port) as stream,
    ):
        await stream.send(head)
        with anyio.fail_after(5):
            interim = await stream.receive()
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        await stream.send(body)
        with anyio.fail_after(5):
            final = await stream.receive()
    assert final.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_http_10_and_connection_close_get_one_answer_then_close() -> None:
    body = json.dumps(BODIES["openai"]).encode()
    requests = [
        b"POST /v1/chat/completions HTTP/1.0\r\nContent-Length: %d\r\n\r\n%b"
        % (len(body), body),
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(body), body),
    ]
    async with LoopbackServer() as server:
        for request in requests:
            answer = await _raw_exchange(server.port, request, read_until_close=True)
            head, _, rest = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"\r\nconnection: close" in head
            assert json.loads(rest)["object"] == "chat.completion"


async def test_a_request_that_is_not_http_gets_400_and_the_server_goes_on() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        answer = await _raw_exchange(
            server.port, b"NOT HTTP AT ALL\r\n\r\n", read_until_close=True
        )
        after = await post(client, server, "openai")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert after.status_code == 200
