"""The benchmarks' loopback server: OpenAI Chat Completions, as fast as Python goes.

Run: ``python bench/server.py [--port 0] [--cpu 1] [--delay 0]``. It prints
its port as the first line of stdout and serves on 127.0.0.1 until SIGTERM or
SIGINT.

Every ``POST`` gets the answer ``llm_connect.testing.server`` gives to an
OpenAI request (same headers, same JSON, built by the same code once at
start-up), so each client parses a real ``chat.completion``. What makes it
fast is what it leaves out: it is a bare ``asyncio.Protocol`` that frames
requests by ``Content-Length`` (every client measured sends one) and answers
with prebuilt bytes, without an HTTP library, routing, recording or fault
scripts. It costs about 20 us of CPU per request, against the test server's
75 us.

``GET /_stats`` answers ``{"requests": n, "cpu_s": t}``: the requests served
so far and the CPU time (user + system) this process has used. A benchmark
reads it before and after a measurement: ``requests / cpu_s`` over the
interval is what the server could serve with its core to itself, which is
its capacity during that measurement (see docs/performance.md).

``--delay`` holds every answer that many seconds (the memory benchmark keeps
1000 requests in flight with it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time

from llm_connect._models import Usage
from llm_connect.testing.server._formats import Answer, answer_reply

TEXT = "Hello from the llm-connect loopback server."
MODEL = "gpt-4o-mini"


def build_answer() -> bytes:
    """The full HTTP response to every POST, as the test server would send it."""
    usage = Usage(12, 11, 23)
    reply = answer_reply(
        "openai",
        Answer(TEXT, MODEL, usage, None, "stop", ""),
        "req_loopback_bench",
        stream=False,
    )
    head = [f"HTTP/1.1 {reply.status} OK"]
    head += [f"{name}: {value}" for name, value in reply.headers]
    head.append(f"content-length: {len(reply.body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + reply.body


class Stats:
    """Requests served; shared by every connection of the process."""

    requests = 0


class Connection(asyncio.Protocol):
    """One client connection: frame requests, answer each one."""

    def __init__(self, answer: bytes, delay: float) -> None:
        self._answer = answer
        self._delay = delay
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            length = _content_length(head)
            if length is None:
                self._refuse()
                return
            total = end + 4 + length
            if len(buffer) < total:
                return
            del buffer[:total]
            if head.startswith(b"get /_stats"):
                self._send(_stats_response())
                continue
            Stats.requests += 1
            if self._delay > 0:
                asyncio.get_running_loop().call_later(
                    self._delay, self._send, self._answer
                )
            else:
                self._send(self._answer)

    def _send(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def _refuse(self) -> None:
        """A request without Content-Length (chunked): not what clients send here."""
        self._send(
            b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\n"
            b"connection: close\r\n\r\n"
        )
        if self._transport is not None:
            self._transport.close()


def _content_length(head: bytes) -> int | None:
    if head.startswith((b"get ", b"head ")):
        return 0
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return None
    start = at + len(b"\r\ncontent-length:")
    stop = head.find(b"\r\n", start)
    try:
        return int(head[start : stop if stop >= 0 else len(head)])
    except ValueError:
        return None


def _stats_response() -> bytes:
    body = json.dumps(
        {"requests": Stats.requests, "cpu_s": time.process_time()}
    ).encode()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


async def serve(port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    answer = build_answer()
    server = await loop.create_server(
        lambda: Connection(answer, delay),
        "127.0.0.1",
        port,
        backlog=4096,
        reuse_address=True,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await stop.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu", type=int, help="pin the server to this CPU")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(serve(args.port, args.delay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
